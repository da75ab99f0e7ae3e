/* Task-file parser: lines, then dependency lists, then the scheduler's check.
 */
#include "taskfile.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grow.h"
#include "subst.h"
#include "taskfarm_status.h"

/*
 * Speed comes from touching little memory per line, as fresh pages cost
 * more than the parsing itself: tables grow by doubling (no per-line
 * allocation), a default id (the line number) stays out of the hash table
 * and is found through a line-to-task array, and the scratch scheduler that
 * checks for cycles is built only when a dependency points forward, since
 * otherwise file order is already a topological order. Ids named in @after
 * are kept as spans of the text and resolved in a second pass, once every id
 * is known, which is what lets dependencies point forward. Cycles are left
 * to tf_sched_seal so that `check` and `run` can never disagree about which
 * files are acyclic.
 */

enum {
    ATTR_ID,
    ATTR_AFTER, /* ATTR_AFTER + TF_EDGE_*: the three dependency kinds */
    ATTR_AFTERANY,
    ATTR_AFTERNOTOK,
    ATTR_PRIO,
    ATTR_CORES,
    ATTR_TIMEOUT,
    ATTR_RETRIES,
    ATTR_BARRIER,
    ATTR_SHELL,
    ATTR_OUTPUT,
    ATTR_EST,
    ATTR_END,
    ATTR_ARRAY,
    ATTR_COUNT_
};

static const char *const attr_names[ATTR_COUNT_] = {
    "id",      "after",   "afterany", "afternotok", "prio", "cores", "timeout",
    "retries", "barrier", "shell",    "output",     "est",  "end",   "array",
};
_Static_assert(ATTR_AFTERANY == ATTR_AFTER + TF_EDGE_ANY &&
                   ATTR_AFTERNOTOK == ATTR_AFTER + TF_EDGE_NOTOK,
               "the @after attributes follow TF_EDGE_*");

/* @output's values, indexed by TF_TASKFILE_OUTPUT_* less one. */
static const char *const output_names[] = {"files", "tag", "none"};

/* The table is what a million-task file costs: keep an entry small. */
_Static_assert(sizeof(tf_tftask) == 40, "tf_tftask grew");

#define QUOTE_MAX 60 /* bytes of the user's text quoted in a message */
#define QUOTE_BUF (QUOTE_MAX + 4)
#define CYCLE_SHOW 16 /* tasks of a cycle named in its message */
#define UTF8_BOM "\xEF\xBB\xBF"

/*
 * An @after, @afterany or @afternotok list, kept as a span of the text
 * until every id is known. For an @array line, task is its first element:
 * the others share its lists.
 */
typedef struct after_ref {
    uint64_t off;
    uint32_t len;
    uint32_t task;
    uint8_t kind; /* TF_EDGE_* */
} after_ref;

/* Open-addressing id table slot; task TF_NONE marks it empty. */
typedef struct id_slot {
    uint32_t hash;
    uint32_t task;
} id_slot;

typedef struct parser {
    const char *name;
    const char *text;
    size_t len;
    tf_tferr err;

    uint32_t nlines; /* lines read so far */
    bool full;       /* TF_TASKFILE_MAX_TASKS reached: reading stopped */

    tf_tftask *tasks;
    uint32_t n, cap; /* entries in tasks[], and room for */
    uint32_t ntasks; /* entries that are not barriers */
    uint32_t nbarriers;
    uint16_t max_cores;

    char *pool;
    size_t plen, pcap;

    /* Explicit ids only; a power of two at most half full, or empty. */
    id_slot *slots;
    size_t scap, nids;

    /* Tasks whose explicit id is a line number: may clash with a default. */
    uint32_t *numeric;
    size_t nnumeric, ncap;

    after_ref *after;
    size_t nafter, acap;
    bool kinds; /* some list is @afterany or @afternotok */
    bool globs; /* some list entry is a pattern */

    uint32_t *line_task; /* phase 2: line -> task with that default id */
    uint32_t *sorted;    /* phase 2, with globs: tasks with ids, by id */
    uint32_t nsorted;

    tf_tfarray *arrays; /* the @array lines, in file order */
    uint32_t narrays;
    size_t arcap;

    char shell[TF_TASKFILE_MAX_SHELL + 1]; /* @shell's value, "" if none */
    uint32_t shell_line;
    uint8_t output; /* @output's TF_TASKFILE_OUTPUT_*, 0 if none */
    uint32_t output_line;
    uint32_t end_line; /* @end's: no line after it is read */
} parser;

/* What the attributes of one line said. */
typedef struct line_attrs {
    const char *id; /* NULL: the default */
    size_t id_len;
    const char *after[3]; /* per TF_EDGE_* kind; NULL: no such list */
    size_t after_len[3];
    const char *shell; /* @shell's value */
    size_t shell_len;
    uint8_t output; /* @output's TF_TASKFILE_OUTPUT_* */
    const char *array; /* @array's list, checked; NULL: none */
    size_t array_len;
    uint64_t array_n;  /* the elements it gives */
    size_t array_vmax; /* bytes of its longest value */
    int32_t prio;
    uint32_t timeout_ms;
    uint32_t est_ms; /* @est, 0 if none */
    uint16_t cores;
    int16_t retries;
    unsigned seen; /* bit per ATTR_* */
    bool bad_id;   /* @id unusable: keep the line out of the id table */
} line_attrs;

/* ---- messages ---- */

/*
 * Record "NAME:LINE: ..." (":LINE" left out for line 0, ":COL" added when
 * col > 0). Past the cap it only sets `truncated`, which the passes check
 * to stop early. Returns 0 or TF_ENOMEM.
 */
#if defined(__GNUC__)
__attribute__((format(printf, 5, 6)))
#endif
static int
add_error(parser *p, int code, uint32_t line, uint32_t col, const char *fmt,
          ...)
{
    if (p->err.n >= TF_TASKFILE_MAX_ERRORS) {
        p->err.truncated = true;
        return 0;
    }
    if (!p->err.msgs) {
        p->err.msgs = malloc(TF_TASKFILE_MAX_ERRORS * sizeof *p->err.msgs);
        if (!p->err.msgs)
            return TF_ENOMEM;
    }
    char prefix[48];
    if (!line)
        snprintf(prefix, sizeof prefix, ": ");
    else if (!col)
        snprintf(prefix, sizeof prefix, ":%u: ", (unsigned)line);
    else
        snprintf(prefix, sizeof prefix, ":%u:%u: ", (unsigned)line,
                 (unsigned)col);
    size_t nlen = strlen(p->name), plen = strlen(prefix);
    va_list ap;
    va_start(ap, fmt);
    int blen = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (blen < 0)
        blen = 0;
    char *s = malloc(nlen + plen + (size_t)blen + 1);
    if (!s)
        return TF_ENOMEM;
    memcpy(s, p->name, nlen);
    memcpy(s + nlen, prefix, plen);
    va_start(ap, fmt);
    vsnprintf(s + nlen + plen, (size_t)blen + 1, fmt, ap);
    va_end(ap);
    p->err.msgs[p->err.n++] = (tf_tferr_msg){code, line, s};
    return 0;
}

/* A line-level error was recorded (1) unless recording it ran out of memory. */
static int failed(int rc)
{
    return rc < 0 ? rc : 1;
}

/*
 * Copy the user's text for a message: at most QUOTE_MAX bytes, then "...";
 * control bytes become '?' so that a stray escape cannot upset a terminal.
 */
static const char *quote(char *buf, const char *s, size_t n)
{
    size_t k = n > QUOTE_MAX ? QUOTE_MAX : n;
    for (size_t i = 0; i < k; i++) {
        unsigned char c = (unsigned char)s[i];
        buf[i] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    if (n > k)
        memcpy(buf + k, "...", 4);
    else
        buf[k] = '\0';
    return buf;
}

/* Stable by line, whole-file messages (line 0) last; at most 20 entries. */
static void sort_errors(tf_tferr *e)
{
    for (size_t i = 1; i < e->n; i++) {
        tf_tferr_msg m = e->msgs[i];
        uint64_t key = m.line ? m.line : UINT64_MAX;
        size_t j = i;
        while (j > 0) {
            uint32_t l = e->msgs[j - 1].line;
            if ((l ? l : UINT64_MAX) <= key)
                break;
            e->msgs[j] = e->msgs[j - 1];
            j--;
        }
        e->msgs[j] = m;
    }
}

void tf_tferr_free(tf_tferr *err)
{
    if (!err)
        return;
    for (size_t i = 0; i < err->n; i++)
        free(err->msgs[i].text);
    free(err->msgs);
    memset(err, 0, sizeof *err);
}

/* ---- "did you mean" ---- */

/* How far a name may be from a suggestion: none for tiny names, where any
 * suggestion would be noise ("7" is one edit from every other digit). */
static unsigned max_distance(size_t n)
{
    return n >= 6 ? 2 : n >= 3 ? 1 : 0;
}

/*
 * Optimal-string-alignment distance (Levenshtein plus adjacent swaps, the
 * commonest typo), or maxd + 1 as soon as it must exceed maxd.
 */
static unsigned edit_distance(const char *a, size_t la, const char *b,
                              size_t lb, unsigned maxd)
{
    if (la > TF_TASKFILE_MAX_ID || lb > TF_TASKFILE_MAX_ID)
        return maxd + 1;
    if ((la > lb ? la - lb : lb - la) > maxd)
        return maxd + 1;
    unsigned rows[3][TF_TASKFILE_MAX_ID + 1];
    unsigned *pp = rows[0], *pr = rows[1], *cur = rows[2];
    unsigned prmin = 0;
    for (size_t j = 0; j <= lb; j++)
        pr[j] = (unsigned)j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = (unsigned)i;
        unsigned rmin = cur[0];
        for (size_t j = 1; j <= lb; j++) {
            unsigned cost = a[i - 1] != b[j - 1];
            unsigned v = pr[j] + 1;
            if (cur[j - 1] + 1 < v)
                v = cur[j - 1] + 1;
            if (pr[j - 1] + cost < v)
                v = pr[j - 1] + cost;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] &&
                a[i - 2] == b[j - 1] && pp[j - 2] + 1 < v)
                v = pp[j - 2] + 1;
            cur[j] = v;
            if (v < rmin)
                rmin = v;
        }
        /* Later cells build on this row, or on the previous one plus a swap. */
        if (rmin > maxd && prmin + 1 > maxd)
            return maxd + 1;
        prmin = rmin;
        unsigned *t = pp;
        pp = pr;
        pr = cur;
        cur = t;
    }
    return pr[lb];
}

