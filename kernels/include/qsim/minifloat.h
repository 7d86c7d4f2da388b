/*
 * qsim/minifloat.h: fake casts to narrow floating-point formats (FP8, FP6, FP4, any exponent and
 * mantissa split) and to the block-scaled formats of OCP Microscaling v1.0 (MX) and NVFP4, on fp32
 * data (plain C, no torch).
 *
 * Minifloat cast of one element with scale s (finite, > 0):
 *
 *     y = R(x / s) * s          (fp32 division and product, never x * (1/s))
 *
 * R rounds to the nearest value of the format, ties to even, with the format's subnormals kept
 * exactly (IEEE 754 rounding with an unbounded exponent, then the overflow rule):
 *  - a rounded magnitude above the largest finite value `max` (and +-Inf) becomes +-max when
 *    saturating; otherwise +-Inf for QSIM_FLOAT_IEEE and NaN for QSIM_FLOAT_FN / _FNUZ;
 *    QSIM_FLOAT_FINITE formats (no Inf, no NaN code) always saturate;
 *  - NaN stays NaN (its payload kept); QSIM_FLOAT_FNUZ has no negative zero (-0 becomes +0).
 * This is ONNX Cast / QuantizeLinear to float8 with `saturate`, and torch's own casts
 * (x.to(torch.float8_e4m3fn) saturates; float8_e5m2 and the fnuz types do not).
 *
 * Block-scaled formats (qsim_block_format): consecutive blocks of `block` elements share a scale S
 * computed from the block's largest magnitude A (a NaN anywhere in the block makes A NaN):
 *  - MX (OCP MX v1.0, 6.3): S = 2^max(floor(log2 A) - emax, -127) (E8M0), emax the exponent of
 *    the element format's largest power of two; elements R(x / S) * S with a saturating element
 *    format; MXINT8 elements are two's complement 8-bit integers times 2^-6, that is
 *    (clamp(rint(x / (S/64)), -128, 127) + 0) * (S/64) (no -0). A (and so S) NaN or Inf: every element NaN.
 *  - NVFP4: with the fp32 tensor scale d (> 0), the block scale is the E4M3 value
 *    q = E4M3_sat(A / 6 / d) decoded as S = q * d (ONNX DequantizeLinear of the scale); elements
 *    are E2M1: R(x / S) * S. S == 0 (an all-zero block): every element 0 with x's sign.
 * A last block shorter than `block` (the row length is not a multiple of it) uses its own elements.
 *
 * Ownership: every pointer is borrowed for the call; nothing allocates. Run kernels do not
 * validate: qsim_minifloat_init / qsim_block_format_init do, once.
 */
#ifndef QSIM_MINIFLOAT_H
#define QSIM_MINIFLOAT_H

#include <stddef.h>
#include <stdint.h>

#include "qsim/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* How a format spends its special codes. */
typedef enum qsim_float_kind {
    QSIM_FLOAT_IEEE   = 0, /* top exponent code is Inf/NaN (fp16, bf16, float8_e5m2) */
    QSIM_FLOAT_FN     = 1, /* finite only; the all-ones code is NaN (float8_e4m3fn) */
    QSIM_FLOAT_FNUZ   = 2, /* finite only, bias 2^(e-1), NaN is the -0 code (float8_*fnuz) */
    QSIM_FLOAT_FINITE = 3, /* every code finite: no Inf, no NaN (OCP MX FP6 and FP4 elements) */
} qsim_float_kind;

/* A narrow float format as the user names it. */
typedef struct qsim_float_format {
    int             exponent_bits; /* 1..8 */
    int             mantissa_bits; /* 0..23 */
    qsim_float_kind kind;
    int             saturate;      /* non-zero: overflow and +-Inf clamp to +-max */
} qsim_float_format;

/* The constants the run kernels use (qsim_minifloat_init fills them; treat as opaque). */
typedef struct qsim_minifloat {
    uint32_t shift;         /* fp32 mantissa bits dropped: 23 - mantissa_bits */
    uint32_t round_bias;    /* 2^(shift-1) - 1 (0 when shift is 0) */
    uint32_t odd_mask;      /* 1 when shift > 0, else 0 */
    uint32_t odd_flip;      /* 1 when the kept bit's parity is not the code's (no mantissa bits
                             * and an even bias: the exponent field then decides ties) */
    uint32_t sub_limit;     /* magnitudes (as bits) below this round on the subnormal grid */
    float    sub_magic;     /* 2^(emin - mantissa_bits + 23): adding it rounds to that grid */
    uint32_t max_bits;      /* largest finite magnitude, as fp32 bits */
    uint32_t over_bits;     /* magnitude written on overflow: max, Inf or NaN */
    uint32_t unsigned_zero; /* 1: zero results are +0 (FNUZ) */
} qsim_minifloat;

