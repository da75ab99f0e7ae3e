/* Argument mode: GNU parallel's `COMMAND ::: ARGS`, `:::: FILES` and their linked `:::+`, `::::+`, made into a task file of one line per job. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "core/grow.h"
#include "core/subst.h"
#include "taskfarm_status.h"

/*
 * The jobs become the lines of a task file, job N on line N: then each
 * has the id N (out/N.out), the joblog's Seq is N as in parallel's, and
 * --resume and `taskfarm status` match a row by (line, command) as for
 * any task file. The run writes that file into the outdir (ARGTASKS), and
 * records it as its task file, so that status and a later --resume read
 * the commands again without the arguments. The commands are built by
 * src/core/subst.c, the code an @array line uses too.
 */

/* One input source: a ::: list or one :::: file, split into arguments. */
typedef struct source {
    tf_subst_arg *args;
    size_t n, cap;
    bool linked; /* :::+ or ::::+: goes with the one before, element-wise */
    int pos;     /* argv position of its ::: or its file's name */
} source;

/* What the command line gives: the template, the sources, the files read. */
typedef struct argset {
    char *tmpl;
    size_t tlen;
    source *src;
    uint32_t nsrc;
    size_t srccap;
    file_text *files;
    size_t nfiles, filecap;
} argset;

static bool is_marker(const char *a)
{
    return !strcmp(a, ":::") || !strcmp(a, ":::+") || !strcmp(a, "::::") ||
           !strcmp(a, "::::+");
}

bool cli_args_from(int argc, char **argv, int i, cli_args *A)
{
    for (int k = i; k < argc; k++)
        if (is_marker(argv[k])) {
            memset(A, 0, sizeof *A);
            A->argv = argv + i;
            A->argc = argc - i;
            A->pos0 = i + 1;
            return true;
        }
    return false;
}

static int add_arg(source *s, const char *a, size_t len)
{
    if (tf_grow((void **)&s->args, &s->cap, s->n + 1, sizeof *s->args, 16))
        return ENOMEM;
    s->args[s->n++] = (tf_subst_arg){a, len};
    return 0;
}

static source *new_source(argset *S, bool linked, int pos)
{
    if (tf_grow((void **)&S->src, &S->srccap, (size_t)S->nsrc + 1,
                sizeof *S->src, 16))
        return NULL;
    source *s = &S->src[S->nsrc++];
    *s = (source){NULL, 0, 0, linked, pos};
    return s;
}

/*
 * Split text into arguments at '\n', as parallel does with both ::: values
 * (it writes them to a file, one a line) and :::: files. A last piece
 * after a final newline counts only for ::: ("a\n" gives "a" and "").
 */
static int split(source *s, const char *p, size_t len, bool file)
{
    const char *end = p + len;
    for (;;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl && file && p == end)
            return 0;
        if (add_arg(s, p, nl ? (size_t)(nl - p) : (size_t)(end - p)))
            return ENOMEM;
        if (!nl)
            return 0;
        p = nl + 1;
    }
}

/* One :::: file, read and split; EXIT_USAGE after a message. */
static int read_source(argset *S, const char *who, const char *path,
                       source *s)
{
    if (tf_grow((void **)&S->files, &S->filecap, S->nfiles + 1,
                sizeof *S->files, 16))
        return EXIT_RUNTIME;
    file_text *ft = &S->files[S->nfiles];
    int e = cli_read_file(path, ft);
    if (e) {
        fprintf(stderr, "%s: %s: %s\n", who, path, strerror(e));
        return e == ENOMEM ? EXIT_RUNTIME : EXIT_USAGE;
    }
    S->nfiles++;
    const char *nul = ft->len ? memchr(ft->p, '\0', ft->len) : NULL;
    if (nul) {
        size_t line = 1;
        for (const char *c = ft->p; c < nul; c++)
            line += *c == '\n';
        fprintf(stderr, "%s: %s:%zu: NUL byte (is this a text file?)\n", who,
                path, line);
        return EXIT_USAGE;
    }
    if (!ft->len) {
        fprintf(stderr, "%s: %s: empty, no arguments (input source %u)\n",
                who, path, (unsigned)S->nsrc);
        return EXIT_USAGE;
    }
    return split(s, ft->p, ft->len, true) ? EXIT_RUNTIME : EXIT_ALL_OK;
}

