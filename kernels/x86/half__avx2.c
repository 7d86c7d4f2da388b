/*
 * half__avx2.c: the widen_h16 / narrow_h16 kernels with AVX2 and F16C, 8 values per step, and the
 * 16-bit straight-through backward from clamped bits, 16 a step.
 *
 * Bit-exact with qsim_widen_h16_ref / qsim_narrow_h16_ref (qdq_half.c): the F16C conversions
 * (round to nearest even) are exact or round like the reference, and NaN lanes are rebuilt as the
 * reference writes them (vcvtph2ps sets the quiet bit; vcvtps2ph keeps payload bits). The last
 * n % 8 values go to the reference kernels (AVX2 has no 16-bit masked loads). qsim_qdq_h16_avx2
 * chains the conversions, the qdq of qdq_v8.h and the rounding in registers, 16 values a step
 * (the last n % 16 by the reference); qsim_qdq_backward_h16_avx2 computes the straight-through
 * mask of the widened x and masks dy on its 16-bit values, 16 a step; qsim_qdq_mask_h16_avx2
 * chains them with the clamped bits of the fp32 mask kernel.
 */
#include "x86/qdq_v8.h"

static inline __m256i qsim_h8_set(uint32_t v) {
    return _mm256_set1_epi32((int) v);
}

/* 8 32-bit lanes, each holding a value in [0, 0xFFFF], packed to 8 16-bit values. */
static inline __m128i qsim_h8_pack(__m256i v) {
    return _mm256_castsi256_si128(_mm256_permute4x64_epi64(_mm256_packus_epi32(v, v), 0x08));
}

static inline __m256 qsim_h8_widen(qsim_half_kind kind, __m128i h) {
    const __m256i u = _mm256_cvtepu16_epi32(h);
    if (kind == QSIM_HALF_BF16) {
        return _mm256_castsi256_ps(_mm256_slli_epi32(u, 16));
    }
    const __m256i nan  = _mm256_cmpgt_epi32(_mm256_and_si256(u, qsim_h8_set(0x7fffu)),
                                            qsim_h8_set(0x7c00u));
    const __m256i sign = _mm256_slli_epi32(_mm256_and_si256(u, qsim_h8_set(0x8000u)), 16);
    const __m256i pay  = _mm256_slli_epi32(_mm256_and_si256(u, qsim_h8_set(0x3ffu)), 13);
    const __m256i bits = _mm256_or_si256(_mm256_or_si256(sign, pay), qsim_h8_set(0x7f800000u));
    return _mm256_blendv_ps(_mm256_cvtph_ps(h), _mm256_castsi256_ps(bits), _mm256_castsi256_ps(nan));
}

static inline __m128i qsim_h8_narrow(qsim_half_kind kind, __m256 x) {
    const __m256i u   = _mm256_castps_si256(x);
    const __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(u, qsim_h8_set(0x7fffffffu)),
                                           qsim_h8_set(0x7f800000u));
    __m256i r, quiet;
    if (kind == QSIM_HALF_BF16) {
        const __m256i odd = _mm256_and_si256(_mm256_srli_epi32(u, 16), qsim_h8_set(1u));
        r = _mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(u, qsim_h8_set(0x7fffu)), odd), 16);
        quiet = qsim_h8_set(0x7fc0u);
    } else {
        r = _mm256_cvtepu16_epi32(_mm256_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
        quiet = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi32(u, 16), qsim_h8_set(0x8000u)),
                                qsim_h8_set(0x7e00u));
    }
    return qsim_h8_pack(_mm256_blendv_epi8(r, quiet, nan));
}

void qsim_widen_h16_avx2(qsim_half_kind kind, size_t n, const uint16_t * x, float * y) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        _mm256_storeu_ps(y + i, qsim_h8_widen(kind, _mm_loadu_si128((const __m128i *) (x + i))));
    }
    qsim_widen_h16_ref(kind, n - i, x + i, y + i);
}

void qsim_narrow_h16_avx2(qsim_half_kind kind, size_t n, const float * x, uint16_t * y) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        _mm_storeu_si128((__m128i *) (y + i), qsim_h8_narrow(kind, _mm256_loadu_ps(x + i)));
    }
    qsim_narrow_h16_ref(kind, n - i, x + i, y + i);
}

/* qdq of 8 values in fp32, rounded to 16-bit bits in registers. A qdq result is never NaN (the
 * clamp maps NaN to qmin), so the NaN cases of widen and narrow, which only rebuild NaN bits, are
 * left out: fp16 (8 values h) takes the F16C conversions alone; bf16 (8 values already widened
 * to fp32 lanes w) the integer round to nearest even of qsim_h8_narrow, its result in the low 16
 * bits of each 32-bit lane. */
