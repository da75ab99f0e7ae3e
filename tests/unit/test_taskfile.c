/* Unit tests of the task-file parser: format, errors, barriers, scale. */
#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <CUnit/Basic.h>
#include <CUnit/CUnit.h>

#include "check.h"
#include "rng.h"
#include "sched.h"
#include "subst.h"
#include "taskfarm_status.h"
#include "taskfile.h"

/*
 * Most tests parse a string under the name "tasks.txt" and compare the
 * messages verbatim, since users and scripts read them. The sample files
 * under tests/data/taskfiles (override the directory with
 * TASKFARM_TEST_DATA) are parsed too, and the bad ones must produce exactly
 * the messages in their .err files, which CLI tests can reuse.
 */
#define NAME "tasks.txt"

static double now_seconds(void)
{
    struct timespec ts;
    timespec_get(&ts, TIME_UTC);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ------------------------------------------------------------------------ */
/* Helpers */

static int parse(const char *text, tf_taskfile *tf, tf_tferr *err)
{
    return tf_taskfile_parse(NAME, text, strlen(text), tf, err);
}

/* All messages on one line each, for failure reports. */
static const char *all_msgs(const tf_tferr *err, char *buf, size_t len)
{
    size_t off = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < err->n && off < len; i++)
        off += (size_t)snprintf(buf + off, len - off, "\n  [%s]",
                                err->msgs[i].text);
    if (!err->n)
        snprintf(buf, len, " (none)");
    return buf;
}

static bool has_msg(const tf_tferr *err, const char *want)
{
    for (size_t i = 0; i < err->n; i++)
        if (strcmp(err->msgs[i].text, want) == 0)
            return true;
    return false;
}

/* The text fails to parse and one message is exactly `want`. */
#define EXPECT_ERROR(text, want)                                               \
    expect_error_((text), strlen(text), (want), __FILE__, __LINE__)

static void expect_error_(const char *text, size_t len, const char *want,
                          const char *file, unsigned line)
{
    tf_taskfile tf;
    tf_tferr err;
    char buf[2048];
    int rc = tf_taskfile_parse(NAME, text, len, &tf, &err);
    check_fmt_(rc == TF_EINVAL, file, line, "parse rc %s, want TF_EINVAL",
               tf_err_name(rc));
    if (rc == 0)
        tf_taskfile_free(&tf);
    check_fmt_(has_msg(&err, want), file, line, "message [%s] not among:%s",
               want, all_msgs(&err, buf, sizeof buf));
    tf_tferr_free(&err);
}

/* Parse text that must be valid; reports and returns false otherwise. */
#define PARSE_OK(text, tf)                                                     \
    parse_ok_((text), strlen(text), (tf), __FILE__, __LINE__)

static bool parse_ok_(const char *text, size_t len, tf_taskfile *tf,
                      const char *file, unsigned line)
{
    tf_tferr err;
    char buf[2048];
    int rc = tf_taskfile_parse(NAME, text, len, tf, &err);
    bool ok = check_fmt_(rc == 0, file, line, "parse rc %s, messages:%s",
                         tf_err_name(rc), all_msgs(&err, buf, sizeof buf));
    check_fmt_(err.n == 0, file, line, "%zu messages after success", err.n);
    tf_tferr_free(&err);
    return ok;
}

static bool deps_are(const tf_taskfile *tf, uint32_t i, const uint32_t *want,
                     uint32_t nwant)
{
    uint32_t n;
    const uint32_t *d = tf_taskfile_deps(tf, i, &n);
    if (n != nwant)
        return false;
    for (uint32_t k = 0; k < n; k++)
        if (d[k] != want[k])
            return false;
    return true;
}

/* ------------------------------------------------------------------------ */
/* The format */

static void test_plain(void)
{
    tf_taskfile tf;
    if (!PARSE_OK("echo a\necho b\n\necho c\n", &tf))
        return;
    CHECK_EQ_U(tf.n, 3);
    CHECK_EQ_U(tf.ntasks, 3);
    CHECK_EQ_U(tf.nbarriers, 0);
    CHECK_EQ_U(tf.nedges, 0);
    CHECK_EQ_U(tf.nafter, 0);
    CHECK_EQ_U(tf.max_chain, 1);
    CHECK_EQ_U(tf.max_cores, 1);
    const char *cmds[] = {"echo a", "echo b", "echo c"};
    const char *ids[] = {"1", "2", "4"};
    const uint32_t lines[] = {1, 2, 4};
    for (uint32_t i = 0; i < 3; i++) {
        CHECK_MSG(!strcmp(tf_taskfile_cmd(&tf, i), cmds[i]), "cmd %u [%s]", i,
                  tf_taskfile_cmd(&tf, i));
        CHECK_MSG(!strcmp(tf_taskfile_id(&tf, i), ids[i]), "id %u [%s]", i,
                  tf_taskfile_id(&tf, i));
        CHECK_EQ_U(tf.tasks[i].line, lines[i]);
        CHECK_EQ_U(tf.tasks[i].cmd_len, strlen(cmds[i]));
        CHECK_EQ_I(tf.tasks[i].prio, 0);
        CHECK_EQ_U(tf.tasks[i].cores, 1);
        CHECK_EQ_I(tf.tasks[i].retries, -1);
        CHECK_EQ_U(tf.tasks[i].timeout_ms, 0);
        CHECK_EQ_U(tf.tasks[i].ndeps, 0);
        CHECK_FALSE(tf_taskfile_is_barrier(&tf, i));
        CHECK_TRUE(tf.tasks[i].flags & TF_TFT_DEFAULT_ID);
    }
    CHECK_EQ_U(tf_taskfile_bytes(&tf), 3 * sizeof(tf_tftask) + tf.pool_len);
    tf_taskfile_free(&tf);
}

static void test_attributes(void)
{
    tf_taskfile tf;
    const char *text =
        "@id=prep ./prep\n"
        "@id=sim\t@after=prep  @prio=-7 @cores=4 @timeout=1.5 @retries=3 "
        "./sim --x=1  @notattr\n"
        "@timeout=90 @prio=2147483647 @cores=65535 @retries=0 a\n"
        "@timeout=.25 @prio=-2147483648 @retries=255 b\n"
        "@timeout=0.0001 c\n"
        "@timeout=4294967.295 d\n"
        "@timeout=5. @prio=+3 e\n"
        "@id=A-z_0.9:x f\n";
    if (!PARSE_OK(text, &tf))
        return;
    CHECK_EQ_U(tf.ntasks, 8);
    CHECK_MSG(!strcmp(tf_taskfile_id(&tf, 1), "sim"), "id");
    CHECK_MSG(!strcmp(tf_taskfile_cmd(&tf, 1), "./sim --x=1  @notattr"),
              "cmd [%s]", tf_taskfile_cmd(&tf, 1));
    CHECK_EQ_I(tf.tasks[1].prio, -7);
    CHECK_EQ_U(tf.tasks[1].cores, 4);
    CHECK_EQ_U(tf.tasks[1].timeout_ms, 1500);
    CHECK_EQ_I(tf.tasks[1].retries, 3);
    CHECK_FALSE(tf.tasks[1].flags & TF_TFT_DEFAULT_ID);
    const uint32_t d0[] = {0};
    CHECK_TRUE(deps_are(&tf, 1, d0, 1));
    CHECK_EQ_U(tf.tasks[2].timeout_ms, 90000);
    CHECK_EQ_I(tf.tasks[2].prio, INT32_MAX);
    CHECK_EQ_U(tf.tasks[2].cores, 65535);
    CHECK_EQ_I(tf.tasks[2].retries, 0);
    CHECK_EQ_U(tf.tasks[3].timeout_ms, 250);
    CHECK_EQ_I(tf.tasks[3].prio, INT32_MIN);
    CHECK_EQ_I(tf.tasks[3].retries, 255);
    CHECK_EQ_U(tf.tasks[4].timeout_ms, 1); /* rounded up, stays positive */
    CHECK_EQ_U(tf.tasks[5].timeout_ms, UINT32_MAX);
    CHECK_EQ_U(tf.tasks[6].timeout_ms, 5000);
    CHECK_EQ_I(tf.tasks[6].prio, 3);
    CHECK_MSG(!strcmp(tf_taskfile_id(&tf, 7), "A-z_0.9:x"), "id [%s]",
              tf_taskfile_id(&tf, 7));
    CHECK_EQ_U(tf.max_cores, 65535);
    CHECK_EQ_U(tf.max_chain, 2);
    tf_taskfile_free(&tf);
}

static void test_forward_refs(void)
{
    tf_taskfile tf;
    /* By id, and by line number (the default id), both pointing down. */
    if (!PARSE_OK("@after=b,3 echo a\n"
                  "@id=b echo b\n"
                  "echo c\n"
                  "@after=1 echo d\n",
                  &tf))
        return;
    const uint32_t d0[] = {1, 2};
    CHECK_TRUE(deps_are(&tf, 0, d0, 2));
    const uint32_t d3[] = {0};
    CHECK_TRUE(deps_are(&tf, 3, d3, 1));
    CHECK_EQ_U(tf.nafter, 3);
    CHECK_EQ_U(tf.nedges, 3);
    CHECK_EQ_U(tf.max_chain, 3); /* b, a, d */
    tf_taskfile_free(&tf);

    /* A long chain written bottom-up goes through the scheduler's check. */
    char text[64 * 40];
    size_t off = 0;
    for (int i = 0; i < 40; i++)
        off += (size_t)snprintf(
            text + off, sizeof text - off,
            i < 39 ? "@id=t%d @after=t%d x\n" : "@id=t%d x\n", i, i + 1);
    if (!PARSE_OK(text, &tf))
        return;
    CHECK_EQ_U(tf.max_chain, 40);
    tf_taskfile_free(&tf);
}

static void test_default_ids(void)
{
    tf_taskfile tf;
    if (!PARSE_OK("# a comment\n"
                  "echo first\n"
                  "\n"
                  "@after=2 echo second\n"
                  "@id=x @after=4,2 echo third\n",
                  &tf))
        return;
    CHECK_MSG(!strcmp(tf_taskfile_id(&tf, 0), "2"), "id [%s]",
              tf_taskfile_id(&tf, 0));
    CHECK_MSG(!strcmp(tf_taskfile_id(&tf, 1), "4"), "id [%s]",
              tf_taskfile_id(&tf, 1));
    const uint32_t d1[] = {0}, d2[] = {1, 0};
    CHECK_TRUE(deps_are(&tf, 1, d1, 1));
    CHECK_TRUE(deps_are(&tf, 2, d2, 2));
    tf_taskfile_free(&tf);

    /* An explicit numeric id is an ordinary id where no line clashes. */
    if (!PARSE_OK("@id=7 echo a\n@after=7 echo b\n", &tf))
        return;
    const uint32_t d[] = {0};
    CHECK_TRUE(deps_are(&tf, 1, d, 1));
    tf_taskfile_free(&tf);

    /* Leading zeros do not name a line. */
    EXPECT_ERROR("echo a\n@after=01 echo b\n",
                 NAME ":2: unknown dependency '01'");
    /* A comment line holds no task. */
    EXPECT_ERROR("# c\necho a\n@after=1 echo b\n",
                 NAME ":3: unknown dependency '1'");
}

