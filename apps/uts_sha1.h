/* SHA-1 (FIPS 180-4) for the UTS splittable random number generator. */
#ifndef UTS_SHA1_H
#define UTS_SHA1_H

/*
 * UTS names every tree node by a 20-byte SHA-1 digest and derives a child's
 * digest by hashing the parent's digest with the child's index, so the
 * tree is the same whatever order or place nodes are expanded in. SHA-1 is
 * used for its mixing here, not for security. Written from the standard;
 * the messages UTS hashes are at most 24 bytes, but this handles any length.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct sha1_ctx {
    uint32_t h[5];
    uint64_t len;      /* bytes hashed so far */
    uint8_t block[64]; /* the partial block */
} sha1_ctx;

static inline uint32_t sha1_rol(uint32_t x, int n)
{
    return (x << n) | (x >> (32 - n));
}

static void sha1_compress(uint32_t h[5], const uint8_t b[64])
{
    uint32_t w[80];
    for (int t = 0; t < 16; t++)
        w[t] = (uint32_t)b[4 * t] << 24 | (uint32_t)b[4 * t + 1] << 16 |
               (uint32_t)b[4 * t + 2] << 8 | (uint32_t)b[4 * t + 3];
    for (int t = 16; t < 80; t++)
        w[t] = sha1_rol(w[t - 3] ^ w[t - 8] ^ w[t - 14] ^ w[t - 16], 1);
    uint32_t a = h[0], bb = h[1], c = h[2], d = h[3], e = h[4];
    for (int t = 0; t < 80; t++) {
        uint32_t f, k;
        if (t < 20)
            f = (bb & c) | (~bb & d), k = 0x5a827999u;
        else if (t < 40)
            f = bb ^ c ^ d, k = 0x6ed9eba1u;
        else if (t < 60)
            f = (bb & c) | (bb & d) | (c & d), k = 0x8f1bbcdcu;
        else
            f = bb ^ c ^ d, k = 0xca62c1d6u;
        uint32_t tmp = sha1_rol(a, 5) + f + e + k + w[t];
        e = d, d = c, c = sha1_rol(bb, 30), bb = a, a = tmp;
    }
    h[0] += a, h[1] += bb, h[2] += c, h[3] += d, h[4] += e;
}

static inline void sha1_begin(sha1_ctx *s)
{
    static const uint32_t iv[5] = {0x67452301u, 0xefcdab89u, 0x98badcfeu,
                                   0x10325476u, 0xc3d2e1f0u};
    memcpy(s->h, iv, sizeof iv);
    s->len = 0;
}

static void sha1_update(sha1_ctx *s, const void *data, size_t n)
{
    const uint8_t *p = data;
    while (n > 0) {
        size_t used = (size_t)(s->len % 64), take = 64 - used;
        if (take > n)
            take = n;
        memcpy(s->block + used, p, take);
        s->len += take, p += take, n -= take;
        if (s->len % 64 == 0)
            sha1_compress(s->h, s->block);
    }
}

/* Pad (0x80, zeros, 64-bit big-endian bit length) and write the digest. */
static void sha1_end(sha1_ctx *s, uint8_t out[20])
{
    uint64_t bits = s->len * 8;
    uint8_t pad[72] = {0x80};
    size_t used = (size_t)(s->len % 64);
    size_t npad = used < 56 ? 56 - used : 120 - used;
    for (int i = 0; i < 8; i++)
        pad[npad + i] = (uint8_t)(bits >> (56 - 8 * i));
    sha1_update(s, pad, npad + 8);
    for (int i = 0; i < 5; i++) {
        out[4 * i] = (uint8_t)(s->h[i] >> 24);
        out[4 * i + 1] = (uint8_t)(s->h[i] >> 16);
        out[4 * i + 2] = (uint8_t)(s->h[i] >> 8);
        out[4 * i + 3] = (uint8_t)s->h[i];
    }
}

#endif
