/* Tests of the shell-command executor, with real child processes. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <CUnit/Basic.h>
#include <CUnit/CUnit.h>

#include "exec/proc.h"
#include "taskfarm_status.h"

extern char **environ;

/*
 * Every test runs under a watchdog (alarm): a test that hangs ends the
 * binary with a message and exit status 3 instead of blocking CI. Commands
 * that must be ended by the code under test sleep 100 s, well past it.
 * Times are checked with generous bounds: a loaded CI machine is slow, but
 * never 100 s slow.
 */
#define WATCHDOG_S 60

/* ------------------------------------------------------------------------ */
/* Checks that print both values (as tests/unit/check.h, without its core). */

#if defined(__GNUC__)
__attribute__((format(printf, 4, 5)))
#endif
static bool
check_(bool ok, const char *file, unsigned line, const char *fmt, ...)
{
    char msg[512] = "";
    if (!ok) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
    }
    CU_assertImplementation(ok ? CU_TRUE : CU_FALSE, line, msg, file, "",
                            CU_FALSE);
    return ok;
}

/*
 * Each argument is evaluated exactly once: the macros hand their values to
 * functions. Tests pass calls with side effects, e.g.
 * CHECK_RC(tf_proc_run(...), TF_OK); a macro that named an argument twice
 * (once to compare, once to print) would run the command twice and leave the
 * first run's processes behind unchecked.
 */
#define CHECK_TRUE(x)                                                          \
    check_((x) ? true : false, __FILE__, __LINE__, "%s", "CHECK_TRUE(" #x ")")
#define CHECK_EQ_I(a, b)                                                       \
    check_eq_i_((intmax_t)(a), (intmax_t)(b), #a, #b, __FILE__, __LINE__)
#define CHECK_RC(a, b) check_rc_((a), (b), #a, #b, __FILE__, __LINE__)
#define CHECK_STR(a, b) check_str_((a), (b), #a, #b, __FILE__, __LINE__)
/* Elapsed seconds within [lo, hi]. */
#define CHECK_SECS(s, lo, hi)                                                  \
    check_secs_((double)(s), (double)(lo), (double)(hi), #s, __FILE__, __LINE__)

static bool check_eq_i_(intmax_t a, intmax_t b, const char *as, const char *bs,
                        const char *file, unsigned line)
{
    return check_(a == b, file, line, "%s == %s: %jd != %jd", as, bs, a, b);
}

static bool check_rc_(int a, int b, const char *as, const char *bs,
                      const char *file, unsigned line)
{
    return check_(a == b, file, line, "%s == %s: %s != %s", as, bs,
                  tf_err_name(a), tf_err_name(b));
}

static bool check_str_(const char *a, const char *b, const char *as,
                       const char *bs, const char *file, unsigned line)
{
    return check_(a && b && !strcmp(a, b), file, line,
                  "%s == %s: \"%s\" != \"%s\"", as, bs, a ? a : "(null)",
                  b ? b : "(null)");
}

static bool check_secs_(double s, double lo, double hi, const char *ss,
                        const char *file, unsigned line)
{
    return check_(s >= lo && s <= hi, file, line,
                  "%s = %.3f s, not within [%.3f, %.3f]", ss, s, lo, hi);
}

/* ------------------------------------------------------------------------ */
/* Helpers */

static char tmpdir[64];

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double thread_cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* A path in the test's temporary directory (buf holds PATH_MAX). */
static const char *tpath(char *buf, const char *name)
{
    snprintf(buf, PATH_MAX, "%s/%s", tmpdir, name);
    return buf;
}

/* A file's bytes (NUL-terminated for convenience) or NULL; *len its size. */
static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    char *b = malloc(cap + 1);
    size_t got;
    while (b && (got = fread(b + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            char *nb = realloc(b, cap * 2 + 1);
            if (!nb) {
                free(b);
                b = NULL;
                break;
            }
            b = nb;
            cap *= 2;
        }
    }
    fclose(f);
    if (b) {
        b[n] = '\0';
        if (len)
            *len = n;
    }
    return b;
}

/* Whether a file holds exactly the string want. */
static bool file_is(const char *path, const char *want)
{
    char *got = slurp(path, NULL);
    bool ok = got && !strcmp(got, want);
    check_(ok, __FILE__, __LINE__, "%s holds \"%s\", not \"%s\"", path,
           got ? got : "(unreadable)", want);
    free(got);
    return ok;
}

static tf_proc_spec spec_of(const char *cmd, const char *out, const char *err)
{
    tf_proc_spec s;
    memset(&s, 0, sizeof s);
    s.cmd = cmd;
    s.out_path = out;
    s.err_path = err;
    s.envp = environ;
    return s;
}

/* Run cmd with no output files and no timeout. */
static int run_simple(tf_proc_table *t, const char *cmd, tf_proc_result *r)
{
    tf_proc_spec s = spec_of(cmd, NULL, NULL);
    return tf_proc_run(t, &s, r);
}

/* Live (not zombie) processes whose process group is pgid, from /proc. */
static int live_in_group(pid_t pgid)
{
    DIR *d = opendir("/proc");
    if (!d)
        return -1;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] < '0' || de->d_name[0] > '9')
            continue;
        char p[300], buf[512];
        snprintf(p, sizeof p, "/proc/%s/stat", de->d_name);
        FILE *f = fopen(p, "r");
        if (!f)
            continue;
        size_t got = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[got] = '\0';
        /* "pid (comm) S ppid pgrp ...": comm may hold spaces and ')'. */
        char *rp = strrchr(buf, ')');
        char state;
        int ppid, pgrp;
        if (rp && sscanf(rp + 1, " %c %d %d", &state, &ppid, &pgrp) == 3 &&
            pgrp == pgid && state != 'Z' && state != 'X')
            n++;
    }
    closedir(d);
    return n;
}

/*
 * Whether the group is empty, by kill(-pgid, 0) failing with ESRCH, within
 * secs. Zombies count as members until their new parent reaps them; in
 * containers whose init reaps orphans only every few seconds, that takes a
 * while, hence the generous bound.
 */
static bool group_gone_within(pid_t pgid, double secs)
{
    double t0 = now_s();
    while (kill(-pgid, 0) == 0) {
        if (now_s() - t0 > secs)
            return false;
        sleep_ms(20);
    }
    return errno == ESRCH;
}

/*
 * End what a test deliberately left running in group pgid: SIGKILL to the
 * group, then wait, up to secs, until /proc shows no live member (zombies
 * do not count: init may reap orphans only every few seconds). The group
 * must have been formed before the call (its leader reaped or not, a member
 * that exists keeps the pgid valid for kill). True when none is left.
 */
static bool kill_group_and_wait(pid_t pgid, double secs)
{
    if (kill(-pgid, SIGKILL) == -1 && errno != ESRCH)
        return false;
    double t0 = now_s();
    int n;
    while ((n = live_in_group(pgid)) != 0) {
        if (n < 0 || now_s() - t0 > secs)
            return false;
        sleep_ms(20);
    }
    return true;
}

/* A run on another thread. */
typedef struct job {
    tf_proc_table *t;
    tf_proc_spec spec;
    tf_proc_result res;
    int rc;
    pthread_t th;
} job;

static void *job_main(void *arg)
{
    job *j = arg;
    j->rc = tf_proc_run(j->t, &j->spec, &j->res);
    return NULL;
}

/* Wait until n commands are registered, within secs. */
static bool running_within(tf_proc_table *t, size_t n, double secs)
{
    double t0 = now_s();
    while (tf_proc_table_running(t) != n) {
        if (now_s() - t0 > secs)
            return false;
        sleep_ms(2);
    }
    return true;
}

/* ------------------------------------------------------------------------ */
/* Exit status */

static void test_exit_status(void)
{
    tf_proc_table t;
    CHECK_RC(tf_proc_table_init(&t), TF_OK);
    tf_proc_result r;
    CHECK_RC(run_simple(&t, "exit 0", &r), TF_OK);
    CHECK_EQ_I(r.exitval, 0);
    CHECK_EQ_I(r.signal, 0);
    CHECK_TRUE(!r.timed_out && !r.halted && !r.spawn_errno);
    CHECK_TRUE(r.pid > 0);
    CHECK_TRUE(r.start_ns > 0 && r.start_ns <= r.end_ns);

    CHECK_RC(run_simple(&t, "exit 3", &r), TF_OK);
    CHECK_EQ_I(r.exitval, 3);
    CHECK_EQ_I(r.signal, 0);
    CHECK_TRUE(!r.timed_out && !r.halted && !r.spawn_errno);
    CHECK_EQ_I(tf_proc_table_running(&t), 0);
    tf_proc_table_destroy(&t);
}