static void test_repeated_deps(void)
{
    tf_taskfile tf;
    if (!PARSE_OK("@id=a echo\n@id=b echo\n@after=a,b,a,a echo\n", &tf))
        return;
    const uint32_t d[] = {0, 1};
    CHECK_TRUE(deps_are(&tf, 2, d, 2));
    CHECK_EQ_U(tf.nafter, 2);
    tf_taskfile_free(&tf);
}

static void test_missing_final_newline(void)
{
    tf_taskfile tf;
    if (!PARSE_OK("echo a\n@id=b @after=1 echo b", &tf))
        return;
    CHECK_EQ_U(tf.ntasks, 2);
    CHECK_MSG(!strcmp(tf_taskfile_cmd(&tf, 1), "echo b"), "cmd [%s]",
              tf_taskfile_cmd(&tf, 1));
    tf_taskfile_free(&tf);
    if (!PARSE_OK("echo only", &tf))
        return;
    CHECK_EQ_U(tf.ntasks, 1);
    tf_taskfile_free(&tf);
}

static void test_crlf(void)
{
    tf_taskfile tf;
    if (!PARSE_OK("@id=a echo a\r\n"
                  "# comment\r\n"
                  "\r\n"
                  "  \t\r\n"
                  "@after=a echo b\r\n"
                  "echo c\rd\r\n"
                  "@after=5 echo last\r",
                  &tf))
        return;
    CHECK_EQ_U(tf.ntasks, 4);
    CHECK_MSG(!strcmp(tf_taskfile_cmd(&tf, 0), "echo a"), "[%s]",
              tf_taskfile_cmd(&tf, 0));
    CHECK_MSG(!strcmp(tf_taskfile_cmd(&tf, 1), "echo b"), "[%s]",
              tf_taskfile_cmd(&tf, 1));
    /* Only the CR that ends the line goes. */
    CHECK_MSG(!strcmp(tf_taskfile_cmd(&tf, 2), "echo c\rd"), "[%s]",
              tf_taskfile_cmd(&tf, 2));
    CHECK_MSG(!strcmp(tf_taskfile_cmd(&tf, 3), "echo last"), "[%s]",
              tf_taskfile_cmd(&tf, 3));
    CHECK_EQ_U(tf.tasks[1].line, 5);
    const uint32_t d[] = {1};
    CHECK_TRUE(deps_are(&tf, 3, d, 1));
    tf_taskfile_free(&tf);
    EXPECT_ERROR("echo a\r\n@prio=1\r\n", NAME ":2: attributes but no command");
}

static void test_comments_and_blanks(void)
{
    tf_taskfile tf;
    if (!PARSE_OK("  # indented comment\n"
                  "\t\n"
                  "   \t echo x  \n"
                  "#@prio=oops not an attribute\n"
                  "\t@prio=2\techo y # shell comment\n",
                  &tf))
        return;
    CHECK_EQ_U(tf.ntasks, 2);
    /* Leading blanks go, trailing ones are the command's. */
    CHECK_MSG(!strcmp(tf_taskfile_cmd(&tf, 0), "echo x  "), "[%s]",
              tf_taskfile_cmd(&tf, 0));
    CHECK_MSG(!strcmp(tf_taskfile_id(&tf, 0), "3"), "[%s]",
              tf_taskfile_id(&tf, 0));
    CHECK_MSG(!strcmp(tf_taskfile_cmd(&tf, 1), "echo y # shell comment"),
              "[%s]", tf_taskfile_cmd(&tf, 1));
    CHECK_EQ_I(tf.tasks[1].prio, 2);
    tf_taskfile_free(&tf);

    if (!PARSE_OK("\xEF\xBB\xBF"
                  "echo bom\n",
                  &tf))
        return;
    CHECK_MSG(!strcmp(tf_taskfile_cmd(&tf, 0), "echo bom"), "[%s]",
              tf_taskfile_cmd(&tf, 0));
    tf_taskfile_free(&tf);
}

/* ------------------------------------------------------------------------ */
/* Barriers */

/* reach[a * n + b]: b depends on a, directly or not. */
static uint8_t *closure(const tf_taskfile *tf)
{
    uint32_t n = tf->n;
    uint8_t *reach = calloc((size_t)n * n, 1);
    uint32_t *stack = malloc(n * sizeof *stack);
    if (!reach || !stack) {
        free(reach);
        free(stack);
        return NULL;
    }
    /* From each b, walk its dependencies: every task met is before b. */
    for (uint32_t b = 0; b < n; b++) {
        size_t sp = 0;
        stack[sp++] = b;
        while (sp) {
            uint32_t u = stack[--sp], nd;
            const uint32_t *d = tf_taskfile_deps(tf, u, &nd);
            for (uint32_t k = 0; k < nd; k++)
                if (!reach[(size_t)d[k] * n + b]) {
                    reach[(size_t)d[k] * n + b] = 1;
                    stack[sp++] = d[k];
                }
        }
    }
    free(stack);
    return reach;
}

/*
 * Drive the scheduler to the end as the runtime will: a barrier is
 * completed the moment it is dispatched, other tasks finish one at a time
 * in random order. on_run sees each task (file index) as it is dispatched.
 */
typedef void (*on_run_fn)(const tf_sched *s, const tf_taskfile *tf,
                          uint32_t base, uint32_t i, void *arg);

static void drive(tf_sched *s, const tf_taskfile *tf, uint32_t base,
                  uint64_t seed, bool check_each, on_run_fn on_run, void *arg)
{
    tf_rng r = tf_rng_seeded(seed);
    uint32_t *running = malloc(tf->n * sizeof *running);
    tf_action *acts = malloc((tf->n + 1) * sizeof *acts);
    uint32_t w;
    size_t nrun = 0;
    if (!running || !acts ||
        !CHECK_RC(tf_sched_add_worker(s, 64, 256, &w), TF_OK))
        goto out_with_arrays;
    for (;;) {
        if (!CHECK_RC(tf_sched_dispatch(s), TF_OK))
            break;
        size_t na;
        const tf_action *a = tf_sched_actions(s, &na);
        memcpy(acts, a, na * sizeof *a);
        tf_sched_clear_actions(s);
        bool barrier_done = false;
        for (size_t k = 0; k < na; k++) {
            CHECK_EQ_U(acts[k].kind, TF_ACT_RUN);
            uint32_t i = acts[k].task - base;
            on_run(s, tf, base, i, arg);
            if (tf_taskfile_is_barrier(tf, i)) {
                CHECK_RC(tf_sched_task_done(s, acts[k].task), TF_OK);
                barrier_done = true;
            } else {
                running[nrun++] = acts[k].task;
            }
        }
        /* A completed barrier released tasks: dispatch again first. */
        if (barrier_done)
            continue;
        if (!nrun)
            break;
        size_t k = tf_rng_below(&r, (uint32_t)nrun);
        uint32_t t = running[k];
        running[k] = running[--nrun];
        if (!CHECK_RC(tf_sched_task_done(s, t), TF_OK))
            break;
        if (check_each && !CHECK_SCHED(s))
            break;
    }
    CHECK_SCHED(s);
    CHECK_TRUE(tf_sched_is_finished(s));
    CHECK_EQ_U(s->count[TF_ST_DONE], tf->n);
out_with_arrays:
    free(acts);
    free(running);
}

/* Segment of each entry: the number of barriers above it. */
typedef struct seg_arg {
    const uint32_t *seg;
} seg_arg;

static void check_segments(const tf_sched *s, const tf_taskfile *tf,
                           uint32_t base, uint32_t i, void *arg)
{
    const uint32_t *seg = ((seg_arg *)arg)->seg;
    for (uint32_t u = 0; u < tf->n; u++) {
        if (tf_taskfile_is_barrier(tf, u) || seg[u] >= seg[i])
            continue;
        if (!CHECK_MSG(tf_sched_state(s, base + u) == TF_ST_DONE,
                       "task %u (segment %u) runs before task %u (segment "
                       "%u) is done",
                       i, seg[i], u, seg[u]))
            return;
    }
}

static void test_barrier(void)
{
    tf_taskfile tf;
    /* Leading, doubled and trailing barriers, and explicit dependencies. */
    const char *text = "@barrier\n"
                       "@id=a echo a\n"
                       "echo b\n"
                       "@after=a echo c\n"
                       "@barrier\n"
                       "# between\n"
                       "@barrier\n"
                       "echo d\n"
                       "@id=e @after=8 echo e\n"
                       "@barrier\n"
                       "@id=g echo g\n"
                       "@barrier\n";
    if (!PARSE_OK(text, &tf))
        return;
    CHECK_EQ_U(tf.ntasks, 6);
    CHECK_EQ_U(tf.nbarriers, 5);
    CHECK_EQ_U(tf.n, 11);
    CHECK_EQ_U(tf.nafter, 2);
    CHECK_EQ_U(tf.max_chain, 5); /* a, c, d, e, g */
    uint32_t seg[11], nseg = 0;
    for (uint32_t i = 0; i < tf.n; i++) {
        if (tf_taskfile_is_barrier(&tf, i)) {
            nseg++;
            CHECK_MSG(!strcmp(tf_taskfile_id(&tf, i), ""), "barrier id");
            CHECK_MSG(!strcmp(tf_taskfile_cmd(&tf, i), ""), "barrier cmd");
            CHECK_EQ_U(tf.tasks[i].cmd_len, 0);
        }
        seg[i] = nseg;
    }
    /* Two edges per task at most, plus the explicit ones. */
    CHECK_LE_U(tf.nedges, 2 * tf.n + tf.nafter);

    uint8_t *reach = closure(&tf);
    if (!CHECK_TRUE(reach != NULL))
        goto out_with_tf;
    for (uint32_t a = 0; a < tf.n; a++)
        for (uint32_t b = 0; b < tf.n; b++) {
            if (tf_taskfile_is_barrier(&tf, a) ||
                tf_taskfile_is_barrier(&tf, b))
                continue;
            bool dep = reach[(size_t)a * tf.n + b];
            if (seg[a] < seg[b])
                CHECK_MSG(dep,
                          "task %u (line %u) does not wait for task %u "
                          "(line %u) across a barrier",
                          b, tf.tasks[b].line, a, tf.tasks[a].line);
            else if (seg[a] > seg[b])
                CHECK_MSG(!dep, "task %u depends on later-segment task %u", b,
                          a);
        }
    /* Within a segment only the explicit dependencies hold. */
    CHECK_TRUE(reach[(size_t)1 * tf.n + 3]);  /* c after a */
    CHECK_FALSE(reach[(size_t)1 * tf.n + 2]); /* b free of a */
    CHECK_TRUE(reach[(size_t)6 * tf.n + 7]);  /* e after d */
    free(reach);

    tf_sched s;
    tf_sched_init(&s);
    uint32_t base;
    if (CHECK_RC(tf_taskfile_submit(&tf, &s, 1, &base), TF_OK) &&
        CHECK_RC(tf_sched_seal(&s, NULL, 0, NULL), TF_OK)) {
        seg_arg arg = {seg};
        drive(&s, &tf, base, 7, true, check_segments, &arg);
    }
    tf_sched_free(&s);
out_with_tf:
    tf_taskfile_free(&tf);
}

