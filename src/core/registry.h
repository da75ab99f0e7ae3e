/* The registry of task functions: names, pointers and their users, in registration order. */
#ifndef TF_CORE_REGISTRY_H
#define TF_CORE_REGISTRY_H

#include <stdint.h>

#include "taskfarm_task.h"

/*
 * Task records carry a function's index in the registry, so every rank must
 * register the same names in the same order: tf_registry_hash is what the
 * ranks compare before each run. Registration happens between runs only;
 * task threads read the registry during runs.
 */
typedef struct tf_fnent {
    char *name;
    tf_task_fn fn;
    void *user;
} tf_fnent;

typedef struct tf_registry {
    tf_fnent *fns;
    uint32_t n, cap;
} tf_registry;

/*
 * Register fn under a copy of name; *out gets its index. Errors: TF_EINVAL
 * (empty name), TF_EEXIST (name taken), TF_ENOMEM.
 */
int tf_registry_add(tf_registry *r, const char *name, tf_task_fn fn,
                    void *user, uint32_t *out);

/* The index of `name` into *out. Errors: TF_ENOENT. */
int tf_registry_find(const tf_registry *r, const char *name, uint32_t *out);

/* The index of the function named by name_len bytes at name, or TF_NONE_FN. */
#define TF_NONE_FN UINT32_MAX
uint32_t tf_registry_find_bytes(const tf_registry *r, const char *name,
                                uint32_t name_len);

/* FNV-1a over the names with their NULs, in order ("ab","c" != "a","bc"). */
uint64_t tf_registry_hash(const tf_registry *r);

void tf_registry_free(tf_registry *r);

#endif