QSIM_ALWAYS_INLINE __m128i qsim_h8_qdq_f16(__m128i h, const qsim_v8_grid * g, qsim_v8_op qdq) {
    return _mm256_cvtps_ph(qdq(_mm256_cvtph_ps(h), g),
                           _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}

static inline __m256i qsim_h8_round_bf16(__m256 y) {
    const __m256i u   = _mm256_castps_si256(y);
    const __m256i odd = _mm256_and_si256(_mm256_srli_epi32(u, 16), qsim_h8_set(1u));
    return _mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(u, qsim_h8_set(0x7fffu)), odd), 16);
}

QSIM_ALWAYS_INLINE __m256i qsim_h8_qdq_bf16(__m256i w, const qsim_v8_grid * g, qsim_v8_op qdq) {
    return qsim_h8_round_bf16(qdq(_mm256_castsi256_ps(w), g));
}

static inline __m128i qsim_h8_load(const uint16_t * x) {
    return _mm_loadu_si128((const __m128i *) x);
}

/* One pass of widen, qdq, narrow, 16 values a step; kind and qdq are constants where it is
 * inlined. x and y may alias exactly: a step loads before it stores. */
QSIM_ALWAYS_INLINE void qsim_h8_qdq_run(qsim_half_kind kind, size_t n, const uint16_t * x,
                                        uint16_t * y, qsim_grid g, qsim_v8_op qdq) {
    const qsim_v8_grid v = qsim_v8_grid_of(g);
    size_t             i = 0;
    for (; i + 16 <= n; i += 16) {
        if (kind == QSIM_HALF_BF16) {
            /* unpack widens values 0-3, 8-11 (lo) and 4-7, 12-15 (hi) exactly (bf16 is the upper
             * half of an fp32); packus, in-lane like unpack, puts them back in order */
            const __m256i z  = _mm256_setzero_si256();
            const __m256i h  = _mm256_loadu_si256((const __m256i *) (x + i));
            const __m256i lo = qsim_h8_qdq_bf16(_mm256_unpacklo_epi16(z, h), &v, qdq);
            const __m256i hi = qsim_h8_qdq_bf16(_mm256_unpackhi_epi16(z, h), &v, qdq);
            _mm256_storeu_si256((__m256i *) (y + i), _mm256_packus_epi32(lo, hi));
        } else {
            const __m128i lo = qsim_h8_qdq_f16(qsim_h8_load(x + i), &v, qdq);
            const __m128i hi = qsim_h8_qdq_f16(qsim_h8_load(x + i + 8), &v, qdq);
            _mm_storeu_si128((__m128i *) (y + i), lo);
            _mm_storeu_si128((__m128i *) (y + i + 8), hi);
        }
    }
    qsim_qdq_h16_ref(kind, n - i, x + i, y + i, g);
}

/* qdq of one kind, by reciprocal where qsim_v8_by_reciprocal allows (as qsim_qdq_f32_avx2). */
QSIM_ALWAYS_INLINE void qsim_h8_qdq_kind(qsim_half_kind kind, size_t n, const uint16_t * x,
                                         uint16_t * y, qsim_grid g) {
    if (qsim_v8_by_reciprocal(g)) {
        qsim_h8_qdq_run(kind, n, x, y, g, qsim_v8_qdq_by_reciprocal);
    } else {
        qsim_h8_qdq_run(kind, n, x, y, g, qsim_v8_qdq);
    }
}

void qsim_qdq_h16_avx2(qsim_half_kind kind, size_t n, const uint16_t * x, uint16_t * y,
                       qsim_grid g) {
    if (kind == QSIM_HALF_BF16) {
        qsim_h8_qdq_kind(QSIM_HALF_BF16, n, x, y, g);
    } else {
        qsim_h8_qdq_kind(QSIM_HALF_F16, n, x, y, g);
    }
}

/* dy as narrow_h16 writes a widened dy: itself, or for NaN the quiet NaN (bf16 0x7FC0, fp16
 * sign | 0x7E00). The magnitudes are below 0x8000, so the signed 16-bit comparison orders them. */
