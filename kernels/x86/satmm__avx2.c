/*
 * satmm__avx2.c: qsim_u8s8_satmm with the instruction whose arithmetic it reproduces:
 * vpmaddubsw (_mm256_maddubs_epi16) adds each adjacent pair of uint8 x int8 products in int16
 * with saturation; vpmaddwd by ones widens the pair sums to int32 exactly. 32 elements (16
 * pairs) per step, four outputs per loaded activation vector. A k that is not a multiple of 32
 * ends with one more step on zero-padded copies of the row's and the filters' last elements
 * (pairs start on even indices, so the pairing is unchanged and the zeros add nothing).
 */
#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

#include "qsim/satmm.h"

void qsim_u8s8_satmm_avx2(const uint8_t * a, const int8_t * w, int32_t * out, size_t n, size_t k,
                          size_t row_begin, size_t row_end);

static int32_t hsum_epi32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s         = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s         = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

/* acc + the int32-widened saturated pair sums of va x (32 int8 at wp). */
static __m256i step(__m256i acc, __m256i va, const int8_t * wp) {
    const __m256i ones  = _mm256_set1_epi16(1);
    __m256i       vw    = _mm256_loadu_si256((const __m256i *) wp);
    __m256i       pairs = _mm256_maddubs_epi16(va, vw);
    return _mm256_add_epi32(acc, _mm256_madd_epi16(pairs, ones));
}

/* Outputs [j, j + count) of row ar (count <= 4); wtail: the zero-padded filter tails (32 each). */
static void outputs(const uint8_t * ar, const uint8_t * atail, const int8_t * w,
                    const int8_t * wtail, int32_t * o, size_t j, size_t count, size_t k) {
    const size_t body   = k - k % 32;
    __m256i      acc[4] = { _mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(),
                            _mm256_setzero_si256() };
    for (size_t p = 0; p < body; p += 32) {
        __m256i va = _mm256_loadu_si256((const __m256i *) (ar + p));
        for (size_t i = 0; i < count; i++) {
            acc[i] = step(acc[i], va, w + (j + i) * k + p);
        }
    }
    if (body < k) {
        __m256i va = _mm256_loadu_si256((const __m256i *) atail);
        for (size_t i = 0; i < count; i++) {
            acc[i] = step(acc[i], va, wtail + (j + i) * 32);
        }
    }
    for (size_t i = 0; i < count; i++) {
        o[j + i] = hsum_epi32(acc[i]);
    }
}

void qsim_u8s8_satmm_avx2(const uint8_t * a, const int8_t * w, int32_t * out, size_t n, size_t k,
                          size_t row_begin, size_t row_end) {
    const size_t body  = k - k % 32;
    int8_t *     wtail = NULL;
    if (body < k) {
        wtail = calloc(n, 32);
        if (wtail == NULL) {
            qsim_u8s8_satmm_ref(a, w, out, n, k, row_begin, row_end);
            return;
        }
        for (size_t j = 0; j < n; j++) {
            memcpy(wtail + j * 32, w + j * k + body, k - body);
        }
    }
    uint8_t atail[32] = { 0 };
    for (size_t r = row_begin; r < row_end; r++) {
        const uint8_t * ar = a + r * k;
        memcpy(atail, ar + body, k - body);
        for (size_t j = 0; j < n; j += 4) {
            outputs(ar, atail, w, wtail, out + r * n, j, n - j < 4 ? n - j : 4, k);
        }
    }
    free(wtail);
}
