/* Growing an array or a ring by doubling: the one place the core sizes its buffers. */
#ifndef TF_CORE_GROW_H
#define TF_CORE_GROW_H

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "taskfarm_status.h"

/*
 * Make *p (of *cap elements of `elem` bytes) hold at least `need`
 * elements, doubling from `first`. On failure *p and *cap are untouched.
 * Returns 0 or TF_ENOMEM.
 */
static inline int tf_grow(void **p, size_t *cap, size_t need, size_t elem,
                          size_t first)
{
    if (need <= *cap)
        return 0;
    size_t ncap = *cap ? *cap : first;
    while (ncap < need)
        ncap *= 2;
    void *q = realloc(*p, ncap * elem);
    if (!q)
        return TF_ENOMEM;
    *p = q;
    *cap = ncap;
    return 0;
}

/*
 * The same for a ring buffer holding n elements from index *head: a new
 * buffer gets them in order from index 0 (*head becomes 0). On failure
 * nothing changes. Returns 0 or TF_ENOMEM.
 */
static inline int tf_ring_grow(void **p, size_t *cap, size_t *head, size_t n,
                               size_t need, size_t elem, size_t first)
{
    if (need <= *cap)
        return 0;
    size_t ncap = *cap ? *cap : first;
    while (ncap < need)
        ncap *= 2;
    char *q = malloc(ncap * elem);
    if (!q)
        return TF_ENOMEM;
    const char *old = *p;
    for (size_t i = 0; i < n; i++)
        memcpy(q + i * elem, old + ((*head + i) % *cap) * elem, elem);
    free(*p);
    *p = q;
    *cap = ncap;
    *head = 0;
    return 0;
}

#endif
