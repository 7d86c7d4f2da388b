/*
 * qsim/qdq.h: fake-quantization kernels for fp32 data (plain C, no torch).
 *
 * The one numeric convention (docs/design.md §2), for a grid [qmin, qmax] and ONNX-signed zero point:
 *
 *     t = x / scale                           (fp32 division, never x * (1/scale))
 *     q = clamp(rint(t) + zero_point, qmin, qmax)   (rint: ties to even)
 *     y = (q - zero_point) * scale
 *
 * This is ONNX QuantizeLinear followed by DequantizeLinear, bit for bit with onnxruntime for every
 * input: NaN is clamped to qmin (as onnxruntime's QuantizeLinear and torch's fake_quantize do, so
 * qdq gives (qmin - zero_point) * scale), +-Inf saturate to the grid ends. dequantize keeps NaN.
 *
 * Two levels:
 *  - run kernels (`qsim_qdq_kernels`): one contiguous run with constant qparams. A scalar `_ref`
 *    set is the specification; ISA variants are bit-exact with it and listed in qdq_variants.inc.
 *  - layout drivers (`qsim_forward_f32`, `qsim_backward_*`): per-tensor, per-channel and blockwise
 *    tensors, split into runs, over a `[begin, end)` range so a caller can spread them on threads.
 *
 * Nothing here allocates. Ownership: every pointer is borrowed for the duration of the call (the
 * variant tables are static). Arguments are not validated: the binding checks them first (finite,
 * positive scale; integer zero point in [qmin, qmax]; qmin < qmax; lengths match the layout).
 */
#ifndef QSIM_QDQ_H
#define QSIM_QDQ_H

#include <stddef.h>
#include <stdint.h>

#include "qsim/minifloat.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Constant quantization parameters of one run. */
typedef struct qsim_grid {
    float scale;      /* step size, finite and > 0 */
    float zero_point; /* integer value in [qmin, qmax], ONNX sign (AIMET offset = -zero_point) */
    float qmin;       /* lowest integer of the grid */
    float qmax;       /* highest integer of the grid, > qmin, qmax - qmin < 2^16 */
} qsim_grid;

/* Lanes of the range-learning reductions: element i of a run adds to lane i % 8 in double, and
 * the lanes combine as ((l0+l4)+(l2+l6)) + ((l1+l5)+(l3+l7)). Every variant keeps this order. */
#define QSIM_REDUCE_LANES 8

/* Forward of one contiguous run of n elements; x and y may alias exactly. */
typedef void (*qsim_run_fn)(size_t n, const float * x, float * y, qsim_grid g);

/* Backward of one run. dx = dy * mask (mask: the element was not clamped). When `sums` is not NULL
 * it also adds the run's gradient for scale to sums[0] and for zero_point to sums[1] (see
 * qsim_backward_reduce_f32 for the formulas). dx may alias dy. */
typedef void (*qsim_run_bwd_fn)(size_t n, const float * x, const float * dy, float * dx,
                                qsim_grid g, double * sums);

/* The qdq forward of one run that also keeps what its straight-through backward needs: y = qdq(x)
 * as qsim_run_fn computes it, and one bit an element: bit i % 8 of clamped[i / 8] is 1 where
 * element i is clamped (qsim_run_bwd_fn's mask is 0 there: below qmin, above qmax, NaN) or where
 * x[i] > gate is false, else 0; the unused high bits of the last byte are 0. gate = -INFINITY
 * adds no bit (-Inf and NaN are clamped); gate = 0 gives the gradient of qdq(relu(x)), which is
 * qdq(x) on a grid that starts at 0 (zero point == qmin), ReLU's own gradient being 0 where its
 * result is not above 0. y may alias x exactly, so that a training forward can overwrite x and
 * keep (n + 7) / 8 bytes for the backward instead of x. */
typedef void (*qsim_run_mask_fn)(size_t n, const float * x, float * y, uint8_t * clamped,
                                 qsim_grid g, float gate);

/* The straight-through backward from those bits: dx[i] = (bit i set) ? +0 : dy[i], bit for bit
 * qsim_run_bwd_fn's dx (without sums) for the x that gave them. dx may alias dy exactly. */
typedef void (*qsim_mask_bwd_fn)(size_t n, const uint8_t * clamped, const float * dy, float * dx);

/* qsim_mask_bwd_fn on 16-bit gradients: dx[i] = (bit i set) ? +0 : dy[i], the bits of dy kept
 * (qsim_backward_h16's dx but for NaN payloads, which it makes canonical). dx may alias dy
 * exactly. */
