/* Reading trace.json into a timeline, with a hand-written JSON reader. */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "taskfarm_status.h"
#include "timeline.h"
#include "util/trace.h"

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

static tf_rank *rank_of(tf_timeline *T, int pid)
{
    if (pid < 0 || pid > 10000000)
        return NULL;
    if (pid >= T->nrk) {
        int n = T->nrk ? T->nrk : 16;
        while (n <= pid)
            n *= 2;
        tf_rank *nr = realloc(T->rk, (size_t)n * sizeof *nr);
        if (!nr)
            return NULL;
        for (int i = T->nrk; i < n; i++)
            nr[i] = (tf_rank){0, -1, -1, 0, 0, false};
        T->rk = nr;
        T->nrk = n;
    }
    return &T->rk[pid];
}

/* ---- a JSON reader for what src/util/trace.c writes ---- */

typedef struct jp {
    const char *p;
    size_t n, i;
    bool bad;
    size_t err_at;
    char err[160];
    tf_timeline *T;
    bool oom;
} jp;

static bool fail(jp *j, const char *msg)
{
    if (!j->bad) {
        j->bad = true;
        j->err_at = j->i;
        snprintf(j->err, sizeof j->err, "%s",
                 j->i >= j->n ? "unexpected end of file: the trace is "
                                "truncated (was the run killed?)"
                              : msg);
    }
    return false;
}

static void ws(jp *j)
{
    while (j->i < j->n && (j->p[j->i] == ' ' || j->p[j->i] == '\n' ||
                           j->p[j->i] == '\r' || j->p[j->i] == '\t'))
        j->i++;
}

/* Is the next character c? Consumes it if so. */
static bool peek(jp *j, char c)
{
    ws(j);
    if (j->i < j->n && j->p[j->i] == c) {
        j->i++;
        return true;
    }
    return false;
}

static bool expect(jp *j, char c, const char *msg)
{
    return peek(j, c) || fail(j, msg);
}

static bool arena_put(jp *j, const char *s, size_t len)
{
    tf_timeline *T = j->T;
    if (!grow((void **)&T->arena, &T->acap, T->an + len + 1, 1)) {
        j->oom = true;
        return fail(j, "out of memory");
    }
    memcpy(T->arena + T->an, s, len);
    T->an += len;
    return true;
}

static bool put_utf8(jp *j, unsigned long cp)
{
    char b[4];
    size_t n;
    if (cp < 0x80) {
        b[0] = (char)cp, n = 1;
    } else if (cp < 0x800) {
        b[0] = (char)(0xc0 | cp >> 6), b[1] = (char)(0x80 | (cp & 63)), n = 2;
    } else if (cp < 0x10000) {
        b[0] = (char)(0xe0 | cp >> 12), b[1] = (char)(0x80 | (cp >> 6 & 63));
        b[2] = (char)(0x80 | (cp & 63)), n = 3;
    } else {
        b[0] = (char)(0xf0 | cp >> 18), b[1] = (char)(0x80 | (cp >> 12 & 63));
        b[2] = (char)(0x80 | (cp >> 6 & 63)), b[3] = (char)(0x80 | (cp & 63));
        n = 4;
    }
    return arena_put(j, b, n);
}

static bool hex4(jp *j, unsigned long *v)
{
    *v = 0;
    for (int k = 0; k < 4; k++, j->i++) {
        if (j->i >= j->n)
            return fail(j, "");
        char c = j->p[j->i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0)
            return fail(j, "bad \\u escape in a string");
        *v = *v << 4 | (unsigned long)d;
    }
    return true;
}

/*
 * A string, decoded into the arena with a NUL; *off is where it starts.
 * Bytes that are not UTF-8 and lone surrogates become U+FFFD, so the SVG
 * stays well-formed whatever the file holds.
 */
