/* The registry of task functions. */
#include "registry.h"

#include <stdlib.h>
#include <string.h>

#include "grow.h"

int tf_registry_add(tf_registry *r, const char *name, tf_task_fn fn,
                    void *user, uint32_t *out)
{
    uint32_t dummy;
    if (!name || !*name || !fn)
        return TF_EINVAL;
    if (tf_registry_find(r, name, &dummy) == 0)
        return TF_EEXIST;
    size_t cap = r->cap;
    if (r->n == UINT32_MAX - 1 ||
        tf_grow((void **)&r->fns, &cap, (size_t)r->n + 1, sizeof *r->fns, 16))
        return TF_ENOMEM;
    r->cap = (uint32_t)cap;
    char *copy = strdup(name);
    if (!copy)
        return TF_ENOMEM;
    r->fns[r->n] = (tf_fnent){copy, fn, user};
    *out = r->n++;
    return 0;
}

int tf_registry_find(const tf_registry *r, const char *name, uint32_t *out)
{
    uint32_t i = tf_registry_find_bytes(r, name, (uint32_t)strlen(name));
    if (i == TF_NONE_FN)
        return TF_ENOENT;
    *out = i;
    return 0;
}

uint32_t tf_registry_find_bytes(const tf_registry *r, const char *name,
                                uint32_t name_len)
{
    for (uint32_t i = 0; i < r->n; i++)
        if (strlen(r->fns[i].name) == name_len &&
            !memcmp(r->fns[i].name, name, name_len))
            return i;
    return TF_NONE_FN;
}

uint64_t tf_registry_hash(const tf_registry *r)
{
    uint64_t h = 1469598103934665603ULL;
    for (uint32_t i = 0; i < r->n; i++) {
        const char *c = r->fns[i].name;
        do
            h = (h ^ (uint8_t)*c) * 1099511628211ULL;
        while (*c++);
    }
    return h;
}

void tf_registry_free(tf_registry *r)
{
    for (uint32_t i = 0; i < r->n; i++)
        free(r->fns[i].name);
    free(r->fns);
    r->fns = NULL;
    r->n = r->cap = 0;
}
