/* Inputs held by other ranks: asking their holders (FETCH) and taking the parts that come (DATA), on workers and on rank 0 when it runs tasks. */
#ifndef TF_NET_FETCH_H
#define TF_NET_FETCH_H

#include "runtime.h"

/*
 * Ask each holder in f for the parts the jobs just pushed need: one FETCH
 * message per holder; f is emptied. Errors: TF_ENOMEM, TF_EMPI.
 */
int tf_fetch_ask(tf_runtime *rt, tf_sendq *out, tf_fetchvec *f);

/*
 * A DATA message from `from` in *in: its buffer becomes the store's block
 * (*in is taken over), or the part will not come. Errors: TF_EPROTO.
 */
int tf_fetch_data(tf_runtime *rt, tf_buf *in, int from);

#endif