typedef void (*qsim_mask_bwd_h16_fn)(size_t n, const uint8_t * clamped, const uint16_t * dy,
                                     uint16_t * dx);

/* A rows x n block of a row-major matrix whose rows are `ld` floats apart, with one grid per
 * column: element (r, j) uses scale[j] and zero_point[j] (per-channel quantization along the last
 * axis, where neighbours differ in qparams). Each element is computed as the run kernels compute
 * it with qsim_grid { scale[j], zero_point[j], qmin, qmax }, bit for bit. */
typedef struct qsim_rows {
    size_t        rows, n, ld;      /* ld >= n */
    const float * scale;            /* n entries */
    const float * zero_point;       /* n entries */
    float         qmin, qmax;
} qsim_rows;

/* Forward of a rows block: y (rows ld apart like x) = op(x); x and y may alias exactly. */
typedef void (*qsim_rows_fn)(const qsim_rows * r, const float * x, float * y);

/* Backward of a rows block (dy and dx with x's row stride; dx may alias dy). When `sums` is not
 * NULL (2 * n doubles) each column adds its terms in row order: sums[2j] += (double) scale term
 * of (r, j), then sums[2j+1] += (double) zero-point term, for r = 0, 1, ... (the sums of a run of
 * one element each, one row after the other). */
typedef void (*qsim_rows_bwd_fn)(const qsim_rows * r, const float * x, const float * dy,
                                 float * dx, double * sums);

/* Element-wise fake cast: round to the narrower float type (ties to even) and back. */
typedef void (*qsim_cast_fn)(size_t n, const float * x, float * y);

/* The 16-bit float formats, held as their bit patterns (uint16_t). */
typedef enum qsim_half_kind {
    QSIM_HALF_F16  = 0, /* IEEE binary16 */
    QSIM_HALF_BF16 = 1, /* bfloat16: the upper half of an fp32 */
} qsim_half_kind;

/* n values of `kind` widened to fp32, exactly (a NaN stays NaN: its bits are sign | 0x7F800000 |
 * payload << 13 for fp16, the value << 16 for bf16). */
typedef void (*qsim_widen_fn)(qsim_half_kind kind, size_t n, const uint16_t * x, float * y);

/* n fp32 values rounded to `kind`, ties to even, overflow to Inf; NaN becomes the quiet NaN
 * torch writes: 0x7FC0 for bf16, sign | 0x7E00 for fp16. */
typedef void (*qsim_narrow_fn)(qsim_half_kind kind, size_t n, const float * x, uint16_t * y);

/* Quantize-dequantize of n 16-bit values of `kind` in one pass: bit for bit widen, the fp32
 * qsim_run_fn qdq, narrow (y may alias x exactly). */
typedef void (*qsim_h16_run_fn)(qsim_half_kind kind, size_t n, const uint16_t * x, uint16_t * y,
                                qsim_grid g);

/* The straight-through backward of qdq on n 16-bit values in one pass: bit for bit widen x and
 * dy, the fp32 qsim_run_bwd_fn qdq_backward (no sums), narrow dx (dx may alias dy exactly). */
typedef void (*qsim_h16_run_bwd_fn)(qsim_half_kind kind, size_t n, const uint16_t * x,
                                    const uint16_t * dy, uint16_t * dx, qsim_grid g);

/* qsim_run_mask_fn on n 16-bit values of `kind` in one pass: y bit for bit widen, the fp32
 * qsim_run_mask_fn qdq, narrow; the bits those of the widened values (y may alias x exactly). */
typedef void (*qsim_h16_run_mask_fn)(qsim_half_kind kind, size_t n, const uint16_t * x,
                                     uint16_t * y, uint8_t * clamped, qsim_grid g, float gate);