/*
 * The command line from COMMAND's first word: the template (the words
 * before the first marker, joined by spaces; none stands for {}, which
 * runs the arguments as commands), then the sources. pos0 is argv[0]'s
 * position among the words after `taskfarm`, for messages.
 */
static int read_args(argset *S, const char *who, int argc, char **argv,
                     int pos0)
{
    int i = 0;
    size_t tlen = 0;
    while (i < argc && !is_marker(argv[i]))
        tlen += strlen(argv[i++]) + 1;
    S->tmpl = malloc(tlen + 3);
    if (!S->tmpl)
        return EXIT_RUNTIME;
    for (int w = 0; w < i; w++) {
        size_t n = strlen(argv[w]);
        memcpy(S->tmpl + S->tlen, argv[w], n);
        S->tlen += n;
        if (w + 1 < i)
            S->tmpl[S->tlen++] = ' ';
    }
    if (!i) {
        memcpy(S->tmpl, "{}", 2);
        S->tlen = 2;
    }
    while (i < argc) {
        const char *m = argv[i];
        bool file = m[3] == ':', linked = m[strlen(m) - 1] == '+';
        int at = i++;
        if (i == argc || is_marker(argv[i])) {
            fprintf(stderr, "%s: %s at argument %d gives no %s\n", who, m,
                    pos0 + at,
                    file ? "file (:::: FILE... reads arguments from files, "
                           "one a line)"
                         : "arguments (an empty input source would make no "
                           "jobs)");
            return EXIT_USAGE;
        }
        for (; i < argc && !is_marker(argv[i]); i++) {
            source *s = new_source(S, linked, pos0 + (file ? i : at));
            if (!s)
                return EXIT_RUNTIME;
            if (file) {
                int st = read_source(S, who, argv[i], s);
                if (st)
                    return st;
                continue;
            }
            /* All the words of one ::: are one source. */
            for (; i < argc && !is_marker(argv[i]); i++)
                if (split(s, argv[i], strlen(argv[i]), false))
                    return EXIT_RUNTIME;
            break;
        }
    }
    return EXIT_ALL_OK;
}

/*
 * The sources in groups: a source linked to the one before joins its
 * group, and a group is as long as its shortest source (parallel's :::+:
 * no wrapping). Jobs run through the groups' cartesian product, the last
 * group changing fastest. glen[g] and group_of[s]; returns the number of
 * jobs, or 0 past TF_TASKFILE_MAX_TASKS.
 */
static uint64_t plan_jobs(const argset *S, size_t *glen, uint32_t *group_of,
                          uint32_t *ngroups)
{
    uint32_t g = 0;
    for (uint32_t s = 0; s < S->nsrc; s++) {
        if (s == 0 || !S->src[s].linked)
            glen[g++] = S->src[s].n;
        else if (S->src[s].n < glen[g - 1])
            glen[g - 1] = S->src[s].n;
        group_of[s] = g - 1;
    }
    *ngroups = g;
    uint64_t jobs = 1;
    for (uint32_t k = 0; k < g; k++) {
        jobs *= glen[k];
        if (jobs > TF_TASKFILE_MAX_TASKS)
            return 0;
    }
    return jobs;
}

/* An argument for a message: up to 40 bytes, in quotes. */
static void show_arg(FILE *f, const tf_subst_arg *a)
{
    int n = a->len > 40 ? 40 : (int)a->len;
    fprintf(f, "'%.*s%s'", n, a->s, a->len > 40 ? "..." : "");
}

