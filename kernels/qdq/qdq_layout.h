/*
 * qdq_layout.h (internal): the layout drivers of qsim/qdq.h with the data pointers at element
 * `begin` instead of element 0, for callers that hold only elements [begin, end) in a buffer
 * (the 16-bit drivers of qdq_half.c), and the layout predicates and kernel choices that the
 * reduction drivers (qdq_reduce.c) share with them.
 */
#ifndef QSIM_QDQ_LAYOUT_H
#define QSIM_QDQ_LAYOUT_H

#include "qsim/qdq.h"

/* qsim_forward_f32 where x[0] and y[0] are flat element `begin`. */
void qsim_forward_at(const qsim_qdq_kernels * k, qsim_op op, const qsim_layout * l,
                     const qsim_qparams * p, const float * x, float * y, int64_t begin,
                     int64_t end);

/* qsim_backward_f32 where x[0], dy[0] and dx[0] are flat element `begin`. */
void qsim_backward_at(const qsim_qdq_kernels * k, qsim_op op, const qsim_layout * l,
                      const qsim_qparams * p, const float * x, const float * dy, float * dx,
                      int64_t begin, int64_t end);

/* Whether l comes as runs of elements sharing their qparams: every layout but per-channel along
 * the last axis (whose neighbours differ; the row kernels take it). */
int qsim_layout_has_runs(const qsim_layout * l);

/* A walk over flat elements [at, end) of l as runs of elements sharing their qparams; o, c, i:
 * the outer, channel and inner position of `at`. Locating the start takes divisions, each next
 * run none. The caller owns it (a value: nothing to free); l and p must outlive it. */
typedef struct qsim_runs {
    const qsim_layout *  l;
    const qsim_qparams * p;
    int64_t              at, end, o, c, i;
} qsim_runs;

qsim_runs qsim_runs_of(const qsim_layout * l, const qsim_qparams * p, int64_t begin, int64_t end);

/* The next run's qparams into *g and its length (up to end); 0 when the walk is done. */
int64_t qsim_runs_next(qsim_runs * r, qsim_grid * g);

/* One qparam entry for the whole tensor. */
int qsim_is_per_tensor(const qsim_layout * l);

/* Per-channel along the last axis in memory: the row kernels (qsim_rows) take it. */
int qsim_is_last_axis(const qsim_layout * l);

/* The run and row backward kernels of `op` in k. */
qsim_run_bwd_fn  qsim_backward_kernel(const qsim_qdq_kernels * k, qsim_op op);
qsim_rows_bwd_fn qsim_rows_backward_kernel(const qsim_qdq_kernels * k, qsim_op op);

#endif /* QSIM_QDQ_LAYOUT_H */
