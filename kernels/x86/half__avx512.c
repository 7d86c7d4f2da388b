/*
 * half__avx512.c: the widen_h16 / narrow_h16 kernels with AVX-512 (F, BW, VL), 16 values per step.
 *
 * Bit-exact with qsim_widen_h16_ref / qsim_narrow_h16_ref (qdq_half.c): the hardware conversions
 * (vcvtph2ps, vcvtps2ph with round to nearest even) are exact or round like the reference, and
 * NaN lanes are rebuilt as the reference writes them (vcvtph2ps sets the quiet bit; vcvtps2ph keeps
 * payload bits). The last n % 16 values use masked loads and stores.
 */
#include <immintrin.h>

#include "qdq/qdq_variants.h"

static inline __m512i qsim_h16_set(uint32_t v) {
    return _mm512_set1_epi32((int) v);
}

/* 16 fp16 or bf16 values to fp32. */
static inline __m512 qsim_h16_widen(qsim_half_kind kind, __m256i h) {
    const __m512i u = _mm512_cvtepu16_epi32(h);
    if (kind == QSIM_HALF_BF16) {
        return _mm512_castsi512_ps(_mm512_slli_epi32(u, 16));
    }
    const __m512    hw   = _mm512_cvtph_ps(h);
    const __mmask16 nan  = _mm512_cmpgt_epi32_mask(_mm512_and_si512(u, qsim_h16_set(0x7fffu)),
                                                   qsim_h16_set(0x7c00u));
    const __m512i   sign = _mm512_slli_epi32(_mm512_and_si512(u, qsim_h16_set(0x8000u)), 16);
    const __m512i   pay  = _mm512_slli_epi32(_mm512_and_si512(u, qsim_h16_set(0x3ffu)), 13);
    const __m512i   bits = _mm512_or_si512(_mm512_or_si512(sign, pay), qsim_h16_set(0x7f800000u));
    return _mm512_mask_blend_ps(nan, hw, _mm512_castsi512_ps(bits));
}

/* 16 fp32 values to fp16 or bf16 bits in 32-bit lanes. */
static inline __m512i qsim_h16_narrow(qsim_half_kind kind, __m512 x) {
    const __m512i   u   = _mm512_castps_si512(x);
    const __mmask16 nan = _mm512_cmpgt_epi32_mask(_mm512_and_si512(u, qsim_h16_set(0x7fffffffu)),
                                                  qsim_h16_set(0x7f800000u));
    if (kind == QSIM_HALF_BF16) {
        const __m512i odd = _mm512_and_si512(_mm512_srli_epi32(u, 16), qsim_h16_set(1u));
        const __m512i r   = _mm512_srli_epi32(
            _mm512_add_epi32(_mm512_add_epi32(u, qsim_h16_set(0x7fffu)), odd), 16);
        return _mm512_mask_blend_epi32(nan, r, qsim_h16_set(0x7fc0u));
    }
    const __m512i r = _mm512_cvtepu16_epi32(
        _mm512_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    const __m512i quiet = _mm512_or_si512(
        _mm512_and_si512(_mm512_srli_epi32(u, 16), qsim_h16_set(0x8000u)), qsim_h16_set(0x7e00u));
    return _mm512_mask_blend_epi32(nan, r, quiet);
}

void qsim_widen_h16_avx512(qsim_half_kind kind, size_t n, const uint16_t * x, float * y) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m256i h = _mm256_loadu_si256((const __m256i *) (x + i));
        _mm512_storeu_ps(y + i, qsim_h16_widen(kind, h));
    }
    if (i < n) {
        const __mmask16 k = (__mmask16) ((1u << (n - i)) - 1u);
        const __m256i   h = _mm256_maskz_loadu_epi16(k, x + i);
        _mm512_mask_storeu_ps(y + i, k, qsim_h16_widen(kind, h));
    }
}

void qsim_narrow_h16_avx512(qsim_half_kind kind, size_t n, const float * x, uint16_t * y) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m512i r = qsim_h16_narrow(kind, _mm512_loadu_ps(x + i));
        _mm256_storeu_si256((__m256i *) (y + i), _mm512_cvtepi32_epi16(r));
    }
    if (i < n) {
        const __mmask16 k = (__mmask16) ((1u << (n - i)) - 1u);
        const __m512i   r = qsim_h16_narrow(kind, _mm512_maskz_loadu_ps(k, x + i));
        _mm256_mask_storeu_epi16(y + i, k, _mm512_cvtepi32_epi16(r));
    }
}