/* The arguments of job j (from 0) into args, by the odometer's rule. */
static void job_args(const argset *S, const size_t *glen,
                     const uint32_t *group_of, uint32_t ngroups, uint64_t j,
                     size_t *idx, tf_subst_arg *args)
{
    for (uint32_t g = ngroups; g > 0; g--) {
        idx[g - 1] = j % glen[g - 1];
        j /= glen[g - 1];
    }
    for (uint32_t s = 0; s < S->nsrc; s++)
        args[s] = S->src[s].args[idx[group_of[s]]];
}

/* "job N ('a', 'b')": where a message about job N comes from. */
static void show_job(FILE *f, const argset *S, const size_t *glen,
                     const uint32_t *group_of, uint32_t ngroups, uint64_t job,
                     size_t *idx, tf_subst_arg *args)
{
    job_args(S, glen, group_of, ngroups, job - 1, idx, args);
    fprintf(f, "job %llu (", (unsigned long long)job);
    for (uint32_t s = 0; s < S->nsrc; s++) {
        if (s)
            fputs(", ", f);
        show_arg(f, &args[s]);
    }
    fputs(")", f);
}

typedef struct textbuf {
    char *p;
    size_t len, cap;
} textbuf;

static int reserve(textbuf *b, size_t more)
{
    return tf_grow((void **)&b->p, &b->cap, b->len + more, 1, 65536);
}

/*
 * The task file: job j's command on line j. A command that would not be
 * one task line (empty, or a comment) is refused here, naming the job.
 */
static int make_text(const argset *S, const char *who, const tf_subst *sub,
                     uint64_t jobs, const size_t *glen,
                     const uint32_t *group_of, uint32_t ngroups, size_t *idx,
                     tf_subst_arg *args, textbuf *b)
{
    for (uint64_t j = 0; j < jobs; j++) {
        job_args(S, glen, group_of, ngroups, j, idx, args);
        size_t n = tf_subst_expand(sub, args, j + 1, NULL, 0);
        if (reserve(b, n + 1))
            return EXIT_RUNTIME;
        char *line = b->p + b->len;
        tf_subst_expand(sub, args, j + 1, line, n);
        size_t k = 0;
        while (k < n && (line[k] == ' ' || line[k] == '\t'))
            k++;
        if (k == n || line[k] == '#') {
            fprintf(stderr, "%s: ", who);
            show_job(stderr, S, glen, group_of, ngroups, j + 1, idx, args);
            fprintf(stderr, ": the command '%.*s' is %s; a task file would "
                            "skip it\n",
                    (int)(n > 60 ? 60 : n), line,
                    k == n ? "empty" : "a comment");
            return EXIT_USAGE;
        }
        b->len += n;
        b->p[b->len++] = '\n';
    }
    return EXIT_ALL_OK;
}

/* What a message about job N needs to name the job and its arguments. */
typedef struct job_where {
    const argset *S;
    const char *who;
    const size_t *glen;
    const uint32_t *group_of;
    uint32_t ngroups;
    size_t *idx;
    tf_subst_arg *args;
} job_where;

/*
 * A parser message about line N ("job:N: TEXT"), told as one about job N
 * and its arguments, since the file does not exist yet; one about the
 * whole file ("job: TEXT") as it is.
 */
static void show_msg(const tf_tferr_msg *m, void *user)
{
    const job_where *w = user;
    const char *text = strchr(m->text, ' ');
    text = text ? text + 1 : m->text;
    fprintf(stderr, "%s: ", w->who);
    if (m->line) {
        show_job(stderr, w->S, w->glen, w->group_of, w->ngroups, m->line,
                 w->idx, w->args);
        fputs(": ", stderr);
    }
    fprintf(stderr, "%s\n", text);
}

static void argset_free(argset *S)
{
    for (uint32_t s = 0; s < S->nsrc; s++)
        free(S->src[s].args);
    for (size_t f = 0; f < S->nfiles; f++)
        cli_file_text_free(&S->files[f]);
    free(S->files);
    free(S->src);
    free(S->tmpl);
}

