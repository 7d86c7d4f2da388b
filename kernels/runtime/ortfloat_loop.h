/*
 * ortfloat_loop.h (internal): the one arithmetic of qsim_ort_layer_norm, qsim_ort_softmax and
 * qsim_ort_gelu (qsim/ortfloat.h), included by the portable variant (runtime/ortfloat.c) and the
 * AVX-512 one (x86/ortfloat__avx512.c), where the compiler turns fmaf into vfmadd and vectorizes
 * the element loops (every operation is written branch-free, both sides of a select computed, as
 * MLAS's vector code does). Both files are compiled without FP contraction (-std=c11), so only
 * the written fmaf calls fuse. The constants are MLAS's (fp32 values of its exp and erf
 * approximations).
 */
#ifndef QSIM_ORTFLOAT_LOOP_H
#define QSIM_ORTFLOAT_LOOP_H

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "qsim/ortfloat.h"

/* 1.5 * 2^23: adding it rounds a float of magnitude < 2^22 to an integer (the shift trick). */
#define QSIM_ORTF_SHIFT 12582912.0f
#define QSIM_ORTF_LOG2E 1.44269504088896341f
#define QSIM_ORTF_LN2_HI -6.93145752e-1f
#define QSIM_ORTF_LN2_LO -1.42860677e-6f
#define QSIM_ORTF_LANES 16

/* 2^k for an integer-valued k in [-126, 127] (the exponent field). */
static inline float qsim_ortf_pow2(float k) {
    const uint32_t bits = (uint32_t)((int32_t)k + 127) << 23;
    float          p;
    memcpy(&p, &bits, sizeof p);
    return p;
}

/* MLAS's AVX-512F exp of v = x - max (v <= 0) in its sum-of-exponentials kernel: clamp at
 * -103.97, reduce by k = round(v / ln2), Horner (the last coefficient, 1, twice), times 2^k
 * (vscalefps: one rounding; here two exact power-of-two factors of at least 2^-75 each, so only
 * the last product rounds). */
static inline float qsim_ortf_softmax_exp(float v) {
    v       = -103.9720840454f > v ? -103.9720840454f : v;
    float k = fmaf(v, QSIM_ORTF_LOG2E, QSIM_ORTF_SHIFT) - QSIM_ORTF_SHIFT;
    v       = fmaf(k, QSIM_ORTF_LN2_HI, v);
    v       = fmaf(k, QSIM_ORTF_LN2_LO, v);
    float p = fmaf(0x1.694000p-10f, v, 0x1.125edcp-7f);
    p       = fmaf(p, v, 0x1.555b5ap-5f);
    p       = fmaf(p, v, 0x1.555450p-3f);
    p       = fmaf(p, v, 0x1.fffff6p-2f);
    p       = fmaf(p, v, 1.0f);
    p       = fmaf(p, v, 1.0f);
    k       = k < 0.0f ? k : 0.0f; /* k <= 0 but for a NaN v (no int conversion of NaN) */
    const float half = (float)((int32_t)k / 2);
    return p * qsim_ortf_pow2(half) * qsim_ortf_pow2(k - half);
}

/* 1 - exp(-q(a)) for the large branch of MLAS's AVX-512F erf (a > 0.921875; any a >= 0 gives a
 * finite value): q of degree 7 by Horner, exp by a degree-6 polynomial after reducing by
 * k = round(r * log2(e)) (k >= -22 here: 2^k is one exact factor). */
