/*
 * aimet_tfe_kernels.h (internal): the hot loops of qsim/aimet_tfe.h, written once as plain C and
 * compiled per ISA (kernels/x86/aimet_tfe__<isa>.c define QSIM_TFE_DEFINE_VARIANT(isa) with that
 * ISA's flags; the compiler vectorizes them, or a variant passes its own vector versions of the
 * term, head and slot loops). Every operation is an exactly rounded float32 one
 * (no contraction: the build is ISO C11, -ffp-contract=off), so every variant computes the
 * reference's bits (tests/kernels/analyzers/test_aimet_tfe.cpp walks the variants).
 */
#ifndef QSIM_AIMET_TFE_KERNELS_H
#define QSIM_AIMET_TFE_KERNELS_H

#include <math.h>
#include <string.h>

#include "analyzers/aimet_tfe_variants.h"

/* GCC vectorizes the selects of the loops below only when it may ignore FP traps; no value
 * changes (the flag concerns exception flags, never results). */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math")
#endif

#define QSIM_TFE_GAMMA      3.0f
#define QSIM_TFE_BOUND_BINS 128 /* a multiple of every block (4 * lanes) */
#define QSIM_TFE_COPIES     8   /* counter copies of a long run */

/* torch.round (half to even) in float32 without a libm call: below 2^23 the sum with 2^23 rounds
 * to an integer; from 2^23 on every float is one. */
static inline float qsim_tfe_rint(float t) {
    const float a = fabsf(t), r = copysignf((a + 0x1p23f) - 0x1p23f, t);
    return a < 0x1p23f ? r : t;
}

/* The four accumulators lane by lane, then the lanes in order (torch's last steps). */
static inline float qsim_tfe_combine(const float * acc, const int L) {
    float lane[16], total = 0.0f;
    for (int l = 0; l < L; l++) {
        lane[l] = ((acc[l] + acc[L + l]) + acc[2 * L + l]) + acc[3 * L + l];
    }
    for (int l = 0; l < L; l++) {
        total += lane[l];
    }
    return total;
}

/* The term of the bin at centre c with count h for candidate (d, o): its squared quantization
 * error (times gamma where clipped) times the count, >= 0 (or NaN). */
static inline float qsim_tfe_term(float c, float h, float steps, float d, float o) {
    const float q  = qsim_tfe_rint(c / d - o);
    const float g  = q < 0.0f || q > steps ? QSIM_TFE_GAMMA : 1.0f;
    const float qc = q > 0.0f ? (q < steps ? q : steps) : 0.0f;
    const float e  = (qc + o) * d - c;
    return ((e * e) * h) * g;
}

/* Term i of the bins at centres c with counts h added to acc[i], i < n (a multiple of 8). A
 * variant may compute them with vector instructions (kernels/x86/aimet_tfe__avx2.c), to the
 * same values. */
static inline void qsim_tfe_terms(int n, const float * restrict c, const float * restrict h,
                                  float steps, float d, float o, float * restrict acc) {
    for (int i = 0; i < n; i++) {
        acc[i] += qsim_tfe_term(c[i], h[i], steps, d, o);
    }
}

/* head[j] (j < n): the larger of candidate (d[j], o[j])'s terms of the bins at centres c0 and
 * c1 with counts h0 and h1. A variant may compute them with vector instructions. */
static inline void qsim_tfe_heads(int n, float c0, float h0, float c1, float h1, float steps,
                                  const float * restrict d, const float * restrict o,
                                  float * restrict head) {
    for (int j = 0; j < n; j++) {
        const float a = qsim_tfe_term(c0, h0, steps, d[j], o[j]);
        const float b = qsim_tfe_term(c1, h1, steps, d[j], o[j]);
        head[j] = a > b ? a : b;
    }
}

/* qsim_tfe_terms' signature: a variant's term loop. */
typedef void (*qsim_tfe_terms_fn)(int n, const float * restrict c, const float * restrict h,
                                  float steps, float d, float o, float * restrict acc);

/* A lower bound of qsim_tfe_combine(acc), and of the cost these terms are part of (all >= 0):
 * the 4 * L values summed pairwise (vectorized), shrunk by 2^-16. In torch's order a term goes
 * through at most 26 roundings (lanes 8 or 16: 15 or 7 in its lane, 3, then 8 or 16), here 6, so
 * the two sums are within 32 * 2^-24 of the exact one, relatively: far less than 2^-16. */
static inline float qsim_tfe_bound(const float * acc, const int L) {
    float t[64];
    for (int i = 0; i < 4 * L; i++) {
        t[i] = acc[i];
    }
    for (int w = 2 * L; w >= 1; w /= 2) {
        for (int i = 0; i < w; i++) {
            t[i] += t[i + w];
        }
    }
    return t[0] * (1.0f - 0x1p-16f);
}

/* The cost with L lanes. Every term is >= 0, so the sum of any of them bounds the cost from
 * below: the lowest 8 summed bins alone first (a clipped candidate's worst errors), then the
 * partial sums after every QSIM_TFE_BOUND_BINS bins (a bound costs more than a block); the
 * candidate stops once the bound shows it cannot win. */
