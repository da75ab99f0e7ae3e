/* taskfarm report: read OUTDIR/trace.json, write an SVG Gantt chart and utilisation plot, print a summary. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "util/trace.h"

/* ---- what the trace holds ---- */

enum { RES_DONE = 0, RES_RETRY, RES_FAILED }; /* worst last */

typedef struct span {
    double ts, dur; /* microseconds */
    int pid, tid;
    unsigned cores;
    int attempt, status;
    uint8_t res;
    size_t name; /* offset in the arena */
} span;

typedef struct instant {
    double ts;
    int pid;
    bool global;
    size_t name, detail; /* arena offsets; detail 0: none */
} instant;

typedef struct rank_info {
    size_t label; /* arena offset, 0: none */
    long slots;   /* from its process_name event, -1 if not given */
    int max_tid;  /* highest slot a span used, -1 if none */
    double busy;  /* microseconds x cores */
    size_t attempts;
    bool seen;
    int row0, nrows; /* layout */
} rank_info;

typedef struct trace {
    span *sp;
    size_t nsp, capsp;
    instant *in;
    size_t nin, capin;
    rank_info *rk;
    int nrk;     /* ranks 0 .. nrk-1 have entries */
    char *arena; /* NUL-terminated strings; offset 0 is "" */
    size_t an, acap;
} trace;

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

