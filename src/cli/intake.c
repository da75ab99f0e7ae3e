/* taskfarm run's intake on rank 0: the task file read at start, then additions (taskfarm add) and, with --follow, appended lines, validated against the farm and submitted while it runs. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/grow.h"
#include "farm.h"
#include "runstate.h"

/*
 * Each look at new tasks parses the farm's whole list (tasklist.c), about
 * 0.2-0.5 s per million tasks here, while dispatch waits. So after a look
 * that parsed, the next comes no sooner than 9 times its cost later: rank
 * 0 spends at most a tenth of its time on it, and a small farm looks at
 * every tick.
 */
#define LOOK_SPACING 9
/* Rounds of refusing a followed chunk's bad lines before refusing it all. */
#define MAX_ROUNDS 8
/* Additions taken per look, oldest first. */
#define MAX_PER_LOOK 16

static const char *display(const run_opts *o)
{
    return strcmp(o->taskfile, "-") ? o->taskfile : "stdin";
}

uint32_t cli_too_wide(const tf_taskfile *tf, uint32_t from, unsigned widest,
                      const char *name, uint32_t shift, uint32_t max,
                      tf_tferr *err)
{
    uint32_t bad = 0;
    /* Once per line: an @array line's elements follow each other. */
    for (uint32_t i = from; i < tf->n; i++)
        if (tf->tasks[i].cores > widest &&
            (i == from || tf->tasks[i - 1].line != tf->tasks[i].line) &&
            bad++ < max)
            cli_msg_add(err, TF_ERANGE, tf->tasks[i].line,
                        "%s:%u: @cores=%u, but no rank runs more than %u "
                        "task%s at once",
                        name, (unsigned)(tf->tasks[i].line - shift),
                        (unsigned)tf->tasks[i].cores, widest,
                        widest == 1 ? "" : "s");
    return bad;
}

/* ---- the task file at start ---- */

/*
 * The followed file: open (a named pipe for reading and writing, so that
 * its writers may come and go without an end of file), and what it holds
 * now, read without waiting. *eof: standard input has ended (its writer is
 * done). Returns 0 or an errno value.
 */
static int follow_open(cli_intake *in, file_text *ft, bool *eof)
{
    const char *path = in->o->taskfile;
    struct stat st;
    int fd = strcmp(path, "-") ? -1 : fcntl(STDIN_FILENO, F_DUPFD_CLOEXEC, 3);
    if (fd < 0 && strcmp(path, "-") && !stat(path, &st))
        fd = open(path, (S_ISFIFO(st.st_mode) ? O_RDWR : O_RDONLY) | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st))
        return errno;
    in->fd = fd;
    if (S_ISDIR(st.st_mode))
        return EISDIR;
    in->pipe = !S_ISREG(st.st_mode);
    if (!in->pipe)
        return cli_read_file(path, ft);
    /* Given back at the end: standard input may be the user's terminal. */
    in->fd_flags = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, in->fd_flags | O_NONBLOCK);
    size_t cap = 65536;
    *ft = (file_text){malloc(cap), 0, false};
    for (ssize_t r = 1; ft->p && r > 0;) {
        if (ft->len == cap) {
            char *np = realloc(ft->p, 2 * cap);
            if (!np)
                break;
            ft->p = np;
            cap *= 2;
        }
        r = read(fd, ft->p + ft->len, cap - ft->len);
        if (r > 0)
            ft->len += (size_t)r;
        *eof = r == 0;
        if (r < 0 && errno != EAGAIN && errno != EINTR) {
            int e = errno;
            cli_file_text_free(ft);
            return e;
        }
        if (r < 0 && errno == EINTR)
            r = 1;
    }
    if (!ft->p || ft->len == cap) {
        cli_file_text_free(ft);
        return ENOMEM;
    }
    return 0;
}

/* Whether the task file can be read again for an addition: a regular file. */
static bool rereadable(const char *path)
{
    struct stat st;
    return strcmp(path, "-") && !stat(path, &st) && S_ISREG(st.st_mode);
}

