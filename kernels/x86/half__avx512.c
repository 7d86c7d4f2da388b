/*
 * half__avx512.c: the widen_h16 / narrow_h16 kernels with AVX-512 (F, BW, VL), 16 values per step.
 *
 * Bit-exact with qsim_widen_h16_ref / qsim_narrow_h16_ref (qdq_half.c): the hardware conversions
 * (vcvtph2ps, vcvtps2ph with round to nearest even) are exact or round like the reference, and
 * NaN lanes are rebuilt as the reference writes them (vcvtph2ps sets the quiet bit; vcvtps2ph keeps
 * payload bits). The last n % 16 values use masked loads and stores.
 *
 * The fused kernels, bit-exact with qsim_qdq_h16_ref / qsim_qdq_backward_h16_ref:
 * qsim_qdq_h16_avx512 chains the widen, the qdq of qdq_v16.h and the narrow in registers
 * (without their NaN cases: a qdq result is never NaN); qsim_qdq_backward_h16_avx512 computes the
 * straight-through mask from x and selects the 16-bit dy itself (NaN dy canonical as narrow
 * writes it).
 */
#include "x86/qdq_v16.h"

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

/* qdq of 16 values in fp32, rounded to fp16 or bf16 bits in 32-bit lanes, in registers. A qdq
 * result is never NaN (the clamp maps NaN to qmin), so the NaN cases of widen and narrow, which
 * only rebuild NaN bits, are left out: fp16 lanes take the hardware conversions alone, bf16 lanes
 * the integer round to nearest even of qsim_h16_narrow. */
static inline __m512 qsim_h16_qdq_f16(__m256i h, const qsim_v16_grid * g, qsim_v16_op qdq) {
    return qdq(_mm512_cvtph_ps(h), g);
}

/* The bf16 rounding of qsim_h16_narrow of qdq(w), w 16 bf16 values widened to fp32 lanes: the
 * result in the low 16 bits of each lane. */
static inline __m512i qsim_h16_qdq_bf16(__m512i w, const qsim_v16_grid * g, qsim_v16_op qdq) {
    const __m512i u   = _mm512_castps_si512(qdq(_mm512_castsi512_ps(w), g));
    const __m512i odd = _mm512_and_si512(_mm512_srli_epi32(u, 16), qsim_h16_set(1u));
    return _mm512_srli_epi32(_mm512_add_epi32(_mm512_add_epi32(u, qsim_h16_set(0x7fffu)), odd), 16);
}

static inline __m256i qsim_h16_load(const uint16_t * x) {
    return _mm256_loadu_si256((const __m256i *) x);
}

#define QSIM_H16_RNE (_MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)

QSIM_ALWAYS_INLINE void qsim_qdq_f16_run(size_t n, const uint16_t * x, uint16_t * y,
                                         const qsim_v16_grid * g, qsim_v16_op qdq) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m512 v = qsim_h16_qdq_f16(qsim_h16_load(x + i), g, qdq);
        _mm256_storeu_si256((__m256i *) (y + i), _mm512_cvtps_ph(v, QSIM_H16_RNE));
    }
    if (i < n) {
        const __mmask16 k = (__mmask16) ((1u << (n - i)) - 1u);
        const __m512    v = qsim_h16_qdq_f16(_mm256_maskz_loadu_epi16(k, x + i), g, qdq);
        _mm256_mask_storeu_epi16(y + i, k, _mm512_cvtps_ph(v, QSIM_H16_RNE));
    }
}

/* 32 bf16 values a step: unpack widens values 0-3, 8-11, ... (lo) and 4-7, 12-15, ... (hi) of
 * each 128-bit lane exactly (bf16 is the upper half of an fp32); packus, in-lane like unpack,
 * puts them back in order. */