/* Attribute names are lower case; "@Prio" gets a suggestion too. */
static const char *suggest_attr(const char *s, size_t n)
{
    char low[16];
    if (n >= sizeof low)
        return NULL;
    for (size_t i = 0; i < n; i++)
        low[i] = (s[i] >= 'A' && s[i] <= 'Z') ? (char)(s[i] - 'A' + 'a') : s[i];
    unsigned maxd = max_distance(n), bestd = maxd + 1;
    const char *best = NULL;
    for (int k = 0; k < ATTR_COUNT_; k++) {
        unsigned d =
            edit_distance(low, n, attr_names[k], strlen(attr_names[k]), maxd);
        if (d < bestd) {
            bestd = d;
            best = attr_names[k];
        }
    }
    return best;
}

/* The closest id within max_distance, first in file order on ties. */
static uint32_t suggest_id(const parser *p, const char *s, size_t n)
{
    unsigned maxd = max_distance(n), bestd = maxd + 1;
    uint32_t best = TF_NONE;
    for (uint32_t t = 0; t < p->n && bestd > 1; t++) {
        const tf_tftask *e = &p->tasks[t];
        if (!e->id_len)
            continue;
        unsigned d =
            edit_distance(s, n, p->pool + e->str, e->id_len, bestd - 1);
        if (d < bestd) {
            bestd = d;
            best = t;
        }
    }
    return best;
}

/* ---- ids ---- */

static bool is_id_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '_' || c == '.' || c == ':' ||
           c == '-';
}

static bool id_chars_ok(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!is_id_char((unsigned char)s[i]))
            return false;
    return true;
}

static bool id_is_valid(const char *s, size_t n)
{
    return n > 0 && n <= TF_TASKFILE_MAX_ID && id_chars_ok(s, n);
}

/* ---- patterns over ids in @after lists: *, ?, [...] as fnmatch(3) ---- */

static bool is_wild(char c)
{
    return c == '*' || c == '?' || c == '[';
}

/* Bytes before the first wildcard: all of s when it is a plain id. */
static size_t literal_prefix(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n && !is_wild(s[i]))
        i++;
    return i;
}

/*
 * The end of the class [...] that opens at p[i], or 0 when it is not one:
 * an optional ! or ^, then one or more id characters or ranges a-z, then
 * ']'. Id characters only, since nothing else could match an id.
 */
static size_t class_end(const char *p, size_t m, size_t i)
{
    size_t k = i + 1;
    if (k < m && (p[k] == '!' || p[k] == '^'))
        k++;
    size_t first = k;
    while (k < m && is_id_char((unsigned char)p[k]))
        k++;
    return k < m && p[k] == ']' && k > first ? k + 1 : 0;
}

/* A pattern: id characters and wildcards, each class closed. */
static bool pattern_is_valid(const char *p, size_t m)
{
    for (size_t i = 0; i < m;) {
        if (p[i] == '[') {
            size_t e = class_end(p, m, i);
            if (!e)
                return false;
            i = e;
        } else if (p[i] == '*' || p[i] == '?' ||
                   is_id_char((unsigned char)p[i])) {
            i++;
        } else {
            return false;
        }
    }
    return m > 0;
}

/* Whether c is in the class p[i..e) (e past its ']'). */
static bool in_class(const char *p, size_t i, size_t e, char c)
{
    size_t k = i + 1;
    bool neg = p[k] == '!' || p[k] == '^', hit = false;
    k += neg;
    for (e--; k < e; k++) {
        if (k + 2 < e && p[k + 1] == '-') {
            hit |= p[k] <= c && c <= p[k + 2];
            k += 2;
        } else {
            hit |= p[k] == c;
        }
    }
    return hit != neg;
}

/*
 * Whether id s[0..n) matches the valid pattern p[0..m): '*' any run of
 * characters, '?' one, [...] one of a class. Backtracks to the last '*'
 * only, which is enough for these three (the usual two-pointer match):
 * O(n m) at worst, and ids are short.
 */
static bool pattern_match(const char *p, size_t m, const char *s, size_t n)
{
    size_t i = 0, j = 0, star = SIZE_MAX, from = 0;
    while (j < n) {
        if (i < m && p[i] == '*') {
            star = ++i;
            from = j;
            continue;
        }
        size_t e = i < m && p[i] == '[' ? class_end(p, m, i) : i + 1;
        if (i < m && (p[i] == '[' ? in_class(p, i, e, s[j])
                                  : p[i] == '?' || p[i] == s[j])) {
            i = e;
            j++;
        } else if (star != SIZE_MAX) {
            i = star;
            j = ++from;
        } else {
            return false;
        }
    }
    while (i < m && p[i] == '*')
        i++;
    return i == m;
}

/* FNV-1a: ids are short, and this needs no alignment or tail handling. */
static uint32_t hash_id(const char *s, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 16777619u;
    }
    return h;
}

/* The array entry t belongs to among arrays[0..n), or NULL. */
static const tf_tfarray *array_of(const tf_tfarray *arrays, uint32_t n,
                                  uint32_t t)
{
    uint32_t lo = 0, hi = n;
    while (lo < hi) { /* the first array starting after t */
        uint32_t mid = lo + (hi - lo) / 2;
        if (arrays[mid].first <= t)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (!lo || t - arrays[lo - 1].first >= arrays[lo - 1].n)
        return NULL;
    return &arrays[lo - 1];
}

/*
 * Whether s names task t: its id, or the base of the @array it is an
 * element of (the table holds an array's base once, pointing at its first
 * element; "sim" names the array of "sim.1").
 */
static bool names_task(const parser *p, uint32_t t, const char *s, size_t n)
{
    const tf_tftask *e = &p->tasks[t];
    if (memcmp(p->pool + e->str, s, n < e->id_len ? n : e->id_len))
        return false;
    if (e->id_len == n)
        return true;
    const tf_tfarray *a =
        e->flags & TF_TFT_ARRAY ? array_of(p->arrays, p->narrays, t) : NULL;
    return a && a->base_len == n;
}

/* The task holding id s, or TF_NONE with *slot set to where it would go. */
static uint32_t id_find(const parser *p, const char *s, size_t n, uint32_t h,
                        size_t *slot)
{
    if (!p->scap) {
        *slot = 0;
        return TF_NONE;
    }
    size_t mask = p->scap - 1, i = h & mask;
    for (;;) {
        const id_slot *sl = &p->slots[i];
        if (sl->task == TF_NONE) {
            *slot = i;
            return TF_NONE;
        }
        if (sl->hash == h && names_task(p, sl->task, s, n))
            return sl->task;
        i = (i + 1) & mask;
    }
}

/* Double the id table (or make the first one); slots keep their hashes. */
static int grow_ids(parser *p)
{
    size_t ncap = p->scap ? p->scap * 2 : 1024;
    id_slot *ns = malloc(ncap * sizeof *ns);
    if (!ns)
        return TF_ENOMEM;
    memset(ns, 0xff, ncap * sizeof *ns); /* task TF_NONE: empty */
    for (size_t i = 0; i < p->scap; i++) {
        id_slot sl = p->slots[i];
        if (sl.task == TF_NONE)
            continue;
        size_t j = sl.hash & (ncap - 1);
        while (ns[j].task != TF_NONE)
            j = (j + 1) & (ncap - 1);
        ns[j] = sl;
    }
    free(p->slots);
    p->slots = ns;
    p->scap = ncap;
    return 0;
}

/* The line number a name spells in canonical decimal, or 0 if none. */
static uint32_t as_line_number(const char *s, size_t n, uint32_t nlines)
{
    if (n == 0 || n > 10 || s[0] == '0')
        return 0;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    return v <= nlines ? (uint32_t)v : 0;
}

/* Phase 2 lookup: an explicit id, else a line number naming a default id. */
static uint32_t lookup_id(const parser *p, const char *s, size_t n)
{
    size_t slot;
    uint32_t t = id_find(p, s, n, hash_id(s, n), &slot);
    if (t == TF_NONE && p->line_task) {
        uint32_t line = as_line_number(s, n, p->nlines);
        if (line)
            t = p->line_task[line];
    }
    return t;
}

static int bad_id_error(parser *p, uint32_t line, const char *attr,
                        const char *s, size_t n)
{
    char q[QUOTE_BUF];
    if (n > TF_TASKFILE_MAX_ID && id_chars_ok(s, n))
        return add_error(p, TF_ERANGE, line, 0,
                         "id '%s' in @%s is %zu bytes, longer than %u (the "
                         "task's output files ID.out and ID.err must fit in "
                         "a file name of %u bytes)",
                         quote(q, s, n), attr, n, TF_TASKFILE_MAX_ID,
                         TF_TASKFILE_NAME_MAX);
    return add_error(p, TF_EINVAL, line, 0,
                     "bad id '%s' in @%s (an id is 1 to %u letters, digits, "
                     "'_', '.', ':' or '-')",
                     quote(q, s, n), attr, TF_TASKFILE_MAX_ID);
}

/* ---- values ---- */

/* Decimal integer, optional sign, within [lo, hi]. */
static bool parse_int(const char *s, size_t n, int64_t lo, int64_t hi,
                      int64_t *v)
{
    size_t i = 0;
    bool neg = false;
    if (i < n && (s[i] == '+' || s[i] == '-'))
        neg = s[i++] == '-';
    if (i == n)
        return false;
    int64_t x = 0;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        x = x * 10 + (s[i] - '0');
        if (x > ((int64_t)1 << 40)) /* far past any range asked for */
            return false;
    }
    if (neg)
        x = -x;
    if (x < lo || x > hi)
        return false;
    *v = x;
    return true;
}

