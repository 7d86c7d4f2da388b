/* The 16-bit drivers of qsim/qdq.h (qdq on runs of shared qparams by the variant's fused qdq_h16;
 * everything else as chunks widened into a stack buffer by its widen_h16, the fp32 layout drivers
 * (qdq_layout.h) on the buffer, the results rounded back by its narrow_h16) and the reference
 * widen/narrow/qdq_h16 kernels, the specification of the ISA variants. */
#include "qdq/qdq_common.h"
#include "qdq/qdq_layout.h"
#include "qdq/qdq_variants.h"

/* Exact fp16 -> fp32: subnormals are m * 2^-24, exactly representable. */
static inline float qsim_f16_to_f32(uint16_t h) {
    const uint32_t sign = (uint32_t) (h & 0x8000u) << 16;
    const uint32_t e    = (h >> 10) & 0x1fu, m = h & 0x3ffu;
    if (e == 0x1fu) {
        return qsim_bits_f32(sign | 0x7f800000u | m << 13);
    }
    if (e == 0) {
        return qsim_bits_f32(sign | qsim_f32_bits((float) m * 0x1p-24f));
    }
    return qsim_bits_f32(sign | (e + 112u) << 23 | m << 13);
}

/* fp32 -> fp16 bits: qsim_round_f16 (ties to even) then the exact encoding of its result. */
static inline uint16_t qsim_f32_to_f16(float f) {
    const uint32_t u    = qsim_f32_bits(f);
    const uint16_t sign = (uint16_t) ((u >> 16) & 0x8000u);
    if ((u & 0x7fffffffu) > 0x7f800000u) {
        return (uint16_t) (sign | 0x7e00u);
    }
    const uint32_t r = qsim_f32_bits(qsim_round_f16(f)) & 0x7fffffffu;
    if (r >= 0x7f800000u) {
        return (uint16_t) (sign | 0x7c00u);
    }
    if (r < 0x38800000u) {
        return (uint16_t) (sign | (uint16_t) (qsim_bits_f32(r) * 0x1p24f));
    }
    return (uint16_t) (sign | ((r >> 23) - 112u) << 10 | ((r >> 13) & 0x3ffu));
}

