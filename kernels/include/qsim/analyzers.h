/*
 * qsim/analyzers.h: encodings (scale, zero point) from calibration statistics (plain C, no torch).
 *
 * Grids and the encoding of a range follow aimet-torch v2 (docs/aimet.md §2.3), written in
 * the ONNX convention of qdq.h (q = clamp(rint(x / scale) + zero_point, qmin, qmax)):
 *
 *   grid (bitwidth b)     integers                      zero point
 *   SYMMETRIC             [-2^(b-1), 2^(b-1) - 1]       0
 *   STRICT_SYMMETRIC      [-(2^(b-1) - 1), 2^(b-1) - 1] 0
 *   UNSIGNED_SYMMETRIC    [0, 2^b - 1]                  0 when min >= 0, else 2^(b-1) (the
 *                                                       signed symmetric grid shifted up)
 *   ASYMMETRIC            [0, 2^b - 1]                  -rint(min / scale), in [0, 2^b - 1]
 *
 * Encoding of (min, max), with n = qmax - qmin, and P = qmax - zp, N = zp - qmin the positive and
 * negative steps of a symmetric grid (eps = FLT_EPSILON, the smallest scale):
 *   min0 = min(min, 0), max0 = max(max, 0)              (zero is always representable)
 *   if (max0 - min0) / n < eps: widen (asymmetric: max0 += n*eps; symmetric: max0 += P*eps,
 *                                                      min0 -= N*eps)
 *   asymmetric: scale = (max0 - min0) / n,  zero_point = clamp(qmin - rint(min0 / scale))
 *   symmetric:  scale = max(max0 / P, -min0 / N)
 * computed in double; scale is rounded to fp32 and the zero point computed from that fp32 scale.
 * The effective range is [scale * (qmin - zp), scale * (qmax - zp)] in fp32 (clamped to finite),
 * and the final scale is re-derived from it as (max - min) / (qmax - qmin) in fp32 (within 2 ulps
 * of the first), so that a quantizer holding min/max (aimet-torch v2) derives exactly this scale
 * and, as qmin - rint(min / scale), this zero point. (Ranges beyond +-FLT_MAX / 2 keep the first
 * scale.)
 *
 * Analyzers (docs/aimet.md §4): each gives one encoding per channel from the statistics of
 * qsim/stats.h.
 *  - MIN_MAX ("tf"): the encoding of the running (min, max).
 *  - TF_ENHANCED (SQNR): the candidate (scale, zp) with the least cost
 *        gamma * clipping noise + rounding noise
 *    over the histogram (each bin's count at its centre). Asymmetric grids: scales
 *    d * k / (A - 1), k = 1..A, with d the MIN_MAX scale, times the zero points of O - 1 AIMET
 *    offsets rint(-n + j * n / (O' - 2)), j = 0..O' - 2 with O' = min(O, n + 2), and the observed
 *    offset rint(min0 / d), each pair clamped to the observed range and re-derived; symmetric
 *    grids: scales d * k / (S - 1), k = 1..S, at the grid's zero point. The MIN_MAX encoding is
 *    always a candidate, so TF_ENHANCED never costs more than MIN_MAX.
 *  - PERCENTILE: the encoding of the (100 - p)% and p% quantiles of the histogram, interpolated
 *    linearly within a bin and clamped to the observed range; p = 100 is the observed range.
 *  - MSE: the candidate with the least histogram-weighted squared error (gamma = 1). Scales
 *    d * k / K, k = 1..K; symmetric grids keep their zero point; asymmetric grids try every zero
 *    point of the grid (at most 256, evenly spaced, for grids wider than 8 bits, plus those that
 *    align either end of the grid with the observed range).
 *
 * Cost of an encoding (scale s, zero point zp), in double over the nonempty bins, each bin's count
 * h at its centre m: position p = rint(m * (1 / s)) + zp; a bin with p outside [qmin, qmax] costs
 * gamma * h * (e - m)^2 with e the grid end it clips to ((qmin - zp) * s or (qmax - zp) * s), any
 * other h * ((p - zp) * s - m)^2. TF_ENHANCED scores each candidate as the encoding it becomes
 * (fp32 scale re-derived, see above); MSE scores candidates at their scale and keeps the winner
 * only if, re-derived, it still costs less than MIN_MAX. Ties go to the earlier candidate.
 * Nothing allocates: callers pass a workspace of qsim_analyzer_workspace() doubles. Ownership:
 * every pointer is borrowed for the duration of the call.
 */
