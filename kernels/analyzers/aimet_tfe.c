/* aimet-torch 2.42's tf_enhanced kernels (qsim/aimet_tfe.h): every float32 operation is the one
 * the torch ops of wrappers/quantization/tf_enhanced.py perform, in their order. The hot loops
 * live in analyzers/aimet_tfe_kernels.h, one variant per ISA. */
#include <float.h>

#include "analyzers/aimet_tfe_kernels.h"
#include "runtime/variants_dispatch.h"

#define BINS        QSIM_TFE_BINS
#define ASYM_DELTAS 17
#define SYM_DELTAS  101
#define MAX_CANDS   (ASYM_DELTAS * (QSIM_TFE_MAX_OFFSETS + 1))

QSIM_TFE_DEFINE_VARIANT(ref)

#define QSIM_TFE_VARIANT(isa) \
    { #isa, qsim_##isa##_supported, qsim_tfe_cost_##isa, qsim_tfe_heads_##isa, qsim_tfe_count_##isa },
static const qsim_tfe_kernels qsim_tfe_table[] = {
#include "analyzers/aimet_tfe_variants.inc"
};
#undef QSIM_TFE_VARIANT

QSIM_DEFINE_VARIANT_DISPATCH(qsim_tfe_kernels, qsim_tfe_table, qsim_tfe_variants, qsim_tfe_best)

qsim_status qsim_tfe_count_k(const qsim_tfe_kernels * k, size_t n, const float * x, float lo,
                             float hi, int64_t * slots) {
    if (!k || !(lo < hi) || !isfinite(lo) || !isfinite(hi) || (n && !x) || !slots) {
        return QSIM_INVALID_ARGUMENT;
    }
    k->count(n, x, lo, hi, slots);
    return QSIM_SUCCESS;
}

qsim_status qsim_tfe_count(size_t n, const float * x, float lo, float hi, int64_t * slots) {
    return qsim_tfe_count_k(qsim_tfe_best(), n, x, lo, hi, slots);
}

/* The slots as the histogram's counts: the bins, values below / above in the end bins. Slots
 * below 2^31 convert through int32 (the same rounding, in vector instructions: a weight row's
 * 512 scalar conversions took a quarter of its batch); larger ones again from int64. */
static void tfe_counts(const int64_t * slots, float * counts) {
    uint64_t all = 0;
    for (int b = 0; b < BINS; b++) {
        counts[b] = (float) (int32_t) slots[b];
        all |= (uint64_t) slots[b];
    }
    for (int b = 0; b < BINS && all >> 31 != 0; b++) {
        counts[b] = (float) slots[b];
    }
    counts[0] += (float) slots[BINS];
    counts[BINS - 1] += (float) slots[BINS + 1];
}

qsim_status qsim_tfe_histogram_k(const qsim_tfe_kernels * k, size_t n, const float * x, float lo,
                                 float hi, float * counts) {
    int64_t c[QSIM_TFE_SLOTS];
    memset(c, 0, sizeof c);
    const qsim_status st = counts ? qsim_tfe_count_k(k, n, x, lo, hi, c) : QSIM_INVALID_ARGUMENT;
    if (st == QSIM_SUCCESS) {
        tfe_counts(c, counts);
    }
    return st;
}

qsim_status qsim_tfe_histogram(size_t n, const float * x, float lo, float hi, float * counts) {
    return qsim_tfe_histogram_k(qsim_tfe_best(), n, x, lo, hi, counts);
}

/* The new bin of x: (x - lo) / width truncated, at most the last (also for a quotient no int
 * holds, where torch's conversion has no defined value). */
static int tfe_bin_of(float width, float lo, float x) {
    const float t = (x - lo) / width;
    return t < (float) (BINS - 1) ? (int32_t) t : BINS - 1;
}

/* counts (bins `edges`) moved onto 512 bins over [lo, hi], straddling bins split. */
static void tfe_moved(const float * counts, const float * edges, float lo, float hi, float * out) {
    const float width = (hi - lo) / (float) BINS, old = edges[1] - edges[0];
    float       part[BINS];
    int         first[BINS];
    memset(out, 0, BINS * sizeof *out);
    for (int i = 0; i < BINS; i++) {
        first[i] = tfe_bin_of(width, lo, edges[i]);
        part[i]  = qsim_tfe_rint(((lo + width * (float) (first[i] + 1) - edges[i]) / old) * counts[i]);
        part[i]  = part[i] < counts[i] ? part[i] : counts[i];
        out[first[i]] += part[i];
    }
    for (int i = 0; i < BINS; i++) {
        if (part[i] < counts[i]) {
            out[tfe_bin_of(width, lo, edges[i] + width)] += counts[i] - part[i];
        }
    }
}

/* edges[0, 513) over [lo, hi] as torch: i * ((hi - lo) / 512) + lo. */
static void tfe_edges(float lo, float hi, float * edges) {
    const float width = (hi - lo) / (float) BINS;
    for (int i = 0; i <= BINS; i++) {
        edges[i] = (float) i * width + lo;
    }
}

/* QSIM_SUCCESS when [lo, hi] can be binned (finite, lo < hi), as qsim_tfe_count requires. */
static qsim_status tfe_binnable(float lo, float hi) {
    return lo < hi && isfinite(lo) && isfinite(hi) ? QSIM_SUCCESS : QSIM_INVALID_ARGUMENT;
}

/* The first batch's [lo, hi], widened by 0.5 each side when it is a point, into e[2]. */
static void tfe_first_ends(float lo, float hi, float * e) {
    e[0] = lo == hi ? lo - 0.5f : lo, e[1] = lo == hi ? hi + 0.5f : hi;
}

qsim_status qsim_tfe_first_range(float lo, float hi, float * bin) {
    float e[2];
    if (!bin) {
        return QSIM_INVALID_ARGUMENT;
    }
    tfe_first_ends(lo, hi, e);
    const float width = (e[1] - e[0]) / (float) BINS;
    bin[0] = 0.0f * width + e[0], bin[1] = (float) BINS * width + e[0];  /* tfe_edges' ends */
    return tfe_binnable(bin[0], bin[1]);
}

qsim_status qsim_tfe_merge_range(const qsim_tfe_hist * h, float lo, float hi, float * bin) {
    if (!h || !h->edges || !h->limits || !bin) {
        return QSIM_INVALID_ARGUMENT;
    }
    bin[0] = fminf(fmaxf(lo, h->limits[0]), h->edges[0]);
    bin[1] = fminf(fmaxf(hi, h->edges[BINS]), h->limits[1]);
    return tfe_binnable(bin[0], bin[1]);
}

qsim_status qsim_tfe_first_counted(const qsim_tfe_hist * h, float * limits, float lo, float hi,
                                   const int64_t * slots) {
    float             bin[2];
    const qsim_status st = qsim_tfe_first_range(lo, hi, bin);
    if (st != QSIM_SUCCESS || !h || !h->counts || !h->edges || !h->range || !limits || !slots) {
        return st != QSIM_SUCCESS ? st : QSIM_INVALID_ARGUMENT;
    }
    float e[2];
    tfe_first_ends(lo, hi, e);
    tfe_edges(e[0], e[1], h->edges);
    tfe_counts(slots, h->counts);
    h->range[0] = lo, h->range[1] = hi;
    const float width = bin[1] - bin[0];
    limits[0] = bin[0] - width * 3.0f / 2.0f;
    limits[1] = bin[1] + width * 3.0f / 2.0f;
    return QSIM_SUCCESS;
}

qsim_status qsim_tfe_merge_counted(const qsim_tfe_hist * h, float lo, float hi,
                                   const int64_t * slots) {
    float             bin[2], batch[BINS];
    const qsim_status st = qsim_tfe_merge_range(h, lo, hi, bin);
    if (st != QSIM_SUCCESS || !h->counts || !h->range || !slots) {
        return st != QSIM_SUCCESS ? st : QSIM_INVALID_ARGUMENT;
    }
    tfe_counts(slots, batch);
    if (!(bin[0] == h->range[0] && bin[1] == h->range[1])) {
        float moved[BINS];
        tfe_moved(h->counts, h->edges, bin[0], bin[1], moved);
        memcpy(h->counts, moved, sizeof moved);
    }
    for (int i = 0; i < BINS; i++) {
        h->counts[i] = batch[i] + h->counts[i];
    }
    tfe_edges(bin[0], bin[1], h->edges);
    h->range[0] = bin[0], h->range[1] = bin[1];
    return QSIM_SUCCESS;
}

qsim_status qsim_tfe_first(const qsim_tfe_hist * h, float * limits, size_t n, const float * x,
                           float lo, float hi) {
    float       bin[2];
    int64_t     slots[QSIM_TFE_SLOTS];
    qsim_status st = qsim_tfe_first_range(lo, hi, bin);
    memset(slots, 0, sizeof slots);
    st = st == QSIM_SUCCESS ? qsim_tfe_count(n, x, bin[0], bin[1], slots) : st;
    return st == QSIM_SUCCESS ? qsim_tfe_first_counted(h, limits, lo, hi, slots) : st;
}

qsim_status qsim_tfe_merge(const qsim_tfe_hist * h, size_t n, const float * x, float lo, float hi) {
    float       bin[2];
    int64_t     slots[QSIM_TFE_SLOTS];
    qsim_status st = qsim_tfe_merge_range(h, lo, hi, bin);
    memset(slots, 0, sizeof slots);
    st = st == QSIM_SUCCESS ? qsim_tfe_count(n, x, bin[0], bin[1], slots) : st;
    return st == QSIM_SUCCESS ? qsim_tfe_merge_counted(h, lo, hi, slots) : st;
}

static void tfe_row_init(qsim_tfe_row * r, const qsim_tfe_params * p, const float * counts,
                         const float * edges) {
    const float width = edges[1] - edges[0], start = edges[0] + width / 2.0f;
    const int   block = 4 * p->lanes;
    int         first = 0, last = BINS - 1;
    r->h = counts, r->steps = (float) p->steps, r->lanes = p->lanes;
    for (int i = 0; i < BINS; i++) {
        r->c[i] = start + width * (float) i;
    }
    while (first < BINS && counts[first] == 0.0f) {
        first++;
    }
    while (last > first && counts[last] == 0.0f) {
        last--;
    }
    r->lo = first, r->hi = last;
    r->first = first / block * block;
    r->end   = (last + block) / block * block;
    if (!(fabsf(edges[0]) < 1e18f && fabsf(edges[0] + width * BINS) < 1e18f) || first == BINS) {
        r->first = 0, r->end = BINS;  /* a term could be inf * 0: sum them all */
        r->lo = -1;                   /* and bound none by its head (a NaN must be found) */
    }
}

/* fmaxf(x, m) for m > 0 (a NaN x gives m; no signed zeros can tie) without a libm call. */
static inline float tfe_at_least(float x, float m) {
    return x > m ? x : m;
}

/* head[j]: a lower bound of candidate j's cost from two terms, the larger of the outermost
 * counted bins' (a sum of terms >= 0 is at least each of them, whatever its order and rounding).
 * Most candidates clip and lose on it alone; one loop over all of them, in the variant. */
static void tfe_heads(const qsim_tfe_kernels * k, const qsim_tfe_row * r, const float * d,
                      const float * o, int n, float * head) {
    if (r->lo < 0) {  /* no bound: below every cost */
        for (int j = 0; j < n; j++) {
            head[j] = -1.0f;
        }
        return;
    }
    k->heads(n, r->c[r->lo], r->h[r->lo], r->c[r->hi], r->h[r->hi], r->steps, d, o, head);
}

/* The candidates (scale, offset) in AIMET's order; returns their count. */
static int tfe_candidates(const qsim_tfe_params * p, float lo, float hi, float * d, float * o) {
    const double min_scale_d = fmin((double) FLT_EPSILON, 0.01 / p->steps);
    const float  steps = (float) p->steps, min_scale = (float) min_scale_d;
    lo = fminf(lo, 0.0f), hi = fmaxf(hi, 0.0f);
    hi = fmaxf(hi, lo + (float) (min_scale_d * p->steps));
    if (p->symmetric) {
        const float top = 2.0f * fmaxf(hi, -lo) / steps, off = (float) -((p->steps + 1) / 2);
        for (int k = 0; k < SYM_DELTAS; k++) {
            d[k] = tfe_at_least(top * (float) (k + 1) / (float) (SYM_DELTAS - 1), min_scale), o[k] = off;
        }
        return SYM_DELTAS;
    }
    const float top = (hi - lo) / steps, seen_off = qsim_tfe_rint(lo / top);
    const float seen_lo = top * seen_off, seen_hi = seen_lo + top * steps;
    const int   cols    = p->n_offsets + 1;
    for (int k = 0; k < ASYM_DELTAS; k++) {
        const float dk = top * (float) (k + 1) / (float) (ASYM_DELTAS - 1);
        for (int j = 0; j < cols; j++) {
            const float oj = j < p->n_offsets ? p->offsets[j] : seen_off;
            const float a = fmaxf(seen_lo, dk * oj), b = fminf(seen_hi, dk * oj + dk * steps);
            const float dc = tfe_at_least((b - a) / steps, min_scale);
            d[k * cols + j] = dc, o[k * cols + j] = qsim_tfe_rint(a / dc);
        }
    }
    return ASYM_DELTAS * cols;
}

qsim_status qsim_tfe_search_k(const qsim_tfe_kernels * k, const qsim_tfe_params * p,
                              const float * counts, const float * edges, float range_min,
                              float range_max, float * lo, float * hi) {
    if (!k || !p || !counts || !edges || !lo || !hi || p->steps < 1 ||
        (p->lanes != 8 && p->lanes != 16) ||
        (!p->symmetric && (p->n_offsets < 1 || p->n_offsets > QSIM_TFE_MAX_OFFSETS || !p->offsets))) {
        return QSIM_INVALID_ARGUMENT;
    }
    float        d[MAX_CANDS], o[MAX_CANDS], head[MAX_CANDS];
    qsim_tfe_row r;
    tfe_row_init(&r, p, counts, edges);
    const int n = tfe_candidates(p, range_min, range_max, d, o);
    tfe_heads(k, &r, d, o, n, head);
    /* the observed range's candidate first (a good bound), then the others in order; a candidate
     * whose head bound already loses is not summed (the bound stands for its cost, as a pruned
     * cost's partial sum does) */
    int   best = p->symmetric ? SYM_DELTAS - 2 : (ASYM_DELTAS - 2) * (p->n_offsets + 1) + p->n_offsets;
    float best_cost = k->cost(&r, d[best], o[best], INFINITY, 0);
    for (int j = 0; j < n && !isnan(best_cost); j++) {
        const int   later = j > best;
        const float cost  = j == best ? best_cost
                            : head[j] > best_cost || (later && head[j] >= best_cost)
                                ? head[j]
                                : k->cost(&r, d[j], o[j], best_cost, later);
        if (cost < best_cost || (cost == best_cost && j < best)) {
            best = j, best_cost = cost;
        }
        best_cost = isnan(cost) ? cost : best_cost;
    }
    if (isnan(best_cost)) {  /* torch.min: the first NaN */
        for (best = 0; !isnan(k->cost(&r, d[best], o[best], NAN, 0)); best++) {
        }
    }
    *lo = o[best] * d[best];
    *hi = *lo + (float) p->steps * d[best];
    return QSIM_SUCCESS;
}

qsim_status qsim_tfe_search(const qsim_tfe_params * p, const float * counts, const float * edges,
                            float range_min, float range_max, float * lo, float * hi) {
    return qsim_tfe_search_k(qsim_tfe_best(), p, counts, edges, range_min, range_max, lo, hi);
}