static inline float qsim_ortf_erf_big(float a) {
    float r = fmaf(1.72948930e-5f, a, -3.83208680e-4f);
    r       = fmaf(r, a, 3.88393435e-3f);
    r       = fmaf(r, a, -2.42545605e-2f);
    r       = fmaf(r, a, 1.06777847e-1f);
    r       = fmaf(r, a, 6.34846687e-1f);
    r       = fmaf(r, a, 1.28717512e-1f);
    r       = -fmaf(r, a, a);
    r       = -88.3762626647949f > r ? -88.3762626647949f : r;
    float k = fmaf(QSIM_ORTF_LOG2E, r, QSIM_ORTF_SHIFT) - QSIM_ORTF_SHIFT;
    float f = fmaf(k, QSIM_ORTF_LN2_HI, r);
    f       = fmaf(k, QSIM_ORTF_LN2_LO, f);
    float y = fmaf(1.38319808e-3f, f, 8.37550033e-3f);
    y       = fmaf(y, f, 4.16689515e-2f);
    y       = fmaf(y, f, 1.66664466e-1f);
    y       = fmaf(y, f, 4.99999851e-1f);
    y       = fmaf(y, f, 1.0f);
    y       = fmaf(y, f, 1.0f);
    k       = k < 0.0f ? k : 0.0f; /* k <= 0 but for a NaN input (no int conversion of NaN) */
    return 1.0f - y * qsim_ortf_pow2(k);
}

/* MLAS's AVX-512F erf of t: a = min(3.925, |t|); an odd polynomial up to 0.921875, the large
 * branch above (computed on 0 below, as the vector code blends), the sign of t copied back. */
static inline float qsim_ortf_erf(float t) {
    uint32_t bits;
    memcpy(&bits, &t, sizeof bits);
    const uint32_t sign = bits & 0x80000000u;
    bits &= 0x7fffffffu;
    float a;
    memcpy(&a, &bits, sizeof a);
    a             = 3.925f < a ? 3.925f : a;
    const float s = a * a;
    float small   = fmaf(-5.99104969e-4f, s, 4.99339588e-3f);
    small         = fmaf(small, s, -2.67667342e-2f);
    small         = fmaf(small, s, 1.12818025e-1f);
    small         = fmaf(small, s, -3.76124859e-1f);
    small         = fmaf(small, s, 1.28379151e-1f);
    small         = fmaf(small, a, a);
    const int   is_big = a > 0.921875f;
    const float big    = qsim_ortf_erf_big(is_big ? a : 0.0f);
    float       r      = is_big ? big : small;
    memcpy(&bits, &r, sizeof bits);
    bits |= sign;
    memcpy(&r, &bits, sizeof r);
    return r;
}

/* out[i] = fp32(0.5 * x) * (erf(x * fp32(1/sqrt 2)) + 1) for i in [begin, end). */
static inline void qsim_ortf_gelu_loop(const float * restrict x, float * restrict out,
                                       size_t begin, size_t end) {
    for (size_t i = begin; i < end; i++) {
        out[i] = 0.5f * x[i] * (qsim_ortf_erf(x[i] * 0.70710677f) + 1.0f);
    }
}

/* MLAS's logistic of v (its FMA3 kernel): v clamped to [-18, 18], p / q + 0.5 with p an odd
 * polynomial of degree 9 and q an even one of degree 10 (Horner in v * v with fma), clamped to
 * [0, 1]. */
static inline float qsim_ortf_sigmoid(float v) {
    v             = v < -18.0f ? -18.0f : v;
    v             = v > 18.0f ? 18.0f : v;
    const float s = v * v;
    float       p = fmaf(s, 4.37031012579801e-11f, 1.15627324459942e-07f);
    p             = fmaf(p, s, 6.08574864600143e-05f);
    p             = fmaf(p, s, 8.51377133304701e-03f);
    p             = fmaf(p, s, 2.48287947061529e-01f);
    p             = p * v;
    float q       = fmaf(s, 6.10247389755681e-13f, 5.76102136993427e-09f);
    q             = fmaf(q, s, 6.29106785017040e-06f);
    q             = fmaf(q, s, 1.70198817374094e-03f);
    q             = fmaf(q, s, 1.16817656904453e-01f);
    q             = fmaf(q, s, 9.93151921023180e-01f);
    float y       = p / q + 0.5f;
    y             = y < 0.0f ? 0.0f : y;
    return y > 1.0f ? 1.0f : y;
}

/* MLAS's tanh of v (its FMA3 kernel): v clamped to [-9, 9], p / q with p an odd polynomial of
 * degree 13 and q an even one of degree 6 (Horner in v * v with fma). */