/* fp32 -> bf16 bits, ties to even; NaN -> 0x7FC0. */
static inline uint16_t qsim_f32_to_bf16(float f) {
    const uint32_t u = qsim_f32_bits(f);
    const uint16_t r = (uint16_t) ((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
    return (u & 0x7fffffffu) > 0x7f800000u ? (uint16_t) 0x7fc0u : r;
}

void qsim_widen_h16_ref(qsim_half_kind kind, size_t n, const uint16_t * x, float * y) {
    if (kind == QSIM_HALF_BF16) {
        for (size_t i = 0; i < n; i++) {
            y[i] = qsim_bits_f32((uint32_t) x[i] << 16);
        }
        return;
    }
    for (size_t i = 0; i < n; i++) {
        y[i] = qsim_f16_to_f32(x[i]);
    }
}

void qsim_narrow_h16_ref(qsim_half_kind kind, size_t n, const float * x, uint16_t * y) {
    if (kind == QSIM_HALF_BF16) {
        for (size_t i = 0; i < n; i++) {
            y[i] = qsim_f32_to_bf16(x[i]);
        }
        return;
    }
    for (size_t i = 0; i < n; i++) {
        y[i] = qsim_f32_to_f16(x[i]);
    }
}

/* The specification of the fused variants: widen, qdq and narrow, a stack chunk at a time. */
void qsim_qdq_h16_ref(qsim_half_kind kind, size_t n, const uint16_t * x, uint16_t * y,
                      qsim_grid g) {
    float buf[256];
    for (size_t at = 0; at < n; at += 256) {
        const size_t m = n - at < 256 ? n - at : 256;
        qsim_widen_h16_ref(kind, m, x + at, buf);
        qsim_qdq_f32_ref(m, buf, buf, g);
        qsim_narrow_h16_ref(kind, m, buf, y + at);
    }
}

void qsim_qdq_backward_h16_ref(qsim_half_kind kind, size_t n, const uint16_t * x,
                               const uint16_t * dy, uint16_t * dx, qsim_grid g) {
    qsim_qdq_backward_h16_composed(qsim_widen_h16_ref, qsim_qdq_backward_f32_ref,
                                   qsim_narrow_h16_ref, kind, n, x, dy, dx, g);
}

void qsim_widen_h16(qsim_half_kind kind, size_t n, const uint16_t * x, float * y) {
    qsim_qdq_best()->widen_h16(kind, n, x, y);
}

void qsim_narrow_h16(qsim_half_kind kind, size_t n, const float * x, uint16_t * y) {
    qsim_qdq_best()->narrow_h16(kind, n, x, y);
}

void qsim_forward_h16(const qsim_qdq_kernels * k, qsim_op op, qsim_half_kind kind,
                      const qsim_layout * l, const qsim_qparams * p, const uint16_t * x,
                      uint16_t * y, int64_t begin, int64_t end) {
    float buf[QSIM_HALF_CHUNK];
    k = k ? k : qsim_qdq_best();
    if (op == QSIM_OP_QDQ && qsim_layout_has_runs(l)) {
        qsim_runs r = qsim_runs_of(l, p, begin, end);
        qsim_grid g;
        for (int64_t at = begin, n; (n = qsim_runs_next(&r, &g)) > 0; at += n) {
            k->qdq_h16(kind, (size_t) n, x + at, y + at, g);
        }
        return;
    }
    for (int64_t at = begin; at < end;) {
        const int64_t n = end - at < QSIM_HALF_CHUNK ? end - at : QSIM_HALF_CHUNK;
        k->widen_h16(kind, (size_t) n, x + at, buf);
        qsim_forward_at(k, op, l, p, buf, buf, at, at + n);
        k->narrow_h16(kind, (size_t) n, buf, y + at);
        at += n;
    }
}

void qsim_qdq_mask_h16_ref(qsim_half_kind kind, size_t n, const uint16_t * x, uint16_t * y,
                           uint8_t * clamped, qsim_grid g, float gate) {
    qsim_qdq_mask_h16_composed(qsim_widen_h16_ref, qsim_qdq_mask_f32_ref, qsim_narrow_h16_ref,
                               kind, n, x, y, clamped, g, gate);
}

void qsim_qdq_mask_h16(const qsim_qdq_kernels * k, qsim_half_kind kind, size_t n,
                       const uint16_t * x, uint16_t * y, uint8_t * clamped, qsim_grid g,
                       float gate) {
    (k ? k : qsim_qdq_best())->qdq_mask_h16(kind, n, x, y, clamped, g, gate);
}

void qsim_qdq_mask_backward_h16_ref(size_t n, const uint8_t * clamped, const uint16_t * dy,
                                    uint16_t * dx) {
    qsim_qdq_mask_backward_h16_run(n, clamped, dy, dx);
}

void qsim_backward_h16(const qsim_qdq_kernels * k, qsim_op op, qsim_half_kind kind,
                       const qsim_layout * l, const qsim_qparams * p, const uint16_t * x,
                       const uint16_t * dy, uint16_t * dx, int64_t begin, int64_t end) {
    float bx[QSIM_HALF_CHUNK], bd[QSIM_HALF_CHUNK];
    k = k ? k : qsim_qdq_best();
    if (op == QSIM_OP_QDQ && qsim_layout_has_runs(l)) {
        qsim_runs r = qsim_runs_of(l, p, begin, end);
        qsim_grid g;
        for (int64_t at = begin, n; (n = qsim_runs_next(&r, &g)) > 0; at += n) {
            k->qdq_backward_h16(kind, (size_t) n, x + at, dy + at, dx + at, g);
        }
        return;
    }
    for (int64_t at = begin; at < end;) {
        const int64_t n = end - at < QSIM_HALF_CHUNK ? end - at : QSIM_HALF_CHUNK;
        k->widen_h16(kind, (size_t) n, x + at, bx);
        k->widen_h16(kind, (size_t) n, dy + at, bd);
        qsim_backward_at(k, op, l, p, bx, bd, bd, at, at + n);
        k->narrow_h16(kind, (size_t) n, bd, dx + at);
        at += n;
    }
}
