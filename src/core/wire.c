/* The wire format's out-of-line parts: skipping a task record, and the layout table for tests and docs. */
#include "wire.h"

bool tf_wire_skip_task(tf_rd *rd, size_t *ndeps)
{
    tf_wire_task t;
    if (!tf_wire_get_task(rd, &t))
        return false;
    tf_rd_take(rd, t.input_len);
    for (uint32_t i = 0; i < t.ndeps && rd->ok; i++) {
        const void *buf;
        uint32_t len, anchor;
        tf_wire_get_output(rd, &buf, &len, &anchor);
    }
    *ndeps += t.ndeps;
    return rd->ok;
}

#define TF_WIRE_TEXT_(type, name) ", " #type " " #name
#define TF_WIRE_LAYOUT_(NAME, name, LIST)                                      \
    {#NAME, LIST(TF_WIRE_TEXT_) + 2, TF_WIRE_##NAME##_SIZE},

static const tf_wire_layout layouts[] = {TF_WIRE_RECORDS(TF_WIRE_LAYOUT_)};

const tf_wire_layout *tf_wire_layouts(size_t *n)
{
    *n = sizeof layouts / sizeof *layouts;
    return layouts;
}
