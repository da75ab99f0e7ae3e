/* Growable byte buffer and bounds-checked reader for the wire format (little-endian host order). */
#ifndef TF_CORE_BUF_H
#define TF_CORE_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "grow.h"
#include "taskfarm_status.h"

/*
 * Messages never leave one job, whose ranks share one architecture, so
 * fields travel in host byte order and memcpy keeps unaligned access legal.
 */
typedef struct tf_buf {
    uint8_t *p;
    size_t n, cap;
} tf_buf;

static inline int tf_buf_reserve(tf_buf *b, size_t more)
{
    return tf_grow((void **)&b->p, &b->cap, b->n + more, 1, 4096);
}

/* Append len bytes; the caller has reserved room. */
static inline void tf_buf_put(tf_buf *b, const void *src, size_t len)
{
    if (len)
        memcpy(b->p + b->n, src, len);
    b->n += len;
}

#define TF_BUF_PUT_T(name, type)                                               \
    static inline void tf_buf_put_##name(tf_buf *b, type v)                    \
    {                                                                          \
        tf_buf_put(b, &v, sizeof v);                                           \
    }
TF_BUF_PUT_T(u8, uint8_t)
TF_BUF_PUT_T(u16, uint16_t)
TF_BUF_PUT_T(i16, int16_t)
TF_BUF_PUT_T(u32, uint32_t)
TF_BUF_PUT_T(i32, int32_t)
TF_BUF_PUT_T(u64, uint64_t)
#undef TF_BUF_PUT_T

static inline void tf_buf_free(tf_buf *b)
{
    free(b->p);
    b->p = NULL;
    b->n = b->cap = 0;
}

/* A reader over received bytes; `ok` turns false at the first overrun. */
typedef struct tf_rd {
    const uint8_t *p;
    size_t n, off;
    bool ok;
} tf_rd;

static inline tf_rd tf_rd_make(const void *p, size_t n)
{
    return (tf_rd){(const uint8_t *)p, n, 0, true};
}

static inline bool tf_rd_more(const tf_rd *r) { return r->ok && r->off < r->n; }

/* The next byte without taking it; 0 past the end (ok unchanged). */
static inline uint8_t tf_rd_peek_u8(const tf_rd *r)
{
    return r->ok && r->off < r->n ? r->p[r->off] : 0;
}

/* Pointer to the next len bytes, or NULL (and ok=false) past the end. */
static inline const void *tf_rd_take(tf_rd *r, size_t len)
{
    if (!r->ok || r->n - r->off < len) {
        r->ok = false;
        return NULL;
    }
    const void *p = r->p + r->off;
    r->off += len;
    return p;
}

#define TF_RD_GET_T(name, type)                                                \
    static inline type tf_rd_##name(tf_rd *r)                                  \
    {                                                                          \
        type v = 0;                                                            \
        const void *p = tf_rd_take(r, sizeof v);                               \
        if (p)                                                                 \
            memcpy(&v, p, sizeof v);                                           \
        return v;                                                              \
    }
TF_RD_GET_T(u8, uint8_t)
TF_RD_GET_T(u16, uint16_t)
TF_RD_GET_T(i16, int16_t)
TF_RD_GET_T(u32, uint32_t)
TF_RD_GET_T(i32, int32_t)
TF_RD_GET_T(u64, uint64_t)
#undef TF_RD_GET_T

#endif
