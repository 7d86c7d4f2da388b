/*
 * minifloat__avx2.c: the minifloat and block-format run kernels of qsim/minifloat.h with AVX2,
 * 8 floats per step. Bit-exact with kernels/float/minifloat_ref.c: each lane goes through the
 * operations of qsim_mf_round (kernels/float/minifloat_common.h) in the same order, both rounding
 * paths computed and the right one selected, except in finite MX float blocks, whose scaled
 * elements take a shorter rounding to the same values (qsim_v8_mx_round) with the block scale
 * computed in the vector registers (qsim_v8_mx32); block maxima are
 * integer maxima of the magnitude bits, as in the reference. Tails use masked loads and stores (never outside the run). Long
 * aligned runs (QSIM_STREAM_MIN) not written in place are written with non-temporal stores, the
 * same values.
 */
#include "float/minifloat_common.h"
#include "x86/qdq_v8.h"

typedef struct qsim_v8_mf {
    __m128i shift;
    __m256i step, round_bias, odd_mask, odd_flip, keep, sub_limit, max_bits, over_bits, zero_sign, abs, sign, inf;
    __m256  sub_magic;
} qsim_v8_mf;

static inline qsim_v8_mf qsim_v8_mf_of(const qsim_minifloat * m) {
    const qsim_v8_mf v = {
        _mm_cvtsi32_si128((int) m->shift), _mm256_set1_epi32((int) (m->shift << 23)),
        _mm256_set1_epi32((int) m->round_bias), _mm256_set1_epi32((int) m->odd_mask),
        _mm256_set1_epi32((int) m->odd_flip),
        _mm256_set1_epi32((int) qsim_mf_keep(m)), _mm256_set1_epi32((int) m->sub_limit),
        _mm256_set1_epi32((int) m->max_bits), _mm256_set1_epi32((int) m->over_bits),
        _mm256_set1_epi32(m->unsigned_zero ? -1 : 0), _mm256_set1_epi32((int) QSIM_F32_ABS),
        _mm256_set1_epi32((int) QSIM_F32_SIGN), _mm256_set1_epi32((int) QSIM_F32_INF),
        _mm256_set1_ps(m->sub_magic),
    };
    return v;
}

/* qsim_mf_round on 8 lanes (magnitudes are below 2^31, so signed comparisons order them). */
static inline __m256 qsim_v8_mf_round(__m256 f, const qsim_v8_mf * m) {
    const __m256i u    = _mm256_castps_si256(f);
    const __m256i a    = _mm256_and_si256(u, m->abs);
    const __m256i odd  = _mm256_and_si256(_mm256_xor_si256(_mm256_srl_epi32(a, m->shift), m->odd_flip), m->odd_mask);
    const __m256i rn   = _mm256_and_si256(_mm256_add_epi32(_mm256_add_epi32(a, m->round_bias), odd),
                                          m->keep);
    const __m256  af   = _mm256_castsi256_ps(a);
    const __m256i rs   = _mm256_castps_si256(
        _mm256_sub_ps(_mm256_add_ps(af, m->sub_magic), m->sub_magic));
    __m256i       r    = _mm256_blendv_epi8(rn, rs, _mm256_cmpgt_epi32(m->sub_limit, a));
    r                  = _mm256_blendv_epi8(r, m->over_bits, _mm256_cmpgt_epi32(r, m->max_bits));
    const __m256i zero = _mm256_and_si256(_mm256_cmpeq_epi32(r, _mm256_setzero_si256()), m->zero_sign);
    const __m256i sign = _mm256_andnot_si256(zero, _mm256_and_si256(u, m->sign));
    const __m256  out  = _mm256_castsi256_ps(_mm256_or_si256(r, sign));
    return _mm256_blendv_ps(out, f, _mm256_castsi256_ps(_mm256_cmpgt_epi32(a, m->inf)));
}

static inline __m256 qsim_v8_mf_scaled(__m256 x, __m256 s, const qsim_v8_mf * m) {
    return _mm256_mul_ps(qsim_v8_mf_round(_mm256_div_ps(x, s), m), s);
}

/* Stores 8 outputs, non-temporally when `stream` (p then 32-byte aligned). */
static inline void qsim_v8_put(float * p, __m256 v, int stream) {
    if (stream) {
        _mm256_stream_ps(p, v);
    } else {
        _mm256_storeu_ps(p, v);
    }
}

void qsim_minifloat_f32_avx2(size_t n, const float * x, float * y, float s, const qsim_minifloat * m) {
    const qsim_v8_mf v  = qsim_v8_mf_of(m);
    const __m256     vs = _mm256_set1_ps(s);
    const int        st = qsim_v8_stream(n, y, x, x);
    size_t           i  = 0;
    for (; i + 8 <= n; i += 8) {
        QSIM_PREFETCH(x + i);
        qsim_v8_put(y + i, qsim_v8_mf_scaled(_mm256_loadu_ps(x + i), vs, &v), st);
    }
    if (st) {
        _mm_sfence();
    }
    if (i < n) {
        const __m256i k = qsim_v8_first(n - i);
        _mm256_maskstore_ps(y + i, k, qsim_v8_mf_scaled(_mm256_maskload_ps(x + i, k), vs, &v));
    }
}

