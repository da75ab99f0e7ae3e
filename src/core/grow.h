/* Growing an array by doubling: the one place the core sizes its buffers. */
#ifndef TF_CORE_GROW_H
#define TF_CORE_GROW_H

#include <stddef.h>
#include <stdlib.h>

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

#endif