int cli_intake_load(cli_intake *in, run_opts *o, tf_taskfile *tf)
{
    in->o = o;
    in->fd = -1;
    file_text ft = {0};
    bool eof = false;
    /* Argument mode: the file it makes is written once the outdir is ours. */
    if (o->args.argv) {
        int st = cli_args_make(&o->args, "taskfarm run", &ft);
        if (st)
            return st;
    }
    int e = o->args.argv ? 0
            : o->follow  ? follow_open(in, &ft, &eof)
                         : cli_read_file(o->taskfile, &ft);
    if (e) {
        fprintf(stderr, "taskfarm: %s: %s\n", o->taskfile, strerror(e));
        return e == ENOMEM ? EXIT_RUNTIME : EXIT_USAGE;
    }
    size_t len = ft.len;
    if (o->follow && !eof) {
        /* Whole lines; --resume: as far as the stopped run had taken. */
        while (len && ft.p[len - 1] != '\n')
            len--;
        tf_runstate rs;
        if (o->resume && !in->pipe && !tf_runstate_read(o->outdir, &rs) &&
            rs.follow && rs.taken < len &&
            (!rs.taken || ft.p[rs.taken - 1] == '\n'))
            len = rs.taken;
    }
    char why[PATH_MAX + 128] = "";
    /*
     * Kept when it cannot be read again, or grows line by line. A file
     * alone, not kept, is parsed where it lies (a copy of a large file
     * costs a tenth of its parse).
     */
    bool keep = o->follow || o->args.argv || !rereadable(o->taskfile);
    cli_tasklist tl = {.p = ft.p, .len = len};
    if (keep || o->resume)
        e = cli_tasklist_load(&tl, o->outdir, ft.p, len, o->resume, why,
                              sizeof why);
    if (!e && in->pipe && len < ft.len &&
        (!(in->pend = malloc(ft.len - len)) ||
         !memcpy(in->pend, ft.p + len, ft.len - len)))
        e = ENOMEM;
    in->npend = in->pcap = in->pend ? ft.len - len : 0;
    bool view = tl.p == ft.p;
    if (!view)
        cli_file_text_free(&ft);
    if (e) {
        fprintf(stderr, "taskfarm: %s\n", why[0] ? why : strerror(e));
        return e == ENOMEM ? EXIT_RUNTIME : EXIT_USAGE;
    }
    if (o->follow && tl.nadded) {
        fprintf(stderr,
                "taskfarm: %s holds tasks added to the earlier run "
                "(taskfarm add), which come after its task file's "
                "lines: resume it without --follow\n",
                o->outdir);
        cli_tasklist_free(&tl);
        return EXIT_USAGE;
    }
    tf_tferr err;
    int rc = cli_tasklist_parse(&tl, display(o), 0,
                                o->follow ? TF_TASKFILE_EMPTY_OK : 0, tf, &err);
    int status = o->args.argv ? cli_args_verdict(&o->args, display(o), rc, &err)
                              : cli_parse_verdict(o->taskfile, rc, &err);
    in->taken = len;
    in->nadded = tl.nadded;
    in->closed = tf->end_line || eof;
    if (status == EXIT_ALL_OK && keep &&
        !(in->kept = malloc(sizeof *in->kept))) {
        fprintf(stderr, "taskfarm: out of memory\n");
        status = EXIT_RUNTIME;
    }
    if (in->kept)
        *in->kept = tl;
    else if (view)
        cli_file_text_free(&ft);
    else
        cli_tasklist_free(&tl);
    return status == EXIT_ALL_OK ? -1 : status;
}

int cli_intake_prepare(const char *outdir, bool resume)
{
    char dir[PATH_MAX], path[PATH_MAX + 256];
    /* A new run in the outdir (--force) has no additions and refused lines. */
    for (uint32_t k = 1; !resume; k++) {
        snprintf(path, sizeof path, "%s/added/%06u.tasks", outdir, (unsigned)k);
        if (unlink(path))
            break;
    }
    if (!resume) {
        snprintf(path, sizeof path, "%s/added", outdir);
        rmdir(path);
        snprintf(path, sizeof path, "%s/rejected", outdir);
        unlink(path);
    }
    snprintf(dir, sizeof dir, "%s/" CLI_INCOMING, outdir);
    if (mkdir(dir, 0777) && errno != EEXIST) {
        fprintf(stderr, "taskfarm: cannot create %s: %s\n", dir,
                strerror(errno));
        return EXIT_USAGE;
    }
    /* An `add` left waiting by a stopped run sees its file gone. */
    DIR *d = opendir(dir);
    struct dirent *de;
    while (d && (de = readdir(d)))
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
            snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
            unlink(path);
        }
    if (d)
        closedir(d);
    return -1;
}

