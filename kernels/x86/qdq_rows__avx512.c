/*
 * qdq_rows__avx512.c: the row kernels (qsim_rows: one grid per column) with AVX-512 (F, BW, VL,
 * DQ), 16 columns per step, for per-channel quantization along the last axis.
 *
 * Bit-exact with the row kernels of qdq_ref.c: each element goes through the vector forms of
 * qdq_v16.h with its column's scale and zero point in its lane, and each column adds its terms to
 * its two sums in row order, one double addition per row. The last n % 16 columns of a row use
 * masked loads and stores (never touching memory outside the row); their sums are added from a
 * stack copy. Large contiguous blocks (QSIM_STREAM_MIN) not written in place are written with
 * non-temporal stores.
 */
#include "x86/qdq_v16.h"

/* The grid of the columns of mask k from j, with the bounds of `all`; the other lanes hold 0
 * (never stored), as do the fields the row kernels leave unused. */
static inline qsim_v16_grid qsim_v16_columns(const qsim_rows * r, size_t j, __mmask16 k,
                                             const qsim_v16_grid * all) {
    const qsim_v16_grid g = { .scale      = _mm512_maskz_loadu_ps(k, r->scale + j),
                              .zero_point = _mm512_maskz_loadu_ps(k, r->zero_point + j),
                              .qmin       = all->qmin,
                              .qmax       = all->qmax };
    return g;
}

/* The bounds of r in every lane (the other fields 0). */
static inline qsim_v16_grid qsim_v16_bounds(const qsim_rows * r) {
    const qsim_v16_grid g = { .qmin = _mm512_set1_ps(r->qmin), .qmax = _mm512_set1_ps(r->qmax) };
    return g;
}

/* Whether the block is written with non-temporal stores: contiguous whole vectors, aligned,
 * not in place (qsim_v16_stream). */
static inline int qsim_v16_rows_stream(const qsim_rows * r, const float * y, const float * a,
                                       const float * b) {
    return r->ld == r->n && r->n % 16 == 0 && qsim_v16_stream(r->rows * r->n, y, a, b);
}

static inline void qsim_v16_store(float * p, __m512 v, int nt) {
    if (nt) {
        _mm512_stream_ps(p, v);
    } else {
        _mm512_storeu_ps(p, v);
    }
}

QSIM_ALWAYS_INLINE void qsim_v16_rows_map(const qsim_rows * r, const float * x, float * y,
                                          qsim_v16_op op) {
    const qsim_rows local = *r; /* in registers: stores through y cannot change it */
    r = &local;
    const size_t    whole = r->n & ~(size_t) 15;
    const __mmask16 k     = qsim_v16_first(r->n - whole);
    const qsim_v16_grid b = qsim_v16_bounds(r);
    const int       nt    = qsim_v16_rows_stream(r, y, x, x);
    for (size_t row = 0; row < r->rows; row++) {
        const float * xr = x + row * r->ld;
        float *       yr = y + row * r->ld;
        for (size_t j = 0; j < whole; j += 16) {
            const qsim_v16_grid g = qsim_v16_columns(r, j, (__mmask16) 0xffff, &b);
            QSIM_PREFETCH(xr + j);
            qsim_v16_store(yr + j, op(_mm512_loadu_ps(xr + j), &g), nt);
        }
        if (whole < r->n) {
            const qsim_v16_grid g = qsim_v16_columns(r, whole, k, &b);
            _mm512_mask_storeu_ps(yr + whole, k, op(_mm512_maskz_loadu_ps(k, xr + whole), &g));
        }
    }
    if (nt) {
        _mm_sfence();
    }
}

/* sums[2j] += s_j and sums[2j+1] += z_j for the 8 columns of s and z. */
static inline void qsim_v16_add_pairs(double * sums, __m512d s, __m512d z) {
    const __m512i lo = _mm512_setr_epi64(0, 8, 1, 9, 2, 10, 3, 11);  /* s0 z0 ... s3 z3 */
    const __m512i hi = _mm512_setr_epi64(4, 12, 5, 13, 6, 14, 7, 15); /* s4 z4 ... s7 z7 */
    _mm512_storeu_pd(sums, _mm512_add_pd(_mm512_loadu_pd(sums), _mm512_permutex2var_pd(s, lo, z)));
    _mm512_storeu_pd(sums + 8, _mm512_add_pd(_mm512_loadu_pd(sums + 8), _mm512_permutex2var_pd(s, hi, z)));
}

