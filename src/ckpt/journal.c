/* Journal byte format: header, FINISH and SUBMIT records; encode, decode. */
#include <string.h>

#include "ckpt_int.h"

/*
 * Fields are stored in host byte order, which the format defines as
 * little-endian (docs/checkpoint-format.md); a big-endian port would add
 * byte swaps in put/get.
 */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the checkpoint formats are little-endian: add byte swaps here"
#endif

#define FINISH_FIXED 48 /* payload bytes before the output */
#define SUBMIT_FIXED 80 /* payload bytes before deps, name, cmd, output */

static size_t pad8(size_t n)
{
    return (n + 7) & ~(size_t)7;
}

static uint8_t *put(uint8_t *p, const void *v, size_t n)
{
    memcpy(p, v, n);
    return p + n;
}

static const uint8_t *get(const uint8_t *p, void *v, size_t n)
{
    memcpy(v, p, n);
    return p + n;
}

void tf_ck_jr_header(uint8_t *dst, uint64_t j)
{
    uint32_t fmt = TF_CK_FORMAT, zero = 0, crc;
    uint8_t *p = put(dst, TF_CK_JMAGIC, 8);
    p = put(p, &fmt, 4);
    p = put(p, &zero, 4);
    p = put(p, &j, 8);
    crc = tf_ck_crc32c(0, dst, 24);
    p = put(p, &crc, 4);
    put(p, &zero, 4);
}

const char *tf_ck_jr_check_header(const uint8_t *hdr, size_t len, uint64_t *j)
{
    uint32_t fmt, crc;
    if (len < TF_CK_JHDR)
        return "shorter than a journal header";
    if (memcmp(hdr, TF_CK_JMAGIC, 8))
        return "not a taskfarm journal (foreign format)";
    memcpy(&crc, hdr + 24, 4);
    if (crc != tf_ck_crc32c(0, hdr, 24))
        return "header checksum mismatch";
    memcpy(&fmt, hdr + 8, 4);
    if (fmt == 0)
        return "journal format version 0 (corrupt)";
    if (fmt > TF_CK_FORMAT)
        return "journal format version is newer than this taskfarm reads";
    memcpy(j, hdr + 16, 8);
    return NULL;
}

/*
 * The header of a record whose payload is already at dst + 16, and its
 * padding. The checksum is left for tf_ck_jr_seal, which the I/O thread
 * runs over each batch, so the scheduler's thread does not pay for it.
 */
static void frame(uint8_t *dst, uint32_t type, uint32_t len)
{
    uint32_t zero = 0;
    put(put(put(put(dst, &len, 4), &type, 4), &zero, 4), &zero, 4);
    if (pad8(len) > len)
        memset(dst + TF_CK_RHDR + len, 0, pad8(len) - len);
}

void tf_ck_jr_seal(uint8_t *buf, size_t len)
{
    for (size_t at = 0; at + TF_CK_RHDR <= len;) {
        uint32_t rlen, crc;
        memcpy(&rlen, buf + at, 4);
        crc = tf_ck_crc32c(tf_ck_crc32c(0, buf + at, 8), buf + at + TF_CK_RHDR,
                           rlen);
        memcpy(buf + at + 8, &crc, 4);
        at += TF_CK_RHDR + pad8(rlen);
    }
}

size_t tf_ck_jr_finish_size(const tf_ck_finish *f)
{
    size_t out = f->state == TF_TASK_DONE ? f->out_len : 0;
    return TF_CK_RHDR + pad8(FINISH_FIXED + out);
}

void tf_ck_jr_put_finish(uint8_t *dst, const tf_ck_finish *f)
{
    uint32_t out_len = f->state == TF_TASK_DONE ? f->out_len : 0;
    uint8_t zero = 0;
    uint8_t *p = dst + TF_CK_RHDR;
    p = put(p, &f->gid, 8);
    p = put(p, &f->key, 8);
    p = put(p, &f->start_ns, 8);
    p = put(p, &f->end_ns, 8);
    p = put(p, &f->status, 4);
    p = put(p, &f->rank, 4);
    p = put(p, &out_len, 4);
    p = put(p, &f->attempt, 2);
    p = put(p, &f->state, 1);
    p = put(p, &zero, 1);
    if (out_len)
        put(p, f->out, out_len);
    frame(dst, TF_CK_REC_FINISH, FINISH_FIXED + out_len);
}

static size_t submit_payload(const tf_ck_task *t)
{
    return SUBMIT_FIXED + 8 * (size_t)t->ndeps + t->name_len + t->cmd_len +
           t->out_len;
}

size_t tf_ck_jr_submit_size(const tf_ck_task *t)
{
    return TF_CK_RHDR + pad8(submit_payload(t));
}

void tf_ck_jr_put_submit(uint8_t *dst, const tf_ck_task *t)
{
    uint8_t zero[7] = {0};
    uint8_t *p = dst + TF_CK_RHDR;
    p = put(p, &t->gid, 8);
    p = put(p, &t->key, 8);
    p = put(p, &t->parent, 8);
    p = put(p, &t->start_ns, 8);
    p = put(p, &t->end_ns, 8);
    p = put(p, &t->prio, 4);
    p = put(p, &t->status, 4);
    p = put(p, &t->rank, 4);
    p = put(p, &t->name_len, 4);
    p = put(p, &t->cmd_len, 4);
    p = put(p, &t->ndeps, 4);
    p = put(p, &t->out_len, 4);
    p = put(p, &t->cores, 2);
    p = put(p, &t->attempts, 2);
    p = put(p, &t->state, 1);
    p = put(p, zero, 7);
    /* Dependencies first: 8-byte aligned in the journal, so a loaded task
       can point at them where they lie. */
    if (t->ndeps)
        p = put(p, t->deps, 8 * (size_t)t->ndeps);
    if (t->name_len)
        p = put(p, t->name, t->name_len);
    if (t->cmd_len)
        p = put(p, t->cmd, t->cmd_len);
    if (t->out_len)
        put(p, t->out, t->out_len);
    frame(dst, TF_CK_REC_SUBMIT, (uint32_t)submit_payload(t));
}