void cli_intake_free(cli_intake *in)
{
    if (in->fd >= 0 && in->pipe)
        fcntl(in->fd, F_SETFL, in->fd_flags);
    if (in->fd >= 0)
        close(in->fd);
    free(in->pend);
    if (in->kept)
        cli_tasklist_free(in->kept);
    free(in->kept);
    in->fd = -1;
    in->pend = NULL;
    in->kept = NULL;
}

/* ---- while the run runs ---- */

/* The farm takes no more tasks: it ends once those it has are done. */
static void close_list(cli_intake *in, tf_runtime *rt)
{
    in->closed = true;
    tf_hold_open(rt, 0);
}

/*
 * The farm's list as text: kept, or read again (the task file and every
 * addition so far). Returns 0, or an errno value with why filled.
 */
static int farm_text(const cli_intake *in, cli_tasklist *tl, char *why,
                     size_t n)
{
    memset(tl, 0, sizeof *tl);
    if (in->kept)
        return cli_tasklist_add(tl, in->kept->p, in->kept->len, false);
    file_text ft;
    int e = cli_read_file(in->o->taskfile, &ft);
    if (e) {
        snprintf(why, n, "cannot read the farm's task file %s again: %s",
                 in->o->taskfile, strerror(e));
        return e;
    }
    e = cli_tasklist_load(tl, in->o->outdir, ft.p, ft.len, true, why, n);
    cli_file_text_free(&ft);
    return e;
}

/*
 * grown, the farm's list grown by lines of `name` (its line 1 the farm's
 * shift + 1), must leave the farm's tasks as they are and ask for no more
 * cores than a rank has. Returns 0, or TF_EINVAL with the messages in err.
 */
static int fits(const cli_intake *in, const tf_taskfile *grown,
                const char *name, uint32_t shift, tf_tferr *err)
{
    uint32_t at = 0;
    bool same = cli_tasklist_extends(in->tf, grown, &at);
    if (!same && at == UINT32_MAX) {
        uint32_t line = grown->shell_line != in->tf->shell_line
                            ? grown->shell_line
                            : grown->output_line;
        cli_msg_add(err, TF_EINVAL, line,
                    "%s:%u: @shell and @output must be in the task file "
                    "before the run starts",
                    name, (unsigned)(line - shift));
        return TF_EINVAL;
    }
    if (!same) {
        cli_msg_add(err, TF_EINVAL, 0,
                    "%s: the farm's task on line %u (id '%s') would change "
                    "(its task file was edited since the run started, or "
                    "an @after of it matches new ids)",
                    name, (unsigned)in->tf->tasks[at].line,
                    tf_taskfile_id(in->tf, at));
        return TF_EINVAL;
    }
    return cli_too_wide(grown, in->tf->n, in->widest, name, shift, UINT32_MAX,
                        err)
               ? TF_EINVAL
               : 0;
}

/* "N tasks added, lines A-B of the farm (ids X ... Y)" into buf. */
static void added_text(const tf_taskfile *old, const tf_taskfile *grown,
                       uint32_t first_line, uint32_t last_line, char *buf,
                       size_t n)
{
    uint32_t count = grown->ntasks - old->ntasks, a = old->n, b = grown->n;
    while (a < b && tf_taskfile_is_barrier(grown, a))
        a++;
    while (b > a && tf_taskfile_is_barrier(grown, b - 1))
        b--;
    if (count == 1)
        snprintf(buf, n, "1 task added, line %u of the farm (id %s)",
                 (unsigned)grown->tasks[a].line, tf_taskfile_id(grown, a));
    else if (count)
        snprintf(buf, n,
                 "%u tasks added, lines %u-%u of the farm (ids %s "
                 "... %s)",
                 (unsigned)count, (unsigned)first_line, (unsigned)last_line,
                 tf_taskfile_id(grown, a), tf_taskfile_id(grown, b - 1));
    else
        snprintf(buf, n, "no tasks added");
}

