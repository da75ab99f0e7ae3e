/* Placement tests on machines we don't have: the plan, the placer, localities, binding, NUMA memory. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>
#include <CUnit/CUnit.h>

#include "../unit/check.h"
#include "place/bind.h"
#include "place/locality.h"
#include "place/plan.h"
#include "place/topo.h"
#include "place/topo_hw.h"

/* Where tests/data/topologies is; main() takes it from argv[1]. */
static const char *topo_dir = "tests/data/topologies";

static tf_topo *synthetic(const char *desc)
{
    tf_topo *t = NULL;
    int rc = tf_topo_load_synthetic(desc, &t);
    CHECK_MSG(rc == 0, "load '%s': %s", desc, tf_strerror(rc));
    return t;
}

static tf_topo *xml(const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", topo_dir, name);
    tf_topo *t = NULL;
    int rc = tf_topo_load_xml(path, &t);
    CHECK_MSG(rc == 0, "load %s: %s", path, tf_strerror(rc));
    return t;
}

/* The OS indexes of picked PUs, as "0,2,4", and their domains' NUMA OS indexes.
 */
static void describe(const tf_plan_view *v, const size_t *idx, size_t n,
                     char *cores, size_t clen, char *numa, size_t nlen)
{
    size_t off = 0;
    cores[0] = numa[0] = 0;
    for (size_t i = 0; i < n && off < clen; i++)
        off += (size_t)snprintf(cores + off, clen - off, i ? ",%d" : "%d",
                                v->pu[idx[i]].os);
    off = 0;
    for (size_t d = 0; d < v->ndomains; d++) {
        bool used = false;
        for (size_t i = 0; i < n; i++)
            used |= v->pu[idx[i]].domain == (int)d;
        if (used && off < nlen)
            off += (size_t)snprintf(numa + off, nlen - off, off ? ",%d" : "%d",
                                    v->domain_os[d]);
    }
}

/* Pick n on an idle view and compare with the expected cores and NUMA nodes. */
static void expect_pick(const tf_plan_view *v, const unsigned *load, size_t n,
                        const char *want_cores, const char *want_numa)
{
    size_t *idx = malloc(sizeof *idx * (n ? n : 1));
    char cores[2048], numa[256];
    size_t got = tf_plan_pick(v, load, n, idx);
    describe(v, idx, got, cores, sizeof cores, numa, sizeof numa);
    CHECK_MSG(!strcmp(cores, want_cores), "pick %zu: cores %s, want %s", n,
              cores, want_cores);
    CHECK_MSG(!strcmp(numa, want_numa), "pick %zu: NUMA %s, want %s", n, numa,
              want_numa);
    free(idx);
}

/* "a-b" as the comma list a,a+step,...,b (expected-value builder). */
static void seq(char *buf, size_t len, int a, int b, int step)
{
    size_t off = strlen(buf);
    for (int i = a; i <= b && off < len; i += step)
        off += (size_t)snprintf(buf + off, len - off, off ? ",%d" : "%d", i);
}

static void test_view_synthetic(void)
{
    tf_topo *t = synthetic("pack:2 numa:2 core:8 pu:2");
    if (!t)
        return;
    tf_plan_view v;
    CHECK_RC(tf_topo_view(t, &v), 0);
    CHECK_EQ_U(v.npu, 64);
    CHECK_EQ_U(v.ncores, 32);
    CHECK_EQ_U(v.ndomains, 4);
    for (size_t i = 0; i < v.npu; i++) {
        if (!CHECK_EQ_I(v.pu[i].domain, (int)(i / 16)))
            break;
        /* Both PUs of a core are adjacent, the first one first. */
        if (!CHECK_EQ_I(v.pu[i].core, v.pu[i & ~(size_t)1].core))
            break;
    }
    for (size_t d = 0; d < v.ndomains; d++)
        CHECK_EQ_I(v.domain_os[d], (int)d);
    CHECK_FALSE(tf_topo_is_thissystem(t));
    CHECK_FALSE(tf_topo_is_bound(t));
    tf_plan_view_free(&v);
    tf_topo_free(t);
}

