/* The wire format's message-level decoders (a batch validated whole, a report record by record) and the layout table for tests and docs. */
#include "wire.h"

bool tf_wire_skip_task(tf_rd *rd, size_t *ndeps)
{
    tf_wire_task t;
    if (!tf_wire_get_task(rd, &t))
        return false;
    tf_rd_take(rd, t.input_len);
    for (uint32_t i = 0; i < t.ndeps && rd->ok; i++) {
        const void *buf;
        uint32_t len, anchor;
        tf_wire_get_output(rd, &buf, &len, &anchor);
    }
    *ndeps += t.ndeps;
    return rd->ok;
}

bool tf_wire_scan_batch(const void *p, size_t n, tf_wire_batch *hd,
                        size_t *ntasks, size_t *ndeps)
{
    tf_rd rd = tf_rd_make(p, n);
    *ntasks = *ndeps = 0;
    tf_wire_get_batch(&rd, hd);
    while (tf_rd_more(&rd) && tf_wire_skip_task(&rd, ndeps))
        ++*ntasks;
    return rd.ok;
}

bool tf_wire_get_rec(tf_rd *rd, tf_wire_rec *rec)
{
    rec->kind = tf_rd_peek_u8(rd); /* the record's decoder reads it again */
    rec->out = rec->deps = rec->in = NULL;
    switch (rec->kind) {
    case TF_REC_DONE:
        if (tf_wire_get_done(rd, &rec->u.done))
            rec->out = tf_rd_take(rd, rec->u.done.out_len);
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

#define TF_WIRE_TEXT_(type, name) ", " #type " " #name
#define TF_WIRE_LAYOUT_(NAME, name, LIST)                                      \
    {#NAME, &(LIST(TF_WIRE_TEXT_))[2], TF_WIRE_##NAME##_SIZE},

static const tf_wire_layout layouts[] = {TF_WIRE_RECORDS(TF_WIRE_LAYOUT_)};

const tf_wire_layout *tf_wire_layouts(size_t *n)
{
    *n = sizeof layouts / sizeof *layouts;
    return layouts;
}
