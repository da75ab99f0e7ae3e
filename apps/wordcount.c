/* Example: MapReduce word count, map outputs hash-partitioned into parts that reducers fetch worker to worker. */
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "apps_common.h"
#include "taskfarm.h"

/*
 * The text: MB mebibytes of words drawn from a fixed vocabulary of 5000
 * made-up words with a Zipf distribution (word k with probability
 * proportional to 1/(k+1)), 12 words a line. It is cut into M chunks,
 * and chunk m is a function of m alone (its own seeded generator), so map
 * task m makes its chunk itself from a 4-byte input: rank 0 never carries
 * text.
 *
 * Map m tokenises its chunk, counts its words, and writes output part r
 * (r = 0 .. R-1) with the (word, count) pairs whose hash falls in
 * partition r (tf_task_output_alloc, one buffer a part, written in
 * place). Reducer r depends on every map, naming part r of each
 * (desc.dep_parts), merges the counts and outputs its table sorted by
 * word as part 0: a result, kept for rank 0. Map parts larger than
 * tf_config.inline_max stay on the map's worker and the reducer's worker
 * fetches them from there; rank 0 places each reducer on the rank that
 * holds most of its input.
 *
 * A pair is serialised as one byte of length, the word, and the count in
 * LEB128 (7 bits a byte, low first): 3 bytes for a rare word of this
 * vocabulary that occurs once.
 *
 * Rank 0 then counts the same text serially (the other ranks asleep) and
 * requires every reducer's table to hold exactly the words of its
 * partition, in order, with the serial counts.
 */
enum { VOCAB = 5000, WORDS_A_LINE = 12, WORD_MAX = 16 };

typedef struct vocab {
    char word[VOCAB][WORD_MAX];
    uint8_t len[VOCAB];
    double cdf[VOCAB]; /* cdf[k]: probability of drawing a word <= k */
} vocab;

typedef struct wordcount {
    const vocab *V;
    uint64_t total_bytes; /* of text, over all chunks */
    int maps, reducers;
    atomic_uint_least64_t map_out_bytes; /* this rank's maps' parts */
} wordcount;

/* splitmix64: the generators of the vocabulary and of each chunk. */
static uint64_t mix64(uint64_t *state)
{
    uint64_t x = (*state += 0x9e3779b97f4a7c15ull);
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/*
 * Word i: 0 to 2 syllables chosen at random, then i written in two
 * syllables (90 of them: 90^2 > VOCAB). The fixed-length ending makes
 * every word different; the random start spreads lengths over 4-8 letters.
 */
static void vocab_build(vocab *V)
{
    static const char cons[] = "bcdfghjklmnprstvwz", vow[] = "aeiou";
    const int nsyl = (int)(sizeof cons - 1) * (int)(sizeof vow - 1);
    uint64_t st = 20261206;
    double acc = 0;
    for (int i = 0; i < VOCAB; i++) {
        int pre = (int)(mix64(&st) % 3), syl[4], n = 0;
        for (int p = 0; p < pre; p++)
            syl[n++] = (int)(mix64(&st) % (uint64_t)nsyl);
        syl[n++] = i / nsyl;
        syl[n++] = i % nsyl;
        int len = 0;
        for (int s = 0; s < n; s++) {
            V->word[i][len++] = cons[syl[s] / (int)(sizeof vow - 1)];
            V->word[i][len++] = vow[syl[s] % (int)(sizeof vow - 1)];
        }
        V->len[i] = (uint8_t)len;
        acc += 1.0 / (i + 1);
        V->cdf[i] = acc;
    }
    for (int i = 0; i < VOCAB; i++)
        V->cdf[i] /= acc;
    V->cdf[VOCAB - 1] = 1.0; /* whatever the rounding, u < 1 lands somewhere */
}

/* A word drawn from the Zipf distribution: the first k with u < cdf[k]. */
static int vocab_draw(const vocab *V, uint64_t *st)
{
    double u = (double)(mix64(st) >> 11) * 0x1p-53;
    int lo = 0, hi = VOCAB - 1;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (u < V->cdf[mid])
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

/*
 * Chunk m of the text (malloc'd, *len bytes; NULL when out of memory):
 * words until the chunk reaches its share of the total (the last chunk
 * takes the remainder), each followed by a space or, every 12th, a newline.
 */
static char *chunk_make(const wordcount *W, int m, size_t *len)
{
    uint64_t target = W->total_bytes / (uint64_t)W->maps;
    if (m == W->maps - 1)
        target += W->total_bytes % (uint64_t)W->maps;
    char *t = malloc(target + WORD_MAX + 2);
    if (!t)
        return NULL;
    uint64_t st = 0x5eedull ^ ((uint64_t)m * 0xd1b54a32d192ed03ull);
    size_t n = 0;
    for (long w = 1; n < target; w++) {
        int k = vocab_draw(W->V, &st);
        memcpy(t + n, W->V->word[k], W->V->len[k]);
        n += W->V->len[k];
        t[n++] = w % WORDS_A_LINE ? ' ' : '\n';
    }
    *len = n;
    return t;
}

/* FNV-1a, 64 bits: the table's hash and the partition's. */
static uint64_t word_hash(const char *s, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)s[i]) * 0x100000001b3ull;
    return h;
}