QSIM_ALWAYS_INLINE void qsim_qdq_bf16_run(size_t n, const uint16_t * x, uint16_t * y,
                                          const qsim_v16_grid * g, qsim_v16_op qdq) {
    const __m512i z = _mm512_setzero_si512();
    size_t        i = 0;
    for (; i + 32 <= n; i += 32) {
        const __m512i h  = _mm512_loadu_si512(x + i);
        const __m512i lo = qsim_h16_qdq_bf16(_mm512_unpacklo_epi16(z, h), g, qdq);
        const __m512i hi = qsim_h16_qdq_bf16(_mm512_unpackhi_epi16(z, h), g, qdq);
        _mm512_storeu_si512(y + i, _mm512_packus_epi32(lo, hi));
    }
    for (; i < n; i += 16) {
        const size_t    m = n - i < 16 ? n - i : 16;
        const __mmask16 k = (__mmask16) ((1u << m) - 1u);
        const __m512i   w = _mm512_castps_si512(
            qsim_h16_widen(QSIM_HALF_BF16, _mm256_maskz_loadu_epi16(k, x + i)));
        _mm256_mask_storeu_epi16(y + i, k, _mm512_cvtepi32_epi16(qsim_h16_qdq_bf16(w, g, qdq)));
    }
}

/* qdq of one kind (a constant where inlined) with the form qdq. */
QSIM_ALWAYS_INLINE void qsim_qdq_h16_run(qsim_half_kind kind, size_t n, const uint16_t * x,
                                         uint16_t * y, const qsim_v16_grid * g, qsim_v16_op qdq) {
    if (kind == QSIM_HALF_BF16) {
        qsim_qdq_bf16_run(n, x, y, g, qdq);
    } else {
        qsim_qdq_f16_run(n, x, y, g, qdq);
    }
}

/* qdq of one kind in g's fastest form (qsim_v16_form_of); kind a constant where inlined. */
QSIM_ALWAYS_INLINE void qsim_qdq_h16_kind(qsim_half_kind kind, size_t n, const uint16_t * x,
                                          uint16_t * y, qsim_grid g) {
    const qsim_v16_grid v = qsim_v16_grid_of(g);
    switch (qsim_v16_form_of(g)) {
    case QSIM_V16_BY_RECIPROCAL:
        qsim_qdq_h16_run(kind, n, x, y, &v, qsim_v16_qdq_by_reciprocal);
        break;
    case QSIM_V16_SHIFTED:
        qsim_qdq_h16_run(kind, n, x, y, &v, qsim_v16_qdq_shifted);
        break;
    default:
        qsim_qdq_h16_run(kind, n, x, y, &v, qsim_v16_qdq);
    }
}

void qsim_qdq_h16_avx512(qsim_half_kind kind, size_t n, const uint16_t * x, uint16_t * y,
                         qsim_grid g) {
    if (kind == QSIM_HALF_BF16) {
        qsim_qdq_h16_kind(QSIM_HALF_BF16, n, x, y, g);
    } else {
        qsim_qdq_h16_kind(QSIM_HALF_F16, n, x, y, g);
    }
}

/* dy as narrow_h16 writes a widened dy: itself, or for NaN the quiet NaN (bf16 0x7FC0, fp16
 * sign | 0x7E00). */
static inline __m256i qsim_h16_canonical(qsim_half_kind kind, __m256i d) {
    const __m256i mag = _mm256_and_si256(d, _mm256_set1_epi16(0x7fff));
    if (kind == QSIM_HALF_BF16) {
        const __mmask16 nan = _mm256_cmpgt_epu16_mask(mag, _mm256_set1_epi16(0x7f80));
        return _mm256_mask_blend_epi16(nan, d, _mm256_set1_epi16(0x7fc0));
    }
    const __mmask16 nan   = _mm256_cmpgt_epu16_mask(mag, _mm256_set1_epi16(0x7c00));
    const __m256i   quiet = _mm256_or_si256(_mm256_andnot_si256(mag, d), _mm256_set1_epi16(0x7e00));
    return _mm256_mask_blend_epi16(nan, d, quiet);
}

