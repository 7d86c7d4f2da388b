/*
 * ortfloat.c: onnxruntime's CPU float LayerNormalization, Softmax and Gelu, one fp32 operation at
 * a time in onnxruntime's order (qsim/ortfloat.h). Portable C: fmaf is the fp32 FMA of the
 * vfmadd instructions; the file is compiled without contraction (-std=c11), so every other
 * product and sum rounds on its own as the vector instructions do. The constants are MLAS's
 * (fp32 values of its exp and erf approximations).
 */
#include "qsim/ortfloat.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

/* 1.5 * 2^23: adding it rounds a float of magnitude < 2^22 to an integer (the shift trick). */
#define ROUND_SHIFT 12582912.0f
#define LOG2E 1.44269504088896341f
#define LN2_HI -6.93145752e-1f
#define LN2_LO -1.42860677e-6f
#define SOFTMAX_LANES 16

static const float EXP_POLY[6] = { 0x1.694000p-10f, 0x1.125edcp-7f, 0x1.555b5ap-5f,
                                   0x1.555450p-3f,  0x1.fffff6p-2f, 0x1.000000p+0f };
static const float ERF_SMALL[6] = { -5.99104969e-4f, 4.99339588e-3f, -2.67667342e-2f,
                                    1.12818025e-1f,  -3.76124859e-1f, 1.28379151e-1f };
static const float ERF_BIG[7] = { 1.72948930e-5f,  -3.83208680e-4f, 3.88393435e-3f,
                                  -2.42545605e-2f, 1.06777847e-1f,  6.34846687e-1f,
                                  1.28717512e-1f };
static const float ERF_EXP[7] = { 1.38319808e-3f, 8.37550033e-3f, 4.16689515e-2f, 1.66664466e-1f,
                                  4.99999851e-1f, 1.0f,           1.0f };

/* The mean as MLAS's AVX2 kernel sums it: in fp64, 4 lanes (lane l: the indices = l mod 4 of
 * the full groups of 4), folded (l0 + l2) + (l1 + l3), then the tail in order. */
