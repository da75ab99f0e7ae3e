/* taskfarm topo: the map of ranks to hosts, cores and NUMA domains, with warnings; run's overlap check. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "place/locality.h"
#include "place/topo.h"
#include "taskfarm_status.h"

/* Warnings about overlaps beyond this many are counted, not printed. */
#define MAX_OVERLAP_LINES 20

/*
 * Every rank's locality line, parsed, on every rank (one process: its own).
 * A rank whose topology could not be read sends a line without cpus, which
 * fails to parse: *bad is then the first such rank. Collective under MPI.
 * Returns 0, or a TF_E* code (the same on every rank).
 */
static int share_localities(const tf_topo *t, tf_runtime *rt,
                            tf_locality **out, int *bad)
{
    int size = tf_size(rt);
    if (!t && size == 1)
        return TF_EIO;
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    for (char *c = host; *c; c++)
        if (*c == ' ' || *c == '\t')
            *c = '_';
    char *mine = NULL;
    int rc = t ? tf_topo_locality(t, host, &mine) : 0;
    if (rc && size == 1)
        return rc;
    char *all = NULL;
    rc = tf_allgather_text(rt, mine ? mine : "", &all, NULL);
    free(mine);
    if (rc)
        return rc;
    tf_locality *loc = calloc((size_t)size, sizeof *loc);
    if (!loc) {
        free(all);
        return TF_ENOMEM;
    }
    *bad = -1;
    const char *s = all;
    for (int r = 0; r < size; r++, s += strlen(s) + 1) {
        rc = tf_locality_parse(s, &loc[r]);
        if (rc == TF_ENOMEM)
            break;
        if (rc) {
            /* Unparsable: keep the slot usable, remember who. */
            if (*bad < 0)
                *bad = r;
            rc = tf_locality_parse("host=? cpus= numa=", &loc[r]);
            if (rc)
                break;
        }
    }
    free(all);
    if (rc) {
        for (int r = 0; r < size; r++)
            tf_locality_free(&loc[r]);
        free(loc);
        return rc;
    }
    *out = loc;
    return 0;
}

static void free_localities(tf_locality *loc, int size)
{
    if (!loc)
        return;
    for (int r = 0; r < size; r++)
        tf_locality_free(&loc[r]);
    free(loc);
}

/* "0 and 1" for two ranks, else ranges: "0-3,7". */
static void format_ranks(const int *r, int n, char *buf, size_t len)
{
    size_t off = 0;
    buf[0] = 0;
    if (n == 2) {
        snprintf(buf, len, "%d and %d", r[0], r[1]);
        return;
    }
    for (int i = 0; i < n && off < len; i++) {
        int j = i;
        while (j + 1 < n && r[j + 1] == r[j] + 1)
            j++;
        int k = j > i ? snprintf(buf + off, len - off, "%s%d-%d",
                                 off ? "," : "", r[i], r[j])
                      : snprintf(buf + off, len - off, "%s%d", off ? "," : "",
                                 r[i]);
        if (k < 0)
            break;
        off += (size_t)k;
        i = j;
    }
}

/*
 * Warn, on stderr, about ranks [first, size) that may run on the same PUs:
 * those with identical cpus in one line per group, partial overlaps one per
 * pair. Returns how many ranks overlap another. mark (may be NULL) gets
 * true for each of them.
 */
