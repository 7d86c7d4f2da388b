/*
 * ortfloat.h: the float kernels onnxruntime's CPU execution provider runs between a
 * DequantizeLinear and a QuantizeLinear that it does not fuse (16-bit activations; LayerNorm,
 * GELU and SiLU at any bit width; Sigmoid and Tanh; ReduceMean), as onnxruntime 1.32 computes
 * them on x86-64 with AVX-512F (docs/runtime_target.md §2; torchqsim's onnxruntime target mode). Every step is
 * one fp32 operation (fmaf: one rounding, as vfmadd; compiled without contraction), in
 * onnxruntime's order, so the results are bit for bit onnxruntime's, in the portable variant and
 * the AVX-512 one the calls below dispatch to on CPUs that have it.
 *
 * LayerNormalization (last axis, fp32; MLAS's AVX2 LayerNorm kernel, rows of d >= 8): mean =
 * fp32(sum / d), the sum in fp64 over 4 lanes (lane l: the indices = l mod 4 of the full groups
 * of 4), folded (l0 + l2) + (l1 + l3), then the tail in order; var = sum of fp32 (x - mean)^2
 * by fma in 8 lanes, folded (s0 + s2) + (s1 + s3) with s_l = lane_l + lane_(l + 4), then the d %
 * 8 tail in order (groups of 4 as square then add, the rest by fma: GCC's code for the tail);
 * inv = 1 / sqrt(var / d + eps); y = fma((x - mean) * inv, gamma, beta) (without beta:
 * ((x - mean) * inv) * gamma). Rows of d < 8 (onnxruntime's scalar loop): Welford's running mean
 * and sum of squared deviations in fp32 (count += 1; delta = x - mean; mean += delta / count;
 * m2 += delta * (x - mean)), std = sqrt(m2 / d + eps), y = (x - mean) / std * gamma + beta.
 *
 * Softmax (opset 13, one row of d values; MLAS's softmax with its AVX-512F sum-of-exponentials
 * kernel): m = max of the row; e = exp(x + (-m)) by MLAS's polynomial: v = max(-103.972084, x +
 * (-m)); t = fma(v, log2(e), 0x1.8p23); k = t - 0x1.8p23; v = fma(k, -ln2_hi, v); v = fma(k,
 * -ln2_lo, v); p = Horner over 6 coefficients with fma (the last, 1.0, twice); e = p * 2^k. The
 * sum runs in 16 lanes (lane l adds the e of the indices = l mod 16 in order, from 0), folded as
 * s_i = lane_i + lane_(i+8), then ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7)); y = e *
 * fp32(1 / sum).
 *
 * Gelu (exact, approximate="none"; ONNX Gelu and com.microsoft Gelu; MLAS's AVX-512F Gelu
 * kernel, whose tail runs the same arithmetic masked): t = x * fp32(1/sqrt(2)); erf(t): a =
 * min(3.925, |t|); up to 0.921875 an odd polynomial (Horner in a * a, then fma(p, a, a)); above,
 * 1 - exp(-q(a)) with q of degree 7 (Horner in a, then fma(p, a, a)), exp by a degree-6
 * polynomial after reducing by k = round(r * log2(e)) (the 0x1.8p23 shift), times 2^k; the sign
 * of t copied back; y = fp32(0.5 * x) * (erf + 1).
 *
 * Sigmoid (MLAS's logistic, FMA3 kernel): v = x clamped to [-18, 18]; p = v * (Horner in v * v
 * of 4 odd coefficients, fma), q = Horner in v * v of 6 even ones (fma); y = p / q + 0.5 clamped
 * to [0, 1]. SiLU (onnxruntime's Sigmoid then Mul): y = x * sigmoid(x). Tanh (MLAS's tanh, FMA3
 * kernel): v = x clamped to [-9, 9]; p / q, p = v * (Horner in v * v of 7 odd coefficients), q =
 * Horner in v * v of 4 even ones (fma).
 *
 * ReduceMean over the trailing axes (onnxruntime's FastReduceKR: rows of n values; each row's
 * sum is Eigen's vectorized sum with SSE packets of 4 floats, the mean a true division): the
 * input buffer is 16-byte aligned, so row r has s = (-(r * n)) mod 4 floats before its first
 * 16-byte boundary, and P = ((n - s) / 4) * 4 floats in whole packets after it (0 if n <= s).
 * If P = 0, sum = x[0] + x[1] + ... in order. Else a = x[s..s+4); if P > 4: b = x[s+4..s+8),
 * then for i = s + 8, s + 16, ... below s + ((n - s) / 8) * 8: a += x[i..i+4), b +=
 * x[i+4..i+8); a += b; and a += the last whole packet when P is not a multiple of 8. sum = (a0 +
 * a2) + (a1 + a3), then + x[0], ..., x[s-1], then + x[s+P], ..., x[n-1], in order. mean =
 * fp32(sum / fp32(n)). Every add rounds to fp32: the order differs from a sequential sum's (and
 * torch's).
 *
 * Example (Softmax): x = {0, 0} -> m = 0, both e = 1 exactly (k = 0, p = 1), sum = 1 + 1 = 2,
 * y = {0.5, 0.5}. LayerNorm (d = 2 < 8: Welford): x = {1, 3}, gamma = {1, 1}, no beta, eps =
 * 0 -> mean 1 then 2, m2 = 0 + 2 * (3 - 2) = 2, std = sqrt(2 / 2) = 1, y = {-1, 1}.
 *
 * Not matched: NaN inputs (MLAS's max reduction keeps or drops a NaN by lane order).
 */
