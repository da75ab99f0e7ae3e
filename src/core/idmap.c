/* Open-addressing hash map with linear probing, resized at 50% load. */
#include "idmap.h"

#include <stdlib.h>

#include "taskfarm_status.h"

void tf_idmap_init(tf_idmap *m)
{
    m->keys = NULL;
    m->vals = NULL;
    m->n = m->cap = 0;
}

void tf_idmap_free(tf_idmap *m)
{
    free(m->keys);
    free(m->vals);
    tf_idmap_init(m);
}

static size_t slot_of(uint64_t key, size_t cap)
{
    key ^= key >> 33; /* murmur3 finaliser: creator bits reach the low bits */
    key *= 0xff51afd7ed558ccdULL;
    key ^= key >> 33;
    return (size_t)key & (cap - 1);
}

static void insert(uint64_t *keys, uint32_t *vals, size_t cap, uint64_t key,
                   uint32_t val, size_t *n)
{
    size_t i = slot_of(key, cap);
    while (keys[i] && keys[i] != key)
        i = (i + 1) & (cap - 1);
    if (!keys[i])
        (*n)++;
    keys[i] = key;
    vals[i] = val;
}

int tf_idmap_reserve(tf_idmap *m)
{
    if ((m->n + 1) * 2 > m->cap) {
        size_t ncap = m->cap ? m->cap * 2 : 64;
        uint64_t *keys = calloc(ncap, sizeof *keys);
        uint32_t *vals = malloc(ncap * sizeof *vals);
        if (!keys || !vals) {
            free(keys);
            free(vals);
            return TF_ENOMEM;
        }
        size_t n = 0;
        for (size_t i = 0; i < m->cap; i++)
            if (m->keys[i])
                insert(keys, vals, ncap, m->keys[i], m->vals[i], &n);
        free(m->keys);
        free(m->vals);
        m->keys = keys;
        m->vals = vals;
        m->cap = ncap;
    }
    return 0;
}

int tf_idmap_put(tf_idmap *m, uint64_t key, uint32_t val)
{
    if (!key)
        return TF_EINVAL;
    int rc = tf_idmap_reserve(m);
    if (!rc)
        insert(m->keys, m->vals, m->cap, key, val, &m->n);
    return rc;
}

uint32_t tf_idmap_get(const tf_idmap *m, uint64_t key)
{
    if (!m->cap || !key)
        return UINT32_MAX;
    for (size_t i = slot_of(key, m->cap);; i = (i + 1) & (m->cap - 1)) {
        if (m->keys[i] == key)
            return m->vals[i];
        if (!m->keys[i])
            return UINT32_MAX;
    }
}

size_t tf_idmap_bytes(const tf_idmap *m)
{
    return m->cap * (sizeof *m->keys + sizeof *m->vals);
}
