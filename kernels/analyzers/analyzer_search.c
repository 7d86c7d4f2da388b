#include "analyzers/analyzer_search.h"

/* Round half to even without a libm call: exact for |t| < 2^51, and larger doubles are integers. */
static inline double qsim_rint(double t) {
    const double magic = 0x1.8p52;
    return fabs(t) < 0x1p51 ? (t + magic) - magic : t;
}

void qsim_view_init(qsim_hist_view * v, const int64_t * counts, int64_t bins, qsim_hist_range r,
                    double * work) {
    const size_t b = (size_t) bins;
    double * m = work, * h = m + b, * p0 = h + b, * p1 = p0 + b + 1, * p2 = p1 + b + 1;
    const double w = (r.hi - r.lo) / (double) bins;
    int64_t      k = 0;
    for (int64_t i = 0; i < bins; i++) {
        if (counts[i] != 0) {
            m[k] = r.lo + ((double) i + 0.5) * w;
            h[k] = (double) counts[i];
            k++;
        }
    }
    v->c = r.lo / 2 + r.hi / 2;
    p0[0] = p1[0] = p2[0] = 0.0;
    for (int64_t j = 0; j < k; j++) {
        const double d = m[j] - v->c;
        p0[j + 1] = p0[j] + h[j];
        p1[j + 1] = p1[j] + h[j] * d;
        p2[j + 1] = p2[j] + h[j] * d * d;
    }
    v->k = k, v->m = m, v->h = h, v->p0 = p0, v->p1 = p1, v->p2 = p2;
}

/* Sum over bins [i, j) of h * (val - m)^2, from the prefix sums. */
static double qsim_clip_sum(const qsim_hist_view * v, int64_t i, int64_t j, double val) {
    if (i >= j) {
        return 0.0;
    }
    const double d = val - v->c;
    const double s = d * d * (v->p0[j] - v->p0[i]) - 2.0 * d * (v->p1[j] - v->p1[i]) +
                     (v->p2[j] - v->p2[i]);
    return s > 0.0 ? s : 0.0;
}

/* First bin whose grid position rint(m * inv) is >= t (positions ascend with m). With `pos`
 * given, positions are read from it instead. */
