/*
 * ortconv.c: MLAS's fp32 SGEMM accumulation order (qsim/ortconv.h): MLAS's K block, the argument
 * checks, the portable variant of the one arithmetic (runtime/ortconv_loop.h; fmaf is the fp32
 * FMA of vfmadd231ps, and the file is compiled without contraction) and the run-time choice of
 * the AVX-512 variant (x86/ortconv__avx512.c: the same loops vectorized; the same values).
 */
#include "qsim/ortconv.h"

#include "qdq/qdq_variants.h"
#include "runtime/ortconv_loop.h"

#if defined(__x86_64__)
void qsim_ort_sgemm_avx512(const float * a, const float * b, float * c, size_t n, size_t k,
                           size_t stride_k, int accumulate, size_t r0, size_t r1);
#define QSIM_ORTC_VECTOR qsim_avx512_supported()
#else
#define QSIM_ORTC_VECTOR 0
#endif

size_t qsim_ort_sgemm_stride_k(size_t n, size_t k) {
    size_t stride_n = 128, stride_k = 128;
    if (n >= k) {
        while (stride_k / 2 >= k) {
            stride_n *= 2;
            stride_k /= 2;
        }
    } else {
        while (stride_n > 16 && stride_n / 2 >= n) {
            stride_k *= 2;
            stride_n /= 2;
        }
    }
    return stride_k;
}

static int ortc_bad(const float * a, const float * b, const float * c, size_t m, size_t n,
                    size_t k, size_t stride_k, size_t row_end) {
    return !a || !b || !c || k == 0 || n == 0 || stride_k == 0 || row_end > m;
}

qsim_status qsim_ort_sgemm_ref(const float * a, const float * b, float * c, size_t m, size_t n,
                               size_t k, size_t stride_k, int accumulate, size_t row_begin,
                               size_t row_end) {
    if (ortc_bad(a, b, c, m, n, k, stride_k, row_end)) {
        return QSIM_INVALID_ARGUMENT;
    }
    qsim_ortc_rows(a, b, c, n, k, stride_k, accumulate, row_begin, row_end);
    return QSIM_SUCCESS;
}

qsim_status qsim_ort_sgemm(const float * a, const float * b, float * c, size_t m, size_t n,
                           size_t k, size_t stride_k, int accumulate, size_t row_begin,
                           size_t row_end) {
#if defined(__x86_64__)
    if (!ortc_bad(a, b, c, m, n, k, stride_k, row_end) && QSIM_ORTC_VECTOR) {
        qsim_ort_sgemm_avx512(a, b, c, n, k, stride_k, accumulate, row_begin, row_end);
        return QSIM_SUCCESS;
    }
#endif
    return qsim_ort_sgemm_ref(a, b, c, m, n, k, stride_k, accumulate, row_begin, row_end);
}
