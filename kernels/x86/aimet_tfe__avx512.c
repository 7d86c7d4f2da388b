/* aimet_tfe__avx512.c: the tf_enhanced loops of analyzers/aimet_tfe_kernels.h with the AVX-512
 * flags of kernels/build.json: the candidate terms, the head bounds and the histogram slots 16 at
 * a time with intrinsics, as aimet_tfe__avx2.c does 8 at a time (a search took 7.4 us against 9.1
 * with the compiler's loops at -O3; counting 128K values 0.39-0.52 ns a value against 0.51-0.69
 * with the compiler's slots, which test each value ten times; measured on a Zen 4, 2026-12-06).
 * Each operation is the reference's, on the same values: the same bits. */
#include <immintrin.h>

#include "analyzers/aimet_tfe_kernels.h"

/* qsim_tfe_term of 16 lanes, as qsim_tfe_term_v8: roundscale to nearest is qsim_tfe_rint;
 * max_ps(q, 0) is `q > 0 ? q : 0` (a NaN q gives 0) and min_ps(., steps) the reference's clamp;
 * ordered comparisons pick gamma where it does. */
static inline __m512 qsim_tfe_term_v16(__m512 c, __m512 h, __m512 steps, __m512 d, __m512 o) {
    const __m512    zero = _mm512_setzero_ps();
    const __m512    q    = _mm512_roundscale_ps(_mm512_sub_ps(_mm512_div_ps(c, d), o),
                                                _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __mmask16 out  = _mm512_cmp_ps_mask(q, zero, _CMP_LT_OQ) |
                          _mm512_cmp_ps_mask(q, steps, _CMP_GT_OQ);
    const __m512    g    = _mm512_mask_blend_ps(out, _mm512_set1_ps(1.0f),
                                                _mm512_set1_ps(QSIM_TFE_GAMMA));
    const __m512    qc   = _mm512_min_ps(_mm512_max_ps(q, zero), steps);
    const __m512    e    = _mm512_sub_ps(_mm512_mul_ps(_mm512_add_ps(qc, o), d), c);
    return _mm512_mul_ps(_mm512_mul_ps(_mm512_mul_ps(e, e), h), g);
}

/* qsim_tfe_terms, 16 bins a step (n is a multiple of 8: an odd half step as the reference). */
static inline void qsim_tfe_terms_v16(int n, const float * restrict c, const float * restrict h,
                                      float steps, float d, float o, float * restrict acc) {
    const __m512 vs = _mm512_set1_ps(steps), vd = _mm512_set1_ps(d), vo = _mm512_set1_ps(o);
    int          i  = 0;
    for (; i + 16 <= n; i += 16) {
        const __m512 t =
            qsim_tfe_term_v16(_mm512_loadu_ps(c + i), _mm512_loadu_ps(h + i), vs, vd, vo);
        _mm512_storeu_ps(acc + i, _mm512_add_ps(_mm512_loadu_ps(acc + i), t));
    }
    qsim_tfe_terms(n - i, c + i, h + i, steps, d, o, acc + i);
}

/* qsim_tfe_heads, 16 candidates a step (max_ps(a, b) is `a > b ? a : b`), the rest as the
 * reference. */
static inline void qsim_tfe_heads_v16(int n, float c0, float h0, float c1, float h1, float steps,
                                      const float * restrict d, const float * restrict o,
                                      float * restrict head) {
    const __m512 vc0 = _mm512_set1_ps(c0), vh0 = _mm512_set1_ps(h0), vc1 = _mm512_set1_ps(c1);
    const __m512 vh1 = _mm512_set1_ps(h1), vs = _mm512_set1_ps(steps);
    int          j   = 0;
    for (; j + 16 <= n; j += 16) {
        const __m512 vd = _mm512_loadu_ps(d + j), vo = _mm512_loadu_ps(o + j);
        _mm512_storeu_ps(head + j, _mm512_max_ps(qsim_tfe_term_v16(vc0, vh0, vs, vd, vo),
                                                 qsim_tfe_term_v16(vc1, vh1, vs, vd, vo)));
    }
    qsim_tfe_heads(n - j, c0, h0, c1, h1, steps, d + j, o + j, head + j);
}

/* qsim_tfe_slots, 16 values a step, as qsim_tfe_slots_v8: max_ps(t, 0) is `t > 0 ? t : 0` (a
 * NaN t gives 0, as the reference's clamp), then min_ps with the last bin, truncated; a value
 * outside [lo, hi] takes its slot as the reference tests it (below first), and a NaN, which fails
 * every ordered test, keeps the last one. */
static inline void qsim_tfe_slots_v16(size_t m, const float * restrict x, float lo, float hi,
                                      int32_t * restrict slot) {
    const __m512  vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi), width = _mm512_set1_ps(hi - lo);
    const __m512  bins = _mm512_set1_ps((float) QSIM_TFE_BINS), last = _mm512_set1_ps((float) (QSIM_TFE_BINS - 1));
    const __m512i below = _mm512_set1_epi32(QSIM_TFE_BINS), above = _mm512_set1_epi32(QSIM_TFE_BINS + 1);
    const __m512i nan = _mm512_set1_epi32(QSIM_TFE_BINS + 2);
    size_t        j = 0;
    for (; j + 16 <= m; j += 16) {
        const __m512    v  = _mm512_loadu_ps(x + j);
        const __m512    t  = _mm512_div_ps(_mm512_mul_ps(_mm512_sub_ps(v, vlo), bins), width);
        const __m512i   s  = _mm512_cvttps_epi32(_mm512_min_ps(_mm512_max_ps(t, _mm512_setzero_ps()), last));
        const __mmask16 in = _mm512_cmp_ps_mask(v, vlo, _CMP_GE_OQ) & _mm512_cmp_ps_mask(v, vhi, _CMP_LE_OQ);
        __m512i         r  = _mm512_mask_mov_epi32(nan, _mm512_cmp_ps_mask(v, vhi, _CMP_GT_OQ), above);
        r = _mm512_mask_mov_epi32(r, _mm512_cmp_ps_mask(v, vlo, _CMP_LT_OQ), below);
        _mm512_storeu_si512(slot + j, _mm512_mask_mov_epi32(r, in, s));
    }
    qsim_tfe_slots(m - j, x + j, lo, hi, slot + j);
}

QSIM_TFE_DEFINE_VARIANT_WITH(avx512, qsim_tfe_terms_v16, qsim_tfe_heads_v16, qsim_tfe_slots_v16)
