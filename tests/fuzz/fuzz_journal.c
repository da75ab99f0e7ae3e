/* libFuzzer harness: any bytes as a journal file, loaded by tf_ck_load. */
#include "fuzz_ckpt.h"

/*
 * The input is a mode byte, then journal-1.tfj of a state directory: its
 * header, records, lengths and checksums all as the fuzzer makes them.
 * Seeds (corpus/journal) are journals the writer wrote, so mutations start
 * from valid records. Mode bit 0: tf_ck_jr_seal makes the checksums right
 * again, which lets mutations of lengths and fields reach the decoder's
 * checks instead of stopping at the checksum. Bits 1-4 other than 0: the
 * directory also holds a snapshot of two tasks (gids 0 and 1), so records
 * meet tasks it knows, and replay starts at its journal_pos, one of 15
 * positions (the bits' value): after the header, on record boundaries or
 * not, before the header, past the end. The snapshots are written once
 * (HDF5 checksums the attribute that holds the position, so it cannot be
 * patched in the bytes) and copied in.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void two_tasks(void *user, uint64_t i, tf_ck_task *t)
{
    (void)user;
    memset(t, 0, sizeof *t);
    t->gid = i;
    t->key = 9;
    t->parent = TF_CK_NONE;
    t->cores = 1;
    t->name = "t";
    t->name_len = 1;
}

static const uint64_t positions[15] = {TF_CK_JHDR, 40,  48,  64,   96,
                                       104,        136, 168, 200,  240,
                                       304,        37,  8,   4096, 1ull << 40};

/* The snapshots, written once each; copied in for each input. */
static struct {
    uint8_t *p;
    size_t len;
} snap[15];

static void put_snapshot(unsigned k)
{
    char path[400], err[256];
    fz_path(path, sizeof path, "state-1.h5");
    if (!snap[k].p) {
        tf_ck_meta m = {.kind = TF_CK_LIB,
                        .generation = 1,
                        .journal_id = 1,
                        .journal_pos = positions[k]};
        if (tf_ck_snap_write(path, &m, 2, two_tasks, NULL, NULL, err,
                             sizeof err))
            abort();
        FILE *f = fopen(path, "rb");
        long n;
        if (!f || fseek(f, 0, SEEK_END) || (n = ftell(f)) <= 0 ||
            !(snap[k].p = malloc((size_t)n)) || fseek(f, 0, SEEK_SET) ||
            fread(snap[k].p, 1, (size_t)n, f) != (size_t)n)
            abort();
        fclose(f);
        snap[k].len = (size_t)n;
    }
    fz_write(path, snap[k].p, snap[k].len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[400];
    if (size < 1)
        return 0;
    bool seal = data[0] & 1;
    unsigned with_snapshot = (data[0] >> 1) & 15; /* 0: none */
    data++;
    size--;
    fz_path(path, sizeof path, "journal-1.tfj");
    if (seal && size >= TF_CK_JHDR) {
        /* Reseal a copy: record checksums, as the writer's I/O thread
           does, and the header's. */
        uint8_t *copy = malloc(size);
        if (!copy)
            return 0;
        memcpy(copy, data, size);
        uint32_t crc = tf_ck_crc32c(0, copy, 24);
        memcpy(copy + 24, &crc, 4);
        /* tf_ck_jr_seal trusts its buffer to hold whole records (it is
           the writer's): only the prefix that does is handed to it. */
        size_t whole = TF_CK_JHDR, ext;
        while (size - whole >= TF_CK_RHDR &&
               (ext = tf_ck_jr_extent(copy + whole)) && ext <= size - whole)
            whole += ext;
        tf_ck_jr_seal(copy + TF_CK_JHDR, whole - TF_CK_JHDR);
        fz_write(path, copy, size);
        free(copy);
    } else {
        fz_write(path, data, size);
    }
    if (with_snapshot)
        put_snapshot(with_snapshot - 1);
    fz_load();
    unlink(path);
    fz_path(path, sizeof path, "state-1.h5");
    unlink(path);
    return 0;
}
