#include "qdq_variants.h"

int qsim_ref_supported(void) {
    return 1;
}

#define QSIM_QDQ_VARIANT(isa) { \
    #isa, qsim_##isa##_supported, qsim_qdq_f32_##isa, qsim_quantize_f32_##isa, qsim_dequantize_f32_##isa, \
    qsim_qdq_backward_f32_##isa, qsim_quantize_backward_f32_##isa, \
    qsim_dequantize_backward_f32_##isa, qsim_cast_f16_f32_##isa, qsim_cast_bf16_f32_##isa },
static const qsim_qdq_kernels qsim_variants[] = {
#include "qdq_variants.inc"
};
#undef QSIM_QDQ_VARIANT

const qsim_qdq_kernels * qsim_qdq_variants(size_t * count) {
    *count = sizeof qsim_variants / sizeof qsim_variants[0];
    return qsim_variants;
}

const qsim_qdq_kernels * qsim_qdq_best(void) {
    static const qsim_qdq_kernels * _Atomic best;
    const qsim_qdq_kernels * b = best;
    if (!b) {
        size_t n;
        const qsim_qdq_kernels * v = qsim_qdq_variants(&n);
        for (b = &v[0]; n-- > 0;) {
            if (v[n].supported()) {
                b = &v[n];
                break;
            }
        }
        best = b;
    }
    return b;
}
