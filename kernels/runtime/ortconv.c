/*
 * ortconv.c: MLAS's fp32 SGEMM accumulation order (qsim/ortconv.h). fmaf is the fp32 FMA of
 * vfmadd231ps and the file is compiled without contraction (c11), so the block sums round as
 * MLAS's kernels do. Each output row is computed in tiles of QSIM_ORTC_TILE columns whose
 * accumulators advance together over K: per output the order is the same as one at a time.
 */
#include "qsim/ortconv.h"

#include <math.h>

#define QSIM_ORTC_TILE 64

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

/* One tile of row i: columns [j0, j0 + cols), K block [k0, k1). */
static void ortc_block(const float * a_row, const float * b, float * c_row, size_t n, size_t j0,
                       size_t cols, size_t k0, size_t k1, int store) {
    float acc[QSIM_ORTC_TILE] = {0.0f};
    for (size_t kk = k0; kk < k1; ++kk) {
        const float av = a_row[kk];
        const float * b_row = b + kk * n + j0;
        for (size_t j = 0; j < cols; ++j) {
            acc[j] = fmaf(av, b_row[j], acc[j]);
        }
    }
    for (size_t j = 0; j < cols; ++j) {
        c_row[j0 + j] = store ? acc[j] : c_row[j0 + j] + acc[j];
    }
}

qsim_status qsim_ort_sgemm(const float * a, const float * b, float * c, size_t m, size_t n,
                           size_t k, size_t stride_k, int accumulate, size_t row_begin,
                           size_t row_end) {
    if (!a || !b || !c || k == 0 || n == 0 || stride_k == 0 || row_end > m) {
        return QSIM_INVALID_ARGUMENT;
    }
    for (size_t i = row_begin; i < row_end; ++i) {
        for (size_t k0 = 0; k0 < k; k0 += stride_k) {
            const size_t k1 = k - k0 > stride_k ? k0 + stride_k : k;
            for (size_t j0 = 0; j0 < n; j0 += QSIM_ORTC_TILE) {
                const size_t cols = n - j0 > QSIM_ORTC_TILE ? QSIM_ORTC_TILE : n - j0;
                ortc_block(a + i * k, b, c + i * n, n, j0, cols, k0, k1, k0 == 0 && !accumulate);
            }
        }
    }
    return QSIM_SUCCESS;
}
