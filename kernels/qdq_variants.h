/*
 * qdq_variants.h (internal): prototypes of every variant listed in qdq_variants.inc, that is
 * qsim_<isa>_supported() and the run kernels qsim_*_f32_<isa> with the qsim_qdq_kernels types.
 */
#ifndef QSIM_QDQ_VARIANTS_H
#define QSIM_QDQ_VARIANTS_H

#include "qsim/qdq.h"

/* For the loop drivers of the ISA variants: they take the per-vector operation as a function
 * pointer, which becomes a direct, inlined call only when the driver is inlined into each kernel. */
#define QSIM_ALWAYS_INLINE static inline __attribute__((always_inline))

#define QSIM_QDQ_VARIANT(isa)                                                                    \
    int  qsim_##isa##_supported(void);                                                           \
    void qsim_qdq_f32_##isa(size_t n, const float * x, float * y, qsim_grid g);                  \
    void qsim_quantize_f32_##isa(size_t n, const float * x, float * y, qsim_grid g);             \
    void qsim_dequantize_f32_##isa(size_t n, const float * x, float * y, qsim_grid g);           \
    void qsim_qdq_backward_f32_##isa(size_t n, const float * x, const float * dy, float * dx,    \
                                     qsim_grid g, double * sums);                                \
    void qsim_quantize_backward_f32_##isa(size_t n, const float * x, const float * dy,           \
                                          float * dx, qsim_grid g, double * sums);               \
    void qsim_dequantize_backward_f32_##isa(size_t n, const float * x, const float * dy,         \
                                            float * dx, qsim_grid g, double * sums);             \
    void qsim_cast_f16_f32_##isa(size_t n, const float * x, float * y);                          \
    void qsim_cast_bf16_f32_##isa(size_t n, const float * x, float * y);
#include "qdq_variants.inc"
#undef QSIM_QDQ_VARIANT

#endif /* QSIM_QDQ_VARIANTS_H */
