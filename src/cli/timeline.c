/* Reading trace.json into a timeline, one event at a time with jansson. */
#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "taskfarm_status.h"
#include "timeline.h"

/*
 * Why jansson, and why event by event. `taskfarm report` of a 1M-task
 * trace (182 MB, bench/trace) on this 2-core VM, three runs each,
 * alternated: the hand-written parser this replaced 0.9-1.0 s and 251 MB
 * peak RSS; jansson event by event 3.0-3.3 s, 246 MB; cJSON event by event
 * 1.1-1.3 s, 246 MB; the whole document as one tree, jansson 6.2-6.6 s and
 * 2.7 GB, cJSON 2.4-2.6 s and 2.1 GB. So the document's frame (its braces,
 * commas and keys) is walked here and each event goes to the library
 * alone, then is freed: memory stays what the spans need plus the mapped
 * file. cJSON is faster, but it has no error messages, its error offset
 * for a cut-off event is where the last value began, not the end of the
 * file, and it lets bytes that are not UTF-8 through into the SVG: telling
 * a truncated trace, saying what is wrong and keeping the SVG well-formed
 * would have needed a scanner and a UTF-8 repair of our own again. jansson
 * says what and where, tells a premature end by its error code, and
 * refuses malformed UTF-8, for about 2 us more per event.
 */
/* The text being read and where the reading is. */
typedef struct reader {
    const char *p;
    size_t n, i;
    tf_timeline *T;
    tf_timeline_err *err;
    int rc; /* the first failure, kept */
} reader;

#define TRUNCATED                                                              \
    "unexpected end of file: the trace is truncated (was the run killed?)"

/* Record the first failure, at byte `at`; returns r->rc. */
static int fail_at(reader *r, size_t at, const char *msg)
{
    if (!r->rc) {
        r->rc = TF_EINVAL;
        r->err->byte = at < r->n ? at : r->n;
        snprintf(r->err->msg, sizeof r->err->msg, "%s", msg);
    }
    return r->rc;
}

static int truncated(reader *r)
{
    return fail_at(r, r->n, TRUNCATED);
}

static int out_of_memory(reader *r)
{
    if (!r->rc)
        r->rc = TF_ENOMEM;
    return r->rc;
}

static bool grow(void **p, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return true;
    size_t ncap = *cap ? *cap : 64;
    while (ncap < need)
        ncap *= 2;
    void *np = realloc(*p, ncap * size);
    if (!np)
        return false;
    *p = np;
    *cap = ncap;
    return true;
}

/* Copy a string the chart keeps into the arena; *off is where it starts. */
static int keep_str(reader *r, const json_t *s, size_t *off)
{
    tf_timeline *T = r->T;
    size_t len = s ? json_string_length(s) : 0;
    if (!grow((void **)&T->arena, &T->acap, T->an + len + 1, 1))
        return out_of_memory(r);
    *off = T->an;
    if (len)
        memcpy(T->arena + T->an, json_string_value(s), len);
    T->arena[T->an + len] = 0;
    T->an += len + 1;
    return 0;
}

/* The rank's entry, made on first sight; NULL: out of memory. */
static tf_timeline_rank *rank_of(tf_timeline *T, int pid)
{
    if (pid >= T->nrk) {
        int n = T->nrk ? T->nrk : 16;
        while (n <= pid)
            n *= 2;
        tf_timeline_rank *nr = realloc(T->rk, (size_t)n * sizeof *nr);
        if (!nr)
            return NULL;
        for (int i = T->nrk; i < n; i++)
            nr[i] = (tf_timeline_rank){0, -1, -1, 0, 0, false};
        T->rk = nr;
        T->nrk = n;
    }
    return &T->rk[pid];
}

/* ---- one event ---- */

/* The fields of one event that the report uses; strings stay in the tree. */
typedef struct ev {
    const json_t *name, *ph, *scope;
    json_t *args;
    const json_t *label, *detail, *result; /* args.name, .detail, .result */
    double pid, tid, ts, dur, slots, attempt, status, cores;
    bool has_pid, has_tid, has_ts, has_dur, has_slots;
} ev;

