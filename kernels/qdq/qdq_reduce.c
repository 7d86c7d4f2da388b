/* The range-learning reduction drivers of qsim/qdq.h (qsim_backward_reduce_f32 / _h16,
 * qsim_reduce_groups, qsim_reduce_finish). fp32 and 16-bit data share one walk over the groups:
 * a qsim_reduce_io hands each stretch to the fp32 run or row kernels, as it is (fp32) or widened
 * into the caller's scratch and narrowed back (16-bit). A stretch is always a whole kernel call of
 * the fp32 walk, so both sum in the same order. */
#include "qdq/qdq_common.h"
#include "qdq/qdq_layout.h"

/* The data of one reduction: fp32 arrays (half == 0) or 16-bit arrays of `kind`. */
typedef struct qsim_reduce_io {
    const qsim_qdq_kernels * k;
    int                      half;
    qsim_half_kind           kind;
    const void *             x;
    const void *             dy;
    void *                   dx;
    float *                  scratch;  /* qsim_reduce_h16_scratch floats when half */
} qsim_reduce_io;

/* `run` on the n contiguous elements from flat element `at`, adding to sums. */
static void qsim_io_run(const qsim_reduce_io * io, qsim_run_bwd_fn run, int64_t at, size_t n,
                        qsim_grid g, double * sums) {
    if (!io->half) {
        run(n, (const float *) io->x + at, (const float *) io->dy + at, (float *) io->dx + at, g,
            sums);
        return;
    }
    float * bx = io->scratch, * bd = io->scratch + n;
    io->k->widen_h16(io->kind, n, (const uint16_t *) io->x + at, bx);
    io->k->widen_h16(io->kind, n, (const uint16_t *) io->dy + at, bd);
    run(n, bx, bd, bd, g, sums);
    io->k->narrow_h16(io->kind, n, bd, (uint16_t *) io->dx + at);
}

/* Elements of a strided group gathered per run-kernel call (a stack buffer: no allocation). */
#define QSIM_GATHER 256

/* x and dy of the n elements first, first + step, ... into bx and bd as fp32. */
static void qsim_io_gather(const qsim_reduce_io * io, int64_t first, int64_t step, int64_t n,
                           float * bx, float * bd) {
    if (!io->half) {
        for (int64_t j = 0; j < n; j++) {
            bx[j] = ((const float *) io->x)[first + j * step];
            bd[j] = ((const float *) io->dy)[first + j * step];
        }
        return;
    }
    uint16_t hx[QSIM_GATHER], hd[QSIM_GATHER];
    for (int64_t j = 0; j < n; j++) {
        hx[j] = ((const uint16_t *) io->x)[first + j * step];
        hd[j] = ((const uint16_t *) io->dy)[first + j * step];
    }
    io->k->widen_h16(io->kind, (size_t) n, hx, bx);
    io->k->widen_h16(io->kind, (size_t) n, hd, bd);
}

/* dx of the n elements first, first + step, ... from fp32 bd. */
static void qsim_io_scatter(const qsim_reduce_io * io, int64_t first, int64_t step, int64_t n,
                            const float * bd) {
    if (!io->half) {
        for (int64_t j = 0; j < n; j++) {
            ((float *) io->dx)[first + j * step] = bd[j];
        }
        return;
    }
    uint16_t hd[QSIM_GATHER];
    io->k->narrow_h16(io->kind, (size_t) n, bd, hd);
    for (int64_t j = 0; j < n; j++) {
        ((uint16_t *) io->dx)[first + j * step] = hd[j];
    }
}

int64_t qsim_reduce_groups(const qsim_layout * l) {
    if (qsim_is_per_tensor(l)) {
        return (qsim_layout_numel(l) + QSIM_REDUCE_TILE - 1) / QSIM_REDUCE_TILE;
    }
    const int64_t no = l->stride_outer ? l->outer : 1;
    const int64_t ni = l->stride_inner ? l->inner : 1;
    return no * (l->channels / l->block) * ni;
}