static inline float qsim_ortf_tanh(float v) {
    v             = v < -9.0f ? -9.0f : v;
    v             = v > 9.0f ? 9.0f : v;
    const float s = v * v;
    float       p = fmaf(s, -2.76076847742355e-16f, 2.00018790482477e-13f);
    p             = fmaf(p, s, -8.60467152213735e-11f);
    p             = fmaf(p, s, 5.12229709037114e-08f);
    p             = fmaf(p, s, 1.48572235717979e-05f);
    p             = fmaf(p, s, 6.37261928875436e-04f);
    p             = fmaf(p, s, 4.89352455891786e-03f);
    p             = p * v;
    float q       = fmaf(s, 1.19825839466702e-06f, 1.18534705686654e-04f);
    q             = fmaf(q, s, 2.26843463243900e-03f);
    q             = fmaf(q, s, 4.89352518554385e-03f);
    return p / q;
}

/* out[i] = the activation `kind` (qsim_ort_activation_kind) of x[i] for i in [begin, end): one
 * loop per kind, so that each vectorizes. */
static inline void qsim_ortf_activation_loop(const float * restrict x, float * restrict out,
                                             size_t begin, size_t end, int kind) {
    if (kind == QSIM_ORT_TANH) {
        for (size_t i = begin; i < end; i++) {
            out[i] = qsim_ortf_tanh(x[i]);
        }
    } else if (kind == QSIM_ORT_SILU) {
        for (size_t i = begin; i < end; i++) {
            out[i] = x[i] * qsim_ortf_sigmoid(x[i]);
        }
    } else {
        for (size_t i = begin; i < end; i++) {
            out[i] = qsim_ortf_sigmoid(x[i]);
        }
    }
}

/* The mean as MLAS's AVX2 kernel sums it: in fp64, 4 lanes (lane l: the indices = l mod 4 of
 * the full groups of 4), folded (l0 + l2) + (l1 + l3), then the tail in order. */
static inline float qsim_ortf_mean(const float * x, size_t n) {
    double lane[4] = { 0.0, 0.0, 0.0, 0.0 };
    size_t i       = 0;
    for (; i + 4 <= n; i += 4) {
        for (size_t l = 0; l < 4; l++) {
            lane[l] += (double)x[i + l];
        }
    }
    double sum = (lane[0] + lane[2]) + (lane[1] + lane[3]);
    for (; i < n; i++) {
        sum += (double)x[i];
    }
    return (float)(sum / (double)n);
}

/* 1 / sqrt(sum (x - mean)^2 / n + eps): the squares summed with fma in 8 fp32 lanes, folded
 * (s0 + s2) + (s1 + s3) with s_l = lane_l + lane_(l+4), then the n % 8 tail in order: its
 * groups of 4 as a rounded square then an add (GCC's 4-wide vectorized products), the last
 * n % 4 with fma (contracted scalar code). */
static inline float qsim_ortf_inv_std(const float * x, size_t n, float mean, float eps) {
    float  lane[8] = { 0.0f };
    size_t i       = 0;
    for (; i + 8 <= n; i += 8) {
        for (size_t l = 0; l < 8; l++) {
            const float d = x[i + l] - mean;
            lane[l]       = fmaf(d, d, lane[l]);
        }
    }
    float s[4];
    for (size_t l = 0; l < 4; l++) {
        s[l] = lane[l] + lane[l + 4];
    }
    float        var      = (s[0] + s[2]) + (s[1] + s[3]);
    const size_t unfused = i + (n - i) / 4 * 4;
    for (; i < n; i++) {
        const float d = x[i] - mean;
        var           = i < unfused ? var + d * d : fmaf(d, d, var);
    }
    return 1.0f / sqrtf(var / (float)n + eps);
}

/* Rows shorter than 8 (onnxruntime's scalar loop): Welford's running mean and sum of squared
 * deviations in fp32, y = (x - mean) / std * gamma + beta. */
