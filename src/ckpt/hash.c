/* Checksums and identity hashes: table-driven CRC32C (slicing by 8) and the FNV-1a task key. */
#include <pthread.h>
#include <string.h>

#include "ckpt_int.h"

/*
 * CRC32C (the Castagnoli polynomial, reflected 0x82F63B78; the CRC of
 * iSCSI, ext4 and Btrfs) with eight 256-entry tables, consuming 8 bytes per
 * step: about 1.5 GB/s here, where the one-table version does 0.4 GB/s and
 * a snapshot checksums every byte it writes on the scheduler's thread. The
 * tables are computed once and never change afterwards, so sharing them
 * between tf_ck handles is safe.
 */
static uint32_t crc_table[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        crc_table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^
                              crc_table[0][crc_table[t - 1][i] & 0xff];
}

uint32_t tf_ck_crc32c(uint32_t crc, const void *p, size_t n)
{
    pthread_once(&crc_once, crc_init);
    const uint8_t *b = p;
    crc = ~crc;
    while (n && ((uintptr_t)b & 7)) {
        crc = (crc >> 8) ^ crc_table[0][(crc ^ *b++) & 0xff];
        n--;
    }
    /* Little-endian words: the file formats are little-endian too. */
    while (n >= 8) {
        uint32_t lo, hi;
        memcpy(&lo, b, 4);
        memcpy(&hi, b + 4, 4);
        lo ^= crc;
        crc = crc_table[7][lo & 0xff] ^ crc_table[6][(lo >> 8) & 0xff] ^
              crc_table[5][(lo >> 16) & 0xff] ^ crc_table[4][lo >> 24] ^
              crc_table[3][hi & 0xff] ^ crc_table[2][(hi >> 8) & 0xff] ^
              crc_table[1][(hi >> 16) & 0xff] ^ crc_table[0][hi >> 24];
        b += 8;
        n -= 8;
    }
    while (n--)
        crc = (crc >> 8) ^ crc_table[0][(crc ^ *b++) & 0xff];
    return ~crc;
}

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

uint64_t tf_ck_key(const void *a, size_t alen, const void *b, size_t blen)
{
    /* Each string is preceded by its length (8 bytes, little-endian), so
       ("ab", "c") and ("a", "bc") differ. */
    uint8_t len[8];
    uint64_t h = 0xcbf29ce484222325ull;
    for (int i = 0; i < 8; i++)
        len[i] = (uint8_t)((uint64_t)alen >> (8 * i));
    h = fnv(fnv(h, len, 8), a, alen);
    for (int i = 0; i < 8; i++)
        len[i] = (uint8_t)((uint64_t)blen >> (8 * i));
    return fnv(fnv(h, len, 8), b, blen);
}
