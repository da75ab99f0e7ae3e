/* libFuzzer harness: the wire decoders, on any bytes as a message. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "taskfarm_task.h"
#include "wire.h"

/*
 * The first byte says which message the rest is: a TASKS/STOLEN batch
 * (decoded as the worker does, tf_wire_scan_batch, then record by record),
 * a REPORT (as rank 0 does, tf_wire_get_rec, a DONE's parts by
 * tf_wire_next_part), a FETCH (FETCH records back to back), a DATA (one
 * record and its bytes, checked as the worker does), or one of the fixed
 * records (STOP, RELEASE, ERROR, STEAL, LOST). Beyond the sanitizers' "no
 * read outside the message", the decoders must keep their promises, and a
 * violation aborts, which libFuzzer records as a crash: the scan's counts
 * are what the record-by-record decode finds; every pointer handed out
 * lies inside the message, and aligned bytes at a multiple of
 * TF_WIRE_ALIGN from its start; no anchor naming "no task" or a part of
 * TF_PARTS_MAX or more is accepted; a message the decoders accept is
 * exactly the bytes its decoded records encode to, but for the padding
 * before aligned bytes (which the decoders skip unread), so nothing is
 * skipped or read twice.
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

/* Inside, and at an aligned offset from the message's start. */
static void aligned(const void *p, size_t len, const uint8_t *m, size_t n)
{
    inside(p, len, m, n);
    if ((size_t)((const uint8_t *)p - m) % TF_WIRE_ALIGN)
        broken("aligned bytes at an unaligned offset");
}

static void same(const tf_buf *b, const uint8_t *m, size_t n)
{
    if (b->n != n || (n && memcmp(b->p, m, n)))
        broken("the decoded records encode to other bytes");
}

/*
 * Take `len` aligned bytes from r as the worker does; the padding skipped
 * on the way is zeroed in `mm` (the message's copy the re-encoding is
 * compared with), as the encoder writes it.
 */
static const void *take_aligned(tf_rd *r, size_t len, uint8_t *mm)
{
    size_t off = r->off, pad = len ? tf_wire_pad(off) : 0;
    const void *p = tf_wire_take_aligned(r, len);
    if (p)
        memset(mm + off, 0, pad);
    return p;
}