/* One implementation of every run kernel. `isa` names the instruction set the variant needs. */
typedef struct qsim_qdq_kernels {
    const char *    name;               /* "ref", "avx2", ... */
    int             (*supported)(void); /* non-zero when this CPU can run the variant */
    qsim_run_fn     qdq;                /* quantize-dequantize */
    qsim_run_fn     quantize;           /* q = clamp(rint(x/s) + zp), as floats */
    qsim_run_fn     dequantize;         /* y = (x - zp) * s, x holding grid integers */
    qsim_run_bwd_fn qdq_backward;
    qsim_run_bwd_fn quantize_backward;
    qsim_run_bwd_fn dequantize_backward;
    qsim_cast_fn    cast_f16;           /* fp32 -> fp16 -> fp32 */
    qsim_cast_fn    cast_bf16;          /* fp32 -> bf16 -> fp32 */
    qsim_minifloat_fn cast_minifloat;   /* narrow float with a scale (qsim/minifloat.h) */
    qsim_block_fn     block_float;      /* MX / NVFP4 blocks along one row (qsim/minifloat.h) */
    qsim_rows_fn      qdq_rows;         /* the same three ops with per-column grids (qsim_rows) */
    qsim_rows_fn      quantize_rows;
    qsim_rows_fn      dequantize_rows;
    qsim_rows_bwd_fn  qdq_rows_backward;
    qsim_rows_bwd_fn  quantize_rows_backward;
    qsim_rows_bwd_fn  dequantize_rows_backward;
    qsim_widen_fn     widen_h16;        /* 16-bit floats to fp32 (the 16-bit drivers below) */
    qsim_narrow_fn    narrow_h16;       /* fp32 to 16-bit floats */
    qsim_h16_run_fn   qdq_h16;          /* qdq on 16-bit floats, fused (the 16-bit drivers) */
    qsim_h16_run_bwd_fn qdq_backward_h16; /* its straight-through backward, fused */
    qsim_run_mask_fn  qdq_mask;         /* qdq with clamped bits (training in place) */
    qsim_mask_bwd_fn  qdq_mask_backward; /* the straight-through backward from those bits */
    qsim_mask_bwd_h16_fn qdq_mask_backward_h16; /* the same on 16-bit gradients */
    qsim_h16_run_mask_fn qdq_mask_h16;  /* qdq with clamped bits on 16-bit floats, fused */
} qsim_qdq_kernels;

/* All compiled variants, reference first; *count receives their number. The array is static:
 * never free it. Tests walk it; dispatch picks from it. */
const qsim_qdq_kernels * qsim_qdq_variants(size_t * count);

/* The fastest variant this CPU supports (chosen once, then cached; thread-safe). */
const qsim_qdq_kernels * qsim_qdq_best(void);

/* Whether the x86 variants take the division-free qdq and straight-through forms, x * (1 / s)
 * with the lanes near a half-integer recomputed by division (qsim_grid_reciprocal in
 * kernels/qdq/qdq_common.h): the same bits either way, faster where the CPU divides slowly. On by
 * default on Intel CPUs and off elsewhere (measured 2026-12-06: an AVX-512 Xeon's in-place qdq
 * 0.200 -> 0.124 ns a value with it; an AVX-512 EPYC's 16-bit qdq 0.105 -> 0.177 ns, its fp32 qdq
 * no faster). The environment variable QSIM_DIVISION_FREE, "0" or "1" (other values are ignored),
 * read at the first call, overrides the default; qsim_set_division_free sets it (tests run both).
 * Thread-safe; a change applies to kernels called after it. */
int  qsim_division_free(void);
void qsim_set_division_free(int on);

/* The reference kernels: the specification every variant matches bit for bit. */
void qsim_qdq_f32_ref(size_t n, const float * x, float * y, qsim_grid g);
void qsim_quantize_f32_ref(size_t n, const float * x, float * y, qsim_grid g);
void qsim_dequantize_f32_ref(size_t n, const float * x, float * y, qsim_grid g);
void qsim_qdq_mask_f32_ref(size_t n, const float * x, float * y, uint8_t * clamped, qsim_grid g,
                           float gate);
void qsim_qdq_mask_backward_f32_ref(size_t n, const uint8_t * clamped, const float * dy, float * dx);
void qsim_qdq_mask_backward_h16_ref(size_t n, const uint8_t * clamped, const uint16_t * dy,
                                    uint16_t * dx);
void qsim_qdq_backward_f32_ref(size_t n, const float * x, const float * dy, float * dx,
                               qsim_grid g, double * sums);
void qsim_quantize_backward_f32_ref(size_t n, const float * x, const float * dy, float * dx,
                                    qsim_grid g, double * sums);
void qsim_dequantize_backward_f32_ref(size_t n, const float * x, const float * dy, float * dx,
                                      qsim_grid g, double * sums);
void qsim_qdq_rows_f32_ref(const qsim_rows * r, const float * x, float * y);
void qsim_quantize_rows_f32_ref(const qsim_rows * r, const float * x, float * y);
void qsim_dequantize_rows_f32_ref(const qsim_rows * r, const float * x, float * y);
void qsim_qdq_rows_backward_f32_ref(const qsim_rows * r, const float * x, const float * dy,
                                    float * dx, double * sums);
