/* taskfarm status OUTDIR: how a run is doing, while it runs or after. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "cli.h"
#include "runstate.h"

/*
 * Cut a joblog row into its 9 columns, in place at the tabs (the command,
 * the last, keeps its own tabs; its newline is dropped). false: not a row.
 */
static bool split_row(char *line, char *col[9])
{
    int k = 0;
    col[k++] = line;
    for (char *c = line; *c && k < 9; c++)
        if (*c == '\t') {
            *c = 0;
            col[k++] = c + 1;
        }
    if (k < 9)
        return false;
    col[8][strcspn(col[8], "\n")] = 0;
    return true;
}

/* ---- Each task's state (--tasks), the failed tasks' lines (--failed) ---- */

enum { T_OPEN, T_DONE, T_FAILED, T_SKIPPED, T_UNNEEDED };

/* One task-file entry's state: from its joblog rows, or its dependencies. */
typedef struct task_state {
    uint8_t st;      /* T_* */
    uint8_t walk;    /* 0 not reached, 1 on the stack, 2 decided */
    int exitval, sig; /* of its last attempt, when T_FAILED */
    uint32_t cause;  /* T_SKIPPED: the failed task it waited for */
    long off;        /* T_FAILED: where its last row is in the joblog */
} task_state;

/* A run's task list (its task file, then additions), each entry's state. */
typedef struct run_tasks {
    tf_taskfile tf;
    cli_tasklist text;
    task_state *t;
} run_tasks;

/* Where a joblog row's task is: its line and command, and its entry. */
typedef struct task_key {
    uint32_t line, task;
    uint64_t cmd; /* tf_key of its command */
} task_key;

static int cmp_task_key(const void *a, const void *b)
{
    const task_key *x = a, *y = b;
    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    return (x->cmd > y->cmd) - (x->cmd < y->cmd);
}

/*
 * A task's state from its joblog rows: done when an attempt succeeded,
 * failed when its last attempt failed. A row counts only for the line and
 * command it names, as for --resume: an edited line has not run (and the
 * elements of an @array line are told apart by their commands).
 */
static int read_rows(const char *dir, run_tasks *r)
{
    const tf_taskfile *tf = &r->tf;
    task_key *keys = malloc((tf->n ? tf->n : 1) * sizeof *keys);
    if (!keys)
        return ENOMEM;
    size_t nk = 0;
    for (uint32_t i = 0; i < tf->n; i++)
        if (!tf_taskfile_is_barrier(tf, i))
            keys[nk++] = (task_key){
                tf->tasks[i].line, i,
                tf_key(NULL, 0, tf_taskfile_cmd(tf, i), tf->tasks[i].cmd_len)};
    qsort(keys, nk, sizeof *keys, cmp_task_key);
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/joblog.tsv", dir);
    FILE *f = fopen(path, "r");
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    for (long off = f ? ftell(f) : 0; f && (len = getline(&line, &cap, f)) > 0;
         off = ftell(f)) {
        char *end, *col[9];
        unsigned long seq = strtoul(line, &end, 10);
        /* The header, a torn last row (no newline), or not a row. */
        if (line[len - 1] != '\n' || end == line || *end != '\t' || seq == 0 ||
            seq > UINT32_MAX || !split_row(line, col))
            continue;
        task_key want = {(uint32_t)seq, 0,
                         tf_key(NULL, 0, col[8], strlen(col[8]))};
        const task_key *k =
            bsearch(&want, keys, nk, sizeof *keys, cmp_task_key);
        if (!k || strcmp(col[8], tf_taskfile_cmd(tf, k->task)))
            continue;
        task_state *t = &r->t[k->task];
        int exitval = atoi(col[6]), sig = atoi(col[7]);
        if (t->st == T_DONE)
            continue;
        t->st = exitval || sig ? T_FAILED : T_DONE;
        t->exitval = exitval;
        t->sig = sig;
        t->off = off;
    }
    free(line);
    free(keys);
    if (f)
        fclose(f);
    return 0;
}