static void test_killed_by_signal(void)
{
    tf_proc_table t;
    CHECK_RC(tf_proc_table_init(&t), TF_OK);
    tf_proc_result r;
    CHECK_RC(run_simple(&t, "kill -9 $$", &r), TF_OK);
    CHECK_EQ_I(r.exitval, -1);
    CHECK_EQ_I(r.signal, SIGKILL);
    CHECK_TRUE(!r.timed_out && !r.halted && !r.spawn_errno);
    tf_proc_table_destroy(&t);
}

/* Exit 127 from the shell (command not found) is not a spawn failure. */
static void test_command_not_found(void)
{
    tf_proc_table t;
    CHECK_RC(tf_proc_table_init(&t), TF_OK);
    tf_proc_result r;
    CHECK_RC(run_simple(&t, "tf_no_such_command_xyz 2>/dev/null", &r), TF_OK);
    CHECK_EQ_I(r.exitval, 127);
    CHECK_EQ_I(r.spawn_errno, 0);
    CHECK_TRUE(r.pid > 0);
    tf_proc_table_destroy(&t);
}

/* A command that starts with '-' is a command, not a shell option. */
static void test_command_starting_with_dash(void)
{
    tf_proc_table t;
    CHECK_RC(tf_proc_table_init(&t), TF_OK);
    char out[PATH_MAX];
    tf_proc_spec s =
        spec_of("-x 2>/dev/null || echo ran", tpath(out, "dash.out"), NULL);
    tf_proc_result r;
    CHECK_RC(tf_proc_run(&t, &s, &r), TF_OK);
    CHECK_EQ_I(r.exitval, 0);
    file_is(out, "ran\n");
    tf_proc_table_destroy(&t);
}

/* Another shell, when there is one. */
static void test_shell_override(void)
{
    if (access("/bin/bash", X_OK)) {
        printf("\n    [info] no /bin/bash, skipped ");
        return;
    }
    tf_proc_table t;
    CHECK_RC(tf_proc_table_init(&t), TF_OK);
    char out[PATH_MAX];
    tf_proc_spec s =
        spec_of("echo ${BASH_VERSION:+bash} $0", tpath(out, "bash.out"), NULL);
    s.shell = "/bin/bash";
    tf_proc_result r;
    CHECK_RC(tf_proc_run(&t, &s, &r), TF_OK);
    CHECK_EQ_I(r.exitval, 0);
    file_is(out, "bash /bin/bash\n");
    tf_proc_table_destroy(&t);
}

/* ------------------------------------------------------------------------ */
/* Output capture, stdin */

static void test_capture(void)
{
    tf_proc_table t;
    CHECK_RC(tf_proc_table_init(&t), TF_OK);
    char out[PATH_MAX], err[PATH_MAX];
    tf_proc_spec s = spec_of("echo out; echo err >&2; echo more",
                             tpath(out, "cap.out"), tpath(err, "cap.err"));
    tf_proc_result r;
    CHECK_RC(tf_proc_run(&t, &s, &r), TF_OK);
    CHECK_EQ_I(r.exitval, 0);
    file_is(out, "out\nmore\n");
    file_is(err, "err\n");
    struct stat st;
    CHECK_TRUE(stat(out, &st) == 0 &&
               (st.st_mode & 0777) == (0644 & ~(mode_t)022));

    /* A rerun truncates. */
    s.cmd = "echo 2";
    CHECK_RC(tf_proc_run(&t, &s, &r), TF_OK);
    file_is(out, "2\n");
    file_is(err, "");
    tf_proc_table_destroy(&t);
}

static void test_capture_binary_and_large(void)
{
    tf_proc_table t;
    CHECK_RC(tf_proc_table_init(&t), TF_OK);
    char out[PATH_MAX];
    tf_proc_spec s = spec_of("printf '\\0\\1\\2'", tpath(out, "bin.out"), NULL);
    tf_proc_result r;
    CHECK_RC(tf_proc_run(&t, &s, &r), TF_OK);
    CHECK_EQ_I(r.exitval, 0);
    size_t len = 0;
    char *b = slurp(out, &len);
    CHECK_TRUE(b != NULL);
    CHECK_EQ_I(len, 3);
    if (b && len == 3)
        CHECK_TRUE(b[0] == 0 && b[1] == 1 && b[2] == 2);
    free(b);

    /* One line of 1 MiB, then its newline. */
    s.cmd = "head -c 1048576 /dev/zero | tr '\\0' x; echo";
    CHECK_RC(tf_proc_run(&t, &s, &r), TF_OK);
    CHECK_EQ_I(r.exitval, 0);
    b = slurp(out, &len);
    CHECK_TRUE(b != NULL);
    CHECK_EQ_I(len, 1048577);
    if (b && len == 1048577) {
        size_t bad = 0;
        for (size_t i = 0; i < 1048576; i++)
            bad += b[i] != 'x';
        CHECK_EQ_I(bad, 0);
        CHECK_EQ_I(b[1048576], '\n');
    }
    free(b);
    tf_proc_table_destroy(&t);
}

/* The same path for both streams: one open file, nothing overwritten. */
static void test_capture_shared_file(void)
{
    tf_proc_table t;
    CHECK_RC(tf_proc_table_init(&t), TF_OK);
    char out[PATH_MAX];
    tpath(out, "both.log");
    tf_proc_spec s = spec_of("echo a; echo bb >&2; echo ccc", out, out);
    tf_proc_result r;
    CHECK_RC(tf_proc_run(&t, &s, &r), TF_OK);
    CHECK_EQ_I(r.exitval, 0);
    file_is(out, "a\nbb\nccc\n");
    tf_proc_table_destroy(&t);
}

/*
 * A symbolic link planted where an output file goes (OUTDIR/out/ID.out,
 * in a directory others may write to) is not followed: the file it points
 * at, outside the output directory, keeps its bytes, and the task is not
 * started, with the reason. The open once followed it and truncated the
 * target.
 */
static void test_output_symlink_not_followed(void)
{
    tf_proc_table t;
    CHECK_RC(tf_proc_table_init(&t), TF_OK);
    char victim[PATH_MAX], link[PATH_MAX], err[PATH_MAX];
    FILE *f = fopen(tpath(victim, "victim.txt"), "w");
    CHECK_TRUE(f != NULL);
    if (f) {
        fputs("precious\n", f);
        fclose(f);
    }
    CHECK_EQ_I(symlink(victim, tpath(link, "planted.out")), 0);
    tf_proc_spec s = spec_of("echo overwritten", link, NULL);
    tf_proc_result r;
    CHECK_RC(tf_proc_run(&t, &s, &r), TF_OK);
    file_is(victim, "precious\n");
    CHECK_EQ_I(r.spawn_errno, ELOOP);
    CHECK_EQ_I(r.exitval, 127);
    CHECK_EQ_I(r.pid, 0);
    check_(strstr(r.spawn_error, "planted.out") &&
               strstr(r.spawn_error, "symbolic link"),
           __FILE__, __LINE__, "reason: '%s'", r.spawn_error);

    /* The same for the stderr file, and for one path shared by both. */
    s.out_path = NULL;
    s.err_path = link;
    CHECK_RC(tf_proc_run(&t, &s, &r), TF_OK);
    CHECK_EQ_I(r.spawn_errno, ELOOP);
    check_(strstr(r.spawn_error, "stderr") != NULL, __FILE__, __LINE__,
           "reason: '%s'", r.spawn_error);
    s.cmd = "echo overwritten >&2";
    s.out_path = link;
    CHECK_RC(tf_proc_run(&t, &s, &r), TF_OK);
    CHECK_EQ_I(r.spawn_errno, ELOOP);
    file_is(victim, "precious\n");

    /* A regular file there is still truncated and written. */
    s.cmd = "echo out; echo err >&2";
    s.out_path = tpath(link, "plain.out");
    s.err_path = tpath(err, "plain.err");
    CHECK_RC(tf_proc_run(&t, &s, &r), TF_OK);
    CHECK_EQ_I(r.spawn_errno, 0);
    CHECK_EQ_I(r.spawn_error[0], '\0');
    file_is(link, "out\n");
    file_is(err, "err\n");
    tf_proc_table_destroy(&t);
}