/*
 * Take v as a string or a number: NULL when it is one, else what it
 * should have been, for the message.
 */
static const char *as_str(const json_t *v, const json_t **out)
{
    *out = v;
    return json_is_string(v) ? NULL : "a string";
}

static const char *as_num(const json_t *v, double *out, bool *has)
{
    if (!json_is_number(v))
        return "a number";
    *out = json_number_value(v);
    if (has)
        *has = true;
    return NULL;
}

/* One member of the event itself: as_str and as_num say. */
static const char *member(ev *e, const char *k, json_t *v)
{
    if (!strcmp(k, "name"))
        return as_str(v, &e->name);
    if (!strcmp(k, "ph"))
        return as_str(v, &e->ph);
    if (!strcmp(k, "s"))
        return as_str(v, &e->scope);
    if (!strcmp(k, "pid"))
        return as_num(v, &e->pid, &e->has_pid);
    if (!strcmp(k, "tid"))
        return as_num(v, &e->tid, &e->has_tid);
    if (!strcmp(k, "ts"))
        return as_num(v, &e->ts, &e->has_ts);
    if (!strcmp(k, "dur"))
        return as_num(v, &e->dur, &e->has_dur);
    if (!strcmp(k, "args")) {
        e->args = v;
        return json_is_object(v) ? NULL : "an object";
    }
    return NULL; /* not one the report uses */
}

/* One member of its args. */
static const char *arg(ev *e, const char *k, const json_t *v)
{
    if (!strcmp(k, "name"))
        return as_str(v, &e->label);
    if (!strcmp(k, "detail"))
        return as_str(v, &e->detail);
    if (!strcmp(k, "result"))
        return as_str(v, &e->result);
    if (!strcmp(k, "slots"))
        return as_num(v, &e->slots, &e->has_slots);
    if (!strcmp(k, "attempt"))
        return as_num(v, &e->attempt, NULL);
    if (!strcmp(k, "status"))
        return as_num(v, &e->status, NULL);
    if (!strcmp(k, "cores"))
        return as_num(v, &e->cores, NULL);
    return NULL;
}

/* Fill *e from the event object o, which began at byte `at`. */
static int fields(reader *r, json_t *o, size_t at, ev *e)
{
    const char *k, *want = NULL, *in = "";
    json_t *v;
    json_object_foreach(o, k, v)
    {
        if ((want = member(e, k, v)))
            break;
    }
    if (!want && e->args) {
        in = "args.";
        json_object_foreach(e->args, k, v)
        {
            if ((want = arg(e, k, v)))
                break;
        }
    }
    if (!want)
        return 0;
    char msg[96];
    snprintf(msg, sizeof msg, "an event's %s\"%.32s\" is not %s", in, k, want);
    return fail_at(r, at, msg);
}

/* The first letter of a string member, 0 when it is absent or empty. */
static char letter(const json_t *s)
{
    return s ? json_string_value(s)[0] : 0;
}

/* An "X" event: one attempt. */
static int add_span(reader *r, const ev *e, size_t at, tf_timeline_rank *rk)
{
    tf_timeline *T = r->T;
    if (!e->has_tid || !e->has_ts || !e->has_dur || e->tid < 0 ||
        e->tid > 1e6 || e->dur < 0)
        return fail_at(r, at, "'X' event without a good tid, ts or dur");
    if (!grow((void **)&T->sp, &T->capsp, T->nsp + 1, sizeof *T->sp))
        return out_of_memory(r);
    const char *res = e->result ? json_string_value(e->result) : "done";
    tf_timeline_span s = {e->ts,
                 e->dur,
                 (int)e->pid,
                 (int)e->tid,
                 e->cores >= 1 && e->cores < 65536 ? (unsigned)e->cores : 1,
                 (int)e->attempt,
                 (int)e->status,
                 !strcmp(res, "failed")        ? TF_RES_FAILED
                 : !strcmp(res, "retry")       ? TF_RES_RETRY
                 : !strcmp(res, "interrupted") ? TF_RES_INTERRUPTED
                                               : TF_RES_DONE,
                 0};
    if (keep_str(r, e->name, &s.name))
        return r->rc;
    T->sp[T->nsp++] = s;
    if (s.tid > rk->max_tid)
        rk->max_tid = s.tid;
    rk->busy += s.dur * s.cores;
    rk->attempts++;
    return 0;
}