#ifndef QSIM_ANALYZERS_H
#define QSIM_ANALYZERS_H

#include <stddef.h>
#include <stdint.h>

#include "qsim/stats.h"
#include "qsim/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum qsim_grid_kind {
    QSIM_GRID_SYMMETRIC          = 0,
    QSIM_GRID_STRICT_SYMMETRIC   = 1,
    QSIM_GRID_UNSIGNED_SYMMETRIC = 2,
    QSIM_GRID_ASYMMETRIC         = 3,
} qsim_grid_kind;

/* The integer range of a grid. QSIM_INVALID_ARGUMENT for a bitwidth outside 2..16 or an unknown
 * grid kind. */
qsim_status qsim_grid_bounds(qsim_grid_kind grid, int bitwidth, int32_t * qmin, int32_t * qmax);

/* One encoding: the qparams of qdq.h and the range they represent. */
typedef struct qsim_encoding {
    float   scale;      /* finite, > 0 (about FLT_EPSILON at least) */
    int32_t zero_point; /* ONNX sign, in [qmin, qmax] */
    float   min, max;   /* effective range: scale * (qmin - zero_point), scale * (qmax - zero_point) */
} qsim_encoding;

/* The encoding of the range [min, max] (see the top of this file). +-Inf count as +-FLT_MAX.
 * QSIM_INVALID_ARGUMENT for a bad grid or bitwidth, NaN, or min > max (no data). */
qsim_status qsim_encoding_from_range(qsim_grid_kind grid, int bitwidth, float min, float max,
                                     qsim_encoding * out);

/* The zero points of quantizers that hold their encodings as fp32 ranges (aimet-torch v2's
 * QuantizeDequantize; torchqsim.quantization.QuantizeDequantize calls this through the
 * zero_point op), for i < n, from the held min[i] and scale[i] = (max[i] - min[i]) / (qmax - qmin)
 * (the caller's fp32 scale), on the grid of `grid` at `bitwidth`:
 *   ASYMMETRIC           qmin - rint(min[i] / scale[i]) in fp32 (rint: ties to even), clamped to
 *                        [qmin, qmax]; NaN stays NaN (scale 0: a quantizer without an encoding)
 *   UNSIGNED_SYMMETRIC   2^(b-1) where min[i] < 0, else 0
 *   SYMMETRIC, STRICT    0
 * written to zp[i] as floats (the qdq ops take a floating zero point: range learning's). scale
 * is read only for ASYMMETRIC (it may be NULL otherwise); pointers are borrowed for the call.
 * QSIM_INVALID_ARGUMENT for a bad grid or bitwidth, n < 0 or a NULL pointer. */
qsim_status qsim_zero_points_f32(qsim_grid_kind grid, int bitwidth, const float * min,
                                 const float * scale, float * zp, int64_t n);

/* The range aimet-torch 2.42 holds for the observed range [min[i], max[i]], i < n, of a min/max
 * analyzer on an asymmetric grid of `steps` steps (qmax - qmin >= 1), as its float32 torch
 * expressions compute it (torchqsim.quantization.MinMaxEncodingAnalyzer.held_range), where
 * clamp(v, a, b) is v < a ? a : v > b ? b : v (so -0 stays -0, NaN stays NaN) and big = FLT_MAX:
 *   l = clamp(fixed_min ? *fixed_min : min[i], -big, 0),  h = clamp(max[i], 0, big),
 *   lo[i] = l,  hi[i] = min(h + steps * ((h - l) / steps < FLT_EPSILON ? FLT_EPSILON : +0), big)
 * *unseen is the first i with !(min[i] <= max[i]) (no finite value seen), else -1. fixed_min may
 * be NULL; the others are borrowed for the call. QSIM_INVALID_ARGUMENT for steps < 1, n < 0 or a
 * NULL pointer. */
qsim_status qsim_held_range_f32(int32_t steps, const float * min, const float * max,
                                const float * fixed_min, float * lo, float * hi, int64_t n,
                                int64_t * unseen);

/* Range learning: the grid parameters of quantizers that learn their held min[i] and max[i],
 * i < n, on the grid of `grid` at `bitwidth`: scale[i] = (max[i] - min[i]) / (qmax - qmin) in fp32
 * (an IEEE division), zp[i] as qsim_zero_points_f32 from min[i] and scale[i]. Pointers are
 * borrowed for the call. QSIM_INVALID_ARGUMENT for a bad grid or bitwidth, n < 0 or a NULL
 * pointer. */