/* No output paths: /dev/null, and writes succeed. */
static void test_null_outputs(void)
{
    tf_proc_table t;
    CHECK_RC(tf_proc_table_init(&t), TF_OK);
    tf_proc_result r;
    CHECK_RC(run_simple(&t, "echo x && echo y >&2", &r), TF_OK);
    CHECK_EQ_I(r.exitval, 0);
    tf_proc_table_destroy(&t);
}

static void test_stdin_is_dev_null(void)
{
    tf_proc_table t;
    CHECK_RC(tf_proc_table_init(&t), TF_OK);
    char out[PATH_MAX];
    tf_proc_spec s = spec_of("cat; echo done", tpath(out, "stdin.out"), NULL);
    s.timeout_ms = 20000; /* a hang fails instead of waiting for the watchdog */
    tf_proc_result r;
    double t0 = now_s();
    CHECK_RC(tf_proc_run(&t, &s, &r), TF_OK);
    double secs = now_s() - t0;
    CHECK_EQ_I(r.exitval, 0);
    CHECK_TRUE(!r.timed_out);
    CHECK_SECS(secs, 0.0, 5.0);
    file_is(out, "done\n");
    tf_proc_table_destroy(&t);
}

/* ------------------------------------------------------------------------ */
/* Environment */

static void test_env_reaches_child(void)
{
    char b0[] = "PATH=/usr/bin:/bin", b1[] = "TF_T_BASE=old",
         b2[] = "TF_T_GONE=1", b3[] = "OMPI_T_RANK=5", b4[] = "PMIX_T_X=1";
    char *base[] = {b0, b1, b2, b3, b4, NULL};
    tf_envbuf e;
    CHECK_RC(tf_env_init(&e, base), TF_OK);
    CHECK_RC(tf_env_set(&e, "TASKFARM_TASK_ID", "xyz"), TF_OK);
    CHECK_RC(tf_env_set(&e, "TF_T_BASE", "new value"), TF_OK);
    CHECK_RC(tf_env_unset(&e, "TF_T_GONE"), TF_OK);
    CHECK_RC(tf_env_unset_prefix(&e, "OMPI_"), TF_OK);
    CHECK_RC(tf_env_unset_prefix(&e, "PMIX_"), TF_OK);

    tf_proc_table t;
    CHECK_RC(tf_proc_table_init(&t), TF_OK);
    char out[PATH_MAX];
    tf_proc_spec s = spec_of("echo \"$TASKFARM_TASK_ID|$TF_T_BASE|"
                             "${TF_T_GONE-unset}|${OMPI_T_RANK-unset}|"
                             "${PMIX_T_X-unset}\"",
                             tpath(out, "env.out"), NULL);
    s.envp = tf_env_get(&e);
    tf_proc_result r;
    CHECK_RC(tf_proc_run(&t, &s, &r), TF_OK);
    CHECK_EQ_I(r.exitval, 0);
    file_is(out, "xyz|new value|unset|unset|unset\n");

    /* Only the environment given: nothing of this process's leaks in. */
    s.cmd = "env | grep -v '^PWD=' | sort";
    CHECK_RC(tf_proc_run(&t, &s, &r), TF_OK);
    file_is(out, "PATH=/usr/bin:/bin\nTASKFARM_TASK_ID=xyz\n"
                 "TF_T_BASE=new value\n");
    tf_proc_table_destroy(&t);
    tf_env_free(&e);
}

/* Count entries and find one in an envp. */
static size_t env_count(char *const *v)
{
    size_t n = 0;
    while (v[n])
        n++;
    return n;
}

static const char *env_find(char *const *v, const char *key)
{
    size_t k = strlen(key);
    for (; *v; v++)
        if (!strncmp(*v, key, k) && (*v)[k] == '=')
            return *v + k + 1;
    return NULL;
}

static void test_envbuf(void)
{
    char b0[] = "A=1", b1[] = "B=2", b2[] = "AB=3", b3[] = "C", b4[] = "D=4=x";
    char *base[] = {b0, b1, b2, b3, b4, NULL};
    tf_envbuf e;
    CHECK_RC(tf_env_init(&e, base), TF_OK);
    /* Unchanged: the base itself, no copy. */
    CHECK_TRUE(tf_env_get(&e) == base);

    CHECK_RC(tf_env_set(&e, "B", "20"), TF_OK);
    CHECK_RC(tf_env_set(&e, "E", ""), TF_OK);
    char *const *v = tf_env_get(&e);
    CHECK_EQ_I(env_count(v), 6);
    CHECK_STR(v[0], "A=1");
    CHECK_STR(v[1], "AB=3");
    CHECK_STR(v[2], "C");
    CHECK_STR(v[3], "D=4=x");
    CHECK_STR(v[4], "B=20");
    CHECK_STR(v[5], "E=");

    /* Setting again replaces, in place. */
    CHECK_RC(tf_env_set(&e, "B", "21"), TF_OK);
    v = tf_env_get(&e);
    CHECK_EQ_I(env_count(v), 6);
    CHECK_STR(v[4], "B=21");

    /* Unset of a set and of a base variable; then set again. */
    CHECK_RC(tf_env_unset(&e, "E"), TF_OK);
    CHECK_RC(tf_env_unset(&e, "A"), TF_OK);
    v = tf_env_get(&e);
    CHECK_EQ_I(env_count(v), 4);
    CHECK_TRUE(env_find(v, "A") == NULL && env_find(v, "E") == NULL);
    CHECK_TRUE(env_find(v, "AB") != NULL);
    CHECK_RC(tf_env_set(&e, "A", "9"), TF_OK);
    v = tf_env_get(&e);
    CHECK_TRUE(env_find(v, "A") && !strcmp(env_find(v, "A"), "9"));
    CHECK_TRUE(env_find(v, "AB") && !strcmp(env_find(v, "AB"), "3"));

    /* A prefix removes base entries only ("A" set above stays). */
    CHECK_RC(tf_env_unset_prefix(&e, "A"), TF_OK);
    v = tf_env_get(&e);
    CHECK_TRUE(env_find(v, "AB") == NULL);
    CHECK_TRUE(env_find(v, "A") && !strcmp(env_find(v, "A"), "9"));

    /* Bad names and values change nothing. */
    size_t before = env_count(tf_env_get(&e));
    CHECK_RC(tf_env_set(&e, "", "x"), TF_EINVAL);
    CHECK_RC(tf_env_set(&e, "X=Y", "x"), TF_EINVAL);
    CHECK_RC(tf_env_set(&e, NULL, "x"), TF_EINVAL);
    CHECK_RC(tf_env_set(&e, "X", NULL), TF_EINVAL);
    CHECK_RC(tf_env_unset(&e, ""), TF_EINVAL);
    CHECK_RC(tf_env_unset_prefix(&e, ""), TF_EINVAL);
    CHECK_RC(tf_env_init(NULL, base), TF_EINVAL);
    CHECK_EQ_I(env_count(tf_env_get(&e)), before);

    /* Clear returns to the base; memory is kept and reused. */
    tf_env_clear(&e);
    CHECK_TRUE(tf_env_get(&e) == base);
    char *str = e.str;
    CHECK_RC(tf_env_set(&e, "TASKFARM_TASK_ID", "7"), TF_OK);
    CHECK_TRUE(e.str == str);
    CHECK_EQ_I(env_count(tf_env_get(&e)), 6);
    tf_env_free(&e);

    /* No base: empty, then just what is set; many sets grow the buffers. */
    CHECK_RC(tf_env_init(&e, NULL), TF_OK);
    CHECK_TRUE(tf_env_get(&e) != NULL && tf_env_get(&e)[0] == NULL);
    char key[32], val[64];
    for (int i = 0; i < 1000; i++) {
        snprintf(key, sizeof key, "K%d", i % 300);
        snprintf(val, sizeof val, "value-%d", i);
        if (!CHECK_RC(tf_env_set(&e, key, val), TF_OK))
            break;
    }
    v = tf_env_get(&e);
    CHECK_EQ_I(env_count(v), 300);
    CHECK_TRUE(env_find(v, "K299") &&
               !strcmp(env_find(v, "K299"), "value-899"));
    CHECK_TRUE(env_find(v, "K0") && !strcmp(env_find(v, "K0"), "value-900"));
    tf_env_free(&e);
}

