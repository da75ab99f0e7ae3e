/* taskfarm run's options: parsing, checking, the usage text. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/taskfile.h"
#include "farm.h"

/* After a mistake: one line on where the whole usage is, not the usage. */
#define RUN_HINT                                                               \
    "usage: taskfarm run [OPTIONS] TASKFILE | COMMAND ::: ARGS   (all "        \
    "options: taskfarm help run)\n"

void cli_run_usage(FILE *out)
{
    fprintf(out,
            "usage: taskfarm run [OPTIONS] TASKFILE\n"
            "       taskfarm run [OPTIONS] COMMAND... ::: ARGS... [:::: "
            "FILE...]\n"
            "Run every task of TASKFILE (- for standard input): under "
            "mpirun or srun rank 0\nschedules and the other ranks run "
            "tasks; started directly, one process runs\nthem all. "
            "Options take their value as --opt VALUE or --opt=VALUE; "
            "SEC is a\nduration: seconds (90, 1.5) or with units (500ms, "
            "90s, 10m, 2h, 1h30m).\n\n"
            "Argument mode, GNU parallel's: COMMAND runs once for each "
            "argument, or each\ncombination of one argument of every "
            "source (::: ARGS; :::: FILE, one a line,\nor standard input "
            "for -; :::+ and ::::+ pair a source with the one before).\n"
            "In COMMAND, {} is the argument (quoted for the shell), {.} "
            "without its\nextension, {/} its basename, {//} its dirname, "
            "{/.} its basename without\nextension, {#} the job's number, "
            "{N} and {N.} ... source N's; without any, the\narguments are "
            "appended. Job N is line N of DIR/argtasks.txt, which the "
            "run\nwrites. Options come before COMMAND.\n\n"
            "  -o, --outdir DIR      joblog, task output and status "
            "(default taskfarm-out)\n"
            "      --resume          finish an earlier run in DIR: tasks its "
            "saved state shows\n"
            "                        done (same @id, same command) do not "
            "run again\n"
            "      --force           reuse DIR, truncating its joblog and "
            "removing its state\n"
            "      --follow          keep taking lines appended to TASKFILE "
            "(a bad one is\n"
            "                        refused alone) until a line @end, "
            "taskfarm add --end\n"
            "                        DIR or a signal; the farm waits for "
            "them when idle\n"
            "      --checkpoint-every SEC  snapshot the state into DIR every "
            "SEC seconds\n"
            "                        (default 60; 0: at the end only); "
            "finished tasks are\n"
            "                        journaled as they finish either way\n"
            "      --slots N         tasks each rank runs at once (default: "
            "its cores)\n"
            "      --shell SHELL     run each command as SHELL -c COMMAND "
            "(a path, or a name\n"
            "                        found in PATH; default: the task "
            "file's @shell, else bash)\n"
            "      --retries N       extra attempts for a failed task "
            "(default 0)\n"
            "      --timeout SEC     end a task after SEC seconds (default "
            "none)\n"
            "      --grace SEC       from SIGTERM to SIGKILL (default 2)\n"
            "      --halt SPEC       stop early, as GNU parallel: SPEC is "
            "WHEN,WHY=N or\n"
            "                        WHEN,WHY=N%%: once N tasks (or N%% of "
            "all) failed (WHY\n"
            "                        fail), succeeded (success) or ended "
            "(done), end running\n"
            "                        tasks (WHEN now) or let them finish "
            "(soon); e.g. now,fail=1,\n"
            "                        soon,fail=10%%; default never\n"
            "      --halt-on-error   the same as --halt now,fail=1\n"
            "      --deadline TIME   the allocation ends at TIME (+2h from "
            "now, @EPOCH, or\n"
            "                        YYYY-MM-DDTHH:MM[:SS]); default under "
            "Slurm: the job's end;\n"
            "                        none: no deadline. A task starts only "
            "if its @est (or its\n"
            "                        line's learnt one) ends before it, "
            "less the margin; then\n"
            "                        the run stops with 75 (finish with "
            "--resume)\n"
            "      --deadline-margin SEC  stop this long before the "
            "deadline (default 60)\n"
            "      --no-steal        worker ranks never take queued tasks "
            "from each other\n"
            "      --scheduler-only  rank 0 only schedules (default: it runs "
            "tasks on its\n"
            "                        slots too, so -np N on N cores uses "
            "them all)\n"
            "      --heartbeat SEC   write off a rank silent for SEC seconds "
            "(default 30;\n"
            "                        0: off); survives a dead worker under "
            "mpirun --enable-recovery\n"
            "      --standby         and a dead rank 0: the lowest surviving "
            "rank takes over\n"
            "                        its scheduling from the state in DIR "
            "and finishes the run\n"
            "      --no-trace        write no DIR/trace.json (see taskfarm "
            "report)\n"
            "      --output MODE     tasks' stdout and stderr: files "
            "(DIR/out/ID.out and ID.err,\n"
            "                        made only when written), tag (every "
            "line as ID<tab>LINE on\n"
            "                        taskfarm's stdout and stderr, each "
            "task's lines together,\n"
            "                        and in DIR/tagged.out and .err) or "
            "none; default: the task\n"
            "                        file's @output, else files\n"
            "      --bind POLICY     bind each task to its cores (core, the "
            "default), to their\n"
            "                        NUMA domains (numa) or not at all "
            "(none); memory follows\n"
            "      --status-every SEC  status line period when stderr is not "
            "a terminal\n"
            "                        (default 30; 0: none)\n"
            "  -q, --quiet           no progress, only errors and the "
            "summary\n"
            "      --progress        the live progress line even when "
            "stderr is not a terminal:\n"
            "                        under mpirun or srun, whose output "
            "reaches yours through a pipe\n"
            "  -v, --verbose         the runtime's notes too (snapshots, "
            "each rank's host\n"
            "                        and steal peers); -vv: its debugging "
            "notes\n\n"
            "exit status: 0 all tasks succeeded, 1 some failed or were "
            "skipped, 2 usage\nor task-file error (nothing ran), 3 runtime "
            "error, 75 stopped by a signal or\nthe deadline (finish with "
            "--resume).\n");
}