static inline __m256i qsim_h8_canonical(qsim_half_kind kind, __m256i d) {
    const __m256i mag = _mm256_and_si256(d, _mm256_set1_epi16(0x7fff));
    if (kind == QSIM_HALF_BF16) {
        const __m256i nan = _mm256_cmpgt_epi16(mag, _mm256_set1_epi16(0x7f80));
        return _mm256_blendv_epi8(d, _mm256_set1_epi16(0x7fc0), nan);
    }
    const __m256i nan   = _mm256_cmpgt_epi16(mag, _mm256_set1_epi16(0x7c00));
    const __m256i quiet = _mm256_or_si256(_mm256_andnot_si256(mag, d), _mm256_set1_epi16(0x7e00));
    return _mm256_blendv_epi8(d, quiet, nan);
}

/* The straight-through mask of 8 widened values (all-ones lanes where x is on the grid): the dx
 * of `grads` for a dy of all-ones bits (its other terms are left unused). */
QSIM_ALWAYS_INLINE __m256i qsim_h8_ste_mask(__m256 x, const qsim_v8_grid * g, qsim_v8_bwd_op grads) {
    return _mm256_castps_si256(grads(x, _mm256_castsi256_ps(_mm256_set1_epi32(-1)), g).dx);
}

/* dx = dy where x is on the grid, else +0, 16 values a step on the 16-bit values themselves
 * (the last n % 16 by the reference); kind and grads are constants where inlined. The two masks
 * of 8 pack to 16-bit lanes in-lane: in order for bf16 (widened by unpack, as the forward), and
 * for fp16 (halves 0-7 and 8-15) after a permute. x widened without rebuilding NaN bits (NaN is
 * off the grid either way). */
QSIM_ALWAYS_INLINE void qsim_h8_ste_run(qsim_half_kind kind, size_t n, const uint16_t * x,
                                        const uint16_t * dy, uint16_t * dx, qsim_grid g,
                                        qsim_v8_bwd_op grads) {
    const qsim_v8_grid v = qsim_v8_grid_of(g);
    size_t             i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256i m;
        if (kind == QSIM_HALF_BF16) {
            const __m256i z = _mm256_setzero_si256();
            const __m256i h = _mm256_loadu_si256((const __m256i *) (x + i));
            m = _mm256_packs_epi32(
                qsim_h8_ste_mask(_mm256_castsi256_ps(_mm256_unpacklo_epi16(z, h)), &v, grads),
                qsim_h8_ste_mask(_mm256_castsi256_ps(_mm256_unpackhi_epi16(z, h)), &v, grads));
        } else {
            m = _mm256_permute4x64_epi64(
                _mm256_packs_epi32(qsim_h8_ste_mask(_mm256_cvtph_ps(qsim_h8_load(x + i)), &v, grads),
                                   qsim_h8_ste_mask(_mm256_cvtph_ps(qsim_h8_load(x + i + 8)), &v, grads)),
                0xd8);
        }
        const __m256i d = qsim_h8_canonical(kind, _mm256_loadu_si256((const __m256i *) (dy + i)));
        _mm256_storeu_si256((__m256i *) (dx + i), _mm256_and_si256(m, d));
    }
    qsim_qdq_backward_h16_ref(kind, n - i, x + i, dy + i, dx + i, g);
}

/* The backward of one kind, by reciprocal where qsim_v8_by_reciprocal allows (as
 * qsim_qdq_backward_f32_avx2 without sums). */
QSIM_ALWAYS_INLINE void qsim_h8_ste_kind(qsim_half_kind kind, size_t n, const uint16_t * x,
                                         const uint16_t * dy, uint16_t * dx, qsim_grid g) {
    if (qsim_v8_by_reciprocal(g)) {
        qsim_h8_ste_run(kind, n, x, dy, dx, g, qsim_v8_ste_by_reciprocal);
    } else {
        qsim_h8_ste_run(kind, n, x, dy, dx, g, qsim_v8_qdq_grads);
    }
}

void qsim_qdq_backward_h16_avx2(qsim_half_kind kind, size_t n, const uint16_t * x,
                                const uint16_t * dy, uint16_t * dx, qsim_grid g) {
    if (kind == QSIM_HALF_BF16) {
        qsim_h8_ste_kind(QSIM_HALF_BF16, n, x, dy, dx, g);
    } else {
        qsim_h8_ste_kind(QSIM_HALF_F16, n, x, dy, dx, g);
    }
}

/* 16 gradients a step: bit j of the two bytes at clamped + i / 8 (i a multiple of 16) selects
 * lane j, +0 (the pattern 0) where it is set. */