/*
 * The partition of a word: from the hash's high half, so that a
 * reducer's table, whose words all share a partition, still spreads over
 * the slots its low bits pick.
 */
static int word_part(uint64_t h, int reducers)
{
    return (int)((h >> 32) % (uint64_t)reducers);
}

/* ---- a counting table: open addressing, words copied into an arena ---- */

typedef struct entry {
    uint64_t hash, count;
    uint32_t off, len; /* the word: arena[off .. off+len) */
} entry;

typedef struct table {
    entry *e; /* cap slots, len 0 = empty (no word is empty) */
    size_t cap, n;
    char *arena;
    size_t used, room;
} table;

static int table_init(table *t, size_t cap)
{
    t->cap = cap; /* a power of two */
    t->n = t->used = t->room = 0;
    t->arena = NULL;
    t->e = calloc(cap, sizeof *t->e);
    return t->e ? 0 : -1;
}

static void table_free(table *t)
{
    free(t->e), free(t->arena);
}

static entry *table_slot(const table *t, const char *w, size_t len, uint64_t h)
{
    for (size_t i = h & (t->cap - 1);; i = (i + 1) & (t->cap - 1)) {
        entry *e = &t->e[i];
        if (!e->len || (e->hash == h && e->len == len &&
                        !memcmp(t->arena + e->off, w, len)))
            return e;
    }
}

static int table_grow(table *t)
{
    table g;
    if (table_init(&g, t->cap * 2))
        return -1;
    for (size_t i = 0; i < t->cap; i++)
        if (t->e[i].len)
            *table_slot(&g, t->arena + t->e[i].off, t->e[i].len, t->e[i].hash) =
                t->e[i];
    free(t->e);
    t->e = g.e;
    t->cap = g.cap;
    return 0;
}

/* Add `count` to word w (len 1 .. 255, hash h). 0 or -1 (out of memory). */
static int table_add(table *t, const char *w, size_t len, uint64_t h,
                     uint64_t count)
{
    entry *e = table_slot(t, w, len, h);
    if (e->len) {
        e->count += count;
        return 0;
    }
    if (2 * (t->n + 1) > t->cap) { /* at most half full */
        if (table_grow(t))
            return -1;
        e = table_slot(t, w, len, h);
    }
    if (t->used + len > t->room) {
        size_t room = t->room ? 2 * t->room : 4096;
        while (room < t->used + len)
            room *= 2;
        char *a = realloc(t->arena, room);
        if (!a)
            return -1;
        t->arena = a, t->room = room;
    }
    memcpy(t->arena + t->used, w, len);
    *e = (entry){h, count, (uint32_t)t->used, (uint32_t)len};
    t->used += len;
    t->n++;
    return 0;
}

/* Count every word of text[0 .. len) (words: runs of non-blanks). */
static int count_text(table *t, const char *text, size_t len)
{
    size_t i = 0;
    while (i < len) {
        while (i < len && (text[i] == ' ' || text[i] == '\n'))
            i++;
        size_t s = i;
        while (i < len && text[i] != ' ' && text[i] != '\n')
            i++;
        if (i > s && (i - s > 255 || table_add(t, text + s, i - s,
                                               word_hash(text + s, i - s), 1)))
            return -1;
    }
    return 0;
}