/* The terms of 16 columns into their sums (sums points at column j's pair). */
static inline void qsim_v16_add_terms(double * sums, const qsim_v16_grads * t) {
    qsim_v16_add_pairs(sums, _mm512_cvtps_pd(_mm512_castps512_ps256(t->ds)),
                       _mm512_cvtps_pd(_mm512_castps512_ps256(t->dzp)));
    qsim_v16_add_pairs(sums + 16, _mm512_cvtps_pd(_mm512_extractf32x8_ps(t->ds, 1)),
                       _mm512_cvtps_pd(_mm512_extractf32x8_ps(t->dzp, 1)));
}

/* The terms of the first `count` columns of t, one at a time. */
static inline void qsim_v16_add_terms_tail(double * sums, const qsim_v16_grads * t, size_t count) {
    float ds[16], dz[16];
    _mm512_storeu_ps(ds, t->ds);
    _mm512_storeu_ps(dz, t->dzp);
    for (size_t c = 0; c < count; c++) {
        sums[2 * c] += (double) ds[c];
        sums[2 * c + 1] += (double) dz[c];
    }
}

QSIM_ALWAYS_INLINE void qsim_v16_rows_backward(const qsim_rows * r, const float * x,
                                               const float * dy, float * dx, double * sums,
                                               qsim_v16_bwd_op op) {
    const qsim_rows local = *r; /* in registers: stores through y cannot change it */
    r = &local;
    const size_t    whole = r->n & ~(size_t) 15;
    const __mmask16 k     = qsim_v16_first(r->n - whole);
    const qsim_v16_grid b = qsim_v16_bounds(r);
    const int       nt    = qsim_v16_rows_stream(r, dx, x, dy);
    for (size_t row = 0; row < r->rows; row++) {
        const size_t at = row * r->ld;
        for (size_t j = 0; j < whole; j += 16) {
            const qsim_v16_grid g = qsim_v16_columns(r, j, (__mmask16) 0xffff, &b);
            QSIM_PREFETCH(x + at + j);
            QSIM_PREFETCH(dy + at + j);
            const qsim_v16_grads t = op(_mm512_loadu_ps(x + at + j), _mm512_loadu_ps(dy + at + j), &g);
            qsim_v16_store(dx + at + j, t.dx, nt);
            if (sums) {
                qsim_v16_add_terms(sums + 2 * j, &t);
            }
        }
        if (whole < r->n) {
            const qsim_v16_grid  g = qsim_v16_columns(r, whole, k, &b);
            const qsim_v16_grads t = op(_mm512_maskz_loadu_ps(k, x + at + whole),
                                        _mm512_maskz_loadu_ps(k, dy + at + whole), &g);
            _mm512_mask_storeu_ps(dx + at + whole, k, t.dx);
            if (sums) {
                qsim_v16_add_terms_tail(sums + 2 * whole, &t, r->n - whole);
            }
        }
    }
    if (nt) {
        _mm_sfence();
    }
}

void qsim_qdq_rows_f32_avx512(const qsim_rows * r, const float * x, float * y) {
    qsim_v16_rows_map(r, x, y, qsim_v16_qdq);
}

void qsim_quantize_rows_f32_avx512(const qsim_rows * r, const float * x, float * y) {
    qsim_v16_rows_map(r, x, y, qsim_v16_quantize);
}

void qsim_dequantize_rows_f32_avx512(const qsim_rows * r, const float * x, float * y) {
    qsim_v16_rows_map(r, x, y, qsim_v16_dequantize);
}

void qsim_qdq_rows_backward_f32_avx512(const qsim_rows * r, const float * x, const float * dy,
                                       float * dx, double * sums) {
    qsim_v16_rows_backward(r, x, dy, dx, sums, qsim_v16_qdq_grads);
}

void qsim_quantize_rows_backward_f32_avx512(const qsim_rows * r, const float * x,
                                            const float * dy, float * dx, double * sums) {
    qsim_v16_rows_backward(r, x, dy, dx, sums, qsim_v16_quantize_grads);
}

void qsim_dequantize_rows_backward_f32_avx512(const qsim_rows * r, const float * x,
                                              const float * dy, float * dx, double * sums) {
    qsim_v16_rows_backward(r, x, dy, dx, sums, qsim_v16_dequantize_grads);
}