/*
 * One term of a duration: digits[.digits] (no sign, no exponent) into
 * thousandths, rounded up so that a tiny positive timeout stays positive.
 * Parsed by hand: strtod depends on the locale and wants a terminated string.
 */
static bool duration_term(const char *s, size_t n, size_t *i, uint64_t *milli)
{
    uint64_t whole = 0, frac = 0;
    unsigned nfrac = 0;
    bool digits = false, rest = false;
    for (; *i < n && s[*i] >= '0' && s[*i] <= '9'; (*i)++) {
        whole = whole * 10 + (uint64_t)(s[*i] - '0');
        digits = true;
        if (whole > UINT32_MAX)
            return false;
    }
    if (*i < n && s[*i] == '.') {
        for ((*i)++; *i < n && s[*i] >= '0' && s[*i] <= '9'; (*i)++) {
            digits = true;
            if (nfrac < 3) {
                frac = frac * 10 + (uint64_t)(s[*i] - '0');
                nfrac++;
            } else if (s[*i] != '0') {
                rest = true;
            }
        }
    }
    for (; nfrac < 3; nfrac++)
        frac *= 10;
    *milli = whole * 1000 + frac + (rest ? 1 : 0);
    return digits;
}

bool tf_duration_ms(const char *s, size_t n, uint64_t *ms)
{
    static const struct {
        char name[3];
        uint32_t ms;
    } units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000},
                 {"d", 86400000}};
    size_t i = 0;
    uint64_t total = 0;
    int last = -1; /* the unit of the term before: each smaller than it */
    while (i < n) {
        uint64_t milli;
        if (!duration_term(s, n, &i, &milli))
            return false;
        size_t u0 = i;
        while (i < n && s[i] >= 'a' && s[i] <= 'z')
            i++;
        int k = -1;
        for (int j = 0; j < 5 && u0 < i; j++)
            if (i - u0 == strlen(units[j].name) &&
                !memcmp(s + u0, units[j].name, i - u0))
                k = j;
        if (u0 == i) { /* no unit: seconds, and the whole value */
            if (last >= 0 || i != n || milli > UINT32_MAX)
                return false;
            *ms = milli; /* thousandths of a second */
            return true;
        }
        /* Known, and smaller than the term before's: 1h30m, not 30m1h. */
        if (k < 0 || (last >= 0 && k >= last) ||
            milli > (UINT64_MAX - 999) / units[k].ms)
            return false;
        last = k;
        /* thousandths of the unit, rounded up to whole ms */
        total += (milli * units[k].ms + 999) / 1000;
        if (total > UINT32_MAX)
            return false;
    }
    if (last < 0)
        return false;
    *ms = total;
    return true;
}

/*
 * @est's code for tf_tftask.est (tf_taskfile_est_ms decodes it): the
 * smallest m << e >= ms with m < 2^11, e < 2^5, as e << 11 | m.
 */
static uint16_t est_code(uint32_t ms)
{
    unsigned e = 0;
    while (ms >> e >= 2048u)
        e++;
    uint32_t m = (ms >> e) + ((ms & ((1u << e) - 1)) != 0);
    if (m == 2048u) {
        m = 1024u;
        e++;
    }
    return (uint16_t)(e << 11 | m);
}

/* @timeout, @est: a duration, not 0, at most UINT32_MAX ms. */
static bool parse_seconds(const char *s, size_t n, uint32_t *ms)
{
    uint64_t v;
    if (!tf_duration_ms(s, n, &v) || v == 0 || v > UINT32_MAX)
        return false;
    *ms = (uint32_t)v;
    return true;
}

static int bad_value(parser *p, uint32_t line, int k, const char *v, size_t n,
                     const char *expected)
{
    char q[QUOTE_BUF];
    return add_error(p, TF_EINVAL, line, 0,
                     "bad value '%s' for @%s (expected %s)", quote(q, v, n),
                     attr_names[k], expected);
}

/* ---- @array lists ---- */

/*
 * One item of an @array list: a range of indexes, or one value as written
 * (a number, or a word).
 */
typedef struct array_item {
    bool range;
    uint64_t lo, hi, step; /* range: lo, lo + step, ... up to hi */
    unsigned width;        /* range: indexes zero-padded to this many digits */
} array_item;

/* Decimal digits at s[*i..n) into *v (which stops growing past any index). */
static size_t read_digits(const char *s, size_t n, size_t *i, uint64_t *v)
{
    size_t i0 = *i;
    *v = 0;
    for (; *i < n && s[*i] >= '0' && s[*i] <= '9'; (*i)++)
        if (*v <= TF_TASKFILE_MAX_INDEX)
            *v = *v * 10 + (uint64_t)(s[*i] - '0');
    return *i - i0;
}

/*
 * Read the item s[0..n): "N", "N-M" or "N-M:STEP" (indexes 0 to
 * TF_TASKFILE_MAX_INDEX; a bound written with a leading zero pads every
 * index to the wider bound's digits, as bash's {01..10} does), or a word
 * that starts with a letter or '_' and holds id characters. Returns NULL,
 * or what is wrong with it, for a message.
 */
static const char *array_item_read(const char *s, size_t n, array_item *it)
{
    static const char expected[] =
        "expected N, N-M, N-M:STEP or a word of letters, digits, '_', '.', "
        "':' or '-' that starts with a letter or '_'";
    *it = (array_item){0};
    if (memchr(s, '%', n))
        return "Slurm's %N, a limit on running elements, has no equivalent: "
               "the run's slots are the limit";
    if (!(s[0] >= '0' && s[0] <= '9'))
        return (s[0] == '_' ||
                ((s[0] | 0x20) >= 'a' && (s[0] | 0x20) <= 'z')) &&
                       id_chars_ok(s, n)
                   ? NULL
                   : expected;
    size_t i = 0;
    size_t dl = read_digits(s, n, &i, &it->lo);
    if (i == n) /* one number: a value as written, leading zeros kept */
        return it->lo > TF_TASKFILE_MAX_INDEX ? "an index past 4294967295"
                                              : NULL;
    if (s[i] != '-')
        return expected;
    size_t j = ++i, dh = read_digits(s, n, &i, &it->hi);
    it->step = 1;
    if (!dh)
        return expected;
    if (i < n &&
        (s[i] != ':' || (++i, !read_digits(s, n, &i, &it->step)) || i != n))
        return expected;
    if (!it->step)
        return "a step of 0";
    if (it->lo > TF_TASKFILE_MAX_INDEX || it->hi > TF_TASKFILE_MAX_INDEX)
        return "an index past 4294967295";
    if (it->hi < it->lo)
        return "a range that ends before it starts";
    it->range = true;
    if ((dl > 1 && s[0] == '0') || (dh > 1 && s[j] == '0'))
        it->width = (unsigned)(dl > dh ? dl : dh);
    return NULL;
}

static size_t count_digits(uint64_t v)
{
    size_t d = 1;
    while (v >= 10) {
        v /= 10;
        d++;
    }
    return d;
}

/*
 * Check @array's list (comma-separated items) into a: the number of
 * elements and the longest value. Returns 0, 1 (error recorded) or
 * TF_ENOMEM.
 */
static int parse_array(parser *p, uint32_t line, line_attrs *a, const char *val,
                       size_t vlen)
{
    char q[QUOTE_BUF];
    uint64_t count = 0;
    size_t vmax = 0, j = 0;
    for (;;) {
        const char *c = memchr(val + j, ',', vlen - j);
        size_t e = c ? (size_t)(c - val) : vlen;
        array_item it;
        const char *why = e == j ? NULL : array_item_read(val + j, e - j, &it);
        if (e == j)
            return failed(add_error(p, TF_EINVAL, line, 0,
                                    "empty item in @array list '%s'",
                                    quote(q, val, vlen)));
        if (why)
            return failed(add_error(p, TF_EINVAL, line, 0,
                                    "bad item '%s' in @array (%s)",
                                    quote(q, val + j, e - j), why));
        size_t w = it.range ? count_digits(it.hi) : e - j;
        if (it.range && it.width > w)
            w = it.width;
        if (w > vmax)
            vmax = w;
        count += it.range ? (it.hi - it.lo) / it.step + 1 : 1;
        if (count > TF_TASKFILE_MAX_TASKS)
            return failed(add_error(p, TF_ERANGE, line, 0,
                                    "@array of more than %u elements (the "
                                    "most tasks a file may hold)",
                                    TF_TASKFILE_MAX_TASKS));
        if (!c)
            break;
        j = e + 1;
    }
    a->array = val;
    a->array_len = vlen;
    a->array_n = count;
    a->array_vmax = vmax;
    return 0;
}