/* ---- the serialised form: [len][word][count, LEB128] ... ---- */

static size_t leb_len(uint64_t v)
{
    size_t n = 1;
    while (v >>= 7)
        n++;
    return n;
}

static char *put_pair(char *p, const char *w, size_t len, uint64_t count)
{
    *p++ = (char)len;
    memcpy(p, w, len);
    p += len;
    do {
        *p++ = (char)((count & 0x7f) | (count >> 7 ? 0x80 : 0));
    } while (count >>= 7);
    return p;
}

/*
 * The pair at buf[*pos ..], *pos moved past it. 0, or -1 when the bytes
 * end inside a pair or a count is malformed.
 */
static int get_pair(const unsigned char *buf, size_t len, size_t *pos,
                    const char **w, size_t *wlen, uint64_t *count)
{
    size_t p = *pos;
    if (p >= len || buf[p] == 0 || len - p - 1 < buf[p])
        return -1;
    *wlen = buf[p];
    *w = (const char *)buf + p + 1;
    p += 1 + *wlen;
    uint64_t v = 0;
    for (int shift = 0;; shift += 7) {
        if (p >= len || shift > 63)
            return -1;
        v |= (uint64_t)(buf[p] & 0x7f) << shift;
        if (!(buf[p++] & 0x80))
            break;
    }
    *pos = p;
    *count = v;
    return 0;
}

/* ---- the tasks ---- */

/* Input: int32 chunk m. Output: part r, the chunk's pairs of partition r. */
static int map_task(tf_task_ctx *ctx, const void *in, size_t len, void *user)
{
    wordcount *W = user;
    int32_t m;
    if (len != sizeof m)
        return 1;
    memcpy(&m, in, sizeof m);
    if (m < 0 || m >= W->maps)
        return 1;
    size_t tlen;
    char *text = chunk_make(W, m, &tlen);
    size_t *size = calloc((size_t)W->reducers, sizeof *size);
    char **cur = calloc((size_t)W->reducers, sizeof *cur);
    table t = {0};
    int rc = text && size && cur && !table_init(&t, 1024) ? 0 : 2;
    if (!rc && count_text(&t, text, tlen))
        rc = 2;
    free(text);
    /* Sizes first, so that each part is one buffer written in place. */
    for (size_t i = 0; !rc && i < t.cap; i++)
        if (t.e[i].len)
            size[word_part(t.e[i].hash, W->reducers)] +=
                1 + t.e[i].len + leb_len(t.e[i].count);
    uint64_t bytes = 0;
    for (int r = 0; !rc && r < W->reducers; r++) {
        void *buf;
        if (size[r] &&
            !(rc = tf_task_output_alloc(ctx, (unsigned)r, size[r], &buf)))
            cur[r] = buf;
        bytes += size[r];
    }
    for (size_t i = 0; !rc && i < t.cap; i++) {
        const entry *e = &t.e[i];
        if (e->len) {
            int r = word_part(e->hash, W->reducers);
            cur[r] = put_pair(cur[r], t.arena + e->off, e->len, e->count);
        }
    }
    if (!rc)
        atomic_fetch_add(&W->map_out_bytes, bytes);
    table_free(&t);
    free(size), free(cur);
    return rc;
}

/* Word order: bytes, and the shorter first when one begins the other. */
static int word_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);
    return c ? c : (alen > blen) - (alen < blen);
}

/* A reducer's pair before sorting; the word is in its table's arena. */
typedef struct pair {
    const char *w;
    size_t len;
    uint64_t count;
} pair;

static int by_word(const void *a, const void *b)
{
    const pair *x = a, *y = b;
    return word_cmp(x->w, x->len, y->w, y->len);
}

/*
 * Input: int32 partition r. Dependencies: every map, part r of each.
 * Output: part 0, the merged pairs sorted by word (bytes, shorter first
 * on a tie: the order rank 0 checks).
 */