/*
 * A task with no row is skipped when a task it depends on, through any
 * chain of @after and barriers, failed; `cause` is that failed task (the
 * first in dependency order). Once all its dependencies have ended, one
 * with @afternotok none of whose tasks failed (or was skipped) is not
 * needed, as the run decides (src/core/sched.h), and a barrier is done.
 * Depth first without recursion, as a chain may be as long as the file.
 * Returns 0 or ENOMEM.
 */
static int find_skipped(run_tasks *r)
{
    const tf_taskfile *tf = &r->tf;
    task_state *t = r->t;
    uint32_t *stack = malloc(((size_t)tf->n + 1) * sizeof *stack);
    if (!stack)
        return ENOMEM;
    for (uint32_t root = 0; root < tf->n; root++) {
        if (t[root].walk)
            continue;
        size_t top = 0;
        stack[top++] = root;
        t[root].walk = 1;
        while (top) {
            uint32_t i = stack[top - 1], nd;
            const uint32_t *d = tf_taskfile_deps(tf, i, &nd);
            bool pushed = false;
            for (uint32_t k = 0; k < nd && !pushed; k++)
                if (!t[d[k]].walk) {
                    t[d[k]].walk = 1;
                    stack[top++] = d[k];
                    pushed = true;
                }
            if (pushed)
                continue;
            top--;
            t[i].walk = 2;
            if (t[i].st != T_OPEN)
                continue; /* it ran: its own row says */
            bool open = false, notok = false, handled = false;
            for (uint32_t k = 0; k < nd && t[i].st == T_OPEN; k++) {
                uint8_t kind = tf_taskfile_dep_kind(tf, i, k);
                bool bad = t[d[k]].st == T_FAILED || t[d[k]].st == T_SKIPPED;
                open |= t[d[k]].st == T_OPEN;
                notok |= kind == TF_EDGE_NOTOK;
                handled |= kind == TF_EDGE_NOTOK && bad;
                if (kind == TF_EDGE_OK && bad) {
                    t[i].st = T_SKIPPED;
                    t[i].cause =
                        t[d[k]].st == T_FAILED ? d[k] : t[d[k]].cause;
                }
            }
            if (t[i].st == T_OPEN && !open && tf_taskfile_is_barrier(tf, i))
                t[i].st = T_DONE;
            else if (t[i].st == T_OPEN && !open && notok && !handled)
                t[i].st = T_UNNEEDED;
        }
    }
    free(stack);
    return 0;
}

static void run_tasks_free(run_tasks *r)
{
    free(r->t);
    tf_taskfile_free(&r->tf);
    cli_tasklist_free(&r->text);
}

/*
 * Read the run's task file and every task's state. Returns EXIT_ALL_OK,
 * or, after a message, EXIT_USAGE (the task file cannot be read or parsed
 * any more) or EXIT_RUNTIME (out of memory).
 */
static int run_tasks_load(const char *dir, const tf_runstate *rs, run_tasks *r,
                          bool quiet)
{
    char path[PATH_MAX], why[PATH_MAX + 128];
    memset(r, 0, sizeof *r);
    int e = cli_tasklist_of_run(dir, rs, &r->text, path, sizeof path, why,
                                sizeof why);
    if (e) {
        if (!quiet)
            fprintf(stderr, "taskfarm: %s: %s\n", dir, why);
        return e == ENOMEM ? EXIT_RUNTIME : EXIT_USAGE;
    }
    /* A followed file may hold no task yet. */
    e = tf_taskfile_parse_flags(path, r->text.p, r->text.len,
                                rs->follow ? TF_TASKFILE_EMPTY_OK : 0, &r->tf,
                                NULL);
    if (e) {
        if (!quiet)
            fprintf(stderr, "taskfarm: %s: its task file %s %s\n", dir, path,
                    e == TF_EINVAL
                        ? "has errors now (taskfarm check says which)"
                        : "cannot be parsed: out of memory");
        cli_tasklist_free(&r->text);
        return e == TF_EINVAL ? EXIT_USAGE : EXIT_RUNTIME;
    }
    r->t = calloc(r->tf.n ? r->tf.n : 1, sizeof *r->t);
    if (!r->t || read_rows(dir, r) || find_skipped(r)) {
        fprintf(stderr, "taskfarm: out of memory\n");
        run_tasks_free(r);
        return EXIT_RUNTIME;
    }
    return EXIT_ALL_OK;
}

