/*
 * grid_encoding.h (internal): pieces shared by grid_encoding.c and the analyzers.
 */
#ifndef QSIM_ENCODING_COMMON_H
#define QSIM_ENCODING_COMMON_H

#include "qsim/analyzers.h"
#include "grid/zero_point.h"
#include "stats/stats_common.h"

/* The encoding of an fp32 scale and a zero point on [qmin, qmax] (qsim/analyzers.h): the range
 * scale * (qmin - zp), scale * (qmax - zp) in fp32, and the scale re-derived from that range in
 * fp32, which a quantizer holding min/max computes too, provided that its zero point rule
 * (qsim_zero_point_f32, asymmetric) gives zp back. The first scale stays when the range is too
 * wide to derive one (beyond +-FLT_MAX / 2). */
static inline qsim_encoding qsim_make_encoding(float scale, int32_t zp, int32_t qmin, int32_t qmax) {
    const float lo = (float) qsim_clamp_finite_d((double) scale * (double) (qmin - zp));
    const float hi = (float) qsim_clamp_finite_d((double) scale * (double) (qmax - zp));
    const float derived = (hi - lo) / (float) (qmax - qmin);
    const int   same_zp =
        qsim_zero_point_f32(QSIM_GRID_ASYMMETRIC, lo, derived, qmin, qmax) == (float) zp;
    const qsim_encoding e = { derived > 0.0f && derived <= FLT_MAX && same_zp ? derived : scale,
                              zp, lo, hi };
    return e;
}

/* The zero point that puts `lo` at qmin for `scale`, clamped to the grid. */
static inline int32_t qsim_zero_point_for(double lo, double scale, int32_t qmin, int32_t qmax) {
    const double z = (double) qmin - nearbyint(lo / scale);
    return (int32_t) fmin(fmax(z, (double) qmin), (double) qmax);
}

#endif /* QSIM_ENCODING_COMMON_H */