/* Group g of a per-channel or blockwise layout: the elements of qparam g, in (o, c, i) order.
 * Where they are adjacent (per-channel: `inner` elements per outer index; blockwise with
 * inner == 1: `block` elements) each stretch is one run. Blockwise along an axis that is not the
 * last has its elements `inner` apart: they go through a stack buffer QSIM_GATHER at a time. */
static void qsim_reduce_group(const qsim_reduce_io * io, qsim_run_bwd_fn run,
                              const qsim_layout * l, const qsim_qparams * p, double * sums,
                              int64_t g) {
    const int64_t nb  = l->channels / l->block;
    const int64_t ni  = l->stride_inner ? l->inner : 1;
    const int64_t is  = g % ni;
    const int64_t cb  = (g / ni) % nb;
    const int64_t os  = g / (ni * nb);
    const int64_t o0  = l->stride_outer ? os : 0;
    const int64_t o1  = l->stride_outer ? os + 1 : l->outer;
    const qsim_grid grid = { p->scale[g], p->zero_point[g], p->qmin, p->qmax };
    if (l->stride_inner == 0 || l->inner == 1) {
        const int64_t len = l->block * l->inner;
        for (int64_t o = o0; o < o1; o++) {
            qsim_io_run(io, run, (o * l->channels + cb * l->block) * l->inner, (size_t) len, grid,
                        sums);
        }
        return;
    }
    float bx[QSIM_GATHER], bd[QSIM_GATHER];
    for (int64_t o = o0; o < o1; o++) {
        const int64_t first = (o * l->channels + cb * l->block) * l->inner + is;
        for (int64_t c = 0; c < l->block; c += QSIM_GATHER) {
            const int64_t len = l->block - c < QSIM_GATHER ? l->block - c : QSIM_GATHER;
            qsim_io_gather(io, first + c * l->inner, l->inner, len, bx, bd);
            run((size_t) len, bx, bd, bd, grid, sums);
            qsim_io_scatter(io, first + c * l->inner, l->inner, len, bd);
        }
    }
}

/* Groups (channels) [begin, end) of a last-axis layout: every row of those columns. fp32 data is
 * one block; 16-bit data goes a few rows at a time (the row kernels add each column's terms in
 * row order, so the split leaves the sums as they are). */
static void qsim_reduce_columns(const qsim_reduce_io * io, qsim_rows_bwd_fn run,
                                const qsim_layout * l, const qsim_qparams * p, double * sums,
                                int64_t begin, int64_t end) {
    const size_t n = (size_t) (end - begin), ch = (size_t) l->channels;
    for (int64_t g = begin; g < end; g++) {
        sums[2 * g] = sums[2 * g + 1] = 0.0;
    }
    if (n == 0) {
        return;
    }
    if (!io->half) {
        const qsim_rows r = { (size_t) l->outer, n, ch, p->scale + begin, p->zero_point + begin,
                              p->qmin, p->qmax };
        run(&r, (const float *) io->x + begin, (const float *) io->dy + begin,
            (float *) io->dx + begin, sums + 2 * begin);
        return;
    }
    const size_t per = n < QSIM_HALF_CHUNK ? QSIM_HALF_CHUNK / n : 1;
    float *      bx  = io->scratch, * bd = io->scratch + per * n;
    for (size_t r0 = 0; r0 < (size_t) l->outer; r0 += per) {
        const size_t    rows = (size_t) l->outer - r0 < per ? (size_t) l->outer - r0 : per;
        const qsim_rows r    = { rows, n, n, p->scale + begin, p->zero_point + begin, p->qmin,
                                 p->qmax };
        for (size_t i = 0; i < rows; i++) {
            const size_t at = (r0 + i) * ch + (size_t) begin;
            io->k->widen_h16(io->kind, n, (const uint16_t *) io->x + at, bx + i * n);
            io->k->widen_h16(io->kind, n, (const uint16_t *) io->dy + at, bd + i * n);
        }
        run(&r, bx, bd, bd, sums + 2 * begin);
        for (size_t i = 0; i < rows; i++) {
            const size_t at = (r0 + i) * ch + (size_t) begin;
            io->k->narrow_h16(io->kind, n, bd + i * n, (uint16_t *) io->dx + at);
        }
    }
}

