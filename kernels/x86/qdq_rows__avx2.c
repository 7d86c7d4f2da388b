/*
 * qdq_rows__avx2.c: the row kernels (qsim_rows: one grid per column) with AVX2, 8 columns per
 * step, for per-channel quantization along the last axis.
 *
 * Bit-exact with the row kernels of qdq_ref.c: each element goes through the vector forms of
 * qdq_v8.h with its column's scale and zero point in its lane, and each column adds its terms to
 * its two sums in row order, one double addition per row. The last n % 8 columns of a row use
 * masked loads and stores (never touching memory outside the row); their sums are added from a
 * stack copy. Large contiguous blocks (QSIM_STREAM_MIN) not written in place are written with
 * non-temporal stores.
 */
#include "x86/qdq_v8.h"

/* The grid of columns [j, j + 8) of `all` (whose bounds are set). */
static inline qsim_v8_grid qsim_v8_columns(const qsim_rows * r, size_t j, const qsim_v8_grid * all) {
    const qsim_v8_grid g = { _mm256_loadu_ps(r->scale + j), _mm256_loadu_ps(r->zero_point + j),
                             all->qmin, all->qmax, all->lo_z, all->hi_z, all->recip };
    return g;
}

/* The grid of the columns of mask k from j; the other lanes hold 0 (never stored). */
static inline qsim_v8_grid qsim_v8_columns_masked(const qsim_rows * r, size_t j, __m256i k,
                                                  const qsim_v8_grid * all) {
    const qsim_v8_grid g = { _mm256_maskload_ps(r->scale + j, k),
                             _mm256_maskload_ps(r->zero_point + j, k), all->qmin, all->qmax,
                             all->lo_z, all->hi_z, all->recip };
    return g;
}

/* The bounds of r in every lane. */
static inline qsim_v8_grid qsim_v8_bounds(const qsim_rows * r) {
    const qsim_v8_grid g = { _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_set1_ps(r->qmin),
                             _mm256_set1_ps(r->qmax), _mm256_setzero_ps(), _mm256_setzero_ps(),
                             _mm256_setzero_ps() };
    return g;
}

/* Whether the block is written with non-temporal stores: contiguous whole vectors, aligned,
 * not in place (qsim_v8_stream). */
static inline int qsim_v8_rows_stream(const qsim_rows * r, const float * y, const float * a,
                                       const float * b) {
    return r->ld == r->n && r->n % 8 == 0 && qsim_v8_stream(r->rows * r->n, y, a, b);
}

static inline void qsim_v8_store(float * p, __m256 v, int nt) {
    if (nt) {
        _mm256_stream_ps(p, v);
    } else {
        _mm256_storeu_ps(p, v);
    }
}

QSIM_ALWAYS_INLINE void qsim_v8_rows_map(const qsim_rows * r, const float * x, float * y,
                                         qsim_v8_op op) {
    const qsim_rows local = *r; /* in registers: stores through y cannot change it */
    r = &local;
    const size_t  whole = r->n & ~(size_t) 7;
    const __m256i k     = qsim_v8_first(r->n - whole);
    const qsim_v8_grid b = qsim_v8_bounds(r);
    const int     nt    = qsim_v8_rows_stream(r, y, x, x);
    for (size_t row = 0; row < r->rows; row++) {
        const float * xr = x + row * r->ld;
        float *       yr = y + row * r->ld;
        for (size_t j = 0; j < whole; j += 8) {
            const qsim_v8_grid g = qsim_v8_columns(r, j, &b);
            QSIM_PREFETCH(xr + j);
            qsim_v8_store(yr + j, op(_mm256_loadu_ps(xr + j), &g), nt);
        }
        if (whole < r->n) {
            const qsim_v8_grid g = qsim_v8_columns_masked(r, whole, k, &b);
            _mm256_maskstore_ps(yr + whole, k, op(_mm256_maskload_ps(xr + whole, k), &g));
        }
    }
    if (nt) {
        _mm_sfence();
    }
}

/* sums[2j] += s_j and sums[2j+1] += z_j for the 4 columns of s and z. */
static inline void qsim_v8_add_pairs(double * sums, __m256d s, __m256d z) {
    const __m256d even = _mm256_unpacklo_pd(s, z); /* s0 z0 s2 z2 */
    const __m256d odd  = _mm256_unpackhi_pd(s, z); /* s1 z1 s3 z3 */
    _mm256_storeu_pd(sums, _mm256_add_pd(_mm256_loadu_pd(sums), _mm256_permute2f128_pd(even, odd, 0x20)));
    _mm256_storeu_pd(sums + 4, _mm256_add_pd(_mm256_loadu_pd(sums + 4), _mm256_permute2f128_pd(even, odd, 0x31)));
}

