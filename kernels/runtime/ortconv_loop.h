/*
 * ortconv_loop.h (internal): the one arithmetic of qsim_ort_sgemm (qsim/ortconv.h), included by
 * the portable variant (runtime/ortconv.c) and the AVX-512 one (x86/ortconv__avx512.c), where the
 * compiler turns fmaf into vfmadd and vectorizes the column loops. The outputs are computed in
 * tiles of QSIM_ORTC_ROWS rows by QSIM_ORTC_TILE columns whose accumulators advance together
 * over K (the rows share each load of b): per output the order is the same as one at a time. Both files are compiled without FP contraction (-std=c11),
 * so only the written fmaf calls fuse.
 */
#ifndef QSIM_ORTCONV_LOOP_H
#define QSIM_ORTCONV_LOOP_H

#include <math.h>
#include <stddef.h>

#define QSIM_ORTC_TILE 64
#define QSIM_ORTC_ROWS 4

/* One tile of up to QSIM_ORTC_ROWS rows [i0, i0 + rows) of a: columns [j0, j0 + cols), K block
 * [k0, k1); store: zero mode. The rows share each load of b; each output's order is its own. */
static inline void qsim_ortc_block(const float * a, const float * b, float * c, size_t n,
                                   size_t k, size_t i0, size_t rows, size_t j0, size_t cols,
                                   size_t k0, size_t k1, int store) {
    float acc[QSIM_ORTC_ROWS][QSIM_ORTC_TILE] = {{0.0f}};
    for (size_t kk = k0; kk < k1; ++kk) {
        const float * b_row = b + kk * n + j0;
        for (size_t r = 0; r < rows; ++r) {
            const float av = a[(i0 + r) * k + kk];
            for (size_t j = 0; j < cols; ++j) {
                acc[r][j] = fmaf(av, b_row[j], acc[r][j]);
            }
        }
    }
    for (size_t r = 0; r < rows; ++r) {
        float * c_row = c + (i0 + r) * n + j0;
        for (size_t j = 0; j < cols; ++j) {
            c_row[j] = store ? acc[r][j] : c_row[j] + acc[r][j];
        }
    }
}

/* Rows [r0, r1) of c (m x n) = a (m x k) times b (k x n) in K blocks of stride_k. */
static inline void qsim_ortc_rows(const float * a, const float * b, float * c, size_t n, size_t k,
                                  size_t stride_k, int accumulate, size_t r0, size_t r1) {
    for (size_t i = r0; i < r1; i += QSIM_ORTC_ROWS) {
        const size_t rows = r1 - i < QSIM_ORTC_ROWS ? r1 - i : QSIM_ORTC_ROWS;
        for (size_t k0 = 0; k0 < k; k0 += stride_k) {
            const size_t k1 = k - k0 > stride_k ? k0 + stride_k : k;
            for (size_t j0 = 0; j0 < n; j0 += QSIM_ORTC_TILE) {
                const size_t cols = n - j0 > QSIM_ORTC_TILE ? QSIM_ORTC_TILE : n - j0;
                qsim_ortc_block(a, b, c, n, k, i, rows, j0, cols, k0, k1, k0 == 0 && !accumulate);
            }
        }
    }
}

#endif /* QSIM_ORTCONV_LOOP_H */