/*
 * Record an addition (its text, as the farm's list holds it) as
 * OUTDIR/added/N.tasks, durably: --resume and status read it after the
 * task file. Returns 0 or an errno value; path gets its name.
 */
static int record(const cli_intake *in, const char *p, size_t n, char *path,
                  size_t plen)
{
    char tmp[PATH_MAX + 8];
    snprintf(path, plen, "%s/added", in->o->outdir);
    if (mkdir(path, 0777) && errno != EEXIST)
        return errno;
    snprintf(path, plen, "%s/added/%06u.tasks", in->o->outdir,
             (unsigned)in->nadded + 1);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    return cli_put_file(tmp, path, p, n, true);
}

/*
 * An addition named `name`: validated against the farm, recorded, then
 * submitted; or refused whole, with err saying why. ok: what to tell.
 */
static void take_addition(cli_intake *in, tf_runtime *rt, const char *body,
                          size_t len, const char *name, tf_tferr *err, char *ok,
                          size_t oklen)
{
    char why[PATH_MAX + 128] = "", path[PATH_MAX];
    if (in->closed || in->o->follow) {
        cli_msg_add(err, TF_EINVAL, 0,
                    in->closed ? "%s: the farm takes no more tasks (@end, or "
                                 "taskfarm add --end)"
                               : "%s: the farm follows its task file %s: "
                                 "append the tasks to it instead",
                    name, display(in->o));
        return;
    }
    cli_tasklist tl;
    tf_taskfile grown;
    in->parsed = true;
    int e = farm_text(in, &tl, why, sizeof why);
    size_t base = tl.len;
    uint32_t shift = tl.lines;
    if (!e && (e = cli_tasklist_add(&tl, body, len, true)) != 0)
        snprintf(why, sizeof why, "%s", strerror(e));
    int rc = e ? TF_EIO : cli_tasklist_parse(&tl, name, shift, 0, &grown, err);
    bool parsed = !rc;
    if (!rc)
        rc = fits(in, &grown, name, shift, err);
    if (!rc && grown.ntasks == in->tf->ntasks && !grown.end_line) {
        cli_msg_add(err, TF_EINVAL, 0,
                    "%s: no tasks (only blank lines, "
                    "comments or barriers)",
                    name);
        rc = TF_EINVAL;
    }
    if (!rc &&
        (e = record(in, tl.p + base, tl.len - base, path, sizeof path)) != 0) {
        snprintf(why, sizeof why, "cannot record it in %s: %s", path,
                 strerror(e));
        rc = TF_EIO;
    }
    char what[TF_TASKFILE_MAX_ID * 2 + 96];
    bool end = parsed && grown.end_line;
    if (!rc)
        added_text(in->tf, &grown, shift + 1, tl.lines, what, sizeof what);
    if (!rc && (rc = in->grow(in->user, &grown)) != 0) {
        unlink(path);
        snprintf(why, sizeof why, "cannot submit its tasks: %s",
                 tf_strerror(rc));
    }
    if (rc && parsed)
        tf_taskfile_free(&grown);
    if (rc && !err->n)
        cli_msg_add(err, rc, 0, "%s: %s", name, why[0] ? why : tf_strerror(rc));
    if (!rc) {
        in->nadded++;
        /*
         * Out of memory here, kept would lack the addition: later ones are
         * then refused, as the farm's list would not match it.
         */
        if (in->kept)
            cli_tasklist_add(in->kept, tl.p + base, tl.len - base, false);
        if (end)
            close_list(in, rt);
        snprintf(ok, oklen, "%s: %s%s\n", name, what,
                 end ? "; then the farm takes no more tasks (@end)" : "");
    }
    cli_tasklist_free(&tl);
}