static int decode_finish(const uint8_t *p, uint32_t len, tf_ck_finish *f,
                         const char **why)
{
    if (len < FINISH_FIXED) {
        *why = "FINISH record too short";
        return TF_CK_JR_CORRUPT;
    }
    memset(f, 0, sizeof *f);
    const uint8_t *q = p;
    q = get(q, &f->gid, 8);
    q = get(q, &f->key, 8);
    q = get(q, &f->start_ns, 8);
    q = get(q, &f->end_ns, 8);
    q = get(q, &f->status, 4);
    q = get(q, &f->rank, 4);
    q = get(q, &f->out_len, 4);
    q = get(q, &f->attempt, 2);
    q = get(q, &f->state, 1);
    f->out = p + FINISH_FIXED;
    if ((uint64_t)FINISH_FIXED + f->out_len != len) {
        *why = "FINISH record length does not match its output length";
        return TF_CK_JR_CORRUPT;
    }
    if (f->state != TF_TASK_DONE && f->state != TF_TASK_FAILED) {
        *why = "FINISH record with a state other than DONE or FAILED";
        return TF_CK_JR_CORRUPT;
    }
    return TF_CK_JR_OK;
}

static int decode_submit(const uint8_t *p, uint32_t len, tf_ck_task *t,
                         const char **why)
{
    if (len < SUBMIT_FIXED) {
        *why = "SUBMIT record too short";
        return TF_CK_JR_CORRUPT;
    }
    memset(t, 0, sizeof *t);
    const uint8_t *q = p;
    q = get(q, &t->gid, 8);
    q = get(q, &t->key, 8);
    q = get(q, &t->parent, 8);
    q = get(q, &t->start_ns, 8);
    q = get(q, &t->end_ns, 8);
    q = get(q, &t->prio, 4);
    q = get(q, &t->status, 4);
    q = get(q, &t->rank, 4);
    q = get(q, &t->name_len, 4);
    q = get(q, &t->cmd_len, 4);
    q = get(q, &t->ndeps, 4);
    q = get(q, &t->out_len, 4);
    q = get(q, &t->cores, 2);
    q = get(q, &t->attempts, 2);
    q = get(q, &t->state, 1);
    q = p + SUBMIT_FIXED;
    if (SUBMIT_FIXED + 8 * (uint64_t)t->ndeps + t->name_len + t->cmd_len +
            t->out_len !=
        len) {
        *why = "SUBMIT record length does not match its fields";
        return TF_CK_JR_CORRUPT;
    }
    if (t->state > TF_TASK_SKIPPED) {
        *why = "SUBMIT record with a state no task has";
        return TF_CK_JR_CORRUPT;
    }
    t->deps = (const uint64_t *)(const void *)q;
    q += 8 * (size_t)t->ndeps;
    t->name = (const char *)q;
    q += t->name_len;
    t->cmd = q;
    q += t->cmd_len;
    t->out = q;
    return TF_CK_JR_OK;
}

size_t tf_ck_jr_extent(const uint8_t *hdr)
{
    uint32_t rlen, type, zero;
    memcpy(&rlen, hdr, 4);
    memcpy(&type, hdr + 4, 4);
    memcpy(&zero, hdr + 12, 4);
    if (zero != 0 || (type != TF_CK_REC_FINISH && type != TF_CK_REC_SUBMIT))
        return 0;
    return TF_CK_RHDR + pad8(rlen);
}

int tf_ck_jr_next(const uint8_t *buf, size_t len, size_t *pos, tf_ck_jrec *rec,
                  const char **why)
{
    size_t at = *pos;
    uint32_t rlen, type, crc;
    if (at == len)
        return TF_CK_JR_END;
    if (at > len || at % 8) {
        *why = "position past the end or not a record boundary";
        return TF_CK_JR_TORN;
    }
    if (len - at < TF_CK_RHDR) {
        *why = "torn record header";
        return TF_CK_JR_TORN;
    }
    const uint8_t *p = buf + at;
    size_t ext = tf_ck_jr_extent(p);
    if (!ext) {
        *why = "bad record header";
        return TF_CK_JR_CORRUPT;
    }
    if (len - at < ext) {
        /* Most likely the tail a crash cut short; a flipped length that
           points past the end looks the same and is treated the same. */
        *why = "torn record (ends past the end of the file)";
        return TF_CK_JR_TORN;
    }
    memcpy(&rlen, p, 4);
    memcpy(&type, p + 4, 4);
    memcpy(&crc, p + 8, 4);
    if (crc != tf_ck_crc32c(tf_ck_crc32c(0, p, 8), p + TF_CK_RHDR, rlen)) {
        *why = "record checksum mismatch";
        return TF_CK_JR_CORRUPT;
    }
    for (size_t i = TF_CK_RHDR + rlen; i < ext; i++)
        if (p[i]) {
            *why = "nonzero record padding";
            return TF_CK_JR_CORRUPT;
        }
    memset(rec, 0, sizeof *rec);
    rec->type = type;
    int rc = type == TF_CK_REC_FINISH
                 ? decode_finish(p + TF_CK_RHDR, rlen, &rec->fin, why)
                 : decode_submit(p + TF_CK_RHDR, rlen, &rec->task, why);
    if (rc == TF_CK_JR_OK)
        *pos = at + ext;
    return rc;
}
