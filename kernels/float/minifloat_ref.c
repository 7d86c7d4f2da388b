/* The reference minifloat and block-format run kernels: the specification of qsim/minifloat.h. */
#include "float/minifloat_common.h"

void qsim_minifloat_f32_ref(size_t n, const float * x, float * y, float s, const qsim_minifloat * m) {
    for (size_t i = 0; i < n; i++) {
        y[i] = qsim_mf_round(x[i] / s, m) * s;
    }
}

void qsim_block_float_f32_ref(size_t n, const float * x, float * y, const qsim_block_format * b) {
    for (size_t i = 0; i < n; i += b->block) {
        const size_t len  = n - i < b->block ? n - i : b->block;
        uint32_t     amax = 0;
        for (size_t j = 0; j < len; j++) {
            const uint32_t a = qsim_f32_bits(x[i + j]) & QSIM_F32_ABS;
            amax             = a > amax ? a : amax;
        }
        const float s = qsim_block_scale(amax, b);
        for (size_t j = 0; j < len; j++) {
            y[i + j] = qsim_block_element(x[i + j], s, b);
        }
    }
}