/* incoming/NAME.EXT: taken (renamed NAME.taken), answered, removed. */
static void take_incoming(cli_intake *in, tf_runtime *rt, const char *dir,
                          const char *file)
{
    enum { LEN = PATH_MAX + NAME_MAX + 16 };
    char from[LEN], taken[LEN], tmp[LEN], verdict[LEN], stem[NAME_MAX + 1];
    const char *dot = strrchr(file, '.');
    bool end = !strcmp(dot, ".end");
    snprintf(stem, sizeof stem, "%.*s", (int)(dot - file), file);
    snprintf(from, sizeof from, "%s/%s", dir, file);
    snprintf(taken, sizeof taken, "%s/%s.taken", dir, stem);
    if (rename(from, taken))
        return; /* withdrawn */
    file_text ft = {0};
    tf_tferr err = {0};
    char ok[PATH_MAX + TF_TASKFILE_MAX_ID * 2 + 192] = "", name[PATH_MAX];
    int e = end ? 0 : cli_read_file(taken, &ft);
    /* Its first line names it: the header, not a line of the file. */
    const char *body = ft.p, *nl = ft.len ? memchr(ft.p, '\n', ft.len) : NULL;
    size_t hl = strlen(CLI_ADD_HEADER);
    snprintf(name, sizeof name, "%s", stem);
    if (nl && ft.len >= hl && !memcmp(ft.p, CLI_ADD_HEADER, hl)) {
        snprintf(name, sizeof name, "%.*s", (int)(nl - ft.p - hl), ft.p + hl);
        body = nl + 1;
    }
    if (end) {
        close_list(in, rt);
        snprintf(ok, sizeof ok,
                 "%s: the farm takes no more tasks; it ends "
                 "once its tasks are done\n",
                 in->o->outdir);
    } else if (e) {
        cli_msg_add(&err, TF_EIO, 0, "%s: %s", name, strerror(e));
    } else {
        take_addition(in, rt, body, ft.len - (size_t)(body - ft.p), name, &err,
                      ok, sizeof ok);
    }
    cli_file_text_free(&ft);
    /* The verdict: what `add` prints. */
    char *text = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&text, &len);
    for (size_t i = 0; m && i < err.n; i++)
        fprintf(m, "%s\n", err.msgs[i].text);
    if (m && !err.n)
        fputs(ok, m);
    if (m)
        fclose(m);
    /* A refusal (FILE's fault) or a failure (the farm's). */
    bool failed = false;
    for (size_t i = 0; i < err.n; i++)
        failed |= err.msgs[i].code != TF_EINVAL &&
                  err.msgs[i].code != TF_ERANGE &&
                  err.msgs[i].code != TF_EEXIST &&
                  err.msgs[i].code != TF_EDEP && err.msgs[i].code != TF_ECYCLE;
    snprintf(verdict, sizeof verdict, "%s/%s.%s", dir, stem,
             !err.n   ? "ok"
             : failed ? "fail"
                      : "err");
    snprintf(tmp, sizeof tmp, "%s/.%s.v", dir, stem);
    int pe = text ? cli_put_file(tmp, verdict, text, len, false) : ENOMEM;
    if (pe) {
        cli_progress_break(in->pr);
        fprintf(stderr, "taskfarm: cannot answer %s: %s\n", from, strerror(pe));
    }
    if (err.n || ok[0]) {
        cli_progress_break(in->pr);
        for (size_t i = 0; i < err.n; i++)
            fprintf(stderr, "taskfarm: refused: %s\n", err.msgs[i].text);
        if (!err.n)
            fprintf(stderr, "taskfarm: %s", ok);
    }
    free(text);
    tf_tferr_free(&err);
    unlink(taken);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool ends_with(const char *s, const char *tail)
{
    size_t n = strlen(s), t = strlen(tail);
    return n > t && !strcmp(s + n - t, tail);
}

