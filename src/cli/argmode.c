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
 * any task file. The run writes that file into the outdir (CLI_ARGS_FILE),
 * and records it as its task file, so that status, add and a later --resume
 * read the commands again without the arguments. The commands are built by
 * src/core/subst.c, the code an @array line uses too.
 */

/* One input source: a ::: list or one :::: file, split into arguments. */
typedef struct source {
    tf_subst_arg *args;
    size_t n, cap;
    bool linked; /* :::+ or ::::+: goes with the one before, element-wise */
} source;

/*
 * What the command line gives: the template, the sources, the files read;
 * and the plan of the jobs (plan_jobs). Kept until the task file it made
 * is parsed, so that a message about job N can show its arguments.
 */
typedef struct cli_argset {
    const char *who; /* "taskfarm run", "taskfarm check": messages */
    char *tmpl;
    size_t tlen;
    source *src;
    uint32_t nsrc;
    size_t srccap;
    file_text *files;
    size_t nfiles, filecap;
    uint64_t jobs;
    size_t *glen;       /* each group's length (linked sources: the shortest) */
    uint32_t *group_of; /* each source's group */
    uint32_t ngroups;
    size_t *idx;        /* scratch: a job's index in each group */
    tf_subst_arg *args; /* scratch: a job's arguments */
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

static source *new_source(argset *S, bool linked)
{
    if (tf_grow((void **)&S->src, &S->srccap, (size_t)S->nsrc + 1,
                sizeof *S->src, 16))
        return NULL;
    source *s = &S->src[S->nsrc++];
    *s = (source){NULL, 0, 0, linked};
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
static int read_source(argset *S, const char *who, const char *path, source *s)
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
        fprintf(stderr, "%s: %s: empty, no arguments (input source %u)\n", who,
                path, (unsigned)S->nsrc);
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
            source *s = new_source(S, linked);
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
 * group changing fastest. Sets S->glen, group_of, ngroups and jobs (0
 * past TF_TASKFILE_MAX_TASKS).
 */
static void plan_jobs(argset *S)
{
    uint32_t g = 0;
    for (uint32_t s = 0; s < S->nsrc; s++) {
        if (s == 0 || !S->src[s].linked)
            S->glen[g++] = S->src[s].n;
        else if (S->src[s].n < S->glen[g - 1])
            S->glen[g - 1] = S->src[s].n;
        S->group_of[s] = g - 1;
    }
    S->ngroups = g;
    S->jobs = 1;
    for (uint32_t k = 0; k < g && S->jobs; k++) {
        S->jobs *= S->glen[k];
        if (S->jobs > TF_TASKFILE_MAX_TASKS)
            S->jobs = 0;
    }
}

/* An argument for a message: up to 40 bytes, in quotes. */
static void show_arg(FILE *f, const tf_subst_arg *a)
{
    int n = a->len > 40 ? 40 : (int)a->len;
    fprintf(f, "'%.*s%s'", n, a->s, a->len > 40 ? "..." : "");
}

/* The arguments of job j (from 0) into S->args, by the odometer's rule. */
static void job_args(argset *S, uint64_t j)
{
    for (uint32_t g = S->ngroups; g > 0; g--) {
        S->idx[g - 1] = j % S->glen[g - 1];
        j /= S->glen[g - 1];
    }
    for (uint32_t s = 0; s < S->nsrc; s++)
        S->args[s] = S->src[s].args[S->idx[S->group_of[s]]];
}

/* "WHO: job N ('a', 'b'): ": where a message about job N comes from. */
static void show_job(FILE *f, argset *S, uint64_t job)
{
    job_args(S, job - 1);
    fprintf(f, "%s: job %llu (", S->who, (unsigned long long)job);
    for (uint32_t s = 0; s < S->nsrc; s++) {
        if (s)
            fputs(", ", f);
        show_arg(f, &S->args[s]);
    }
    fputs("): ", f);
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
 * one task line (empty, or a comment) is refused here, naming the job, and
 * so is one whose arguments put an `@` first: the line would be read as
 * attributes or a directive (@end, @barrier), not run. A template that
 * starts with attributes (`@cores=2 @id=sim.{} cmd {}`) means them.
 */
static int make_text(argset *S, const tf_subst *sub, textbuf *b)
{
    size_t t0 = 0;
    while (t0 < sub->n && (sub->t[t0] == ' ' || sub->t[t0] == '\t'))
        t0++;
    bool template_at = t0 < sub->n && sub->t[t0] == '@';
    for (uint64_t j = 0; j < S->jobs; j++) {
        job_args(S, j);
        size_t n = tf_subst_expand(sub, S->args, j + 1, NULL, 0);
        if (reserve(b, n + 1))
            return EXIT_RUNTIME;
        char *line = b->p + b->len;
        tf_subst_expand(sub, S->args, j + 1, line, n);
        size_t k = 0;
        while (k < n && (line[k] == ' ' || line[k] == '\t'))
            k++;
        if (k == n || line[k] == '#' || (line[k] == '@' && !template_at)) {
            show_job(stderr, S, j + 1);
            fprintf(stderr,
                    "the command '%.*s' %s\n",
                    (int)(n > 60 ? 60 : n), line,
                    k == n          ? "is empty; a task file would skip it"
                    : line[k] == '#' ? "is a comment; a task file would skip it"
                                     : "starts with @, which a task file reads "
                                       "as attributes: write '@tool' args or "
                                       "exec @tool args");
            return EXIT_USAGE;
        }
        b->len += n;
        b->p[b->len++] = '\n';
    }
    return EXIT_ALL_OK;
}

static void argset_free(argset *S)
{
    if (!S)
        return;
    for (uint32_t s = 0; s < S->nsrc; s++)
        free(S->src[s].args);
    for (size_t f = 0; f < S->nfiles; f++)
        cli_file_text_free(&S->files[f]);
    free(S->files);
    free(S->src);
    free(S->tmpl);
    free(S->glen);
    free(S->group_of);
    free(S->idx);
    free(S->args);
    free(S);
}

/* The sources read, the template checked, the jobs planned: EXIT_*. */
static int plan(argset *S, const cli_args *A, tf_subst *sub)
{
    const char *who = S->who;
    int st = read_args(S, who, A->argc, A->argv, A->pos0);
    if (st)
        return st;
    S->glen = malloc(S->nsrc * sizeof *S->glen);
    S->idx = malloc(S->nsrc * sizeof *S->idx);
    S->group_of = malloc(S->nsrc * sizeof *S->group_of);
    S->args = malloc(S->nsrc * sizeof *S->args);
    if (!S->glen || !S->idx || !S->group_of || !S->args)
        return EXIT_RUNTIME;
    if (memchr(S->tmpl, '\n', S->tlen) || memchr(S->tmpl, '\r', S->tlen)) {
        fprintf(stderr,
                "%s: the command holds a line break; each job is "
                "one line of a task file (put the commands in a "
                "script)\n",
                who);
        return EXIT_USAGE;
    }
    size_t at, len;
    int bad = tf_subst_init(sub, S->tmpl, S->tlen, S->nsrc, &at, &len);
    if (bad) {
        fprintf(stderr, "%s: '%.*s' in the command: %s", who, (int)len,
                S->tmpl + at, tf_subst_problem(bad));
        if (bad == TF_SUBST_RANGE)
            fprintf(stderr, " (there %s %u)", S->nsrc == 1 ? "is" : "are",
                    (unsigned)S->nsrc);
        fputc('\n', stderr);
        return EXIT_USAGE;
    }
    plan_jobs(S);
    if (!S->jobs) {
        fprintf(stderr,
                "%s: the input sources make more than %u jobs (the "
                "most tasks a run may hold)\n",
                who, TF_TASKFILE_MAX_TASKS);
        return EXIT_USAGE;
    }
    return EXIT_ALL_OK;
}

int cli_args_make(cli_args *A, const char *who, file_text *ft)
{
    textbuf b = {0};
    tf_subst sub;
    argset *S = calloc(1, sizeof *S);
    int st = S ? EXIT_ALL_OK : EXIT_RUNTIME;
    if (S) {
        S->who = who;
        st = plan(S, A, &sub);
    }
    if (!st)
        st = make_text(S, &sub, &b);
    if (st == EXIT_RUNTIME)
        fprintf(stderr, "%s: out of memory\n", who);
    if (st) {
        free(b.p);
        argset_free(S);
        return st;
    }
    A->set = S;
    A->len = b.len;
    *ft = (file_text){b.p, b.len, false};
    return EXIT_ALL_OK;
}

int cli_args_verdict(cli_args *A, const char *name, int rc, tf_tferr *err)
{
    /* "NAME:N: TEXT" about job N becomes "WHO: job N ('a'): TEXT". */
    for (size_t i = 0; A->set && i < err->n; i++) {
        tf_tferr_msg *m = &err->msgs[i];
        if (!m->line || m->line > A->set->jobs)
            continue; /* the file, or a line added to the run */
        char *text = NULL;
        size_t tlen = 0, skip = (size_t)snprintf(NULL, 0, "%s:%u: ", name,
                                                 (unsigned)m->line);
        FILE *f = open_memstream(&text, &tlen);
        if (!f)
            continue;
        show_job(f, A->set, m->line);
        fputs(strlen(m->text) > skip ? m->text + skip : m->text, f);
        if (fclose(f) == 0) {
            free(m->text);
            m->text = text;
        } else {
            free(text);
        }
    }
    argset_free(A->set);
    A->set = NULL;
    return cli_parse_verdict("arguments", rc, err);
}

int cli_args_load(cli_args *A, const char *who, tf_taskfile *tf)
{
    file_text ft;
    int st = cli_args_make(A, who, &ft);
    if (st)
        return st;
    tf_tferr err;
    int rc = tf_taskfile_parse("arguments", ft.p, ft.len, tf, &err);
    cli_file_text_free(&ft);
    return cli_args_verdict(A, "arguments", rc, &err);
}

int cli_args_save(const cli_args *A, const char *text)
{
    char tmp[PATH_MAX + 32];
    snprintf(tmp, sizeof tmp, "%s.tmp", A->path);
    /* --resume and status read it: it must outlive a crash of the node. */
    int e = cli_put_file(tmp, A->path, text, A->len, true);
    if (!e)
        return -1;
    fprintf(stderr, "taskfarm: cannot write %s: %s\n", A->path, strerror(e));
    return EXIT_RUNTIME;
}

void cli_args_free(cli_args *A)
{
    argset_free(A->set);
    A->set = NULL;
}