static inline float qsim_tfe_cost_lanes(const qsim_tfe_row * r, float d, float o, float bound,
                                        int later, const int L, qsim_tfe_terms_fn terms) {
    float acc[64];
    memset(acc, 0, sizeof acc);
    terms(8, r->c + r->first, r->h + r->first, r->steps, d, o, acc);
    {
        const float lb = qsim_tfe_bound(acc, 2);
        if (lb > bound || (later && lb >= bound)) {
            return lb;
        }
    }
    memset(acc, 0, sizeof acc);
    for (int b = r->first; b < r->end; b += 4 * L) {
        terms(4 * L, r->c + b, r->h + b, r->steps, d, o, acc);
        if (b + 4 * L < r->end && (b + 4 * L - r->first) % QSIM_TFE_BOUND_BINS == 0) {
            const float lb = qsim_tfe_bound(acc, L);
            if (lb > bound || (later && lb >= bound)) {
                return lb;
            }
        }
    }
    return qsim_tfe_combine(acc, L);
}

/* Slots of x[0, m): torch.histc's bin of a value in [lo, hi] ((x - lo) * 512 / (hi - lo),
 * truncated, at most the last bin), else QSIM_TFE_BINS below, + 1 above, + 2 NaN. A variant may
 * compute them with vector instructions (kernels/x86/aimet_tfe__avx2.c), to the same values. */
static inline void qsim_tfe_slots(size_t m, const float * restrict x, float lo, float hi,
                                  int32_t * restrict slot) {
    enum { B = QSIM_TFE_BINS };
    const float width = hi - lo;
    for (size_t j = 0; j < m; j++) {
        const float   v   = x[j];
        const float   t   = (v - lo) * (float) B / width;
        const float   tc  = t >= 0.0f ? (t < (float) (B - 1) ? t : (float) (B - 1)) : 0.0f;
        const int32_t out = v < lo ? B : (v > hi ? B + 1 : B + 2);
        slot[j] = v >= lo && v <= hi ? (int32_t) tc : out;
    }
}

/* qsim_tfe_slots' signature: a variant's slot computation. */
typedef void (*qsim_tfe_slots_fn)(size_t m, const float * restrict x, float lo, float hi,
                                  int32_t * restrict slot);

/* Slots of x[0, n) (see qsim_tfe_slots, computed by `slots` 128 values at a time: blocks of 64
 * counted 10% slower) added to c[QSIM_TFE_SLOTS]. Long runs count into QSIM_TFE_COPIES 32-bit
 * copies, value j into copy j % QSIM_TFE_COPIES (a run of equal slots, as a peaked activation's,
 * waits on each copy's last increment only), 2^30 values at a time; short ones (a weight row)
 * straight into c, so that a call costs little beyond its data. */
static inline void qsim_tfe_count_body(size_t n, const float * restrict x, float lo, float hi,
                                       int64_t * restrict c, qsim_tfe_slots_fn slots) {
    enum { BLOCK = 128, SHORT = 4096, K = QSIM_TFE_COPIES };
    uint32_t part[K][QSIM_TFE_SLOTS];
    for (size_t run = 0; run < n; run += (size_t) 1 << 30) {
        const size_t end = n - run < ((size_t) 1 << 30) ? n : run + ((size_t) 1 << 30);
        if (n >= SHORT) {
            memset(part, 0, sizeof part);
        }
        for (size_t i = run; i < end; i += BLOCK) {
            const size_t m = end - i < BLOCK ? end - i : BLOCK;
            int32_t      slot[BLOCK];
            slots(m, x + i, lo, hi, slot);
            if (n < SHORT) {
                for (size_t j = 0; j < m; j++) {
                    c[slot[j]]++;
                }
                continue;
            }
            size_t j = 0;
            for (; j + K <= m; j += K) {
                for (int k = 0; k < K; k++) {
                    part[k][slot[j + k]]++;
                }
            }
            for (; j < m; j++) {
                part[j % K][slot[j]]++;
            }
        }
        for (int s = 0; n >= SHORT && s < QSIM_TFE_SLOTS; s++) {
            for (int k = 0; k < K; k++) {
                c[s] += part[k][s];
            }
        }
    }
}

/* Defines variant `isa`'s cost, heads and count, with its term loop `terms`, head loop `heads`
 * and slots `slots`. */
#define QSIM_TFE_DEFINE_VARIANT_WITH(isa, terms, heads, slots)                                  \
    float qsim_tfe_cost_##isa(const qsim_tfe_row * r, float d, float o, float bound, int later) { \
        return r->lanes == 16 ? qsim_tfe_cost_lanes(r, d, o, bound, later, 16, terms)           \
                              : qsim_tfe_cost_lanes(r, d, o, bound, later, 8, terms);           \
    }                                                                                           \
    void qsim_tfe_heads_##isa(int n, float c0, float h0, float c1, float h1, float steps,       \
                              const float * d, const float * o, float * head) {                 \
        heads(n, c0, h0, c1, h1, steps, d, o, head);                                            \
    }                                                                                           \
    void qsim_tfe_count_##isa(size_t n, const float * x, float lo, float hi, int64_t * c) {     \
        qsim_tfe_count_body(n, x, lo, hi, c, slots);                                            \
    }

#define QSIM_TFE_DEFINE_VARIANT(isa) \
    QSIM_TFE_DEFINE_VARIANT_WITH(isa, qsim_tfe_terms, qsim_tfe_heads, qsim_tfe_slots)

#endif /* QSIM_AIMET_TFE_KERNELS_H */