/* Walks a checked @array list, value by value. */
typedef struct array_iter {
    const char *s;
    size_t n, next; /* the list, and where its next item starts */
    array_item it;  /* the range being walked */
    uint64_t v;     /* its next index */
    char buf[TF_TASKFILE_MAX_ID + 1];
} array_iter;

/* The next value into *v, *len (valid until the next call); false at end. */
static bool array_next(array_iter *ai, const char **v, size_t *len)
{
    if (!ai->it.range || ai->v > ai->it.hi) {
        if (ai->next > ai->n)
            return false;
        const char *item = ai->s + ai->next;
        const char *c = memchr(item, ',', ai->n - ai->next);
        size_t ilen = c ? (size_t)(c - item) : ai->n - ai->next;
        ai->next += ilen + 1;
        array_item_read(item, ilen, &ai->it); /* parse_array said it is fine */
        if (!ai->it.range) {
            *v = item;
            *len = ilen;
            return true;
        }
        ai->v = ai->it.lo;
    }
    size_t d = count_digits(ai->v), w = d > ai->it.width ? d : ai->it.width;
    uint64_t x = ai->v;
    for (size_t i = w; i > 0; i--, x /= 10)
        ai->buf[i - 1] = (char)('0' + x % 10);
    ai->v += ai->it.step;
    *v = ai->buf;
    *len = w;
    return true;
}

/* ---- lines ---- */

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

static int lookup_attr(const char *s, size_t n)
{
    for (int k = 0; k < ATTR_COUNT_; k++)
        if (strlen(attr_names[k]) == n && memcmp(attr_names[k], s, n) == 0)
            return k;
    return -1;
}

/* One `@name[=value]` token. Returns 0, 1 (error recorded) or TF_ENOMEM. */
static int parse_attr(parser *p, uint32_t line, line_attrs *a, const char *name,
                      size_t nlen, const char *val, size_t vlen, bool has_val)
{
    char q[QUOTE_BUF];
    int k = lookup_attr(name, nlen);
    if (k < 0) {
        if (nlen == 0)
            return failed(add_error(p, TF_EINVAL, line, 0,
                                    "'@' without an attribute name"));
        const char *sug = suggest_attr(name, nlen);
        if (sug)
            return failed(add_error(p, TF_EINVAL, line, 0,
                                    "unknown attribute '@%s' (did you mean "
                                    "'@%s'?)",
                                    quote(q, name, nlen), sug));
        return failed(add_error(p, TF_EINVAL, line, 0,
                                "unknown attribute '@%s'",
                                quote(q, name, nlen)));
    }
    if (a->seen & (1u << k))
        return failed(
            add_error(p, TF_EINVAL, line, 0, "@%s given twice", attr_names[k]));
    a->seen |= 1u << k;
    if (k == ATTR_BARRIER || k == ATTR_END) {
        if (has_val)
            return failed(add_error(p, TF_EINVAL, line, 0,
                                    "@%s takes no value", attr_names[k]));
        return 0;
    }
    if (k == ATTR_SHELL && vlen > TF_TASKFILE_MAX_SHELL)
        return failed(add_error(p, TF_ERANGE, line, 0,
                                "@shell of %zu bytes, longer than %u", vlen,
                                TF_TASKFILE_MAX_SHELL));
    if (!vlen) {
        if (k == ATTR_ID)
            a->bad_id = true;
        return failed(add_error(p, TF_EINVAL, line, 0,
                                "@%s needs a value (@%s=VALUE)", attr_names[k],
                                attr_names[k]));
    }
    int64_t v;
    switch (k) {
    case ATTR_ID:
        if (!id_is_valid(val, vlen)) {
            a->bad_id = true;
            return failed(bad_id_error(p, line, "id", val, vlen));
        }
        a->id = val;
        a->id_len = vlen;
        return 0;
    case ATTR_AFTER:
    case ATTR_AFTERANY:
    case ATTR_AFTERNOTOK:
        for (size_t j = 0;;) {
            const char *c = memchr(val + j, ',', vlen - j);
            size_t e = c ? (size_t)(c - val) : vlen;
            const char *one = val + j;
            size_t n = e - j;
            if (!n)
                return failed(add_error(p, TF_EINVAL, line, 0,
                                        "empty id in @%s list '%s'",
                                        attr_names[k], quote(q, val, vlen)));
            if (literal_prefix(one, n) < n && !pattern_is_valid(one, n))
                return failed(add_error(
                    p, TF_EINVAL, line, 0,
                    "bad pattern '%s' in @%s (id characters and *, ? or "
                    "[...], each [ closed by ])",
                    quote(q, one, n), attr_names[k]));
            if (literal_prefix(one, n) == n && !id_is_valid(one, n))
                return failed(bad_id_error(p, line, attr_names[k], one, n));
            if (!c)
                break;
            j = e + 1;
        }
        a->after[k - ATTR_AFTER] = val;
        a->after_len[k - ATTR_AFTER] = vlen;
        return 0;
    case ATTR_PRIO:
        if (!parse_int(val, vlen, INT32_MIN, INT32_MAX, &v))
            return failed(bad_value(p, line, k, val, vlen,
                                    "an integer from -2147483648 to "
                                    "2147483647"));
        a->prio = (int32_t)v;
        return 0;
    case ATTR_CORES:
        if (!parse_int(val, vlen, 1, UINT16_MAX, &v))
            return failed(
                bad_value(p, line, k, val, vlen, "an integer from 1 to 65535"));
        a->cores = (uint16_t)v;
        return 0;
    case ATTR_RETRIES:
        if (!parse_int(val, vlen, 0, TF_TASKFILE_MAX_RETRIES, &v))
            return failed(
                bad_value(p, line, k, val, vlen, "an integer from 0 to 255"));
        a->retries = (int16_t)v;
        return 0;
    case ATTR_TIMEOUT:
    case ATTR_EST:
        if (!parse_seconds(val, vlen,
                           k == ATTR_EST ? &a->est_ms : &a->timeout_ms))
            return failed(bad_value(p, line, k, val, vlen,
                                    "a positive duration: seconds (90, "
                                    "1.5) or with units (500ms, 90s, 10m, "
                                    "2h, 1h30m), at most 49 days"));
        return 0;
    case ATTR_SHELL:
        a->shell = val;
        a->shell_len = vlen;
        return 0;
    case ATTR_ARRAY:
        return parse_array(p, line, a, val, vlen);
    case ATTR_OUTPUT:
        for (size_t m = 0; m < sizeof output_names / sizeof *output_names; m++)
            if (strlen(output_names[m]) == vlen &&
                !memcmp(output_names[m], val, vlen)) {
                a->output = (uint8_t)(m + 1);
                return 0;
            }
        return failed(bad_value(p, line, k, val, vlen, "files, tag or none"));
    }
    return 0;
}

/*
 * A line of @shell or @output: a setting of the whole file, so alone on its
 * line, once, and before the first task. alone: nothing else on the line;
 * bad: its value was refused (already said).
 */
static int add_directive(parser *p, uint32_t line, const line_attrs *a,
                         bool alone, bool bad)
{
    bool shell = a->seen & (1u << ATTR_SHELL);
    const char *name = shell ? "shell" : "output";
    uint32_t *at = shell ? &p->shell_line : &p->output_line;
    if (!alone)
        return add_error(p, TF_EINVAL, line, 0,
                         "@%s must stand alone on its line (it is the %s "
                         "of the whole file)",
                         name, shell ? "shell" : "output mode");
    if (*at)
        return add_error(p, TF_EINVAL, line, 0,
                         "@%s given twice (first on line %u)", name,
                         (unsigned)*at);
    if (p->n)
        return add_error(p, TF_EINVAL, line, 0,
                         "@%s must come before the first task", name);
    if (bad)
        return 0;
    if (shell) {
        memcpy(p->shell, a->shell, a->shell_len);
        p->shell[a->shell_len] = 0;
    } else {
        p->output = a->output;
    }
    *at = line;
    return 0;
}

static int pool_reserve(parser *p, size_t more)
{
    if (p->pcap - p->plen >= more)
        return 0;
    size_t ncap = p->pcap ? p->pcap * 2 : 65536;
    if (ncap < p->plen + more)
        ncap = p->plen + more;
    char *np = realloc(p->pool, ncap);
    if (!np)
        return TF_ENOMEM;
    p->pool = np;
    p->pcap = ncap;
    return 0;
}

static size_t fmt_u32(char *buf, uint32_t v)
{
    char tmp[10];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        buf[i] = tmp[n - 1 - i];
    return n;
}

static int task_room(parser *p)
{
    if (p->n < p->cap)
        return 0;
    /* A line adds at most one entry; lines are fewer than UINT32_MAX - 1. */
    size_t ncap = p->cap ? (size_t)p->cap * 2 : 1024;
    if (ncap > UINT32_MAX - 1)
        ncap = UINT32_MAX - 1;
    tf_tftask *nt = realloc(p->tasks, ncap * sizeof *nt);
    if (!nt)
        return TF_ENOMEM;
    p->tasks = nt;
    p->cap = (uint32_t)ncap;
    return 0;
}