static bool str(jp *j, size_t *off)
{
    if (!expect(j, '"', "expected a string"))
        return false;
    *off = j->T->an;
    for (;;) {
        size_t run = j->i;
        while (run < j->n && j->p[run] != '"' && j->p[run] != '\\' &&
               (unsigned char)j->p[run] >= 0x20 &&
               (unsigned char)j->p[run] < 0x80)
            run++;
        if (!arena_put(j, j->p + j->i, run - j->i))
            return false;
        j->i = run;
        if (j->i >= j->n)
            return fail(j, "");
        unsigned char c = (unsigned char)j->p[j->i];
        if (c == '"') {
            j->i++;
            return arena_put(j, "", 1);
        }
        if (c < 0x20)
            return fail(j, "control character inside a string");
        if (c >= 0x80) {
            size_t len = tf_trace_utf8_len((const unsigned char *)j->p + j->i,
                                           j->n - j->i);
            if (!(len ? arena_put(j, j->p + j->i, len) : put_utf8(j, 0xfffd)))
                return false;
            j->i += len ? len : 1;
            continue;
        }
        if (++j->i >= j->n)
            return fail(j, "");
        char e = j->p[j->i++];
        const char *simple = strchr("\"\\/bfnrt", e);
        if (e && simple) {
            static const char out[] = "\"\\/\b\f\n\r\t";
            if (!arena_put(j, &out[simple - "\"\\/bfnrt"], 1))
                return false;
            continue;
        }
        if (e != 'u') {
            j->i--;
            return fail(j, "bad escape in a string");
        }
        unsigned long cp, lo;
        if (!hex4(j, &cp))
            return false;
        if (cp >= 0xd800 && cp < 0xdc00 && j->i + 1 < j->n &&
            j->p[j->i] == '\\' && j->p[j->i + 1] == 'u') {
            j->i += 2;
            if (!hex4(j, &lo))
                return false;
            cp = lo >= 0xdc00 && lo < 0xe000
                     ? 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00)
                     : 0xfffd;
        } else if (cp >= 0xd800 && cp < 0xe000) {
            cp = 0xfffd;
        }
        if (!put_utf8(j, cp ? cp : 0xfffd))
            return false;
    }
}

static bool num(jp *j, double *v)
{
    ws(j);
    char buf[64];
    size_t k = 0;
    while (j->i < j->n && k < sizeof buf - 1 &&
           strchr("+-0123456789.eE", j->p[j->i]) && j->p[j->i])
        buf[k++] = j->p[j->i++];
    buf[k] = 0;
    char *end;
    *v = strtod(buf, &end);
    if (!k || *end || !isfinite(*v)) {
        j->i -= k;
        return fail(j, "expected a number");
    }
    /* A number cut by the end of the file is a truncation, not a value. */
    if (j->i >= j->n)
        return fail(j, "");
    return true;
}

static bool skip_value(jp *j, int depth)
{
    ws(j);
    if (depth > 64)
        return fail(j, "nested too deeply");
    if (j->i >= j->n)
        return fail(j, "");
    char c = j->p[j->i];
    size_t mark = j->T->an, off;
    if (c == '"') {
        bool ok = str(j, &off);
        j->T->an = mark; /* not kept */
        return ok;
    }
    if (c == '{' || c == '[') {
        char close = c == '{' ? '}' : ']';
        j->i++;
        if (peek(j, close))
            return true;
        do {
            if (c == '{') {
                bool ok = str(j, &off);
                j->T->an = mark;
                if (!ok || !expect(j, ':', "expected ':'"))
                    return false;
            }
            if (!skip_value(j, depth + 1))
                return false;
        } while (peek(j, ','));
        return expect(j, close,
                      c == '{' ? "expected ',' or '}'" : "expected ',' or ']'");
    }
    for (const char *w = "true\0false\0null\0"; *w; w += strlen(w) + 1)
        if (j->n - j->i >= strlen(w) && !memcmp(j->p + j->i, w, strlen(w))) {
            j->i += strlen(w);
            return true;
        }
    double v;
    return num(j, &v);
}

/* The fields of one event that the report uses. */
typedef struct ev {
    size_t name, detail, label, result;
    char ph, scope;
    double pid, tid, ts, dur, slots, attempt, status, cores;
    bool has_pid, has_tid, has_ts, has_dur, has_slots;
} ev;

