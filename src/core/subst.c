/* GNU parallel's replacement strings and shell quoting: a template and a job's arguments into a command. */
#include "subst.h"

#include <string.h>

/*
 * The rules are parallel's own (its %Global::replace table and
 * shell_quote_scalar_default, in /usr/bin/parallel 20221122); subst.h
 * states them. tests/cli/args.sh runs the same inputs through both and
 * compares the commands.
 */

/* What follows the source number, or '{' itself, up to the '}'. */
enum { MOD_NONE, MOD_EXT, MOD_BASE, MOD_DIR, MOD_BASE_EXT };

enum { RS_LITERAL, RS_ALL, RS_POS, RS_SEQ, RS_SLOT, RS_PERL, RS_ZERO };

typedef struct rstring {
    int kind;    /* RS_* */
    int mod;     /* MOD_*, for RS_ALL and RS_POS */
    int64_t pos; /* RS_POS: 1.. from the first source, -1.. from the last */
    size_t len;  /* bytes of the replacement string, braces included */
} rstring;

/* A modifier and its closing brace at t[j..n): its MOD_* and length. */
static int modifier(const char *t, size_t n, size_t j, size_t *len)
{
    static const struct {
        const char *s;
        int mod;
    } mods[] = {{"}", MOD_NONE},
                {".}", MOD_EXT},
                {"/}", MOD_BASE},
                {"//}", MOD_DIR},
                {"/.}", MOD_BASE_EXT}};
    for (size_t k = 0; k < sizeof mods / sizeof *mods; k++) {
        size_t m = strlen(mods[k].s);
        if (n - j >= m && !memcmp(t + j, mods[k].s, m)) {
            *len = m;
            return mods[k].mod;
        }
    }
    return -1;
}

/* A perl expression "{=...=}" from t[j] == '=': its end, or 0 if none. */
static size_t perl_end(const char *t, size_t n, size_t j)
{
    for (size_t k = j + 1; k + 1 < n; k++)
        if (t[k] == '=' && t[k + 1] == '}')
            return k + 2;
    return 0;
}

/* The replacement string at t[i] == '{', or RS_LITERAL. */
static rstring match(const char *t, size_t n, size_t i)
{
    rstring r = {RS_LITERAL, MOD_NONE, 0, 1};
    size_t j = i + 1, m;
    if (n - j >= 2 && t[j + 1] == '}' && (t[j] == '#' || t[j] == '%')) {
        r.kind = t[j] == '#' ? RS_SEQ : RS_SLOT;
        r.len = 3;
        return r;
    }
    if (j < n && t[j] == '=') {
        size_t e = perl_end(t, n, j);
        if (e) {
            r.kind = RS_PERL;
            r.len = e - i;
        }
        return r;
    }
    bool neg = j < n && t[j] == '-';
    size_t d0 = j + neg, d = d0;
    int64_t v = 0;
    for (; d < n && t[d] >= '0' && t[d] <= '9'; d++)
        if (v < ((int64_t)1 << 40)) /* past any number of sources */
            v = v * 10 + (t[d] - '0');
    if (d == d0 && neg)
        return r;
    if (d > d0 && d < n && t[d] == '=') {
        size_t e = perl_end(t, n, d);
        if (e) {
            r.kind = RS_PERL;
            r.len = e - i;
        }
        return r;
    }
    int mod = modifier(t, n, d, &m);
    if (mod < 0)
        return r;
    r.mod = mod;
    r.len = d + m - i;
    if (d == d0) {
        r.kind = RS_ALL;
    } else {
        r.kind = v == 0 ? RS_ZERO : RS_POS;
        r.pos = neg ? -v : v;
    }
    return r;
}

int tf_subst_init(tf_subst *s, const char *t, size_t n, uint32_t nargs,
                  size_t *at, size_t *len)
{
    *s = (tf_subst){t, n, nargs, false, true};
    /* parallel's /^[^ \t\n=]*REPLACEMENT/: the first word's end. */
    size_t word = 0;
    while (word < n && !strchr(" \t\n=", t[word]))
        word++;
    for (size_t i = 0; i < n;) {
        const char *b = memchr(t + i, '{', n - i);
        if (!b)
            break;
        i = (size_t)(b - t);
        rstring r = match(t, n, i);
        int bad = r.kind == RS_SLOT   ? TF_SUBST_SLOT
                  : r.kind == RS_PERL ? TF_SUBST_PERL
                  : r.kind == RS_ZERO ? TF_SUBST_ZERO
                  : r.kind == RS_POS &&
                          (r.pos > (int64_t)nargs || -r.pos > (int64_t)nargs)
                      ? TF_SUBST_RANGE
                      : TF_SUBST_OK;
        if (bad) {
            *at = i;
            *len = r.len;
            return bad;
        }
        if (r.kind != RS_LITERAL) {
            s->any = true;
            if (i < word)
                s->quote = false;
        }
        i += r.len;
    }
    return TF_SUBST_OK;
}

const char *tf_subst_problem(int code)
{
    switch (code) {
    case TF_SUBST_SLOT:
        return "parallel's job slot {%} has no equivalent in taskfarm";
    case TF_SUBST_PERL:
        return "perl expressions {= ... =} are not supported";
    case TF_SUBST_ZERO:
        return "input sources are numbered from 1";
    case TF_SUBST_RANGE:
        return "names an input source past the last one";
    }
    return "no problem";
}