#ifndef QSIM_ORTFLOAT_H
#define QSIM_ORTFLOAT_H

#include <stddef.h>

#include "qsim/status.h"

/* Rows [row_begin, row_end) of out (rows x d, row-major fp32) = LayerNormalization of x over its
 * last axis of d values with gamma (d values), beta (d values or NULL) and eps.
 * QSIM_INVALID_ARGUMENT for d = 0 or a NULL x, gamma or out. */
qsim_status qsim_ort_layer_norm(const float * x, const float * gamma, const float * beta,
                                float eps, float * out, size_t d, size_t row_begin,
                                size_t row_end);

/* Rows [row_begin, row_end) of out = Softmax of x (rows x d, row-major fp32) over each row.
 * QSIM_INVALID_ARGUMENT for d = 0 or a NULL pointer. */
qsim_status qsim_ort_softmax(const float * x, float * out, size_t d, size_t row_begin,
                             size_t row_end);

/* out[i] = Gelu(x[i]) (exact form, MLAS's AVX-512F kernel; its tail runs the same arithmetic
 * masked) for i in [begin, end). QSIM_INVALID_ARGUMENT for a NULL pointer. */
qsim_status qsim_ort_gelu(const float * x, float * out, size_t begin, size_t end);

/* The element-wise activations of qsim_ort_activation. */
typedef enum qsim_ort_activation_kind {
    QSIM_ORT_SIGMOID = 0, /* Sigmoid */
    QSIM_ORT_SILU    = 1, /* Sigmoid then Mul by the input */
    QSIM_ORT_TANH    = 2, /* Tanh */
} qsim_ort_activation_kind;

/* out[i] = the activation `kind` (a qsim_ort_activation_kind) of x[i] for i in [begin, end).
 * QSIM_INVALID_ARGUMENT for a NULL pointer or an unknown kind. */
qsim_status qsim_ort_activation(const float * x, float * out, size_t begin, size_t end, int kind);

/* Rows [row_begin, row_end) of c (m x n) = a (m x k) b (k x n), row-major fp32, as MLAS's SGEMM
 * computes a float MatMul with m >= 2 and n >= 2 (other shapes run other kernels): per output an
 * fma chain over k from 0 within each K stride (128, doubled while MLAS halves its N stride of
 * 128 down to no less than 16 and n), the strides' sums added in order.
 * qsim_ort_sgemm in zero mode (qsim/ortconv.h). QSIM_INVALID_ARGUMENT for m < 2, n < 2, k = 0,
 * row_end > m or a NULL pointer. */
qsim_status qsim_ort_matmul(const float * a, const float * b, float * c, size_t m, size_t k,
                            size_t n, size_t row_begin, size_t row_end);

/* out[r] = ReduceMean of row r of x (rows x n, row-major fp32) for r in [row_begin, row_end),
 * r counted from x (its offset sets the packets; x itself is taken as 16-byte aligned, as
 * onnxruntime's buffers are). One implementation (portable C; no vector variant).
 * QSIM_INVALID_ARGUMENT for n = 0 or a NULL pointer. Example: row 0 of {1e8, 1, -1e8, 1, 1}
 * (n = 5): s = 0, P = 4, a = {1e8, 1, -1e8, 1}, sum = (1e8 + -1e8) + (1 + 1) = 2, then + 1 = 3,
 * mean = fp32(3 / 5) = 0.6f; summed in order, 1e8 + 1 rounds to 1e8 and the mean is 0.4f. */
qsim_status qsim_ort_reduce_mean(const float * x, float * out, size_t n, size_t row_begin,
                                 size_t row_end);

/* The portable variants (fmaf; the reference the tests compare the dispatched AVX-512 variant
 * with): the same arguments, checks and values. */
qsim_status qsim_ort_layer_norm_ref(const float * x, const float * gamma, const float * beta,
                                    float eps, float * out, size_t d, size_t row_begin,
                                    size_t row_end);
qsim_status qsim_ort_softmax_ref(const float * x, float * out, size_t d, size_t row_begin,
                                 size_t row_end);
qsim_status qsim_ort_gelu_ref(const float * x, float * out, size_t begin, size_t end);
qsim_status qsim_ort_matmul_ref(const float * a, const float * b, float * c, size_t m, size_t k,
                                size_t n, size_t row_begin, size_t row_end);
qsim_status qsim_ort_activation_ref(const float * x, float * out, size_t begin, size_t end,
                                    int kind);

#endif /* QSIM_ORTFLOAT_H */