/* One joblog row, for the tasks failing now. */
typedef struct jrow {
    uint32_t seq;
    uint64_t cmd; /* tf_key of its command */
    long off;     /* where the row starts in the file */
    bool ok;      /* exit 0, no signal */
} jrow;

/* By task (line, then command), then file order. */
static int cmp_jrow(const void *a, const void *b)
{
    const jrow *x = a, *y = b;
    if (x->seq != y->seq)
        return x->seq < y->seq ? -1 : 1;
    if (x->cmd != y->cmd)
        return x->cmd < y->cmd ? -1 : 1;
    return (x->off > y->off) - (x->off < y->off);
}

/* The failing rows, by line and then file order. */
static int cmp_failing(const void *a, const void *b)
{
    const jrow *x = a, *y = b;
    if (x->seq != y->seq)
        return x->seq < y->seq ? -1 : 1;
    return (x->off > y->off) - (x->off < y->off);
}

/*
 * The tasks failing now, each shown by its last row in the joblog: the
 * tasks `--tasks` calls failed (their last attempt failed), when the task
 * file can be read (r); a line edited and rerun with --resume is another
 * task then, and its old failure is gone. Without it, from the joblog
 * alone: a task is a line and its command (the elements of an @array
 * share a line), failing when its last row failed and none succeeded.
 * Printed up to `max` (text), or all into `arr` (--json). Returns how
 * many.
 */
static size_t failing(const char *outdir, const run_tasks *r, int max,
                      json_t *arr)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/joblog.tsv", outdir);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    jrow *v = NULL;
    size_t nv = 0, cap = 0, count = 0, lcap = 0, k = 0;
    char *line = NULL;
    ssize_t len;
    if (r) {
        /* In file order, which is line order. */
        v = malloc((r->tf.n ? r->tf.n : 1) * sizeof *v);
        for (uint32_t i = 0; v && i < r->tf.n; i++)
            if (r->t[i].st == T_FAILED)
                v[k++] = (jrow){r->tf.tasks[i].line, 0, r->t[i].off, false};
        goto print;
    }
    for (long off = ftell(f); (len = getline(&line, &lcap, f)) > 0;
         off = ftell(f)) {
        char *end, *col[9];
        unsigned long seq = strtoul(line, &end, 10);
        if (end == line || *end != '\t' || seq == 0 || seq > UINT32_MAX ||
            !split_row(line, col))
            continue; /* the header, or not a row */
        if (nv == cap) {
            size_t n = cap ? 2 * cap : 1024;
            jrow *nvv = realloc(v, n * sizeof *v);
            if (!nvv)
                break;
            v = nvv;
            cap = n;
        }
        v[nv++] = (jrow){(uint32_t)seq, tf_key(NULL, 0, col[8], strlen(col[8])),
                         off, !strcmp(col[6], "0") && !strcmp(col[7], "0")};
    }
    /* Each task's last row when none succeeded, kept in place at v[0..k). */
    if (nv)
        qsort(v, nv, sizeof *v, cmp_jrow);
    for (size_t i = 0; i < nv;) {
        size_t j = i;
        bool ok = false;
        for (; j < nv && v[j].seq == v[i].seq && v[j].cmd == v[i].cmd; j++)
            ok |= v[j].ok;
        if (!ok)
            v[k++] = v[j - 1];
        i = j;
    }
    if (k)
        qsort(v, k, sizeof *v, cmp_failing);