/* What `taskfarm add` handed over, oldest first (names begin with a time). */
static void look_incoming(cli_intake *in, tf_runtime *rt)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/" CLI_INCOMING, in->o->outdir);
    DIR *d = opendir(dir);
    if (!d)
        return;
    /*
     * Every name, then the oldest few: the directory's order is not the
     * names', and a later addition may name an earlier one's tasks.
     */
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        if (de->d_name[0] != '.' &&
            (ends_with(de->d_name, ".tasks") ||
             ends_with(de->d_name, ".end")) &&
            !tf_grow((void **)&names, &cap, n + 1, sizeof *names, 16) &&
            (names[n] = strdup(de->d_name)))
            n++;
    closedir(d);
    if (n)
        qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 0; i < n; i++) {
        if (i < MAX_PER_LOOK)
            take_incoming(in, rt, dir, names[i]);
        free(names[i]);
    }
    free(names);
}

/*
 * Lines of the followed file refused: said, and recorded in
 * OUTDIR/rejected (durable), so that --resume and status leave them out
 * too. why[k], for line from + k with hit[k] set.
 */
static void refuse(cli_intake *in, uint32_t from, uint32_t to,
                   const uint8_t *hit, char *const *why)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/rejected", in->o->outdir);
    cli_progress_break(in->pr);
    FILE *f = fopen(path, "a");
    for (uint32_t l = from + 1; l <= to; l++)
        if (hit[l - from]) {
            fprintf(stderr, "taskfarm: %s; line not taken\n", why[l - from]);
            if (f)
                fprintf(f, "%u\t%s\n", (unsigned)l, why[l - from]);
        }
    if (!f || fflush(f) || fdatasync(fileno(f)) || fclose(f))
        fprintf(stderr, "taskfarm: cannot write %s: %s\n", path,
                strerror(errno));
}

/*
 * Refuse (and empty in tl) the lines past `from` that err's messages are
 * about: each message's line, or the lines a message about the whole list
 * names (a cycle). With none to go by, or `all`, every line past `from`
 * that holds a task or a barrier, for err's first message.
 */
static long refuse_named(cli_intake *in, cli_tasklist *tl, uint32_t from,
                         const tf_tferr *err, bool all)
{
    uint32_t n = tl->lines - from;
    long refused = 0;
    uint8_t *hit = calloc((size_t)n + 1, 1);
    char **why = calloc((size_t)n + 1, sizeof *why);
    if (!hit || !why) {
        free(hit);
        free(why);
        return -1;
    }
    bool named = false;
    for (size_t i = 0; i < err->n && !all; i++) {
        const tf_tferr_msg *m = &err->msgs[i];
        for (const char *s = m->text; !m->line && (s = strstr(s, "line "));
             s += 5) {
            unsigned long l = strtoul(s + 5, NULL, 10);
            if (l > from && l <= tl->lines && !hit[l - from])
                hit[l - from] = 1, why[l - from] = m->text, named = true;
        }
        if (m->line > from && m->line <= tl->lines && !hit[m->line - from])
            hit[m->line - from] = 1, why[m->line - from] = m->text,
                          named = true;
    }
    char *s = tl->p, line_why[PATH_MAX + 256];
    snprintf(line_why, sizeof line_why, "appended with bad lines (%s)",
             err->n ? err->msgs[0].text : "out of memory");
    for (uint32_t l = 1; !named && l <= tl->lines; l++) {
        char *t = s + strspn(s, " \t\r");
        if (l > from && *t != '\n' && *t != '#')
            hit[l - from] = 1, why[l - from] = line_why;
        s = strchr(s, '\n') + 1;
    }
    for (uint32_t k = 1; k <= n; k++)
        refused += hit[k];
    refuse(in, from, tl->lines, hit, why);
    cli_tasklist_blank(tl, from, hit);
    free(hit);
    free(why);
    return refused;
}

/*
 * Whole lines appended to the followed file: each bad one refused (and
 * said why), the rest taken. Returns false when memory ran out: nothing
 * was taken, and they are read again at the next look.
 */