/* A whole number from lo to hi, digits only (no sign, no blanks). */
static bool parse_count(const char *s, size_t n, uint32_t lo, uint32_t hi,
                        uint32_t *out)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n && v <= hi; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (!n || v < lo || v > hi)
        return false;
    *out = (uint32_t)v;
    return true;
}

bool cli_halt_parse(const char *s, cli_halt *h)
{
    /* parallel's old forms, as its parse_halt expands them. */
    static const char *const old[][2] = {
        {"0", "never"},          {"1", "soon,fail=1"},
        {"2", "now,fail=1"},     {"-1", "soon,success=1"},
        {"-2", "now,success=1"},
    };
    for (size_t i = 0; i < sizeof old / sizeof *old; i++)
        if (!strcmp(s, old[i][0]))
            s = old[i][1];
    if (!strcmp(s, "never")) {
        *h = (cli_halt){0};
        return true;
    }
    static const char *const whens[] = {"", "soon,", "now,"};
    static const char *const whys[] = {"", "fail=", "success=", "done="};
    cli_halt r = {0};
    const char *rest = s;
    for (uint8_t k = CLI_HALT_SOON; k <= CLI_HALT_NOW; k++)
        if (!strncmp(s, whens[k], strlen(whens[k])))
            r.when = k, rest = s + strlen(whens[k]);
    for (uint8_t k = CLI_HALT_FAIL; r.when && k <= CLI_HALT_DONE; k++)
        if (!strncmp(rest, whys[k], strlen(whys[k])))
            r.why = k, rest += strlen(whys[k]);
    size_t n = strlen(rest);
    /* "N%" alone is soon,fail=N%, as in parallel. */
    if (!r.when && n && rest[n - 1] == '%')
        r.when = CLI_HALT_SOON, r.why = CLI_HALT_FAIL;
    r.pct = n && rest[n - 1] == '%';
    if (!r.why || !parse_count(rest, n - r.pct, 1, r.pct ? 100 : 1000000000,
                               &r.n))
        return false;
    snprintf(r.text, sizeof r.text, "%s%s%u%s", whens[r.when], whys[r.why],
             (unsigned)r.n, r.pct ? "%" : "");
    *h = r;
    return true;
}

