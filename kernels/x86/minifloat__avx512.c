/*
 * minifloat__avx512.c: the minifloat and block-format run kernels of qsim/minifloat.h with
 * AVX-512 (F, BW, VL, DQ), 16 floats per step. Bit-exact with kernels/float/minifloat_ref.c: each
 * lane goes through the operations of qsim_mf_round (kernels/float/minifloat_common.h) in the
 * same order, both rounding paths computed and the right one selected by mask; block maxima are
 * integer maxima of the magnitude bits, as in the reference. Tails use masked loads and stores.
 */
#include <immintrin.h>

#include "float/minifloat_common.h"
#include "qdq/qdq_variants.h"

typedef struct qsim_v16_mf {
    __m128i   shift;
    __m512i   round_bias, odd_mask, odd_flip, keep, sub_limit, max_bits, over_bits, abs, sign, inf;
    __m512    sub_magic;
    __mmask16 unsigned_zero;
} qsim_v16_mf;

static inline qsim_v16_mf qsim_v16_mf_of(const qsim_minifloat * m) {
    const qsim_v16_mf v = {
        _mm_cvtsi32_si128((int) m->shift),
        _mm512_set1_epi32((int) m->round_bias), _mm512_set1_epi32((int) m->odd_mask),
        _mm512_set1_epi32((int) m->odd_flip),
        _mm512_set1_epi32((int) qsim_mf_keep(m)), _mm512_set1_epi32((int) m->sub_limit),
        _mm512_set1_epi32((int) m->max_bits), _mm512_set1_epi32((int) m->over_bits),
        _mm512_set1_epi32((int) QSIM_F32_ABS), _mm512_set1_epi32((int) QSIM_F32_SIGN),
        _mm512_set1_epi32((int) QSIM_F32_INF), _mm512_set1_ps(m->sub_magic),
        (__mmask16) (m->unsigned_zero ? 0xffffu : 0u),
    };
    return v;
}

/* qsim_mf_round on 16 lanes (magnitudes are below 2^31, so signed comparisons order them). */
static inline __m512 qsim_v16_mf_round(__m512 f, const qsim_v16_mf * m) {
    const __m512i u   = _mm512_castps_si512(f);
    const __m512i a   = _mm512_and_si512(u, m->abs);
    const __m512i odd = _mm512_and_si512(_mm512_xor_si512(_mm512_srl_epi32(a, m->shift), m->odd_flip), m->odd_mask);
    const __m512i rn  = _mm512_and_si512(_mm512_add_epi32(_mm512_add_epi32(a, m->round_bias), odd),
                                         m->keep);
    const __m512  af  = _mm512_castsi512_ps(a);
    const __m512i rs  = _mm512_castps_si512(
        _mm512_sub_ps(_mm512_add_ps(af, m->sub_magic), m->sub_magic));
    __m512i r = _mm512_mask_blend_epi32(_mm512_cmpgt_epi32_mask(m->sub_limit, a), rn, rs);
    r         = _mm512_mask_blend_epi32(_mm512_cmpgt_epi32_mask(r, m->max_bits), r, m->over_bits);
    const __mmask16 zero = _mm512_cmpeq_epi32_mask(r, _mm512_setzero_si512()) & m->unsigned_zero;
    const __m512i   sign = _mm512_maskz_and_epi32((__mmask16) ~zero, u, m->sign);
    const __m512    out  = _mm512_castsi512_ps(_mm512_or_si512(r, sign));
    return _mm512_mask_blend_ps(_mm512_cmpgt_epi32_mask(a, m->inf), out, f);
}

static inline __m512 qsim_v16_mf_scaled(__m512 x, __m512 s, const qsim_v16_mf * m) {
    return _mm512_mul_ps(qsim_v16_mf_round(_mm512_div_ps(x, s), m), s);
}

/* The first n (<= 16) lanes. */
static inline __mmask16 qsim_v16_lanes(size_t n) {
    return (__mmask16) ((1u << n) - 1u);
}

void qsim_minifloat_f32_avx512(size_t n, const float * x, float * y, float s,
                               const qsim_minifloat * m) {
    const qsim_v16_mf v  = qsim_v16_mf_of(m);
    const __m512      vs = _mm512_set1_ps(s);
    size_t            i  = 0;
    for (; i + 16 <= n; i += 16) {
        QSIM_PREFETCH(x + i);
        _mm512_storeu_ps(y + i, qsim_v16_mf_scaled(_mm512_loadu_ps(x + i), vs, &v));
    }
    if (i < n) {
        const __mmask16 k = qsim_v16_lanes(n - i);
        _mm512_mask_storeu_ps(y + i, k, qsim_v16_mf_scaled(_mm512_maskz_loadu_ps(k, x + i), vs, &v));
    }
}

/* One element vector of a block with scale s (qsim_block_element). */
static inline __m512 qsim_v16_block_element(__m512 x, __m512 s, const qsim_block_format * b,
                                            const qsim_v16_mf * m) {
    if (b->kind == QSIM_BLOCK_MX_INT8) {
        const __m512 q = _mm512_roundscale_ps(_mm512_div_ps(x, s),
                                              _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        const __m512 c =
            _mm512_max_ps(_mm512_set1_ps(-128.0f), _mm512_min_ps(_mm512_set1_ps(127.0f), q));
        return _mm512_mul_ps(_mm512_add_ps(c, _mm512_setzero_ps()), s);
    }
    return qsim_v16_mf_scaled(x, s, m);
}

/* One block of len (<= b->block) elements. */
static inline void qsim_v16_block(size_t len, const float * x, float * y,
                                  const qsim_block_format * b, const qsim_v16_mf * m) {
    __m512i amax = _mm512_setzero_si512();
    for (size_t j = 0; j < len; j += 16) {  /* masked-off lanes load +0: no effect on the max */
        const __mmask16 k = qsim_v16_lanes(len - j < 16 ? len - j : 16);
        amax = _mm512_max_epi32(amax, _mm512_and_si512(_mm512_castps_si512(_mm512_maskz_loadu_ps(k, x + j)), m->abs));
    }
    const float s = qsim_block_scale_of((uint32_t) _mm512_reduce_max_epi32(amax), b);
    if (s == 0.0f) {
        for (size_t j = 0; j < len; j++) {
            y[j] = qsim_block_element(x[j], s, b);
        }
        return;
    }
    const __m512 vs = _mm512_set1_ps(s);
    for (size_t j = 0; j < len; j += 16) {
        const __mmask16 k = qsim_v16_lanes(len - j < 16 ? len - j : 16);
        _mm512_mask_storeu_ps(y + j, k, qsim_v16_block_element(_mm512_maskz_loadu_ps(k, x + j), vs, b, m));
    }
}

void qsim_block_float_f32_avx512(size_t n, const float * x, float * y, const qsim_block_format * b) {
    const qsim_v16_mf v = qsim_v16_mf_of(&b->elem);
    for (size_t i = 0; i < n; i += b->block) {
        QSIM_PREFETCH(x + i);
        qsim_v16_block(n - i < b->block ? n - i : b->block, x + i, y + i, b, &v);
    }
}
