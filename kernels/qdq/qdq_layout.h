/*
 * qdq_layout.h (internal): the layout drivers of qsim/qdq.h with the data pointers at element
 * `begin` instead of element 0, for callers that hold only elements [begin, end) in a buffer
 * (the 16-bit drivers of qdq_half.c).
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

#endif /* QSIM_QDQ_LAYOUT_H */