static inline void qsim_ortf_layer_norm_short(const float * in, const float * gamma,
                                              const float * beta, float eps, float * y,
                                              size_t d) {
    float mean = 0.0f, m2 = 0.0f, count = 0.0f;
    for (size_t h = 0; h < d; h++) {
        count += 1.0f;
        const float delta = in[h] - mean;
        mean += delta / count;
        m2 += delta * (in[h] - mean);
    }
    const float std = sqrtf(m2 / (float)d + eps);
    for (size_t h = 0; h < d; h++) {
        const float v = (in[h] - mean) / std * gamma[h];
        y[h]          = beta ? v + beta[h] : v;
    }
}

/* Rows [r0, r1) of LayerNormalization (qsim_ort_layer_norm). */
static inline void qsim_ortf_layer_norm_rows(const float * x, const float * gamma,
                                             const float * beta, float eps, float * out,
                                             size_t d, size_t r0, size_t r1) {
    for (size_t row = r0; row < r1; row++) {
        const float * in = x + row * d;
        float *       y  = out + row * d;
        if (d < 8) {
            qsim_ortf_layer_norm_short(in, gamma, beta, eps, y, d);
            continue;
        }
        const float mean = qsim_ortf_mean(in, d), inv = qsim_ortf_inv_std(in, d, mean, eps);
        if (beta) {
            for (size_t h = 0; h < d; h++) {
                y[h] = fmaf((in[h] - mean) * inv, gamma[h], beta[h]);
            }
        } else {
            for (size_t h = 0; h < d; h++) {
                y[h] = (in[h] - mean) * inv * gamma[h];
            }
        }
    }
}

/* The 16 lanes of MLAS's accumulator folded as its horizontal reduction does. */
static inline float qsim_ortf_fold(const float * lane) {
    float s[8];
    for (int i = 0; i < 8; i++) {
        s[i] = lane[i + 8] + lane[i];
    }
    return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

/* The maximum of x[0..n) from -FLT_MAX (as MLAS starts), in 16 lanes of `a > b ? a : b` (any
 * order gives the same value without NaN). */
static inline float qsim_ortf_max(const float * x, size_t n) {
    float  lane[QSIM_ORTF_LANES];
    size_t i = 0;
    for (size_t l = 0; l < QSIM_ORTF_LANES; l++) {
        lane[l] = -FLT_MAX;
    }
    for (; i + QSIM_ORTF_LANES <= n; i += QSIM_ORTF_LANES) {
        for (size_t l = 0; l < QSIM_ORTF_LANES; l++) {
            lane[l] = lane[l] > x[i + l] ? lane[l] : x[i + l];
        }
    }
    for (size_t l = 0; i + l < n; l++) {
        lane[l] = lane[l] > x[i + l] ? lane[l] : x[i + l];
    }
    float m = lane[0];
    for (size_t l = 1; l < QSIM_ORTF_LANES; l++) {
        m = m > lane[l] ? m : lane[l];
    }
    return m;
}

/* Rows [r0, r1) of Softmax (qsim_ort_softmax): the maximum, the exponentials into the row of
 * out, their sum in 16 lanes (lane l: the indices = l mod 16, in order), the scale. */
static inline void qsim_ortf_softmax_rows(const float * x, float * out, size_t d, size_t r0,
                                          size_t r1) {
    for (size_t row = r0; row < r1; row++) {
        const float * in = x + row * d;
        float *       y  = out + row * d;
        const float neg = -qsim_ortf_max(in, d);
        for (size_t i = 0; i < d; i++) {
            y[i] = qsim_ortf_softmax_exp(in[i] + neg);
        }
        float  lane[QSIM_ORTF_LANES] = { 0.0f };
        size_t i                     = 0;
        for (; i + QSIM_ORTF_LANES <= d; i += QSIM_ORTF_LANES) {
            for (size_t l = 0; l < QSIM_ORTF_LANES; l++) {
                lane[l] += y[i + l];
            }
        }
        for (size_t l = 0; i + l < d; l++) {
            lane[l] += y[i + l];
        }
        const float scale = 1.0f / qsim_ortf_fold(lane);
        for (size_t j = 0; j < d; j++) {
            y[j] = y[j] * scale;
        }
    }
}

#endif /* QSIM_ORTFLOAT_LOOP_H */