/* One element vector of a block: t = x * inv when inv is the exact reciprocal of the scale s (a
 * power of two: x * 2^-k and x / 2^k are the same correctly rounded value), else t = x / s;
 * then qsim_block_element on t. */
static inline __m256 qsim_v8_block_element(__m256 x, __m256 s, __m256 inv, int exact,
                                           const qsim_block_format * b, const qsim_v8_mf * m) {
    const __m256 t = exact ? _mm256_mul_ps(x, inv) : _mm256_div_ps(x, s);
    if (b->kind == QSIM_BLOCK_MX_INT8) {
        const __m256 q = _mm256_round_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        const __m256 c = _mm256_max_ps(_mm256_set1_ps(-128.0f), _mm256_min_ps(_mm256_set1_ps(127.0f), q));
        return _mm256_mul_ps(_mm256_add_ps(c, _mm256_setzero_ps()), s);
    }
    return _mm256_mul_ps(qsim_v8_mf_round(t, m), s);
}

/* The largest magnitude bits of 8 lanes. */
static inline uint32_t qsim_v8_hmax(__m256i amax) {
    __m128i h = _mm_max_epi32(_mm256_castsi256_si128(amax), _mm256_extracti128_si256(amax, 1));
    h         = _mm_max_epi32(h, _mm_shuffle_epi32(h, _MM_SHUFFLE(1, 0, 3, 2)));
    h         = _mm_max_epi32(h, _mm_shuffle_epi32(h, _MM_SHUFFLE(2, 3, 0, 1)));
    return (uint32_t) _mm_cvtsi128_si32(h);
}

/* The 32 elements at x into v[0..3], and the lane-wise maximum of their magnitude bits. */
static inline __m256i qsim_v8_load32(const float * x, const qsim_v8_mf * m, __m256 v[4]) {
    __m256i a = _mm256_setzero_si256();
    for (int i = 0; i < 4; i++) {
        v[i] = _mm256_loadu_ps(x + 8 * i);
        a    = _mm256_max_epi32(a, _mm256_and_si256(_mm256_castps_si256(v[i]), m->abs));
    }
    return a;
}

/* A full MX block of 32 held in four registers: one load per element. */
static inline void qsim_v8_block32(const float * x, float * y, const qsim_block_format * b,
                                   const qsim_v8_mf * m) {
    __m256         v[4];
    const uint32_t amax = qsim_v8_hmax(qsim_v8_load32(x, m, v));
    /* S = 2^k and, when 2^-k is a float (k >= -127), the exact reciprocal: no division */
    const int   k  = amax > 0x7f7fffffu ? 0 : qsim_block_mx_exponent(amax, b);
    const float s  = amax > 0x7f7fffffu ? NAN : qsim_pow2f(k);
    const int   ex = amax <= 0x7f7fffffu && k >= -127;
    const float r  = ex ? qsim_pow2f(-k) : 1.0f;
    const __m256  vs = _mm256_set1_ps(s), vr = _mm256_set1_ps(r);
    for (int i = 0; i < 4; i++) {
        _mm256_storeu_ps(y + 8 * i, qsim_v8_block_element(v[i], vs, vr, ex, b, m));
    }
}

/* qsim_mf_round for an MX element format (saturating, no unsigned zero, no odd_flip, emin above
 * fp32's: see qsim_v8_mx_fast) on the finite lanes of a finite block scaled into |t| < 2^(emax+1):
 * adding 2^(max(e, emin) - m + 23), e the lane's binade, rounds to the format's step there, ties
 * to even (its parity is the mantissa field's), subnormals included, and subtracting it is exact;
 * the overflow rule is then a minimum and the sign an or. */
static inline __m256 qsim_v8_mx_round(__m256 t, const qsim_v8_mf * m) {
    const __m256i u = _mm256_castps_si256(t);
    const __m256i a = _mm256_and_si256(u, m->abs);
    const __m256  c = _mm256_castsi256_ps(
        _mm256_add_epi32(_mm256_max_epi32(_mm256_and_si256(a, m->inf), m->sub_limit), m->step));
    const __m256i r = _mm256_castps_si256(_mm256_sub_ps(_mm256_add_ps(_mm256_castsi256_ps(a), c), c));
    return _mm256_castsi256_ps(_mm256_or_si256(_mm256_min_epi32(r, m->max_bits), _mm256_andnot_si256(m->abs, u)));
}

/* Whether the MX float blocks of b may take qsim_v8_mx32 (every MX float format of
 * qsim_block_format_mx does). */
static inline int qsim_v8_mx_fast(const qsim_block_format * b) {
    return b->kind == QSIM_BLOCK_MX_FLOAT && b->block == 32 && b->elem.odd_flip == 0 &&
           b->elem.unsigned_zero == 0 && b->elem.over_bits == b->elem.max_bits &&
           b->elem.sub_limit > 0x00800000u;
}