bool cli_halt_due(const cli_halt *h, uint64_t failed, uint64_t succeeded,
                  uint64_t total)
{
    uint64_t c = h->why == CLI_HALT_FAIL      ? failed
                 : h->why == CLI_HALT_SUCCESS ? succeeded
                                              : failed + succeeded;
    /* parallel: halt when the count reaches total x N / 100 (not rounded). */
    return h->when && (h->pct ? c * 100 >= (uint64_t)h->n * total : c >= h->n);
}

/* A duration (tf_duration_ms: 90, 1.5, 500ms, 10m, 1h30m) in ms. */
static bool parse_seconds(const char *s, bool allow_zero, unsigned *ms)
{
    uint64_t v;
    if (!tf_duration_ms(s, strlen(s), &v) || (!allow_zero && v == 0) ||
        v > UINT_MAX)
        return false;
    *ms = (unsigned)v;
    return true;
}

static bool parse_int(const char *s, int lo, int hi, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return false;
    *out = (int)v;
    return true;
}

/* A flag (an option without a value): 1 if a is one, else 0. */
static int flag(const char *a, run_opts *o)
{
    bool *f = !strcmp(a, "--resume")          ? &o->resume
              : !strcmp(a, "--force")         ? &o->force
              : !strcmp(a, "--no-steal")      ? &o->no_steal
              : !strcmp(a, "--scheduler-only") ? &o->scheduler_only
              : !strcmp(a, "--no-trace")      ? &o->no_trace
              : !strcmp(a, "--progress")      ? &o->progress
              : !strcmp(a, "--follow")        ? &o->follow
              : !strcmp(a, "--standby")       ? &o->standby
              : !strcmp(a, "-q") || !strcmp(a, "--quiet") ? &o->quiet
                                                          : NULL;
    if (f)
        *f = true;
    /* taskfarm's own since its start; parallel's takes a value (--halt). */
    if (!strcmp(a, "--halt-on-error"))
        return cli_halt_parse("now,fail=1", &o->halt);
    /* -v: each rank's start-up facts (hosts, steal peers); -vv: more. */
    if (!strcmp(a, "-v") || !strcmp(a, "--verbose") || !strcmp(a, "-vv")) {
        o->verbose += a[2] == 'v' ? 2 : 1;
        return 1;
    }
    return f != NULL;
}

/*
 * An option with value v: 1 when taken, 0 when a is no such option, -1
 * when v is bad for it.
 */
static int valued(const char *a, const char *v, run_opts *o)
{
    unsigned ms;
    bool ok;
    if (!strcmp(a, "-o") || !strcmp(a, "--outdir"))
        ok = (o->outdir = v) != NULL;
    else if (!strcmp(a, "--shell"))
        ok = *(o->shell = v) != 0;
    else if (!strcmp(a, "--slots"))
        ok = parse_int(v, 1, UINT16_MAX, &o->slots);
    else if (!strcmp(a, "--retries"))
        ok = parse_int(v, 0, UINT8_MAX - 1, &o->retries);
    else if (!strcmp(a, "--timeout"))
        ok = parse_seconds(v, false, &o->timeout_ms);
    else if (!strcmp(a, "--grace"))
        ok = parse_seconds(v, true, &o->grace_ms);
    else if (!strcmp(a, "--checkpoint-every"))
        ok = parse_seconds(v, true, &o->checkpoint_ms);
    else if (!strcmp(a, "--heartbeat"))
        ok = parse_seconds(v, true, &o->heartbeat_ms);
    else if (!strcmp(a, "--deadline"))
        ok = cli_deadline_parse(v, &o->deadline_ns, &o->no_deadline);
    else if (!strcmp(a, "--deadline-margin"))
        ok = parse_seconds(v, true, &o->margin_ms);
    else if (!strcmp(a, "--output"))
        ok = (o->output_given = cli_output_mode_parse(v, &o->output));
    else if (!strcmp(a, "--bind"))
        ok = (o->bind_given = tf_bind_policy_parse(v, &o->bind));
    else if (!strcmp(a, "--halt"))
        ok = cli_halt_parse(v, &o->halt);
    else if (!strcmp(a, "--status-every")) {
        if ((ok = parse_seconds(v, true, &ms)))
            o->status_every = ms / 1000.0;
    } else {
        return 0;
    }
    return ok ? 1 : -1;
}

