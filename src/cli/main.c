/* The taskfarm command: subcommand table, `check` (no MPI) and `version`. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "core/taskfile.h"
#include "taskfarm_status.h"
#include "taskfarm_version.h" /* not taskfarm.h: that pulls in mpi.h */

#define STR_(x) #x
#define STR(x) STR_(x)
#define VERSION_STRING                                                         \
    STR(TF_VERSION_MAJOR) "." STR(TF_VERSION_MINOR) "." STR(TF_VERSION_PATCH)

/*
 * A subcommand gets argv from its own name on (argv[0] is "check") and
 * returns the process's exit status. Adding `run` or `status` is one entry
 * here and one function.
 */
typedef struct command {
    const char *name;
    const char *args;    /* shown in the usage text */
    const char *summary; /* likewise */
    int (*main)(int argc, char **argv);
} command;

static int cmd_check(int argc, char **argv);
static int cmd_version(int argc, char **argv);
static int cmd_help(int argc, char **argv);

static const command commands[] = {
    {"run", "[OPTIONS] TASKFILE",
     "run the tasks (under mpirun/srun, or as one process);\n"
     "also COMMAND ::: ARGS, GNU parallel's argument mode",
     cli_run},
    {"add", "OUTDIR FILE", "give the farm running in OUTDIR more tasks",
     cli_add},
    {"check", "TASKFILE",
     "validate a task file (no MPI): counts, or errors;\n"
     "--dry-run: each task and its command instead",
     cmd_check},
    {"status", "OUTDIR", "progress of a run, while it runs or after",
     cli_status},
    {"topo", "", "map of ranks to hosts, cores and NUMA nodes, with warnings",
     cli_topo},
    {"report", "OUTDIR", "SVG Gantt chart and utilisation from a run's trace",
     cli_report},
    {"version", "", "print the version", cmd_version},
    {"help", "[COMMAND]", "this list, or one command's options", cmd_help},
};

#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *out)
{
    fprintf(out, "usage: taskfarm COMMAND [ARGS]\n"
                 "       taskfarm --help | --version\n\ncommands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++) {
        char head[64];
        snprintf(head, sizeof head, "%s %s", commands[i].name,
                 commands[i].args);
        /* A summary's second line starts under its first. */
        const char *s = commands[i].summary, *nl = strchr(s, '\n');
        fprintf(out, "  %-18s %.*s\n", head,
                (int)(nl ? (size_t)(nl - s) : strlen(s)), s);
        if (nl)
            fprintf(out, "  %-18s %s\n", "", nl + 1);
    }
    fprintf(out, "\nexit status: 0 all tasks succeeded, 1 some failed or were "
                 "skipped,\n2 usage or task-file error, 3 runtime error, 75 "
                 "stopped by a signal\n(resumable). The task-file format is in "
                 "docs/taskfile.md.\n");
}

/* taskfarm help [COMMAND]: the list, or COMMAND --help. */
static int cmd_help(int argc, char **argv)
{
    if (argc == 1) {
        usage(stdout);
        return EXIT_ALL_OK;
    }
    for (size_t i = 0; argc == 2 && i < NCOMMANDS; i++)
        if (!strcmp(argv[1], commands[i].name)) {
            char name[16], opt[] = "--help";
            snprintf(name, sizeof name, "%s", commands[i].name);
            char *args[] = {name, opt, NULL};
            return commands[i].main(2, args);
        }
    fprintf(stderr, "taskfarm help: no command '%s'; the commands: "
                    "taskfarm help\n", argc > 1 ? argv[1] : "");
    return EXIT_USAGE;
}

static int cmd_version(int argc, char **argv)
{
    (void)argv;
    if (argc > 1) {
        fprintf(stderr, "usage: taskfarm version\n");
        return EXIT_USAGE;
    }
    printf("taskfarm %s\n", VERSION_STRING);
    return EXIT_ALL_OK;
}

/* ---- check ---- */

static double seconds_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) +
           (double)(t1.tv_nsec - t0->tv_nsec) * 1e-9;
}

static void check_usage(FILE *out)
{
    fprintf(out,
            "usage: taskfarm check [--dry-run] TASKFILE\n"
            "       taskfarm check [--dry-run] COMMAND... ::: ARGS... "
            "[:::: FILE...]\n"
            "Validate TASKFILE, or the tasks of argument mode, without "
            "running anything.\nPrints a summary and exits 0, or prints "
            "every error found (up to %d) and\nexits 2. --dry-run prints "
            "the tasks instead of the summary, one a line:\nline, id, the "
            "ids it waits for (@after, @afterany, @afternotok: three\n"
            "comma-separated lists) and the command, tab-separated.\n",
            TF_TASKFILE_MAX_ERRORS);
}

