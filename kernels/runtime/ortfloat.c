/*
 * ortfloat.c: onnxruntime's CPU float LayerNormalization, Softmax, Gelu, activations and
 * ReduceMean (qsim/ortfloat.h):
 * the argument checks, the portable variant of the one arithmetic (runtime/ortfloat_loop.h; fmaf
 * is the fp32 FMA of the vfmadd instructions, and the file is compiled without contraction, so
 * every other product and sum rounds on its own as the vector instructions do) and the run-time
 * choice of the AVX-512 variant (x86/ortfloat__avx512.c: the same loops vectorized; the same
 * values). ReduceMean has only the portable code below (sums of a few thousand values per row).
 */
#include "qsim/ortfloat.h"

#include "qsim/ortconv.h"

#include "qdq/qdq_variants.h"
#include "runtime/ortfloat_loop.h"

#if defined(__x86_64__)
void qsim_ort_layer_norm_avx512(const float * x, const float * gamma, const float * beta,
                                float eps, float * out, size_t d, size_t r0, size_t r1);
void qsim_ort_softmax_avx512(const float * x, float * out, size_t d, size_t r0, size_t r1);
void qsim_ort_gelu_avx512(const float * x, float * out, size_t begin, size_t end);
void qsim_ort_activation_avx512(const float * x, float * out, size_t begin, size_t end, int kind);
#define QSIM_ORTF_VECTOR qsim_avx512_supported()
#else
#define QSIM_ORTF_VECTOR 0
#endif

qsim_status qsim_ort_layer_norm_ref(const float * x, const float * gamma, const float * beta,
                                    float eps, float * out, size_t d, size_t row_begin,
                                    size_t row_end) {
    if (d == 0 || !x || !gamma || !out) {
        return QSIM_INVALID_ARGUMENT;
    }
    qsim_ortf_layer_norm_rows(x, gamma, beta, eps, out, d, row_begin, row_end);
    return QSIM_SUCCESS;
}

qsim_status qsim_ort_softmax_ref(const float * x, float * out, size_t d, size_t row_begin,
                                 size_t row_end) {
    if (d == 0 || !x || !out) {
        return QSIM_INVALID_ARGUMENT;
    }
    qsim_ortf_softmax_rows(x, out, d, row_begin, row_end);
    return QSIM_SUCCESS;
}

qsim_status qsim_ort_gelu_ref(const float * x, float * out, size_t begin, size_t end) {
    if (!x || !out) {
        return QSIM_INVALID_ARGUMENT;
    }
    qsim_ortf_gelu_loop(x, out, begin, end);
    return QSIM_SUCCESS;
}

qsim_status qsim_ort_activation_ref(const float * x, float * out, size_t begin, size_t end,
                                    int kind) {
    if (!x || !out || kind < QSIM_ORT_SIGMOID || kind > QSIM_ORT_TANH) {
        return QSIM_INVALID_ARGUMENT;
    }
    qsim_ortf_activation_loop(x, out, begin, end, kind);
    return QSIM_SUCCESS;
}

qsim_status qsim_ort_layer_norm(const float * x, const float * gamma, const float * beta,
                                float eps, float * out, size_t d, size_t row_begin,
                                size_t row_end) {
#if defined(__x86_64__)
    if (d > 0 && x && gamma && out && QSIM_ORTF_VECTOR) {
        qsim_ort_layer_norm_avx512(x, gamma, beta, eps, out, d, row_begin, row_end);
        return QSIM_SUCCESS;
    }
#endif
    return qsim_ort_layer_norm_ref(x, gamma, beta, eps, out, d, row_begin, row_end);
}

qsim_status qsim_ort_softmax(const float * x, float * out, size_t d, size_t row_begin,
                             size_t row_end) {
#if defined(__x86_64__)
    if (d > 0 && x && out && QSIM_ORTF_VECTOR) {
        qsim_ort_softmax_avx512(x, out, d, row_begin, row_end);
        return QSIM_SUCCESS;
    }
#endif
    return qsim_ort_softmax_ref(x, out, d, row_begin, row_end);
}