void qsim_quantize_rows_backward_f32_ref(const qsim_rows * r, const float * x, const float * dy,
                                         float * dx, double * sums);
void qsim_dequantize_rows_backward_f32_ref(const qsim_rows * r, const float * x,
                                           const float * dy, float * dx, double * sums);
void qsim_cast_f16_f32_ref(size_t n, const float * x, float * y);
void qsim_cast_bf16_f32_ref(size_t n, const float * x, float * y);
void qsim_widen_h16_ref(qsim_half_kind kind, size_t n, const uint16_t * x, float * y);
void qsim_narrow_h16_ref(qsim_half_kind kind, size_t n, const float * x, uint16_t * y);
void qsim_qdq_h16_ref(qsim_half_kind kind, size_t n, const uint16_t * x, uint16_t * y,
                      qsim_grid g);
void qsim_qdq_backward_h16_ref(qsim_half_kind kind, size_t n, const uint16_t * x,
                               const uint16_t * dy, uint16_t * dx, qsim_grid g);
void qsim_qdq_mask_h16_ref(qsim_half_kind kind, size_t n, const uint16_t * x, uint16_t * y,
                           uint8_t * clamped, qsim_grid g, float gate);

/* ---- layouts ------------------------------------------------------------------------------ */

/* A contiguous tensor x viewed as [outer, channels, inner] around the quantization axis, and how
 * its qparams index: element (o, c, i) uses qparam o*stride_outer + (c/block)*stride_block +
 * i*stride_inner. Build one with the three constructors below. */
typedef struct qsim_layout {
    int64_t outer, channels, inner;
    int64_t block;
    int64_t stride_outer, stride_block, stride_inner;
} qsim_layout;

/* One scale for all n elements. */
qsim_layout qsim_layout_per_tensor(int64_t n);
/* One scale per channel: qparams have `channels` entries. */
qsim_layout qsim_layout_per_channel(int64_t outer, int64_t channels, int64_t inner);
/* One scale per `block` consecutive channels at each (outer, inner) position: qparams are
 * [outer, channels/block, inner] (ONNX blocked quantization). channels % block must be 0. */
qsim_layout qsim_layout_blockwise(int64_t outer, int64_t channels, int64_t inner, int64_t block);

/* Number of elements the layout covers. */
int64_t qsim_layout_numel(const qsim_layout * l);

/* The qparams of a whole tensor. */
typedef struct qsim_qparams {
    const float * scale;      /* as many entries as the layout indexes */
    const float * zero_point; /* same count as scale */
    float         qmin, qmax;
} qsim_qparams;

typedef enum qsim_op {
    QSIM_OP_QDQ        = 0,
    QSIM_OP_QUANTIZE   = 1,
    QSIM_OP_DEQUANTIZE = 2,
} qsim_op;

/* Forward of `op` on flat elements [begin, end) of x into y. k = NULL uses qsim_qdq_best(). */
void qsim_forward_f32(const qsim_qdq_kernels * k, qsim_op op, const qsim_layout * l,
                      const qsim_qparams * p, const float * x, float * y,
                      int64_t begin, int64_t end);

/* Backward of `op` for x (STE) on flat elements [begin, end): dx = d op / dx * dy. */
void qsim_backward_f32(const qsim_qdq_kernels * k, qsim_op op, const qsim_layout * l,
                       const qsim_qparams * p, const float * x, const float * dy, float * dx,
                       int64_t begin, int64_t end);

/* ---- 16-bit floating data ------------------------------------------------------------------ */

/* Elements widened and narrowed per step by the 16-bit drivers (a stack buffer each): 16 KiB of
 * fp32, so a step stays in the L1/L2 cache and no fp32 copy of the tensor ever exists. */
#define QSIM_HALF_CHUNK 4096

/* qsim_forward_f32 on 16-bit data: elements [begin, end) of x are widened to fp32 (exactly),
 * computed by the fp32 kernels of k and rounded to `kind` (ties to even; NaN becomes the quiet
 * NaN torch writes: 0x7FC0 for bf16, sign | 0x7E00 for fp16) into y, QSIM_HALF_CHUNK elements at
 * a time. Bit for bit the fp32 op on the widened values followed by one rounding. x and y may
 * alias exactly. QSIM_OP_QDQ on a layout of runs (all but per-channel along the last axis) goes
 * through k->qdq_h16, one pass per run; the rest widens, computes and narrows each chunk. */
