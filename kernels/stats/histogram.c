#include <string.h>

#include "stats/stats_common.h"

/* A range grows by at most this factor with aligned bins; beyond it the bins cannot stay exact
 * in double arithmetic, and the grown range is just the union. */
#define QSIM_MAX_FACTOR 0x1p40

qsim_bins qsim_bins_of(qsim_hist_range r, int64_t count) {
    const double scale = (double) count / (r.hi - r.lo);
    const qsim_bins b = {
        (float) qsim_clamp_finite_d(r.lo),
        (float) fmin(scale, (double) FLT_MAX),
        (int32_t) count,
    };
    return b;
}

/* [a, b] widened about its centre to a width fp32 bins can resolve (see qsim_histogram_grow). */
static qsim_hist_range qsim_fresh_range(double a, double b) {
    const double mid  = a / 2 + b / 2;
    const double need = fmax(fmax(fabs(a), fabs(b)) * 0x1p-21, 0x1p-101);
    const double half = fmax((b - a) / 2, need);
    const qsim_hist_range r = { mid - half, mid + half };
    return r;
}

qsim_status qsim_histogram_grow(int64_t bins, qsim_hist_range old, float min, float max,
                                qsim_hist_range * grown) {
    if (bins < 1 || bins > QSIM_MAX_BINS || !grown) {
        return QSIM_INVALID_ARGUMENT;
    }
    const double a = qsim_clamp_finite_d((double) min), b = qsim_clamp_finite_d((double) max);
    *grown = old;
    if (!(min <= max)) {
        return QSIM_SUCCESS;
    }
    if (!(old.hi > old.lo)) {
        *grown = qsim_fresh_range(a, b);
        return QSIM_SUCCESS;
    }
    if (a >= old.lo && b <= old.hi) {
        return QSIM_SUCCESS;
    }
    const double n       = (double) bins;
    const double w       = (old.hi - old.lo) / n;
    const double need_lo = a < old.lo ? ceil((old.lo - a) / w) : 0.0;
    const double need_hi = b > old.hi ? ceil((b - old.hi) / w) : 0.0;
    const double span    = n + need_lo + need_hi;
    const double factor  = ceil(span / n);
    if (factor > QSIM_MAX_FACTOR) {
        grown->lo = fmin(old.lo, a);
        grown->hi = fmax(old.hi, b);
        return QSIM_SUCCESS;
    }
    const double slack = factor * n - span;
    grown->lo = old.lo - (need_lo + floor(slack * need_lo / (need_lo + need_hi))) * w;
    grown->hi = grown->lo + factor * n * w;
    return QSIM_SUCCESS;
}

void qsim_histogram_move(int64_t bins, qsim_hist_range from, const int64_t * counts,
                         qsim_hist_range to, int64_t * out) {
    memset(out, 0, (size_t) bins * sizeof *out);
    if (!(from.hi > from.lo) || !(to.hi > to.lo)) {
        return;
    }
    const double n = (double) bins;
    const double wf = (from.hi - from.lo) / n, wt = (to.hi - to.lo) / n;
    /* In old-bin units the new bins start at -shift and are `factor` wide. When both are whole
     * numbers (ranges from qsim_histogram_grow) map with integer arithmetic, which stays exact
     * where bin centres computed in double would not. */
    const double factor = wt / wf, shift = (from.lo - to.lo) / wf;
    const double fr = nearbyint(factor), sr = nearbyint(shift);
    const int aligned = fr >= 1.0 && fabs(factor - fr) <= 1e-9 * fr && fabs(shift - sr) <= 1e-2;
    for (int64_t i = 0; i < bins; i++) {
        if (counts[i] == 0) {
            continue;
        }
        const double t = aligned ? floor(((double) i + sr) / fr)
                                 : floor(((double) i + 0.5 + shift) / factor);
        out[t < 0.0 ? 0 : (t >= n ? bins - 1 : (int64_t) t)] += counts[i];
    }
}
