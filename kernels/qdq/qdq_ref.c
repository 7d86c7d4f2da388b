#include "qdq/qdq_common.h"

typedef float (*qsim_elem_fn)(float x, qsim_grid g);
typedef qsim_terms (*qsim_terms_fn)(float x, float dy, qsim_grid g);

static inline void qsim_ref_map(size_t n, const float * x, float * y, qsim_grid g,
                                qsim_elem_fn op) {
    for (size_t i = 0; i < n; i++) {
        y[i] = op(x[i], g);
    }
}

/* Element i adds its terms to lane i % QSIM_REDUCE_LANES (qsim/qdq.h). */
static inline void qsim_ref_backward(size_t n, const float * x, const float * dy, float * dx,
                                     qsim_grid g, double * sums, qsim_terms_fn op) {
    double ls[QSIM_REDUCE_LANES] = {0}, lz[QSIM_REDUCE_LANES] = {0};
    for (size_t i = 0; i < n; i++) {
        const qsim_terms e = op(x[i], dy[i], g);
        dx[i] = e.dx;
        ls[i % QSIM_REDUCE_LANES] += (double) e.ds;
        lz[i % QSIM_REDUCE_LANES] += (double) e.dzp;
    }
    if (sums) {
        sums[0] += qsim_combine_lanes(ls);
        sums[1] += qsim_combine_lanes(lz);
    }
}

void qsim_qdq_f32_ref(size_t n, const float * x, float * y, qsim_grid g) {
    qsim_ref_map(n, x, y, g, qsim_qdq1);
}

void qsim_qdq_mask_f32_ref(size_t n, const float * x, float * y, uint8_t * clamped, qsim_grid g,
                           float gate) {
    qsim_qdq_mask_run(n, x, y, clamped, g, gate);
}

void qsim_qdq_mask_backward_f32_ref(size_t n, const uint8_t * clamped, const float * dy, float * dx) {
    qsim_qdq_mask_backward_run(n, clamped, dy, dx);
}

void qsim_quantize_f32_ref(size_t n, const float * x, float * y, qsim_grid g) {
    qsim_ref_map(n, x, y, g, qsim_quantize1);
}

void qsim_dequantize_f32_ref(size_t n, const float * x, float * y, qsim_grid g) {
    qsim_ref_map(n, x, y, g, qsim_dequantize1);
}

void qsim_qdq_backward_f32_ref(size_t n, const float * x, const float * dy, float * dx,
                               qsim_grid g, double * sums) {
    qsim_ref_backward(n, x, dy, dx, g, sums, qsim_qdq_terms);
}

void qsim_quantize_backward_f32_ref(size_t n, const float * x, const float * dy, float * dx,
                                    qsim_grid g, double * sums) {
    qsim_ref_backward(n, x, dy, dx, g, sums, qsim_quantize_terms);
}

void qsim_dequantize_backward_f32_ref(size_t n, const float * x, const float * dy, float * dx,
                                      qsim_grid g, double * sums) {
    qsim_ref_backward(n, x, dy, dx, g, sums, qsim_dequantize_terms);
}

/* ---- rows with one grid per column (qsim_rows) ------------------------------------------------ */

static inline qsim_grid qsim_column_grid(const qsim_rows * r, size_t j) {
    const qsim_grid g = { r->scale[j], r->zero_point[j], r->qmin, r->qmax };
    return g;
}

static inline void qsim_ref_rows_map(const qsim_rows * r, const float * x, float * y,
                                     qsim_elem_fn op) {
    for (size_t row = 0; row < r->rows; row++) {
        for (size_t j = 0; j < r->n; j++) {
            y[row * r->ld + j] = op(x[row * r->ld + j], qsim_column_grid(r, j));
        }
    }
}

static inline void qsim_ref_rows_backward(const qsim_rows * r, const float * x, const float * dy,
                                          float * dx, double * sums, qsim_terms_fn op) {
    for (size_t row = 0; row < r->rows; row++) {
        for (size_t j = 0; j < r->n; j++) {
            const size_t     at = row * r->ld + j;
            const qsim_terms e  = op(x[at], dy[at], qsim_column_grid(r, j));
            dx[at] = e.dx;
            if (sums) {
                sums[2 * j] += (double) e.ds;
                sums[2 * j + 1] += (double) e.dzp;
            }
        }
    }
}

void qsim_qdq_rows_f32_ref(const qsim_rows * r, const float * x, float * y) {
    qsim_ref_rows_map(r, x, y, qsim_qdq1);
}

void qsim_quantize_rows_f32_ref(const qsim_rows * r, const float * x, float * y) {
    qsim_ref_rows_map(r, x, y, qsim_quantize1);
}

void qsim_dequantize_rows_f32_ref(const qsim_rows * r, const float * x, float * y) {
    qsim_ref_rows_map(r, x, y, qsim_dequantize1);
}

void qsim_qdq_rows_backward_f32_ref(const qsim_rows * r, const float * x, const float * dy,
                                    float * dx, double * sums) {
    qsim_ref_rows_backward(r, x, dy, dx, sums, qsim_qdq_terms);
}

void qsim_quantize_rows_backward_f32_ref(const qsim_rows * r, const float * x, const float * dy,
                                         float * dx, double * sums) {
    qsim_ref_rows_backward(r, x, dy, dx, sums, qsim_quantize_terms);
}

void qsim_dequantize_rows_backward_f32_ref(const qsim_rows * r, const float * x,
                                           const float * dy, float * dx, double * sums) {
    qsim_ref_rows_backward(r, x, dy, dx, sums, qsim_dequantize_terms);
}

void qsim_cast_f16_f32_ref(size_t n, const float * x, float * y) {
    for (size_t i = 0; i < n; i++) {
        y[i] = qsim_round_f16(x[i]);
    }
}

void qsim_cast_bf16_f32_ref(size_t n, const float * x, float * y) {
    for (size_t i = 0; i < n; i++) {
        y[i] = qsim_round_bf16(x[i]);
    }
}