/* An "i" or "I" event: a mark on its rank, or a line across the chart. */
static int add_instant(reader *r, const ev *e, size_t at)
{
    tf_timeline *T = r->T;
    if (!e->has_ts)
        return fail_at(r, at, "instant event without ts");
    if (!grow((void **)&T->in, &T->capin, T->nin + 1, sizeof *T->in))
        return out_of_memory(r);
    tf_timeline_instant in = {e->ts, (int)e->pid, letter(e->scope) == 'g', 0, 0};
    if (keep_str(r, e->name, &in.name) ||
        (e->detail && keep_str(r, e->detail, &in.detail)))
        return r->rc;
    T->in[T->nin++] = in;
    return 0;
}

/* One element of traceEvents, which began at byte `at`. */
static int event(reader *r, json_t *o, size_t at)
{
    if (!json_is_object(o))
        return fail_at(r, at, "an event is not a JSON object");
    ev e = {.attempt = 1, .cores = 1};
    if (fields(r, o, at, &e))
        return r->rc;
    char ph = letter(e.ph);
    if (ph != 'X' && ph != 'i' && ph != 'I' && ph != 'M')
        return 0; /* not one the report draws */
    if (!e.has_pid || e.pid < 0 || e.pid > 1e7 || e.pid != floor(e.pid))
        return fail_at(
            r, at, e.has_pid ? "event with a bad pid" : "event without a pid");
    tf_timeline_rank *rk = rank_of(r->T, (int)e.pid);
    if (!rk)
        return out_of_memory(r);
    rk->seen = true;
    if (ph == 'X')
        return add_span(r, &e, at, rk);
    if (ph != 'M')
        return add_instant(r, &e, at);
    if (e.name && !strcmp(json_string_value(e.name), "process_name")) {
        if (e.label && keep_str(r, e.label, &rk->label))
            return r->rc;
        if (e.has_slots && e.slots >= 0 && e.slots < 1e6)
            rk->slots = (long)e.slots;
    }
    return 0;
}

/* ---- the document: {"...": ..., "traceEvents": [events], ...} ---- */

static void skip_ws(reader *r)
{
    while (r->i < r->n && (r->p[r->i] == ' ' || r->p[r->i] == '\n' ||
                           r->p[r->i] == '\r' || r->p[r->i] == '\t'))
        r->i++;
}

/* Is the next character c? Consumes it if so. */
static bool next_is(reader *r, char c)
{
    skip_ws(r);
    if (r->i < r->n && r->p[r->i] == c) {
        r->i++;
        return true;
    }
    return false;
}

static int expect(reader *r, char c, const char *msg)
{
    if (next_is(r, c))
        return 0;
    return r->i < r->n ? fail_at(r, r->i, msg) : truncated(r);
}

/*
 * Did jansson fail because the text ran out? It says so itself
 * (premature end of input) when a value or a string is open. A token cut
 * short ("tr", "1e", "\u12", half a UTF-8 sequence) it reports as invalid,
 * so an error that reached the last byte counts too, unless that byte is a
 * whole token on its own: "}", "]", ",", ":" (a stray letter there is
 * called a truncation; the file is damaged at its end either way).
 */
static bool ran_out(const reader *r, const json_error_t *je, size_t left)
{
    if (left == 0 || json_error_code(je) == json_error_premature_end_of_input)
        return true;
    return (size_t)je->position >= left && !strchr("}],:", r->p[r->n - 1]);
}

/*
 * The one JSON value at r->i, parsed by jansson and owned by the caller;
 * NULL after recording why. JSON_DISABLE_EOF_CHECK stops it after the
 * value and tells in error.position how far it read.
 */