static void qsim_reduce(const qsim_reduce_io * io, qsim_op op, const qsim_layout * l,
                        const qsim_qparams * p, double * sums, int64_t begin, int64_t end) {
    if (qsim_is_last_axis(l)) {
        qsim_reduce_columns(io, qsim_rows_backward_kernel(io->k, op), l, p, sums, begin, end);
        return;
    }
    const qsim_run_bwd_fn run = qsim_backward_kernel(io->k, op);
    const int64_t         n   = qsim_layout_numel(l);
    for (int64_t g = begin; g < end; g++) {
        sums[2 * g] = sums[2 * g + 1] = 0.0;
        if (qsim_is_per_tensor(l)) {
            const int64_t   at   = g * QSIM_REDUCE_TILE;
            const int64_t   len  = n - at < QSIM_REDUCE_TILE ? n - at : QSIM_REDUCE_TILE;
            const qsim_grid grid = { p->scale[0], p->zero_point[0], p->qmin, p->qmax };
            qsim_io_run(io, run, at, (size_t) len, grid, sums + 2 * g);
        } else {
            qsim_reduce_group(io, run, l, p, sums + 2 * g, g);
        }
    }
}

void qsim_backward_reduce_f32(const qsim_qdq_kernels * k, qsim_op op, const qsim_layout * l,
                              const qsim_qparams * p, const float * x, const float * dy,
                              float * dx, double * sums, int64_t begin, int64_t end) {
    const qsim_reduce_io io = { k ? k : qsim_qdq_best(), 0, QSIM_HALF_F16, x, dy, dx, NULL };
    qsim_reduce(&io, op, l, p, sums, begin, end);
}

int64_t qsim_reduce_h16_scratch(const qsim_layout * l) {
    const int64_t n = qsim_layout_numel(l);
    if (qsim_is_last_axis(l)) {
        return 2 * (l->channels > QSIM_HALF_CHUNK ? l->channels : QSIM_HALF_CHUNK);
    }
    if (qsim_is_per_tensor(l)) {
        return 2 * (n < QSIM_REDUCE_TILE ? n : QSIM_REDUCE_TILE);
    }
    return l->stride_inner == 0 || l->inner == 1 ? 2 * l->block * l->inner : 0;
}

void qsim_backward_reduce_h16(const qsim_qdq_kernels * k, qsim_op op, qsim_half_kind kind,
                              const qsim_layout * l, const qsim_qparams * p, const uint16_t * x,
                              const uint16_t * dy, uint16_t * dx, double * sums, int64_t begin,
                              int64_t end, float * scratch) {
    const qsim_reduce_io io = { k ? k : qsim_qdq_best(), 1, kind, x, dy, dx, scratch };
    qsim_reduce(&io, op, l, p, sums, begin, end);
}

void qsim_reduce_finish(const qsim_layout * l, const double * sums, float * dscale,
                        float * dzero_point) {
    const int64_t groups = qsim_reduce_groups(l);
    if (qsim_is_per_tensor(l)) {
        double s = 0.0, z = 0.0;
        for (int64_t g = 0; g < groups; g++) {
            s += sums[2 * g];
            z += sums[2 * g + 1];
        }
        dscale[0]      = (float) s;
        dzero_point[0] = (float) z;
        return;
    }
    for (int64_t g = 0; g < groups; g++) {
        dscale[g]      = (float) sums[2 * g];
        dzero_point[g] = (float) sums[2 * g + 1];
    }
}