static int warn_overlaps(const tf_locality *loc, int first, int size,
                         const char *prefix, bool *mark)
{
    int *grp = malloc(sizeof *grp * (size_t)size);
    bool *seen = calloc((size_t)size, sizeof *seen);
    int noverlap = 0, lines = 0, hidden = 0;
    char ranks[256], cpus[256];
    if (!grp || !seen) {
        free(grp);
        free(seen);
        return -1;
    }
    for (int i = first; i < size; i++) {
        if (seen[i])
            continue;
        int n = 0;
        grp[n++] = i;
        for (int j = i + 1; j < size; j++)
            if (!seen[j] && tf_locality_same_cpus(&loc[i], &loc[j]))
                grp[n++] = j, seen[j] = true;
        if (n < 2)
            continue;
        seen[i] = true;
        for (int k = 0; k < n; k++)
            if (mark)
                mark[grp[k]] = true;
        noverlap += n;
        format_ranks(grp, n, ranks, sizeof ranks);
        fprintf(stderr, "%swarning: ranks %s share cpus %s on host %s\n",
                prefix, ranks, loc[i].cpus, loc[i].host);
        lines++;
    }
    for (int i = first; i < size; i++)
        for (int j = i + 1; j < size; j++) {
            if (tf_locality_same_cpus(&loc[i], &loc[j]) ||
                !tf_locality_overlap(&loc[i], &loc[j], cpus, sizeof cpus))
                continue;
            if (mark) {
                noverlap += !mark[i] + !mark[j];
                mark[i] = mark[j] = true;
            }
            if (lines++ < MAX_OVERLAP_LINES)
                fprintf(stderr,
                        "%swarning: ranks %d and %d share cpus %s "
                        "on host %s\n",
                        prefix, i, j, cpus, loc[i].host);
            else
                hidden++;
        }
    if (hidden)
        fprintf(stderr, "%swarning: %d more pairs of ranks share cpus\n",
                prefix, hidden);
    free(grp);
    free(seen);
    return noverlap;
}

/* Hosts and rank counts, printed once per host, in order of first rank. */
static void print_hosts(const tf_locality *loc, int size, int *per_host)
{
    for (int r = 0; r < size; r++) {
        int first = r, n = 0;
        for (int q = 0; q < size; q++)
            if (!strcmp(loc[q].host, loc[r].host)) {
                if (q < first)
                    first = q;
                n++;
            }
        per_host[r] = n;
        if (first != r)
            continue;
        const unsigned *m = loc[r].machine;
        printf("host %s: %u package%s, %u NUMA node%s, %u cores, %u PUs "
               "(topology: %s); %d rank%s\n",
               loc[r].host, m[0], m[0] == 1 ? "" : "s", m[1],
               m[1] == 1 ? "" : "s", m[2], m[3], loc[r].source, n,
               n == 1 ? "" : "s");
    }
}

static void report(const tf_locality *loc, int size)
{
    int hw = 4, cw = 4, nw = 4;
    for (int r = 0; r < size; r++) {
        int h = (int)strlen(loc[r].host), c = (int)strlen(loc[r].cpus),
            n = (int)strlen(loc[r].numa);
        hw = h > hw ? h : hw;
        cw = c > cw ? c : cw;
        nw = n > nw ? n : nw;
    }
    int *per_host = malloc(sizeof *per_host * (size_t)size);
    int *unbound = malloc(sizeof *unbound * (size_t)size);
    if (!per_host || !unbound) {
        free(per_host);
        free(unbound);
        fprintf(stderr, "taskfarm topo: out of memory\n");
        return;
    }
    print_hosts(loc, size, per_host);
    printf("%-5s %-*s %-*s %5s %5s %-*s %s\n", "rank", hw, "host", cw, "cpus",
           "cores", "PUs", nw, "NUMA", "bound");
    for (int r = 0; r < size; r++)
        printf("%-5d %-*s %-*s %5u %5u %-*s %s\n", r, hw, loc[r].host, cw,
               loc[r].cpus, loc[r].ncores, loc[r].npus, nw,
               *loc[r].numa ? loc[r].numa : "-", loc[r].bound ? "yes" : "no");
    fflush(stdout);
    warn_overlaps(loc, 0, size, "taskfarm topo: ", NULL);
    /*
     * An unbound rank alone on its host is fine: it has the machine. Next
     * to others, the kernel may move it onto their cores at any time.
     */
    for (int r = 0; r < size; r++) {
        if (per_host[r] < 2 || loc[r].bound)
            continue;
        bool first = true;
        for (int q = 0; q < r; q++)
            first &= !!strcmp(loc[q].host, loc[r].host);
        if (!first)
            continue;
        int n = 0;
        for (int q = r; q < size; q++)
            if (!loc[q].bound && !strcmp(loc[q].host, loc[r].host))
                unbound[n++] = q;
        char ranks[256];
        format_ranks(unbound, n, ranks, sizeof ranks);
        fprintf(stderr,
                "taskfarm topo: warning: %s %s %s not bound: on "
                "host %s (%d ranks) %s run on any of its cpus; "
                "bind ranks with mpirun --bind-to core (or numa), "
                "srun --cpu-bind=cores\n",
                n == 1 ? "rank" : "ranks", ranks, n == 1 ? "is" : "are",
                loc[r].host, per_host[r], n == 1 ? "it may" : "each may");
    }
    free(per_host);
    free(unbound);
}