/* ------------------------------------------------------------------------ */
/* Timeouts */

static void test_timeout(void)
{
    tf_proc_table t;
    CHECK_RC(tf_proc_table_init(&t), TF_OK);
    tf_proc_spec s = spec_of("sleep 100", NULL, NULL);
    s.timeout_ms = 300;
    s.grace_ms = 5000;
    tf_proc_result r;
    double t0 = now_s();
    CHECK_RC(tf_proc_run(&t, &s, &r), TF_OK);
    double secs = now_s() - t0;
    CHECK_TRUE(r.timed_out);
    CHECK_TRUE(!r.halted);
    CHECK_EQ_I(r.signal, SIGTERM);
    CHECK_EQ_I(r.exitval, -1);
    CHECK_SECS(secs, 0.29, 3.0);
    CHECK_SECS((double)(r.end_ns - r.start_ns) * 1e-9, 0.29, 3.0);
    sleep_ms(50);
    CHECK_EQ_I(live_in_group(r.pid), 0);
    tf_proc_table_destroy(&t);
}

/* A command that ignores SIGTERM gets SIGKILL after the grace. */
static void test_timeout_ignoring_term(void)
{
    tf_proc_table t;
    CHECK_RC(tf_proc_table_init(&t), TF_OK);
    tf_proc_spec s = spec_of("trap '' TERM; sleep 100", NULL, NULL);
    s.timeout_ms = 200;
    s.grace_ms = 300;
    tf_proc_result r;
    double t0 = now_s();
    CHECK_RC(tf_proc_run(&t, &s, &r), TF_OK);
    double secs = now_s() - t0;
    CHECK_TRUE(r.timed_out);
    CHECK_EQ_I(r.signal, SIGKILL);
    CHECK_SECS(secs, 0.49, 4.0);
    sleep_ms(50);
    CHECK_EQ_I(live_in_group(r.pid), 0);
    tf_proc_table_destroy(&t);
}

/*
 * Grandchildren: plain ones die of the group's SIGTERM; ones that ignore
 * SIGTERM while the leader does not must be SIGKILLed when the leader
 * exits, long before the grace would end.
 */
static void test_timeout_grandchildren(void)
{
    static const char *cmds[] = {
        "sleep 100 & sleep 100 & wait",
        "trap '' TERM; sleep 100 & sleep 100 & trap - TERM; wait",
    };
    tf_proc_table t;
    CHECK_RC(tf_proc_table_init(&t), TF_OK);
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        tf_proc_spec s = spec_of(cmds[i], NULL, NULL);
        s.timeout_ms = 300;
        s.grace_ms = 20000;
        tf_proc_result r;
        double t0 = now_s();
        CHECK_RC(tf_proc_run(&t, &s, &r), TF_OK);
        double secs = now_s() - t0;
        CHECK_TRUE(r.timed_out);
        CHECK_EQ_I(r.signal, SIGTERM);
        CHECK_SECS(secs, 0.29, 5.0);
        /* Nothing alive at once; the zombies gone once init reaps them. */
        sleep_ms(100);
        check_(live_in_group(r.pid) == 0, __FILE__, __LINE__,
               "command %zu: %d live processes left in group %d", i,
               live_in_group(r.pid), (int)r.pid);
        check_(group_gone_within(r.pid, 10.0), __FILE__, __LINE__,
               "command %zu: kill(-%d, 0) still succeeds after 10 s", i,
               (int)r.pid);
    }
    tf_proc_table_destroy(&t);
}

/* After a normal exit the group is left alone (a documented choice). */
static void test_normal_exit_leaves_group(void)
{
    tf_proc_table t;
    CHECK_RC(tf_proc_table_init(&t), TF_OK);
    tf_proc_result r;
    CHECK_RC(run_simple(&t, "sleep 100 & exit 0", &r), TF_OK);
    CHECK_EQ_I(r.exitval, 0);
    /*
     * The shell forked the sleep before it exited, so the sleep is in the
     * group by now: no late fork can escape the cleanup below.
     */
    CHECK_TRUE(r.pid > 0);
    if (r.pid > 0) {
        CHECK_EQ_I(kill(-r.pid, 0), 0);
        CHECK_EQ_I(live_in_group(r.pid), 1);
        /* This test left the sleep alive on purpose: end it, and make sure. */
        check_(kill_group_and_wait(r.pid, 10.0), __FILE__, __LINE__,
               "group %d: still %d live processes 10 s after SIGKILL",
               (int)r.pid, live_in_group(r.pid));
    }
    tf_proc_table_destroy(&t);
}

/* ------------------------------------------------------------------------ */
/* kill_all */

static void test_kill_all(void)
{
    enum { N = 3 };
    tf_proc_table t;
    CHECK_RC(tf_proc_table_init(&t), TF_OK);
    job jobs[N];
    for (int i = 0; i < N; i++) {
        jobs[i].t = &t;
        jobs[i].spec = spec_of("sleep 100", NULL, NULL);
        jobs[i].rc = 99;
        pthread_create(&jobs[i].th, NULL, job_main, &jobs[i]);
    }
    CHECK_TRUE(running_within(&t, N, 10.0));
    double t0 = now_s();
    tf_proc_kill_all(&t, 5000);
    double secs = now_s() - t0;
    /* The sleeps die of SIGTERM: kill_all returns without the grace. */
    CHECK_SECS(secs, 0.0, 3.0);
    for (int i = 0; i < N; i++) {
        pthread_join(jobs[i].th, NULL);
        CHECK_RC(jobs[i].rc, TF_OK);
        CHECK_TRUE(jobs[i].res.halted);
        CHECK_TRUE(!jobs[i].res.timed_out);
        CHECK_EQ_I(jobs[i].res.signal, SIGTERM);
        CHECK_TRUE(jobs[i].res.pid > 0);
    }
    CHECK_EQ_I(tf_proc_table_running(&t), 0);
    CHECK_TRUE(tf_proc_table_is_halted(&t));

    /* Later runs do not spawn: the output file is never created. */
    char out[PATH_MAX];
    tf_proc_spec s = spec_of("echo ran", tpath(out, "halted.out"), NULL);
    tf_proc_result r;
    CHECK_RC(tf_proc_run(&t, &s, &r), TF_OK);
    CHECK_TRUE(r.halted);
    CHECK_EQ_I(r.pid, 0);
    CHECK_EQ_I(r.exitval, -1);
    CHECK_EQ_I(r.spawn_errno, 0);
    CHECK_TRUE(access(out, F_OK) == -1 && errno == ENOENT);

    /* After a reset, commands run again. */
    tf_proc_table_reset(&t);
    CHECK_TRUE(!tf_proc_table_is_halted(&t));
    CHECK_RC(tf_proc_run(&t, &s, &r), TF_OK);
    CHECK_TRUE(!r.halted);
    CHECK_EQ_I(r.exitval, 0);
    file_is(out, "ran\n");
    tf_proc_table_destroy(&t);
}

/*
 * Detach, then adopt or drop (a worker whose scheduler was lost, and its
 * successor): the waits return at once with the commands still running;
 * an adopted command reports its own exit, its start and its timeout as if
 * never detached; a dropped one is ended and reaped; both wait paths.
 */
