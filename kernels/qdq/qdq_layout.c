#include "qdq/qdq_common.h"
#include "qdq/qdq_layout.h"

qsim_layout qsim_layout_per_tensor(int64_t n) {
    qsim_layout l = { 1, n, 1, n > 0 ? n : 1, 0, 0, 0 };
    return l;
}

qsim_layout qsim_layout_per_channel(int64_t outer, int64_t channels, int64_t inner) {
    qsim_layout l = { outer, channels, inner, 1, 0, 1, 0 };
    return l;
}

qsim_layout qsim_layout_blockwise(int64_t outer, int64_t channels, int64_t inner, int64_t block) {
    qsim_layout l = { outer, channels, inner, block, (channels / block) * inner, inner, 1 };
    return l;
}

int64_t qsim_layout_numel(const qsim_layout * l) {
    return l->outer * l->channels * l->inner;
}

int qsim_is_per_tensor(const qsim_layout * l) {
    return l->stride_outer == 0 && l->stride_block == 0 && l->stride_inner == 0;
}

qsim_runs qsim_runs_of(const qsim_layout * l, const qsim_qparams * p, int64_t begin, int64_t end) {
    qsim_runs r = { l, p, begin, end, 0, 0, 0 };
    if (begin < end) {  /* (an empty layout has no extent to divide by) */
        r.o = begin / (l->inner * l->channels);
        r.c = (begin / l->inner) % l->channels;
        r.i = begin % l->inner;
    }
    return r;
}

int64_t qsim_runs_next(qsim_runs * r, qsim_grid * g) {
    const qsim_layout * l = r->l;
    if (r->at >= r->end) {
        return 0;
    }
    const int64_t cb  = l->block == 1 ? r->c : r->c / l->block;
    const int64_t idx = r->o * l->stride_outer + cb * l->stride_block + r->i * l->stride_inner;
    g->scale      = r->p->scale[idx];
    g->zero_point = r->p->zero_point[idx];
    g->qmin       = r->p->qmin;
    g->qmax       = r->p->qmax;
    int64_t len;
    if (qsim_is_per_tensor(l)) {
        len = r->end - r->at;
    } else if (l->stride_inner != 0 && l->inner > 1) {  /* each inner position its own grid */
        len = 1;
        r->i++;
        if (r->i == l->inner) {
            r->i = 0;
            r->c++;
        }
    } else {  /* the rest of this block of channels */
        const int64_t next = (cb + 1) * l->block;
        len  = (next - r->c) * l->inner - r->i;
        r->c = next;
        r->i = 0;
    }
    if (r->c == l->channels) {
        r->c = 0;
        r->o++;
    }
    len = len < r->end - r->at ? len : r->end - r->at;
    r->at += len;
    return len;
}

static qsim_run_fn qsim_forward_kernel(const qsim_qdq_kernels * k, qsim_op op) {
    switch (op) {
        case QSIM_OP_QUANTIZE:   return k->quantize;
        case QSIM_OP_DEQUANTIZE: return k->dequantize;
        case QSIM_OP_QDQ:        break;
    }
    return k->qdq;
}

qsim_run_bwd_fn qsim_backward_kernel(const qsim_qdq_kernels * k, qsim_op op) {
    switch (op) {
        case QSIM_OP_QUANTIZE:   return k->quantize_backward;
        case QSIM_OP_DEQUANTIZE: return k->dequantize_backward;
        case QSIM_OP_QDQ:        break;
    }
    return k->qdq_backward;
}

/* Elements [begin, end) as runs of constant qparams, one kernel call per run; x and y point at
 * element begin. */
static void qsim_forward_runs(qsim_run_fn run, const qsim_layout * l, const qsim_qparams * p,
                              const float * x, float * y, int64_t begin, int64_t end) {
    qsim_runs r = qsim_runs_of(l, p, begin, end);
    qsim_grid g;
    for (int64_t at = 0, n; (n = qsim_runs_next(&r, &g)) > 0; at += n) {
        run((size_t) n, x + at, y + at, g);
    }
}

static void qsim_backward_runs(qsim_run_bwd_fn run, const qsim_layout * l, const qsim_qparams * p,
                               const float * x, const float * dy, float * dx, int64_t begin,
                               int64_t end) {
    qsim_runs r = qsim_runs_of(l, p, begin, end);
    qsim_grid g;
    for (int64_t at = 0, n; (n = qsim_runs_next(&r, &g)) > 0; at += n) {
        run((size_t) n, x + at, dy + at, dx + at, g, NULL);
    }
}

/* Per-channel along the last axis in memory (inner == 1): neighbours have different qparams, so
 * runs would be one element long. Such a layout goes to the row kernels instead (qsim_rows: a
 * block of rows, one grid per column), which compute each element as its one-element run would,
 * bit for bit. */
int qsim_is_last_axis(const qsim_layout * l) {
    return l->inner == 1 && l->block == 1 && l->stride_block == 1 && l->stride_outer == 0;
}

int qsim_layout_has_runs(const qsim_layout * l) {
    return !qsim_is_last_axis(l);
}

static qsim_rows_fn qsim_rows_kernel(const qsim_qdq_kernels * k, qsim_op op) {
    switch (op) {
        case QSIM_OP_QUANTIZE:   return k->quantize_rows;
        case QSIM_OP_DEQUANTIZE: return k->dequantize_rows;
        case QSIM_OP_QDQ:        break;
    }
    return k->qdq_rows;
}