/* Option a (its first n bytes) refused value v: say so, with --halt's forms. */
static int bad_value(const char *a, int n, const char *v)
{
    fprintf(stderr, "taskfarm run: bad value '%s' for %.*s%s\n", v, n, a,
            n == 6 && !strncmp(a, "--halt", 6)
                ? " (expected never, or now or soon, then fail, success or "
                  "done, then =N, or =N% with N from 1 to 100: e.g. "
                  "now,fail=1, soon,fail=10%)"
                : "");
    return EXIT_USAGE;
}

int cli_run_opts(int argc, char **argv, run_opts *o)
{
    *o = (run_opts){.outdir = "taskfarm-out", .grace_ms = 2000,
                    .heartbeat_ms = 30000, .checkpoint_ms = 60000,
                    .status_every = 30, .bind = TF_BIND_CORE,
                    .margin_ms = 60000};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        int got = 0;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            cli_run_usage(stdout);
            return EXIT_ALL_OK;
        }
        /* --opt=VALUE: the name alone (argv is ours to cut), VALUE as v. */
        char *eq = a[0] == '-' && a[1] == '-' ? strchr(argv[i], '=') : NULL;
        if (eq) {
            *eq = 0;
            v = eq + 1;
            if (flag(a, o)) {
                fprintf(stderr, "taskfarm run: %s takes no value\n%s", a,
                        RUN_HINT);
                return EXIT_USAGE;
            }
            got = valued(a, v, o);
            *eq = '=';
            if (got > 0)
                continue;
            if (got < 0) {
                return bad_value(a, (int)(eq - a), v);
            }
            fprintf(stderr, "taskfarm run: unknown option '%.*s'\n%s",
                    (int)(eq - a), a, RUN_HINT);
            return EXIT_USAGE;
        }
        if (flag(a, o))
            continue;
        if (v && (got = valued(a, v, o)) != 0) {
            if (got < 0) {
                return bad_value(a, (int)strlen(a), v);
            }
            i++;
        } else if (a[0] == '-' && a[1]) {
            /* (An option that takes a value knows its name even with "".) */
            fprintf(stderr, "taskfarm run: %s '%s'\n%s",
                    valued(a, "", o) ? "missing value for" : "unknown option",
                    a, RUN_HINT);
            return EXIT_USAGE;
        } else if (!o->taskfile && cli_args_from(argc, argv, i, &o->args)) {
            /* COMMAND ::: ARGS: every word from here on is argument mode's. */
            break;
        } else if (o->taskfile) {
            fprintf(stderr, "taskfarm run: one task file at a time\n");
            return EXIT_USAGE;
        } else {
            o->taskfile = a;
        }
    }
    if (o->args.argv && o->follow) {
        fprintf(stderr, "taskfarm run: --follow follows a task file; "
                        "argument mode's jobs are all on the command line\n");
        return EXIT_USAGE;
    }
    if (o->standby && !o->heartbeat_ms) {
        fprintf(stderr, "taskfarm run: --standby notices a lost rank 0 by "
                        "its heartbeats: not with --heartbeat 0\n");
        return EXIT_USAGE;
    }
    /*
     * A successor reads the task file again: standard input and pipes are
     * rank 0's alone, and what it read from them is gone.
     */
    struct stat st;
    if (o->standby && o->taskfile && !o->args.argv &&
        (!strcmp(o->taskfile, "-") ||
         (!stat(o->taskfile, &st) && !S_ISREG(st.st_mode)))) {
        fprintf(stderr, "taskfarm run: --standby: a successor of rank 0 "
                        "reads the task file again, which %s cannot be: "
                        "give a regular file\n",
                strcmp(o->taskfile, "-") ? o->taskfile : "standard input");
        return EXIT_USAGE;
    }
    if (o->args.argv) {
        snprintf(o->args.path, sizeof o->args.path, "%s/%s", o->outdir,
                 CLI_ARGS_FILE);
        o->taskfile = o->args.path;
    }
    if (!o->taskfile) {
        fprintf(stderr, "taskfarm run: no TASKFILE\n%s", RUN_HINT);
        return EXIT_USAGE;
    }
    if (o->resume && o->force) {
        fprintf(stderr, "taskfarm run: --resume and --force exclude each "
                        "other\n");
        return EXIT_USAGE;
    }
    return -1;
}
