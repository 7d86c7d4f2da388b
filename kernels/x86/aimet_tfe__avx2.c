/* aimet_tfe__avx2.c: the tf_enhanced loops of analyzers/aimet_tfe_kernels.h with the AVX2 flags
 * of kernels/build.json, the candidate terms, the head bounds and the histogram slots 8 at a time
 * with intrinsics (the compiler's versions of qsim_tfe_terms and qsim_tfe_slots take half again
 * as many instructions: it cannot turn their selects into min/max or their rounding into one
 * vroundps).
 * Each operation is the reference's, on the same values: the same bits. */
#include <immintrin.h>

#include "analyzers/aimet_tfe_kernels.h"

/* qsim_tfe_term of 8 lanes. vroundps to nearest is qsim_tfe_rint (half to even, integers and
 * NaN kept, the sign of a zero result kept); max_ps(q, 0) is `q > 0 ? q : 0` (a NaN q gives 0)
 * and min_ps(., steps) `. < steps ? . : steps`, the reference's clamp; ordered comparisons pick
 * gamma where it does. */
static inline __m256 qsim_tfe_term_v8(__m256 c, __m256 h, __m256 steps, __m256 d, __m256 o) {
    const __m256 zero = _mm256_setzero_ps();
    const __m256 q    = _mm256_round_ps(_mm256_sub_ps(_mm256_div_ps(c, d), o),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m256 out  = _mm256_or_ps(_mm256_cmp_ps(q, zero, _CMP_LT_OQ), _mm256_cmp_ps(q, steps, _CMP_GT_OQ));
    const __m256 g    = _mm256_blendv_ps(_mm256_set1_ps(1.0f), _mm256_set1_ps(QSIM_TFE_GAMMA), out);
    const __m256 qc   = _mm256_min_ps(_mm256_max_ps(q, zero), steps);
    const __m256 e    = _mm256_sub_ps(_mm256_mul_ps(_mm256_add_ps(qc, o), d), c);
    return _mm256_mul_ps(_mm256_mul_ps(_mm256_mul_ps(e, e), h), g);
}

/* qsim_tfe_terms, 8 bins a step. */
static inline void qsim_tfe_terms_v8(int n, const float * restrict c, const float * restrict h,
                                     float steps, float d, float o, float * restrict acc) {
    const __m256 vs = _mm256_set1_ps(steps), vd = _mm256_set1_ps(d), vo = _mm256_set1_ps(o);
    for (int i = 0; i < n; i += 8) {
        const __m256 t = qsim_tfe_term_v8(_mm256_loadu_ps(c + i), _mm256_loadu_ps(h + i), vs, vd, vo);
        _mm256_storeu_ps(acc + i, _mm256_add_ps(_mm256_loadu_ps(acc + i), t));
    }
}

/* qsim_tfe_heads, 8 candidates a step (max_ps(a, b) is `a > b ? a : b`), the rest as the
 * reference. */
static inline void qsim_tfe_heads_v8(int n, float c0, float h0, float c1, float h1, float steps,
                                     const float * restrict d, const float * restrict o,
                                     float * restrict head) {
    const __m256 vc0 = _mm256_set1_ps(c0), vh0 = _mm256_set1_ps(h0), vc1 = _mm256_set1_ps(c1);
    const __m256 vh1 = _mm256_set1_ps(h1), vs = _mm256_set1_ps(steps);
    int          j   = 0;
    for (; j + 8 <= n; j += 8) {
        const __m256 vd = _mm256_loadu_ps(d + j), vo = _mm256_loadu_ps(o + j);
        _mm256_storeu_ps(head + j, _mm256_max_ps(qsim_tfe_term_v8(vc0, vh0, vs, vd, vo),
                                                 qsim_tfe_term_v8(vc1, vh1, vs, vd, vo)));
    }
    qsim_tfe_heads(n - j, c0, h0, c1, h1, steps, d + j, o + j, head + j);
}

/* qsim_tfe_slots, 8 values a step: max_ps(t, 0) is `t > 0 ? t : 0` (a NaN t gives 0, as the
 * reference's clamp), then min_ps with the last bin, truncated; out-of-range values, tested as
 * the reference does, then take their slots (a NaN fails both ordered tests: the last one). */
static inline void qsim_tfe_slots_v8(size_t m, const float * restrict x, float lo, float hi,
                                     int32_t * restrict slot) {
    const __m256  vlo = _mm256_set1_ps(lo), vhi = _mm256_set1_ps(hi), width = _mm256_set1_ps(hi - lo);
    const __m256  bins = _mm256_set1_ps((float) QSIM_TFE_BINS), last = _mm256_set1_ps((float) (QSIM_TFE_BINS - 1));
    const __m256i below = _mm256_set1_epi32(QSIM_TFE_BINS), above = _mm256_set1_epi32(QSIM_TFE_BINS + 1);
    const __m256i nan = _mm256_set1_epi32(QSIM_TFE_BINS + 2);
    size_t        j = 0;
    for (; j + 8 <= m; j += 8) {
        const __m256 v = _mm256_loadu_ps(x + j);
        const __m256 t = _mm256_div_ps(_mm256_mul_ps(_mm256_sub_ps(v, vlo), bins), width);
        __m256i      s = _mm256_cvttps_epi32(_mm256_min_ps(_mm256_max_ps(t, _mm256_setzero_ps()), last));
        s = _mm256_blendv_epi8(s, below, _mm256_castps_si256(_mm256_cmp_ps(v, vlo, _CMP_LT_OQ)));
        s = _mm256_blendv_epi8(s, above, _mm256_castps_si256(_mm256_cmp_ps(v, vhi, _CMP_GT_OQ)));
        s = _mm256_blendv_epi8(s, nan, _mm256_castps_si256(_mm256_cmp_ps(v, v, _CMP_UNORD_Q)));
        _mm256_storeu_si256((__m256i *) (slot + j), s);
    }
    qsim_tfe_slots(m - j, x + j, lo, hi, slot + j);
}

QSIM_TFE_DEFINE_VARIANT_WITH(avx2, qsim_tfe_terms_v8, qsim_tfe_heads_v8, qsim_tfe_slots_v8)