static void test_detach_adopt(void)
{
    enum { N = 3 };
    static const char *cmds[N] = {"sleep 0.6; exit 7", "sleep 100",
                                  "sleep 100"};
    for (int fallback = 0; fallback < 2; fallback++) {
        tf_proc_table t;
        CHECK_RC(tf_proc_table_init(&t), TF_OK);
        t.use_pidfd = !fallback;
        job jobs[N];
        for (int i = 0; i < N; i++) {
            jobs[i].t = &t;
            jobs[i].spec = spec_of(cmds[i], NULL, NULL);
            jobs[i].spec.timeout_ms = i == 2 ? 1500 : 0;
            jobs[i].spec.grace_ms = 100;
            jobs[i].rc = 99;
            pthread_create(&jobs[i].th, NULL, job_main, &jobs[i]);
        }
        CHECK_TRUE(running_within(&t, N, 10.0));
        double t0 = now_s();
        tf_proc_detach_all(&t);
        for (int i = 0; i < N; i++)
            pthread_join(jobs[i].th, NULL);
        /* Returned at once (the sleeps run on), nothing reaped or ended. */
        CHECK_SECS(now_s() - t0, 0.0, 0.4);
        CHECK_EQ_I(tf_proc_table_running(&t), N);
        for (int i = 0; i < N; i++) {
            CHECK_RC(jobs[i].rc, TF_OK);
            CHECK_TRUE(jobs[i].res.detached);
            CHECK_EQ_I(jobs[i].res.held.pid, jobs[i].res.pid);
            CHECK_TRUE(kill(jobs[i].res.pid, 0) == 0);
        }
        /* Still detaching: an adopt returns at once too. */
        tf_proc_result r;
        CHECK_RC(tf_proc_adopt(&t, &jobs[0].res.held, NULL, &r), TF_OK);
        CHECK_TRUE(r.detached);
        tf_proc_table_reset(&t);

        /* Adopted: its own exit status, its first start. */
        CHECK_RC(tf_proc_adopt(&t, &jobs[0].res.held, NULL, &r), TF_OK);
        CHECK_TRUE(!r.detached && !r.timed_out && !r.halted);
        CHECK_EQ_I(r.exitval, 7);
        CHECK_TRUE(r.start_ns == jobs[0].res.start_ns);
        CHECK_TRUE(r.end_ns - r.start_ns >= 550000000u);
        /* Its timeout (1.5 s from its start) still holds. */
        CHECK_RC(tf_proc_adopt(&t, &jobs[2].res.held, NULL, &r), TF_OK);
        CHECK_TRUE(r.timed_out);
        CHECK_EQ_I(r.signal, SIGTERM);
        CHECK_SECS((r.end_ns - r.start_ns) / 1e9, 1.4, 10.0);
        /* Nobody adopts the last: dropped, ended at once. */
        t0 = now_s();
        pid_t pid = jobs[1].res.held.pid;
        tf_proc_drop(&t, &jobs[1].res.held);
        CHECK_SECS(now_s() - t0, 0.0, 3.0);
        CHECK_TRUE(kill(pid, 0) == -1 && errno == ESRCH);
        CHECK_EQ_I(tf_proc_table_running(&t), 0);
        /* And commands run to their end again. */
        CHECK_RC(run_simple(&t, "exit 4", &r), TF_OK);
        CHECK_EQ_I(r.exitval, 4);
        CHECK_TRUE(!r.detached);
        tf_proc_table_destroy(&t);
    }
}

/*
 * Commands that ignore SIGTERM get SIGKILL after the grace; grandchildren
 * that ignore it die when their leader does.
 */
static void test_kill_all_grace(void)
{
    enum { N = 3 };
    static const char *cmds[N] = {
        "trap '' TERM; sleep 100",
        "trap '' TERM; sleep 100",
        "trap '' TERM; sleep 100 & trap - TERM; wait",
    };
    tf_proc_table t;
    CHECK_RC(tf_proc_table_init(&t), TF_OK);
    job jobs[N];
    for (int i = 0; i < N; i++) {
        jobs[i].t = &t;
        jobs[i].spec = spec_of(cmds[i], NULL, NULL);
        jobs[i].rc = 99;
        pthread_create(&jobs[i].th, NULL, job_main, &jobs[i]);
    }
    CHECK_TRUE(running_within(&t, N, 10.0));
    /* Let the shells install their traps before they are signalled. */
    sleep_ms(300);
    double t0 = now_s();
    tf_proc_kill_all(&t, 400);
    double secs = now_s() - t0;
    CHECK_SECS(secs, 0.39, 3.0);
    int expect[N] = {SIGKILL, SIGKILL, SIGTERM};
    for (int i = 0; i < N; i++) {
        pthread_join(jobs[i].th, NULL);
        CHECK_RC(jobs[i].rc, TF_OK);
        CHECK_TRUE(jobs[i].res.halted);
        CHECK_EQ_I(jobs[i].res.signal, expect[i]);
        sleep_ms(50);
        check_(live_in_group(jobs[i].res.pid) == 0, __FILE__, __LINE__,
               "command %d: %d live processes left in group %d", i,
               live_in_group(jobs[i].res.pid), (int)jobs[i].res.pid);
    }
    tf_proc_table_destroy(&t);
}

/*
 * Halts at random moments while threads keep starting commands that only a
 * halt ends: a spawn that slipped past a halt would block its thread for
 * 100 s and trip the watchdog.
 */
static void test_kill_all_race(void)
{
    enum { N = 4, ROUNDS = 30 };
    tf_proc_table t;
    CHECK_RC(tf_proc_table_init(&t), TF_OK);
    uint64_t rng = 0x9E3779B97F4A7C15u;
    unsigned never_started = 0, killed = 0, at_registration = 0;
    for (int round = 0; round < ROUNDS; round++) {
        job jobs[N];
        for (int i = 0; i < N; i++) {
            jobs[i].t = &t;
            jobs[i].spec = spec_of("sleep 100", NULL, NULL);
            pthread_create(&jobs[i].th, NULL, job_main, &jobs[i]);
        }
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        /* Up to about two spawns' time, to land inside some of them. */
        struct timespec pause = {0, (long)(rng % 4000) * 1000L};
        nanosleep(&pause, NULL);
        tf_proc_kill_all(&t, 200);
        for (int i = 0; i < N; i++) {
            pthread_join(jobs[i].th, NULL);
            CHECK_RC(jobs[i].rc, TF_OK);
            CHECK_TRUE(jobs[i].res.halted);
            /*
             * sleep dies of the SIGTERM of kill_all; a SIGKILL can only come
             * from a run that registered its child after the halt.
             */
            if (!jobs[i].res.pid)
                never_started++;
            else if (jobs[i].res.signal == SIGKILL)
                at_registration++;
            else
                killed++;
        }
        CHECK_EQ_I(tf_proc_table_running(&t), 0);
        tf_proc_table_reset(&t);
    }
    printf("\n    [info] %d halts: %u runs killed while running, %u killed "
           "at registration, %u never started ",
           ROUNDS, killed, at_registration, never_started);
    tf_proc_table_destroy(&t);
}

/* ------------------------------------------------------------------------ */
/* Spawn failures and bad arguments */

