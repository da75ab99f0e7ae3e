/* The wire format's message-level decoders (a batch validated whole, a report record by record) and the layout table for tests and docs. */
#include "wire.h"

#include "taskfarm_task.h"

bool tf_wire_get_input(tf_rd *rd, tf_wire_input *in)
{
    tf_wire_dep d;
    memset(in, 0, sizeof *in);
    if (!tf_wire_get_dep(rd, &d))
        return false;
    if (d.len == TF_WIRE_ANCHOR) {
        in->kind = TF_WIRE_ANCHOR;
        if (tf_wire_get_anchor(rd, &in->anchor) &&
            (in->anchor.index == TF_WIRE_ANCHOR ||
             in->anchor.part >= TF_PARTS_MAX))
            rd->ok = false;
    } else if (d.len == TF_WIRE_REMOTE) {
        in->kind = TF_WIRE_REMOTE;
        if (tf_wire_get_remote(rd, &in->remote) &&
            in->remote.part >= TF_PARTS_MAX)
            rd->ok = false;
    } else {
        in->len = d.len;
        in->buf = tf_wire_take_aligned(rd, d.len);
    }
    return rd->ok;
}

bool tf_wire_skip_task(tf_rd *rd, size_t *ndeps)
{
    tf_wire_task t;
    if (!tf_wire_get_task(rd, &t))
        return false;
    tf_wire_take_aligned(rd, t.input_len);
    for (uint32_t i = 0; i < t.ndeps && rd->ok; i++) {
        tf_wire_input in;
        tf_wire_get_input(rd, &in);
    }
    *ndeps += t.ndeps;
    return rd->ok;
}

bool tf_wire_scan_batch(const void *p, size_t n, tf_wire_batch *hd,
                        size_t *ntasks, size_t *ndeps)
{
    tf_rd rd = tf_rd_make(p, n);
    *ntasks = *ndeps = 0;
    if (!tf_wire_get_batch(&rd, hd))
        return false;
    while (*ntasks < hd->ntasks && tf_wire_skip_task(&rd, ndeps))
        ++*ntasks;
    tf_rd_take(&rd, (size_t)hd->nfree * 4);
    return rd.ok && rd.off == rd.n;
}

bool tf_wire_get_rec(tf_rd *rd, tf_wire_rec *rec)
{
    rec->kind = tf_rd_peek_u8(rd); /* the record's decoder reads it again */
    rec->out = rec->deps = rec->in = NULL;
    switch (rec->kind) {
    case TF_REC_DONE:
        if (tf_wire_get_done(rd, &rec->u.done)) {
            rec->out = rd->p + rd->off;
            if (rec->u.done.nparts > TF_PARTS_MAX)
                rd->ok = false;
            for (uint32_t i = 0; i < rec->u.done.nparts && rd->ok; i++) {
                tf_wire_part pt;
                const void *bytes;
                tf_wire_next_part(rd, &pt, &bytes);
            }
        }
        break;
    case TF_REC_SUBMIT:
        if (tf_wire_get_submit(rd, &rec->u.submit)) {
            rec->deps = tf_rd_take(rd, (size_t)rec->u.submit.ndeps * 8);
            rec->in = tf_rd_take(rd, rec->u.submit.input_len);
        }
        break;
    case TF_REC_UNRUN:
        tf_wire_get_unrun(rd, &rec->u.unrun);
        break;
    case TF_REC_MOVED:
        tf_wire_get_moved(rd, &rec->u.moved);
        break;
    default:
        rd->ok = false;
    }
    return rd->ok;
}

bool tf_wire_next_part(tf_rd *rd, tf_wire_part *p, const void **bytes)
{
    *bytes = NULL;
    if (!tf_wire_get_part(rd, p))
        return false;
    if (p->where == TF_PART_INLINE || p->where == TF_PART_BOTH)
        *bytes = tf_rd_take(rd, p->len);
    else if (p->where != TF_PART_HELD)
        rd->ok = false;
    return rd->ok;
}

#define TF_WIRE_TEXT_(type, name) ", " #type " " #name
#define TF_WIRE_LAYOUT_(NAME, name, LIST)                                      \
    {#NAME, &(LIST(TF_WIRE_TEXT_))[2], TF_WIRE_##NAME##_SIZE},

static const tf_wire_layout layouts[] = {TF_WIRE_RECORDS(TF_WIRE_LAYOUT_)};

const tf_wire_layout *tf_wire_layouts(size_t *n)
{
    *n = sizeof layouts / sizeof *layouts;
    return layouts;
}
