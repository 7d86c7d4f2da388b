/* Drivers of qsim/minifloat.h: minifloat casts over the scale layouts of qsim/qdq.h, and block
 * formats over rows. */
#include "float/minifloat_common.h"

/* The scale index of flat element f, and how many elements from f share it. */
static int64_t qsim_mf_run_at(const qsim_layout * l, int64_t f, int64_t * idx) {
    const int64_t i = f % l->inner;
    const int64_t c = (f / l->inner) % l->channels;
    const int64_t o = f / (l->inner * l->channels);
    *idx = o * l->stride_outer + (c / l->block) * l->stride_block + i * l->stride_inner;
    if (l->stride_outer == 0 && l->stride_block == 0 && l->stride_inner == 0) {
        return qsim_layout_numel(l) - f;
    }
    if (l->stride_inner != 0 && l->inner > 1) {
        return 1;
    }
    return ((c / l->block + 1) * l->block - c) * l->inner - i;
}

void qsim_minifloat_forward_f32(const qsim_qdq_kernels * k, const qsim_minifloat * m,
                                const qsim_layout * l, const float * scale, const float * x,
                                float * y, int64_t begin, int64_t end) {
    const qsim_minifloat_fn run = (k ? k : qsim_qdq_best())->cast_minifloat;
    while (begin < end) {
        int64_t       idx;
        const int64_t len = qsim_mf_run_at(l, begin, &idx);
        const int64_t n   = len < end - begin ? len : end - begin;
        run((size_t) n, x + begin, y + begin, scale[idx], m);
        begin += n;
    }
}

void qsim_block_forward_f32(const qsim_qdq_kernels * k, const qsim_block_format * b,
                            int64_t row_len, const float * x, float * y, int64_t begin,
                            int64_t end) {
    const qsim_block_fn run = (k ? k : qsim_qdq_best())->block_float;
    if (row_len % (int64_t) b->block == 0) {  /* the blocks of one run are the rows' blocks */
        run((size_t) ((end - begin) * row_len), x + begin * row_len, y + begin * row_len, b);
        return;
    }
    for (int64_t r = begin; r < end; r++) {
        run((size_t) row_len, x + r * row_len, y + r * row_len, b);
    }
}