static void topo_usage(FILE *out)
{
    fprintf(out, "usage: taskfarm topo\n"
                 "Print, for this launch (under mpirun or srun, or as one "
                 "process), each rank's\nhost, cpus (PU OS indexes), cores, "
                 "NUMA nodes and whether the launcher bound\nit; warn about "
                 "ranks that share cpus or are not bound. hwloc's "
                 "HWLOC_SYNTHETIC\nand HWLOC_XMLFILE replace this machine's "
                 "topology.\n");
}

int cli_topo(int argc, char **argv)
{
    if (argc > 1) {
        bool help = !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help");
        topo_usage(help ? stdout : stderr);
        return help ? EXIT_ALL_OK : EXIT_USAGE;
    }
    tf_runtime *rt;
    int rc = tf_boot(&argc, &argv, TF_BOOT_OWN_PROCESS, NULL, &rt);
    if (rc) {
        fprintf(stderr, "taskfarm topo: cannot start: %s\n", tf_strerror(rc));
        return rc == TF_EINVAL ? EXIT_USAGE : EXIT_RUNTIME;
    }
    int rank = tf_rank(rt), size = tf_size(rt);
    tf_topo *t = NULL;
    int trc = tf_topo_load(&t);
    if (trc)
        fprintf(stderr,
                "taskfarm topo: rank %d: cannot read the topology: "
                "%s\n",
                rank, tf_strerror(trc));
    tf_locality *loc = NULL;
    int bad = -1;
    rc = share_localities(trc ? NULL : t, rt, &loc, &bad);
    int status = EXIT_ALL_OK;
    if (rc) {
        if (rank == 0)
            fprintf(stderr,
                    "taskfarm topo: cannot gather the ranks' "
                    "topologies: %s\n",
                    tf_strerror(rc));
        status = EXIT_RUNTIME;
    } else if (rank == 0) {
        report(loc, size);
        if (bad >= 0)
            status = EXIT_RUNTIME;
    }
    free_localities(loc, size);
    tf_topo_free(t);
    /* Every rank exits with rank 0's verdict, as taskfarm run does. */
    if (tf_agree(rt, &status))
        status = EXIT_RUNTIME;
    tf_finalize(&rt);
    return status;
}

int cli_check_overlap(const tf_topo *t, tf_runtime *rt, bool *overlap)
{
    tf_locality *loc = NULL;
    int bad = -1, rank = tf_rank(rt), size = tf_size(rt);
    int rc = share_localities(t, rt, &loc, &bad);
    if (rc)
        return rc;
    bool *mark = calloc((size_t)size, sizeof *mark);
    if (!mark) {
        free_localities(loc, size);
        return TF_ENOMEM;
    }
    /* Only the ranks that run tasks count: rank 0 may only schedule. */
    int first = size > 1 && !tf_rank_slots(rt, 0) ? 1 : 0;
    if (rank == 0)
        warn_overlaps(loc, first, size, "taskfarm: ", mark);
    else
        for (int q = first; q < size; q++)
            if (q != rank && tf_locality_overlap(&loc[rank], &loc[q], NULL, 0))
                mark[rank] = true;
    bool any = false;
    for (int q = first; q < size; q++)
        any |= mark[q];
    *overlap = rank == 0 && first ? any : mark[rank];
    free(mark);
    free_localities(loc, size);
    return 0;
}