/* Barriers among many random lines: the relation holds for every pair. */
static void test_barrier_random(void)
{
    tf_rng r = tf_rng_seeded(42);
    char *text = malloc(1 << 16);
    if (!CHECK_TRUE(text != NULL))
        return;
    for (int round = 0; round < 20; round++) {
        size_t off = 0;
        uint32_t lines = 20 + tf_rng_below(&r, 60);
        for (uint32_t l = 1; l <= lines; l++) {
            uint32_t kind = tf_rng_below(&r, 10);
            if (kind == 0)
                off += (size_t)sprintf(text + off, "@barrier\n");
            else if (kind == 1)
                off += (size_t)sprintf(text + off, "# c\n");
            else if (kind < 4 && l > 1)
                off += (size_t)sprintf(text + off, "@after=%u echo %u\n",
                                       1 + tf_rng_below(&r, l - 1), l);
            else
                off += (size_t)sprintf(text + off, "echo %u\n", l);
        }
        tf_taskfile tf;
        tf_tferr err;
        int rc = tf_taskfile_parse(NAME, text, off, &tf, &err);
        tf_tferr_free(&err);
        if (rc)
            continue; /* @after named a comment or barrier line, or no tasks */
        uint8_t *reach = closure(&tf);
        uint32_t *seg = malloc(tf.n * sizeof *seg), nseg = 0;
        if (CHECK_TRUE(reach && seg)) {
            for (uint32_t i = 0; i < tf.n; i++) {
                nseg += tf_taskfile_is_barrier(&tf, i);
                seg[i] = nseg;
            }
            for (uint32_t a = 0; a < tf.n; a++)
                for (uint32_t b = 0; b < tf.n; b++)
                    if (!tf_taskfile_is_barrier(&tf, a) &&
                        !tf_taskfile_is_barrier(&tf, b) && seg[a] < seg[b] &&
                        !CHECK_MSG(reach[(size_t)a * tf.n + b],
                                   "round %d: %u does not wait for %u", round,
                                   b, a))
                        goto next;
            tf_sched s;
            tf_sched_init(&s);
            uint32_t base;
            if (CHECK_RC(tf_taskfile_submit(&tf, &s, 0, &base), TF_OK) &&
                CHECK_RC(tf_sched_seal(&s, NULL, 0, NULL), TF_OK)) {
                seg_arg arg = {seg};
                drive(&s, &tf, base, (uint64_t)round, false, check_segments,
                      &arg);
            }
            tf_sched_free(&s);
        }
    next:
        free(seg);
        free(reach);
        tf_taskfile_free(&tf);
    }
    free(text);
}

/* ------------------------------------------------------------------------ */
/* Errors */

static void test_error_unknown_attribute(void)
{
    EXPECT_ERROR("echo ok\n\n@prioo=3 echo x\n",
                 NAME ":3: unknown attribute '@prioo' (did you mean '@prio'?)");
    EXPECT_ERROR("@PRIO=3 echo x\n",
                 NAME ":1: unknown attribute '@PRIO' (did you mean '@prio'?)");
    EXPECT_ERROR("@timout=3 echo x\n",
                 NAME ":1: unknown attribute '@timout' (did you mean "
                      "'@timeout'?)");
    EXPECT_ERROR("@afterr=a echo x\n",
                 NAME ":1: unknown attribute '@afterr' (did you mean "
                      "'@after'?)");
    EXPECT_ERROR("@core=2 echo x\n",
                 NAME ":1: unknown attribute '@core' (did you mean '@cores'?)");
    EXPECT_ERROR("@barier\n",
                 NAME ":1: unknown attribute '@barier' (did you mean "
                      "'@barrier'?)");
    EXPECT_ERROR("@memory=4G echo x\n", NAME ":1: unknown attribute '@memory'");
    EXPECT_ERROR("@ echo x\n", NAME ":1: '@' without an attribute name");
    EXPECT_ERROR("@=3 echo x\n", NAME ":1: '@' without an attribute name");
    EXPECT_ERROR("@prio=1 @prio=2 echo x\n", NAME ":1: @prio given twice");
}

#define DUR_EXPECT                                                             \
    "a positive duration: seconds (90, 1.5) or with units (500ms, 90s, "     \
    "10m, 2h, 1h30m), at most 49 days)"