static int add_barrier(parser *p, uint32_t line)
{
    int rc = task_room(p);
    if (!rc)
        rc = pool_reserve(p, 2);
    if (rc)
        return rc;
    tf_tftask *e = &p->tasks[p->n++];
    memset(e, 0, sizeof *e);
    e->str = p->plen;
    e->line = line;
    e->cores = 1;
    e->flags = TF_TFT_BARRIER;
    p->pool[p->plen++] = '\0';
    p->pool[p->plen++] = '\0';
    p->nbarriers++;
    return 0;
}

/*
 * Report that the name id[0..n) of task t (its id, or its array's base)
 * is also task old's, naming both lines.
 */
static int duplicate_error(parser *p, uint32_t t, uint32_t old, const char *id,
                           size_t n)
{
    const tf_tftask *e = &p->tasks[t], *o = &p->tasks[old];
    int w = (int)n;
    if (e->line == o->line) /* two elements of one @array */
        return add_error(p, TF_EEXIST, e->line, 0,
                         "@array gives the element '%.*s' twice", w, id);
    if (e->flags & TF_TFT_DEFAULT_ID)
        return add_error(p, TF_EEXIST, e->line, 0,
                         "duplicate id '%.*s' (this line's default id, also "
                         "given on line %u)",
                         w, id, (unsigned)o->line);
    if (o->flags & TF_TFT_DEFAULT_ID)
        return add_error(p, TF_EEXIST, e->line, 0,
                         "duplicate id '%.*s' (also the default id of line "
                         "%u)",
                         w, id, (unsigned)o->line);
    return add_error(p, TF_EEXIST, e->line, 0,
                     "duplicate id '%.*s' (also on line %u)", w, id,
                     (unsigned)o->line);
}

/*
 * Enter the name id[0..n) of task t: its explicit id, or the base of the
 * @array whose first element t is. A clash with a default id (a line
 * number) can only be seen once every line is read: those are checked in
 * phase 2.
 */
static int insert_id(parser *p, uint32_t t, const char *id, size_t n)
{
    if ((p->nids + 1) * 2 > p->scap) {
        int rc = grow_ids(p);
        if (rc)
            return rc;
    }
    uint32_t h = hash_id(id, n);
    size_t slot;
    uint32_t old = id_find(p, id, n, h, &slot);
    if (old != TF_NONE)
        return duplicate_error(p, t, old, id, n);
    p->slots[slot] = (id_slot){h, t};
    p->nids++;
    if (as_line_number(id, n, UINT32_MAX)) {
        if (p->nnumeric == p->ncap) {
            size_t ncap = p->ncap ? p->ncap * 2 : 64;
            uint32_t *nn = realloc(p->numeric, ncap * sizeof *nn);
            if (!nn)
                return TF_ENOMEM;
            p->numeric = nn;
            p->ncap = ncap;
        }
        p->numeric[p->nnumeric++] = t;
    }
    return 0;
}

/*
 * A new entry for a task of `line` with a's attributes and the id
 * id[0..idlen), with room for a command of cmdlen bytes at *cmd, which the
 * caller writes (the NUL after it is written here). *t: its index.
 */
static int new_task(parser *p, uint32_t line, const line_attrs *a,
                    uint8_t flags, const char *id, size_t idlen, size_t cmdlen,
                    char **cmd, uint32_t *t)
{
    int rc = task_room(p);
    if (!rc)
        rc = pool_reserve(p, idlen + cmdlen + 2);
    if (rc)
        return rc;
    *t = p->n++;
    tf_tftask *e = &p->tasks[*t];
    e->str = p->plen;
    memcpy(p->pool + p->plen, id, idlen);
    p->plen += idlen;
    p->pool[p->plen++] = '\0';
    *cmd = p->pool + p->plen;
    p->plen += cmdlen;
    p->pool[p->plen++] = '\0';
    e->cmd_len = (uint32_t)cmdlen;
    e->line = line;
    e->prio = a->prio;
    e->timeout_ms = a->timeout_ms;
    e->dep_off = 0;
    e->ndeps = 0;
    e->cores = a->cores;
    e->retries = a->retries;
    e->id_len = (uint8_t)idlen;
    e->flags = flags;
    e->est = est_code(a->est_ms);
    p->ntasks++;
    if (a->cores > p->max_cores)
        p->max_cores = a->cores;
    return 0;
}

/*
 * Keep the line's @after lists for phase 2, as task t's (for an @array
 * line: its first element's).
 */
static int keep_after(parser *p, const line_attrs *a, uint32_t t)
{
    for (uint8_t kind = 0; kind < 3; kind++) {
        if (!a->after[kind])
            continue;
        if (tf_grow((void **)&p->after, &p->acap, p->nafter + 1,
                    sizeof *p->after, 256))
            return TF_ENOMEM;
        p->after[p->nafter++] =
            (after_ref){(uint64_t)(a->after[kind] - p->text),
                        (uint32_t)a->after_len[kind], t, kind};
        p->kinds |= kind != TF_EDGE_OK;
        p->globs |= memchr(a->after[kind], '*', a->after_len[kind]) ||
                    memchr(a->after[kind], '?', a->after_len[kind]) ||
                    memchr(a->after[kind], '[', a->after_len[kind]);
    }
    return 0;
}

/* The file holds TF_TASKFILE_MAX_TASKS: say so once, read no more. */
static int too_many_tasks(parser *p, uint32_t line)
{
    p->full = true;
    return add_error(p, TF_ERANGE, line, 0, "more than %u tasks in the file",
                     TF_TASKFILE_MAX_TASKS);
}

/*
 * Record a task line, even one with a bad attribute value, so that its id
 * still resolves and one mistake does not cascade into "unknown dependency"
 * errors on every line that names it.
 */
static int add_task(parser *p, uint32_t line, const line_attrs *a,
                    const char *cmd, size_t cmdlen)
{
    char num[10], *dst;
    const char *id = a->id;
    size_t idlen = a->id_len;
    uint8_t flags = 0;
    uint32_t t;
    if (!id && !a->bad_id) {
        idlen = fmt_u32(num, line);
        id = num;
        flags = TF_TFT_DEFAULT_ID;
    } else if (!id) {
        id = "";
        idlen = 0;
    }
    if (p->ntasks >= TF_TASKFILE_MAX_TASKS)
        return too_many_tasks(p, line);
    int rc = new_task(p, line, a, flags, id, idlen, cmdlen, &dst, &t);
    if (rc)
        return rc;
    memcpy(dst, cmd, cmdlen);
    if (idlen && !(flags & TF_TFT_DEFAULT_ID)) {
        rc = insert_id(p, t, id, idlen);
        if (rc)
            return rc;
    }
    return keep_after(p, a, t);
}

/*
 * Expand an @array line into one task per value, the command's
 * replacement strings ({} the value, {#} its position from 1: subst.h)
 * filled in. A line whose array cannot be made is recorded as one task
 * (add_task), after the error, so that its id still resolves.
 */
static int add_array(parser *p, uint32_t line, const line_attrs *a,
                     const char *cmd, size_t cmdlen)
{
    char q[QUOTE_BUF], base_num[10], id[TF_TASKFILE_MAX_ID + 1];
    const char *base = a->id;
    size_t blen = a->id_len, at, len;
    uint8_t flags = TF_TFT_ARRAY;
    tf_subst sub;
    int bad = tf_subst_init(&sub, cmd, cmdlen, 1, &at, &len), rc = 0;
    if (!base) {
        blen = fmt_u32(base_num, line);
        base = base_num;
        flags |= TF_TFT_DEFAULT_ID;
    }
    if (bad)
        rc = add_error(
            p, TF_EINVAL, line, 0, "'%s' in an @array line's command: %s",
            quote(q, cmd + at, len),
            bad == TF_SUBST_RANGE ? "an array gives one value, {} (or {1})"
                                  : tf_subst_problem(bad));
    else if (blen + 1 + a->array_vmax > TF_TASKFILE_MAX_ID)
        rc = add_error(p, TF_ERANGE, line, 0,
                       "the ids of the elements ('%s.' and the value) reach "
                       "%zu bytes, longer than %u (the task's output files "
                       "ID.out and ID.err must fit in a file name of %u "
                       "bytes)",
                       quote(q, base, blen), blen + 1 + a->array_vmax,
                       TF_TASKFILE_MAX_ID, TF_TASKFILE_NAME_MAX);
    else if (p->ntasks + a->array_n > TF_TASKFILE_MAX_TASKS)
        return too_many_tasks(p, line);
    if (rc || bad || a->bad_id || blen + 1 + a->array_vmax > TF_TASKFILE_MAX_ID)
        return rc ? rc : add_task(p, line, a, cmd, cmdlen);

    if (tf_grow((void **)&p->arrays, &p->arcap, (size_t)p->narrays + 1,
                sizeof *p->arrays, 64))
        return TF_ENOMEM;
    tf_tfarray *arr = &p->arrays[p->narrays++];
    *arr = (tf_tfarray){p->n, 0, (uint32_t)blen};
    memcpy(id, base, blen);
    id[blen] = '.';
    array_iter ai = {.s = a->array, .n = a->array_len};
    const char *v;
    size_t vlen;
    for (uint64_t k = 1; !rc && array_next(&ai, &v, &vlen); k++) {
        tf_subst_arg arg = {v, vlen};
        size_t clen = tf_subst_expand(&sub, &arg, k, NULL, 0);
        uint32_t t;
        char *dst;
        memcpy(id + blen + 1, v, vlen);
        if (clen > TF_TASKFILE_MAX_CMD)
            return add_error(p, TF_ERANGE, line, 0,
                             "command of element '%s' of %zu bytes, longer "
                             "than %u (the most Linux passes to the shell as "
                             "one argument)",
                             quote(q, id, blen + 1 + vlen), clen,
                             TF_TASKFILE_MAX_CMD);
        rc = new_task(p, line, a, flags, id, blen + 1 + vlen, clen, &dst, &t);
        if (rc)
            return rc;
        tf_subst_expand(&sub, &arg, k, dst, clen);
        arr->n++;
        /* A base named twice: one message, not one per element too. */
        size_t nerr = p->err.n;
        if (k == 1 && !(flags & TF_TFT_DEFAULT_ID) &&
            ((rc = insert_id(p, t, base, blen)) || p->err.n > nerr))
            break;
        rc = insert_id(p, t, id, blen + 1 + vlen);
    }
    return rc ? rc : keep_after(p, a, arr->first);
}

