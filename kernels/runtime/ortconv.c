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

/* The sum of the 8 lanes of an output of MLAS's M = 1 kernel, in the order of the reduction of
 * its group of 4, 2 or 1 outputs (the vector shuffles of the kernel, written out). */
static float ortc_m1_reduce(const float * l, int group) {
    if (group == 4) {
        return (((l[0] + l[1]) + l[2]) + l[3]) + (((l[4] + l[5]) + l[6]) + l[7]);
    }
    if (group == 2) {
        return ((l[0] + l[2]) + (l[4] + l[6])) + ((l[1] + l[3]) + (l[5] + l[7]));
    }
    return ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]));
}

qsim_status qsim_ort_sgemm_m1_transb(const float * a, const float * b, float * c, size_t n,
                                     size_t k, int accumulate) {
    if (!a || !b || !c || k == 0) {
        return QSIM_INVALID_ARGUMENT;
    }
    const size_t n4 = n / 4 * 4;
    for (size_t j = 0; j < n; ++j) {
        float lane[8] = {0.0f};
        for (size_t kk = 0; kk < k; ++kk) {
            lane[kk % 8] = lane[kk % 8] + a[kk] * b[j * k + kk];
        }
        const int group = j < n4 ? 4 : (n - n4) >= 2 && j < n4 + 2 ? 2 : 1;
        c[j] = ortc_m1_reduce(lane, group) + (accumulate ? c[j] : 0.0f);
    }
    return QSIM_SUCCESS;
}

/* One K block [k0, k1) of output j of MLAS's M = 1 kernel (B not transposed): chunks of 4 rows,
 * then 2, then 1, each summed from its first rounded product then added to c (+ 0 in zero
 * mode). Returns the new value of c. */
static float ortc_m1_block(const float * a, const float * b, size_t n, size_t j, size_t k0,
                           size_t k1, float c, int zero) {
    size_t kk = k0;
    while (kk < k1) {
        const size_t chunk = k1 - kk >= 4 ? 4 : (k1 - kk >= 2 ? 2 : 1);
        float t = a[kk] * b[kk * n + j];
        for (size_t q = 1; q < chunk; ++q) {
            t = t + a[kk + q] * b[(kk + q) * n + j];
        }
        c = t + (zero ? 0.0f : c);
        zero = 0;
        kk += chunk;
    }
    return c;
}

qsim_status qsim_ort_sgemm_m1(const float * a, const float * b, float * c, size_t n, size_t k,
                              size_t stride_k, int accumulate) {
    if (!a || !b || !c || k == 0 || stride_k == 0) {
        return QSIM_INVALID_ARGUMENT;
    }
    for (size_t j = 0; j < n; ++j) {
        for (size_t k0 = 0; k0 < k; k0 += stride_k) {
            const size_t k1 = k - k0 > stride_k ? k0 + stride_k : k;
            c[j] = ortc_m1_block(a, b, n, j, k0, k1, c[j], k0 == 0 && !accumulate);
        }
    }
    return QSIM_SUCCESS;
}
