/*
 * Lost data is made again: under mpirun --enable-recovery with heartbeats,
 * the last rank kills itself while it holds outputs that tasks still to
 * run read; rank 0 reruns their producers (transitively) and every result
 * is right. Not on the harness: its collectives would wait for the dead
 * rank. Rank 0 prints "ok ..." or "FAIL ..." lines and a summary; every
 * surviving rank leaves with _exit (MPI_Finalize can hang with a dead
 * peer under Open MPI 4.1). Run with np >= 3.
 */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mpi.h>

#include "taskfarm.h"

enum { L = 6, W = 8, WORDS = 4096 };

static int victim;
static int fails;

#define CHECK(cond, ...)                                                       \
    do {                                                                       \
        if (cond) {                                                            \
            printf("ok   ");                                                   \
        } else {                                                               \
            printf("FAIL ");                                                   \
            fails++;                                                           \
        }                                                                      \
        printf(__VA_ARGS__);                                                   \
        printf("\n");                                                          \
    } while (0)

static uint64_t mix(uint64_t a, uint64_t b, uint64_t c)
{
    uint64_t h = a * 0x9E3779B97F4A7C15ull ^ (b + 0x632BE59BD9B4E019ull);
    h ^= h >> 29;
    return h * 0xBF58476D1CE4E5B9ull + c;
}

/* Input: (layer, i). Reads 0 or 2 blocks; writes a block from their seeds. */
static int layer_task(tf_task_ctx *ctx, const void *in, size_t len, void *u)
{
    (void)u;
    uint32_t li[2];
    if (len != sizeof li)
        return 90;
    memcpy(li, in, sizeof li);
    /* The victim dies at its first layer-3 task, holding layer-2 blocks. */
    if (li[0] == 3 && tf_task_rank(ctx) == victim && tf_task_attempt(ctx) == 1)
        raise(SIGKILL);
    uint64_t seed[2] = {0, 0};
    for (size_t d = 0; d < tf_task_ndeps(ctx) && d < 2; d++) {
        const void *buf;
        size_t n;
        if (tf_task_dep_output(ctx, d, &buf, &n) || n != WORDS * 8)
            return 91;
        const uint64_t *w = buf;
        for (uint32_t k = 1; k < WORDS; k++)
            if (w[k] != w[0] + k)
                return 92;
        seed[d] = w[0];
    }
    uint64_t *out;
    if (tf_task_output_alloc(ctx, 0, WORDS * 8, (void **)&out))
        return 93;
    out[0] = mix(seed[0], seed[1], (uint64_t)li[0] * W + li[1]);
    for (uint32_t k = 1; k < WORDS; k++)
        out[k] = out[0] + k;
    return 0;
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    victim = size - 1;
    tf_config cfg;
    tf_config_init(&cfg);
    cfg.heartbeat_ms = 3000; /* a loaded 2-core CI machine */
    tf_runtime *rt;
    if (tf_init(MPI_COMM_WORLD, &cfg, &rt))
        _exit(3);
    tf_fn_id fn;
    tf_register(rt, "layer", layer_task, NULL, &fn);
    tf_task_id id[L][W];
    if (rank == 0) {
        for (uint32_t l = 0; l < L; l++)
            for (uint32_t i = 0; i < W; i++) {
                uint32_t li[2] = {l, i};
                tf_task_id deps[2];
                tf_task_desc d;
                tf_task_desc_init(&d, fn);
                d.input = li;
                d.input_len = sizeof li;
                if (l) {
                    deps[0] = id[l - 1][i];
                    deps[1] = id[l - 1][(i + 1) % W];
                    d.deps = deps;
                    d.ndeps = 2;
                }
                /* Half of layers 1-3 on the victim, the rest on rank 1. */
                if (l >= 1 && l <= 3)
                    d.rank = i % 2 ? victim : 1;
                if (tf_submit(rt, &d, &id[l][i]))
                    _exit(3);
            }
    }
    int rc = tf_run(rt);
    if (rank != 0) {
        fflush(stdout);
        _exit(rc ? 1 : 0);
    }
    CHECK(rc == 0, "lineage: the run ends well (%s)", tf_strerror(rc));
    /* The same DAG, serially. */
    uint64_t seed[L][W];
    for (uint32_t l = 0; l < L; l++)
        for (uint32_t i = 0; i < W; i++)
            seed[l][i] = mix(l ? seed[l - 1][i] : 0,
                             l ? seed[l - 1][(i + 1) % W] : 0,
                             (uint64_t)l * W + i);
    int right = 0;
    for (uint32_t i = 0; i < W; i++) {
        const void *buf;
        size_t n;
        if (!tf_task_output(rt, id[L - 1][i], &buf, &n) && n == WORDS * 8 &&
            ((const uint64_t *)buf)[0] == seed[L - 1][i])
            right++;
    }
    CHECK(right == W, "lineage: %d of %d results right", right, W);
    int done = 0;
    for (uint32_t l = 0; l < L; l++)
        for (uint32_t i = 0; i < W; i++) {
            tf_task_info info;
            done += !tf_task_info_get(rt, id[l][i], &info) &&
                    info.state == TF_TASK_DONE;
        }
    CHECK(done == L * W, "lineage: %d of %d tasks done", done, L * W);
    tf_stats st;
    tf_get_stats(rt, &st);
    CHECK(st.lost_ranks == 1, "lineage: %" PRIu64 " rank lost",
          st.lost_ranks);
    CHECK(st.reruns > 0, "lineage: %" PRIu64 " tasks ran again for lost "
          "outputs", st.reruns);
    printf("test_lineage: %d failed\n", fails);
    fflush(stdout);
    _exit(fails ? 1 : 0);
}