static void test_spawn_failure(void)
{
    tf_proc_table t;
    CHECK_RC(tf_proc_table_init(&t), TF_OK);
    tf_proc_spec s = spec_of("echo hi", NULL, NULL);
    tf_proc_result r;

    s.shell = "/nonexistent";
    CHECK_RC(tf_proc_run(&t, &s, &r), TF_OK);
    CHECK_EQ_I(r.spawn_errno, ENOENT);
    CHECK_EQ_I(r.exitval, 127);
    CHECK_EQ_I(r.signal, 0);
    CHECK_EQ_I(r.pid, 0);
    CHECK_TRUE(!r.halted && !r.timed_out);
    /* The reason, for people: what could not be started, and why. */
    CHECK_STR(r.spawn_error,
              "cannot run the shell /nonexistent: No such file or directory");

    /* A shell that is not executable. */
    char sh[PATH_MAX];
    int fd = open(tpath(sh, "not-a-shell"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    CHECK_TRUE(fd >= 0);
    if (fd >= 0)
        close(fd);
    s.shell = sh;
    CHECK_RC(tf_proc_run(&t, &s, &r), TF_OK);
    CHECK_EQ_I(r.spawn_errno, EACCES);
    CHECK_EQ_I(r.exitval, 127);
    check_(strstr(r.spawn_error, "cannot run the shell ") &&
               strstr(r.spawn_error, "not-a-shell: Permission denied"),
           __FILE__, __LINE__, "reason: '%s'", r.spawn_error);

    /* An output file that cannot be created. */
    char out[PATH_MAX];
    s.shell = NULL;
    s.out_path = tpath(out, "no/such/dir/x.out");
    CHECK_RC(tf_proc_run(&t, &s, &r), TF_OK);
    CHECK_EQ_I(r.spawn_errno, ENOENT);
    CHECK_EQ_I(r.exitval, 127);
    char want[PATH_MAX + 100];
    snprintf(want, sizeof want,
             "cannot open the stdout file %s: No such file or directory", out);
    CHECK_STR(r.spawn_error, want);

    /* A path too long to show whole keeps its end, where the file is. */
    char longp[PATH_MAX];
    int k = snprintf(longp, sizeof longp, "%s/", tmpdir);
    for (; k < 1000; k++)
        longp[k] = 'd';
    snprintf(longp + k, sizeof longp - (size_t)k, "/task-7.out");
    s.out_path = longp;
    CHECK_RC(tf_proc_run(&t, &s, &r), TF_OK);
    check_(strlen(r.spawn_error) < sizeof r.spawn_error &&
               strstr(r.spawn_error, "cannot open the stdout file ...") &&
               strstr(r.spawn_error, "dd/task-7.out: "),
           __FILE__, __LINE__, "reason: '%s'", r.spawn_error);

    /* Nothing is left registered or unreaped. */
    CHECK_EQ_I(tf_proc_table_running(&t), 0);
    errno = 0;
    CHECK_EQ_I(waitpid(-1, NULL, WNOHANG), -1);
    CHECK_EQ_I(errno, ECHILD);
    tf_proc_table_destroy(&t);
}

static void test_bad_arguments(void)
{
    tf_proc_table t;
    CHECK_RC(tf_proc_table_init(&t), TF_OK);
    tf_proc_spec s = spec_of("exit 0", NULL, NULL);
    tf_proc_result r, orig;
    memset(&orig, 0xAB, sizeof orig);
    r = orig;
    CHECK_RC(tf_proc_run(NULL, &s, &r), TF_EINVAL);
    CHECK_RC(tf_proc_run(&t, NULL, &r), TF_EINVAL);
    CHECK_RC(tf_proc_run(&t, &s, NULL), TF_EINVAL);
    s.cmd = NULL;
    CHECK_RC(tf_proc_run(&t, &s, &r), TF_EINVAL);
    s.cmd = "exit 0";
    s.envp = NULL;
    CHECK_RC(tf_proc_run(&t, &s, &r), TF_EINVAL);
    CHECK_TRUE(!memcmp(&r, &orig, sizeof r));
    CHECK_RC(tf_proc_table_init(NULL), TF_EINVAL);
    tf_proc_table_destroy(&t);
}

/*
 * A process that ignores SIGCHLD loses its children at exit: the status is
 * gone, which is reported, and nothing hangs or stays registered.
 */
static void test_sigchld_ignored(void)
{
    for (int fallback = 0; fallback < 2; fallback++) {
        tf_proc_table t;
        CHECK_RC(tf_proc_table_init(&t), TF_OK);
        t.use_pidfd = !fallback;
        struct sigaction ign = {.sa_handler = SIG_IGN}, old;
        sigaction(SIGCHLD, &ign, &old);
        tf_proc_result r, orig;
        memset(&orig, 0xAB, sizeof orig);
        r = orig;
        CHECK_RC(run_simple(&t, "exit 0", &r), TF_ESTATE);
        tf_proc_spec s = spec_of("sleep 100", NULL, NULL);
        s.timeout_ms = 200;
        s.grace_ms = 1000;
        double t0 = now_s();
        CHECK_RC(tf_proc_run(&t, &s, &r), TF_ESTATE);
        CHECK_SECS(now_s() - t0, 0.19, 5.0);
        CHECK_TRUE(!memcmp(&r, &orig, sizeof r));
        CHECK_EQ_I(tf_proc_table_running(&t), 0);
        sigaction(SIGCHLD, &old, NULL);
        tf_proc_table_destroy(&t);
    }
}

/* ------------------------------------------------------------------------ */
/* Waiting */

/* A waiting thread sleeps: pidfd, and the polling fallback. */
static void test_wait_uses_no_cpu(void)
{
    for (int fallback = 0; fallback < 2; fallback++) {
        tf_proc_table t;
        CHECK_RC(tf_proc_table_init(&t), TF_OK);
        t.use_pidfd = !fallback;
        tf_proc_result r;
        double c0 = thread_cpu_s(), t0 = now_s();
        CHECK_RC(run_simple(&t, "sleep 1", &r), TF_OK);
        double cpu = thread_cpu_s() - c0, secs = now_s() - t0;
        CHECK_EQ_I(r.exitval, 0);
        CHECK_SECS(secs, 0.99, 5.0);
        check_(cpu < 0.05, __FILE__, __LINE__,
               "%s: the waiting thread used %.3f s of CPU in %.3f s",
               fallback ? "fallback" : "pidfd", cpu, secs);
        tf_proc_table_destroy(&t);
    }
}

/* The polling fallback gives the same results. */
static void test_fallback_wait(void)
{
    tf_proc_table t;
    CHECK_RC(tf_proc_table_init(&t), TF_OK);
    t.use_pidfd = false;
    tf_proc_result r;
    CHECK_RC(run_simple(&t, "exit 3", &r), TF_OK);
    CHECK_EQ_I(r.exitval, 3);
    CHECK_RC(run_simple(&t, "kill -9 $$", &r), TF_OK);
    CHECK_EQ_I(r.signal, SIGKILL);

    tf_proc_spec s =
        spec_of("trap '' TERM; sleep 100 & trap - TERM; wait", NULL, NULL);
    s.timeout_ms = 300;
    s.grace_ms = 20000;
    double t0 = now_s();
    CHECK_RC(tf_proc_run(&t, &s, &r), TF_OK);
    CHECK_SECS(now_s() - t0, 0.29, 5.0);
    CHECK_TRUE(r.timed_out);
    CHECK_EQ_I(r.signal, SIGTERM);
    sleep_ms(50);
    CHECK_EQ_I(live_in_group(r.pid), 0);

    s.cmd = "trap '' TERM; sleep 100";
    s.grace_ms = 200;
    CHECK_RC(tf_proc_run(&t, &s, &r), TF_OK);
    CHECK_TRUE(r.timed_out);
    CHECK_EQ_I(r.signal, SIGKILL);
    tf_proc_table_destroy(&t);
}

/* Many threads at once, each with its own environment and output file. */
typedef struct worker {
    tf_proc_table *t;
    int id;
    int failures;
    pthread_t th;
} worker;

static void *worker_main(void *arg)
{
    worker *w = arg;
    tf_envbuf e;
    char out[PATH_MAX], name[64], id[32], want[64];
    snprintf(name, sizeof name, "worker%d.out", w->id);
    tpath(out, name);
    if (tf_env_init(&e, environ)) {
        w->failures++;
        return NULL;
    }
    for (int i = 0; i < 20; i++) {
        tf_env_clear(&e);
        snprintf(id, sizeof id, "%d.%d", w->id, i);
        if (tf_env_set(&e, "TASKFARM_TASK_ID", id)) {
            w->failures++;
            break;
        }
        tf_proc_spec s = spec_of(
            "echo $TASKFARM_TASK_ID; exit $((${TASKFARM_TASK_ID#*.} + 1))", out,
            NULL);
        s.envp = tf_env_get(&e);
        tf_proc_result r;
        if (tf_proc_run(w->t, &s, &r) || r.exitval != i + 1)
            w->failures++;
        snprintf(want, sizeof want, "%s\n", id);
        char *got = slurp(out, NULL);
        if (!got || strcmp(got, want))
            w->failures++;
        free(got);
    }
    tf_env_free(&e);
    return NULL;
}

static void test_concurrent_runs(void)
{
    enum { N = 8 };
    tf_proc_table t;
    CHECK_RC(tf_proc_table_init(&t), TF_OK);
    worker w[N];
    for (int i = 0; i < N; i++) {
        w[i].t = &t;
        w[i].id = i;
        w[i].failures = 0;
        pthread_create(&w[i].th, NULL, worker_main, &w[i]);
    }
    for (int i = 0; i < N; i++) {
        pthread_join(w[i].th, NULL);
        CHECK_EQ_I(w[i].failures, 0);
    }
    CHECK_EQ_I(tf_proc_table_running(&t), 0);
    tf_proc_table_destroy(&t);
}

/* The signal state of the caller does not leak into children. */
static void test_child_signal_state(void)
{
    tf_proc_table t;
    CHECK_RC(tf_proc_table_init(&t), TF_OK);
    /* Block SIGTERM in this thread and ignore SIGPIPE in the process. */
    sigset_t term, old;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &term, &old);
    struct sigaction ign = {.sa_handler = SIG_IGN}, oldpipe, oldhup;
    sigaction(SIGPIPE, &ign, &oldpipe);
    sigaction(SIGHUP, &ign, &oldhup);

    char out[PATH_MAX];
    /*
     * SigBlk and SigIgn, in hex, of the spawned process itself, read by
     * itself: the shell execs grep in place (same pid, and exec keeps the
     * mask and the ignored signals), and grep reads /proc/self. Not
     * "grep ... /proc/$$/status": dash (0.5.11 and later) blocks every
     * signal around its vfork of a command and unblocks them only when the
     * vfork returns in the parent, after the child's exec; grep could read
     * the shell's status in that window and see fffffffe7ffbfeff (all but
     * SIGKILL, SIGSTOP and glibc's 32 and 33), a state of the shell, not the
     * mask the child was started with.
     */
    tf_proc_spec s = spec_of("exec grep -E '^Sig(Blk|Ign)' /proc/self/status",
                             tpath(out, "sig.out"), NULL);
    tf_proc_result r;
    CHECK_RC(tf_proc_run(&t, &s, &r), TF_OK);
    CHECK_EQ_I(r.exitval, 0);
    /*
     * Nothing blocked, nothing ignored, except: SIGHUP, which keeps the
     * disposition of this process (ignored under nohup); and glibc's two
     * internal signals (32, 33), which its posix_spawn always leaves ignored
     * and which no program can use.
     */
    char *txt = slurp(out, NULL);
    unsigned long long blk = 1, ignored = 1;
    CHECK_TRUE(txt &&
               sscanf(txt, "SigBlk: %llx SigIgn: %llx", &blk, &ignored) == 2);
    unsigned long long allowed = 1ull << (SIGHUP - 1);
    for (int sig = 32; sig < SIGRTMIN; sig++)
        allowed |= 1ull << (sig - 1);
    check_(blk == 0, __FILE__, __LINE__, "blocked signals in the child: %llx",
           blk);
    check_((ignored & ~allowed) == 0, __FILE__, __LINE__,
           "ignored signals in the child: %llx", ignored);
    /* As under nohup: SIGHUP ignored here, so there. */
    CHECK_TRUE(ignored & (1ull << (SIGHUP - 1)));
    free(txt);

    /* A child timed out while this thread blocks SIGTERM still gets it. */
    s = spec_of("sleep 100", NULL, NULL);
    s.timeout_ms = 200;
    s.grace_ms = 10000;
    CHECK_RC(tf_proc_run(&t, &s, &r), TF_OK);
    CHECK_EQ_I(r.signal, SIGTERM);

    sigaction(SIGHUP, &oldhup, NULL);
    sigaction(SIGPIPE, &oldpipe, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    tf_proc_table_destroy(&t);
}

/*
 * use_fds: the child writes into the caller's descriptors (one shared for
 * both streams, or /dev/null for -1), which stay open and the caller's;
 * descriptors 0 to 2 are refused.
 */
static void test_use_fds(void)
{
    tf_proc_table t;
    CHECK_RC(tf_proc_table_init(&t), TF_OK);
    FILE *f = tmpfile();
    int fd = f ? fcntl(fileno(f), F_DUPFD_CLOEXEC, 10) : -1;
    CHECK_TRUE(fd >= 10);
    tf_proc_spec s = spec_of("echo out; echo err >&2", "named/out", NULL);
    s.use_fds = true;
    s.out_fd = s.err_fd = fd;
    tf_proc_result r;
    CHECK_RC(tf_proc_run(&t, &s, &r), TF_OK);
    CHECK_EQ_I(r.exitval, 0);
    char buf[64] = "";
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    CHECK_EQ_I(n, 8);
    CHECK_TRUE(!strcmp(buf, "out\nerr\n"));
    CHECK_TRUE(fcntl(fd, F_GETFD) >= 0); /* still open */
    s.out_fd = -1; /* stdout to /dev/null, stderr still to fd */
    s.cmd = "echo gone; echo kept >&2";
    CHECK_RC(tf_proc_run(&t, &s, &r), TF_OK);
    memset(buf, 0, sizeof buf);
    n = pread(fd, buf, sizeof buf - 1, 0);
    CHECK_EQ_I(n, 13);
    CHECK_TRUE(!strcmp(buf, "out\nerr\nkept\n"));
    s.out_fd = 1;
    CHECK_RC(tf_proc_run(&t, &s, &r), TF_EINVAL);
    s.out_fd = fd;
    s.err_fd = 2;
    CHECK_RC(tf_proc_run(&t, &s, &r), TF_EINVAL);
    close(fd);
    if (f)
        fclose(f);
    tf_proc_table_destroy(&t);
}

/* A run on its own thread, so that the test can look while it runs. */
typedef struct bg_run {
    tf_proc_table *t;
    const char *cmd;
    tf_proc_result r;
} bg_run;

static void *run_bg(void *arg)
{
    bg_run *b = arg;
    tf_proc_spec s = spec_of(b->cmd, NULL, NULL);
    tf_proc_run(b->t, &s, &b->r);
    return NULL;
}

/*
 * The guard hook: a group's pgid in a slot of guard_slots while it runs,
 * the slot free (0) again once it is reaped, after a normal end and after a
 * timeout; and what a slot costs per task.
 */
static void test_guard_slots(void)
{
    tf_proc_table t;
    CHECK_RC(tf_proc_table_init(&t), TF_OK);
    CHECK_TRUE(t.guard_slots == NULL);
    int32_t slots[4] = {0};
    t.guard_slots = slots;
    t.guard_cap = 4;
    bg_run b = {.t = &t, .cmd = "sleep 0.5"};
    pthread_t th;
    CHECK_EQ_I(pthread_create(&th, NULL, run_bg, &b), 0);
    int32_t seen = 0;
    for (int i = 0; i < 400 && !seen; i++) {
        seen = __atomic_load_n(&slots[0], __ATOMIC_RELAXED);
        if (!seen)
            nanosleep(&(struct timespec){0, 1000000}, NULL);
    }
    pthread_join(th, NULL);
    CHECK_TRUE(seen > 0);
    CHECK_EQ_I(seen, b.r.pid);
    CHECK_EQ_I(slots[0], 0);
    tf_proc_result r1, r3;
    CHECK_RC(run_simple(&t, "exit 3", &r1), TF_OK);
    CHECK_EQ_I(r1.exitval, 3);
    tf_proc_spec s = spec_of("sleep 100", NULL, NULL);
    s.timeout_ms = 100;
    s.grace_ms = 100;
    CHECK_RC(tf_proc_run(&t, &s, &r3), TF_OK);
    CHECK_TRUE(r3.timed_out);
    for (int i = 0; i < 4; i++)
        CHECK_EQ_I(slots[i], 0);

    /* Slots all taken: the task runs unguarded, nothing is overwritten. */
    for (int i = 0; i < 4; i++)
        slots[i] = 1000000 + i;
    CHECK_RC(run_simple(&t, "exit 5", &r1), TF_OK);
    CHECK_EQ_I(r1.exitval, 5);
    for (int i = 0; i < 4; i++)
        CHECK_EQ_I(slots[i], 1000000 + i);
    tf_proc_table_destroy(&t);
}

/* ------------------------------------------------------------------------ */
/* Cost, reported, not asserted */

/*
 * Rounds alternate the methods, so that a machine whose speed drifts (other
 * jobs, CPU frequency) biases none of them.
 */
static void test_spawn_cost(void)
{
    enum { ROUNDS = 5, RUNS = 100, FALLBACK_RUNS = 20 };
    char a0[] = "/bin/sh", a1[] = "-c", a2[] = "true";
    char *const argv[] = {a0, a1, a2, NULL};
    tf_proc_table t, tf;
    CHECK_RC(tf_proc_table_init(&t), TF_OK);
    CHECK_RC(tf_proc_table_init(&tf), TF_OK);
    tf.use_pidfd = false;
    double raw = 0, run = 0, fallback = 0, cpu = 0;
    int bad = 0;
    for (int round = 0; round < ROUNDS; round++) {
        double t0 = now_s();
        for (int i = 0; i < RUNS; i++) {
            pid_t pid;
            int st;
            if (posix_spawn(&pid, "/bin/sh", NULL, NULL, argv, environ) ||
                waitpid(pid, &st, 0) != pid || st)
                bad++;
        }
        raw += now_s() - t0;
        t0 = now_s();
        double c0 = thread_cpu_s();
        for (int i = 0; i < RUNS; i++) {
            tf_proc_result r;
            if (run_simple(&t, "true", &r) || r.exitval)
                bad++;
        }
        cpu += thread_cpu_s() - c0;
        run += now_s() - t0;
        t0 = now_s();
        for (int i = 0; i < FALLBACK_RUNS; i++) {
            tf_proc_result r;
            if (run_simple(&tf, "true", &r) || r.exitval)
                bad++;
        }
        fallback += now_s() - t0;
    }
    CHECK_EQ_I(bad, 0);
    printf("\n    [info] /bin/sh -c true, sequential, per run: "
           "posix_spawn+waitpid %.0f us (%d runs); tf_proc_run %.0f us "
           "(%d runs, %.0f us of it CPU in this thread); tf_proc_run with "
           "the polling fallback %.0f us (%d runs) ",
           raw / (ROUNDS * RUNS) * 1e6, ROUNDS * RUNS,
           run / (ROUNDS * RUNS) * 1e6, ROUNDS * RUNS,
           cpu / (ROUNDS * RUNS) * 1e6,
           fallback / (ROUNDS * FALLBACK_RUNS) * 1e6, ROUNDS * FALLBACK_RUNS);
    tf_proc_table_destroy(&tf);
    tf_proc_table_destroy(&t);
}

/* Last: every child of this process has been reaped. */
static void test_no_zombies(void)
{
    errno = 0;
    CHECK_EQ_I(waitpid(-1, NULL, WNOHANG), -1);
    CHECK_EQ_I(errno, ECHILD);
}

/*
 * Every process this binary started carries MARK=<our pid> in its
 * environment (set in main, before any test): orphans reparented to init
 * can still be told apart from anyone else's. None may be alive at the end:
 * the tests end what they start, and a process left behind here breaks
 * later suites that check for stray commands (tests/cli/farm.sh).
 */
#define MARK "TF_TEST_PROC_MARK"
static char mark[64];

/* Live (not zombie) processes that carry mark, their pids in pids[0..max). */
static int live_marked(pid_t *pids, int max)
{
    DIR *d = opendir("/proc");
    if (!d)
        return -1;
    int n = 0;
    size_t mlen = strlen(mark);
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] < '0' || de->d_name[0] > '9')
            continue;
        pid_t pid = (pid_t)atol(de->d_name);
        if (pid == getpid())
            continue;
        char p[300], buf[512];
        snprintf(p, sizeof p, "/proc/%s/stat", de->d_name);
        FILE *f = fopen(p, "r");
        if (!f)
            continue;
        size_t got = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[got] = '\0';
        char *rp = strrchr(buf, ')');
        char state;
        if (!rp || sscanf(rp + 1, " %c", &state) != 1 || state == 'Z' ||
            state == 'X')
            continue;
        /* The environment: NUL-separated entries. */
        snprintf(p, sizeof p, "/proc/%s/environ", de->d_name);
        size_t len = 0;
        char *env = slurp(p, &len);
        if (!env)
            continue;
        bool hit = false;
        for (size_t i = 0; i < len && !hit; i += strlen(env + i) + 1)
            hit = !strncmp(env + i, mark, mlen) && env[i + mlen] == '\0';
        free(env);
        if (hit) {
            if (n < max)
                pids[n] = pid;
            n++;
        }
    }
    closedir(d);
    return n;
}