static void batch(const uint8_t *m, size_t n)
{
    tf_wire_batch hd;
    size_t ntasks, ndeps;
    if (!tf_wire_scan_batch(m, n, &hd, &ntasks, &ndeps))
        return;
    if (ntasks != hd.ntasks)
        broken("the scan accepted a batch with other than ntasks tasks");
    /* Accepted: decode it the way the worker does, encoding it again. */
    tf_buf b = {0};
    uint8_t *mm = malloc(n ? n : 1);
    /* Room for the message and one record more, should a decode go astray. */
    if (!mm || tf_buf_reserve(&b, n + 256))
        abort();
    if (n)
        memcpy(mm, m, n);
    tf_rd r = tf_rd_make(m, n);
    tf_wire_get_batch(&r, &hd);
    tf_wire_put_batch(&b, &hd);
    size_t k = 0, d = 0;
    for (; k < ntasks; k++) {
        tf_wire_task t;
        tf_wire_get_task(&r, &t);
        const void *in = take_aligned(&r, t.input_len, mm);
        if (!r.ok)
            broken("a task the scan accepted is cut short");
        if (t.input_len)
            aligned(in, t.input_len, m, n);
        else if (in)
            broken("an empty input with bytes");
        tf_wire_put_task(&b, &t);
        tf_wire_put_aligned(&b, in, t.input_len);
        if (b.n != r.off)
            broken("a task read other than it encodes");
        for (uint32_t i = 0; i < t.ndeps; i++, d++) {
            size_t off = r.off + TF_WIRE_DEP_SIZE;
            tf_wire_input x;
            if (!tf_wire_get_input(&r, &x))
                broken("a dependency the scan accepted is cut short");
            if (x.kind == TF_WIRE_ANCHOR) {
                if (x.anchor.index == TF_WIRE_ANCHOR ||
                    x.anchor.part >= TF_PARTS_MAX)
                    broken("an anchor to no task, or to no part, accepted");
                tf_wire_put_anchor_dep(&b, x.anchor.index, x.anchor.part);
            } else if (x.kind == TF_WIRE_REMOTE) {
                if (x.remote.part >= TF_PARTS_MAX)
                    broken("a reference to no part accepted");
                tf_wire_put_remote_dep(&b, &x.remote);
            } else if (x.kind == 0) {
                if (x.len > TF_WIRE_INLINE_MAX || (x.len && !x.buf) ||
                    (!x.len && x.buf))
                    broken("an inline entry read otherwise");
                if (x.len) {
                    aligned(x.buf, x.len, m, n);
                    memset(mm + off, 0, tf_wire_pad(off));
                }
                tf_wire_put_output(&b, x.buf, x.len);
            } else {
                broken("an entry of no kind accepted");
            }
            if (b.n != r.off)
                broken("a dependency entry read other than it encodes");
        }
    }
    /* The frees trail: the worker reads them from the message's end. */
    size_t fl = (size_t)hd.nfree * 4;
    const void *frees = tf_rd_take(&r, fl);
    if (!r.ok || (fl && frees != m + n - fl))
        broken("the frees are not the message's last bytes");
    tf_buf_put(&b, frees, fl);
    if (tf_rd_more(&r) || d != ndeps)
        broken("the scan's counts are not the message's");
    same(&b, mm, n);
    tf_buf_free(&b);
    free(mm);
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
            if (rec.u.done.nparts > TF_PARTS_MAX)
                broken("a DONE with more than TF_PARTS_MAX parts");
            /* Its parts, checked whole, read one by one as rank 0 does. */
            inside(rec.out, 0, m, n);
            const uint8_t *at = rec.out;
            tf_rd pr = tf_rd_make(at, n - (size_t)(at - m));
            tf_wire_put_done(&b, &rec.u.done);
            for (uint16_t i = 0; i < rec.u.done.nparts; i++) {
                tf_wire_part pt;
                const void *bytes;
                if (!tf_wire_next_part(&pr, &pt, &bytes))
                    broken("a part of a checked DONE refused");
                if (pt.where != TF_PART_INLINE && pt.where != TF_PART_HELD &&
                    pt.where != TF_PART_BOTH)
                    broken("a part of no kind accepted");
                if ((pt.where == TF_PART_HELD) != (bytes == NULL))
                    broken("a part's bytes do not follow its kind");
                if (bytes)
                    inside(bytes, pt.len, m, n);
                tf_wire_put_part(&b, &pt);
                tf_buf_put(&b, bytes, bytes ? pt.len : 0);
            }
            if (at + pr.off != m + r.off)
                broken("a DONE's parts end elsewhere than the record");
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

/* FETCH records back to back: accepted exactly when the message is whole ones.
 */
static void fetch(const uint8_t *m, size_t n)
{
    tf_buf b = {0};
    if (tf_buf_reserve(&b, n + 1))
        abort();
    tf_rd r = tf_rd_make(m, n);
    tf_wire_fetch f;
    while (tf_rd_more(&r) && tf_wire_get_fetch(&r, &f))
        tf_wire_put_fetch(&b, &f);
    if (r.ok != (n % TF_WIRE_FETCH_SIZE == 0))
        broken("FETCH records accepted cut short, or refused whole");
    if (r.ok)
        same(&b, m, n);
    tf_buf_free(&b);
}

/*
 * One DATA record and its bytes, checked as the worker does (src/net's
 * wr_data): the length the record says is what follows, the part one a
 * task may set; the bytes start aligned (the message becomes a store
 * block as it is).
 */
static void data_msg(const uint8_t *m, size_t n)
{
    tf_rd r = tf_rd_make(m, n);
    tf_wire_data d;
    if (!tf_wire_get_data(&r, &d) || n - TF_WIRE_DATA_SIZE != d.len ||
        d.part >= TF_PARTS_MAX)
        return;
    if (r.off != TF_WIRE_DATA_SIZE)
        broken("a DATA record read other than its size");
    const void *bytes = tf_rd_take(&r, d.len);
    if (!r.ok || tf_rd_more(&r))
        broken("a DATA message's bytes are not the rest of it");
    if (d.len)
        aligned(bytes, d.len, m, n);
    tf_buf b = {0};
    if (tf_buf_reserve(&b, n + 1))
        abort();
    tf_wire_put_data(&b, &d);
    tf_buf_put(&b, bytes, d.len);
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
FIXED(lost, LOST)

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
    switch (data[0] % 9) {
    case 0:
        batch(m, n);
        break;
    case 1:
        report(m, n);
        break;
    case 2:
        fixed_stop(m, n);
        break;
    case 3:
        fixed_release(m, n);
        break;
    case 4:
        fixed_error(m, n);
        break;
    case 5:
        fixed_steal(m, n);
        break;
    case 6:
        fetch(m, n);
        break;
    case 7:
        data_msg(m, n);
        break;
    default:
        fixed_lost(m, n);
        break;
    }
    free(m);
    return 0;
}
