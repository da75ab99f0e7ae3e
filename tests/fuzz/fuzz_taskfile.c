/* libFuzzer harness: the task-file parser, and the scheduler it feeds. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sched.h"
#include "taskfarm_status.h"
#include "taskfile.h"

/*
 * Any bytes are a task file. Beyond "no crash, no leak, no undefined
 * behaviour" (the sanitizers), what a parse returns must keep the parser's
 * promises, and a violation aborts, which libFuzzer records as a crash:
 * every message names the file; every id and command is within the limits
 * run can use (taskfile.h); every dependency is a task of the file; and a
 * file the parser accepted is accepted by the scheduler's own cycle check
 * (tf_sched_seal), whose invariants then hold, since check and run must
 * never disagree about which files run.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void broken(const char *what, uint32_t i)
{
    fprintf(stderr, "fuzz_taskfile: broken promise: %s (entry %u)\n", what,
            (unsigned)i);
    abort();
}

static void check_parsed(const tf_taskfile *tf)
{
    if (tf->n != tf->ntasks + tf->nbarriers || tf->ntasks == 0)
        broken("counts", 0);
    for (uint32_t i = 0; i < tf->n; i++) {
        const tf_tftask *t = &tf->tasks[i];
        const char *id = tf_taskfile_id(tf, i), *cmd = tf_taskfile_cmd(tf, i);
        if (strlen(id) != t->id_len || t->id_len > TF_TASKFILE_MAX_ID)
            broken("id length", i);
        if (strlen(cmd) != t->cmd_len || t->cmd_len > TF_TASKFILE_MAX_CMD)
            broken("command length", i);
        if (tf_taskfile_is_barrier(tf, i) != (t->cmd_len == 0))
            broken("barrier without a command", i);
        uint32_t nd;
        const uint32_t *d = tf_taskfile_deps(tf, i, &nd);
        for (uint32_t k = 0; k < nd; k++)
            if (d[k] >= tf->n || d[k] == i)
                broken("dependency", i);
    }
    tf_sched s;
    uint32_t first;
    if (tf_sched_init(&s))
        return;
    int rc = tf_taskfile_submit(tf, &s, 1, &first);
    if (!rc) {
        rc = tf_sched_seal(&s, NULL, 0, NULL);
        if (rc == TF_ECYCLE)
            broken("a cycle the parser accepted", 0);
        char why[256];
        if (!rc && !tf_sched_check(&s, why, sizeof why)) {
            fprintf(stderr, "fuzz_taskfile: %s\n", why);
            broken("scheduler invariant", 0);
        }
    }
    tf_sched_free(&s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tf_taskfile tf;
    tf_tferr err;
    int rc = tf_taskfile_parse("fuzz.txt", (const char *)data, size, &tf, &err);
    for (size_t k = 0; k < err.n; k++)
        if (strncmp(err.msgs[k].text, "fuzz.txt:", 9))
            broken("a message that does not name the file", (uint32_t)k);
    if (rc == 0) {
        if (err.n)
            broken("messages after success", 0);
        check_parsed(&tf);
        tf_taskfile_free(&tf);
    } else if (rc == TF_EINVAL && err.n == 0) {
        broken("an error without a message", 0);
    }
    tf_tferr_free(&err);
    return 0;
}