/* ---- the argument's part each modifier takes: a view of it ---- */

/* {.}: parallel's s:\.[^/.]*$:: */
static size_t without_ext(const char *s, size_t n)
{
    size_t k = n;
    while (k > 0 && s[k - 1] != '/' && s[k - 1] != '.')
        k--;
    return k > 0 && s[k - 1] == '.' ? k - 1 : n;
}

/*
 * Perl's File::Basename::fileparse and the strip dirname does after it:
 * the directory part, "." when there is none, its trailing slashes
 * dropped but never its first byte. *base_empty: nothing after it.
 */
static void dir_part(const char **s, size_t *n, bool *base_empty)
{
    size_t k = *n;
    while (k > 0 && (*s)[k - 1] != '/')
        k--;
    *base_empty = k == *n;
    if (k == 0) {
        *s = ".";
        *n = 1;
        return;
    }
    while (k > 1 && (*s)[k - 1] == '/')
        k--;
    *n = k;
}

/* Perl's dirname (Unix): the directory part, again when the base is empty. */
static void dirname_view(const char **s, size_t *n)
{
    bool base_empty;
    dir_part(s, n, &base_empty);
    if (base_empty)
        dir_part(s, n, &base_empty);
}

static void apply(int mod, const char **s, size_t *n)
{
    if (mod == MOD_DIR) {
        dirname_view(s, n);
        return;
    }
    if (mod == MOD_BASE || mod == MOD_BASE_EXT) {
        const char *slash = NULL;
        for (size_t k = *n; k > 0 && !slash; k--)
            if ((*s)[k - 1] == '/')
                slash = *s + k - 1;
        if (slash) {
            *n -= (size_t)(slash + 1 - *s);
            *s = slash + 1;
        }
    }
    if (mod == MOD_EXT || mod == MOD_BASE_EXT)
        *n = without_ext(*s, *n);
}

/* ---- writing ---- */

typedef struct sink {
    char *out;
    size_t cap, at;
} sink;

static void put(sink *k, const char *s, size_t n)
{
    if (k->at < k->cap) {
        size_t m = k->cap - k->at < n ? k->cap - k->at : n;
        memcpy(k->out + k->at, s, m);
    }
    k->at += n;
}

static bool is_safe(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' ||
           c == '+' || c == '/';
}

/*
 * parallel's shell_quote_scalar_default: '...' with each ' as '"'"',
 * then s/^''// and s/''$//, which drop the quote that opens (closes) the
 * string together with the first (last) byte of a ' at that end.
 */
static void put_quoted(sink *k, const char *s, size_t n)
{
    size_t i = 0;
    while (i < n && is_safe((unsigned char)s[i]))
        i++;
    if (n && i == n) {
        put(k, s, n);
        return;
    }
    if (!n) {
        put(k, "''", 2);
        return;
    }
    static const char q[] = "'\"'\"'";
    bool open = s[0] != '\'', close = s[n - 1] != '\'';
    if (open)
        put(k, "'", 1);
    for (i = 0; i < n;) {
        const char *e = memchr(s + i, '\'', n - i);
        size_t run = e ? (size_t)(e - s) - i : n - i;
        put(k, s + i, run);
        i += run;
        if (i == n)
            break;
        size_t lo = i == 0 && !open, hi = i == n - 1 && !close ? 4 : 5;
        put(k, q + lo, hi - lo);
        i++;
    }
    if (close)
        put(k, "'", 1);
}

static void put_arg(sink *k, const tf_subst *s, int mod, const tf_subst_arg *a)
{
    const char *v = a->s;
    size_t n = a->len;
    apply(mod, &v, &n);
    if (s->quote)
        put_quoted(k, v, n);
    else
        put(k, v, n);
}

static void put_u64(sink *k, uint64_t v)
{
    char tmp[20];
    size_t i = sizeof tmp;
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    put(k, tmp + i, sizeof tmp - i);
}

size_t tf_subst_expand(const tf_subst *s, const tf_subst_arg *args,
                       uint64_t seq, char *out, size_t cap)
{
    sink k = {out, cap, 0};
    const char *t = s->t;
    size_t n = s->n, i = 0;
    while (i < n) {
        const char *b = memchr(t + i, '{', n - i);
        size_t lit = b ? (size_t)(b - t) - i : n - i;
        put(&k, t + i, lit);
        i += lit;
        if (i == n)
            break;
        rstring r = match(t, n, i);
        if (r.kind == RS_ALL) {
            for (uint32_t a = 0; a < s->nargs; a++) {
                if (a)
                    put(&k, " ", 1);
                put_arg(&k, s, r.mod, &args[a]);
            }
        } else if (r.kind == RS_POS) {
            int64_t a = r.pos > 0 ? r.pos - 1 : (int64_t)s->nargs + r.pos;
            put_arg(&k, s, r.mod, &args[a]);
        } else if (r.kind == RS_SEQ) {
            put_u64(&k, seq);
        } else {
            put(&k, t + i, r.len); /* as written */
        }
        i += r.len;
    }
    for (uint32_t a = 0; !s->any && a < s->nargs; a++) {
        put(&k, " ", 1);
        put_arg(&k, s, MOD_NONE, &args[a]);
    }
    return k.at;
}