print:;
    int shown = 0;
    for (size_t i = 0; i < k; i++) {
        char *col[9];
        if (fseek(f, v[i].off, SEEK_SET) || getline(&line, &lcap, f) <= 0 ||
            !split_row(line, col))
            continue;
        count++;
        if (arr)
            json_array_append_new(
                arr, json_pack("{s:I, s:s, s:I, s:I, s:s}", "line",
                               (json_int_t)v[i].seq, "host", col[1], "exit",
                               (json_int_t)atoll(col[6]), "signal",
                               (json_int_t)atoll(col[7]), "command", col[8]));
        else if (shown++ < max)
            printf("  failed: line %s on %s, exit %s, signal %s: %s\n", col[0],
                   col[1], col[6], col[7], col[8]);
    }
    if (!arr && shown > max)
        printf("  ... and %d more failing tasks in %s\n", shown - max, path);
    free(line);
    free(v);
    fclose(f);
    return count;
}

/*
 * Task i's state in words, into buf; *state gets its name for --json. A
 * task with no row is `pending` while the run runs (running or queued: the
 * files do not say which), else `not finished` (a stop ended it or kept it
 * from starting: --resume runs it).
 */
static void describe(const run_tasks *r, uint32_t i, bool live, char *buf,
                     size_t n, const char **state)
{
    const task_state *t = &r->t[i];
    switch (t->st) {
    case T_DONE:
        *state = "done";
        snprintf(buf, n, "done");
        break;
    case T_FAILED:
        *state = "failed";
        if (t->sig)
            snprintf(buf, n, "failed: signal %d", t->sig);
        else
            snprintf(buf, n, "failed: exit %d", t->exitval);
        break;
    case T_SKIPPED:
        *state = "skipped";
        snprintf(buf, n, "skipped: after %s (line %u) failed",
                 tf_taskfile_id(&r->tf, t->cause),
                 (unsigned)r->tf.tasks[t->cause].line);
        break;
    case T_UNNEEDED:
        *state = "not_needed";
        snprintf(buf, n, "not needed: none of its @afternotok tasks failed");
        break;
    default:
        *state = live ? "pending" : "not_finished";
        snprintf(buf, n, "%s",
                 live ? "pending (running or queued)"
                      : "not finished (interrupted or not started: "
                        "--resume runs it)");
    }
}

/* --tasks: one line per task in file order, or the array for --json. */
static void print_tasks(const run_tasks *r, bool live, json_t *arr)
{
    const tf_taskfile *tf = &r->tf;
    int w = 2;
    for (uint32_t i = 0; i < tf->n; i++)
        if (tf->tasks[i].id_len > w)
            w = tf->tasks[i].id_len < 24 ? tf->tasks[i].id_len : 24;
    for (uint32_t i = 0; i < tf->n; i++) {
        if (tf_taskfile_is_barrier(tf, i))
            continue;
        char detail[TF_TASKFILE_MAX_ID + 64];
        const char *state;
        describe(r, i, live, detail, sizeof detail, &state);
        const task_state *t = &r->t[i];
        if (!arr) {
            printf("%6u  %-*s  %s\n", (unsigned)tf->tasks[i].line, w,
                   tf_taskfile_id(tf, i), detail);
            continue;
        }
        json_t *o = json_pack("{s:I, s:s, s:s, s:s}", "line",
                              (json_int_t)tf->tasks[i].line, "id",
                              tf_taskfile_id(tf, i), "state", state,
                              "detail", detail);
        if (o && t->st == T_FAILED) {
            json_object_set_new(o, "exit", json_integer(t->exitval));
            json_object_set_new(o, "signal", json_integer(t->sig));
        } else if (o && t->st == T_SKIPPED) {
            json_object_set_new(o, "cause_line",
                                json_integer(tf->tasks[t->cause].line));
            json_object_set_new(
                o, "cause_id", json_string(tf_taskfile_id(tf, t->cause)));
        }
        json_array_append_new(arr, o);
    }
}