/* Read the object key into key (cut to fit); the arena is left as it was. */
static bool key(jp *j, char *k, size_t len)
{
    size_t mark = j->T->an, off;
    if (!str(j, &off))
        return false;
    snprintf(k, len, "%s", j->T->arena + off);
    j->T->an = mark;
    return expect(j, ':', "expected ':'");
}

static bool args_obj(jp *j, ev *e)
{
    if (!expect(j, '{', "expected '{' (args)"))
        return false;
    if (peek(j, '}'))
        return true;
    do {
        char k[32];
        if (!key(j, k, sizeof k))
            return false;
        bool ok;
        if (!strcmp(k, "name"))
            ok = str(j, &e->label);
        else if (!strcmp(k, "detail"))
            ok = str(j, &e->detail);
        else if (!strcmp(k, "result"))
            ok = str(j, &e->result);
        else if (!strcmp(k, "slots"))
            ok = num(j, &e->slots), e->has_slots = true;
        else if (!strcmp(k, "attempt"))
            ok = num(j, &e->attempt);
        else if (!strcmp(k, "status"))
            ok = num(j, &e->status);
        else if (!strcmp(k, "cores"))
            ok = num(j, &e->cores);
        else
            ok = skip_value(j, 2);
        if (!ok)
            return false;
    } while (peek(j, ','));
    return expect(j, '}', "expected ',' or '}' (args)");
}

static bool one_char(jp *j, char *c)
{
    size_t mark = j->T->an, off;
    if (!str(j, &off))
        return false;
    *c = j->T->arena[off];
    j->T->an = mark;
    return true;
}

static bool event(jp *j)
{
    size_t at = j->i;
    ev e = {.attempt = 1, .cores = 1};
    if (!expect(j, '{', "expected '{' (an event)"))
        return false;
    if (!peek(j, '}'))
        do {
            char k[32];
            if (!key(j, k, sizeof k))
                return false;
            bool ok;
            if (!strcmp(k, "name"))
                ok = str(j, &e.name);
            else if (!strcmp(k, "ph"))
                ok = one_char(j, &e.ph);
            else if (!strcmp(k, "s"))
                ok = one_char(j, &e.scope);
            else if (!strcmp(k, "pid"))
                ok = num(j, &e.pid), e.has_pid = true;
            else if (!strcmp(k, "tid"))
                ok = num(j, &e.tid), e.has_tid = true;
            else if (!strcmp(k, "ts"))
                ok = num(j, &e.ts), e.has_ts = true;
            else if (!strcmp(k, "dur"))
                ok = num(j, &e.dur), e.has_dur = true;
            else if (!strcmp(k, "args"))
                ok = args_obj(j, &e);
            else
                ok = skip_value(j, 1);
            if (!ok)
                return false;
        } while (peek(j, ','));
    if (!expect(j, '}', "expected ',' or '}' (an event)"))
        return false;
    if (j->i >= j->n)
        return fail(j, "");
    tf_timeline *T = j->T;
    tf_rank *r =
        e.has_pid && e.pid >= 0 && e.pid <= 1e7 && e.pid == floor(e.pid)
            ? rank_of(T, (int)e.pid)
            : NULL;
    if (e.ph != 'X' && e.ph != 'i' && e.ph != 'I' && e.ph != 'M')
        return true; /* not one the report draws */
    if (!r) {
        j->i = at;
        return fail(j,
                    e.has_pid ? "event with a bad pid" : "event without a pid");
    }
    r->seen = true;
    if (e.ph == 'M') {
        if (!strcmp(T->arena + e.name, "process_name")) {
            r->label = e.label;
            if (e.has_slots && e.slots >= 0 && e.slots < 1e6)
                r->slots = (long)e.slots;
        }
        return true;
    }
    if (e.ph == 'X') {
        if (!e.has_tid || !e.has_ts || !e.has_dur || e.tid < 0 || e.tid > 1e6 ||
            e.dur < 0) {
            j->i = at;
            return fail(j, "'X' event without a good tid, ts or dur");
        }
        if (!grow((void **)&T->sp, &T->capsp, T->nsp + 1, sizeof *T->sp)) {
            j->oom = true;
            return fail(j, "out of memory");
        }
        const char *res = e.result ? T->arena + e.result : "done";
        tf_span s = {e.ts,
                     e.dur,
                     (int)e.pid,
                     (int)e.tid,
                     e.cores >= 1 && e.cores < 65536 ? (unsigned)e.cores : 1,
                     (int)e.attempt,
                     (int)e.status,
                     !strcmp(res, "failed")  ? TF_RES_FAILED
                     : !strcmp(res, "retry") ? TF_RES_RETRY
                                             : TF_RES_DONE,
                     e.name};
        T->sp[T->nsp++] = s;
        if (s.tid > r->max_tid)
            r->max_tid = s.tid;
        r->busy += s.dur * s.cores;
        r->attempts++;
        return true;
    }
    if (!e.has_ts) {
        j->i = at;
        return fail(j, "instant event without ts");
    }
    if (!grow((void **)&T->in, &T->capin, T->nin + 1, sizeof *T->in)) {
        j->oom = true;
        return fail(j, "out of memory");
    }
    T->in[T->nin++] =
        (tf_instant){e.ts, (int)e.pid, e.scope == 'g', e.name, e.detail};
    return true;
}

