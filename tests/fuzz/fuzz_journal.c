/* libFuzzer harness: any bytes as a journal file, loaded by tf_ck_load. */
#include "fuzz_ckpt.h"

/*
 * The input is journal-1.tfj of an otherwise empty state directory: its
 * header, records, lengths and checksums all as the fuzzer makes them.
 * Seeds (corpus/journal) are journals the writer wrote, so mutations start
 * from valid records; tf_ck_jr_seal can be asked to make the checksums
 * right again (the first byte odd), which lets mutations of lengths and
 * fields reach the decoder's checks instead of stopping at the checksum.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[400];
    if (size < 1)
        return 0;
    bool seal = data[0] & 1;
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
    fz_load();
    unlink(path);
    return 0;
}