/* Durations: seconds, or terms with units from the largest down. */
static void test_durations(void)
{
    static const struct {
        const char *s;
        long long ms; /* -1: refused */
    } cases[] = {
        {"90", 90000},       {"1.5", 1500},         {"0.0001", 1},
        {"0", 0},            {"500ms", 500},        {"90s", 90000},
        {"10m", 600000},     {"1.5h", 5400000},     {"2d", 172800000},
        {"1h30m", 5400000},  {"2m30s", 150000},     {"1m0.5s", 60500},
        {"1d2h3m4s5ms", 93784005},                  {"0.0005s", 1},
        {"4294967.295", 4294967295LL},              {"49d", 4233600000LL},
        {"", -1},            {"s", -1},             {"m10", -1},
        {"10 m", -1},        {"10M", -1},           {"1h1h", -1},
        {"30m1h", -1},       {"10s5", -1},          {"1.2.3", -1},
        {"-5s", -1},         {"1e3", -1},           {"50d", -1},
        {"4294967.296", -1}, {"10min", -1},         {"1hr", -1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint64_t ms = 0;
        bool ok = tf_duration_ms(cases[i].s, strlen(cases[i].s), &ms);
        CHECK_MSG(ok == (cases[i].ms >= 0), "'%s': %s", cases[i].s,
                  ok ? "taken" : "refused");
        if (ok && cases[i].ms >= 0)
            CHECK_MSG(ms == (uint64_t)cases[i].ms, "'%s': %llu ms, want %lld",
                      cases[i].s, (unsigned long long)ms, cases[i].ms);
    }
    tf_taskfile tf;
    if (PARSE_OK("@timeout=10m a\n@timeout=1h30m b\n@timeout=250ms c\n",
                 &tf)) {
        CHECK_EQ_U(tf.tasks[0].timeout_ms, 600000);
        CHECK_EQ_U(tf.tasks[1].timeout_ms, 5400000);
        CHECK_EQ_U(tf.tasks[2].timeout_ms, 250);
        tf_taskfile_free(&tf);
    }
}

/*
 * @est: a duration like @timeout's, kept in two bytes: exact up to 2047 ms,
 * never less than written and at most 1/1024 more beyond, 0 when absent.
 */
static void test_est(void)
{
    tf_taskfile tf;
    if (PARSE_OK("@est=90 a\n@est=1.5 @timeout=2 b\nc\n@est=1h d\n"
                 "@est=0.0001 e\n@est=4294967.295 f\n@est=2047ms g\n",
                 &tf)) {
        CHECK_EQ_U(tf_taskfile_est_ms(&tf, 0), 90048); /* 1407 << 6 */
        CHECK_EQ_U(tf_taskfile_est_ms(&tf, 1), 1500);
        CHECK_EQ_U(tf.tasks[1].timeout_ms, 2000);
        CHECK_EQ_U(tf_taskfile_est_ms(&tf, 2), 0);
        CHECK_EQ_U(tf_taskfile_est_ms(&tf, 3), 3600384);
        CHECK_EQ_U(tf_taskfile_est_ms(&tf, 4), 1);
        CHECK_EQ_U(tf_taskfile_est_ms(&tf, 5), UINT32_MAX);
        CHECK_EQ_U(tf_taskfile_est_ms(&tf, 6), 2047);
        tf_taskfile_free(&tf);
    }
    /* Every bit length, and its neighbours, rounds up within 1/1024. */
    for (uint32_t b = 0; b < 32; b++)
        for (int d = -1; d <= 1; d++) {
            uint64_t v = ((uint64_t)1 << b) + (uint64_t)(int64_t)d;
            if (v == 0 || v > UINT32_MAX)
                continue;
            char text[64];
            int n = snprintf(text, sizeof text, "@est=%llums x\n",
                             (unsigned long long)v);
            if (n < 0 || !PARSE_OK(text, &tf))
                return;
            uint64_t got = tf_taskfile_est_ms(&tf, 0);
            CHECK_MSG(got >= v && (got - v) * 1024 <= v &&
                          (v >= 2048 || got == v),
                      "@est=%llums reads back as %llu ms",
                      (unsigned long long)v, (unsigned long long)got);
            tf_taskfile_free(&tf);
        }
}

/* @shell: the whole file's shell, on a line of its own before any task. */
static void test_shell(void)
{
    tf_taskfile tf;
    if (PARSE_OK("# a sweep\n@shell=/bin/bash\n[[ 1 == 1 ]]\n", &tf)) {
        CHECK_TRUE(tf.shell && !strcmp(tf.shell, "/bin/bash"));
        CHECK_EQ_U(tf.shell_line, 2);
        CHECK_EQ_U(tf.ntasks, 1);
        tf_taskfile_free(&tf);
    }
    if (PARSE_OK("true\n", &tf)) {
        CHECK_TRUE(tf.shell == NULL);
        CHECK_EQ_U(tf.shell_line, 0);
        tf_taskfile_free(&tf);
    }
    EXPECT_ERROR("@shell=bash\n@shell=zsh\ntrue\n",
                 NAME ":2: @shell given twice (first on line 1)");
    EXPECT_ERROR("true\n@shell=bash\n",
                 NAME ":2: @shell must come before the first task");
    EXPECT_ERROR("@barrier\n@shell=bash\ntrue\n",
                 NAME ":2: @shell must come before the first task");
    EXPECT_ERROR("@shell=bash true\n",
                 NAME ":1: @shell must stand alone on its line (it is the "
                      "shell of the whole file)");
    EXPECT_ERROR("@shell=bash @prio=1\ntrue\n",
                 NAME ":1: @shell must stand alone on its line (it is the "
                      "shell of the whole file)");
    EXPECT_ERROR("@shell\ntrue\n", NAME ":1: @shell needs a value (@shell=VALUE)");
    char big[400];
    memset(big, 'x', sizeof big);
    memcpy(big, "@shell=", 7);
    memcpy(big + 300, "\ntrue\n", 7);
    big[307] = 0;
    EXPECT_ERROR(big, NAME ":1: @shell of 293 bytes, longer than 255");
}

/* @output: the whole file's output mode, as @shell, one of three values. */
static void test_output(void)
{
    tf_taskfile tf;
    if (PARSE_OK("@shell=sh\n@output=tag\necho x\n", &tf)) {
        CHECK_EQ_U(tf.output, TF_TASKFILE_OUTPUT_TAG);
        CHECK_EQ_U(tf.output_line, 2);
        CHECK_TRUE(tf.shell && !strcmp(tf.shell, "sh"));
        tf_taskfile_free(&tf);
    }
    if (PARSE_OK("@output=none\ntrue\n", &tf)) {
        CHECK_EQ_U(tf.output, TF_TASKFILE_OUTPUT_NONE);
        tf_taskfile_free(&tf);
    }
    if (PARSE_OK("@output=files\ntrue\n", &tf)) {
        CHECK_EQ_U(tf.output, TF_TASKFILE_OUTPUT_FILES);
        tf_taskfile_free(&tf);
    }
    if (PARSE_OK("true\n", &tf)) {
        CHECK_EQ_U(tf.output, 0);
        CHECK_EQ_U(tf.output_line, 0);
        tf_taskfile_free(&tf);
    }
    EXPECT_ERROR("@output=tags\ntrue\n",
                 NAME ":1: bad value 'tags' for @output (expected files, tag "
                      "or none)");
    EXPECT_ERROR("@output=tag\n@output=none\ntrue\n",
                 NAME ":2: @output given twice (first on line 1)");
    EXPECT_ERROR("true\n@output=tag\n",
                 NAME ":2: @output must come before the first task");
    EXPECT_ERROR("@output=tag echo x\n",
                 NAME ":1: @output must stand alone on its line (it is the "
                      "output mode of the whole file)");
    EXPECT_ERROR("@output\ntrue\n",
                 NAME ":1: @output needs a value (@output=VALUE)");
}

static void test_error_values(void)
{
    static const struct {
        const char *text, *msg;
    } cases[] = {
        {"@prio=abc x\n", NAME ":1: bad value 'abc' for @prio (expected an "
                               "integer from -2147483648 to 2147483647)"},
        {"@prio=2147483648 x\n",
         NAME ":1: bad value '2147483648' for @prio (expected an integer "
              "from -2147483648 to 2147483647)"},
        {"@prio=1.5 x\n", NAME ":1: bad value '1.5' for @prio (expected an "
                               "integer from -2147483648 to 2147483647)"},
        {"@prio=- x\n", NAME ":1: bad value '-' for @prio (expected an "
                             "integer from -2147483648 to 2147483647)"},
        {"@cores=0 x\n", NAME ":1: bad value '0' for @cores (expected an "
                              "integer from 1 to 65535)"},
        {"@cores=65536 x\n", NAME ":1: bad value '65536' for @cores "
                                  "(expected an integer from 1 to 65535)"},
        {"@cores=two x\n", NAME ":1: bad value 'two' for @cores (expected "
                                "an integer from 1 to 65535)"},
        {"@retries=-1 x\n", NAME ":1: bad value '-1' for @retries (expected "
                                 "an integer from 0 to 255)"},
        {"@retries=256 x\n", NAME ":1: bad value '256' for @retries "
                                  "(expected an integer from 0 to 255)"},
        {"@timeout=0 x\n", NAME ":1: bad value '0' for @timeout (expected " DUR_EXPECT},
        {"@est=0 x\n", NAME ":1: bad value '0' for @est (expected " DUR_EXPECT},
        {"@est=2x x\n", NAME ":1: bad value '2x' for @est (expected " DUR_EXPECT},
        {"@est=50d x\n", NAME ":1: bad value '50d' for @est (expected " DUR_EXPECT},
        {"@est x\n", NAME ":1: @est needs a value (@est=VALUE)"},
        {"@est=1 @est=2 x\n", NAME ":1: @est given twice"},
        {"@timeout=0.0000 x\n",
         NAME ":1: bad value '0.0000' for @timeout (expected " DUR_EXPECT},
        {"@timeout=-5 x\n", NAME ":1: bad value '-5' for @timeout (expected " DUR_EXPECT},
        {"@timeout=1e3 x\n", NAME ":1: bad value '1e3' for @timeout " "(expected " DUR_EXPECT},
        {"@timeout=. x\n", NAME ":1: bad value '.' for @timeout (expected " DUR_EXPECT},
        {"@timeout=4294967.296 x\n",
         NAME ":1: bad value '4294967.296' for @timeout (expected " DUR_EXPECT},
        {"@timeout=30m1h x\n", NAME ":1: bad value '30m1h' for @timeout (expected " DUR_EXPECT},
        {"@timeout=10min x\n", NAME ":1: bad value '10min' for @timeout (expected " DUR_EXPECT},
        {"@timeout=50000d x\n", NAME ":1: bad value '50000d' for @timeout (expected " DUR_EXPECT},
        {"@timeout=0s x\n", NAME ":1: bad value '0s' for @timeout (expected " DUR_EXPECT},
        {"@prio= x\n", NAME ":1: @prio needs a value (@prio=VALUE)"},
        {"@cores x\n", NAME ":1: @cores needs a value (@cores=VALUE)"},
        {"@id= x\n", NAME ":1: @id needs a value (@id=VALUE)"},
        {"@id=a/b x\n", NAME ":1: bad id 'a/b' in @id (an id is 1 to 251 "
                             "letters, digits, '_', '.', ':' or '-')"},
        {"@id=caf\xc3\xa9 x\n",
         NAME ":1: bad id 'caf\xc3\xa9' in @id (an id is "
              "1 to 251 letters, digits, '_', '.', ':' or "
              "'-')"},
        {"@id=a @after=a,b/c x\n",
         NAME ":1: bad id 'b/c' in @after (an id is 1 to 251 letters, "
              "digits, '_', '.', ':' or '-')"},
        {"@after=a,,b x\n", NAME ":1: empty id in @after list 'a,,b'"},
        {"@after=a, x\n", NAME ":1: empty id in @after list 'a,'"},
        {"@after=,a x\n", NAME ":1: empty id in @after list ',a'"},
        {"@barrier=1\n", NAME ":1: @barrier takes no value"},
        {"@barrier echo x\n", NAME ":1: @barrier must stand alone on its "
                                   "line"},
        {"@prio=1 @barrier\n", NAME ":1: @barrier must stand alone on its "
                                    "line"},
        {"@prio=1\n", NAME ":1: attributes but no command"},
        {"echo a\n  @id=x @prio=2   \t\n", NAME ":2: attributes but no "
                                                "command"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        EXPECT_ERROR(cases[i].text, cases[i].msg);

    /*
     * 252 bytes is one too many for an id, in @id or in @after: ID.out would
     * not fit in a file name of 255 bytes (once accepted by check, and every
     * attempt of the task failed in run). 251 is fine.
     */
    static const struct {
        const char *attr;
        size_t len;
    } longs[] = {{"id", 252}, {"after", 255}, {"id", 251}};
    char text[400], want[400];
    for (size_t i = 0; i < sizeof longs / sizeof longs[0]; i++) {
        memset(text, 'a', sizeof text);
        int at = snprintf(text, sizeof text, "@%s=", longs[i].attr);
        text[at] = 'a';
        memcpy(text + (size_t)at + longs[i].len, " x\n", 4);
        snprintf(want, sizeof want,
                 NAME ":1: id '%.60s...' in @%s is %zu bytes, longer than 251 "
                      "(the task's output files ID.out and ID.err must fit in "
                      "a file name of 255 bytes)",
                 text + at, longs[i].attr, longs[i].len);
        tf_taskfile tf;
        if (longs[i].len > TF_TASKFILE_MAX_ID)
            EXPECT_ERROR(text, want);
        else if (PARSE_OK(text, &tf)) {
            CHECK_EQ_U(tf.tasks[0].id_len, 251);
            tf_taskfile_free(&tf);
        }
    }
    /* Control bytes are not echoed. */
    EXPECT_ERROR("@id=a\x1b[1m x\n", NAME ":1: bad id 'a?[1m' in @id (an id "
                                          "is 1 to 251 letters, digits, '_', "
                                          "'.', ':' or '-')");
}

static void test_error_duplicate_id(void)
{
    EXPECT_ERROR("@id=prep a\necho\n@id=prep b\n",
                 NAME ":3: duplicate id 'prep' (also on line 1)");
    /* An explicit id that spells another line's default id, both ways. */
    EXPECT_ERROR("echo a\necho b\n@id=2 c\n",
                 NAME ":3: duplicate id '2' (also the default id of line 2)");
    EXPECT_ERROR("@id=3 a\necho b\necho c\n",
                 NAME ":3: duplicate id '3' (this line's default id, also "
                      "given on line 1)");
}

static void test_error_dependencies(void)
{
    EXPECT_ERROR("@id=prep a\n@id=sim @after=prep2 b\n",
                 NAME ":2: unknown dependency 'prep2' (did you mean 'prep'?)");
    EXPECT_ERROR("@id=simulate a\n@after=simluate b\n",
                 NAME ":2: unknown dependency 'simluate' (did you mean "
                      "'simulate'?)");
    EXPECT_ERROR("@id=prep a\n@after=zzzz b\n",
                 NAME ":2: unknown dependency 'zzzz'");
    /* No suggestion for tiny names: every digit is one edit from another. */
    EXPECT_ERROR("a\nb\nc\n@after=7 d\n", NAME ":4: unknown dependency '7'");
    EXPECT_ERROR("@id=x @after=y,x echo\n@id=y echo\n",
                 NAME ":1: task 'x' depends on itself");
    EXPECT_ERROR("echo\n@after=2 echo\n",
                 NAME ":2: task '2' depends on itself");
}

static void test_error_cycle(void)
{
    EXPECT_ERROR("@id=a @after=b echo a\n"
                 "echo other\n"
                 "@id=b @after=a echo b\n",
                 NAME ": dependency cycle: a (line 1) -> b (line 3) -> a "
                      "(line 1)");
    EXPECT_ERROR("@id=a @after=c echo a\n"
                 "@id=b @after=a echo b\n"
                 "@id=c @after=b echo c\n",
                 NAME ": dependency cycle: a (line 1) -> b (line 2) -> c "
                      "(line 3) -> a (line 1)");
    /* Through a barrier: x waits for y, which waits for the barrier. */
    EXPECT_ERROR("@id=x @after=y echo x\n"
                 "@barrier\n"
                 "@id=y echo y\n",
                 NAME ": dependency cycle: x (line 1) -> @barrier (line 2) "
                      "-> y (line 3) -> x (line 1)");

    /* A long cycle is named in part. */
    char text[40 * 40];
    size_t off = 0;
    for (int i = 0; i < 40; i++)
        off += (size_t)snprintf(text + off, sizeof text - off,
                                "@id=t%d @after=t%d x\n", i, (i + 1) % 40);
    tf_taskfile tf;
    tf_tferr err;
    CHECK_RC(parse(text, &tf, &err), TF_EINVAL);
    if (CHECK_EQ_U(err.n, 1)) {
        CHECK_EQ_I(err.msgs[0].code, TF_ECYCLE);
        CHECK_EQ_U(err.msgs[0].line, 0);
        CHECK_MSG(strstr(err.msgs[0].text, "-> ... (25 more) -> ") != NULL,
                  "[%s]", err.msgs[0].text);
        CHECK_MSG(strncmp(err.msgs[0].text, NAME ": dependency cycle: t", 23) ==
                      0,
                  "[%s]", err.msgs[0].text);
    }
    tf_tferr_free(&err);
}

static void test_error_nul_and_long_line(void)
{
    static const char nul[] = "echo a\necho b\0c\n";
    expect_error_(nul, sizeof nul - 1,
                  NAME ":2:7: NUL byte (is this a text file?)", __FILE__,
                  __LINE__);

    size_t len = TF_TASKFILE_MAX_LINE + 64;
    char *text = malloc(len);
    if (!CHECK_TRUE(text != NULL))
        return;
    /* Exactly at the limit is fine (the newline does not count); a
       comment, as no command may be that long. */
    memcpy(text, "echo a\n#", 8);
    memset(text + 8, 'x', TF_TASKFILE_MAX_LINE - 1);
    text[7 + TF_TASKFILE_MAX_LINE] = '\n';
    tf_taskfile tf;
    if (parse_ok_(text, 8 + TF_TASKFILE_MAX_LINE, &tf, __FILE__, __LINE__)) {
        CHECK_EQ_U(tf.n, 1);
        tf_taskfile_free(&tf);
    }
    text[7 + TF_TASKFILE_MAX_LINE] = 'x';
    text[8 + TF_TASKFILE_MAX_LINE] = '\n';
    expect_error_(text, 9 + TF_TASKFILE_MAX_LINE,
                  NAME ":2: line longer than 1048576 bytes", __FILE__,
                  __LINE__);
    free(text);
}

/*
 * A command is one argument of the shell, and Linux refuses one of 128 KiB
 * or more (MAX_ARG_STRLEN, its NUL included) with E2BIG at the exec: check
 * once accepted commands up to the 1 MiB line limit that run could not
 * start. The line is recorded all the same, so its id still resolves.
 */
static void test_error_long_command(void)
{
    size_t len = TF_TASKFILE_MAX_CMD + 64;
    char *text = malloc(len);
    if (!CHECK_TRUE(text != NULL))
        return;
    CHECK_EQ_U(TF_TASKFILE_MAX_CMD, 131071);
    memcpy(text, "@id=big ", 8);
    memset(text + 8, 'x', TF_TASKFILE_MAX_CMD);
    memcpy(text + 8 + TF_TASKFILE_MAX_CMD, "\n@after=big y\n", 14);
    tf_taskfile tf;
    if (parse_ok_(text, 22 + TF_TASKFILE_MAX_CMD, &tf, __FILE__, __LINE__)) {
        CHECK_EQ_U(tf.tasks[0].cmd_len, TF_TASKFILE_MAX_CMD);
        tf_taskfile_free(&tf);
    }
    memset(text + 8, 'x', TF_TASKFILE_MAX_CMD + 1);
    memcpy(text + 9 + TF_TASKFILE_MAX_CMD, "\n@after=big y\n", 14);
    expect_error_(text, 23 + TF_TASKFILE_MAX_CMD,
                  NAME ":1: command of 131072 bytes, longer than 131071 (the "
                       "most Linux passes to the shell as one argument)",
                  __FILE__, __LINE__);
    free(text);
}

static void test_error_no_tasks(void)
{
    expect_error_("", 0, NAME ": empty file, no tasks", __FILE__, __LINE__);
    expect_error_(NULL, 0, NAME ": empty file, no tasks", __FILE__, __LINE__);
    EXPECT_ERROR("# only\n\n   \n",
                 NAME ": no tasks (only blank lines, comments or barriers)");
    EXPECT_ERROR("@barrier\n",
                 NAME ": no tasks (only blank lines, comments or barriers)");
}

/*
 * @end ends the task list: no line after it is read, not even a bad one,
 * and tf.end_line says where it stood. It stands alone, without a value.
 */
static void test_end(void)
{
    static const char text[] = "echo a\n  @end \n@bogus x\necho \0z\n";
    tf_taskfile tf;
    if (parse_ok_(text, sizeof text - 1, &tf, __FILE__, __LINE__)) {
        CHECK_EQ_U(tf.ntasks, 1);
        CHECK_EQ_U(tf.end_line, 2);
        tf_taskfile_free(&tf);
    }
    if (PARSE_OK("echo a\n", &tf)) {
        CHECK_EQ_U(tf.end_line, 0);
        tf_taskfile_free(&tf);
    }
    EXPECT_ERROR("echo a\n@end=1\n", NAME ":2: @end takes no value");
    EXPECT_ERROR("echo a\n@end echo b\n",
                 NAME ":2: @end must stand alone on its line");
    EXPECT_ERROR("@end\n", NAME ": no tasks (only blank lines, comments or "
                            "barriers)");
}

/*
 * TF_TASKFILE_EMPTY_OK: the start of a list that grows may hold no task
 * yet, only its settings; every other error stays one.
 */
static void test_empty_ok(void)
{
    tf_taskfile tf;
    tf_tferr err;
    static const char text[] = "# tasks follow\n@shell=/bin/sh\n@barrier\n";
    int rc = tf_taskfile_parse_flags(NAME, text, strlen(text),
                                     TF_TASKFILE_EMPTY_OK, &tf, &err);
    CHECK_RC(rc, 0);
    if (!rc) {
        CHECK_EQ_U(tf.ntasks, 0);
        CHECK_EQ_U(tf.nbarriers, 1);
        CHECK_TRUE(tf.shell && !strcmp(tf.shell, "/bin/sh"));
        tf_taskfile_free(&tf);
    }
    CHECK_RC(tf_taskfile_parse_flags(NAME, NULL, 0, TF_TASKFILE_EMPTY_OK, &tf,
                                     &err),
             0);
    if (!err.n)
        tf_taskfile_free(&tf);
    CHECK_RC(tf_taskfile_parse_flags(NAME, "@x\n", 3, TF_TASKFILE_EMPTY_OK,
                                     &tf, &err),
             TF_EINVAL);
    tf_tferr_free(&err);
}

/* Mistakes are all reported, in line order, whichever pass found them. */
static void test_error_collected(void)
{
    tf_taskfile tf;
    tf_tferr err;
    char buf[2048];
    const char *text = "@after=nope echo a\n"
                       "@prio=x echo b\n"
                       "@id=c echo c\n"
                       "@id=c echo d\n"
                       "@retries=9 @after=c echo e\n";
    CHECK_RC(parse(text, &tf, &err), TF_EINVAL);
    if (CHECK_MSG(err.n == 3, "%zu messages:%s", err.n,
                  all_msgs(&err, buf, sizeof buf))) {
        CHECK_MSG(
            !strcmp(err.msgs[0].text, NAME ":1: unknown dependency 'nope'"),
            "[%s]", err.msgs[0].text);
        CHECK_EQ_I(err.msgs[0].code, TF_EDEP);
        CHECK_EQ_U(err.msgs[1].line, 2);
        CHECK_EQ_I(err.msgs[1].code, TF_EINVAL);
        CHECK_EQ_U(err.msgs[2].line, 4);
        CHECK_EQ_I(err.msgs[2].code, TF_EEXIST);
    }
    CHECK_FALSE(err.truncated);
    tf_tferr_free(&err);
    CHECK_TRUE(err.n == 0 && err.msgs == NULL);

    /* A cycle is only looked for once everything else is right. */
    CHECK_RC(
        parse("@id=a @after=b x\n@id=b @after=a x\n@cores=0 y\n", &tf, &err),
        TF_EINVAL);
    CHECK_EQ_U(err.n, 1);
    tf_tferr_free(&err);

    /* err may be NULL. */
    CHECK_RC(parse("@prio=x y\n", &tf, NULL), TF_EINVAL);
}

static void test_error_cap(void)
{
    char text[64 * 40];
    size_t off = 0;
    for (int i = 0; i < 40; i++)
        off += (size_t)snprintf(text + off, sizeof text - off,
                                "@cores=0 echo %d\n", i);
    tf_taskfile tf;
    tf_tferr err;
    CHECK_RC(parse(text, &tf, &err), TF_EINVAL);
    CHECK_EQ_U(err.n, TF_TASKFILE_MAX_ERRORS);
    CHECK_TRUE(err.truncated);
    if (err.n)
        CHECK_EQ_U(err.msgs[err.n - 1].line, TF_TASKFILE_MAX_ERRORS);
    tf_tferr_free(&err);
}

/* A failed parse leaves *out exactly as it was. */
static void test_out_untouched(void)
{
    tf_taskfile tf, before;
    memset(&tf, 0xab, sizeof tf);
    memcpy(&before, &tf, sizeof tf);
    tf_tferr err;
    CHECK_RC(parse("@id=a @after=b x\n@id=b @after=a y\n", &tf, &err),
             TF_EINVAL);
    CHECK_TRUE(memcmp(&tf, &before, sizeof tf) == 0);
    tf_tferr_free(&err);
    CHECK_RC(parse("@prioo=1 x\n", &tf, &err), TF_EINVAL);
    CHECK_TRUE(memcmp(&tf, &before, sizeof tf) == 0);
    tf_tferr_free(&err);
    CHECK_RC(tf_taskfile_parse(NULL, "x", 1, &tf, &err), TF_EINVAL);
    CHECK_RC(tf_taskfile_parse(NAME, "x", 1, NULL, &err), TF_EINVAL);
    CHECK_TRUE(memcmp(&tf, &before, sizeof tf) == 0);
}

/* ------------------------------------------------------------------------ */
/* Hand-over to the scheduler */

static void test_submit(void)
{
    tf_taskfile tf;
    if (!PARSE_OK("@prio=5 @cores=3 @retries=4 a\n"
                  "b\n"
                  "@barrier\n"
                  "@after=1 c\n",
                  &tf))
        return;
    tf_sched s;
    tf_sched_init(&s);
    uint32_t pre, base = 12345;
    /* Tasks already in the scheduler shift the indexes. */
    CHECK_RC(tf_sched_add_task(&s, 0, 1, 0, &pre), TF_OK);
    if (!CHECK_RC(tf_taskfile_submit(&tf, &s, 2, &base), TF_OK))
        goto out_with_sched;
    CHECK_EQ_U(base, 1);
    CHECK_EQ_U(s.dag.n, 5);
    CHECK_EQ_I(s.dag.prio[1], 5);
    CHECK_EQ_U(s.dag.cores[1], 3);
    CHECK_EQ_U(s.dag.retries[1], 4);
    CHECK_EQ_U(s.dag.retries[2], 2); /* the run's default */
    CHECK_EQ_U(s.dag.retries[3], 0); /* barrier */
    CHECK_EQ_U(s.dag.ne, tf.nedges);
    CHECK_EQ_U(s.dag.npend[4], 2); /* line 1 and the barrier */
    CHECK_RC(tf_sched_seal(&s, NULL, 0, NULL), TF_OK);
    CHECK_SCHED(&s);
    CHECK_STATE(&s, 1, TF_ST_READY);
    CHECK_STATE(&s, 3, TF_ST_PENDING);
out_with_sched:
    tf_sched_free(&s);
    tf_taskfile_free(&tf);
}

/* ------------------------------------------------------------------------ */
/* Replacement strings and @array lines */

/* The command subst.c makes of tmpl for one job of args (NULL-terminated). */
static const char *expand(const char *tmpl, const char *const *args,
                          uint64_t seq, char *buf, size_t cap)
{
    tf_subst_arg a[8];
    uint32_t n = 0;
    for (; args[n]; n++)
        a[n] = (tf_subst_arg){args[n], strlen(args[n])};
    tf_subst s;
    size_t at, len;
    if (tf_subst_init(&s, tmpl, strlen(tmpl), n, &at, &len))
        return "(refused)";
    size_t need = tf_subst_expand(&s, a, seq, NULL, 0);
    if (need >= cap || tf_subst_expand(&s, a, seq, buf, cap) != need)
        return "(length)";
    buf[need] = 0;
    return buf;
}

/*
 * What GNU parallel 20221122 runs for the same template and arguments
 * (parallel --dry-run; tests/cli/args.sh compares with the real one).
 */
static void test_subst(void)
{
    static const struct {
        const char *tmpl;
        const char *args[6];
        const char *want;
    } cases[] = {
        {"echo {} {.} {/} {//} {/.} {#}",
         {"dir.x/file.tar.gz"},
         "echo dir.x/file.tar.gz dir.x/file.tar file.tar.gz dir.x file.tar 7"},
        {"echo {.} {/} {//} {/.}", {".hidden"}, "echo '' .hidden . ''"},
        {"echo {.} {/} {//} {/.}", {"a/"}, "echo a/ '' . ''"},
        {"echo {.} {/} {//} {/.}", {"/"}, "echo / '' / ''"},
        {"echo {.} {//}", {"d/.x"}, "echo d/ d"},
        {"echo {//} {//}", {"a//b"}, "echo a a"},
        {"echo {//}", {"a/b/"}, "echo a"},
        {"echo {//}", {"//x"}, "echo /"},
        {"echo {//} {.}", {""}, "echo . ''"},
        {"echo", {"a b", "it's"}, "echo 'a b' 'it'\"'\"'s'"},
        {"echo", {"'"}, "echo \"'\""},
        {"echo", {"''"}, "echo \"'\"''\"'\""},
        {"echo", {"a'"}, "echo 'a'\"'\""},
        {"echo",
         {"$x", "a*", "a;b", "~x", "a:b"},
         "echo '$x' 'a*' 'a;b' '~x' 'a:b'"},
        {"echo", {"+x", "a/b", "a-b_c.d"}, "echo +x a/b a-b_c.d"},
        {"echo {2} {1} {-1} {1.} {2/}", {"a.b", "c/d"}, "echo c/d a.b c/d a d"},
        {"x{}y", {"a b"}, "xa by"}, /* first word: not quoted */
        {"{} x", {"echo a"}, "echo a x"},
        {"a=b{}", {"a b"}, "a=b'a b'"}, /* an '=' ends the first word */
        {"echo {#}", {"a"}, "echo 7"},  /* {#} alone: nothing appended */
        {"awk '{print $1}' {foo} {..} {+/} {1..3} { }",
         {"f"},
         "awk '{print $1}' {foo} {..} {+/} {1..3} { } f"},
        {"echo {{}}", {"a b"}, "echo {'a b'}"},
        {"", {"a b"}, " 'a b'"},
    };
    char buf[256];
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const char *got =
            expand(cases[i].tmpl, cases[i].args, 7, buf, sizeof buf);
        CHECK_MSG(!strcmp(got, cases[i].want), "[%s]: got [%s], want [%s]",
                  cases[i].tmpl, got, cases[i].want);
    }
    static const struct {
        const char *tmpl;
        uint32_t nargs;
        int code;
        size_t at, len;
    } refused[] = {
        {"echo {%}", 1, TF_SUBST_SLOT, 5, 3},
        {"echo {= s/a/b/ =} x", 1, TF_SUBST_PERL, 5, 12},
        {"echo {2= 1 =}", 2, TF_SUBST_PERL, 5, 8},
        {"echo {0}", 1, TF_SUBST_ZERO, 5, 3},
        {"echo {1} {3/}", 2, TF_SUBST_RANGE, 9, 4},
        {"echo {-3}", 2, TF_SUBST_RANGE, 5, 4},
    };
    for (size_t i = 0; i < sizeof refused / sizeof *refused; i++) {
        tf_subst s;
        size_t at = 0, len = 0;
        int code = tf_subst_init(&s, refused[i].tmpl, strlen(refused[i].tmpl),
                                 refused[i].nargs, &at, &len);
        CHECK_MSG(code == refused[i].code && at == refused[i].at &&
                      len == refused[i].len,
                  "[%s]: code %d at %zu len %zu", refused[i].tmpl, code, at,
                  len);
    }
}

static bool cmd_is(const tf_taskfile *tf, uint32_t i, const char *id,
                   const char *cmd)
{
    bool ok = !strcmp(tf_taskfile_id(tf, i), id) &&
              !strcmp(tf_taskfile_cmd(tf, i), cmd);
    return CHECK_MSG(ok, "task %u: [%s] [%s], want [%s] [%s]", i,
                     tf_taskfile_id(tf, i), tf_taskfile_cmd(tf, i), id, cmd);
}

static void test_array(void)
{
    tf_taskfile tf;
    if (!PARSE_OK("@id=prep echo prep\n"
                  "@id=sim @array=1-3,9-20:5,x_1 @after=prep @prio=7 "
                  "@cores=2 @timeout=1m @retries=3 ./sim {} --n {#}\n"
                  "@array=08-10 cp in{} out\n"
                  "@id=agg @after=sim,3,sim.1 ./agg\n"
                  "@barrier\n"
                  "@after=sim.x_1 tail\n",
                  &tf))
        return;
    CHECK_EQ_U(tf.ntasks, 1 + 7 + 3 + 1 + 1);
    CHECK_EQ_U(tf.narrays, 2);
    cmd_is(&tf, 1, "sim.1", "./sim 1 --n 1");
    cmd_is(&tf, 3, "sim.3", "./sim 3 --n 3");
    cmd_is(&tf, 4, "sim.9", "./sim 9 --n 4");
    cmd_is(&tf, 6, "sim.19", "./sim 19 --n 6");
    cmd_is(&tf, 7, "sim.x_1", "./sim x_1 --n 7");
    /* No replacement string: the value is appended; bash's zero padding. */
    cmd_is(&tf, 8, "3.08", "cp in08 out");
    cmd_is(&tf, 10, "3.10", "cp in10 out");
    for (uint32_t i = 1; i <= 7; i++) {
        const tf_tftask *t = &tf.tasks[i];
        CHECK_MSG(t->line == 2 && t->prio == 7 && t->cores == 2 &&
                      t->timeout_ms == 60000 && t->retries == 3 &&
                      (t->flags & TF_TFT_ARRAY) &&
                      !(t->flags & TF_TFT_DEFAULT_ID),
                  "element %u", i);
        /* Every element waits for prep, through one shared list. */
        CHECK_TRUE(deps_are(&tf, i, (uint32_t[]){0}, 1));
        CHECK_EQ_U(t->dep_off, tf.tasks[1].dep_off);
    }
    CHECK_TRUE(tf.tasks[8].flags & TF_TFT_DEFAULT_ID);
    const tf_tfarray *a = tf_taskfile_array(&tf, 5);
    if (CHECK_TRUE(a != NULL)) {
        CHECK_EQ_U(a->first, 1);
        CHECK_EQ_U(a->n, 7);
        CHECK_EQ_U(a->base_len, 3);
    }
    CHECK_TRUE(tf_taskfile_array(&tf, 0) == NULL);
    /* @after=sim names every element, 3 (a line number) every one of line
     * 3's; sim.1 again is a repeat. */
    CHECK_TRUE(
        deps_are(&tf, 11, (uint32_t[]){1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 10));
    CHECK_TRUE(deps_are(&tf, 13, (uint32_t[]){7, 12}, 2));
    /* 7 elements after prep, agg after 10, tail after 1. */
    CHECK_EQ_U(tf.nafter, 7 + 10 + 1);
    CHECK_EQ_U(tf.max_chain, 4);
    /* The scheduler gets every element's edges. */
    tf_sched s;
    uint32_t base;
    tf_sched_init(&s);
    if (CHECK_RC(tf_taskfile_submit(&tf, &s, 0, &base), TF_OK)) {
        CHECK_EQ_U(s.dag.npend[base + 4], 1);
        CHECK_RC(tf_sched_seal(&s, NULL, 0, NULL), TF_OK);
        CHECK_SCHED(&s);
    }
    tf_sched_free(&s);
    tf_taskfile_free(&tf);

    /*
     * Kinds and patterns: a pattern over the elements' ids names them as
     * the array's name does; the elements share their line's kinds.
     */
    if (PARSE_OK("@id=prep true\n"
                 "@id=sim @array=1-3 @afternotok=prep echo {}\n"
                 "@id=clean @afterany=sim rm\n"
                 "@id=agg @after=sim.* cat\n",
                 &tf)) {
        CHECK_TRUE(deps_are(&tf, 4, (uint32_t[]){1, 2, 3}, 3));
        CHECK_TRUE(deps_are(&tf, 5, (uint32_t[]){1, 2, 3}, 3));
        for (uint32_t i = 1; i <= 3; i++)
            CHECK_EQ_U(tf_taskfile_dep_kind(&tf, i, 0), TF_EDGE_NOTOK);
        CHECK_EQ_U(tf_taskfile_dep_kind(&tf, 4, 2), TF_EDGE_ANY);
        CHECK_EQ_U(tf_taskfile_dep_kind(&tf, 5, 0), TF_EDGE_OK);
        CHECK_EQ_U(tf.nafter, 3 + 3 + 3);
        tf_taskfile_free(&tf);
    }
    EXPECT_ERROR("@id=s @array=1-3 @after=s.* x\n",
                 NAME ":1: @after pattern 's.*' matches no task but this "
                      "line's");
    EXPECT_ERROR("@id=s @array=1-3 @afterany=s.1 x\n",
                 NAME ":1: 's.1' in @afterany is this @array line's own (an "
                      "element cannot wait for its array)");

    /* An array named before its line, and a forward cycle through one. */
    if (PARSE_OK("@after=w x\n@id=w @array=a,b y\n", &tf)) {
        CHECK_TRUE(deps_are(&tf, 0, (uint32_t[]){1, 2}, 2));
        tf_taskfile_free(&tf);
    }
    EXPECT_ERROR("@id=a @after=w x\n@id=w @array=1-2 @after=a y\n",
                 NAME ": dependency cycle: a (line 1) -> w.2 (line 2) -> a "
                      "(line 1)");
}

static void test_array_errors(void)
{
    EXPECT_ERROR("@array=9-3 x\n",
                 NAME ":1: bad item '9-3' in @array (a range that ends "
                      "before it starts)");
    EXPECT_ERROR("@array=1-9:0 x\n",
                 NAME ":1: bad item '1-9:0' in @array (a step of 0)");
    EXPECT_ERROR("@array=1-9%2 x\n",
                 NAME ":1: bad item '1-9%2' in @array (Slurm's %N, a limit "
                      "on running elements, has no equivalent: the run's "
                      "slots are the limit)");
    const char *expected =
        "(expected N, N-M, N-M:STEP or a word of letters, digits, '_', '.', "
        "':' or '-' that starts with a letter or '_')";
    char want[256];
    static const char *const bad_items[] = {"-1",  "1-", "1-2:",  "1x",
                                            "a/b", ".a", "1-2-3", "1:2"};
    for (size_t i = 0; i < sizeof bad_items / sizeof *bad_items; i++) {
        char text[64];
        snprintf(text, sizeof text, "@array=%s x\n", bad_items[i]);
        snprintf(want, sizeof want, NAME ":1: bad item '%s' in @array %s",
                 bad_items[i], expected);
        EXPECT_ERROR(text, want);
    }
    EXPECT_ERROR("@array=1,,2 x\n",
                 NAME ":1: empty item in @array list '1,,2'");
    EXPECT_ERROR("@array= x\n", NAME ":1: @array needs a value (@array=VALUE)");
    EXPECT_ERROR("@array=4294967296 x\n",
                 NAME ":1: bad item '4294967296' in @array (an index past "
                      "4294967295)");
    EXPECT_ERROR("@array=0-4294967295 x\n",
                 NAME ":1: @array of more than 100000000 elements (the most "
                      "tasks a file may hold)");
    EXPECT_ERROR("@id=s @array=1-3,2 x\n",
                 NAME ":1: @array gives the element 's.2' twice");
    EXPECT_ERROR("@id=s x\n@id=s @array=1 y\n",
                 NAME ":2: duplicate id 's' (also on line 1)");
    EXPECT_ERROR("@id=s.1 x\n@id=s @array=1 y\n",
                 NAME ":2: duplicate id 's.1' (also on line 1)");
    EXPECT_ERROR("@id=2 x\n@array=1 y\n",
                 NAME ":2: duplicate id '2' (this line's default id, also "
                      "given on line 1)");
    EXPECT_ERROR("@id=t @array=1-3 @after=t.2 x\n",
                 NAME ":1: 't.2' in @after is this @array line's own (an "
                      "element cannot wait for its array)");
    EXPECT_ERROR("@id=t @array=1-3 @after=t x\n",
                 NAME ":1: 't' in @after is this @array line's own (an "
                      "element cannot wait for its array)");
    EXPECT_ERROR("@array=1 echo {2}\n",
                 NAME ":1: '{2}' in an @array line's command: an array gives "
                      "one value, {} (or {1})");
    EXPECT_ERROR("@array=1 echo {%}\n",
                 NAME ":1: '{%}' in an @array line's command: parallel's job "
                      "slot {%} has no equivalent in taskfarm");
    /* A bad array still names its task: no cascade of unknown ids. */
    tf_tferr err;
    tf_taskfile tf;
    if (CHECK_RC(parse("@id=s @array=5-1 x\n@after=s y\n", &tf, &err),
                 TF_EINVAL))
        CHECK_EQ_U(err.n, 1);
    tf_tferr_free(&err);
    /* The id of the longest element must fit in a file name. */
    char text[400];
    snprintf(text, sizeof text, "@id=%0245d @array=1-100000 x\n", 0);
    snprintf(want, sizeof want,
             NAME ":1: the ids of the elements ('%060d....' and the value) "
                  "reach 252 bytes, longer than 251 (the task's output files "
                  "ID.out and ID.err must fit in a file name of 255 bytes)",
             0);
    EXPECT_ERROR(text, want);
}

/* ------------------------------------------------------------------------ */
/* Scale */

static void report_scale(const char *what, const tf_taskfile *tf, size_t len,
                         double secs)
{
    printf("\n    %s: %u lines, %.1f MB, parsed in %.3f s (%.2f M lines/s, "
           "%.0f MB/s), %.1f bytes/task ",
           what, (unsigned)tf->n, (double)len / 1e6, secs,
           (double)tf->n / secs / 1e6, (double)len / secs / 1e6,
           (double)tf_taskfile_bytes(tf) / (double)tf->ntasks);
}

/* One line, a million tasks: bytes a task, not kilobytes. */
static void test_million_array(void)
{
    static const char text[] =
        "@id=sim @array=1-1000000 ./simulate --input data/in_{}.h5\n"
        "@id=agg @after=sim ./aggregate\n";
    tf_taskfile tf;
    double t0 = now_seconds();
    bool ok = parse_ok_(text, sizeof text - 1, &tf, __FILE__, __LINE__);
    double secs = now_seconds() - t0;
    if (!ok)
        return;
    CHECK_EQ_U(tf.ntasks, 1000001);
    cmd_is(&tf, 999999, "sim.1000000", "./simulate --input data/in_1000000.h5");
    /* 40 of entry, 12 of id, 39 of command, 4 of the aggregate's edge. */
    double per = (double)tf_taskfile_bytes(&tf) / tf.ntasks;
    CHECK_MSG(per < 100, "%.1f bytes/task", per);
    printf("\n    1,000,000-element array: parsed in %.3f s, %.1f bytes/task ",
           secs, per);
    tf_taskfile_free(&tf);
}

static void test_million_lines(void)
{
    const uint32_t n = 1000000;
    size_t cap = (size_t)n * 96;
    char *text = malloc(cap);
    if (!CHECK_TRUE(text != NULL))
        return;
    /* A plain list, as most task files are. */
    size_t len = 0;
    for (uint32_t i = 0; i < n; i++)
        len += (size_t)sprintf(text + len,
                               "./simulate --input data/in_%07u.h5 --seed %u\n",
                               i, i * 7919u % 100003u);
    tf_taskfile tf;
    double t0 = now_seconds();
    bool ok = parse_ok_(text, len, &tf, __FILE__, __LINE__);
    double secs = now_seconds() - t0;
    if (ok) {
        CHECK_EQ_U(tf.ntasks, n);
        CHECK_MSG(!strcmp(tf_taskfile_id(&tf, n - 1), "1000000"), "[%s]",
                  tf_taskfile_id(&tf, n - 1));
        report_scale("plain list", &tf, len, secs);
        tf_taskfile_free(&tf);
    }

    /* Named tasks, each after a recent one, a barrier every 10,000 lines. */
    len = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (i % 10000 == 9999)
            len += (size_t)sprintf(text + len, "@barrier\n");
        else if (i % 10000 == 0)
            len += (size_t)sprintf(text + len, "@id=step%u ./step %u\n", i, i);
        else
            len += (size_t)sprintf(text + len,
                                   "@id=step%u @after=step%u @prio=%u "
                                   "./step %u\n",
                                   i, i - 1 - i % 3 % (i % 10000), i % 5, i);
    }
    t0 = now_seconds();
    ok = parse_ok_(text, len, &tf, __FILE__, __LINE__);
    secs = now_seconds() - t0;
    if (ok) {
        CHECK_EQ_U(tf.nbarriers, n / 10000);
        report_scale("named DAG + barriers", &tf, len, secs);
        tf_taskfile_free(&tf);
    }
    free(text);
}

/* Longest path by memoised depth over the generator's own edges. */
static uint32_t gen_longest(uint32_t n, const uint32_t *order,
                            const uint32_t *poff, const uint32_t *pred)
{
    uint32_t *depth = calloc(n, sizeof *depth), best = 0;
    if (!depth)
        return 0;
    for (uint32_t k = 0; k < n; k++) { /* order: a topological order */
        uint32_t t = order[k], d = 0;
        for (uint32_t j = poff[t]; j < poff[t + 1]; j++)
            if (depth[pred[j]] > d)
                d = depth[pred[j]];
        depth[t] = d + 1;
        if (depth[t] > best)
            best = depth[t];
    }
    free(depth);
    return best;
}

static void check_deps_done(const tf_sched *s, const tf_taskfile *tf,
                            uint32_t base, uint32_t i, void *arg)
{
    uint32_t nd;
    const uint32_t *d = tf_taskfile_deps(tf, i, &nd);
    bool *bad = arg;
    if (*bad)
        return;
    for (uint32_t k = 0; k < nd; k++)
        if (tf_sched_state(s, base + d[k]) != TF_ST_DONE) {
            *bad = true;
            CHECK_MSG(false, "task %u dispatched before its dependency %u", i,
                      d[k]);
            return;
        }
}

/*
 * 10,000 tasks placed in random file order, each depending on up to four
 * tasks that come earlier in a hidden topological order, so about half the
 * references point forward. Some tasks keep their default id.
 */
static void test_random_dag(void)
{
    const uint32_t n = 10000;
    tf_rng r = tf_rng_seeded(2024);
    uint32_t *order = malloc(n * sizeof *order); /* rank -> file index */
    uint32_t *poff = malloc((n + 1) * sizeof *poff);
    uint32_t *pred = malloc((size_t)n * 4 * sizeof *pred);
    char *text = malloc((size_t)n * 128);
    tf_taskfile tf = {0};
    if (!CHECK_TRUE(order && poff && pred && text))
        goto out_with_arrays;
    for (uint32_t i = 0; i < n; i++)
        order[i] = i;
    for (uint32_t i = n - 1; i > 0; i--) {
        uint32_t j = tf_rng_below(&r, i + 1), t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    uint32_t *rank = malloc(n * sizeof *rank);
    if (!CHECK_TRUE(rank != NULL))
        goto out_with_arrays;
    for (uint32_t k = 0; k < n; k++)
        rank[order[k]] = k;
    /* Predecessors of file index t: distinct tasks of lower rank. */
    uint32_t m = 0;
    for (uint32_t t = 0; t < n; t++) {
        poff[t] = m;
        uint32_t want = rank[t] ? tf_rng_below(&r, 5) : 0;
        for (uint32_t k = 0; k < want; k++) {
            uint32_t p = order[tf_rng_below(&r, rank[t])];
            bool dup = false;
            for (uint32_t j = poff[t]; j < m; j++)
                dup |= pred[j] == p;
            if (!dup)
                pred[m++] = p;
        }
    }
    poff[n] = m;
    free(rank);

    /* File index t is on line t + 1; every third task keeps its default id. */
    size_t len = 0;
    uint32_t forward = 0;
    for (uint32_t t = 0; t < n; t++) {
        if (t % 3)
            len += (size_t)sprintf(text + len, "@id=task%u ", t);
        for (uint32_t j = poff[t]; j < poff[t + 1]; j++) {
            uint32_t p = pred[j];
            forward += p > t;
            len += (size_t)sprintf(text + len, j == poff[t] ? "@after=" : ",");
            len += (size_t)(p % 3 ? sprintf(text + len, "task%u", p)
                                  : sprintf(text + len, "%u", p + 1));
        }
        len += (size_t)sprintf(text + len, "%s./work %u\n",
                               poff[t] < poff[t + 1] ? " " : "", t);
    }
    CHECK_MSG(forward > m / 4, "only %u of %u references point forward",
              forward, m);
    if (!parse_ok_(text, len, &tf, __FILE__, __LINE__))
        goto out_with_arrays;
    CHECK_EQ_U(tf.n, n);
    CHECK_EQ_U(tf.nedges, m);
    CHECK_EQ_U(tf.nafter, m);
    for (uint32_t t = 0; t < n; t++)
        if (!CHECK_MSG(deps_are(&tf, t, pred + poff[t], poff[t + 1] - poff[t]),
                       "dependencies of task %u differ", t))
            break;
    CHECK_EQ_U(tf.max_chain, gen_longest(n, order, poff, pred));

    tf_sched s;
    tf_sched_init(&s);
    uint32_t base;
    if (CHECK_RC(tf_taskfile_submit(&tf, &s, 0, &base), TF_OK) &&
        CHECK_RC(tf_sched_seal(&s, NULL, 0, NULL), TF_OK)) {
        CHECK_SCHED(&s);
        bool bad = false;
        drive(&s, &tf, base, 99, false, check_deps_done, &bad);
    }
    tf_sched_free(&s);

    tf_taskfile_free(&tf);

    /*
     * Close a cycle: a new last line waits for some task t, and t's first
     * dependency q, a task with no dependencies of its own, now waits for
     * the new line.
     */
    uint32_t t = 0, q = TF_NONE;
    for (; t < n && q == TF_NONE; t++)
        if (poff[t] < poff[t + 1]) {
            uint32_t c = pred[poff[t]];
            if (poff[c] == poff[c + 1])
                q = c;
        }
    t--;
    char *text2 = malloc(len + 128);
    if (!CHECK_TRUE(q != TF_NONE && text2 != NULL)) {
        free(text2);
        goto out_with_arrays;
    }
    const char *line = text;
    for (uint32_t i = 0; i < q; i++)
        line = strchr(line, '\n') + 1;
    size_t head = (size_t)(line - text);
    size_t l2 = (size_t)sprintf(text2, "%.*s@after=extra ", (int)head, text);
    memcpy(text2 + l2, line, len - head);
    l2 += len - head;
    l2 += (size_t)sprintf(text2 + l2, "@id=extra @after=%s%u x\n",
                          t % 3 ? "task" : "", t % 3 ? t : t + 1);
    tf_tferr err;
    CHECK_RC(tf_taskfile_parse(NAME, text2, l2, &tf, &err), TF_EINVAL);
    if (CHECK_EQ_U(err.n, 1)) {
        CHECK_EQ_I(err.msgs[0].code, TF_ECYCLE);
        CHECK_MSG(strstr(err.msgs[0].text, "extra (line 10001)") != NULL,
                  "[%s]", err.msgs[0].text);
    }
    tf_tferr_free(&err);
    free(text2);
    memset(&tf, 0, sizeof tf);

out_with_arrays:
    tf_taskfile_free(&tf);
    free(text);
    free(pred);
    free(poff);
    free(order);
}

/* ------------------------------------------------------------------------ */
/* Sample files */

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap)
            break;
        char *nb = realloc(buf, cap * 2);
        if (!nb) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = nb;
        cap *= 2;
    }
    fclose(f);
    *len = n;
    return buf;
}