qsim_status qsim_ort_gelu(const float * x, float * out, size_t begin, size_t end) {
#if defined(__x86_64__)
    if (x && out && QSIM_ORTF_VECTOR) {
        qsim_ort_gelu_avx512(x, out, begin, end);
        return QSIM_SUCCESS;
    }
#endif
    return qsim_ort_gelu_ref(x, out, begin, end);
}

qsim_status qsim_ort_activation(const float * x, float * out, size_t begin, size_t end,
                                int kind) {
#if defined(__x86_64__)
    if (x && out && kind >= QSIM_ORT_SIGMOID && kind <= QSIM_ORT_TANH && QSIM_ORTF_VECTOR) {
        qsim_ort_activation_avx512(x, out, begin, end, kind);
        return QSIM_SUCCESS;
    }
#endif
    return qsim_ort_activation_ref(x, out, begin, end, kind);
}

qsim_status qsim_ort_matmul_ref(const float * a, const float * b, float * c, size_t m, size_t k,
                                size_t n, size_t row_begin, size_t row_end) {
    if (m < 2 || n < 2) {
        return QSIM_INVALID_ARGUMENT;
    }
    return qsim_ort_sgemm_ref(a, b, c, m, n, k, qsim_ort_sgemm_stride_k(n, k), 0, row_begin,
                              row_end);
}

/* MLAS's SGEMM in zero mode (qsim/ortconv.h: the one implementation of its order, dispatched
 * to its AVX-512 variant there). */
qsim_status qsim_ort_matmul(const float * a, const float * b, float * c, size_t m, size_t k,
                            size_t n, size_t row_begin, size_t row_end) {
    if (m < 2 || n < 2) {
        return QSIM_INVALID_ARGUMENT;
    }
    return qsim_ort_sgemm(a, b, c, m, n, k, qsim_ort_sgemm_stride_k(n, k), 0, row_begin, row_end);
}

/* Eigen's vectorized sum of the n values at x, whose first `skip` values lie before a 16-byte
 * boundary (qsim/ortfloat.h: 4-float packets a and b from there, folded (a0 + a2) + (a1 + a3),
 * then the head, then the tail). */
static float qsim_ortf_row_sum(const float * x, size_t n, size_t skip) {
    skip                = skip < n ? skip : n;
    const size_t packed = (n - skip) / 4 * 4, paired = (n - skip) / 8 * 8;
    if (packed == 0) {
        float sum = x[0];
        for (size_t j = 1; j < n; j++) {
            sum += x[j];
        }
        return sum;
    }
    const float * p = x + skip;
    float         a[4], b[4];
    for (size_t l = 0; l < 4; l++) {
        a[l] = p[l];
    }
    if (packed > 4) {
        for (size_t l = 0; l < 4; l++) {
            b[l] = p[4 + l];
        }
        for (size_t i = 8; i < paired; i += 8) {
            for (size_t l = 0; l < 4; l++) {
                a[l] += p[i + l];
                b[l] += p[i + 4 + l];
            }
        }
        for (size_t l = 0; l < 4; l++) {
            a[l] += b[l];
            if (packed > paired) {
                a[l] += p[paired + l];
            }
        }
    }
    float sum = (a[0] + a[2]) + (a[1] + a[3]);
    for (size_t j = 0; j < skip; j++) {
        sum += x[j];
    }
    for (size_t j = skip + packed; j < n; j++) {
        sum += x[j];
    }
    return sum;
}

qsim_status qsim_ort_reduce_mean(const float * x, float * out, size_t n, size_t row_begin,
                                 size_t row_end) {
    if (n == 0 || !x || !out) {
        return QSIM_INVALID_ARGUMENT;
    }
    for (size_t row = row_begin; row < row_end; row++) {
        const size_t skip = (4 - row * n % 4) % 4;
        out[row]          = qsim_ortf_row_sum(x + row * n, n, skip) / (float)n;
    }
    return QSIM_SUCCESS;
}
