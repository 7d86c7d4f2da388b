#include "stats/stats_common.h"

/* Elements gathered per call when a channel is strided (inner == 1): a stack buffer, so the run
 * kernels always see contiguous data and nothing is allocated. */
#define QSIM_GATHER 256

/* Calls fn(run, len, ctx) on the elements of channel c in order, as contiguous runs. */
typedef void (*qsim_run_visit)(const float * run, size_t len, void * ctx);

static void qsim_visit_channel(const qsim_channel_view * v, const float * x, int64_t c,
                               qsim_run_visit fn, void * ctx) {
    if (v->inner > 1 || v->outer == 1) {
        for (int64_t o = 0; o < v->outer; o++) {
            fn(x + (o * v->channels + c) * v->inner, (size_t) v->inner, ctx);
        }
        return;
    }
    float buf[QSIM_GATHER];
    for (int64_t o = 0; o < v->outer; o += QSIM_GATHER) {
        const int64_t len = v->outer - o < QSIM_GATHER ? v->outer - o : QSIM_GATHER;
        for (int64_t j = 0; j < len; j++) {
            buf[j] = x[(o + j) * v->channels + c];
        }
        fn(buf, (size_t) len, ctx);
    }
}

typedef struct qsim_minmax_ctx {
    qsim_minmax_fn fn;
    float          min, max;
    int64_t        nonfinite;
} qsim_minmax_ctx;

static void qsim_minmax_visit(const float * run, size_t len, void * ctx) {
    qsim_minmax_ctx * m = ctx;
    m->nonfinite += m->fn(len, run, &m->min, &m->max);
}

void qsim_minmax_channels_f32(const qsim_stats_kernels * k, const qsim_channel_view * v,
                              const float * x, float * min, float * max, int64_t * nonfinite,
                              int64_t begin, int64_t end) {
    const qsim_stats_kernels * kk = k ? k : qsim_stats_best();
    for (int64_t c = begin; c < end; c++) {
        qsim_minmax_ctx m = { kk->minmax, min[c], max[c], 0 };
        qsim_visit_channel(v, x, c, qsim_minmax_visit, &m);
        min[c] = m.min;
        max[c] = m.max;
        nonfinite[c] += m.nonfinite;
    }
}

typedef struct qsim_histogram_ctx {
    qsim_histogram_fn fn;
    qsim_bins         bins;
    int64_t *         counts;
    float             min, max;
    int64_t           nonfinite;
} qsim_histogram_ctx;

static void qsim_histogram_visit(const float * run, size_t len, void * ctx) {
    qsim_histogram_ctx * h = ctx;
    h->nonfinite += h->fn(len, run, h->bins, h->counts, &h->min, &h->max);
}

void qsim_histogram_channels_f32(const qsim_stats_kernels * k, const qsim_channel_view * v,
                                 const float * x, const qsim_hist_range * ranges, int64_t bins,
                                 int64_t * counts, float * min, float * max, int64_t * nonfinite,
                                 int64_t begin, int64_t end) {
    const qsim_stats_kernels * kk = k ? k : qsim_stats_best();
    for (int64_t c = begin; c < end; c++) {
        if (!(ranges[c].hi > ranges[c].lo)) {
            qsim_minmax_channels_f32(kk, v, x, min, max, nonfinite, c, c + 1);
            continue;
        }
        qsim_histogram_ctx h = { kk->histogram, qsim_bins_of(ranges[c], bins), counts + c * bins,
                                 min[c], max[c], 0 };
        qsim_visit_channel(v, x, c, qsim_histogram_visit, &h);
        min[c] = h.min;
        max[c] = h.max;
        nonfinite[c] += h.nonfinite;
    }
}