qsim_rows_bwd_fn qsim_rows_backward_kernel(const qsim_qdq_kernels * k, qsim_op op) {
    switch (op) {
        case QSIM_OP_QUANTIZE:   return k->quantize_rows_backward;
        case QSIM_OP_DEQUANTIZE: return k->dequantize_rows_backward;
        case QSIM_OP_QDQ:        break;
    }
    return k->qdq_rows_backward;
}

/* The next block of flat elements [begin, end) of a last-axis layout: the rest of a partial row,
 * or every whole row from begin on. It covers rows * n elements from begin. */
static qsim_rows qsim_next_rows(const qsim_layout * l, const qsim_qparams * p, int64_t begin,
                                int64_t end) {
    const int64_t ch    = l->channels, c = begin % ch;
    const int64_t whole = c == 0 ? (end - begin) / ch : 0;
    const int64_t n     = whole > 0 ? ch : (ch - c < end - begin ? ch - c : end - begin);
    const qsim_rows r   = { (size_t) (whole > 0 ? whole : 1), (size_t) n, (size_t) ch,
                            p->scale + c, p->zero_point + c, p->qmin, p->qmax };
    return r;
}

/* Rows shorter than QSIM_PACK / 2 floats: k = QSIM_PACK / n whole rows at a time as one row of
 * k * n columns, over k copies of the grids (stack buffers), so that short rows fill the vectors.
 * Each element keeps its column's grid and its arithmetic: the results are the same. */
#define QSIM_PACK 256

typedef struct qsim_packed {
    qsim_rows rows;     /* the packed block, over `scale` and `zero_point` */
    size_t    covered;  /* rows of the original block it covers */
    float     scale[QSIM_PACK], zero_point[QSIM_PACK];
} qsim_packed;

/* Packs the first rows of r (contiguous) into *pk; 0 when r is left as it is. */
static size_t qsim_pack(const qsim_rows * r, qsim_packed * pk) {
    const size_t k = QSIM_PACK / (r->n ? r->n : QSIM_PACK);
    if (k < 2 || r->ld != r->n || r->rows < k) {
        return 0;
    }
    for (size_t i = 0; i < k * r->n; i++) {
        pk->scale[i]      = r->scale[i % r->n];
        pk->zero_point[i] = r->zero_point[i % r->n];
    }
    const qsim_rows packed = { r->rows / k, k * r->n, k * r->n, pk->scale, pk->zero_point,
                               r->qmin, r->qmax };
    pk->rows    = packed;
    pk->covered = packed.rows * k;
    return pk->covered;
}

void qsim_forward_at(const qsim_qdq_kernels * k, qsim_op op, const qsim_layout * l,
                     const qsim_qparams * p, const float * x, float * y, int64_t begin,
                     int64_t end) {
    const int64_t first = begin;
    k = k ? k : qsim_qdq_best();
    if (!qsim_is_last_axis(l)) {
        qsim_forward_runs(qsim_forward_kernel(k, op), l, p, x, y, begin, end);
        return;
    }
    const qsim_rows_fn run = qsim_rows_kernel(k, op);
    while (begin < end) {
        qsim_rows   r = qsim_next_rows(l, p, begin, end);
        qsim_packed pk;
        if (qsim_pack(&r, &pk)) {
            run(&pk.rows, x + (begin - first), y + (begin - first));
            begin += (int64_t) (pk.covered * r.n);
            r.rows -= pk.covered;
        }
        run(&r, x + (begin - first), y + (begin - first));
        begin += (int64_t) (r.rows * r.n);
    }
}

void qsim_forward_f32(const qsim_qdq_kernels * k, qsim_op op, const qsim_layout * l,
                      const qsim_qparams * p, const float * x, float * y,
                      int64_t begin, int64_t end) {
    qsim_forward_at(k, op, l, p, x + begin, y + begin, begin, end);
}

void qsim_backward_at(const qsim_qdq_kernels * k, qsim_op op, const qsim_layout * l,
                      const qsim_qparams * p, const float * x, const float * dy, float * dx,
                      int64_t begin, int64_t end) {
    const int64_t first = begin;
    k = k ? k : qsim_qdq_best();
    if (!qsim_is_last_axis(l)) {
        qsim_backward_runs(qsim_backward_kernel(k, op), l, p, x, dy, dx, begin, end);
        return;
    }
    const qsim_rows_bwd_fn run = qsim_rows_backward_kernel(k, op);
    while (begin < end) {
        qsim_rows   r = qsim_next_rows(l, p, begin, end);
        qsim_packed pk;
        if (qsim_pack(&r, &pk)) {
            run(&pk.rows, x + (begin - first), dy + (begin - first), dx + (begin - first), NULL);
            begin += (int64_t) (pk.covered * r.n);
            r.rows -= pk.covered;
        }
        run(&r, x + (begin - first), dy + (begin - first), dx + (begin - first), NULL);
        begin += (int64_t) (r.rows * r.n);
    }
}

void qsim_backward_f32(const qsim_qdq_kernels * k, qsim_op op, const qsim_layout * l,
                       const qsim_qparams * p, const float * x, const float * dy, float * dx,
                       int64_t begin, int64_t end) {
    qsim_backward_at(k, op, l, p, x + begin, dy + begin, dx + begin, begin, end);
}
