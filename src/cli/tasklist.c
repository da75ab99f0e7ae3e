/* A farm's task list as one text: its task file, then each addition (taskfarm add), parsed as one file; messages about an addition name its own lines. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "farm.h"
#include "runstate.h"

/*
 * Why one text: an addition is validated exactly as if its lines followed
 * the task file's, by the parser itself (ids unique across the farm,
 * @after naming any task of the farm or of the addition, barriers,
 * whatever the format learns later), and a task's line in the farm, its
 * default id and its joblog Seq, is its line in that text. The price is a
 * parse of the whole list per addition, about 0.2-0.5 s per million tasks
 * here, which the intake spaces out (intake.c).
 */

#define UTF8_BOM "\xEF\xBB\xBF"

void cli_tasklist_free(cli_tasklist *tl)
{
    free(tl->p);
    memset(tl, 0, sizeof *tl);
}

int cli_tasklist_add(cli_tasklist *tl, const char *p, size_t n, bool file)
{
    /* The parser skips a byte-order mark at the very start only. */
    if (file && n >= 3 && !memcmp(p, UTF8_BOM, 3))
        p += 3, n -= 3;
    bool nl = n && p[n - 1] != '\n';
    if (tl->cap - tl->len < n + nl + 1) {
        size_t cap = tl->cap ? tl->cap : 4096;
        while (cap - tl->len < n + nl + 1)
            cap *= 2;
        char *np = realloc(tl->p, cap);
        if (!np)
            return ENOMEM;
        tl->p = np;
        tl->cap = cap;
    }
    if (n)
        memcpy(tl->p + tl->len, p, n);
    tl->len += n;
    if (nl)
        tl->p[tl->len++] = '\n';
    tl->p[tl->len] = 0; /* for strtoul on its lines */
    for (const char *c = p; n && (c = memchr(c, '\n', (size_t)(p + n - c)));
         c++)
        tl->lines++;
    tl->lines += nl;
    return 0;
}

void cli_tasklist_cut(cli_tasklist *tl, size_t len, uint32_t lines)
{
    tl->len = len;
    tl->lines = lines;
    if (tl->p)
        tl->p[len] = 0;
}

void cli_tasklist_blank(cli_tasklist *tl, uint32_t from, const uint8_t *hit)
{
    /* One pass that moves each kept byte once, whatever the lines. */
    char *r = tl->p, *w = tl->p, *end = tl->p + tl->len;
    for (uint32_t l = 1; r < end; l++) {
        char *nl = memchr(r, '\n', (size_t)(end - r));
        size_t n = nl ? (size_t)(nl - r) : (size_t)(end - r);
        /* Removed, not overwritten: a line too long stays too long in blanks.
         */
        if (l > from && l - from <= tl->lines - from && hit[l - from])
            n = 0;
        memmove(w, nl ? nl - n : r, n + (nl != NULL));
        w += n + (nl != NULL);
        r = nl ? nl + 1 : end;
    }
    tl->len = (size_t)(w - tl->p);
    tl->p[tl->len] = 0;
}

/* OUTDIR/rejected: "LINE\tMESSAGE" per line --follow refused. */
static int blank_rejected(cli_tasklist *tl, const char *outdir)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/rejected", outdir);
    FILE *f = fopen(path, "r");
    if (!f)
        return errno == ENOENT || errno == ENOTDIR ? 0 : errno;
    uint8_t *hit = calloc((size_t)tl->lines + 1, 1);
    char buf[256];
    bool start = true; /* buf begins a line */
    while (hit && fgets(buf, sizeof buf, f)) {
        unsigned long line = start ? strtoul(buf, NULL, 10) : 0;
        start = strchr(buf, '\n') != NULL;
        if (line && line <= tl->lines)
            hit[line] = 1;
    }
    int e = !hit ? ENOMEM : ferror(f) ? EIO : 0;
    fclose(f);
    if (!e)
        cli_tasklist_blank(tl, 0, hit);
    free(hit);
    return e;
}

int cli_tasklist_load(cli_tasklist *tl, const char *outdir, const char *text,
                      size_t len, bool outdir_too, char *why, size_t n)
{
    memset(tl, 0, sizeof *tl);
    int e = cli_tasklist_add(tl, text, len, true);
    if (!e && outdir_too && (e = blank_rejected(tl, outdir)))
        snprintf(why, n, "%s/rejected: %s", outdir, strerror(e));
    for (uint32_t k = 1; !e && outdir_too; k++) {
        char path[PATH_MAX];
        file_text ft;
        snprintf(path, sizeof path, "%s/added/%06u.tasks", outdir, (unsigned)k);
        e = cli_read_file(path, &ft);
        if (e == ENOENT || e == ENOTDIR) {
            e = 0;
            break;
        }
        if (e) {
            snprintf(why, n, "%s: %s", path, strerror(e));
            break;
        }
        e = cli_tasklist_add(tl, ft.p, ft.len, true);
        cli_file_text_free(&ft);
        tl->nadded = k;
    }
    if (e && !why[0])
        snprintf(why, n, "%s", strerror(e));
    if (e)
        cli_tasklist_free(tl);
    return e;
}

/*
 * The run's task file: as the run recorded it, under the directory the run
 * started in (`cwd` in OUTDIR/status; a status file without it: under
 * ours). false when it cannot be named again.
 */