static void test_plan_idle_smt(void)
{
    tf_topo *t = synthetic("pack:2 numa:2 core:8 pu:2");
    if (!t)
        return;
    tf_plan_view v;
    CHECK_RC(tf_topo_view(t, &v), 0);
    unsigned *load = calloc(v.npu, sizeof *load);
    char want[1024];
    expect_pick(&v, load, 1, "0", "0");
    /* Whole cores: the first PU of each, never both PUs of one core. */
    want[0] = 0, seq(want, sizeof want, 0, 14, 2);
    expect_pick(&v, load, 8, want, "0");
    /* 10 whole cores: 8 of domain 0 and 2 of domain 1, not 10 hyperthreads. */
    want[0] = 0, seq(want, sizeof want, 0, 18, 2);
    expect_pick(&v, load, 10, want, "0,1");
    want[0] = 0, seq(want, sizeof want, 0, 62, 2);
    expect_pick(&v, load, 32, want, "0,1,2,3");
    /* More than the whole cores: fewest domains of PUs, whole cores first. */
    want[0] = 0, seq(want, sizeof want, 0, 31, 1),
    seq(want, sizeof want, 32, 46, 2);
    expect_pick(&v, load, 40, want, "0,1,2");
    want[0] = 0, seq(want, sizeof want, 0, 63, 1);
    expect_pick(&v, load, 64, want, "0,1,2,3");
    /* More than the rank has (--slots above its PUs): all of them. */
    expect_pick(&v, load, 100, want, "0,1,2,3");
    free(load);
    tf_plan_view_free(&v);
    tf_topo_free(t);
}

static void test_plan_idle_nosmt(void)
{
    tf_topo *t = synthetic("pack:2 numa:4 core:16 pu:1");
    if (!t)
        return;
    tf_plan_view v;
    CHECK_RC(tf_topo_view(t, &v), 0);
    CHECK_EQ_U(v.npu, 128);
    CHECK_EQ_U(v.ndomains, 8);
    unsigned *load = calloc(v.npu, sizeof *load);
    char want[1024] = "";
    seq(want, sizeof want, 0, 15, 1);
    expect_pick(&v, load, 16, want, "0");
    want[0] = 0, seq(want, sizeof want, 0, 16, 1);
    expect_pick(&v, load, 17, want, "0,1");
    want[0] = 0, seq(want, sizeof want, 0, 47, 1);
    expect_pick(&v, load, 48, want, "0,1,2");
    free(load);
    tf_plan_view_free(&v);
    tf_topo_free(t);
}

/* Tasks come and go: the placer keeps them compact and apart. */
static void test_placer_busy(void)
{
    tf_topo *t = synthetic("pack:2 numa:2 core:8 pu:2");
    tf_placer *pl = NULL;
    if (!t || !CHECK_RC(tf_placer_new(t, TF_BIND_NONE, &pl), 0)) {
        tf_topo_free(t);
        return;
    }
    tf_place a, b, c, d;
    char cores[1024], numa[64];
    /* Two 1-core tasks on cores 0 and 1 of domain 0. */
    CHECK_RC(tf_placer_acquire(pl, 1, &a), 0);
    CHECK_RC(tf_placer_acquire(pl, 1, &b), 0);
    tf_place_format(pl, &b, cores, sizeof cores, numa, sizeof numa);
    CHECK_MSG(!strcmp(cores, "2") && !strcmp(numa, "0"), "b: %s %s", cores,
              numa);
    /* 6 cores still fit domain 0 (best fit: the fullest that fits). */
    CHECK_RC(tf_placer_acquire(pl, 6, &c), 0);
    tf_place_format(pl, &c, cores, sizeof cores, numa, sizeof numa);
    CHECK_MSG(!strcmp(cores, "4,6,8,10,12,14") && !strcmp(numa, "0"),
              "c: %s %s", cores, numa);
    /* Domain 0 has no whole core left: 4 cores go to domain 1, whole. */
    CHECK_RC(tf_placer_acquire(pl, 4, &d), 0);
    tf_place_format(pl, &d, cores, sizeof cores, numa, sizeof numa);
    CHECK_MSG(!strcmp(cores, "16,18,20,22") && !strcmp(numa, "1"), "d: %s %s",
              cores, numa);
    /* A's core frees; a 4-core task prefers domain 1's 4 whole cores to a
       hole of 1 whole core plus hyperthreads in domain 0. */
    tf_placer_release(pl, &a);
    tf_place e;
    CHECK_RC(tf_placer_acquire(pl, 4, &e), 0);
    tf_place_format(pl, &e, cores, sizeof cores, numa, sizeof numa);
    CHECK_MSG(!strcmp(cores, "24,26,28,30") && !strcmp(numa, "1"), "e: %s %s",
              cores, numa);
    /* And a 1-core task takes the freed whole core 0. */
    CHECK_RC(tf_placer_acquire(pl, 1, &a), 0);
    tf_place_format(pl, &a, cores, sizeof cores, numa, sizeof numa);
    CHECK_MSG(!strcmp(cores, "0"), "a again: %s", cores);
    tf_placer_release(pl, &a);
    tf_placer_release(pl, &b);
    tf_placer_release(pl, &c);
    tf_placer_release(pl, &d);
    tf_placer_release(pl, &e);
    CHECK_RC(tf_placer_acquire(pl, 0, &a), TF_EINVAL);
    tf_placer_free(pl);
    tf_topo_free(t);
}