/* The largest of the 8 lanes of a, in every lane (magnitudes are below 2^31: signed maxima). */
static inline __m256i qsim_v8_bmax(__m256i a) {
    a = _mm256_max_epi32(a, _mm256_permute2x128_si256(a, a, 1));
    a = _mm256_max_epi32(a, _mm256_shuffle_epi32(a, _MM_SHUFFLE(1, 0, 3, 2)));
    return _mm256_max_epi32(a, _mm256_shuffle_epi32(a, _MM_SHUFFLE(2, 3, 0, 1)));
}

/* One MX float block of 32 at x, each element loaded once. The scale S = 2^k and its exact
 * reciprocal 2^-k (x * 2^-k is x / S) stay in vector registers (qsim_block_mx_exponent:
 * k = max(E - emax, -127), E the maximum's unbiased exponent; 2^-127 is the subnormal 2^22 bits);
 * a block holding NaN or Inf goes to qsim_v8_block32. */
static inline void qsim_v8_mx32(const float * x, float * y, const qsim_block_format * b,
                                const qsim_v8_mf * m, __m256i emax, int stream) {
    __m256        v[4];
    const __m256i amax = qsim_v8_bmax(qsim_v8_load32(x, m, v));
    if (_mm256_movemask_epi8(_mm256_cmpgt_epi32(amax, _mm256_set1_epi32(0x7f7fffff)))) {
        qsim_v8_block32(x, y, b, m);
        return;
    }
    /* k + 127, at least 0 */
    const __m256i kb  = _mm256_max_epi32(_mm256_sub_epi32(_mm256_srli_epi32(amax, 23), emax),
                                         _mm256_setzero_si256());
    const __m256i sub = _mm256_and_si256(_mm256_cmpeq_epi32(kb, _mm256_setzero_si256()),
                                         _mm256_set1_epi32(0x00400000));
    const __m256  s   = _mm256_castsi256_ps(_mm256_or_si256(_mm256_slli_epi32(kb, 23), sub));
    const __m256  r   = _mm256_castsi256_ps(
        _mm256_slli_epi32(_mm256_sub_epi32(_mm256_set1_epi32(254), kb), 23));
    for (int i = 0; i < 4; i++) {
        qsim_v8_put(y + 8 * i, _mm256_mul_ps(qsim_v8_mx_round(_mm256_mul_ps(v[i], r), m), s), stream);
    }
}

/* One block of len (<= b->block) elements. */
static inline void qsim_v8_block(size_t len, const float * x, float * y, const qsim_block_format * b,
                                 const qsim_v8_mf * m) {
    __m256i amax = _mm256_setzero_si256();
    size_t  j    = 0;
    for (; j + 8 <= len; j += 8) {
        amax = _mm256_max_epi32(amax, _mm256_and_si256(_mm256_castps_si256(_mm256_loadu_ps(x + j)), m->abs));
    }
    if (j < len) {  /* masked-off lanes load +0, which leaves the maximum as it is */
        const __m256 t = _mm256_maskload_ps(x + j, qsim_v8_first(len - j));
        amax = _mm256_max_epi32(amax, _mm256_and_si256(_mm256_castps_si256(t), m->abs));
    }
    const float s = qsim_block_scale_of(qsim_v8_hmax(amax), b);
    if (s == 0.0f) {
        for (j = 0; j < len; j++) {
            y[j] = qsim_block_element(x[j], s, b);
        }
        return;
    }
    const __m256 vs = _mm256_set1_ps(s);
    for (j = 0; j + 8 <= len; j += 8) {
        _mm256_storeu_ps(y + j, qsim_v8_block_element(_mm256_loadu_ps(x + j), vs, vs, 0, b, m));
    }
    if (j < len) {
        const __m256i k = qsim_v8_first(len - j);
        _mm256_maskstore_ps(y + j, k, qsim_v8_block_element(_mm256_maskload_ps(x + j, k), vs, vs, 0, b, m));
    }
}

void qsim_block_float_f32_avx2(size_t n, const float * x, float * y, const qsim_block_format * b) {
    const qsim_v8_mf v = qsim_v8_mf_of(&b->elem);
    size_t           i = 0;
    if (qsim_v8_mx_fast(b)) {
        const int     st   = qsim_v8_stream(n, y, x, x);
        const __m256i emax = _mm256_set1_epi32(b->emax);
        for (; i + 32 <= n; i += 32) {
            QSIM_PREFETCH(x + i);
            qsim_v8_mx32(x + i, y + i, b, &v, emax, st);
        }
        if (st) {
            _mm_sfence();
        }
    } else if (b->kind != QSIM_BLOCK_NVFP4 && b->block == 32) {
        for (; i + 32 <= n; i += 32) {
            QSIM_PREFETCH(x + i);
            qsim_v8_block32(x + i, y + i, b, &v);
        }
    }
    for (; i < n; i += b->block) {
        QSIM_PREFETCH(x + i);
        qsim_v8_block(n - i < b->block ? n - i : b->block, x + i, y + i, b, &v);
    }
}
