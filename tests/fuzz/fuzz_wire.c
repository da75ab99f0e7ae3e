/* libFuzzer harness: the wire decoders, on any bytes as a message. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wire.h"

/*
 * The first byte says which message the rest is: a TASKS/STOLEN batch
 * (decoded as the worker does, tf_wire_scan_batch, then record by record),
 * a REPORT (as rank 0 does, tf_wire_get_rec), or one of the fixed records
 * (STOP, RELEASE, ERROR, STEAL). Beyond the sanitizers' "no read outside
 * the message", the decoders must keep their promises, and a violation
 * aborts, which libFuzzer records as a crash: the scan's counts are what
 * the record-by-record decode finds; every pointer handed out lies inside
 * the message; and a message the decoders accept is exactly the bytes its
 * decoded records encode to, so nothing is skipped or read twice.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void broken(const char *what)
{
    fprintf(stderr, "fuzz_wire: broken promise: %s\n", what);
    abort();
}

static void inside(const void *p, size_t len, const uint8_t *m, size_t n)
{
    const uint8_t *q = p;
    if (!q || q < m || len > n || (size_t)(q - m) > n - len)
        broken("a pointer outside the message");
}

static void same(const tf_buf *b, const uint8_t *m, size_t n)
{
    if (b->n != n || (n && memcmp(b->p, m, n)))
        broken("the decoded records encode to other bytes");
}

static void batch(const uint8_t *m, size_t n)
{
    tf_wire_batch hd;
    size_t ntasks, ndeps;
    if (!tf_wire_scan_batch(m, n, &hd, &ntasks, &ndeps))
        return;
    /* Accepted: decode it the way the worker does, encoding it again. */
    tf_buf b = {0};
    if (tf_buf_reserve(&b, n + 1))
        abort();
    tf_rd r = tf_rd_make(m, n);
    tf_wire_get_batch(&r, &hd);
    tf_wire_put_batch(&b, &hd);
    size_t k = 0, d = 0;
    for (; k < ntasks; k++) {
        tf_wire_task t;
        tf_wire_get_task(&r, &t);
        const void *in = tf_rd_take(&r, t.input_len);
        if (!r.ok)
            broken("a task the scan accepted is cut short");
        inside(in, t.input_len, m, n);
        tf_wire_put_task(&b, &t);
        tf_buf_put(&b, in, t.input_len);
        for (uint32_t i = 0; i < t.ndeps; i++, d++) {
            const void *buf;
            uint32_t len, anchor;
            if (!tf_wire_get_output(&r, &buf, &len, &anchor))
                broken("a dependency the scan accepted is cut short");
            if (anchor != TF_WIRE_ANCHOR) {
                tf_wire_put_anchor(&b, anchor);
            } else {
                inside(buf, len, m, n);
                tf_wire_put_output(&b, buf, len);
            }
        }
    }
    if (tf_rd_more(&r) || d != ndeps)
        broken("the scan's counts are not the message's");
    same(&b, m, n);
    tf_buf_free(&b);
}

static void report(const uint8_t *m, size_t n)
{
    tf_buf b = {0};
    if (tf_buf_reserve(&b, n + 1))
        abort();
    tf_rd r = tf_rd_make(m, n);
    tf_wire_rec rec;
    while (tf_rd_more(&r) && tf_wire_get_rec(&r, &rec)) {
        if (rec.kind == TF_REC_DONE) {
            inside(rec.out, rec.u.done.out_len, m, n);
            tf_wire_put_done(&b, &rec.u.done);
            tf_buf_put(&b, rec.out, rec.u.done.out_len);
        } else if (rec.kind == TF_REC_SUBMIT) {
            size_t dl = (size_t)rec.u.submit.ndeps * 8;
            inside(rec.deps, dl, m, n);
            inside(rec.in, rec.u.submit.input_len, m, n);
            tf_wire_put_submit(&b, &rec.u.submit);
            tf_buf_put(&b, rec.deps, dl);
            tf_buf_put(&b, rec.in, rec.u.submit.input_len);
        } else if (rec.kind == TF_REC_UNRUN) {
            tf_wire_put_unrun(&b, &rec.u.unrun);
        } else if (rec.kind == TF_REC_MOVED) {
            tf_wire_put_moved(&b, &rec.u.moved);
        } else {
            broken("a record of no kind accepted");
        }
        if (b.n != r.off)
            broken("a record read other than it encodes");
    }
    if (r.ok)
        same(&b, m, n);
    tf_buf_free(&b);
}

/* A fixed record: accepted exactly when the message holds it whole. */
#define FIXED(name, NAME)                                                      \
    static void fixed_##name(const uint8_t *m, size_t n)                       \
    {                                                                          \
        tf_wire_##name x;                                                      \
        tf_rd r = tf_rd_make(m, n);                                            \
        if (tf_wire_get_##name(&r, &x) != (n >= TF_WIRE_##NAME##_SIZE))        \
            broken(#NAME " accepted when cut short, or refused whole");        \
        if (r.ok) {                                                            \
            tf_buf b = {0};                                                    \
            if (tf_buf_reserve(&b, TF_WIRE_##NAME##_SIZE))                     \
                abort();                                                       \
            tf_wire_put_##name(&b, &x);                                        \
            same(&b, m, TF_WIRE_##NAME##_SIZE);                                \
            tf_buf_free(&b);                                                   \
        }                                                                      \
    }
FIXED(stop, STOP)
FIXED(release, RELEASE)
FIXED(error, ERROR)
FIXED(steal, STEAL)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    /*
     * The message in a buffer of its own size, so that ASan sees any read
     * past its end (libFuzzer's input would let a read of the selector
     * byte's neighbour pass).
     */
    size_t n = size - 1;
    uint8_t *m = malloc(n ? n : 1);
    if (!m)
        return 0;
    memcpy(m, data + 1, n);
    switch (data[0] % 6) {
    case 0: batch(m, n); break;
    case 1: report(m, n); break;
    case 2: fixed_stop(m, n); break;
    case 3: fixed_release(m, n); break;
    case 4: fixed_error(m, n); break;
    default: fixed_steal(m, n); break;
    }
    free(m);
    return 0;
}