/* Hyperthreads only once every whole core is taken; sharing only past the PUs.
 */
static void test_placer_fill(void)
{
    tf_topo *t = synthetic("pack:1 numa:2 core:4 pu:2");
    tf_placer *pl = NULL;
    if (!t || !CHECK_RC(tf_placer_new(t, TF_BIND_CORE, &pl), 0)) {
        tf_topo_free(t);
        return;
    }
    tf_place p[20];
    int seen[16] = {0};
    char cores[64], numa[16];
    for (int i = 0; i < 16; i++) {
        CHECK_RC(tf_placer_acquire(pl, 1, &p[i]), 0);
        tf_place_format(pl, &p[i], cores, sizeof cores, numa, sizeof numa);
        int os = atoi(cores);
        /* 8 whole cores (even PUs) first, then their siblings (odd). */
        CHECK_MSG(i < 8 ? os % 2 == 0 : os % 2 == 1, "task %d got PU %d", i,
                  os);
        if (os >= 0 && os < 16)
            seen[os]++;
    }
    for (int i = 0; i < 16; i++)
        CHECK_MSG(seen[i] == 1, "PU %d used by %d tasks", i, seen[i]);
    /* The 17th shares the least loaded PU: with all at 1, the first. */
    CHECK_RC(tf_placer_acquire(pl, 1, &p[16]), 0);
    tf_place_format(pl, &p[16], cores, sizeof cores, numa, sizeof numa);
    CHECK_MSG(!strcmp(cores, "0"), "17th task: %s", cores);
    for (int i = 0; i <= 16; i++)
        tf_placer_release(pl, &p[i]);
    tf_placer_free(pl);
    tf_topo_free(t);
}

/*
 * Random arrivals and departures on every test topology: whenever the tasks
 * fit, no PU is shared; a task gets whole free cores when there are enough,
 * and a single NUMA domain when one has enough whole free cores.
 */