static json_t *value(reader *r)
{
    skip_ws(r);
    json_error_t je;
    size_t left = r->n - r->i;
    json_t *v = json_loadb(r->p + r->i, left,
                           JSON_DISABLE_EOF_CHECK | JSON_DECODE_ANY, &je);
    if (!v) {
        if (json_error_code(&je) == json_error_out_of_memory)
            out_of_memory(r);
        else if (ran_out(r, &je, left))
            truncated(r);
        else
            fail_at(r, r->i + (size_t)je.position, je.text);
        return NULL;
    }
    r->i += (size_t)je.position;
    return v;
}

/* The elements of traceEvents, each parsed, read and freed on its own. */
static int events(reader *r)
{
    if (expect(r, '[', "expected '[' after \"traceEvents\""))
        return r->rc;
    if (next_is(r, ']'))
        return 0;
    do {
        skip_ws(r);
        size_t at = r->i;
        json_t *v = value(r);
        if (!v)
            return r->rc;
        int rc = event(r, v, at);
        json_decref(v);
        if (rc)
            return rc;
    } while (next_is(r, ','));
    return expect(r, ']', "expected ',' or ']' after an event");
}

/* One "key": value of the document; *had_events set at "traceEvents". */
static int document_member(reader *r, bool *had_events)
{
    skip_ws(r);
    size_t at = r->i;
    json_t *k = value(r);
    if (!k)
        return r->rc;
    bool is_key = json_is_string(k);
    bool is_events = is_key && !strcmp(json_string_value(k), "traceEvents");
    json_decref(k);
    if (!is_key)
        return fail_at(r, at, "expected a string (a key)");
    if (expect(r, ':', "expected ':'"))
        return r->rc;
    if (is_events) {
        *had_events = true;
        return events(r);
    }
    json_t *v = value(r); /* not one the report uses */
    json_decref(v);
    return r->rc;
}

static int document(reader *r)
{
    bool had_events = false;
    if (expect(r, '{', "expected '{': not a trace-event JSON object"))
        return r->rc;
    if (!next_is(r, '}'))
        do
            if (document_member(r, &had_events))
                return r->rc;
        while (next_is(r, ','));
    if (expect(r, '}', "expected ',' or '}'"))
        return r->rc;
    skip_ws(r);
    if (r->i < r->n)
        return fail_at(r, r->i, "data after the end of the JSON object");
    if (!had_events)
        return fail_at(r, 0,
                       "no \"traceEvents\" array: not a trace-event file");
    return 0;
}

/* ---- the timeline ---- */

int tf_timeline_read(const char *text, size_t len, tf_timeline *T,
                     tf_timeline_err *err)
{
    reader r = {text, len, 0, T, err, 0};
    size_t empty;
    if (keep_str(&r, NULL, &empty) == 0) /* offset 0: "" */
        document(&r);
    if (!r.rc)
        return 0;
    /* Lines only now: counting them as we go would cost every read. */
    if (r.rc == TF_EINVAL) {
        err->line = 1;
        for (size_t i = 0; i < err->byte; i++)
            err->line += text[i] == '\n';
    }
    tf_timeline_free(T);
    return r.rc;
}

static int cmp_span(const void *a, const void *b)
{
    const tf_timeline_span *x = a, *y = b;
    if (x->pid != y->pid)
        return x->pid < y->pid ? -1 : 1;
    if (x->tid != y->tid)
        return x->tid < y->tid ? -1 : 1;
    return (x->ts > y->ts) - (x->ts < y->ts);
}

static int cmp_instant(const void *a, const void *b)
{
    const tf_timeline_instant *x = a, *y = b;
    if (x->pid != y->pid)
        return x->pid < y->pid ? -1 : 1;
    return (x->ts > y->ts) - (x->ts < y->ts);
}

void tf_timeline_sort(tf_timeline *T)
{
    qsort(T->sp, T->nsp, sizeof *T->sp, cmp_span);
    qsort(T->in, T->nin, sizeof *T->in, cmp_instant);
}

void tf_timeline_free(tf_timeline *T)
{
    free(T->sp);
    free(T->in);
    free(T->rk);
    free(T->arena);
    memset(T, 0, sizeof *T);
}