static bool take_lines(cli_intake *in, tf_runtime *rt, const char *p, size_t n)
{
    cli_tasklist *tl = in->kept;
    size_t len0 = tl->len;
    uint32_t lines0 = tl->lines;
    in->parsed = true;
    if (cli_tasklist_add(tl, p, n, false))
        return false;
    tf_taskfile grown;
    int rc = TF_EINVAL;
    for (int round = 0; rc; round++) {
        tf_tferr err = {0};
        rc = cli_tasklist_parse(tl, display(in->o), 0, TF_TASKFILE_EMPTY_OK,
                                &grown, &err);
        if (!rc && (rc = fits(in, &grown, display(in->o), 0, &err)))
            tf_taskfile_free(&grown);
        /*
         * Nothing of the new lines to refuse: the list as a whole cannot
         * grow (its limits), so it takes no more.
         */
        long refused = rc == TF_EINVAL ? refuse_named(in, tl, lines0, &err,
                                                      round >= MAX_ROUNDS)
                                       : 0;
        if (refused < 0)
            rc = TF_ENOMEM;
        if (rc == TF_EINVAL && !refused) {
            cli_progress_break(in->pr);
            for (size_t i = 0; i < err.n; i++)
                fprintf(stderr, "taskfarm: %s; no more lines taken\n",
                        err.msgs[i].text);
            rc = TF_ERANGE;
        }
        tf_tferr_free(&err);
        if (rc == TF_ERANGE) {
            cli_tasklist_cut(tl, len0, lines0);
            in->taken += n;
            close_list(in, rt);
            return true;
        }
        if (rc && rc != TF_EINVAL) {
            cli_tasklist_cut(tl, len0, lines0);
            return false;
        }
    }
    bool end = grown.end_line != 0;
    if (grown.n == in->tf->n) {
        tf_taskfile_free(&grown);
    } else if ((rc = in->grow(in->user, &grown))) {
        /* The run cannot take them (memory): refused after all. */
        tf_tferr err = {0};
        cli_msg_add(&err, rc, 0, "%s: lines %u-%u cannot be submitted: %s",
                    display(in->o), (unsigned)lines0 + 1, (unsigned)tl->lines,
                    tf_strerror(rc));
        refuse_named(in, tl, lines0, &err, true);
        tf_tferr_free(&err);
        tf_taskfile_free(&grown);
        end = false;
    }
    in->taken += n;
    if (end)
        close_list(in, rt);
    return true;
}

/* Bytes appended to the followed file since the last look: its whole lines. */
static void follow(cli_intake *in, tf_runtime *rt)
{
    if (in->pipe) {
        bool eof = false;
        for (ssize_t r = 1; r > 0;) {
            if (in->npend == in->pcap) {
                size_t cap = in->pcap ? in->pcap * 2 : 65536;
                char *np = realloc(in->pend, cap);
                if (!np)
                    break;
                in->pend = np;
                in->pcap = cap;
            }
            r = read(in->fd, in->pend + in->npend, in->pcap - in->npend);
            if (r > 0)
                in->npend += (size_t)r;
            eof = r == 0;
            if (r < 0 && errno == EINTR)
                r = 1;
        }
        size_t n = in->npend;
        while (!eof && n && in->pend[n - 1] != '\n')
            n--;
        if (n && take_lines(in, rt, in->pend, n)) {
            memmove(in->pend, in->pend + n, in->npend - n);
            in->npend -= n;
        }
        /* Standard input ended: its writer is done, as @end would say. */
        if (eof && !in->npend)
            close_list(in, rt);
        return;
    }
    struct stat st;
    if (fstat(in->fd, &st) || (uint64_t)st.st_size <= in->taken)
        return;
    size_t want = (size_t)((uint64_t)st.st_size - in->taken);
    if (want > in->pcap) {
        char *np = realloc(in->pend, want);
        if (!np)
            return;
        in->pend = np;
        in->pcap = want;
    }
    ssize_t got = pread(in->fd, in->pend, want, (off_t)in->taken);
    size_t n = got > 0 ? (size_t)got : 0;
    while (n && in->pend[n - 1] != '\n')
        n--;
    if (n)
        take_lines(in, rt, in->pend, n);
}

void cli_intake_tick(cli_intake *in, tf_runtime *rt)
{
    uint64_t t0 = cli_mono_ns();
    if (t0 < in->next_ns)
        return;
    in->parsed = false;
    if (in->o->follow && !in->closed)
        follow(in, rt);
    look_incoming(in, rt);
    uint64_t t1 = cli_mono_ns();
    if (in->parsed)
        in->next_ns = t1 + LOOK_SPACING * (t1 - t0);
}