/* Checks `f` and fills `out`. QSIM_INVALID_ARGUMENT when a field is out of range, or the format
 * has no finite value (IEEE with exponent_bits 1, FN with exponent_bits 1 and no mantissa). */
qsim_status qsim_minifloat_init(const qsim_float_format * f, qsim_minifloat * out);

/* The largest finite value of an initialised format. */
float qsim_minifloat_max(const qsim_minifloat * m);

/* R(x) of one element (the specification every kernel matches). */
float qsim_minifloat_round(float x, const qsim_minifloat * m);

/* The block-scaled formats. */
typedef enum qsim_block_kind {
    QSIM_BLOCK_MX_FLOAT = 0, /* MXFP8 / MXFP6 / MXFP4: E8M0 scale, minifloat elements */
    QSIM_BLOCK_MX_INT8  = 1, /* MXINT8: E8M0 scale, int8 elements times 2^-6 */
    QSIM_BLOCK_NVFP4    = 2, /* E4M3 scale times an fp32 tensor scale, E2M1 elements */
} qsim_block_kind;

typedef struct qsim_block_format {
    qsim_block_kind kind;
    qsim_minifloat  elem;         /* element format (MX_FLOAT, NVFP4) */
    qsim_minifloat  scale_fmt;    /* E4M3 saturating (NVFP4) */
    int             emax;         /* MX: exponent of the element format's largest power of two */
    float           elem_max;     /* NVFP4: 6, the largest E2M1 value */
    float           tensor_scale; /* NVFP4: d, finite and > 0 */
    size_t          block;        /* 32 (MX) or 16 (NVFP4) */
} qsim_block_format;

/* Fills `out` for an MX format: `elem` the element format (ignored for MX_INT8), saturating. */
qsim_status qsim_block_format_mx(qsim_block_kind kind, const qsim_float_format * elem,
                                 qsim_block_format * out);

/* Fills `out` for NVFP4 with tensor scale d (finite, > 0, else QSIM_INVALID_ARGUMENT). */
qsim_status qsim_block_format_nvfp4(float tensor_scale, qsim_block_format * out);

/* The scale S of a block whose largest magnitude, as fp32 bits, is `amax_bits` (any NaN pattern
 * above 0x7f800000 means the block holds a NaN). MX_INT8 returns S / 64, the integer step. */
float qsim_block_scale(uint32_t amax_bits, const qsim_block_format * b);

/* Run kernels (one entry each in every qdq variant, qsim/qdq.h):
 *   minifloat: y = R(x / s) * s over n elements (x and y may alias exactly);
 *   block:     one row of n elements, cut into blocks of b->block from x[0]. */
typedef void (*qsim_minifloat_fn)(size_t n, const float * x, float * y, float s,
                                  const qsim_minifloat * m);
typedef void (*qsim_block_fn)(size_t n, const float * x, float * y, const qsim_block_format * b);

void qsim_minifloat_f32_ref(size_t n, const float * x, float * y, float s, const qsim_minifloat * m);
void qsim_block_float_f32_ref(size_t n, const float * x, float * y, const qsim_block_format * b);

/* ---- drivers (k NULL: qsim_qdq_best()) ----------------------------------------------------- */

struct qsim_qdq_kernels;
struct qsim_layout;

/* Minifloat cast of flat elements [begin, end) of x into y with the scales of a qsim/qdq.h layout
 * (per-tensor, per-channel or blockwise; `scale` holds as many entries as it indexes). */
void qsim_minifloat_forward_f32(const struct qsim_qdq_kernels * k, const qsim_minifloat * m,
                                const struct qsim_layout * l, const float * scale,
                                const float * x, float * y, int64_t begin, int64_t end);

/* Block format over rows [begin, end) of a contiguous [rows, row_len] array (blocks run along
 * the rows and never straddle two). */
void qsim_block_forward_f32(const struct qsim_qdq_kernels * k, const qsim_block_format * b,
                            int64_t row_len, const float * x, float * y, int64_t begin,
                            int64_t end);

#ifdef __cplusplus
}
#endif

#endif /* QSIM_MINIFLOAT_H */