static void test_nothing_left(void)
{
    enum { MAXP = 16 };
    pid_t pids[MAXP];
    int n;
    double t0 = now_s();
    /* Anything still dying gets the time a slow machine may need. */
    while ((n = live_marked(pids, MAXP)) > 0 && now_s() - t0 < 10.0)
        sleep_ms(50);
    CHECK_TRUE(n >= 0);
    char list[MAXP * 12 + 1] = "";
    for (int i = 0; i < n && i < MAXP; i++)
        snprintf(list + strlen(list), sizeof list - strlen(list), " %d",
                 (int)pids[i]);
    check_(n <= 0, __FILE__, __LINE__,
           "%d live processes started by this binary are left:%s", n, list);
    /* Do not let a failure here break later suites: end them. */
    for (int i = 0; i < n && i < MAXP; i++)
        kill(pids[i], SIGKILL);
}

/* ------------------------------------------------------------------------ */

static void on_watchdog(int sig)
{
    (void)sig;
    static const char msg[] = "\ntest_proc: watchdog: a test hung\n";
    ssize_t n = write(2, msg, sizeof msg - 1);
    (void)n;
    _exit(3);
}

static void arm_watchdog(void)
{
    alarm(WATCHDOG_S);
}
static void disarm_watchdog(void)
{
    alarm(0);
}