void qsim_forward_h16(const qsim_qdq_kernels * k, qsim_op op, qsim_half_kind kind,
                      const qsim_layout * l, const qsim_qparams * p, const uint16_t * x,
                      uint16_t * y, int64_t begin, int64_t end);

/* qsim_backward_f32 on 16-bit x, dy and dx, in the same way (dx may alias dy); QSIM_OP_QDQ on a
 * layout of runs through k->qdq_backward_h16, one pass per run. */
void qsim_backward_h16(const qsim_qdq_kernels * k, qsim_op op, qsim_half_kind kind,
                       const qsim_layout * l, const qsim_qparams * p, const uint16_t * x,
                       const uint16_t * dy, uint16_t * dx, int64_t begin, int64_t end);

/* qsim_run_mask_fn on 16-bit data of `kind` (k NULL: qsim_qdq_best()): y the values of
 * qsim_forward_h16's qdq, the bits those of the widened (exact fp32) values, through k's
 * qdq_mask_h16. y may alias x exactly. */
void qsim_qdq_mask_h16(const qsim_qdq_kernels * k, qsim_half_kind kind, size_t n,
                       const uint16_t * x, uint16_t * y, uint8_t * clamped, qsim_grid g,
                       float gate);

/* qsim_widen_fn and qsim_narrow_fn of qsim_qdq_best(). */
void qsim_widen_h16(qsim_half_kind kind, size_t n, const uint16_t * x, float * y);
void qsim_narrow_h16(qsim_half_kind kind, size_t n, const float * x, uint16_t * y);

/* Elements of one per-tensor reduction tile. Fixed, so results never depend on thread count. */
#define QSIM_REDUCE_TILE 32768

/* Number of reduction groups of a layout: tiles of QSIM_REDUCE_TILE elements for per-tensor,
 * one per qparam entry otherwise. */
int64_t qsim_reduce_groups(const qsim_layout * l);

/* Backward with the range-learning gradients, over groups [begin, end). Writes dx for every
 * element of those groups and stores each group's sums in sums[2*g] (scale) and sums[2*g+1]
 * (zero point). With t = x/s, m = mask, qz = clamp(rint(t), qmin-zp, qmax-zp):
 *   QDQ:        dx = dy*m,    ds = dy*(qz - t*m),  dzp = -dy*s*(1-m)
 *   QUANTIZE:   dx = dy*m/s,  ds = -dy*m*t/s,      dzp = dy*m
 *   DEQUANTIZE: dx = dy*s,    ds = dy*(x - zp),    dzp = -dy*s
 * (the LSQ/AIMET v2 straight-through forms; docs/aimet.md §3.2). */
void qsim_backward_reduce_f32(const qsim_qdq_kernels * k, qsim_op op, const qsim_layout * l,
                              const qsim_qparams * p, const float * x, const float * dy,
                              float * dx, double * sums, int64_t begin, int64_t end);

/* Floats of scratch that one qsim_backward_reduce_h16 call on layout l needs (may be 0). */
int64_t qsim_reduce_h16_scratch(const qsim_layout * l);

/* qsim_backward_reduce_f32 on 16-bit x, dy and dx of `kind` (dx may alias dy): each stretch that
 * the fp32 function hands to one kernel call is widened into `scratch`, computed by the same
 * kernel and its dx rounded back (as qsim_narrow_fn), so the sums are bit for bit those of
 * qsim_backward_reduce_f32 on the widened data and dx is its dx rounded once. No fp32 copy of the
 * tensor exists. `scratch` (qsim_reduce_h16_scratch(l) floats) is owned by the caller; calls
 * that run at the same time need their own. */
void qsim_backward_reduce_h16(const qsim_qdq_kernels * k, qsim_op op, qsim_half_kind kind,
                              const qsim_layout * l, const qsim_qparams * p, const uint16_t * x,
                              const uint16_t * dy, uint16_t * dx, double * sums, int64_t begin,
                              int64_t end, float * scratch);

/* Turns the group sums into gradients: per-tensor adds the tiles in order into dscale[0] and
 * dzero_point[0]; otherwise entry g gets group g. */
void qsim_reduce_finish(const qsim_layout * l, const double * sums, float * dscale,
                        float * dzero_point);

#ifdef __cplusplus
}
#endif

#endif /* QSIM_QDQ_H */