static rank_info *rank_of(trace *T, int pid)
{
    if (pid < 0 || pid > 10000000)
        return NULL;
    if (pid >= T->nrk) {
        int n = T->nrk ? T->nrk : 16;
        while (n <= pid)
            n *= 2;
        rank_info *nr = realloc(T->rk, (size_t)n * sizeof *nr);
        if (!nr)
            return NULL;
        for (int i = T->nrk; i < n; i++)
            nr[i] = (rank_info){0, -1, -1, 0, 0, false, 0, 0};
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
    trace *T;
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
    trace *T = j->T;
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
    trace *T = j->T;
    rank_info *r =
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
        span s = {e.ts,
                  e.dur,
                  (int)e.pid,
                  (int)e.tid,
                  e.cores >= 1 && e.cores < 65536 ? (unsigned)e.cores : 1,
                  (int)e.attempt,
                  (int)e.status,
                  !strcmp(res, "failed")  ? RES_FAILED
                  : !strcmp(res, "retry") ? RES_RETRY
                                          : RES_DONE,
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
        (instant){e.ts, (int)e.pid, e.scope == 'g', e.name, e.detail};
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

/* ---- drawing ---- */

/* Layout of the SVG, in pixels. */
enum { LEFT = 190, PLOT_W = 1000, RIGHT = 30, TOP = 56, UTIL_H = 160 };
#define SVG_W (LEFT + PLOT_W + RIGHT)
/* Spans drawn one rectangle each up to this many; beyond, merged. */
#define DETAIL_MAX 10000
/* Rectangles in all when merging, about 100 bytes each. */
#define RECT_BUDGET 40000
#define INSTANT_MAX 5000

/* Text for an SVG element: XML-escaped; control characters become '?'. */
static void xml(FILE *f, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '&')
            fputs("&amp;", f);
        else if (c == '<')
            fputs("&lt;", f);
        else if (c == '>')
            fputs("&gt;", f);
        else if (c == '"')
            fputs("&quot;", f);
        else if (c < 0x20 && c != '\t' && c != '\n')
            fputc('?', f);
        else
            fputc(c, f);
    }
}

/* A duration in microseconds as people read it. */
static void fmt_dur(double us, char *buf, size_t len)
{
    if (us < 1000)
        snprintf(buf, len, "%.0f us", us);
    else if (us < 1e6)
        snprintf(buf, len, "%.3g ms", us / 1e3);
    else if (us < 600e6)
        snprintf(buf, len, "%.4g s", us / 1e6);
    else
        snprintf(buf, len, "%ld:%02ld:%02ld", (long)(us / 3600e6),
                 (long)(us / 60e6) % 60, (long)(us / 1e6) % 60);
}

/* A tick label: the time t in the unit of the tick step. */
static void fmt_tick(double t, double step, char *buf, size_t len)
{
    if (step >= 60e6)
        snprintf(buf, len, "%ld:%02ld:%02ld", (long)(t / 3600e6),
                 (long)(t / 60e6) % 60, (long)(t / 1e6 + 0.5) % 60);
    else if (step >= 1e5)
        snprintf(buf, len, "%g s", round(t / 1e5) / 10);
    else if (step >= 100)
        snprintf(buf, len, "%g ms", round(t / 100) / 10);
    else
        snprintf(buf, len, "%g us", round(t * 10) / 10);
}

static double nice_step(double span_us)
{
    double raw = span_us / 8, mag = pow(10, floor(log10(raw)));
    static const double m[] = {1, 2, 5, 10};
    for (int i = 0; i < 4; i++)
        if (m[i] * mag >= raw)
            return m[i] * mag;
    return 10 * mag;
}

/* A time axis along y with ticks and labels; grid lines up to y_top. */
static void axis(FILE *f, double makespan, double y, double y_top)
{
    double step = nice_step(makespan);
    fprintf(f,
            "<g class=\"ax\"><line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" "
            "y2=\"%.1f\"/>\n",
            LEFT, y, LEFT + PLOT_W, y);
    for (double t = 0; t <= makespan * 1.0001; t += step) {
        double x = LEFT + t / makespan * PLOT_W;
        char lab[32];
        fmt_tick(t, step, lab, sizeof lab);
        fprintf(f,
                "<line class=\"grid\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" "
                "y2=\"%.1f\"/><line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" "
                "y2=\"%.1f\"/><text x=\"%.1f\" y=\"%.1f\" "
                "text-anchor=\"middle\">%s</text>\n",
                x, y_top, x, y, x, y, x, y + 4, x, y + 16, lab);
    }
    fputs("</g>\n", f);
}

static const char *const res_class[] = {"d", "r", "f"};
static const char *const res_name[] = {"done", "retry", "failed"};

static int cmp_span(const void *a, const void *b)
{
    const span *x = a, *y = b;
    if (x->pid != y->pid)
        return x->pid < y->pid ? -1 : 1;
    if (x->tid != y->tid)
        return x->tid < y->tid ? -1 : 1;
    return (x->ts > y->ts) - (x->ts < y->ts);
}

static int cmp_instant(const void *a, const void *b)
{
    const instant *x = a, *y = b;
    if (x->pid != y->pid)
        return x->pid < y->pid ? -1 : 1;
    return (x->ts > y->ts) - (x->ts < y->ts);
}

/* Colour of an instant event's mark, by its name. */
static const char *mark_colour(const char *name)
{
    return !strcmp(name, "retry")        ? "#f57c00"
           : !strcmp(name, "failed")     ? "#c62828"
           : !strcmp(name, "steal")      ? "#7b1fa2"
           : !strcmp(name, "checkpoint") ? "#1565c0"
                                         : "#212121";
}

/* Attempts of one row drawn as one rectangle. */
typedef struct group {
    const span *first;
    size_t n, count[3];  /* attempts, and of each result */
    double t0, t1, busy; /* microseconds */
} group;

/* The colour of a merged group is its most common result. */
static int group_result(const group *g)
{
    if (g->n == 1)
        return g->first->res;
    int best = RES_DONE;
    for (int r = RES_RETRY; r <= RES_FAILED; r++)
        if (g->count[r] > g->count[best])
            best = r;
    return best;
}

static void rect(FILE *f, const trace *T, const group *g, double x0, double x1,
                 double y, double h)
{
    int res = group_result(g);
    /* A hair of space after each, so that back-to-back tasks stay apart. */
    double w = x1 - x0 > 1.5 ? x1 - x0 - 0.5 : x1 - x0 < 0.3 ? 0.3 : x1 - x0;
    fprintf(f,
            "<rect class=\"%s\" x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" "
            "height=\"%.2f\"",
            res_class[res], x0, y, w, h);
    double frac = g->t1 > g->t0 ? g->busy / (g->t1 - g->t0) : 1;
    /* Merged: as opaque as the tasks kept the slot busy. */
    if (g->n > 1 && frac < 1)
        fprintf(f, " fill-opacity=\"%.2f\"", frac < 0.15 ? 0.15 : frac);
    fputs("><title>", f);
    char d[32], a[32], b[32];
    const span *s = g->first;
    if (g->n == 1) {
        fmt_dur(s->dur, d, sizeof d);
        fmt_dur(s->ts, a, sizeof a);
        xml(f, T->arena + s->name);
        fprintf(f, ": attempt %d, %s (status %d), %s from %s", s->attempt,
                res_name[res], s->status, d, a);
        if (s->cores > 1)
            fprintf(f, ", %u cores", s->cores);
    } else {
        fmt_dur(g->t0, a, sizeof a);
        fmt_dur(g->t1, b, sizeof b);
        fprintf(f,
                "%zu attempts from %s to %s, %.0f%% busy: %zu done, %zu "
                "retried, %zu failed",
                g->n, a, b, 100 * frac, g->count[RES_DONE], g->count[RES_RETRY],
                g->count[RES_FAILED]);
    }
    fputs("</title></rect>\n", f);
}

typedef struct layout {
    double makespan; /* microseconds */
    int rows;
    double row_h;
    double total_slots;
} layout;

/* Rows: one per slot of each rank that has slots or spans, else one. */
static void plan_rows(trace *T, layout *L)
{
    int row = 0;
    for (int r = 0; r < T->nrk; r++) {
        rank_info *ri = &T->rk[r];
        if (!ri->seen)
            continue;
        long n = ri->slots > ri->max_tid ? ri->slots : ri->max_tid + 1;
        L->total_slots += (double)n;
        ri->row0 = row;
        ri->nrows = n > 0 ? (int)n : 1;
        row += ri->nrows;
    }
    L->rows = row;
    /* At most about 2400 px of rows; past 9600 rows they get thinner than
       a pixel, which browsers draw blended. */
    L->row_h = row ? 2400.0 / row : 16;
    if (L->row_h > 16)
        L->row_h = 16;
    if (L->row_h < 0.25)
        L->row_h = 0.25;
}

/* A background band and a label per rank. */
static void bands(FILE *f, trace *T, const layout *L)
{
    double h = L->row_h;
    for (int r = 0; r < T->nrk; r++) {
        rank_info *ri = &T->rk[r];
        if (!ri->seen)
            continue;
        double y = TOP + ri->row0 * h, bh = ri->nrows * h;
        fprintf(f,
                "<rect class=\"%s\" x=\"%d\" y=\"%.2f\" width=\"%d\" "
                "height=\"%.2f\"/>\n",
                r % 2 ? "b1" : "b0", LEFT, y, PLOT_W, bh);
        if (bh >= 9) {
            fprintf(f, "<text class=\"lab\" x=\"%d\" y=\"%.2f\">", LEFT - 6,
                    y + (ri->nrows > 1 && h >= 10 ? h : bh) / 2 + 4);
            if (ri->label)
                xml(f, T->arena + ri->label);
            else
                fprintf(f, "rank %d", r);
            fputs("</text>\n", f);
        }
        for (int s = 1; h >= 10 && s < ri->nrows; s++)
            fprintf(f,
                    "<text class=\"slot\" x=\"%d\" y=\"%.2f\">slot "
                    "%d</text>\n",
                    LEFT - 6, y + s * h + h / 2 + 3.5, s);
    }
}

/*
 * Tasks: one rectangle per attempt, on its rank's row of its lowest slot
 * and as many rows tall as it had cores (its slots need not have been
 * adjacent: then it covers a neighbour's row). Past DETAIL_MAX attempts,
 * the attempts of a row closer than a gap that keeps each row under its
 * share of RECT_BUDGET are merged into one rectangle, one row tall.
 */
static void tasks(FILE *f, trace *T, const layout *L)
{
    double h = L->row_h, gap = h >= 6 ? 1 : 0;
    double scale = PLOT_W / L->makespan;
    /* Tasks: one rectangle each, or merged below a pixel budget per row. */
    size_t tracks = 0;
    for (size_t i = 0; i < T->nsp; i++)
        tracks += i == 0 || T->sp[i].pid != T->sp[i - 1].pid ||
                  T->sp[i].tid != T->sp[i - 1].tid;
    double min_gap = -1; /* -1: never merge */
    if (T->nsp > DETAIL_MAX) {
        double per_row = (double)RECT_BUDGET / (tracks ? tracks : 1);
        min_gap = per_row < 2 ? PLOT_W / 2.0 : PLOT_W / per_row;
        if (min_gap < 1)
            min_gap = 1;
    }
    fputs("<g>\n", f);
    for (size_t i = 0; i < T->nsp;) {
        const span *s = &T->sp[i];
        const rank_info *ri = &T->rk[s->pid];
        double y = TOP + (ri->row0 + s->tid) * h;
        double x0 = LEFT + s->ts * scale, x1 = x0 + s->dur * scale;
        group g = {s, 1, {0}, s->ts, s->ts + s->dur, s->dur};
        g.count[s->res]++;
        size_t k = i + 1;
        while (k < T->nsp && T->sp[k].pid == s->pid && T->sp[k].tid == s->tid &&
               LEFT + T->sp[k].ts * scale - x1 < min_gap) {
            const span *o = &T->sp[k++];
            double e = o->ts + o->dur;
            if (e > g.t1)
                g.t1 = e, x1 = LEFT + e * scale;
            g.busy += o->dur;
            g.n++;
            g.count[o->res]++;
        }
        double rows = 1;
        if (g.n == 1 && s->cores > 1)
            rows = (int)s->cores < ri->nrows - s->tid ? (double)s->cores
                                                      : ri->nrows - s->tid;
        rect(f, T, &g, x0, x1, y + gap / 2, rows * h - gap);
        i = k;
    }
    fputs("</g>\n", f);
}

/* Instant events: per-rank marks on top of its rows, global ones as lines. */
static void instants(FILE *f, trace *T, const layout *L)
{
    double scale = PLOT_W / L->makespan, bottom = TOP + L->rows * L->row_h;
    size_t drawn = 0, hidden = 0;
    double last_x = -1e9;
    int last_pid = -1;
    size_t last_name = (size_t)-1;
    for (size_t i = 0; i < T->nin; i++) {
        const instant *e = &T->in[i];
        const rank_info *ri = &T->rk[e->pid];
        double x = LEFT + (e->ts < 0 ? 0 : e->ts) * scale;
        const char *name = T->arena + e->name;
        /* Marks of one kind closer than 2 px on one rank would overlap. */
        if (!e->global && ((e->pid == last_pid && x - last_x < 2 &&
                            !strcmp(name, T->arena + last_name)) ||
                           drawn >= INSTANT_MAX)) {
            hidden++;
            continue;
        }
        drawn++;
        char t[32];
        fmt_dur(e->ts, t, sizeof t);
        if (e->global) {
            fprintf(f,
                    "<line class=\"gl\" x1=\"%.2f\" y1=\"%d\" x2=\"%.2f\" "
                    "y2=\"%.2f\" stroke=\"%s\"><title>",
                    x, TOP - 6, x, bottom, mark_colour(name));
        } else {
            last_x = x, last_pid = e->pid, last_name = e->name;
            double y = TOP + ri->row0 * L->row_h + 6.5; /* inside its band */
            fprintf(f,
                    "<path class=\"mk\" d=\"M%.2f %.2fl-3.5 -6h7z\" "
                    "fill=\"%s\"><title>",
                    x, y, mark_colour(name));
        }
        xml(f, name);
        fprintf(f, " at %s", t);
        if (e->detail) {
            fputs(": ", f);
            xml(f, T->arena + e->detail);
        }
        fputs(e->global ? "</title></line>\n" : "</title></path>\n", f);
    }
    if (hidden)
        fprintf(f,
                "<text class=\"note\" x=\"%d\" y=\"%d\">%zu close or "
                "excess event marks not drawn</text>\n",
                LEFT + PLOT_W, TOP - 22, hidden);
}

/* Busy slots over total slots in bins, as a filled step curve. */
static double utilisation(FILE *f, trace *T, const layout *L, double y0)
{
    enum { BINS = 250 };
    double busy[BINS] = {0}, w = L->makespan / BINS;
    double total = 0;
    for (size_t i = 0; i < T->nsp; i++) {
        const span *s = &T->sp[i];
        double a = s->ts < 0 ? 0 : s->ts, b = s->ts + s->dur;
        total += s->dur * s->cores;
        for (long k = (long)(a / w); k < BINS && k * w < b; k++) {
            double lo = k * w > a ? k * w : a,
                   hi = (k + 1) * w < b ? (k + 1) * w : b;
            if (hi > lo)
                busy[k] += (hi - lo) * s->cores;
        }
    }
    double slots = L->total_slots > 0 ? L->total_slots : 1;
    fprintf(f,
            "<text class=\"h\" x=\"%d\" y=\"%.1f\">utilisation: busy "
            "slots / %.0f slots, %d bins of ",
            LEFT, y0 - 8, slots, BINS);
    char d[32];
    fmt_dur(w, d, sizeof d);
    fprintf(f, "%s</text>\n", d);
    fprintf(f,
            "<rect class=\"b0\" x=\"%d\" y=\"%.1f\" width=\"%d\" "
            "height=\"%d\"/>\n",
            LEFT, y0, PLOT_W, UTIL_H);
    axis(f, L->makespan, y0 + UTIL_H, y0);
    for (int p = 0; p <= 100; p += 25) {
        double y = y0 + UTIL_H - p / 100.0 * UTIL_H;
        fprintf(f,
                "<line class=\"grid\" x1=\"%d\" y1=\"%.1f\" x2=\"%d\" "
                "y2=\"%.1f\"/><text class=\"lab\" x=\"%d\" y=\"%.1f\">%d%%"
                "</text>\n",
                LEFT, y, LEFT + PLOT_W, y, LEFT - 6, y + 4, p);
    }
    fprintf(f, "<path class=\"u\" d=\"M%d %d", LEFT, (int)y0 + UTIL_H);
    for (int k = 0; k < BINS; k++) {
        double u = busy[k] / (w * slots);
        if (u > 1)
            u = 1;
        double y = y0 + UTIL_H - u * UTIL_H;
        fprintf(f, "V%.2fH%.2f", y, LEFT + (k + 1) * (double)PLOT_W / BINS);
    }
    fprintf(f, "V%dz\"/>\n", (int)y0 + UTIL_H);
    double mean = total / (L->makespan * slots);
    double ym = y0 + UTIL_H - (mean > 1 ? 1 : mean) * UTIL_H;
    fprintf(f,
            "<line class=\"mean\" x1=\"%d\" y1=\"%.2f\" x2=\"%d\" "
            "y2=\"%.2f\"><title>mean %.1f%%</title></line>\n",
            LEFT, ym, LEFT + PLOT_W, ym, mean * 100);
    return mean;
}

/* Returns the mean utilisation (0 to 1). */
static double write_svg(FILE *f, trace *T, layout *L, const char *title)
{
    double gh = L->rows * L->row_h;
    double uy = TOP + gh + 60;
    double height = uy + UTIL_H + 60;
    fprintf(f,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" "
            "height=\"%.0f\" viewBox=\"0 0 %d %.0f\" "
            "font-family=\"sans-serif\" font-size=\"11\">\n"
            "<style>.d{fill:#43a047}.r{fill:#fb8c00}.f{fill:#e53935}"
            ".b0{fill:#f5f5f5}.b1{fill:#e8eaf6}.lab{text-anchor:end}"
            ".slot{text-anchor:end;fill:#757575;font-size:9px}"
            ".ax line{stroke:#424242}.grid{stroke:#bdbdbd;stroke-width:0.5}"
            ".gl{stroke-width:1;stroke-dasharray:4 3}"
            ".u{fill:#64b5f6;stroke:#1565c0;stroke-width:0.7}"
            ".mean{stroke:#0d47a1;stroke-dasharray:6 3}"
            ".note{text-anchor:end;fill:#757575}.h{font-weight:bold}"
            "</style>\n<rect width=\"100%%\" height=\"100%%\" "
            "fill=\"white\"/>\n<text class=\"h\" x=\"%d\" y=\"20\">",
            SVG_W, height, SVG_W, height, LEFT);
    xml(f, title);
    fprintf(f,
            "</text>\n<text x=\"%d\" y=\"36\"><tspan class=\"d\">"
            "&#9632;</tspan> done  <tspan class=\"r\">&#9632;</tspan> "
            "failed, retried  <tspan class=\"f\">&#9632;</tspan> failed  "
            "&#9660; rank events (retry, failed, steal)  &#124; global "
            "events (halt, signal, checkpoint); hover for details"
            "</text>\n",
            LEFT);
    bands(f, T, L);
    axis(f, L->makespan, TOP + gh, TOP);
    tasks(f, T, L);
    instants(f, T, L);
    double mean = utilisation(f, T, L, uy);
    fputs("</svg>\n", f);
    return mean;
}

static void report_usage(FILE *out)
{
    fprintf(out, "usage: taskfarm report OUTDIR [-o FILE]\n"
                 "Read OUTDIR/trace.json (written by taskfarm run, or by a "
                 "library run with\ntrace_path) and write an SVG Gantt chart "
                 "(one row per rank and slot) with a\nutilisation plot to "
                 "OUTDIR/report.svg or FILE; print a summary.\n\n"
                 "exit status: 0 written, 2 usage or a missing or bad trace, 3 "
                 "cannot write.\n");
}

static void free_trace(trace *T)
{
    free(T->sp);
    free(T->in);
    free(T->rk);
    free(T->arena);
}

int cli_report(int argc, char **argv)
{
    const char *dir = NULL, *out = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            report_usage(stdout);
            return EXIT_ALL_OK;
        } else if (!strcmp(a, "-o") && i + 1 < argc) {
            out = argv[++i];
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr,
                    "taskfarm report: unknown option or missing "
                    "value: '%s'\n",
                    a);
            report_usage(stderr);
            return EXIT_USAGE;
        } else if (dir) {
            fprintf(stderr, "taskfarm report: one OUTDIR at a time\n");
            return EXIT_USAGE;
        } else {
            dir = a;
        }
    }
    if (!dir) {
        report_usage(stderr);
        return EXIT_USAGE;
    }
    char path[PATH_MAX + 32], svg[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/trace.json", dir);
    snprintf(svg, sizeof svg, "%s/report.svg", dir);
    if (!out)
        out = svg;

    file_text ft = {0};
    int e = cli_read_file(path, &ft);
    if (e) {
        fprintf(stderr, "taskfarm report: %s: %s\n", path, strerror(e));
        return e == ENOMEM ? EXIT_RUNTIME : EXIT_USAGE;
    }
    trace T = {0};
    jp j = {.p = ft.p, .n = ft.len, .T = &T};
    bool ok = arena_put(&j, "", 1) && document(&j); /* offset 0: "" */
    cli_file_text_free(&ft);
    if (!ok) {
        fprintf(stderr, "taskfarm report: %s: byte %zu: %s\n", path, j.err_at,
                j.err);
        free_trace(&T);
        return j.oom ? EXIT_RUNTIME : EXIT_USAGE;
    }
    qsort(T.sp, T.nsp, sizeof *T.sp, cmp_span);
    qsort(T.in, T.nin, sizeof *T.in, cmp_instant);

    layout L = {0};
    /* Tasks that ran: each has exactly one first attempt. */
    size_t tasks = 0, done = 0, retried = 0, failed = 0;
    for (size_t i = 0; i < T.nsp; i++) {
        tasks += T.sp[i].attempt == 1;
        double end = T.sp[i].ts + T.sp[i].dur;
        if (end > L.makespan)
            L.makespan = end;
        done += T.sp[i].res == RES_DONE;
        retried += T.sp[i].res == RES_RETRY;
        failed += T.sp[i].res == RES_FAILED;
    }
    for (size_t i = 0; i < T.nin; i++)
        if (T.in[i].ts > L.makespan)
            L.makespan = T.in[i].ts;
    if (L.makespan < 1)
        L.makespan = 1;
    plan_rows(&T, &L);

    char title[PATH_MAX + 300], ms[32];
    fmt_dur(L.makespan, ms, sizeof ms);
    int nranks = 0;
    for (int r = 0; r < T.nrk; r++)
        nranks += T.rk[r].seen;
    snprintf(title, sizeof title,
             "%s: %zu tasks, %zu attempts (%zu done, %zu failed and "
             "retried, %zu failed) on %d rank%s, %.0f slots, makespan %s",
             path, tasks, T.nsp, done, retried, failed, nranks,
             nranks == 1 ? "" : "s", L.total_slots, ms);

    FILE *f = fopen(out, "w");
    if (!f) {
        fprintf(stderr, "taskfarm report: cannot create %s: %s\n", out,
                strerror(errno));
        free_trace(&T);
        return EXIT_RUNTIME;
    }
    double mean = write_svg(f, &T, &L, title);
    long size = ftell(f);
    if (fflush(f) != 0 || ferror(f) || fclose(f) != 0) {
        fprintf(stderr, "taskfarm report: cannot write %s: %s\n", out,
                strerror(errno));
        free_trace(&T);
        return EXIT_RUNTIME;
    }

    printf("%s\nmean utilisation %.1f%% of %.0f slots\n", title, mean * 100,
           L.total_slots);
    int listed = 0;
    for (int r = 0; r < T.nrk; r++) {
        const rank_info *ri = &T.rk[r];
        if (!ri->seen || ri->nrows == 0 || (!ri->attempts && ri->slots == 0))
            continue;
        if (++listed > 32) {
            printf("... more ranks not listed\n");
            break;
        }
        double slots =
            ri->slots > ri->max_tid ? (double)ri->slots : ri->max_tid + 1.0;
        char name[32];
        snprintf(name, sizeof name, "rank %d", r);
        printf("  %s: %.1f%% busy, %zu attempts\n",
               ri->label ? T.arena + ri->label : name,
               slots > 0 ? 100 * ri->busy / (slots * L.makespan) : 0.0,
               ri->attempts);
    }
    printf("report: %s (%ld KB)\n", out, (size + 1023) / 1024);
    free_trace(&T);
    return EXIT_ALL_OK;
}
