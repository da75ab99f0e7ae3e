/* Inputs held by other ranks: FETCH to their holders, DATA back into the pool's store. */
#include "fetch.h"

#include "core/wire.h"

/*
 * Ask each holder for the parts the jobs just taken need: one FETCH
 * message per holder, each DATA answer one message, which the store then
 * keeps as it came.
 */
int tf_fetch_ask(tf_runtime *rt, tf_sendq *out, tf_fetchvec *f)
{
    int rc = 0;
    for (size_t i = 0; i < f->n && !rc; i++) {
        int to = f->v[i].from;
        if (to < 0)
            continue;
        tf_buf b = tf_sendq_buf(out);
        size_t k = 0;
        for (size_t j = i; j < f->n; j++)
            k += f->v[j].from == to;
        rc = tf_buf_reserve(&b, k * TF_WIRE_FETCH_SIZE);
        for (size_t j = i; j < f->n && !rc; j++) {
            if (f->v[j].from != to)
                continue;
            tf_wire_put_fetch(&b, &(tf_wire_fetch){f->v[j].idx, f->v[j].part});
            f->v[j].from = -1;
        }
        if (!rc)
            rc = tf_link_send(&rt->link, out, &b, to, TF_TAG_FETCH);
        if (rc)
            tf_buf_free(&b);
    }
    f->n = 0;
    return rc;
}

/* A part came (DATA): the message's buffer becomes the store's block. */
int tf_fetch_data(tf_runtime *rt, tf_buf *in, int from)
{
    tf_rd r = tf_rd_make(in->p, in->n);
    tf_wire_data d;
    if (!tf_wire_get_data(&r, &d) || in->n - TF_WIRE_DATA_SIZE != d.len ||
        d.part >= TF_PARTS_MAX) {
        tf_logf(&rt->log, TF_LOG_ERROR, "malformed data from rank %d", from);
        return TF_EPROTO;
    }
    if (d.status != TF_DATA_OK) {
        tf_logf(&rt->log, TF_LOG_WARN,
                "rank %d no longer holds part %u of task index %u", from,
                d.part, d.index);
        tf_pool_arrived(&rt->pool, d.index, d.part, NULL, 0);
        return 0;
    }
    uint8_t *blk = in->p;
    *in = (tf_buf){NULL, 0, 0};
    tf_pool_arrived(&rt->pool, d.index, d.part, blk, d.len);
    return 0;
}
