/*
 * half__avx512bf16.c: the qdq_h16 kernel of the avx512bf16 variant (qdq_variants.inc; its other
 * kernels are avx512's): qdq on bf16 data, rounded by the AVX512-BF16 conversion vcvtne2ps2bf16,
 * 32 values per step.
 *
 * Bit-exact with qsim_qdq_h16_ref: vcvtne2ps2bf16 rounds to nearest even like qsim_f32_to_bf16
 * except that it flushes denormal results to zero. A qdq result is never NaN (the clamp maps NaN
 * to qmin) and is 0 or at least `scale` in magnitude, so runs with scale >= FLT_MIN (no denormal
 * results) take the conversion; other runs, and fp16 data, take qsim_qdq_h16_avx512.
 */
#include <float.h>

#include "x86/qdq_v16.h"

/* qdq of 16 bf16 values, in fp32 (bf16 widens exactly by a shift). */
static inline __m512 qsim_bf16_qdq(__m256i h, const qsim_v16_grid * g, qsim_v16_op qdq) {
    const __m512i w = _mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16);
    return qdq(_mm512_castsi512_ps(w), g);
}

QSIM_ALWAYS_INLINE void qsim_qdq_bf16_run(size_t n, const uint16_t * x, uint16_t * y,
                                          const qsim_v16_grid * g, qsim_v16_op qdq) {
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        const __m512 lo = qsim_bf16_qdq(_mm256_loadu_si256((const __m256i *) (x + i)), g, qdq);
        const __m512 hi = qsim_bf16_qdq(_mm256_loadu_si256((const __m256i *) (x + i + 16)), g, qdq);
        _mm512_storeu_si512(y + i, (__m512i) _mm512_cvtne2ps_pbh(hi, lo));
    }
    for (; i < n; i += 16) {
        const size_t    m = n - i < 16 ? n - i : 16;
        const __mmask16 k = (__mmask16) ((1u << m) - 1u);
        const __m512    v = qsim_bf16_qdq(_mm256_maskz_loadu_epi16(k, x + i), g, qdq);
        _mm256_mask_storeu_epi16(y + i, k, (__m256i) _mm512_cvtneps_pbh(v));
    }
}

void qsim_qdq_h16_avx512bf16(qsim_half_kind kind, size_t n, const uint16_t * x, uint16_t * y,
                             qsim_grid g) {
    if (kind != QSIM_HALF_BF16 || !(g.scale >= FLT_MIN)) {
        qsim_qdq_h16_avx512(kind, n, x, y, g);
        return;
    }
    const qsim_v16_grid v = qsim_v16_grid_of(g);
    switch (qsim_v16_form_of(g)) {
    case QSIM_V16_BY_RECIPROCAL:
        qsim_qdq_bf16_run(n, x, y, &v, qsim_v16_qdq_by_reciprocal);
        break;
    case QSIM_V16_SHIFTED:
        qsim_qdq_bf16_run(n, x, y, &v, qsim_v16_qdq_shifted);
        break;
    default:
        qsim_qdq_bf16_run(n, x, y, &v, qsim_v16_qdq);
    }
}
