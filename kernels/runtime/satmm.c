/*
 * satmm.c: the portable uint8 x int8 product with int16 pair saturation (qsim/satmm.h) and the
 * run-time choice of the AVX2 variant (kernels/x86/satmm__avx2.c).
 */
#include "qsim/satmm.h"

#include "qdq/qdq_variants.h"

#if defined(__x86_64__)
void qsim_u8s8_satmm_avx2(const uint8_t * a, const int8_t * w, int32_t * out, size_t n, size_t k,
                          size_t row_begin, size_t row_end);
#endif

static int32_t sat16(int32_t s) {
    return s > 32767 ? 32767 : (s < -32768 ? -32768 : s);
}

void qsim_u8s8_satmm_ref(const uint8_t * a, const int8_t * w, int32_t * out, size_t n, size_t k,
                         size_t row_begin, size_t row_end) {
    for (size_t r = row_begin; r < row_end; r++) {
        const uint8_t * ar = a + r * k;
        for (size_t j = 0; j < n; j++) {
            const int8_t * wj  = w + j * k;
            int32_t        acc = 0;
            size_t         p   = 0;
            for (; p + 1 < k; p += 2) {
                acc += sat16(ar[p] * wj[p] + ar[p + 1] * wj[p + 1]);
            }
            if (p < k) {
                acc += ar[p] * wj[p]; /* the odd element pairs with a zero: within int16 */
            }
            out[r * n + j] = acc;
        }
    }
}

void qsim_u8s8_satmm(const uint8_t * a, const int8_t * w, int32_t * out, size_t n, size_t k,
                     size_t row_begin, size_t row_end) {
#if defined(__x86_64__)
    if (qsim_avx2_supported()) {
        qsim_u8s8_satmm_avx2(a, w, out, n, k, row_begin, row_end);
        return;
    }
#endif
    qsim_u8s8_satmm_ref(a, w, out, n, k, row_begin, row_end);
}