static int reduce_task(tf_task_ctx *ctx, const void *in, size_t len, void *user)
{
    const wordcount *W = user;
    int32_t r;
    if (len != sizeof r)
        return 1;
    memcpy(&r, in, sizeof r);
    if (r < 0 || r >= W->reducers || tf_task_ndeps(ctx) != (size_t)W->maps)
        return 1;
    table t;
    if (table_init(&t, 1024))
        return 2;
    int rc = 0;
    for (size_t d = 0; !rc && d < (size_t)W->maps; d++) {
        const void *buf;
        size_t blen, pos = 0;
        if (tf_task_dep_output(ctx, d, &buf, &blen)) {
            rc = 1;
            break;
        }
        while (!rc && pos < blen) {
            const char *w;
            size_t wl;
            uint64_t c, h;
            if (get_pair(buf, blen, &pos, &w, &wl, &c) ||
                word_part(h = word_hash(w, wl), W->reducers) != r)
                rc = 1; /* not this partition's: the wrong part came */
            else if (table_add(&t, w, wl, h, c))
                rc = 2;
        }
    }
    /* The merged pairs, sorted: the arena no longer moves. */
    pair *p = rc ? NULL : malloc((t.n ? t.n : 1) * sizeof *p);
    size_t n = 0, bytes = 0;
    if (!rc && !p)
        rc = 2;
    for (size_t i = 0; !rc && i < t.cap; i++)
        if (t.e[i].len) {
            bytes += 1 + t.e[i].len + leb_len(t.e[i].count);
            p[n++] = (pair){t.arena + t.e[i].off, t.e[i].len, t.e[i].count};
        }
    if (!rc)
        qsort(p, n, sizeof *p, by_word);
    void *out;
    if (!rc && bytes && !(rc = tf_task_output_alloc(ctx, 0, bytes, &out))) {
        char *o = out;
        for (size_t i = 0; i < n; i++)
            o = put_pair(o, p[i].w, p[i].len, p[i].count);
    }
    free(p);
    table_free(&t);
    return rc;
}

/* ---- rank 0 ---- */

/* The serial count of the whole text, chunk by chunk. 0 or -1. */
static int count_serial(const wordcount *W, table *t)
{
    if (table_init(t, 1024))
        return -1;
    for (int m = 0; m < W->maps; m++) {
        size_t len;
        char *text = chunk_make(W, m, &len);
        int bad = !text || count_text(t, text, len);
        free(text);
        if (bad)
            return -1;
    }
    return 0;
}

/*
 * Reducer r's table against the serial count: sorted, of partition r,
 * every count the serial one. Adds its words and their counts to
 * *words and *total. 0, or -1 with the reason on stderr.
 */
static int check_result(const wordcount *W, const table *serial, int r,
                        const void *buf, size_t len, uint64_t *words,
                        uint64_t *total)
{
    size_t pos = 0, plen = 0;
    const char *prev = NULL;
    while (pos < len) {
        const char *w;
        size_t wl;
        uint64_t c, h;
        if (get_pair(buf, len, &pos, &w, &wl, &c)) {
            fprintf(stderr,
                    "wordcount: reducer %d: malformed output at byte %zu\n", r,
                    pos);
            return -1;
        }
        h = word_hash(w, wl);
        int cmp = prev ? word_cmp(prev, plen, w, wl) : -1;
        const entry *e = table_slot(serial, w, wl, h);
        if (cmp >= 0 || word_part(h, W->reducers) != r || !e->len ||
            e->count != c) {
            fprintf(stderr, "wordcount: reducer %d: '%.*s' %llu: %s\n", r,
                    (int)wl, w, (unsigned long long)c,
                    cmp >= 0                         ? "out of order"
                    : word_part(h, W->reducers) != r ? "wrong partition"
                    : !e->len                        ? "not in the text"
                                                     : "count differs");
            return -1;
        }
        prev = w, plen = wl;
        (*words)++;
        *total += c;
    }
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: wordcount [-m MAPS] [-r REDUCERS] [-M MEGABYTES] "
               "[-i INLINE_MAX] [-R] [-h]\n"
               "  -m map tasks (64), -r reducers (8; at most 256), -M MiB of "
               "text (32),\n"
               "  -i tf_config.inline_max: output parts up to this many bytes "
               "travel through\n"
               "     rank 0, larger ones worker to worker (-1: the runtime's "
               "default; 0: none)\n"
               "  -R the data path before 2026-12-06, for comparison: every "
               "output to rank 0,\n"
               "     kept there, and sent by rank 0 to its readers\n");
}

