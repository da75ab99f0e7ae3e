/* Chrome trace-event writer: events formatted into a scratch buffer, one fwrite each, JSON-escaped. */
#include "trace.h"

#include <errno.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <stdlib.h>
#include <string.h>

#include "taskfarm_status.h"

/* Per rank: whether its process is named, and which slot tracks are. */
typedef struct rank_tracks {
    uint8_t *named; /* one bit per slot */
    unsigned cap;   /* bits in named */
    bool process_named;
} rank_tracks;

struct tf_trace {
    FILE *f;
    uint64_t start_ns;
    bool any;    /* an event was written: the next needs a comma */
    bool failed; /* a write failed: close reports TF_EIO */
    rank_tracks *ranks;
    size_t nranks;
    char *buf; /* the event being formatted */
    size_t n, cap;
    bool oom; /* the scratch buffer could not grow: the event is dropped */
};

static const char tail[] = "\n]}\n";

/* ---- formatting into the scratch buffer ---- */

static void put(tf_trace *tr, const char *s, size_t len)
{
    if (tr->n + len > tr->cap) {
        size_t ncap = tr->cap ? tr->cap : 512;
        while (ncap < tr->n + len)
            ncap *= 2;
        char *nb = realloc(tr->buf, ncap);
        if (!nb) {
            tr->oom = true;
            return;
        }
        tr->buf = nb;
        tr->cap = ncap;
    }
    memcpy(tr->buf + tr->n, s, len);
    tr->n += len;
}

static void puts_(tf_trace *tr, const char *s)
{
    put(tr, s, strlen(s));
}

static void put_u64(tf_trace *tr, uint64_t v)
{
    char d[24];
    size_t i = sizeof d;
    do
        d[--i] = (char)('0' + v % 10);
    while (v /= 10);
    put(tr, d + i, sizeof d - i);
}

static void put_int(tf_trace *tr, long long v)
{
    if (v < 0) {
        put(tr, "-", 1);
        put_u64(tr, 0 - (uint64_t)v);
    } else {
        put_u64(tr, (uint64_t)v);
    }
}

/* Nanoseconds as microseconds with three decimals, exact (no rounding). */
static void put_us(tf_trace *tr, int64_t ns)
{
    uint64_t a = ns < 0 ? 0 - (uint64_t)ns : (uint64_t)ns;
    char frac[5] = {'.', (char)('0' + a % 1000 / 100),
                    (char)('0' + a % 100 / 10), (char)('0' + a % 10), 0};
    if (ns < 0)
        put(tr, "-", 1);
    put_u64(tr, a / 1000);
    put(tr, frac, 4);
}

/*
 * Length of the valid UTF-8 sequence (1 to 4 bytes) at s, given n > 0
 * bytes left, or 0 when it is not one (overlong, surrogate, past U+10FFFF,
 * cut short).
 */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    if (s[0] < 0x80)
        return 1;
    size_t len = s[0] >= 0xf0 && s[0] <= 0xf4   ? 4
                 : s[0] >= 0xe0                 ? 3
                 : s[0] >= 0xc2 && s[0] <= 0xdf ? 2
                                                : 0;
    if (!len || len > n)
        return 0;
    for (size_t i = 1; i < len; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    /* Overlong forms, surrogates and code points past U+10FFFF. */
    if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] >= 0xa0) ||
        (s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] >= 0x90))
        return 0;
    return len;
}

/*
 * A JSON string. Names come from task files, function names and host
 * names: anything but valid UTF-8 text would make the whole file
 * unreadable, so bad bytes become U+FFFD.
 */
static void put_str(tf_trace *tr, const char *s)
{
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    size_t n = strlen((const char *)p);
    put(tr, "\"", 1);
    while (n) {
        size_t run = 0;
        while (run < n && p[run] >= 0x20 && p[run] < 0x80 && p[run] != '"' &&
               p[run] != '\\')
            run++;
        put(tr, (const char *)p, run);
        p += run;
        n -= run;
        if (!n)
            break;
        char esc[8];
        if (*p == '"' || *p == '\\') {
            esc[0] = '\\';
            esc[1] = (char)*p;
            put(tr, esc, 2);
            p++, n--;
        } else if (*p < 0x20) {
            static const char hex[] = "0123456789abcdef";
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[*p >> 4];
            esc[5] = hex[*p & 15];
            put(tr, esc, 6);
            p++, n--;
        } else {
            size_t len = utf8_len(p, n);
            if (len) {
                put(tr, (const char *)p, len);
            } else {
                puts_(tr, "\\ufffd");
                len = 1;
            }
            p += len, n -= len;
        }
    }
    put(tr, "\"", 1);
}