/* One line without its newline or trailing CR, known to hold no NUL. */
static int parse_line(parser *p, uint32_t line, const char *s, size_t n)
{
    size_t i = 0;
    while (i < n && is_blank(s[i]))
        i++;
    if (i == n || s[i] == '#')
        return 0;
    line_attrs a = {.cores = 1, .retries = -1};
    bool bad = false;
    unsigned ntok = 0;
    while (i < n && s[i] == '@') {
        size_t t0 = ++i;
        while (i < n && !is_blank(s[i]))
            i++;
        const char *tok = s + t0;
        size_t tlen = i - t0;
        const char *eq = memchr(tok, '=', tlen);
        size_t nlen = eq ? (size_t)(eq - tok) : tlen;
        int rc = parse_attr(p, line, &a, tok, nlen, eq ? eq + 1 : NULL,
                            eq ? tlen - nlen - 1 : 0, eq != NULL);
        if (rc < 0)
            return rc;
        bad |= rc > 0;
        ntok++;
        while (i < n && is_blank(s[i]))
            i++;
    }
    if (a.seen & (1u << ATTR_END)) {
        if (ntok != 1 || i != n)
            return add_error(p, TF_EINVAL, line, 0,
                             "@end must stand alone on its line");
        if (!bad)
            p->end_line = line;
        return 0;
    }
    if (a.seen & (1u << ATTR_BARRIER)) {
        if (ntok != 1 || i != n)
            return add_error(p, TF_EINVAL, line, 0,
                             "@barrier must stand alone on its line");
        return bad ? 0 : add_barrier(p, line);
    }
    if (a.seen & (1u << ATTR_SHELL | 1u << ATTR_OUTPUT))
        return add_directive(p, line, &a, ntok == 1 && i == n, bad);
    if (i == n)
        return add_error(p, TF_EINVAL, line, 0, "attributes but no command");
    /* Recorded all the same, so that its id still resolves. */
    if (n - i > TF_TASKFILE_MAX_CMD) {
        int rc = add_error(p, TF_ERANGE, line, 0,
                           "command of %zu bytes, longer than %u (the most "
                           "Linux passes to the shell as one argument)",
                           n - i, TF_TASKFILE_MAX_CMD);
        if (rc)
            return rc;
    }
    if (a.array)
        return add_array(p, line, &a, s + i, n - i);
    return add_task(p, line, &a, s + i, n - i);
}

static int scan(parser *p, bool has_nul)
{
    const char *s = p->text, *end = p->text + p->len;
    /* Editors on some systems start UTF-8 files with a byte-order mark. */
    if (p->len >= 3 && memcmp(s, UTF8_BOM, 3) == 0)
        s += 3;
    uint32_t line = 0;
    while (s < end && !p->err.truncated && !p->end_line && !p->full) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        const char *e = nl ? nl : end;
        size_t n = (size_t)(e - s);
        const char *z;
        int rc;
        if (line == UINT32_MAX - 2)
            return add_error(p, TF_ERANGE, 0, 0, "more than %u lines",
                             (unsigned)(UINT32_MAX - 2));
        line++;
        if (n > TF_TASKFILE_MAX_LINE)
            rc = add_error(p, TF_ERANGE, line, 0, "line longer than %u bytes",
                           (unsigned)TF_TASKFILE_MAX_LINE);
        else if (has_nul && (z = memchr(s, '\0', n)) != NULL)
            rc = add_error(p, TF_EINVAL, line, (uint32_t)(z - s + 1),
                           "NUL byte (is this a text file?)");
        else
            rc = parse_line(p, line, s, (n && s[n - 1] == '\r') ? n - 1 : n);
        if (rc < 0)
            return rc;
        s = nl ? nl + 1 : end;
        p->nlines = line;
    }
    return 0;
}

/* ---- dependencies ---- */

/*
 * The dependency lists as they are built: task indexes, their kinds once
 * the file has @afterany or @afternotok, and, per task, the last list that
 * named it (a name repeated in one list counts once).
 */
typedef struct dep_list {
    uint32_t *deps;
    uint8_t *kinds; /* TF_EDGE_* per entry; NULL without p->kinds */
    size_t n, cap, kcap;
    uint32_t *stamp;
    uint32_t gen;
} dep_list;

/* Append d; 1 after reporting the file's limit, or TF_ENOMEM. */
static int push_dep(parser *p, dep_list *L, uint32_t d, uint8_t kind)
{
    if (L->n == UINT32_MAX)
        return failed(add_error(p, TF_ERANGE, 0, 0,
                                "more than %u dependencies",
                                (unsigned)UINT32_MAX));
    if (tf_grow((void **)&L->deps, &L->cap, L->n + 1, sizeof *L->deps,
                1024) ||
        (p->kinds && tf_grow((void **)&L->kinds, &L->kcap, L->n + 1, 1, 1024)))
        return TF_ENOMEM;
    if (L->kinds)
        L->kinds[L->n] = kind;
    L->deps[L->n++] = d;
    return 0;
}

/* d, named by task t's current list, unless that list named it already. */
static int add_dep(parser *p, dep_list *L, uint32_t d, uint8_t kind)
{
    if (L->stamp[d] == L->gen)
        return 0;
    L->stamp[d] = L->gen;
    return push_dep(p, L, d, kind);
}

/* Task t's id compared with s[0..n), bytewise, a prefix first. */
static int id_cmp(const parser *p, uint32_t t, const char *s, size_t n)
{
    const tf_tftask *e = &p->tasks[t];
    int c = memcmp(p->pool + e->str, s, e->id_len < n ? e->id_len : n);
    return c ? c : (e->id_len > n) - (e->id_len < n);
}

/*
 * p->sorted: every task with an id, in id order, by a bottom-up merge sort
 * (no recursion, no comparison callback: qsort has no context in C11).
 */
static int sort_ids(parser *p)
{
    uint32_t n = 0;
    uint32_t *a = malloc(((size_t)p->n + 1) * sizeof *a);
    uint32_t *b = malloc(((size_t)p->n + 1) * sizeof *b);
    if (!a || !b) {
        free(a);
        free(b);
        return TF_ENOMEM;
    }
    for (uint32_t t = 0; t < p->n; t++)
        if (p->tasks[t].id_len)
            a[n++] = t;
    for (size_t w = 1; w < n; w *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * w) {
            size_t mid = lo + w < n ? lo + w : n;
            size_t hi = lo + 2 * w < n ? lo + 2 * w : n;
            size_t i = lo, j = mid, k = lo;
            while (i < mid && j < hi) {
                const tf_tftask *e = &p->tasks[a[j]];
                b[k++] = id_cmp(p, a[i], p->pool + e->str, e->id_len) <= 0
                             ? a[i++]
                             : a[j++];
            }
            while (i < mid)
                b[k++] = a[i++];
            while (j < hi)
                b[k++] = a[j++];
        }
        uint32_t *tmp = a;
        a = b;
        b = tmp;
    }
    free(b);
    p->sorted = a;
    p->nsorted = n;
    return 0;
}

/*
 * Whether task d is t itself or, when t is an @array element (its
 * array's first: the others share its lists), an element of t's array:
 * an element cannot wait for its own array.
 */
static bool is_own(const parser *p, uint32_t t, uint32_t d)
{
    const tf_tfarray *a = p->tasks[t].flags & TF_TFT_ARRAY
                              ? array_of(p->arrays, p->narrays, t)
                              : NULL;
    return d == t || (a && d - a->first < a->n);
}

/*
 * Every task whose id matches pattern pat[0..m), but t itself (and, for
 * an @array element, its own array's). They are
 * found among the ids that start with its literal prefix, by a binary
 * search in p->sorted, so a pattern costs a search plus what it scans:
 * the ids with its prefix (all of them when it starts with a wildcard).
 * A pattern that matches nothing is an error, as a name that names no task.
 */