static void test_sample_files(void)
{
    static const char *const good[] = {"plain.txt", "dag.txt", "barrier.txt",
                                       "crlf.txt"};
    static const char *const bad[] = {"bad-errors", "bad-cycle", "bad-empty",
                                      "bad-long-id", "bad-long-cmd"};
    const char *dir = getenv("TASKFARM_TEST_DATA");
    if (!dir)
        dir = "tests/data";
    char path[1024];
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        snprintf(path, sizeof path, "%s/taskfiles/%s", dir, good[i]);
        size_t len;
        char *text = read_file(path, &len);
        if (!CHECK_MSG(text != NULL,
                       "cannot read %s (run from the top of "
                       "the tree or set TASKFARM_TEST_DATA)",
                       path))
            continue;
        tf_taskfile tf;
        tf_tferr err;
        char buf[2048];
        int rc = tf_taskfile_parse(good[i], text, len, &tf, &err);
        CHECK_MSG(rc == 0, "%s: %s%s", good[i], tf_err_name(rc),
                  all_msgs(&err, buf, sizeof buf));
        if (rc == 0)
            tf_taskfile_free(&tf);
        tf_tferr_free(&err);
        free(text);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char name[64];
        size_t len, elen;
        snprintf(name, sizeof name, "%s.txt", bad[i]);
        snprintf(path, sizeof path, "%s/taskfiles/%s.txt", dir, bad[i]);
        char *text = read_file(path, &len);
        snprintf(path, sizeof path, "%s/taskfiles/%s.err", dir, bad[i]);
        char *want = read_file(path, &elen);
        if (CHECK_MSG(text && want, "cannot read %s or its .txt", path)) {
            tf_taskfile tf;
            tf_tferr err;
            CHECK_RC(tf_taskfile_parse(name, text, len, &tf, &err), TF_EINVAL);
            /* The messages, one per line, are the .err file. */
            size_t off = 0;
            bool same = true;
            for (size_t k = 0; k < err.n && same; k++) {
                size_t ml = strlen(err.msgs[k].text);
                same = off + ml < elen &&
                       memcmp(want + off, err.msgs[k].text, ml) == 0 &&
                       want[off + ml] == '\n';
                off += ml + 1;
            }
            char buf[2048];
            CHECK_MSG(same && off == elen, "%s: messages differ from %s:%s",
                      name, path, all_msgs(&err, buf, sizeof buf));
            tf_tferr_free(&err);
        }
        free(want);
        free(text);
    }
}