static void random_walk(tf_topo *t, const char *name)
{
    tf_plan_view v;
    if (!CHECK_RC(tf_topo_view(t, &v), 0))
        return;
    unsigned *load = calloc(v.npu, sizeof *load);
    size_t *idx = malloc(sizeof *idx * v.npu);
    enum { LIVE = 64 };
    size_t *held[LIVE] = {0}, held_n[LIVE] = {0};
    uint64_t x = 88172645463325252ull; /* xorshift: fixed seed, replayable */
    size_t used = 0;
    for (int step = 0; step < 3000 && load && idx; step++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        int slot = (int)(x % LIVE);
        if (held[slot]) {
            for (size_t i = 0; i < held_n[slot]; i++)
                load[held[slot][i]]--;
            used -= held_n[slot];
            free(held[slot]);
            held[slot] = NULL;
            continue;
        }
        size_t n = 1 + (size_t)((x >> 20) % (v.npu / 4 + 1));
        if (used + n > v.npu)
            continue; /* the pool would not start it */
        /* What the whole free cores allow, before the pick. */
        size_t whole_total = 0, whole_max = 0;
        for (size_t d = 0; d < v.ndomains; d++) {
            size_t w = 0;
            for (size_t i = 0; i < v.npu; i++) {
                if (v.pu[i].domain != (int)d ||
                    (i > 0 && v.pu[i - 1].core == v.pu[i].core))
                    continue;
                bool free_core = true;
                for (size_t k = i; k < v.npu && v.pu[k].core == v.pu[i].core;
                     k++)
                    free_core &= load[k] == 0;
                w += free_core;
            }
            whole_total += w;
            whole_max = w > whole_max ? w : whole_max;
        }
        size_t got = tf_plan_pick(&v, load, n, idx);
        if (!CHECK_EQ_U(got, n))
            break;
        bool ok = true;
        int dom = v.pu[idx[0]].domain;
        bool one_domain = true;
        for (size_t i = 0; i < got; i++) {
            ok &= load[idx[i]] == 0;
            one_domain &= v.pu[idx[i]].domain == dom;
            for (size_t k = 0; k < i; k++)
                if (n <= whole_total)
                    ok &= v.pu[idx[k]].core != v.pu[idx[i]].core;
        }
        if (!CHECK_MSG(ok, "%s step %d: %zu PUs shared or split cores", name,
                       step, n))
            break;
        if (n <= whole_max &&
            !CHECK_MSG(one_domain,
                       "%s step %d: %zu cores split over domains "
                       "though one has %zu whole free cores",
                       name, step, n, whole_max))
            break;
        held[slot] = malloc(sizeof *held[slot] * got);
        if (!held[slot])
            break;
        memcpy(held[slot], idx, sizeof *idx * got);
        held_n[slot] = got;
        for (size_t i = 0; i < got; i++)
            load[idx[i]]++;
        used += got;
    }
    for (int i = 0; i < LIVE; i++)
        free(held[i]);
    free(idx);
    free(load);
    tf_plan_view_free(&v);
}

static void test_plan_random(void)
{
    static const char *const syn[] = {"pack:2 numa:2 core:8 pu:2",
                                      "pack:2 numa:4 core:16 pu:1",
                                      "pack:1 numa:3 core:5 pu:4"};
    static const char *const files[] = {"amd-epyc-2x64-nps4.xml",
                                        "intel-xeon-2x24-snc2.xml",
                                        "fujitsu-a64fx.xml"};
    for (size_t i = 0; i < 3; i++) {
        tf_topo *t = synthetic(syn[i]);
        if (t)
            random_walk(t, syn[i]);
        tf_topo_free(t);
        t = xml(files[i]);
        if (t)
            random_walk(t, files[i]);
        tf_topo_free(t);
    }
}

