/* libFuzzer harness: any bytes as a snapshot file, loaded by tf_ck_load. */
#include "../ckpt/h5edit.h"
#include "fuzz_ckpt.h"

/*
 * The input is state-1.h5 of a state directory. Seeds (corpus/snapshot)
 * are snapshots the writer wrote, some then edited through the HDF5 API
 * (tests/fuzz/seeds.c). Random bytes rarely make valid HDF5: HDF5 checksums
 * its own metadata, so most mutations are refused when the file is opened,
 * and the rest mostly land in the datasets' bytes, which our crc32c
 * attributes then refuse. So with the first byte odd the harness first
 * makes every dataset's crc32c match its (mutated) bytes, through HDF5,
 * and the loader's checks of sizes, offsets and states get the mutations.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Every dataset's checksum made to match what it holds (up to 64 KiB). */
static void fix_checksums(const char *path)
{
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    if (f < 0)
        return;
    for (size_t k = 0; k < H5E_NDS; k++) {
        h5e_vals v;
        if (h5e_read(f, h5e_datasets[k].path, H5E_MAX_READ, &v))
            h5e_set_crc(v.d, h5e_crc(&v, v.n));
        h5e_done(&v);
    }
    H5Fclose(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[400];
    if (size < 1)
        return 0;
    bool fix = data[0] & 1;
    fz_path(path, sizeof path, "state-1.h5");
    fz_write(path, data + 1, size - 1);
    if (fix && H5Fis_hdf5(path) > 0)
        fix_checksums(path);
    fz_load();
    unlink(path);
    return 0;
}
