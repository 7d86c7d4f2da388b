#include "qdq/qdq_variants.h"
#include "runtime/variants_dispatch.h"

int qsim_ref_supported(void) {
    return 1;
}

/* Variant `isa` with its supported() check and qdq_h16, and every other kernel from `base`. */
#define QSIM_QDQ_ENTRY(isa, base, h16) { \
    #isa, qsim_##isa##_supported, qsim_qdq_f32_##base, qsim_quantize_f32_##base, \
    qsim_dequantize_f32_##base, qsim_qdq_backward_f32_##base, qsim_quantize_backward_f32_##base, \
    qsim_dequantize_backward_f32_##base, qsim_cast_f16_f32_##base, qsim_cast_bf16_f32_##base, \
    qsim_minifloat_f32_##base, qsim_block_float_f32_##base, qsim_qdq_rows_f32_##base, \
    qsim_quantize_rows_f32_##base, qsim_dequantize_rows_f32_##base, \
    qsim_qdq_rows_backward_f32_##base, qsim_quantize_rows_backward_f32_##base, \
    qsim_dequantize_rows_backward_f32_##base, qsim_widen_h16_##base, qsim_narrow_h16_##base, \
    qsim_qdq_h16_##h16, qsim_qdq_backward_h16_##base, qsim_qdq_mask_f32_##base, \
    qsim_qdq_mask_backward_f32_##base, qsim_qdq_mask_backward_h16_##base, \
    qsim_qdq_mask_h16_##base },
#define QSIM_QDQ_VARIANT(isa) QSIM_QDQ_ENTRY(isa, isa, isa)
#define QSIM_QDQ_VARIANT_H16(isa, base) QSIM_QDQ_ENTRY(isa, base, isa)
static const qsim_qdq_kernels qsim_variants[] = {
#include "qdq/qdq_variants.inc"
};
#undef QSIM_QDQ_VARIANT
#undef QSIM_QDQ_VARIANT_H16
#undef QSIM_QDQ_ENTRY

QSIM_DEFINE_VARIANT_DISPATCH(qsim_qdq_kernels, qsim_variants, qsim_qdq_variants, qsim_qdq_best)