/* The straight-through mask (qsim_v16_on_grid) of 16 values; x widened without rebuilding NaN
 * bits (NaN is off the grid either way). */
QSIM_ALWAYS_INLINE __mmask16 qsim_h16_ste_mask(qsim_half_kind kind, __m256i h,
                                               const qsim_v16_grid * g, qsim_v16_form form) {
    const __m512 x =
        kind == QSIM_HALF_BF16 ? qsim_h16_widen(QSIM_HALF_BF16, h) : _mm512_cvtph_ps(h);
    return qsim_v16_on_grid(x, g, form);
}

/* dx = dy where x is on the grid, else +0, on the 16-bit values themselves; kind and form are
 * constants where inlined. */
QSIM_ALWAYS_INLINE void qsim_h16_ste_run(qsim_half_kind kind, size_t n, const uint16_t * x,
                                         const uint16_t * dy, uint16_t * dx,
                                         const qsim_v16_grid * g, qsim_v16_form form) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __mmask16 m = qsim_h16_ste_mask(kind, qsim_h16_load(x + i), g, form);
        const __m256i   d = qsim_h16_canonical(kind, qsim_h16_load(dy + i));
        _mm256_storeu_si256((__m256i *) (dx + i), _mm256_maskz_mov_epi16(m, d));
    }
    if (i < n) {
        const __mmask16 k = (__mmask16) ((1u << (n - i)) - 1u);
        const __mmask16 m = qsim_h16_ste_mask(kind, _mm256_maskz_loadu_epi16(k, x + i), g, form);
        const __m256i   d = qsim_h16_canonical(kind, _mm256_maskz_loadu_epi16(k, dy + i));
        _mm256_mask_storeu_epi16(dx + i, k, _mm256_maskz_mov_epi16(m, d));
    }
}

/* The backward of one kind in g's fastest form; kind a constant where inlined. */
QSIM_ALWAYS_INLINE void qsim_h16_ste_kind(qsim_half_kind kind, size_t n, const uint16_t * x,
                                          const uint16_t * dy, uint16_t * dx, qsim_grid g) {
    const qsim_v16_grid v = qsim_v16_grid_of(g);
    switch (qsim_v16_form_of(g)) {
    case QSIM_V16_BY_RECIPROCAL:
        qsim_h16_ste_run(kind, n, x, dy, dx, &v, QSIM_V16_BY_RECIPROCAL);
        break;
    case QSIM_V16_SHIFTED:
        qsim_h16_ste_run(kind, n, x, dy, dx, &v, QSIM_V16_SHIFTED);
        break;
    default:
        qsim_h16_ste_run(kind, n, x, dy, dx, &v, QSIM_V16_PLAIN);
    }
}

void qsim_qdq_backward_h16_avx512(qsim_half_kind kind, size_t n, const uint16_t * x,
                                  const uint16_t * dy, uint16_t * dx, qsim_grid g) {
    if (kind == QSIM_HALF_BF16) {
        qsim_h16_ste_kind(QSIM_HALF_BF16, n, x, dy, dx, g);
    } else {
        qsim_h16_ste_kind(QSIM_HALF_F16, n, x, dy, dx, g);
    }
}

/* The AVX2 loops (the fp32 mask kernels have 16-lane forms, qdq__avx512.c). */
void qsim_qdq_mask_backward_h16_avx512(size_t n, const uint8_t * clamped, const uint16_t * dy,
                                       uint16_t * dx) {
    qsim_qdq_mask_backward_h16_avx2(n, clamped, dy, dx);
}

void qsim_qdq_mask_h16_avx512(qsim_half_kind kind, size_t n, const uint16_t * x, uint16_t * y,
                              uint8_t * clamped, qsim_grid g, float gate) {
    qsim_qdq_mask_h16_avx2(kind, n, x, y, clamped, g, gate);
}
