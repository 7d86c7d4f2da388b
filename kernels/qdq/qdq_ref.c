#include "qdq/qdq_common.h"

void qsim_qdq_f32_ref(size_t n, const float * x, float * y, qsim_grid g) {
    for (size_t i = 0; i < n; i++) {
        const float q = qsim_clampf(qsim_grid_pos(x[i], g), g.qmin, g.qmax);
        y[i] = (q - g.zero_point) * g.scale;
    }
}

void qsim_quantize_f32_ref(size_t n, const float * x, float * y, qsim_grid g) {
    for (size_t i = 0; i < n; i++) {
        y[i] = qsim_clampf(qsim_grid_pos(x[i], g), g.qmin, g.qmax);
    }
}

void qsim_dequantize_f32_ref(size_t n, const float * x, float * y, qsim_grid g) {
    for (size_t i = 0; i < n; i++) {
        y[i] = (x[i] - g.zero_point) * g.scale;
    }
}

/* The per-lane double partial sums of a backward's scale and zero-point gradients (element i in
 * lane i % QSIM_REDUCE_LANES), added to `sums` in the fixed lane order by qsim_lanes_flush. */
typedef struct {
    double scale[QSIM_REDUCE_LANES], zero_point[QSIM_REDUCE_LANES];
} qsim_lanes;

static inline void qsim_lanes_add(qsim_lanes * l, size_t i, float ds, float dz) {
    l->scale[i % QSIM_REDUCE_LANES] += (double) ds;
    l->zero_point[i % QSIM_REDUCE_LANES] += (double) dz;
}

static void qsim_lanes_flush(const qsim_lanes * l, double * sums) {
    if (sums) {
        sums[0] += qsim_combine_lanes(l->scale);
        sums[1] += qsim_combine_lanes(l->zero_point);
    }
}

void qsim_qdq_backward_f32_ref(size_t n, const float * x, const float * dy, float * dx,
                               qsim_grid g, double * sums) {
    qsim_lanes l = { { 0 }, { 0 } };
    for (size_t i = 0; i < n; i++) {
        const float t   = x[i] / g.scale;
        const float pos = rintf(t) + g.zero_point;
        const int   m   = qsim_in_grid(pos, g);
        const float d   = dy[i];
        dx[i] = m ? d : 0.0f;
        if (sums) {
            const float qz = qsim_clampf(pos, g.qmin, g.qmax) - g.zero_point;
            qsim_lanes_add(&l, i, d * (m ? qz - t : qz), m ? 0.0f : -d * g.scale);
        }
    }
    qsim_lanes_flush(&l, sums);
}

void qsim_quantize_backward_f32_ref(size_t n, const float * x, const float * dy, float * dx,
                                    qsim_grid g, double * sums) {
    qsim_lanes l = { { 0 }, { 0 } };
    for (size_t i = 0; i < n; i++) {
        const float t = x[i] / g.scale;
        const int   m = qsim_in_grid(rintf(t) + g.zero_point, g);
        const float d = m ? dy[i] : 0.0f;
        dx[i] = d / g.scale;
        if (sums) {
            qsim_lanes_add(&l, i, m ? -(d / g.scale) * t : 0.0f, d);
        }
    }
    qsim_lanes_flush(&l, sums);
}

void qsim_dequantize_backward_f32_ref(size_t n, const float * x, const float * dy, float * dx,
                                      qsim_grid g, double * sums) {
    qsim_lanes l = { { 0 }, { 0 } };
    for (size_t i = 0; i < n; i++) {
        const float d = dy[i];
        if (sums) {
            qsim_lanes_add(&l, i, d * (x[i] - g.zero_point), -d * g.scale);
        }
        dx[i] = d * g.scale;
    }
    qsim_lanes_flush(&l, sums);
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