static int add_matches(parser *p, uint32_t t, const after_ref *r,
                       const char *pat, size_t m, dep_list *L)
{
    size_t pre = literal_prefix(pat, m);
    uint32_t lo = 0, hi = p->nsorted;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (id_cmp(p, p->sorted[mid], pat, pre) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    bool self = false, found = false;
    for (uint32_t k = lo; k < p->nsorted; k++) {
        uint32_t d = p->sorted[k];
        const tf_tftask *e = &p->tasks[d];
        const char *id = p->pool + e->str;
        if (e->id_len < pre || memcmp(id, pat, pre))
            break;
        if (!pattern_match(pat + pre, m - pre, id + pre, e->id_len - pre))
            continue;
        if (is_own(p, t, d)) {
            self = true;
            continue;
        }
        found = true;
        int rc = add_dep(p, L, d, r->kind);
        if (rc)
            return rc;
    }
    char q[QUOTE_BUF];
    if (!found)
        return add_error(p, TF_EDEP, p->tasks[t].line, 0,
                         "@%s pattern '%s' matches no task%s",
                         attr_names[ATTR_AFTER + r->kind], quote(q, pat, m),
                         !self                              ? ""
                         : p->tasks[t].flags & TF_TFT_ARRAY ? " but this line's"
                                                            : " but this one");
    return 0;
}

/*
 * The task a plain id names (every element, when it names an @array: its
 * @id or line number, "sim" for sim.1 ... sim.N), or an error: unknown, t
 * itself, or t's own array.
 */
static int add_named(parser *p, uint32_t t, const after_ref *r,
                     const char *name, size_t nlen, dep_list *L)
{
    char q[QUOTE_BUF], q2[QUOTE_BUF];
    uint32_t d = lookup_id(p, name, nlen);
    if (d != TF_NONE && (p->tasks[t].flags & TF_TFT_ARRAY) && is_own(p, t, d))
        return add_error(p, TF_EDEP, p->tasks[t].line, 0,
                         "'%s' in @%s is this @array line's own (an element "
                         "cannot wait for its array)",
                         quote(q, name, nlen),
                         attr_names[ATTR_AFTER + r->kind]);
    if (d == t)
        return add_error(p, TF_EDEP, p->tasks[t].line, 0,
                         "task '%s' depends on itself", quote(q, name, nlen));
    if (d != TF_NONE) {
        const tf_tftask *e = &p->tasks[d];
        const tf_tfarray *a =
            e->flags & TF_TFT_ARRAY ? array_of(p->arrays, p->narrays, d) : NULL;
        /* The array's base, not one element's id: all of them. */
        if (!a || (e->id_len == nlen && !memcmp(p->pool + e->str, name, nlen)))
            return add_dep(p, L, d, r->kind);
        int rc = 0;
        for (uint32_t u = a->first; u < a->first + a->n && !rc; u++)
            rc = add_dep(p, L, u, r->kind);
        return rc;
    }
    /* The search costs a pass over every id: only for kept messages. */
    uint32_t sug = p->err.n < TF_TASKFILE_MAX_ERRORS ? suggest_id(p, name, nlen)
                                                     : TF_NONE;
    if (sug != TF_NONE)
        return add_error(p, TF_EDEP, p->tasks[t].line, 0,
                         "unknown dependency '%s' (did you mean '%s'?)",
                         quote(q, name, nlen),
                         quote(q2, p->pool + p->tasks[sug].str,
                               p->tasks[sug].id_len));
    return add_error(p, TF_EDEP, p->tasks[t].line, 0,
                     "unknown dependency '%s'", quote(q, name, nlen));
}

/* One @after, @afterany or @afternotok list of task t. */
static int resolve_after(parser *p, uint32_t t, const after_ref *r,
                         dep_list *L)
{
    const char *v = p->text + r->off;
    /* A new list: restamp from scratch when the counter wraps. */
    if (++L->gen == 0) {
        memset(L->stamp, 0, p->n * sizeof *L->stamp);
        L->gen = 1;
    }
    for (size_t j = 0;;) {
        const char *c = memchr(v + j, ',', r->len - j);
        size_t e = c ? (size_t)(c - v) : r->len;
        int rc = literal_prefix(v + j, e - j) < e - j
                     ? add_matches(p, t, r, v + j, e - j, L)
                     : add_named(p, t, r, v + j, e - j, L);
        if (rc || !c)
            return rc;
        j = e + 1;
    }
}

/*
 * Give each line that holds a task with a default id its task index, so
 * that a line number in @after finds it, and report explicit ids that
 * spell the line number of a task with a default id.
 */
static int index_default_ids(parser *p)
{
    p->line_task = malloc(((size_t)p->nlines + 1) * sizeof *p->line_task);
    if (!p->line_task)
        return TF_ENOMEM;
    memset(p->line_task, 0xff, ((size_t)p->nlines + 1) * sizeof *p->line_task);
    for (uint32_t t = 0; t < p->n; t++)
        if (p->tasks[t].flags & TF_TFT_DEFAULT_ID)
            p->line_task[p->tasks[t].line] = t;
    for (size_t i = 0; i < p->nnumeric; i++) {
        uint32_t t = p->numeric[i];
        const tf_tftask *e = &p->tasks[t];
        /* An element's id is never a number: t is its array's base. */
        const tf_tfarray *a =
            e->flags & TF_TFT_ARRAY ? array_of(p->arrays, p->narrays, t) : NULL;
        const char *id = p->pool + e->str;
        size_t n = a ? a->base_len : e->id_len;
        uint32_t line = as_line_number(id, n, p->nlines);
        uint32_t d = line ? p->line_task[line] : TF_NONE;
        if (d == TF_NONE)
            continue;
        /* Blame the later line, as a one-pass check would have. */
        int rc = d > t ? duplicate_error(p, d, t, id, n)
                       : duplicate_error(p, t, d, id, n);
        if (rc)
            return rc;
    }
    return 0;
}

/*
 * Build every dependency list in one array. A barrier depends on the tasks
 * since the previous barrier (or on that barrier when there are none), and
 * each task on the last barrier before it, so the barrier costs two edges
 * per task rather than one per pair of tasks across it. *forward tells
 * whether some task depends on a later one: only then can there be a cycle.
 */
static int resolve(parser *p, tf_taskfile *tf, bool *forward)
{
    int rc = 0;
    if (p->nafter || p->nnumeric)
        rc = index_default_ids(p);
    if (!rc && p->globs)
        rc = sort_ids(p);
    dep_list L = {0};
    if (!rc && p->nafter && !(L.stamp = calloc(p->n, sizeof *L.stamp)))
        rc = TF_ENOMEM;
    size_t ai = 0;
    uint32_t prev = TF_NONE, seg = 0, shared = 0;
    uint64_t nexp = 0, edges = 0; /* an array's shared list, each time */
    bool fwd = false;
    for (uint32_t t = 0; t < p->n && !p->err.truncated && !rc; t++) {
        tf_tftask *e = &p->tasks[t];
        if ((e->flags & TF_TFT_ARRAY) && t > 0 &&
            (p->tasks[t - 1].flags & TF_TFT_ARRAY) &&
            p->tasks[t - 1].line == e->line) {
            /* An element after its array's first: the first's lists. */
            e->dep_off = p->tasks[t - 1].dep_off;
            e->ndeps = p->tasks[t - 1].ndeps;
            nexp += shared;
            edges += e->ndeps;
            continue;
        }
        e->dep_off = (uint32_t)L.n;
        if (e->flags & TF_TFT_BARRIER) {
            for (uint32_t u = seg; u < t && !rc; u++)
                rc = push_dep(p, &L, u, TF_EDGE_OK);
            if (!rc && seg == t && prev != TF_NONE)
                rc = push_dep(p, &L, prev, TF_EDGE_OK);
            prev = t;
            seg = t + 1;
        } else {
            size_t before = L.n;
            for (; !rc && ai < p->nafter && p->after[ai].task == t; ai++)
                rc = resolve_after(p, t, &p->after[ai], &L);
            shared = (uint32_t)(L.n - before);
            nexp += shared;
            for (size_t k = before; k < L.n; k++)
                fwd |= L.deps[k] > t;
            if (!rc && prev != TF_NONE)
                rc = push_dep(p, &L, prev, TF_EDGE_OK);
        }
        e->ndeps = (uint32_t)(L.n - e->dep_off);
        edges += e->ndeps;
    }
    /* What the scheduler gets: the elements' shared lists add up. */
    if (!rc && edges > UINT32_MAX)
        rc = failed(add_error(p, TF_ERANGE, 0, 0, "more than %u dependencies",
                              (unsigned)UINT32_MAX));
    if (!rc) {
        /* Trimmed of the room left by doubling. */
        uint32_t *dd = realloc(L.deps, (L.n ? L.n : 1) * sizeof *L.deps);
        tf->deps = dd ? dd : L.deps;
        uint8_t *kk = L.kinds ? realloc(L.kinds, L.n ? L.n : 1) : NULL;
        tf->dep_kind = kk ? kk : L.kinds;
        if (!tf->deps && !(tf->deps = malloc(sizeof *tf->deps)))
            rc = TF_ENOMEM;
        L.deps = NULL;
        L.kinds = NULL;
        tf->nedges = (uint32_t)L.n;
        tf->nafter = (uint32_t)nexp;
        *forward = fwd;
    }
    free(L.stamp);
    free(L.kinds);
    free(L.deps);
    return rc < 0 ? rc : 0; /* 1: a limit, reported */
}

/* ---- the whole graph ---- */

static const char *display_name(const tf_taskfile *tf, uint32_t i)
{
    return tf_taskfile_is_barrier(tf, i) ? "@barrier" : tf_taskfile_id(tf, i);
}

/* "a (line 2) -> b (line 5) -> a (line 2)": cyc[i+1] depends on cyc[i]. */
static int report_cycle(parser *p, const tf_taskfile *tf, const uint32_t *cyc,
                        size_t ncyc)
{
    size_t shown = ncyc < CYCLE_SHOW ? ncyc : CYCLE_SHOW - 1;
    /* Ids are at most TF_TASKFILE_MAX_ID bytes; a line number at most 10. */
    char buf[(CYCLE_SHOW + 2) * (TF_TASKFILE_MAX_ID + 32)];
    size_t off = 0;
    for (size_t i = 0; i <= shown; i++) {
        uint32_t t = cyc[i < shown ? i : 0];
        if (i == shown && shown < ncyc)
            off += (size_t)snprintf(buf + off, sizeof buf - off,
                                    "... (%zu more) -> ", ncyc - shown);
        off += (size_t)snprintf(
            buf + off, sizeof buf - off, "%s (line %u)%s", display_name(tf, t),
            (unsigned)tf->tasks[t].line, i < shown ? " -> " : "");
    }
    return add_error(p, TF_ECYCLE, 0, 0, "dependency cycle: %s", buf);
}

/*
 * Longest path, counted in tasks, by Kahn's algorithm over the scheduler's
 * dependent lists (the in-degree of a task is its dependency count). The
 * graph is known to be acyclic, so every task is reached.
 */
static int longest_chain(const tf_dag *d, uint32_t base, const tf_taskfile *tf,
                         uint32_t *out)
{
    uint32_t n = tf->n;
    uint32_t *indeg = malloc(n * sizeof *indeg);
    uint32_t *depth = calloc(n, sizeof *depth);
    uint32_t *queue = malloc(n * sizeof *queue);
    int rc = 0;
    if (!indeg || !depth || !queue) {
        rc = TF_ENOMEM;
        goto out_with_arrays;
    }
    size_t head = 0, tail = 0;
    for (uint32_t t = 0; t < n; t++) {
        indeg[t] = tf->tasks[t].ndeps;
        if (!indeg[t])
            queue[tail++] = t;
    }
    uint32_t best = 0;
    while (head < tail) {
        uint32_t u = queue[head++];
        uint32_t du = depth[u] + (tf_taskfile_is_barrier(tf, u) ? 0 : 1);
        if (du > best)
            best = du;
        for (uint32_t e = d->out_head[base + u]; e != TF_NONE;
             e = d->e_next[e]) {
            uint32_t v = d->e_to[e] - base;
            if (depth[v] < du)
                depth[v] = du;
            if (--indeg[v] == 0)
                queue[tail++] = v;
        }
    }
    *out = best;
out_with_arrays:
    free(queue);
    free(depth);
    free(indeg);
    return rc;
}

/*
 * When every dependency points back in the file, file order is a
 * topological order: no cycle is possible (tf_dag_find_cycle takes the same
 * shortcut) and one pass gives the longest chain.
 */
static int chain_in_file_order(const tf_taskfile *tf, uint32_t *out)
{
    uint32_t *depth = malloc((tf->n ? tf->n : 1) * sizeof *depth);
    if (!depth)
        return TF_ENOMEM;
    uint32_t best = 0;
    for (uint32_t t = 0; t < tf->n; t++) {
        uint32_t nd, dt = 0;
        const uint32_t *d = tf_taskfile_deps(tf, t, &nd);
        for (uint32_t k = 0; k < nd; k++)
            if (depth[d[k]] > dt)
                dt = depth[d[k]];
        depth[t] = dt + (tf_taskfile_is_barrier(tf, t) ? 0 : 1);
        if (depth[t] > best)
            best = depth[t];
    }
    free(depth);
    *out = best;
    return 0;
}

/* Cycle check and longest chain, through a scratch scheduler. */
static int check_graph(parser *p, tf_taskfile *tf)
{
    tf_sched s;
    int rc = tf_sched_init(&s);
    if (rc)
        return rc;
    uint32_t base, cyc[CYCLE_SHOW];
    size_t ncyc = 0;
    rc = tf_taskfile_submit(tf, &s, 0, &base);
    if (rc)
        goto out_with_sched;
    rc = tf_sched_seal(&s, cyc, CYCLE_SHOW, &ncyc);
    if (rc == TF_ECYCLE) {
        for (size_t i = 0; i < ncyc && i < CYCLE_SHOW; i++)
            cyc[i] -= base;
        rc = report_cycle(p, tf, cyc, ncyc);
        goto out_with_sched;
    }
    if (rc)
        goto out_with_sched;
    rc = longest_chain(&s.dag, base, tf, &tf->max_chain);
out_with_sched:
    tf_sched_free(&s);
    return rc;
}

int tf_taskfile_parse(const char *name, const char *text, size_t len,
                      tf_taskfile *out, tf_tferr *err)
{
    return tf_taskfile_parse_flags(name, text, len, 0, out, err);
}

int tf_taskfile_parse_flags(const char *name, const char *text, size_t len,
                            unsigned flags, tf_taskfile *out, tf_tferr *err)
{
    if (err)
        memset(err, 0, sizeof *err);
    if (!name || !out || (!text && len))
        return TF_EINVAL;
    if (!text)
        text = ""; /* so that text + len is defined */
    parser p = {.name = name, .text = text, .len = len};
    tf_taskfile tf = {0};
    bool forward = false;

    int rc = scan(&p, len && memchr(text, '\0', len) != NULL);
    if (rc)
        goto out_with_parser;
    if (!p.err.n && !p.ntasks && !(flags & TF_TASKFILE_EMPTY_OK)) {
        rc = add_error(&p, TF_EINVAL, 0, 0, "%s",
                       len ? "no tasks (only blank lines, comments or "
                             "barriers)"
                           : "empty file, no tasks");
        goto out_with_parser;
    }
    if (p.err.truncated)
        goto out_with_parser;
    rc = resolve(&p, &tf, &forward);
    if (rc || p.err.n)
        goto out_with_parser;

    /* Hand the tables over, trimmed of the room left by doubling. */
    tf_tftask *tasks = realloc(p.tasks, p.n * sizeof *p.tasks);
    tf.tasks = tasks ? tasks : p.tasks;
    p.tasks = NULL;
    char *pool = realloc(p.pool, p.plen);
    tf.pool = pool ? pool : p.pool;
    p.pool = NULL;
    tf.pool_len = p.plen;
    tf.n = p.n;
    tf.ntasks = p.ntasks;
    tf.nbarriers = p.nbarriers;
    tf.max_cores = p.max_cores;
    tf.shell_line = p.shell_line;
    tf.output = p.output;
    tf.output_line = p.output_line;
    tf.end_line = p.end_line;
    tf.arrays = p.arrays; /* a few per file: not worth a trim */
    tf.narrays = p.narrays;
    p.arrays = NULL;
    if (p.shell_line && !(tf.shell = strdup(p.shell)))
        rc = TF_ENOMEM;
    else if (forward)
        rc = check_graph(&p, &tf);
    else
        rc = chain_in_file_order(&tf, &tf.max_chain);

out_with_parser:
    free(p.arrays);
    free(p.sorted);
    free(p.line_task);
    free(p.after);
    free(p.numeric);
    free(p.slots);
    free(p.pool);
    free(p.tasks);
    if (!rc && p.err.n)
        rc = TF_EINVAL;
    if (rc)
        tf_taskfile_free(&tf);
    else
        *out = tf;
    sort_errors(&p.err);
    if (err)
        *err = p.err;
    else
        tf_tferr_free(&p.err);
    return rc;
}

void tf_taskfile_free(tf_taskfile *tf)
{
    free(tf->tasks);
    free(tf->deps);
    free(tf->dep_kind);
    free(tf->pool);
    free(tf->shell);
    free(tf->arrays);
    memset(tf, 0, sizeof *tf);
}

size_t tf_taskfile_bytes(const tf_taskfile *tf)
{
    return (size_t)tf->n * sizeof *tf->tasks +
           (size_t)tf->nedges * (sizeof *tf->deps + (tf->dep_kind ? 1 : 0)) +
           tf->pool_len + (size_t)tf->narrays * sizeof *tf->arrays;
}

const tf_tfarray *tf_taskfile_array(const tf_taskfile *tf, uint32_t i)
{
    return tf->tasks[i].flags & TF_TFT_ARRAY
               ? array_of(tf->arrays, tf->narrays, i)
               : NULL;
}

int tf_taskfile_submit(const tf_taskfile *tf, tf_sched *s,
                       uint8_t default_retries, uint32_t *first)
{
    uint32_t base = s->dag.n;
    if ((uint64_t)base + tf->n >= UINT32_MAX - 1)
        return TF_ERANGE;
    for (uint32_t i = 0; i < tf->n; i++) {
        const tf_tftask *e = &tf->tasks[i];
        bool barrier = (e->flags & TF_TFT_BARRIER) != 0;
        uint8_t retries = barrier          ? 0
                          : e->retries < 0 ? default_retries
                                           : (uint8_t)e->retries;
        uint32_t idx;
        int rc = tf_sched_add_task(s, barrier ? 0 : e->prio, e->cores, retries,
                                   &idx);
        if (rc)
            return rc;
    }
    for (uint32_t i = 0; i < tf->n; i++) {
        const tf_tftask *e = &tf->tasks[i];
        for (uint32_t k = 0; k < e->ndeps; k++) {
            uint32_t from = base + tf->deps[e->dep_off + k];
            uint8_t kind = tf_taskfile_dep_kind(tf, i, k);
            int rc = kind == TF_EDGE_OK
                         ? tf_sched_add_dep(s, from, base + i)
                         : tf_sched_add_order_dep(s, from, base + i, kind);
            if (rc)
                return rc;
        }
    }
    *first = base;
    return 0;
}