int cli_args_load(cli_args *A, const char *who, tf_taskfile *tf)
{
    argset S = {0};
    textbuf b = {0};
    size_t *glen = NULL, *idx = NULL;
    uint32_t *group_of = NULL, ngroups = 0;
    tf_subst_arg *args = NULL;
    int st = read_args(&S, who, A->argc, A->argv, A->pos0);
    if (st)
        goto out_with_args;
    st = EXIT_RUNTIME;
    glen = malloc(S.nsrc * sizeof *glen);
    idx = malloc(S.nsrc * sizeof *idx);
    group_of = malloc(S.nsrc * sizeof *group_of);
    args = malloc(S.nsrc * sizeof *args);
    if (!glen || !idx || !group_of || !args)
        goto out_with_args;
    st = EXIT_USAGE;
    if (memchr(S.tmpl, '\n', S.tlen) || memchr(S.tmpl, '\r', S.tlen)) {
        fprintf(stderr, "%s: the command holds a line break; each job is "
                        "one line of a task file (put the commands in a "
                        "script)\n",
                who);
        goto out_with_args;
    }
    tf_subst sub;
    size_t at, len;
    int bad = tf_subst_init(&sub, S.tmpl, S.tlen, S.nsrc, &at, &len);
    if (bad) {
        fprintf(stderr, "%s: '%.*s' in the command: %s", who, (int)len,
                S.tmpl + at, tf_subst_problem(bad));
        if (bad == TF_SUBST_RANGE)
            fprintf(stderr, " (there %s %u)", S.nsrc == 1 ? "is" : "are",
                    (unsigned)S.nsrc);
        fputc('\n', stderr);
        goto out_with_args;
    }
    uint64_t jobs = plan_jobs(&S, glen, group_of, &ngroups);
    if (!jobs) {
        fprintf(stderr, "%s: the input sources make more than %u jobs (the "
                        "most tasks a run may hold)\n",
                who, TF_TASKFILE_MAX_TASKS);
        goto out_with_args;
    }
    st = make_text(&S, who, &sub, jobs, glen, group_of, ngroups, idx, args,
                   &b);
    if (!st) {
        tf_tferr err;
        int rc = tf_taskfile_parse("job", b.p, b.len, tf, &err);
        job_where w = {&S, who, glen, group_of, ngroups, idx, args};
        if (rc)
            st = cli_parse_errors(rc, &err, "arguments", show_msg, &w);
    }
    if (!st) {
        A->text = b.p;
        A->len = b.len;
        b.p = NULL;
    }
out_with_args:
    if (st == EXIT_RUNTIME && !b.p)
        fprintf(stderr, "%s: out of memory\n", who);
    free(b.p);
    free(args);
    free(group_of);
    free(idx);
    free(glen);
    argset_free(&S);
    return st;
}

int cli_args_save(cli_args *A)
{
    char tmp[PATH_MAX + 32];
    snprintf(tmp, sizeof tmp, "%s.tmp", A->path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int e = fd < 0 ? errno : 0;
    for (size_t off = 0; !e && off < A->len;) {
        ssize_t w = write(fd, A->text + off, A->len - off);
        if (w < 0 && errno != EINTR)
            e = errno;
        else if (w > 0)
            off += (size_t)w;
    }
    /* --resume and status read it: it must outlive a crash of the node. */
    if (!e && fsync(fd))
        e = errno;
    if (fd >= 0 && close(fd) && !e)
        e = errno;
    if (!e && rename(tmp, A->path))
        e = errno;
    cli_args_free(A);
    if (!e)
        return -1;
    if (fd >= 0)
        unlink(tmp);
    fprintf(stderr, "taskfarm: cannot write %s: %s\n", A->path, strerror(e));
    return EXIT_RUNTIME;
}

void cli_args_free(cli_args *A)
{
    free(A->text);
    A->text = NULL;
    A->len = 0;
}