/* A value written as a plain decimal index (no sign, no leading zero). */
static bool plain_index(const char *s, size_t n, uint64_t *v)
{
    if (!n || n > 10 || (s[0] == '0' && n > 1))
        return false;
    *v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        *v = *v * 10 + (uint64_t)(s[i] - '0');
    }
    return true;
}

/*
 * An @array line (text[0..len)) for --failed: as written when every
 * element failed, else with the list cut down to the failed elements'
 * values (consecutive indexes as ranges), so that it reruns those alone.
 */
static void print_failed_array(const run_tasks *r, const tf_tfarray *a,
                               const char *text, size_t len)
{
    const tf_taskfile *tf = &r->tf;
    uint32_t nfailed = 0;
    for (uint32_t i = a->first; i < a->first + a->n; i++)
        nfailed += r->t[i].st == T_FAILED;
    if (!nfailed)
        return;
    /* The @array token's value: the attributes come first, one a word. */
    const char *v = text, *end = text + len;
    while (v < end) {
        while (v < end && (*v == ' ' || *v == '\t'))
            v++;
        if (end - v >= 7 && !memcmp(v, "@array=", 7))
            break;
        while (v < end && *v != ' ' && *v != '\t')
            v++;
    }
    if (nfailed == a->n || v == end) {
        printf("%.*s\n", (int)len, text);
        return;
    }
    const char *vend = v += 7;
    while (vend < end && *vend != ' ' && *vend != '\t')
        vend++;
    printf("%.*s", (int)(v - text), text);
    bool first = true;
    for (uint32_t i = a->first; i < a->first + a->n; i++) {
        if (r->t[i].st != T_FAILED)
            continue;
        const char *val = tf_taskfile_id(tf, i) + a->base_len + 1;
        size_t n = tf->tasks[i].id_len - a->base_len - 1;
        uint64_t lo, x;
        uint32_t j = i;
        /* A run of failed elements with consecutive plain indexes. */
        if (plain_index(val, n, &lo))
            while (j + 1 < a->first + a->n && r->t[j + 1].st == T_FAILED &&
                   plain_index(tf_taskfile_id(tf, j + 1) + a->base_len + 1,
                               tf->tasks[j + 1].id_len - a->base_len - 1, &x) &&
                   x == lo + (j + 1 - i))
                j++;
        printf("%s%.*s", first ? "" : ",", (int)n, val);
        if (j > i + 1)
            printf("-%llu", (unsigned long long)(lo + (j - i)));
        else
            j = i; /* two in a row: as a list */
        first = false;
        i = j;
    }
    printf("%.*s\n", (int)(end - vend), vend);
}

/*
 * --failed: the task-file lines, as written, of the tasks whose last
 * attempt failed, in file order: a task file that reruns them (an @array
 * line narrowed to its failed elements).
 */
static void print_failed(const run_tasks *r)
{
    const char *p = r->text.p, *end = p + r->text.len;
    uint32_t line = 1, i = 0;
    const tf_taskfile *tf = &r->tf;
    while (p < end && i < tf->n) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *eol = nl ? nl : end;
        while (i < tf->n && (tf_taskfile_is_barrier(tf, i) ||
                             tf->tasks[i].line < line))
            i++;
        const tf_tfarray *a = i < tf->n && tf->tasks[i].line == line
                                  ? tf_taskfile_array(tf, i)
                                  : NULL;
        size_t len = (size_t)(eol - p);
        if (len && p[len - 1] == '\r')
            len--;
        if (a)
            print_failed_array(r, a, p, len);
        else if (i < tf->n && tf->tasks[i].line == line &&
                 r->t[i].st == T_FAILED)
            printf("%.*s\n", (int)(eol - p), p);
        p = eol + 1;
        line++;
    }
}