/*
 * --dry-run: each task as run would see it, after a header, in file order:
 * "LINE<tab>ID<tab>AFTER<tab>AFTERANY<tab>AFTERNOTOK<tab>COMMAND", the
 * ids it waits for by kind, comma-separated (a barrier as @barrier:LINE;
 * empty when none), the command last as in the joblog, since it may hold
 * tabs.
 */
static void print_tasks(const tf_taskfile *tf)
{
    fputs("line\tid\tafter\tafterany\tafternotok\tcommand\n", stdout);
    for (uint32_t i = 0; i < tf->n; i++) {
        if (tf_taskfile_is_barrier(tf, i))
            continue;
        printf("%u\t%s", (unsigned)tf->tasks[i].line, tf_taskfile_id(tf, i));
        uint32_t nd;
        const uint32_t *d = tf_taskfile_deps(tf, i, &nd);
        for (uint8_t kind = TF_EDGE_OK; kind <= TF_EDGE_NOTOK; kind++) {
            bool more = false;
            fputc('\t', stdout);
            for (uint32_t k = 0; k < nd; k++) {
                if (tf_taskfile_dep_kind(tf, i, k) != kind)
                    continue;
                if (more)
                    fputc(',', stdout);
                more = true;
                if (tf_taskfile_is_barrier(tf, d[k]))
                    printf("@barrier:%u", (unsigned)tf->tasks[d[k]].line);
                else
                    fputs(tf_taskfile_id(tf, d[k]), stdout);
            }
        }
        printf("\t%s\n", tf_taskfile_cmd(tf, i));
    }
}

static int cmd_check(int argc, char **argv)
{
    const char *path = NULL;
    bool opts = true, dry = false;
    cli_args A = {0};
    for (int i = 1; i < argc && !A.argv; i++) {
        const char *a = argv[i];
        if (opts && (!strcmp(a, "-h") || !strcmp(a, "--help"))) {
            check_usage(stdout);
            return EXIT_ALL_OK;
        }
        if (opts && !strcmp(a, "--dry-run")) {
            dry = true;
            continue;
        }
        if (opts && !strcmp(a, "--")) {
            opts = false;
            continue;
        }
        if (opts && a[0] == '-' && a[1]) {
            fprintf(stderr, "taskfarm check: unknown option '%s'\n", a);
            check_usage(stderr);
            return EXIT_USAGE;
        }
        if (cli_args_from(argc, argv, i, &A))
            break;
        if (path) {
            fprintf(stderr, "taskfarm check: one task file at a time\n");
            check_usage(stderr);
            return EXIT_USAGE;
        }
        path = a;
    }
    if (!path && !A.argv) {
        check_usage(stderr);
        return EXIT_USAGE;
    }

    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    tf_taskfile tf;
    int status = A.argv ? cli_args_load(&A, "taskfarm check", &tf)
                        : cli_load_taskfile(path, &tf);
    cli_args_free(&A);
    if (status != EXIT_ALL_OK)
        return status;
    double secs = seconds_since(&t0);
    if (dry) {
        print_tasks(&tf);
        tf_taskfile_free(&tf);
        return EXIT_ALL_OK;
    }
    size_t per = (tf_taskfile_bytes(&tf) + tf.ntasks / 2) / tf.ntasks;
    printf("%s: %u tasks, %u dependencies, %u barriers, longest chain "
           "%u, max cores %u, parsed in %.3f s, %zu bytes/task\n",
           path ? path : "arguments", (unsigned)tf.ntasks, (unsigned)tf.nafter,
           (unsigned)tf.nbarriers, (unsigned)tf.max_chain,
           (unsigned)tf.max_cores, secs, per);
    tf_taskfile_free(&tf);
    return EXIT_ALL_OK;
}

/* ---- dispatch ---- */

/* Output that never reached its reader must not look like success. */
static int finish(int status)
{
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "taskfarm: cannot write output: %s\n", strerror(errno));
        if (status == EXIT_ALL_OK)
            status = EXIT_RUNTIME;
    }
    return status;
}

int main(int argc, char **argv)
{
    /* cli_run's orphan guard: this binary again, before anything else. */
    if (argc == 2 && !strcmp(argv[1], CLI_GUARD_ARG))
        return cli_guard_main();
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    const char *a = argv[1];
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
        usage(stdout);
        return finish(EXIT_ALL_OK);
    }
    if (!strcmp(a, "--version"))
        return finish(cmd_version(1, argv + 1));
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (!strcmp(a, commands[i].name))
            return finish(commands[i].main(argc - 1, argv + 1));
    fprintf(stderr, "taskfarm: unknown %s '%s'; the commands: taskfarm help\n",
            a[0] == '-' ? "option" : "command", a);
    return EXIT_USAGE;
}
