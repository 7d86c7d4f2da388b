/*
 * analyzer_search.h (internal): the candidate searches of the TF_ENHANCED and MSE analyzers over
 * a compacted histogram (qsim/analyzers.h documents the candidates and the cost).
 */
#ifndef QSIM_ANALYZER_SEARCH_H
#define QSIM_ANALYZER_SEARCH_H

#include "grid/grid_encoding.h"

/* Doubles a view of a histogram of b bins takes from the workspace. */
#define QSIM_VIEW_DOUBLES(b) (5 * (b) + 3)

/* The nonempty bins of one histogram (centres m, counts h, ascending) and prefix sums over them
 * of h, h*(m - c) and h*(m - c)^2, entry j summing bins [0, j); c is the range's centre, which
 * keeps the sums small. */
typedef struct qsim_hist_view {
    int64_t        k;
    const double * m;
    const double * h;
    const double * p0;
    const double * p1;
    const double * p2;
    double         c;
} qsim_hist_view;

/* Builds the view in work[0, QSIM_VIEW_DOUBLES(bins)). */
void qsim_view_init(qsim_hist_view * v, const int64_t * counts, int64_t bins, qsim_hist_range r,
                    double * work);

/* TF_ENHANCED: the cheapest candidate; `mm` is the MIN_MAX encoding of (min, max). */
qsim_encoding qsim_search_sqnr(const qsim_analyzer * a, const qsim_hist_view * v, float min,
                               float max, const qsim_encoding * mm);

/* MSE: the candidate with the least squared error; work holds 2 * v->k + 1 doubles. */
qsim_encoding qsim_search_mse(const qsim_analyzer * a, const qsim_hist_view * v, float min,
                              float max, const qsim_encoding * mm, double * work);

#endif /* QSIM_ANALYZER_SEARCH_H */
