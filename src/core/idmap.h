/* Open-addressing hash map from 64-bit task ids to task-table indexes. */
#ifndef TF_CORE_IDMAP_H
#define TF_CORE_IDMAP_H

#include <stddef.h>
#include <stdint.h>

/*
 * Used for ids rank 0 did not hand out itself (tasks submitted from inside
 * running tasks). Key 0 is reserved as "empty": such ids always have a
 * non-zero creator field in their high bits.
 */
typedef struct tf_idmap {
    uint64_t *keys;
    uint32_t *vals;
    size_t n, cap; /* cap is a power of two */
} tf_idmap;

void tf_idmap_init(tf_idmap *m);
void tf_idmap_free(tf_idmap *m);
/* Insert or replace. TF_EINVAL for key 0, TF_ENOMEM. */
int tf_idmap_put(tf_idmap *m, uint64_t key, uint32_t val);
/* Room for one more key: the next tf_idmap_put cannot fail then. */
int tf_idmap_reserve(tf_idmap *m);
/* The value, or UINT32_MAX when absent. */
uint32_t tf_idmap_get(const tf_idmap *m, uint64_t key);
size_t tf_idmap_bytes(const tf_idmap *m);

#endif