/* Start an event: the separator, then the fields every event has. */
static void begin(tf_trace *tr, const char *name, const char *ph, int pid,
                  int tid)
{
    tr->n = 0;
    tr->oom = false;
    puts_(tr, tr->any ? ",\n{\"name\":" : "\n{\"name\":");
    put_str(tr, name);
    puts_(tr, ",\"ph\":\"");
    puts_(tr, ph);
    puts_(tr, "\",\"pid\":");
    put_int(tr, pid);
    puts_(tr, ",\"tid\":");
    put_int(tr, tid);
}

/* Write the formatted event. */
static int end(tf_trace *tr)
{
    if (tr->oom)
        return TF_ENOMEM;
    if (fwrite(tr->buf, 1, tr->n, tr->f) != tr->n) {
        tr->failed = true;
        return TF_EIO;
    }
    tr->any = true;
    return 0;
}

/* ---- tracks ---- */

static rank_tracks *tracks_of(tf_trace *tr, int rank)
{
    if ((size_t)rank >= tr->nranks) {
        size_t n = tr->nranks ? tr->nranks : 16;
        while (n <= (size_t)rank)
            n *= 2;
        rank_tracks *nr = realloc(tr->ranks, n * sizeof *nr);
        if (!nr)
            return NULL;
        memset(nr + tr->nranks, 0, (n - tr->nranks) * sizeof *nr);
        tr->ranks = nr;
        tr->nranks = n;
    }
    return &tr->ranks[rank];
}

static int name_process(tf_trace *tr, rank_tracks *rt, int rank,
                        const char *host, unsigned slots)
{
    char label[320];
    if (host && *host)
        snprintf(label, sizeof label, "rank %d (%.256s)", rank, host);
    else
        snprintf(label, sizeof label, "rank %d", rank);
    begin(tr, "process_name", "M", rank, 0);
    puts_(tr, ",\"args\":{\"name\":");
    put_str(tr, label);
    puts_(tr, ",\"slots\":");
    put_u64(tr, slots);
    puts_(tr, "}}");
    int rc = end(tr);
    begin(tr, "process_sort_index", "M", rank, 0);
    puts_(tr, ",\"args\":{\"sort_index\":");
    put_int(tr, rank);
    puts_(tr, "}}");
    if (!rc)
        rc = end(tr);
    if (!rc)
        rt->process_named = true;
    return rc;
}

/* Name the slot's thread the first time it is used. */
static int name_slot(tf_trace *tr, rank_tracks *rt, int rank, int slot)
{
    if ((unsigned)slot >= rt->cap) {
        unsigned ncap = rt->cap ? rt->cap : 64;
        while (ncap <= (unsigned)slot)
            ncap *= 2;
        uint8_t *nb = realloc(rt->named, ncap / 8);
        if (!nb)
            return TF_ENOMEM;
        memset(nb + rt->cap / 8, 0, (ncap - rt->cap) / 8);
        rt->named = nb;
        rt->cap = ncap;
    }
    if (rt->named[slot / 8] & (1u << slot % 8))
        return 0;
    char label[32];
    snprintf(label, sizeof label, "slot %d", slot);
    begin(tr, "thread_name", "M", rank, slot);
    puts_(tr, ",\"args\":{\"name\":");
    put_str(tr, label);
    puts_(tr, "}}");
    int rc = end(tr);
    begin(tr, "thread_sort_index", "M", rank, slot);
    puts_(tr, ",\"args\":{\"sort_index\":");
    put_int(tr, slot);
    puts_(tr, "}}");
    if (!rc)
        rc = end(tr);
    if (!rc)
        rt->named[slot / 8] |= (uint8_t)(1u << slot % 8);
    return rc;
}

/* ---- the API ---- */

int tf_trace_open(const char *path, uint64_t start_ns, tf_trace **out)
{
    tf_trace *tr = calloc(1, sizeof *tr);
    if (!tr)
        return TF_ENOMEM;
    tr->f = fopen(path, "w");
    if (!tr->f) {
        int e = errno;
        free(tr);
        errno = e;
        return TF_EIO;
    }
    /* Big writes: a span is ~200 bytes and a run may have millions. */
    setvbuf(tr->f, NULL, _IOFBF, 1 << 20);
    tr->start_ns = start_ns;
    tr->n = 0;
    puts_(tr, "{\"displayTimeUnit\":\"ms\",\"otherData\":{\"generator\":"
              "\"taskfarm\",\"start_ns\":");
    put_u64(tr, start_ns);
    puts_(tr, "},\"traceEvents\":[");
    if (tr->oom || fwrite(tr->buf, 1, tr->n, tr->f) != tr->n) {
        int e = tr->oom ? ENOMEM : errno;
        fclose(tr->f);
        free(tr->buf);
        free(tr);
        errno = e;
        return e == ENOMEM ? TF_ENOMEM : TF_EIO;
    }
    *out = tr;
    return 0;
}

