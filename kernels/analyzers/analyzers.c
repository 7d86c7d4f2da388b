#include <string.h>

#include "analyzers/analyzer_search.h"

qsim_analyzer qsim_analyzer_defaults(qsim_analyzer_kind kind, qsim_grid_kind grid, int bitwidth) {
    const qsim_analyzer a = { kind, grid, bitwidth, 3.0, 17, 101, 21, 100.0, 100 };
    return a;
}

qsim_status qsim_analyzer_check(const qsim_analyzer * a) {
    int32_t qmin, qmax;
    if (!a || qsim_grid_bounds(a->grid, a->bitwidth, &qmin, &qmax) != QSIM_SUCCESS) {
        return QSIM_INVALID_ARGUMENT;
    }
    switch (a->kind) {
        case QSIM_ANALYZER_MIN_MAX:
            return QSIM_SUCCESS;
        case QSIM_ANALYZER_TF_ENHANCED:
            return a->gamma >= 0.0 && a->gamma <= DBL_MAX && a->asym_delta_count >= 2 &&
                           a->sym_delta_count >= 2 && a->offset_count >= 3
                       ? QSIM_SUCCESS
                       : QSIM_INVALID_ARGUMENT;
        case QSIM_ANALYZER_PERCENTILE:
            return a->percentile >= 50.0 && a->percentile <= 100.0 ? QSIM_SUCCESS
                                                                   : QSIM_INVALID_ARGUMENT;
        case QSIM_ANALYZER_MSE:
            return a->mse_delta_count >= 1 ? QSIM_SUCCESS : QSIM_INVALID_ARGUMENT;
    }
    return QSIM_INVALID_ARGUMENT;
}

size_t qsim_analyzer_workspace(const qsim_analyzer * a, int64_t bins) {
    const size_t b = bins > 0 ? (size_t) bins : 0;
    switch (a->kind) {
        case QSIM_ANALYZER_TF_ENHANCED: return QSIM_VIEW_DOUBLES(b);
        case QSIM_ANALYZER_MSE:         return QSIM_VIEW_DOUBLES(b) + 2 * b + 1;
        case QSIM_ANALYZER_MIN_MAX:
        case QSIM_ANALYZER_PERCENTILE:  break;
    }
    return 0;
}

/* The value below which `target` of the histogram's `total` count lies, the CDF being linear
 * within each bin. */
static double qsim_quantile(const int64_t * counts, int64_t bins, qsim_hist_range r,
                            double target) {
    const double w   = (r.hi - r.lo) / (double) bins;
    double       cum = 0.0;
    int64_t      last = 0;
    for (int64_t i = 0; i < bins; i++) {
        if (counts[i] == 0) {
            continue;
        }
        const double h = (double) counts[i];
        if (cum + h >= target) {
            return r.lo + ((double) i + fmax(target - cum, 0.0) / h) * w;
        }
        cum += h;
        last = i;
    }
    return r.lo + (double) (last + 1) * w;
}

static qsim_status qsim_percentile(const qsim_analyzer * a, const int64_t * counts, int64_t bins,
                                   qsim_hist_range r, float min, float max, qsim_encoding * out) {
    float lo = min, hi = max;
    if (a->percentile < 100.0) {
        double total = 0.0;
        for (int64_t i = 0; i < bins; i++) {
            total += (double) counts[i];
        }
        const double p = a->percentile / 100.0;
        const double qlo = qsim_quantile(counts, bins, r, total * (1.0 - p));
        const double qhi = qsim_quantile(counts, bins, r, total * p);
        lo = (float) fmin(fmax(qlo, (double) min), (double) max);
        hi = (float) fmin(fmax(qhi, (double) min), (double) max);
    }
    return qsim_encoding_from_range(a->grid, a->bitwidth, lo, hi, out);
}

static int qsim_histogram_empty(const int64_t * counts, int64_t bins, qsim_hist_range r) {
    if (!(r.hi > r.lo)) {
        return 1;
    }
    for (int64_t i = 0; i < bins; i++) {
        if (counts[i] != 0) {
            return 0;
        }
    }
    return 1;
}

static qsim_status qsim_analyze_one(const qsim_analyzer * a, const qsim_channel_stats * s,
                                    int64_t c, double * work, qsim_encoding * out) {
    const float min = s->min[c], max = s->max[c];
    qsim_encoding mm;
    const qsim_status st = qsim_encoding_from_range(a->grid, a->bitwidth, min, max, &mm);
    if (st != QSIM_SUCCESS || a->kind == QSIM_ANALYZER_MIN_MAX) {
        *out = mm;
        return st;
    }
    if (!s->counts || !s->ranges || s->bins < 1) {
        return QSIM_INVALID_ARGUMENT;
    }
    const int64_t *       counts = s->counts + c * s->bins;
    const qsim_hist_range r      = s->ranges[c];
    if (qsim_histogram_empty(counts, s->bins, r)) {
        return QSIM_INVALID_ARGUMENT;
    }
    if (a->kind == QSIM_ANALYZER_PERCENTILE) {
        return qsim_percentile(a, counts, s->bins, r, min, max, out);
    }
    qsim_hist_view v;
    qsim_view_init(&v, counts, s->bins, r, work);
    double * rest = work + QSIM_VIEW_DOUBLES((size_t) s->bins);
    *out = a->kind == QSIM_ANALYZER_TF_ENHANCED ? qsim_search_sqnr(a, &v, min, max, &mm)
                                                : qsim_search_mse(a, &v, min, max, &mm, rest);
    return QSIM_SUCCESS;
}

qsim_status qsim_analyze_channels(const qsim_analyzer * a, const qsim_channel_stats * s,
                                  double * work, qsim_encoding * out, int64_t begin, int64_t end,
                                  int64_t * bad_channel) {
    if (qsim_analyzer_check(a) != QSIM_SUCCESS || !s || !s->min || !s->max || !out ||
        (a->kind != QSIM_ANALYZER_MIN_MAX && a->kind != QSIM_ANALYZER_PERCENTILE && !work)) {
        if (bad_channel) {
            *bad_channel = -1;
        }
        return QSIM_INVALID_ARGUMENT;
    }
    for (int64_t c = begin; c < end; c++) {
        const qsim_status st = qsim_analyze_one(a, s, c, work, &out[c]);
        if (st != QSIM_SUCCESS) {
            if (bad_channel) {
                *bad_channel = c;
            }
            return st;
        }
    }
    return QSIM_SUCCESS;
}