/* The terms of 8 columns into their sums (sums points at column j's pair). */
static inline void qsim_v8_add_terms(double * sums, const qsim_v8_grads * t) {
    qsim_v8_add_pairs(sums, _mm256_cvtps_pd(_mm256_castps256_ps128(t->ds)),
                      _mm256_cvtps_pd(_mm256_castps256_ps128(t->dzp)));
    qsim_v8_add_pairs(sums + 8, _mm256_cvtps_pd(_mm256_extractf128_ps(t->ds, 1)),
                      _mm256_cvtps_pd(_mm256_extractf128_ps(t->dzp, 1)));
}

/* The terms of the first `count` columns of t, one at a time. */
static inline void qsim_v8_add_terms_tail(double * sums, const qsim_v8_grads * t, size_t count) {
    float ds[8], dz[8];
    _mm256_storeu_ps(ds, t->ds);
    _mm256_storeu_ps(dz, t->dzp);
    for (size_t c = 0; c < count; c++) {
        sums[2 * c] += (double) ds[c];
        sums[2 * c + 1] += (double) dz[c];
    }
}

QSIM_ALWAYS_INLINE void qsim_v8_rows_backward(const qsim_rows * r, const float * x,
                                              const float * dy, float * dx, double * sums,
                                              qsim_v8_bwd_op op) {
    const qsim_rows local = *r; /* in registers: stores through y cannot change it */
    r = &local;
    const size_t  whole = r->n & ~(size_t) 7;
    const __m256i k     = qsim_v8_first(r->n - whole);
    const qsim_v8_grid b = qsim_v8_bounds(r);
    const int     nt    = qsim_v8_rows_stream(r, dx, x, dy);
    for (size_t row = 0; row < r->rows; row++) {
        const size_t at = row * r->ld;
        for (size_t j = 0; j < whole; j += 8) {
            const qsim_v8_grid g = qsim_v8_columns(r, j, &b);
            QSIM_PREFETCH(x + at + j);
            QSIM_PREFETCH(dy + at + j);
            const qsim_v8_grads t = op(_mm256_loadu_ps(x + at + j), _mm256_loadu_ps(dy + at + j), &g);
            qsim_v8_store(dx + at + j, t.dx, nt);
            if (sums) {
                qsim_v8_add_terms(sums + 2 * j, &t);
            }
        }
        if (whole < r->n) {
            const qsim_v8_grid  g = qsim_v8_columns_masked(r, whole, k, &b);
            const qsim_v8_grads t = op(_mm256_maskload_ps(x + at + whole, k),
                                       _mm256_maskload_ps(dy + at + whole, k), &g);
            _mm256_maskstore_ps(dx + at + whole, k, t.dx);
            if (sums) {
                qsim_v8_add_terms_tail(sums + 2 * whole, &t, r->n - whole);
            }
        }
    }
    if (nt) {
        _mm_sfence();
    }
}

void qsim_qdq_rows_f32_avx2(const qsim_rows * r, const float * x, float * y) {
    qsim_v8_rows_map(r, x, y, qsim_v8_qdq);
}

void qsim_quantize_rows_f32_avx2(const qsim_rows * r, const float * x, float * y) {
    qsim_v8_rows_map(r, x, y, qsim_v8_quantize);
}

void qsim_dequantize_rows_f32_avx2(const qsim_rows * r, const float * x, float * y) {
    qsim_v8_rows_map(r, x, y, qsim_v8_dequantize);
}

void qsim_qdq_rows_backward_f32_avx2(const qsim_rows * r, const float * x, const float * dy,
                                     float * dx, double * sums) {
    qsim_v8_rows_backward(r, x, dy, dx, sums, qsim_v8_qdq_grads);
}

void qsim_quantize_rows_backward_f32_avx2(const qsim_rows * r, const float * x, const float * dy,
                                          float * dx, double * sums) {
    qsim_v8_rows_backward(r, x, dy, dx, sums, qsim_v8_quantize_grads);
}

void qsim_dequantize_rows_backward_f32_avx2(const qsim_rows * r, const float * x,
                                            const float * dy, float * dx, double * sums) {
    qsim_v8_rows_backward(r, x, dy, dx, sums, qsim_v8_dequantize_grads);
}
