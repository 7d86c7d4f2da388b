#include "qdq/qdq_variants.h"
#include "runtime/variants_dispatch.h"

int qsim_ref_supported(void) {
    return 1;
}

#define QSIM_QDQ_VARIANT(isa) { \
    #isa, qsim_##isa##_supported, qsim_qdq_f32_##isa, qsim_quantize_f32_##isa, qsim_dequantize_f32_##isa, \
    qsim_qdq_backward_f32_##isa, qsim_quantize_backward_f32_##isa, \
    qsim_dequantize_backward_f32_##isa, qsim_cast_f16_f32_##isa, qsim_cast_bf16_f32_##isa, \
    qsim_minifloat_f32_##isa, qsim_block_float_f32_##isa, qsim_qdq_rows_f32_##isa, \
    qsim_quantize_rows_f32_##isa, qsim_dequantize_rows_f32_##isa, qsim_qdq_rows_backward_f32_##isa, \
    qsim_quantize_rows_backward_f32_##isa, qsim_dequantize_rows_backward_f32_##isa, \
    qsim_widen_h16_##isa, qsim_narrow_h16_##isa, qsim_qdq_h16_##isa },
static const qsim_qdq_kernels qsim_variants[] = {
#include "qdq/qdq_variants.inc"
};
#undef QSIM_QDQ_VARIANT

QSIM_DEFINE_VARIANT_DISPATCH(qsim_qdq_kernels, qsim_variants, qsim_qdq_variants, qsim_qdq_best)