static int64_t qsim_first_at_least(const qsim_hist_view * v, const double * pos, double inv,
                                   double t) {
    int64_t lo = 0, hi = v->k;
    while (lo < hi) {
        const int64_t mid = lo + (hi - lo) / 2;
        const double  p   = pos ? pos[mid] : qsim_rint(v->m[mid] * inv);
        if (p >= t) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    return lo;
}

typedef struct qsim_grid_ctx {
    int32_t qmin, qmax;
    double  gamma;
} qsim_grid_ctx;

/* Cost of clipping plus the rounding noise of bins [a, b) given as `round`. */
static double qsim_total(const qsim_hist_view * v, const qsim_grid_ctx * g, double scale,
                         int32_t zp, int64_t a, int64_t b, double round) {
    const double clip = qsim_clip_sum(v, 0, a, (double) (g->qmin - zp) * scale) +
                        qsim_clip_sum(v, b, v->k, (double) (g->qmax - zp) * scale);
    return g->gamma * clip + round;
}

/* Cost of an encoding, rounding each unclipped bin. */
static double qsim_cost(const qsim_hist_view * v, const qsim_grid_ctx * g, const qsim_encoding * e) {
    const double  scale = (double) e->scale, inv = 1.0 / scale;
    const int32_t zp    = e->zero_point;
    const int64_t a     = qsim_first_at_least(v, NULL, inv, (double) (g->qmin - zp));
    const int64_t b     = qsim_first_at_least(v, NULL, inv, (double) (g->qmax - zp) + 1.0);
    double        acc[4] = { 0.0, 0.0, 0.0, 0.0 };
    int64_t       i      = a;
    for (; i + 4 <= b; i += 4) {
        for (int l = 0; l < 4; l++) {
            const double e2 = qsim_rint(v->m[i + l] * inv) * scale - v->m[i + l];
            acc[l] += v->h[i + l] * e2 * e2;
        }
    }
    for (; i < b; i++) {
        const double e2 = qsim_rint(v->m[i] * inv) * scale - v->m[i];
        acc[0] += v->h[i] * e2 * e2;
    }
    return qsim_total(v, g, scale, zp, a, b, (acc[0] + acc[1]) + (acc[2] + acc[3]));
}

static float qsim_candidate_scale(double s) {
    return (float) fmin(fmax(s, (double) FLT_EPSILON), (double) FLT_MAX);
}

/* The cheapest encoding so far. */
typedef struct qsim_best {
    double        cost;
    qsim_encoding enc;
} qsim_best;

/* Scores candidate (scale, zp) as the encoding it becomes, keeping it when strictly cheaper. */
static void qsim_try(qsim_best * best, const qsim_hist_view * v, const qsim_grid_ctx * g,
                     double scale, int32_t zp) {
    const qsim_encoding e    = qsim_make_encoding(qsim_candidate_scale(scale), zp, g->qmin, g->qmax);
    const double        cost = qsim_cost(v, g, &e);
    if (cost < best->cost) {
        best->cost = cost;
        best->enc  = e;
    }
}

qsim_encoding qsim_search_sqnr(const qsim_analyzer * a, const qsim_hist_view * v, float min,
                               float max, const qsim_encoding * mm) {
    qsim_grid_ctx g = { 0, 0, a->gamma };
    (void) qsim_grid_bounds(a->grid, a->bitwidth, &g.qmin, &g.qmax);
    qsim_best    best = { qsim_cost(v, &g, mm), *mm };
    const double d    = (double) mm->scale;
    if (a->grid != QSIM_GRID_ASYMMETRIC) {
        for (int k = 1; k <= a->sym_delta_count; k++) {
            qsim_try(&best, v, &g, d * k / (a->sym_delta_count - 1), mm->zero_point);
        }
        return best.enc;
    }
    const double n    = (double) (g.qmax - g.qmin);
    const double min0 = fmin(qsim_clamp_finite_d((double) min), 0.0);
    const double max0 = fmax(qsim_clamp_finite_d((double) max), 0.0);
    const int    span    = g.qmax - g.qmin + 2;
    const int    offsets = a->offset_count < span ? a->offset_count : span;
    const double step    = n / (offsets - 2);
    for (int k = 1; k <= a->asym_delta_count; k++) {
        const double delta = d * k / (a->asym_delta_count - 1);
        for (int j = 0; j < offsets; j++) {
            /* AIMET offset (= -zero point) j, the last one the observed offset; the candidate's
             * range is clamped to the observed one and its scale and offset re-derived. */
            const double o    = j < offsets - 1 ? qsim_rint(-n + j * step) : qsim_rint(min0 / d);
            const double cmin = fmax(min0, delta * o), cmax = fmin(max0, delta * (o + n));
            const double s    = (double) qsim_candidate_scale((cmax - cmin) / n);
            qsim_try(&best, v, &g, s, qsim_zero_point_for(cmin, s, g.qmin, g.qmax));
        }
    }
    return best.enc;
}

/* Tabulates the grid positions of every bin for one scale and the prefix sums of their rounding
 * noise, so that each zero point then costs two binary searches. */
static void qsim_tabulate(const qsim_hist_view * v, double scale, double * pos, double * round) {
    const double inv = 1.0 / scale;
    round[0] = 0.0;
    for (int64_t i = 0; i < v->k; i++) {
        pos[i] = qsim_rint(v->m[i] * inv);
        const double e = pos[i] * scale - v->m[i];
        round[i + 1] = round[i] + v->h[i] * e * e;
    }
}

static double qsim_cost_tab(const qsim_hist_view * v, const qsim_grid_ctx * g, const double * pos,
                            const double * round, double scale, int32_t zp) {
    const int64_t a = qsim_first_at_least(v, pos, 0.0, (double) (g->qmin - zp));
    const int64_t b = qsim_first_at_least(v, pos, 0.0, (double) (g->qmax - zp) + 1.0);
    return qsim_total(v, g, scale, zp, a, b, round[b] - round[a]);
}

/* The best tabulated candidate so far. */
typedef struct qsim_best_tab {
    double  cost, scale;
    int32_t zp;
} qsim_best_tab;

static void qsim_try_tab(qsim_best_tab * best, const qsim_hist_view * v, const qsim_grid_ctx * g,
                         const double * pos, const double * round, double scale, int32_t zp) {
    const double cost = qsim_cost_tab(v, g, pos, round, scale, zp);
    if (cost < best->cost) {
        best->cost = cost, best->scale = scale, best->zp = zp;
    }
}

/* Zero points an asymmetric MSE search tries per scale. */
#define QSIM_MSE_ZERO_POINTS 256

qsim_encoding qsim_search_mse(const qsim_analyzer * a, const qsim_hist_view * v, float min,
                              float max, const qsim_encoding * mm, double * work) {
    qsim_grid_ctx g = { 0, 0, 1.0 };
    (void) qsim_grid_bounds(a->grid, a->bitwidth, &g.qmin, &g.qmax);
    const double  mm_cost = qsim_cost(v, &g, mm);
    qsim_best_tab best    = { mm_cost, (double) mm->scale, mm->zero_point };
    double *      pos     = work, * round = work + v->k;
    const int32_t n       = g.qmax - g.qmin;
    const int     zps     = n < QSIM_MSE_ZERO_POINTS ? n + 1 : QSIM_MSE_ZERO_POINTS;
    const double  min0    = fmin(qsim_clamp_finite_d((double) min), 0.0);
    const double  max0    = fmax(qsim_clamp_finite_d((double) max), 0.0);
    for (int k = 1; k <= a->mse_delta_count; k++) {
        const double s = (double) qsim_candidate_scale((double) mm->scale * k / a->mse_delta_count);
        qsim_tabulate(v, s, pos, round);
        if (a->grid != QSIM_GRID_ASYMMETRIC) {
            qsim_try_tab(&best, v, &g, pos, round, s, mm->zero_point);
            continue;
        }
        for (int j = 0; j < zps; j++) {
            const int32_t zp = g.qmin + (int32_t) qsim_rint((double) j * n / (zps - 1));
            qsim_try_tab(&best, v, &g, pos, round, s, zp);
        }
        qsim_try_tab(&best, v, &g, pos, round, s, qsim_zero_point_for(min0, s, g.qmin, g.qmax));
        qsim_try_tab(&best, v, &g, pos, round, s, qsim_zero_point_for(max0 - n * s, s, g.qmin, g.qmax));
    }
    /* The winner becomes an encoding (its scale re-derived); it must still beat MIN_MAX. */
    const qsim_encoding e = qsim_make_encoding((float) best.scale, best.zp, g.qmin, g.qmax);
    return qsim_cost(v, &g, &e) < mm_cost ? e : *mm;
}