int tf_trace_rank(tf_trace *tr, int rank, const char *host, unsigned slots)
{
    if (!tr || rank < 0)
        return TF_EINVAL;
    rank_tracks *rt = tracks_of(tr, rank);
    if (!rt)
        return TF_ENOMEM;
    return rt->process_named ? 0 : name_process(tr, rt, rank, host, slots);
}

int tf_trace_span_add(tf_trace *tr, const tf_trace_span *sp)
{
    if (!tr || !sp || sp->rank < 0 || sp->slot < 0)
        return TF_EINVAL;
    rank_tracks *rt = tracks_of(tr, sp->rank);
    if (!rt)
        return TF_ENOMEM;
    int rc = rt->process_named ? 0 : name_process(tr, rt, sp->rank, NULL, 0);
    if (!rc)
        rc = name_slot(tr, rt, sp->rank, sp->slot);
    if (rc)
        return rc;
    static const char *const results[] = {"done", "retry", "failed",
                                          "interrupted"};
    /* Colour names of the Chrome trace viewer (Perfetto picks its own). */
    static const char *const cnames[] = {"good", "yellow", "terrible",
                                         "grey"};
    unsigned res =
        sp->result <= TF_TRACE_INTERRUPTED ? sp->result : TF_TRACE_FAILED;
    uint64_t dur = sp->end_ns > sp->start_ns ? sp->end_ns - sp->start_ns : 0;
    begin(tr, sp->name, "X", sp->rank, sp->slot);
    puts_(tr, ",\"cat\":\"task\",\"ts\":");
    put_us(tr, (int64_t)(sp->start_ns - tr->start_ns));
    puts_(tr, ",\"dur\":");
    put_us(tr, (int64_t)dur);
    puts_(tr, ",\"cname\":\"");
    puts_(tr, cnames[res]);
    puts_(tr, "\",\"args\":{\"attempt\":");
    put_int(tr, sp->attempt);
    puts_(tr, ",\"status\":");
    put_int(tr, sp->status);
    puts_(tr, ",\"result\":\"");
    puts_(tr, results[res]);
    puts_(tr, "\",\"rank\":");
    put_int(tr, sp->rank);
    puts_(tr, ",\"slot\":");
    put_int(tr, sp->slot);
    puts_(tr, ",\"cores\":");
    put_u64(tr, sp->cores ? sp->cores : 1);
    puts_(tr, "}}");
    return end(tr);
}

int tf_trace_instant(tf_trace *tr, int rank, const char *name, uint64_t ts_ns,
                     bool global, const char *detail)
{
    if (!tr || rank < 0 || !name)
        return TF_EINVAL;
    begin(tr, name, "i", rank, 0);
    puts_(tr, ",\"cat\":\"event\",\"s\":\"");
    puts_(tr, global ? "g" : "p");
    puts_(tr, "\",\"ts\":");
    put_us(tr, (int64_t)(ts_ns - tr->start_ns));
    if (detail) {
        puts_(tr, ",\"args\":{\"detail\":");
        put_str(tr, detail);
        puts_(tr, "}");
    }
    puts_(tr, "}");
    return end(tr);
}

int tf_trace_sync(tf_trace *tr)
{
    if (!tr)
        return TF_EINVAL;
    /*
     * The next event overwrites the tail; until then the file is whole. A
     * stream opened for writing may seek back over what it wrote.
     */
    if (fwrite(tail, 1, sizeof tail - 1, tr->f) != sizeof tail - 1 ||
        fflush(tr->f) != 0 || ferror(tr->f) ||
        fseek(tr->f, -(long)(sizeof tail - 1), SEEK_CUR))
        tr->failed = true;
    return tr->failed ? TF_EIO : 0;
}

/* The ranks' names and buffers, after the file was closed. */
static void free_trace(tf_trace *tr)
{
    for (size_t i = 0; i < tr->nranks; i++)
        free(tr->ranks[i].named);
    free(tr->ranks);
    free(tr->buf);
    free(tr);
}

void tf_trace_discard(tf_trace *tr)
{
    if (!tr)
        return;
    __fpurge(tr->f); /* buffered bytes must not reach the file */
    fclose(tr->f);
    free_trace(tr);
}

int tf_trace_close(tf_trace *tr)
{
    if (!tr)
        return 0;
    if (fwrite(tail, 1, sizeof tail - 1, tr->f) != sizeof tail - 1 ||
        fflush(tr->f) != 0 || ferror(tr->f))
        tr->failed = true;
    if (fclose(tr->f) != 0)
        tr->failed = true;
    int rc = tr->failed ? TF_EIO : 0;
    free_trace(tr);
    return rc;
}