/* ------------------------------------------------------------------------ */

int main(void)
{
    static const struct {
        const char *name;
        CU_TestFunc fn;
    } tests[] = {
        {"plain list", test_plain},
        {"attributes", test_attributes},
        {"forward references", test_forward_refs},
        {"default ids are line numbers", test_default_ids},
        {"repeated dependencies", test_repeated_deps},
        {"missing final newline", test_missing_final_newline},
        {"CRLF line endings", test_crlf},
        {"comments, blank lines, BOM", test_comments_and_blanks},
        {"barrier semantics", test_barrier},
        {"barriers in random files", test_barrier_random},
        {"error: unknown attribute", test_error_unknown_attribute},
        {"durations", test_durations},
        {"@est", test_est},
        {"@shell", test_shell},
        {"@output", test_output},
        {"error: bad values", test_error_values},
        {"error: duplicate id", test_error_duplicate_id},
        {"error: dependencies", test_error_dependencies},
        {"error: cycle", test_error_cycle},
        {"error: NUL byte, long line", test_error_nul_and_long_line},
        {"error: command too long for the shell", test_error_long_command},
        {"error: no tasks", test_error_no_tasks},
        {"@end", test_end},
        {"no tasks, when asked", test_empty_ok},
        {"errors are collected", test_error_collected},
        {"errors are capped", test_error_cap},
        {"failed parse leaves output alone", test_out_untouched},
        {"submit to the scheduler", test_submit},
        {"random 10k DAG, forward refs", test_random_dag},
        {"1,000,000 lines", test_million_lines},
        {"replacement strings and quoting", test_subst},
        {"@array lines", test_array},
        {"error: @array", test_array_errors},
        {"1,000,000-element array", test_million_array},
        {"sample files", test_sample_files},
    };
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    CU_pSuite suite = CU_add_suite("taskfile", NULL, NULL);
    if (!suite)
        goto out_with_registry;
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++)
        if (!CU_add_test(suite, tests[i].name, tests[i].fn))
            goto out_with_registry;
    return check_run();
out_with_registry:
    CU_cleanup_registry();
    return 2;
}