/* Remove the temporary directory and its files (one level deep). */
static void remove_tmpdir(void)
{
    DIR *d = opendir(tmpdir);
    if (!d)
        return;
    struct dirent *de;
    char p[PATH_MAX];
    while ((de = readdir(d)))
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
            unlink(tpath(p, de->d_name));
    closedir(d);
    rmdir(tmpdir);
}

int main(void)
{
    static const struct {
        const char *name;
        CU_TestFunc fn;
    } tests[] = {
        {"exit 0 and exit 3", test_exit_status},
        {"killed by a signal", test_killed_by_signal},
        {"command not found is not a spawn failure", test_command_not_found},
        {"command starting with '-'", test_command_starting_with_dash},
        {"another shell", test_shell_override},
        {"stdout and stderr to files", test_capture},
        {"binary output, 1 MiB line", test_capture_binary_and_large},
        {"stdout and stderr to one file", test_capture_shared_file},
        {"a planted symlink is not followed", test_output_symlink_not_followed},
        {"no output files", test_null_outputs},
        {"stdin is /dev/null", test_stdin_is_dev_null},
        {"environment reaches the child", test_env_reaches_child},
        {"environment builder", test_envbuf},
        {"timeout: SIGTERM", test_timeout},
        {"timeout: SIGKILL after the grace", test_timeout_ignoring_term},
        {"timeout: no grandchild left", test_timeout_grandchildren},
        {"normal exit leaves the group alone", test_normal_exit_leaves_group},
        {"kill_all ends runs, then refuses", test_kill_all},
        {"kill_all: SIGKILL after the grace", test_kill_all_grace},
        {"kill_all racing spawns", test_kill_all_race},
        {"detach, then adopt or drop", test_detach_adopt},
        {"spawn failures", test_spawn_failure},
        {"bad arguments", test_bad_arguments},
        {"SIGCHLD ignored by the caller", test_sigchld_ignored},
        {"waiting uses no CPU", test_wait_uses_no_cpu},
        {"polling fallback", test_fallback_wait},
        {"8 threads at once", test_concurrent_runs},
        {"child signal mask and dispositions", test_child_signal_state},
        {"guard slots", test_guard_slots},
        {"caller's descriptors", test_use_fds},
        {"spawn cost", test_spawn_cost},
        {"no zombies", test_no_zombies},
        {"no process left behind", test_nothing_left},
    };
    umask(022); /* the file-mode check expects it */
    snprintf(mark, sizeof mark, "%s=%ld", MARK, (long)getpid());
    if (setenv(MARK, mark + strlen(MARK) + 1, 1)) {
        perror("setenv");
        return 2;
    }
    struct sigaction sa = {.sa_handler = on_watchdog};
    sigaction(SIGALRM, &sa, NULL);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/tf_test_proc_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 2;
    }
    int status = 2;
    if (CU_initialize_registry() != CUE_SUCCESS)
        goto out_with_tmpdir;
    CU_pSuite suite = CU_add_suite_with_setup_and_teardown(
        "exec/proc", NULL, NULL, arm_watchdog, disarm_watchdog);
    if (!suite)
        goto out_with_registry;
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++)
        if (!CU_add_test(suite, tests[i].name, tests[i].fn))
            goto out_with_registry;
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    status = CU_get_number_of_failures() ? 1 : 0;
out_with_registry:
    CU_cleanup_registry();
out_with_tmpdir:
    remove_tmpdir();
    return status;
}