qsim_status qsim_range_qparams_f32(qsim_grid_kind grid, int bitwidth, const float * min,
                                   const float * max, float * scale, float * zp, int64_t n);

/* The gradients dmin[i], dmax[i] of those min and max from the gradients ds[i] of the scale and
 * dzp[i] of the zero point (read only for ASYMMETRIC; the other kinds' zero points are constants),
 * each the fp32 operations torch's autograd performs for the same expressions, summed in the order
 * its engine sums them: with N = qmax - qmin, g1 = ds / N, and on an asymmetric grid (whose zero
 * point takes a scale computed apart, as QuantizeDequantize does) u = qmin - rint(min / scale),
 * dq = -(qmin <= u <= qmax ? dzp : +0), g2 = ((-dq) * ((min / scale) / scale)) / N:
 *   ASYMMETRIC   dmin = (dq / scale + -g2) + -g1,   dmax = g2 + g1
 *   others       dmin = -g1,                        dmax = g1
 * (tests/python/quantization/test_range_learning_op.py compares them with torch's autograd bit
 * for bit). Same errors as qsim_range_qparams_f32. */
qsim_status qsim_range_grads_f32(qsim_grid_kind grid, int bitwidth, const float * min,
                                 const float * max, const float * ds, const float * dzp,
                                 float * dmin, float * dmax, int64_t n);

typedef enum qsim_analyzer_kind {
    QSIM_ANALYZER_MIN_MAX     = 0,
    QSIM_ANALYZER_TF_ENHANCED = 1,
    QSIM_ANALYZER_PERCENTILE  = 2,
    QSIM_ANALYZER_MSE         = 3,
} qsim_analyzer_kind;

/* An analyzer and its options. Start from qsim_analyzer_defaults and change what you need. */
typedef struct qsim_analyzer {
    qsim_analyzer_kind kind;
    qsim_grid_kind     grid;
    int                bitwidth;          /* 2..16 */
    double             gamma;             /* TF_ENHANCED: weight of clipping noise, finite >= 0 (3.0) */
    int                asym_delta_count;  /* TF_ENHANCED: A, >= 2 (17) */
    int                sym_delta_count;   /* TF_ENHANCED: S, >= 2 (101) */
    int                offset_count;      /* TF_ENHANCED: O, >= 3 (21) */
    double             percentile;        /* PERCENTILE: p in [50, 100] (100) */
    int                mse_delta_count;   /* MSE: K, >= 1 (100) */
} qsim_analyzer;

/* An analyzer of `kind` with AIMET's default options. */
qsim_analyzer qsim_analyzer_defaults(qsim_analyzer_kind kind, qsim_grid_kind grid, int bitwidth);

/* QSIM_SUCCESS when every option is in its domain, else QSIM_INVALID_ARGUMENT. */
qsim_status qsim_analyzer_check(const qsim_analyzer * a);

/* Doubles of workspace qsim_analyze needs for histograms of `bins` bins (0 for MIN_MAX). */
size_t qsim_analyzer_workspace(const qsim_analyzer * a, int64_t bins);

/* The statistics of channels, as qsim/stats.h keeps them (arrays indexed by channel):
 * min[c], max[c] the finite range seen (min > max: nothing seen), and for the histogram analyzers
 * ranges[c] and counts[c * bins, (c + 1) * bins). MIN_MAX reads only min and max; the others
 * may be given NULL counts/ranges only for MIN_MAX. */
typedef struct qsim_channel_stats {
    const float *           min;
    const float *           max;
    const qsim_hist_range * ranges;
    const int64_t *         counts;
    int64_t                 bins;
} qsim_channel_stats;

/* Encodings of channels [begin, end) into out[c]. `work` holds qsim_analyzer_workspace(a, bins)
 * doubles (NULL for MIN_MAX); the caller owns it and may reuse it across calls (not across
 * threads). Errors (QSIM_INVALID_ARGUMENT): bad options or NULL arrays (*bad_channel = -1), or
 * a channel that saw no finite value or whose histogram is empty for a histogram analyzer: the
 * first such channel stops the call and its index goes to *bad_channel (when not NULL). */
qsim_status qsim_analyze_channels(const qsim_analyzer * a, const qsim_channel_stats * s,
                                  double * work, qsim_encoding * out, int64_t begin, int64_t end,
                                  int64_t * bad_channel);

#ifdef __cplusplus
}
#endif

#endif /* QSIM_ANALYZERS_H */
