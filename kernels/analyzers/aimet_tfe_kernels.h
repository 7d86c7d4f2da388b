/*
 * aimet_tfe_kernels.h (internal): the hot loops of qsim/aimet_tfe.h, written once as plain C and
 * compiled per ISA (kernels/x86/aimet_tfe__<isa>.c define QSIM_TFE_DEFINE_VARIANT(isa) with that
 * ISA's flags; the compiler vectorizes them). Every operation is an exactly rounded float32 one
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

/* Terms of the 4 * L bins at centres c with counts h into the 4 * L accumulators. */
static inline void qsim_tfe_block(const float * restrict c, const float * restrict h, float steps,
                                  float d, float o, float * restrict acc, const int L) {
    for (int i = 0; i < 4 * L; i++) {
        acc[i] += qsim_tfe_term(c[i], h[i], steps, d, o);
    }
}

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
                                        int later, const int L) {
    float acc[64];
    memset(acc, 0, sizeof acc);
    qsim_tfe_block(r->c + r->first, r->h + r->first, r->steps, d, o, acc, 2);
    {
        const float lb = qsim_tfe_bound(acc, 2);
        if (lb > bound || (later && lb >= bound)) {
            return lb;
        }
    }
    memset(acc, 0, sizeof acc);
    for (int b = r->first; b < r->end; b += 4 * L) {
        qsim_tfe_block(r->c + b, r->h + b, r->steps, d, o, acc, L);
        if (b + 4 * L < r->end && (b + 4 * L - r->first) % QSIM_TFE_BOUND_BINS == 0) {
            const float lb = qsim_tfe_bound(acc, L);
            if (lb > bound || (later && lb >= bound)) {
                return lb;
            }
        }
    }
    return qsim_tfe_combine(acc, L);
}

/* Slots of x[0, n) (torch.histc's bin, or below / above / NaN) added to c[QSIM_TFE_SLOTS]. Long
 * runs count into four 32-bit copies (equal neighbours do not wait on each other), 2^30 values at
 * a time; short ones (a weight row) straight into c, so that a call costs little beyond its data. */
static inline void qsim_tfe_count_body(size_t n, const float * restrict x, float lo, float hi,
                                       int64_t * restrict c) {
    enum { BLOCK = 64, B = QSIM_TFE_BINS, SHORT = 4096 };
    const float width = hi - lo;
    uint32_t    part[4][QSIM_TFE_SLOTS];
    for (size_t run = 0; run < n; run += (size_t) 1 << 30) {
        const size_t end = n - run < ((size_t) 1 << 30) ? n : run + ((size_t) 1 << 30);
        if (n >= SHORT) {
            memset(part, 0, sizeof part);
        }
        for (size_t i = run; i < end; i += BLOCK) {
            const size_t m = end - i < BLOCK ? end - i : BLOCK;
            int32_t      slot[BLOCK];
            for (size_t j = 0; j < m; j++) {
                const float   v   = x[i + j];
                const float   t   = (v - lo) * (float) B / width;
                const float   tc  = t >= 0.0f ? (t < (float) (B - 1) ? t : (float) (B - 1)) : 0.0f;
                const int32_t out = v < lo ? B : (v > hi ? B + 1 : B + 2);
                slot[j] = v >= lo && v <= hi ? (int32_t) tc : out;
            }
            if (n < SHORT) {
                for (size_t j = 0; j < m; j++) {
                    c[slot[j]]++;
                }
                continue;
            }
            for (size_t j = 0; j + 4 <= m; j += 4) {
                part[0][slot[j]]++, part[1][slot[j + 1]]++, part[2][slot[j + 2]]++, part[3][slot[j + 3]]++;
            }
            for (size_t j = m & ~(size_t) 3; j < m; j++) {
                part[j & 3][slot[j]]++;
            }
        }
        for (int s = 0; n >= SHORT && s < QSIM_TFE_SLOTS; s++) {
            c[s] += (int64_t) part[0][s] + part[1][s] + part[2][s] + part[3][s];
        }
    }
}

#define QSIM_TFE_DEFINE_VARIANT(isa)                                                            \
    float qsim_tfe_cost_##isa(const qsim_tfe_row * r, float d, float o, float bound, int later) { \
        return r->lanes == 16 ? qsim_tfe_cost_lanes(r, d, o, bound, later, 16)                  \
                              : qsim_tfe_cost_lanes(r, d, o, bound, later, 8);                  \
    }                                                                                           \
    void qsim_tfe_count_##isa(size_t n, const float * x, float lo, float hi, int64_t * c) {     \
        qsim_tfe_count_body(n, x, lo, hi, c);                                                   \
    }

#endif /* QSIM_AIMET_TFE_KERNELS_H */