static bool task_path(const tf_runstate *rs, char *buf, size_t n)
{
    if (!rs->taskfile[0] || !strcmp(rs->taskfile, "-") ||
        !strncmp(rs->taskfile, "/dev/fd/", 8) ||
        !strncmp(rs->taskfile, "/proc/", 6))
        return false;
    if (rs->taskfile[0] == '/' || !rs->cwd[0])
        snprintf(buf, n, "%s", rs->taskfile);
    else
        snprintf(buf, n, "%s/%s", rs->cwd, rs->taskfile);
    return true;
}

int cli_tasklist_of_run(const char *outdir, const tf_runstate *rs,
                        cli_tasklist *tl, char *path, size_t plen, char *why,
                        size_t n)
{
    file_text ft;
    why[0] = 0;
    if (!task_path(rs, path, plen)) {
        snprintf(path, plen, "%s", rs->taskfile);
        snprintf(why, n,
                 "the run read its task file from %s, which cannot "
                 "be read again",
                 rs->taskfile[0] ? rs->taskfile : "nowhere recorded");
        return EPIPE;
    }
    int e = cli_read_file(path, &ft);
    if (e) {
        snprintf(why, n, "cannot read its task file %s: %s", path, strerror(e));
        return e;
    }
    size_t len = rs->follow && rs->taken < ft.len ? rs->taken : ft.len;
    e = cli_tasklist_load(tl, outdir, ft.p, len, true, why, n);
    cli_file_text_free(&ft);
    return e;
}

int cli_msg_add(tf_tferr *err, int code, uint32_t line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *text = NULL;
    int len = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    tf_tferr_msg *m = realloc(err->msgs, (err->n + 1) * sizeof *m);
    if (m)
        err->msgs = m;
    if (!m || len < 0 || !(text = malloc((size_t)len + 1)))
        return ENOMEM;
    va_start(ap, fmt);
    vsnprintf(text, (size_t)len + 1, fmt, ap);
    va_end(ap);
    err->msgs[err->n++] = (tf_tferr_msg){code, line, text};
    return 0;
}

/*
 * A message's text about the list, for people who know the addition
 * `name` and its own lines: "NAME:L[:C]: " takes L - shift, and in the
 * rest "line N" becomes line N - shift, or "line N of the farm" for a
 * line before the addition (ids and values quoted in a message cannot
 * hold "line " and a digit: they have no blanks).
 */
static char *renumber(const char *text, const char *name, uint32_t shift)
{
    size_t nlen = strlen(name), cap = strlen(text) + 64, o = 0;
    char *out = malloc(cap);
    if (!out)
        return NULL;
    const char *s = text;
    if (!strncmp(s, name, nlen) && s[nlen] == ':' && s[nlen + 1] >= '0' &&
        s[nlen + 1] <= '9') {
        char *end;
        unsigned long l = strtoul(s + nlen + 1, &end, 10);
        /* A line before it: the farm's own list changed under the run. */
        o = (size_t)(l > shift ? snprintf(out, cap, "%s:%lu", name, l - shift)
                               : snprintf(out, cap, "the farm's line %lu", l));
        s = end;
    }
    while (*s) {
        if (o + 48 >= cap) {
            char *n = realloc(out, cap *= 2);
            if (!n) {
                free(out);
                return NULL;
            }
            out = n;
        }
        char *end;
        if (!strncmp(s, "line ", 5) && s[5] >= '1' && s[5] <= '9') {
            unsigned long l = strtoul(s + 5, &end, 10);
            o += (size_t)snprintf(out + o, cap - o,
                                  l > shift ? "line %lu"
                                            : "line %lu of the farm",
                                  l > shift ? l - shift : l);
            s = end;
            continue;
        }
        out[o++] = *s++;
    }
    out[o] = 0;
    return out;
}

int cli_tasklist_parse(const cli_tasklist *tl, const char *name, uint32_t shift,
                       unsigned flags, tf_taskfile *out, tf_tferr *err)
{
    int rc = tf_taskfile_parse_flags(name, tl->p, tl->len, flags, out, err);
    for (size_t i = 0; shift && i < err->n; i++) {
        char *t = renumber(err->msgs[i].text, name, shift);
        if (!t)
            return TF_ENOMEM;
        free(err->msgs[i].text);
        err->msgs[i].text = t;
    }
    return rc;
}

/* Whether any of n bytes at p differs from c. */
static bool memchr_not(const uint8_t *p, uint8_t c, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != c)
            return true;
    return false;
}

bool cli_tasklist_extends(const tf_taskfile *old, const tf_taskfile *grown,
                          uint32_t *at)
{
    uint32_t i = 0;
    if (grown->n >= old->n)
        while (i < old->n && tf_tftask_equal(&old->tasks[i], &grown->tasks[i]))
            i++;
    bool same =
        i == old->n && grown->pool_len >= old->pool_len &&
        grown->nedges >= old->nedges &&
        (!old->pool_len || !memcmp(old->pool, grown->pool, old->pool_len)) &&
        (!old->nedges ||
         !memcmp(old->deps, grown->deps, old->nedges * sizeof *old->deps)) &&
        /* Their kinds: a missing array is every edge @after's. */
        (!old->dep_kind ? !grown->dep_kind ||
                              !memchr_not(grown->dep_kind, TF_EDGE_OK,
                                          old->nedges)
                        : grown->dep_kind &&
                              !memcmp(old->dep_kind, grown->dep_kind,
                                      old->nedges));
    if (same && grown->shell_line == old->shell_line &&
        grown->output_line == old->output_line)
        return true;
    /* The first task of the farm that differs (its last, when its edges do). */
    *at = same ? UINT32_MAX : i < old->n ? i : old->n - 1;
    return false;
}
