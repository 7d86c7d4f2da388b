#include "grid/grid_encoding.h"

qsim_status qsim_grid_bounds(qsim_grid_kind grid, int bitwidth, int32_t * qmin, int32_t * qmax) {
    if (bitwidth < 2 || bitwidth > 16 || !qmin || !qmax) {
        return QSIM_INVALID_ARGUMENT;
    }
    const int32_t half = (int32_t) 1 << (bitwidth - 1);
    switch (grid) {
        case QSIM_GRID_SYMMETRIC:
            *qmin = -half;
            *qmax = half - 1;
            return QSIM_SUCCESS;
        case QSIM_GRID_STRICT_SYMMETRIC:
            *qmin = -(half - 1);
            *qmax = half - 1;
            return QSIM_SUCCESS;
        case QSIM_GRID_UNSIGNED_SYMMETRIC:
        case QSIM_GRID_ASYMMETRIC:
            *qmin = 0;
            *qmax = 2 * half - 1;
            return QSIM_SUCCESS;
    }
    return QSIM_INVALID_ARGUMENT;
}

/* The zero point of a symmetric grid: fixed, except that unsigned symmetric moves to the middle
 * of its grid when the data has negative values. */
static int32_t qsim_symmetric_zero_point(qsim_grid_kind grid, int32_t qmax, double min0) {
    return grid == QSIM_GRID_UNSIGNED_SYMMETRIC && min0 < 0.0 ? (qmax + 1) / 2 : 0;
}

qsim_status qsim_encoding_from_range(qsim_grid_kind grid, int bitwidth, float min, float max,
                                     qsim_encoding * out) {
    int32_t qmin, qmax;
    if (qsim_grid_bounds(grid, bitwidth, &qmin, &qmax) != QSIM_SUCCESS || !out || !(min <= max)) {
        return QSIM_INVALID_ARGUMENT;
    }
    const double eps  = (double) FLT_EPSILON;
    const double n    = (double) qmax - (double) qmin;
    double       min0 = fmin(qsim_clamp_finite_d((double) min), 0.0);
    double       max0 = fmax(qsim_clamp_finite_d((double) max), 0.0);
    const int    tiny = (max0 - min0) / n < eps;
    int32_t      zp;
    double       scale;
    if (grid == QSIM_GRID_ASYMMETRIC || (grid == QSIM_GRID_UNSIGNED_SYMMETRIC && min0 == 0.0)) {
        max0 += tiny ? n * eps : 0.0;
        scale = (double) (float) ((max0 - min0) / n);
        zp    = qsim_zero_point_for(min0, scale, qmin, qmax);
    } else {
        zp = qsim_symmetric_zero_point(grid, qmax, min0);
        const double pos = (double) (qmax - zp), neg = (double) (zp - qmin);
        max0 += tiny ? pos * eps : 0.0;
        min0 -= tiny ? neg * eps : 0.0;
        scale = (double) (float) fmax(max0 / pos, -min0 / neg);
    }
    *out = qsim_make_encoding((float) scale, zp, qmin, qmax);
    return QSIM_SUCCESS;
}

qsim_status qsim_zero_points_f32(qsim_grid_kind grid, int bitwidth, const float * min,
                                 const float * scale, float * zp, int64_t n) {
    int32_t qmin, qmax;
    if (qsim_grid_bounds(grid, bitwidth, &qmin, &qmax) != QSIM_SUCCESS || !min || !zp || n < 0 ||
        (grid == QSIM_GRID_ASYMMETRIC && !scale)) {
        return QSIM_INVALID_ARGUMENT;
    }
    for (int64_t i = 0; i < n; i++) {
        zp[i] = qsim_zero_point_f32(grid, min[i], scale ? scale[i] : 0.0f, qmin, qmax);
    }
    return QSIM_SUCCESS;
}

static float qsim_clamp_keep_f32(float v, float a, float b) {
    return v < a ? a : v > b ? b : v;
}

qsim_status qsim_held_range_f32(int32_t steps, const float * min, const float * max,
                                const float * fixed_min, float * lo, float * hi, int64_t n,
                                int64_t * unseen) {
    if (steps < 1 || !min || !max || !lo || !hi || n < 0 || !unseen) {
        return QSIM_INVALID_ARGUMENT;
    }
    const float s = (float) steps;
    *unseen = -1;
    for (int64_t i = 0; i < n; i++) {
        if (*unseen < 0 && !(min[i] <= max[i])) {
            *unseen = i;
        }
        const float l    = qsim_clamp_keep_f32(fixed_min ? *fixed_min : min[i], -FLT_MAX, 0.0f);
        const float h    = qsim_clamp_keep_f32(max[i], 0.0f, FLT_MAX);
        const float grow = s * ((h - l) / s < FLT_EPSILON ? FLT_EPSILON : 0.0f);
        const float g    = h + grow;
        lo[i] = l;
        hi[i] = g > FLT_MAX ? FLT_MAX : g;
    }
    return QSIM_SUCCESS;
}

qsim_status qsim_range_qparams_f32(qsim_grid_kind grid, int bitwidth, const float * min,
                                   const float * max, float * scale, float * zp, int64_t n) {
    int32_t qmin, qmax;
    if (qsim_grid_bounds(grid, bitwidth, &qmin, &qmax) != QSIM_SUCCESS || !min || !max ||
        !scale || !zp || n < 0) {
        return QSIM_INVALID_ARGUMENT;
    }
    const float steps = (float) (qmax - qmin);
    for (int64_t i = 0; i < n; i++) {
        scale[i] = (max[i] - min[i]) / steps;
        zp[i]    = qsim_zero_point_f32(grid, min[i], scale[i], qmin, qmax);
    }
    return QSIM_SUCCESS;
}

qsim_status qsim_range_grads_f32(qsim_grid_kind grid, int bitwidth, const float * min,
                                 const float * max, const float * ds, const float * dzp,
                                 float * dmin, float * dmax, int64_t n) {
    int32_t qmin, qmax;
    if (qsim_grid_bounds(grid, bitwidth, &qmin, &qmax) != QSIM_SUCCESS || !min || !max || !ds ||
        (grid == QSIM_GRID_ASYMMETRIC && !dzp) || !dmin || !dmax || n < 0) {
        return QSIM_INVALID_ARGUMENT;
    }
    const float steps = (float) (qmax - qmin);
    for (int64_t i = 0; i < n; i++) {
        const float g1 = ds[i] / steps;
        if (grid != QSIM_GRID_ASYMMETRIC) {
            dmin[i] = -g1, dmax[i] = g1;
            continue;
        }
        const float s  = (max[i] - min[i]) / steps;
        const float u  = (float) qmin - rintf(min[i] / s);
        const float dq = -(u >= (float) qmin && u <= (float) qmax ? dzp[i] : 0.0f);
        const float g2 = ((-dq) * ((min[i] / s) / s)) / steps;
        dmin[i] = (dq / s + -g2) + -g1;
        dmax[i] = g2 + g1;
    }
    return QSIM_SUCCESS;
}