static float mean_fp64(const float * x, size_t n) {
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
static float inv_std_centered(const float * x, size_t n, float mean, float eps) {
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
    float var = (s[0] + s[2]) + (s[1] + s[3]);
    const size_t unfused = i + (n - i) / 4 * 4; /* the compiler's 4-wide products, then adds */
    for (; i < n; i++) {
        const float d = x[i] - mean;
        var           = i < unfused ? var + d * d : fmaf(d, d, var);
    }
    return 1.0f / sqrtf(var / (float)n + eps);
}

/* Rows shorter than 8 (onnxruntime's scalar loop): Welford's running mean and sum of squared
 * deviations in fp32, y = (x - mean) / std * gamma + beta. */
static void layer_norm_short(const float * in, const float * gamma, const float * beta, float eps,
                             float * y, size_t d) {
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

qsim_status qsim_ort_layer_norm(const float * x, const float * gamma, const float * beta,
                                float eps, float * out, size_t d, size_t row_begin,
                                size_t row_end) {
    if (d == 0 || !x || !gamma || !out) {
        return QSIM_INVALID_ARGUMENT;
    }
    for (size_t row = row_begin; row < row_end; row++) {
        const float * in = x + row * d;
        float *       y  = out + row * d;
        if (d < 8) {
            layer_norm_short(in, gamma, beta, eps, y, d);
            continue;
        }
        const float mean = mean_fp64(in, d), inv = inv_std_centered(in, d, mean, eps);
        for (size_t h = 0; h < d; h++) {
            const float v = (in[h] - mean) * inv;
            y[h]          = beta ? fmaf(v, gamma[h], beta[h]) : v * gamma[h];
        }
    }
    return QSIM_SUCCESS;
}

/* MLAS's AVX-512F exp of v = x - max (v <= 0): clamp, reduce by k = round(v / ln2), Horner,
 * scale by 2^k (vscalefps: exact but for the final rounding, as ldexpf). */
static float softmax_exp(float v) {
    v             = -103.9720840454f > v ? -103.9720840454f : v;
    const float k = fmaf(v, LOG2E, ROUND_SHIFT) - ROUND_SHIFT;
    v             = fmaf(k, LN2_HI, v);
    v             = fmaf(k, LN2_LO, v);
    float p       = EXP_POLY[0];
    for (int i = 1; i < 6; i++) {
        p = fmaf(p, v, EXP_POLY[i]);
    }
    p = fmaf(p, v, EXP_POLY[5]);
    return ldexpf(p, (int)k);
}

/* The 16 lanes of MLAS's accumulator folded as its horizontal reduction does. */
static float fold_lanes(const float * lane) {
    float s[8];
    for (int i = 0; i < 8; i++) {
        s[i] = lane[i + 8] + lane[i];
    }
    return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

qsim_status qsim_ort_softmax(const float * x, float * out, size_t d, size_t row_begin,
                             size_t row_end) {
    if (d == 0 || !x || !out) {
        return QSIM_INVALID_ARGUMENT;
    }
    for (size_t row = row_begin; row < row_end; row++) {
        const float * in = x + row * d;
        float *       y  = out + row * d;
        float         m  = -FLT_MAX;
        for (size_t i = 0; i < d; i++) {
            m = m > in[i] ? m : in[i];
        }
        const float neg                 = -m;
        float       lane[SOFTMAX_LANES] = { 0.0f };
        for (size_t i = 0; i < d; i++) {
            y[i] = softmax_exp(in[i] + neg);
            lane[i % SOFTMAX_LANES] += y[i];
        }
        const float scale = 1.0f / fold_lanes(lane);
        for (size_t i = 0; i < d; i++) {
            y[i] = y[i] * scale;
        }
    }
    return QSIM_SUCCESS;
}

/* 1 - exp(r) for r = -q(a) <= 0 (MLAS's erf, large branch): k = round(r * log2(e)) by the shift
 * trick, a degree-6 polynomial of the reduced argument, times 2^k (vscalefps, as ldexpf). */
static float one_minus_exp(float r) {
    r             = -88.3762626647949f > r ? -88.3762626647949f : r;
    const float k = fmaf(LOG2E, r, ROUND_SHIFT) - ROUND_SHIFT;
    float       f = fmaf(k, LN2_HI, r);
    f             = fmaf(k, LN2_LO, f);
    float y       = ERF_EXP[0];
    for (int i = 1; i < 7; i++) {
        y = fmaf(y, f, ERF_EXP[i]);
    }
    return 1.0f - ldexpf(y, (int)k);
}

/* MLAS's AVX-512F erf of one value: a = min(3.925, |t|); an odd polynomial up to 0.921875 (a
 * above it takes the large branch), the sign of t copied back. */
static float erf_avx512(float t) {
    uint32_t bits;
    memcpy(&bits, &t, sizeof bits);
    const uint32_t sign = bits & 0x80000000u;
    bits &= 0x7fffffffu;
    float a;
    memcpy(&a, &bits, sizeof a);
    a = 3.925f < a ? 3.925f : a;
    float r;
    if (a > 0.921875f) {
        r = ERF_BIG[0];
        for (int i = 1; i < 7; i++) {
            r = fmaf(r, a, ERF_BIG[i]);
        }
        r = one_minus_exp(-fmaf(r, a, a));
    } else {
        const float s = a * a;
        r             = ERF_SMALL[0];
        for (int i = 1; i < 6; i++) {
            r = fmaf(r, s, ERF_SMALL[i]);
        }
        r = fmaf(r, a, a);
    }
    memcpy(&bits, &r, sizeof bits);
    bits |= sign;
    memcpy(&r, &bits, sizeof r);
    return r;
}

qsim_status qsim_ort_gelu(const float * x, float * out, size_t begin, size_t end) {
    if (!x || !out) {
        return QSIM_INVALID_ARGUMENT;
    }
    for (size_t i = begin; i < end; i++) {
        const float e = erf_avx512(x[i] * 0.70710677f);
        out[i]        = 0.5f * x[i] * (e + 1.0f);
    }
    return QSIM_SUCCESS;
}