static double ns_ms(uint64_t ns)
{
    return (double)ns * 1e-6;
}

int main(int argc, char **argv)
{
    int provided, rank, size;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);

    long maps = 64, reducers = 8, mib = 32, inline_max = -1;
    int help = 0, via_rank0 = 0;
    const app_opt opts[] = {{'m', 1, 100000, &maps},
                            {'r', 1, TF_PARTS_MAX, &reducers},
                            {'M', 1, 65536, &mib},
                            {'i', -1, LONG_MAX, &inline_max}};
    int bad = app_options(argc, argv, "wordcount", rank, opts,
                          sizeof opts / sizeof opts[0], &via_rank0, &help);
    if (bad || help) {
        if (rank == 0)
            usage(help ? stdout : stderr);
        MPI_Finalize();
        return help ? 0 : 2;
    }
    vocab *V = malloc(sizeof *V);
    if (!V) {
        fprintf(stderr, "wordcount: out of memory\n");
        MPI_Abort(MPI_COMM_WORLD, 3);
    }
    vocab_build(V);
    wordcount W = {.V = V,
                   .total_bytes = (uint64_t)mib << 20,
                   .maps = (int)maps,
                   .reducers = (int)reducers};
    atomic_init(&W.map_out_bytes, 0);
    const int cores = app_task_cores(size, 1);

    tf_config cfg;
    tf_config_init(&cfg);
    cfg.inline_max = inline_max;
    if (via_rank0) {
        cfg.inline_max = LONG_MAX;
        cfg.keep_outputs = 1;
    }
    tf_runtime *rt;
    tf_fn_id f_map, f_reduce;
    int rc = tf_init(MPI_COMM_WORLD, &cfg, &rt);
    if (!rc)
        rc = tf_register(rt, "wc_map", map_task, &W, &f_map);
    if (!rc)
        rc = tf_register(rt, "wc_reduce", reduce_task, &W, &f_reduce);
    if (rc) {
        fprintf(stderr, "wordcount: %s\n", tf_strerror(rc));
        MPI_Abort(MPI_COMM_WORLD, 3);
    }
    tf_task_id *map_id = NULL, *red_id = NULL;
    if (rank == 0) {
        map_id = malloc((size_t)maps * sizeof *map_id);
        red_id = malloc((size_t)reducers * sizeof *red_id);
        uint32_t *parts = malloc((size_t)maps * sizeof *parts);
        rc = map_id && red_id && parts ? 0 : TF_ENOMEM;
        for (int32_t m = 0; !rc && m < maps; m++) {
            tf_task_desc d;
            tf_task_desc_init(&d, f_map);
            d.input = &m;
            d.input_len = sizeof m;
            rc = tf_submit(rt, &d, &map_id[m]);
        }
        for (int32_t r = 0; !rc && r < reducers; r++) {
            for (long m = 0; m < maps; m++)
                parts[m] = (uint32_t)r;
            tf_task_desc d;
            tf_task_desc_init(&d, f_reduce);
            d.input = &r;
            d.input_len = sizeof r;
            d.deps = map_id;
            d.dep_parts = parts;
            d.ndeps = (size_t)maps;
            rc = tf_submit(rt, &d, &red_id[r]);
        }
        free(parts);
        if (rc) {
            fprintf(stderr, "wordcount: submit: %s\n", tf_strerror(rc));
            MPI_Abort(MPI_COMM_WORLD, 3);
        }
    }
    double t0 = MPI_Wtime();
    rc = tf_run(rt);
    double t_farm = MPI_Wtime() - t0;

    /* What moved: the maps' parts written and fetched, summed over ranks. */
    tf_stats st = {0};
    tf_get_stats(rt, &st);
    uint64_t mine[3] = {atomic_load(&W.map_out_bytes), st.fetches,
                        st.fetched_bytes};
    uint64_t sum[3] = {0, 0, 0};
    MPI_Reduce(mine, sum, 3, MPI_UINT64_T, MPI_SUM, 0, MPI_COMM_WORLD);

    /* The serial count on rank 0 while the other ranks sleep. */
    app_sleepy_barrier(MPI_COMM_WORLD);
    int status = rc ? 3 : 0;
    if (rank == 0 && rc) {
        fprintf(stderr, "wordcount: run: %s\n", tf_strerror(rc));
    } else if (rank == 0) {
        table serial;
        double s0 = MPI_Wtime();
        if (count_serial(&W, &serial)) {
            fprintf(stderr, "wordcount: out of memory\n");
            MPI_Abort(MPI_COMM_WORLD, 3);
        }
        double t_serial = MPI_Wtime() - s0;
        uint64_t want_total = 0, words = 0, total = 0, result_bytes = 0;
        for (size_t i = 0; i < serial.cap; i++)
            want_total += serial.e[i].len ? serial.e[i].count : 0;
        int ok = 1;
        for (int r = 0; r < reducers && ok; r++) {
            const void *buf = NULL;
            size_t len = 0;
            rc = tf_task_output(rt, red_id[r], &buf, &len);
            if (rc)
                fprintf(stderr, "wordcount: reducer %d: no output: %s\n", r,
                        tf_strerror(rc));
            ok = !rc && !check_result(&W, &serial, r, buf, len, &words, &total);
            result_bytes += len;
        }
        if (ok && (words != serial.n || total != want_total)) {
            fprintf(stderr,
                    "wordcount: reducers hold %llu words, %llu "
                    "occurrences; the serial count %zu, %llu\n",
                    (unsigned long long)words, (unsigned long long)total,
                    serial.n, (unsigned long long)want_total);
            ok = 0;
        }
        /*
         * Phases from the tasks' start and end times: the maps' span, and
         * from the last map's end (when every reducer's input exists) to
         * the last reducer's end: fetching every map's part and merging.
         */
        uint64_t map_lo = UINT64_MAX, map_hi = 0, red_hi = 0, red_run = 0;
        int timed = 1;
        for (long m = 0; m < maps && timed; m++) {
            tf_task_info inf;
            timed = !tf_task_info_get(rt, map_id[m], &inf);
            map_lo = timed && inf.start_ns < map_lo ? inf.start_ns : map_lo;
            map_hi = timed && inf.end_ns > map_hi ? inf.end_ns : map_hi;
        }
        for (long r = 0; r < reducers && timed; r++) {
            tf_task_info inf;
            timed = !tf_task_info_get(rt, red_id[r], &inf);
            red_hi = timed && inf.end_ns > red_hi ? inf.end_ns : red_hi;
            red_run += timed ? inf.end_ns - inf.start_ns : 0;
        }
        status = ok ? 0 : 1;
        printf("wordcount: %ld MiB of text, %ld maps x %ld reducers on %d "
               "ranks, %d task cores: %.3f s; %llu words, %zu distinct; "
               "every count equals the serial count: %s\n",
               mib, maps, reducers, size, cores, t_farm,
               (unsigned long long)want_total, serial.n,
               ok ? "CORRECT" : "WRONG");
        printf("wordcount_total_ms %.1f ms\n", 1e3 * t_farm);
        printf("wordcount_serial_ms %.1f ms\n", 1e3 * t_serial);
        printf("wordcount_taskfarm_vs_serial_ratio %.3f x\n",
               t_farm / t_serial);
        if (timed) {
            printf("wordcount_map_phase_ms %.1f ms\n", ns_ms(map_hi - map_lo));
            printf("wordcount_shuffle_ms %.1f ms\n",
                   ns_ms(red_hi > map_hi ? red_hi - map_hi : 0));
            printf("wordcount_reduce_run_ms %.1f ms\n", ns_ms(red_run));
        }
        printf("wordcount_map_output_bytes %llu bytes\n",
               (unsigned long long)sum[0]);
        printf("wordcount_fetched_bytes %llu bytes\n",
               (unsigned long long)sum[2]);
        printf("wordcount_fetches %llu count\n", (unsigned long long)sum[1]);
        printf("wordcount_rank0_payload_bytes %llu bytes\n",
               (unsigned long long)st.rank0_payload_bytes);
        printf("wordcount_rank0_result_bytes %llu bytes\n",
               (unsigned long long)result_bytes);
        table_free(&serial);
    }
    app_sleepy_barrier(MPI_COMM_WORLD);
    MPI_Bcast(&status, 1, MPI_INT, 0, MPI_COMM_WORLD);
    tf_finalize(&rt);
    free(map_id), free(red_id), free(V);
    MPI_Finalize();
    return status;
}