/* The run's exit status (docs/taskfile.md, "Exit status") from its state. */
static int exit_of(const char *state, bool gone)
{
    return !strcmp(state, "done")      ? EXIT_ALL_OK
           : !strcmp(state, "failed")  ? EXIT_SOME_FAILED
           : !strcmp(state, "stopped") ? EXIT_RESUMABLE
           : !strcmp(state, "running") ? (gone ? EXIT_RESUMABLE : EXIT_ALL_OK)
                                       : EXIT_RUNTIME;
}

int cli_status(int argc, char **argv)
{
    const char *dir = NULL;
    bool json = false, tasks = false, failed = false, help = false;
    bool bad = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json"))
            json = true;
        else if (!strcmp(argv[i], "--tasks"))
            tasks = true;
        else if (!strcmp(argv[i], "--failed"))
            failed = true;
        else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))
            help = true;
        else if (argv[i][0] == '-' || dir)
            bad = true;
        else
            dir = argv[i];
    }
    if (help) {
        printf("usage: taskfarm status [--tasks] [--json] OUTDIR\n"
               "       taskfarm status --failed OUTDIR\n"
               "Show the state of the run writing to OUTDIR, while it runs "
               "or after, and exit\nwith the run's exit status (0 done or "
               "still running, 1 failed, 75 stopped or\ninterrupted: finish "
               "with --resume, 3 error).\n"
               "--tasks   also each task of the task file: done, failed, "
               "skipped (and after\n          which failure), not needed "
               "(@afternotok), pending (running or\n          queued) or "
               "not finished\n"
               "--failed  only the task-file lines of the failed tasks, as "
               "written: a task\n          file to rerun them\n"
               "--json    one JSON object (with --tasks, its array "
               "\"tasks\")\n");
        return EXIT_ALL_OK;
    }
    if (bad || !dir || (failed && (tasks || json))) {
        fprintf(stderr, "usage: taskfarm status [--tasks] [--json] OUTDIR\n"
                        "       taskfarm status --failed OUTDIR\n"
                        "(taskfarm help status says more)\n");
        return EXIT_USAGE;
    }
    tf_runstate rs;
    int e = tf_runstate_read(dir, &rs);
    if (e) {
        fprintf(stderr, "taskfarm: %s: %s\n", dir,
                e == ENOENT ? "no taskfarm run there (no status file)"
                : e == EINVAL ? "status file is damaged"
                              : strerror(e));
        return EXIT_USAGE;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    double now = ts.tv_sec + ts.tv_nsec / 1e9;
    double started = rs.started_ns / 1e9, updated = rs.updated_ns / 1e9;
    bool running = !strcmp(rs.state, "running"), gone = false;
    const char *note = "";
    char host[64] = "";
    gethostname(host, sizeof host - 1);
    /*
     * A run killed hard (kill -9, node failure) never writes its final
     * state. On rank 0's host we can tell; elsewhere the age of the last
     * update hints at it.
     */
    if (running && !strcmp(host, rs.host) && rs.pid > 0 &&
        kill(rs.pid, 0) != 0 && errno == ESRCH) {
        gone = true;
        note = " (interrupted: its process is gone; finish it with --resume)";
    } else if (running && now - updated > 60) {
        note = " (no update for over a minute: interrupted?)";
    }
    double elapsed = (running && !*note ? now : updated) - started;
    uint64_t ran = rs.done - rs.resumed;
    double rate = elapsed > 0 ? ran / elapsed : 0;
    uint64_t left =
        rs.total - rs.done - rs.failed - rs.skipped - rs.not_needed;
    uint64_t busy = running && !gone ? rs.running : 0;
    /*
     * The task file tells which failures are still current: --tasks and
     * --failed need it, the rest uses it when it can be read.
     */
    run_tasks r;
    int rc = run_tasks_load(dir, &rs, &r, !(tasks || failed));
    if (rc == EXIT_RUNTIME || (rc != EXIT_ALL_OK && (tasks || failed)))
        return rc;
    const run_tasks *known = rc == EXIT_ALL_OK ? &r : NULL;
    int status = exit_of(rs.state, gone);
    if (failed) {
        print_failed(&r);
        run_tasks_free(&r);
        return status;
    }
    bool live = running && !gone;
    if (json) {
        json_t *fails = json_array();
        failing(dir, known, 0, fails);
        json_t *o = json_pack(
            "{s:s, s:s, s:b, s:s, s:i, s:I, s:s, s:I, s:I, s:I, s:I, s:I, "
            "s:I, s:I, s:f, s:f, s:o, s:o, s:i}",
            "outdir", dir, "state", rs.state, "interrupted", gone,
            "taskfile", rs.taskfile, "ranks", rs.ranks, "slots",
            (json_int_t)rs.slots, "host", rs.host, "pid", (json_int_t)rs.pid,
            "total", (json_int_t)rs.total, "done", (json_int_t)rs.done,
            "resumed", (json_int_t)rs.resumed, "running", (json_int_t)busy,
            "failed", (json_int_t)rs.failed, "skipped",
            (json_int_t)rs.skipped, "elapsed_s", elapsed, "tasks_per_s", rate,
            "eta_s",
            running && rate > 0 && !*note ? json_real(left / rate)
                                          : json_null(),
            "failing", fails, "exit", exit_of(rs.state, gone));
        json_object_set_new(o, "left", json_integer((json_int_t)left));
        json_object_set_new(o, "not_needed",
                            json_integer((json_int_t)rs.not_needed));
        /* Of those left, what a stop ended or kept from starting. */
        json_object_set_new(o, "interrupted_tasks",
                            json_integer((json_int_t)rs.interrupted));
        json_object_set_new(o, "not_started",
                            json_integer((json_int_t)rs.not_started));
        if (rs.output[0])
            json_object_set_new(o, "output", json_string(rs.output));
        json_object_set_new(o, "follow", json_boolean(rs.follow));
        if (tasks) {
            json_t *arr = json_array();
            print_tasks(&r, live, arr);
            json_object_set_new(o, "tasks", arr);
        }
        char *text = o ? json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER)
                       : NULL;
        if (!text) {
            fprintf(stderr, "taskfarm: out of memory\n");
            status = EXIT_RUNTIME;
        } else {
            printf("%s\n", text);
        }
        free(text);
        json_decref(o);
        if (known)
            run_tasks_free(&r);
        return status;
    }
    printf("%s: %s%s\n", dir, rs.state, note);
    printf("  task file %s%s, %d rank%s, %llu slots, rank 0 on %s (pid %ld)\n",
           rs.taskfile, rs.follow ? " (followed)" : "", rs.ranks,
           rs.ranks == 1 ? "" : "s", (unsigned long long)rs.slots, rs.host,
           (long)rs.pid);
    printf("  %llu/%llu done", (unsigned long long)rs.done,
           (unsigned long long)rs.total);
    if (rs.resumed)
        printf(" (%llu in an earlier run)", (unsigned long long)rs.resumed);
    printf(", %llu running, %llu failed, %llu skipped",
           (unsigned long long)busy, (unsigned long long)rs.failed,
           (unsigned long long)rs.skipped);
    if (rs.not_needed)
        printf(", %llu not needed", (unsigned long long)rs.not_needed);
    printf(", %llu left", (unsigned long long)left);
    /* A stop's tasks are neither failed nor skipped: --resume runs them. */
    if (rs.interrupted || rs.not_started)
        printf(" (%llu interrupted, %llu not started)",
               (unsigned long long)rs.interrupted,
               (unsigned long long)rs.not_started);
    printf("\n");
    printf("  elapsed %.1f s, %.1f tasks/s", elapsed, rate);
    if (running && rate > 0 && !*note)
        printf(", ETA %.0f s", left / rate);
    printf("\n");
    if (rs.output[0])
        printf("  output %s\n", rs.output);
    failing(dir, known, 10, NULL);
    if (tasks) {
        printf("tasks (line, id, state):\n");
        print_tasks(&r, live, NULL);
    }
    if (known)
        run_tasks_free(&r);
    return status;
}