/* The whole document: {"...": ..., "traceEvents": [events], ...}. */
static bool document(jp *j)
{
    bool events = false;
    if (!expect(j, '{', "expected '{': not a trace-event JSON object"))
        return false;
    if (!peek(j, '}'))
        do {
            char k[32];
            if (!key(j, k, sizeof k))
                return false;
            if (strcmp(k, "traceEvents")) {
                if (!skip_value(j, 1))
                    return false;
                continue;
            }
            events = true;
            if (!expect(j, '[', "expected '[' after \"traceEvents\""))
                return false;
            if (peek(j, ']'))
                continue;
            do
                if (!event(j))
                    return false;
            while (peek(j, ','));
            if (!expect(j, ']', "expected ',' or ']' after an event"))
                return false;
        } while (peek(j, ','));
    if (!expect(j, '}', "expected ',' or '}'"))
        return false;
    ws(j);
    if (j->i < j->n)
        return fail(j, "data after the end of the JSON object");
    if (!events) {
        j->i = 0;
        return fail(j, "no \"traceEvents\" array: not a trace-event file");
    }
    return true;
}

static int cmp_span(const void *a, const void *b)
{
    const tf_span *x = a, *y = b;
    if (x->pid != y->pid)
        return x->pid < y->pid ? -1 : 1;
    if (x->tid != y->tid)
        return x->tid < y->tid ? -1 : 1;
    return (x->ts > y->ts) - (x->ts < y->ts);
}

static int cmp_instant(const void *a, const void *b)
{
    const tf_instant *x = a, *y = b;
    if (x->pid != y->pid)
        return x->pid < y->pid ? -1 : 1;
    return (x->ts > y->ts) - (x->ts < y->ts);
}

void tf_timeline_free(tf_timeline *T)
{
    free(T->sp);
    free(T->in);
    free(T->rk);
    free(T->arena);
    memset(T, 0, sizeof *T);
}

int tf_timeline_read(const char *text, size_t len, tf_timeline *T,
                     tf_timeline_err *err)
{
    jp j = {.p = text, .n = len, .T = T};
    bool ok = arena_put(&j, "", 1) && document(&j); /* offset 0: "" */
    if (!ok) {
        size_t line = 1;
        for (size_t i = 0; i < j.err_at && i < len; i++)
            line += text[i] == '\n';
        err->byte = j.err_at;
        err->line = line;
        snprintf(err->msg, sizeof err->msg, "%s", j.err);
        tf_timeline_free(T);
        return j.oom ? TF_ENOMEM : TF_EINVAL;
    }
    return 0;
}

void tf_timeline_sort(tf_timeline *T)
{
    qsort(T->sp, T->nsp, sizeof *T->sp, cmp_span);
    qsort(T->in, T->nin, sizeof *T->in, cmp_instant);
}