/* Recorded node types: Linux numbers sibling hyperthreads apart. */
static void test_plan_xml(void)
{
    static const struct {
        const char *file;
        size_t npu, ncores, ndomains, n;
        int last_first; /* OS index of the last of n whole cores */
        const char *numa;
    } cases[] = {
        {"amd-epyc-2x64-nps4.xml", 256, 128, 8, 16, 15, "0"},
        {"amd-epyc-2x64-nps4.xml", 256, 128, 8, 32, 31, "0,1"},
        {"intel-xeon-2x24-snc2.xml", 96, 48, 4, 12, 11, "0"},
        {"intel-xeon-2x24-snc2.xml", 96, 48, 4, 24, 23, "0,1"},
        {"fujitsu-a64fx.xml", 48, 48, 4, 13, 12, "0,1"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        tf_topo *t = xml(cases[c].file);
        if (!t)
            continue;
        tf_plan_view v;
        CHECK_RC(tf_topo_view(t, &v), 0);
        CHECK_EQ_U(v.npu, cases[c].npu);
        CHECK_EQ_U(v.ncores, cases[c].ncores);
        CHECK_EQ_U(v.ndomains, cases[c].ndomains);
        unsigned *load = calloc(v.npu, sizeof *load);
        char want[1024] = "";
        seq(want, sizeof want, 0, cases[c].last_first, 1);
        expect_pick(&v, load, cases[c].n, want, cases[c].numa);
        free(load);
        tf_plan_view_free(&v);
        tf_topo_free(t);
    }
    /* EPYC: with all 128 cores busy, the next task gets core 0's sibling,
     * P#128. */
    tf_topo *t = xml("amd-epyc-2x64-nps4.xml");
    tf_placer *pl = NULL;
    if (t && CHECK_RC(tf_placer_new(t, TF_BIND_NONE, &pl), 0)) {
        tf_place all, one;
        char cores[2048], numa[64];
        CHECK_RC(tf_placer_acquire(pl, 128, &all), 0);
        CHECK_RC(tf_placer_acquire(pl, 1, &one), 0);
        tf_place_format(pl, &one, cores, sizeof cores, numa, sizeof numa);
        CHECK_MSG(!strcmp(cores, "128") && !strcmp(numa, "0"), "%s %s", cores,
                  numa);
        tf_placer_release(pl, &one);
        tf_placer_release(pl, &all);
    }
    tf_placer_free(pl);
    tf_topo_free(t);
}

/* A rank bound to part of a node plans within its part. */
static void test_restrict(void)
{
    tf_topo *t = synthetic("pack:2 numa:2 core:4 pu:2");
    if (!t)
        return;
    int mine[8] = {8, 9, 10, 11, 12, 13, 14, 15}; /* domain 1 */
    CHECK_RC(tf_topo_restrict(t, mine, 8), 0);
    CHECK_TRUE(tf_topo_is_bound(t));
    int none[1] = {999};
    CHECK_RC(tf_topo_restrict(t, none, 1), TF_EINVAL);
    size_t n;
    const int *cpus = tf_topo_cpus(t, &n);
    CHECK_EQ_U(n, 8);
    CHECK_EQ_I(cpus[0], 8);
    tf_plan_view v;
    CHECK_RC(tf_topo_view(t, &v), 0);
    CHECK_EQ_U(v.npu, 8);
    CHECK_EQ_U(v.ndomains, 1);
    CHECK_EQ_I(v.domain_os[0], 1);
    unsigned load[8] = {0};
    expect_pick(&v, load, 2, "8,10", "1");
    tf_plan_view_free(&v);
    tf_topo_free(t);
}

static int parse_line(tf_topo *t, const char *host, tf_locality *l)
{
    char *line = NULL;
    int rc = tf_topo_locality(t, host, &line);
    if (!rc)
        rc = tf_locality_parse(line, l);
    free(line);
    return rc;
}

static void test_locality(void)
{
    const char *desc = "pack:2 numa:2 core:4 pu:2";
    tf_topo *a = synthetic(desc), *b = synthetic(desc), *c = synthetic(desc);
    if (!a || !b || !c)
        goto out;
    int d0[2] = {0, 1}, d0b[2] = {1, 2}, d3[2] = {24, 25};
    CHECK_RC(tf_topo_restrict(a, d0, 2), 0);
    CHECK_RC(tf_topo_restrict(b, d0b, 2), 0);
    CHECK_RC(tf_topo_restrict(c, d3, 2), 0);
    tf_locality la, lb, lc, lx;
    CHECK_RC(parse_line(a, "n01", &la), 0);
    CHECK_RC(parse_line(b, "n01", &lb), 0);
    CHECK_RC(parse_line(c, "n01", &lc), 0);
    CHECK_RC(parse_line(c, "n02", &lx), 0);
    CHECK_MSG(!strcmp(la.host, "n01") && !strcmp(la.cpus, "0-1") &&
                  !strcmp(la.numa, "0") && la.ncores == 1 && la.npus == 2 &&
                  la.bound && la.machine[0] == 2 && la.machine[1] == 4 &&
                  la.machine[2] == 16 && la.machine[3] == 32 &&
                  !strcmp(la.source, "a synthetic description"),
              "a: %s %s %s %u %u", la.host, la.cpus, la.numa, la.ncores,
              la.npus);
    CHECK_EQ_U(lb.ncores, 2); /* PUs 1 and 2 lie on two cores */
    CHECK_EQ_I(tf_locality_distance(&la, &la), TF_NEAR_NUMA);
    CHECK_EQ_I(tf_locality_distance(&la, &lb), TF_NEAR_NUMA);
    CHECK_EQ_I(tf_locality_distance(&la, &lc), TF_NEAR_HOST);
    CHECK_EQ_I(tf_locality_distance(&lc, &la), TF_NEAR_HOST);
    CHECK_EQ_I(tf_locality_distance(&lc, &lx), TF_NEAR_NONE);
    char common[64] = "";
    CHECK_TRUE(tf_locality_overlap(&la, &lb, common, sizeof common));
    CHECK_MSG(!strcmp(common, "1"), "common cpus %s", common);
    CHECK_FALSE(tf_locality_overlap(&la, &lc, NULL, 0));
    CHECK_FALSE(tf_locality_overlap(&lc, &lx, NULL, 0)); /* other host */
    CHECK_FALSE(tf_locality_same_cpus(&la, &lb));
    CHECK_TRUE(tf_locality_same_cpus(&la, &la));
    tf_locality bad;
    CHECK_RC(tf_locality_parse("host=x cpus=0", &bad), TF_EINVAL);
    tf_locality_free(&la);
    tf_locality_free(&lb);
    tf_locality_free(&lc);
    tf_locality_free(&lx);
out:
    tf_topo_free(a);
    tf_topo_free(b);
    tf_topo_free(c);
}

/* On a topology that is not this machine's: placed, not bound, one warning. */
static void test_bind_unsupported(void)
{
    tf_topo *t = synthetic("pack:2 numa:2 core:4 pu:2");
    tf_topo *real = NULL;
    tf_placer *pl = NULL;
    if (!t || !CHECK_RC(tf_topo_load(&real), 0) ||
        !CHECK_RC(tf_placer_new(t, TF_BIND_CORE, &pl), 0))
        goto out;
    hwloc_bitmap_t before = hwloc_bitmap_alloc(), after = hwloc_bitmap_alloc();
    hwloc_get_cpubind(real->topo, before, HWLOC_CPUBIND_THREAD);
    int warnings = 0;
    for (int i = 0; i < 3; i++) {
        tf_place p;
        tf_binding b;
        const char *w = NULL;
        CHECK_RC(tf_placer_acquire(pl, 2, &p), 0);
        CHECK_RC(tf_placer_bind(pl, &p, &b, &w), 0);
        if (w) {
            warnings++;
            CHECK_MSG(strstr(w, "not supported") && strstr(w, "synthetic"),
                      "warning: %s", w);
        }
        CHECK_FALSE(b.cpu || b.mem);
        tf_placer_unbind(pl, &b);
        tf_placer_release(pl, &p);
    }
    CHECK_EQ_I(warnings, 1);
    hwloc_get_cpubind(real->topo, after, HWLOC_CPUBIND_THREAD);
    CHECK_TRUE(hwloc_bitmap_isequal(before, after));
    hwloc_bitmap_free(before);
    hwloc_bitmap_free(after);
out:
    tf_placer_free(pl);
    tf_topo_free(real);
    tf_topo_free(t);
}

/* On this machine: the thread is bound to the task's PU, then put back. */
static void test_bind_here(void)
{
    tf_topo *t = NULL;
    tf_placer *pl = NULL;
    if (!CHECK_RC(tf_topo_load(&t), 0) ||
        !CHECK_RC(tf_placer_new(t, TF_BIND_CORE, &pl), 0))
        goto out;
    const struct hwloc_topology_support *sup =
        hwloc_topology_get_support(t->topo);
    hwloc_bitmap_t before = hwloc_bitmap_alloc(), during = hwloc_bitmap_alloc(),
                   after = hwloc_bitmap_alloc(), want = hwloc_bitmap_alloc();
    hwloc_get_cpubind(t->topo, before, HWLOC_CPUBIND_THREAD);
    tf_place p;
    tf_binding b;
    const char *w = NULL;
    CHECK_RC(tf_placer_acquire(pl, 1, &p), 0);
    CHECK_RC(tf_placer_bind(pl, &p, &b, &w), 0);
    char cores[32], numa[32];
    tf_place_format(pl, &p, cores, sizeof cores, numa, sizeof numa);
    hwloc_bitmap_only(want, (unsigned)atoi(cores));
    hwloc_get_cpubind(t->topo, during, HWLOC_CPUBIND_THREAD);
    if (sup->cpubind->set_thisthread_cpubind) {
        CHECK_MSG(w == NULL, "warning: %s", w ? w : "");
        CHECK_TRUE(b.cpu);
        CHECK_TRUE(hwloc_bitmap_isequal(during, want));
    } else {
        CHECK_TRUE(w != NULL); /* no binding here: said once */
    }
    tf_placer_unbind(pl, &b);
    tf_placer_release(pl, &p);
    hwloc_get_cpubind(t->topo, after, HWLOC_CPUBIND_THREAD);
    CHECK_TRUE(hwloc_bitmap_isequal(before, after));
    hwloc_bitmap_free(before);
    hwloc_bitmap_free(during);
    hwloc_bitmap_free(after);
    hwloc_bitmap_free(want);
out:
    tf_placer_free(pl);
    tf_topo_free(t);
}

/* Task data on a NUMA node: bound where hwloc can, first touch elsewhere. */
static void test_alloc_near(void)
{
    tf_topo *t = NULL;
    if (!CHECK_RC(tf_topo_load(&t), 0))
        return;
    size_t len = 4u << 20;
    bool bound = false;
    hwloc_obj_t node = hwloc_get_obj_by_type(t->topo, HWLOC_OBJ_NUMANODE, 0);
    int os = node ? (int)node->os_index : -1;
    unsigned char *p = tf_topo_alloc_near(t, len, os, &bound);
    if (CHECK_TRUE(p != NULL)) {
        bool zero = true;
        for (size_t i = 0; i < len; i += 4096)
            zero &= p[i] == 0;
        CHECK_TRUE(zero);
        memset(p, 1, len);
        const struct hwloc_topology_support *sup =
            hwloc_topology_get_support(t->topo);
        if (sup->membind->alloc_membind && sup->membind->bind_membind)
            CHECK_TRUE(bound);
        hwloc_bitmap_t where = hwloc_bitmap_alloc();
        if (bound && os >= 0 &&
            hwloc_get_area_memlocation(t->topo, p, len, where,
                                       HWLOC_MEMBIND_BYNODESET) == 0)
            CHECK_MSG(hwloc_bitmap_isset(where, (unsigned)os) &&
                          hwloc_bitmap_weight(where) == 1,
                      "pages not on node %d", os);
        hwloc_bitmap_free(where);
        tf_topo_free_near(t, p, len);
    }
    tf_topo_free(t);
    /* Not this machine: plain pages, zeroed by the first touch. */
    t = synthetic("pack:2 numa:2 core:2 pu:1");
    if (!t)
        return;
    p = tf_topo_alloc_near(t, len, 1, &bound);
    if (CHECK_TRUE(p != NULL)) {
        CHECK_FALSE(bound);
        CHECK_TRUE(p[0] == 0 && p[len - 1] == 0);
        tf_topo_free_near(t, p, len);
    }
    tf_topo_free(t);
}

static void test_policy_names(void)
{
    tf_bind_policy p = TF_BIND_CORE;
    CHECK_TRUE(tf_bind_policy_parse("none", &p) && p == TF_BIND_NONE);
    CHECK_TRUE(tf_bind_policy_parse("numa", &p) && p == TF_BIND_NUMA);
    CHECK_TRUE(tf_bind_policy_parse("core", &p) && p == TF_BIND_CORE);
    CHECK_FALSE(tf_bind_policy_parse("socket", &p));
    CHECK_TRUE(!strcmp(tf_bind_policy_name(TF_BIND_NUMA), "numa"));
    tf_topo *t = NULL;
    CHECK_RC(tf_topo_load_synthetic("pack:frog", &t), TF_EINVAL);
    CHECK_RC(tf_topo_load_xml("/nonexistent.xml", &t), TF_EINVAL);
}

int main(int argc, char **argv)
{
    if (argc > 1)
        topo_dir = argv[1];
    static const struct {
        const char *name;
        CU_TestFunc fn;
    } tests[] = {
        {"view of a synthetic node", test_view_synthetic},
        {"plan on an idle SMT node", test_plan_idle_smt},
        {"plan on an idle node without SMT", test_plan_idle_nosmt},
        {"placer with tasks coming and going", test_placer_busy},
        {"whole cores, then hyperthreads, then sharing", test_placer_fill},
        {"random arrivals on six topologies", test_plan_random},
        {"recorded node topologies (XML)", test_plan_xml},
        {"a rank bound to part of a node", test_restrict},
        {"localities and distances", test_locality},
        {"binding unsupported: one warning", test_bind_unsupported},
        {"binding on this machine", test_bind_here},
        {"memory near a NUMA node", test_alloc_near},
        {"policy names, bad topologies", test_policy_names},
    };
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    CU_pSuite suite = CU_add_suite("place", NULL, NULL);
    if (!suite)
        goto fail;
    for (size_t i = 0; i < sizeof tests / sizeof *tests; i++)
        if (!CU_add_test(suite, tests[i].name, tests[i].fn))
            goto fail;
    return check_run();
fail:
    CU_cleanup_registry();
    return 2;
}
