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

/* Runs of at least this many elements whose output starts on a vector boundary and is not one
 * of their inputs are written by the ISA variants with non-temporal stores: 16 MiB and more
 * cannot stay in cache anyway, and streaming them skips reading each output line before
 * overwriting it. A run written in place keeps ordinary stores: its lines are in the cache as it
 * reads them (streaming them made a 16 MiB in-place qdq 5x slower on one thread). The values
 * written are the same either way. */
#define QSIM_STREAM_MIN ((size_t) 1 << 22)

/* The loops of the ISA variants prefetch their inputs this many floats (2 KiB) ahead: on long runs
 * the hardware prefetcher alone leaves one core short of bandwidth while it computes (range-
 * learning backward at 16M elements: 14 % faster, in cache no slower). Prefetches past the end
 * of a run are harmless: they never fault. */
#define QSIM_PREFETCH_AHEAD 512

/* Prefetches the line QSIM_PREFETCH_AHEAD floats after p (immintrin.h). A macro: GCC deems a
 * function holding only a prefetch free of effects and deletes the calls. */
#define QSIM_PREFETCH(p) _mm_prefetch((const char *) ((p) + QSIM_PREFETCH_AHEAD), _MM_HINT_T0)

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
    void qsim_cast_bf16_f32_##isa(size_t n, const float * x, float * y);                         \
    void qsim_minifloat_f32_##isa(size_t n, const float * x, float * y, float s,                 \
                                  const qsim_minifloat * m);                                     \
    void qsim_block_float_f32_##isa(size_t n, const float * x, float * y,                        \
                                    const qsim_block_format * b);                                \
    void qsim_qdq_rows_f32_##isa(const qsim_rows * r, const float * x, float * y);               \
    void qsim_quantize_rows_f32_##isa(const qsim_rows * r, const float * x, float * y);          \
    void qsim_dequantize_rows_f32_##isa(const qsim_rows * r, const float * x, float * y);        \
    void qsim_qdq_rows_backward_f32_##isa(const qsim_rows * r, const float * x, const float * dy, \
                                          float * dx, double * sums);                            \
    void qsim_quantize_rows_backward_f32_##isa(const qsim_rows * r, const float * x,             \
                                               const float * dy, float * dx, double * sums);     \
    void qsim_dequantize_rows_backward_f32_##isa(const qsim_rows * r, const float * x,           \
                                                 const float * dy, float * dx, double * sums); \
    void qsim_widen_h16_##isa(qsim_half_kind kind, size_t n, const uint16_t * x, float * y);   \
    void qsim_narrow_h16_##isa(qsim_half_kind kind, size_t n, const float * x, uint16_t * y);  \
    void qsim_qdq_h16_##isa(qsim_half_kind kind, size_t n, const uint16_t * x, uint16_t * y,    \
                            qsim_grid g);                                                        \
    void qsim_qdq_backward_h16_##isa(qsim_half_kind kind, size_t n, const uint16_t * x,          \
                                     const uint16_t * dy, uint16_t * dx, qsim_grid g);           \
    void qsim_qdq_mask_f32_##isa(size_t n, const float * x, float * y, uint8_t * clamped,        \
                                 qsim_grid g, float gate);                                       \
    void qsim_qdq_mask_backward_f32_##isa(size_t n, const uint8_t * clamped, const float * dy,   \
                                          float * dx);                                           \
    void qsim_qdq_mask_backward_h16_##isa(size_t n, const uint8_t * clamped, const uint16_t * dy, \
                                          uint16_t * dx);                                        \
    void qsim_qdq_mask_h16_##isa(qsim_half_kind kind, size_t n, const uint16_t * x, uint16_t * y,  \
                                 uint8_t * clamped, qsim_grid g, float gate);
/* A variant that is `base` but for its qdq_h16 kernel (and its supported() check). */
#define QSIM_QDQ_VARIANT_H16(isa, base)                                                          \
    int  qsim_##isa##_supported(void);                                                           \
    void qsim_qdq_h16_##isa(qsim_half_kind kind, size_t n, const uint16_t * x, uint16_t * y,    \
                            qsim_grid g);
#include "qdq/qdq_variants.inc"
#undef QSIM_QDQ_VARIANT
#undef QSIM_QDQ_VARIANT_H16

/* qdq_backward_h16 composed of a variant's widen_h16, fp32 qdq_backward and narrow_h16, over
 * stack chunks (the reference, and variants without a fused form). */
QSIM_ALWAYS_INLINE void qsim_qdq_backward_h16_composed(qsim_widen_fn widen, qsim_run_bwd_fn bwd,
                                                       qsim_narrow_fn narrow, qsim_half_kind kind,
                                                       size_t n, const uint16_t * x,
                                                       const uint16_t * dy, uint16_t * dx,
                                                       qsim_grid g) {
    float bx[256], bd[256];
    for (size_t at = 0; at < n; at += 256) {
        const size_t m = n - at < 256 ? n - at : 256;
        widen(kind, m, x + at, bx);
        widen(kind, m, dy + at, bd);
        bwd(m, bx, bd, bd, g, NULL);
        narrow(kind, m, bd, dx + at);
    }
}

/* qdq_mask_h16 composed of a variant's widen_h16, fp32 qdq_mask and narrow_h16, over stack
 * chunks (a multiple of 8: each chunk's bits start a byte). */
QSIM_ALWAYS_INLINE void qsim_qdq_mask_h16_composed(qsim_widen_fn widen, qsim_run_mask_fn mask,
                                                   qsim_narrow_fn narrow, qsim_half_kind kind,
                                                   size_t n, const uint16_t * x, uint16_t * y,
                                                   uint8_t * clamped, qsim_grid g, float gate) {
    float buf[256];
    for (size_t at = 0; at < n; at += 256) {
        const size_t m = n - at < 256 ? n - at : 256;
        widen(kind, m, x + at, buf);
        mask(m, buf, buf, clamped + at / 8, g, gate);
        narrow(kind, m, buf, y + at);
    }
}

#endif /* QSIM_QDQ_VARIANTS_H */