void qsim_qdq_mask_backward_h16_avx2(size_t n, const uint8_t * clamped, const uint16_t * dy,
                                     uint16_t * dx) {
    const __m256i bit = _mm256_setr_epi16(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096,
                                          8192, 16384, (short) 0x8000);
    size_t        i   = 0;
    for (; i + 16 <= n; i += 16) {
        uint16_t w;
        memcpy(&w, clamped + i / 8, sizeof w);  /* little-endian: bit j is element i + j */
        const __m256i c    = _mm256_and_si256(_mm256_set1_epi16((short) w), bit);
        const __m256i keep = _mm256_cmpeq_epi16(c, _mm256_setzero_si256());
        const __m256i d    = _mm256_loadu_si256((const __m256i *) (dy + i));
        _mm256_storeu_si256((__m256i *) (dx + i), _mm256_and_si256(keep, d));
    }
    qsim_qdq_mask_backward_h16_run(n - i, clamped + i / 8, dy + i, dx + i);
}

/* qdq with clamped bits, 16 values a step on the 16-bit values (the last n % 16 by the
 * reference), widened and narrowed in registers as qsim_h8_qdq_run; `step` a constant where
 * inlined. The bits of each 8 lanes are those of their elements: in order for fp16 (halves 0-7
 * and 8-15), for bf16 (lanes of unpack: 0-3 and 8-11, then 4-7 and 12-15) put back in order. x
 * and y may alias exactly: a step loads before it stores. */
QSIM_ALWAYS_INLINE void qsim_h8_mask_run(qsim_half_kind kind, size_t n, const uint16_t * x,
                                         uint16_t * y, uint8_t * clamped, qsim_grid g,
                                         float gate, qsim_v8_clamped_fn step) {
    const qsim_v8_grid v = qsim_v8_grid_of(g);
    const __m256       t = _mm256_set1_ps(gate);
    size_t             i = 0;
    for (; i + 16 <= n; i += 16) {
        uint16_t w;
        if (kind == QSIM_HALF_BF16) {
            const __m256i         z  = _mm256_setzero_si256();
            const __m256i         h  = _mm256_loadu_si256((const __m256i *) (x + i));
            const qsim_v8_clamped lo = step(_mm256_castsi256_ps(_mm256_unpacklo_epi16(z, h)), &v, t);
            const qsim_v8_clamped hi = step(_mm256_castsi256_ps(_mm256_unpackhi_epi16(z, h)), &v, t);
            _mm256_storeu_si256((__m256i *) (y + i),
                                _mm256_packus_epi32(qsim_h8_round_bf16(lo.y), qsim_h8_round_bf16(hi.y)));
            w = (uint16_t) ((lo.bits & 0x0f) | (hi.bits & 0x0f) << 4 | (lo.bits & 0xf0) << 4 |
                            (hi.bits & 0xf0) << 8);
        } else {
            const qsim_v8_clamped lo = step(_mm256_cvtph_ps(qsim_h8_load(x + i)), &v, t);
            const qsim_v8_clamped hi = step(_mm256_cvtph_ps(qsim_h8_load(x + i + 8)), &v, t);
            _mm_storeu_si128((__m128i *) (y + i),
                             _mm256_cvtps_ph(lo.y, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
            _mm_storeu_si128((__m128i *) (y + i + 8),
                             _mm256_cvtps_ph(hi.y, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
            w = (uint16_t) (lo.bits | hi.bits << 8);
        }
        memcpy(clamped + i / 8, &w, sizeof w);  /* little-endian: bit j is element i + j */
    }
    qsim_qdq_mask_h16_ref(kind, n - i, x + i, y + i, clamped + i / 8, g, gate);
}

/* The kernel of one kind, by reciprocal where qsim_v8_by_reciprocal allows (as
 * qsim_qdq_mask_f32_avx2). */
QSIM_ALWAYS_INLINE void qsim_h8_mask_kind(qsim_half_kind kind, size_t n, const uint16_t * x,
                                          uint16_t * y, uint8_t * clamped, qsim_grid g,
                                          float gate) {
    if (qsim_v8_by_reciprocal(g)) {
        qsim_h8_mask_run(kind, n, x, y, clamped, g, gate, qsim_v8_qdq_clamped_by_reciprocal);
    } else {
        qsim_h8_mask_run(kind, n, x, y, clamped, g, gate, qsim_v8_qdq_clamped);
    }
}

void qsim_qdq_mask_h16_avx2(qsim_half_kind kind, size_t n, const uint16_t * x, uint16_t * y,
                            uint8_t * clamped, qsim_grid g, float gate) {
    if (kind == QSIM_HALF_BF16) {
        qsim_h8_mask_kind(QSIM_HALF_BF16, n, x, y, clamped, g, gate);
    } else {
        qsim_h8_mask_kind(QSIM_HALF_F16, n, x, y, clamped, g, gate);
    }
}
