/*
 * qladd_loop.h (internal): the one loop body of qsim_qlinear_add (qsim/qladd.h), included by the
 * portable variant (runtime/qladd.c) and the AVX2 + FMA one (x86/qladd__avx2.c), where the
 * compiler turns fmaf and rintf into vfmadd and vroundps and vectorizes the loop. Both files
 * are compiled without FP contraction (-std=c11), so only the written fmaf calls fuse.
 */
#ifndef QSIM_QLADD_LOOP_H
#define QSIM_QLADD_LOOP_H

#include <math.h>

#include "qsim/qladd.h"

static inline void qsim_qladd_loop(const float * restrict a, const float * restrict b,
                                   float * restrict out, size_t begin, size_t end,
                                   const qsim_qladd_params * p) {
    const float sa = p->a_scale, za = p->a_zero, sb = p->b_scale, zb = p->b_zero;
    const float ra = p->ra, rb = p->rb, fixed = p->fixed;
    const float lo = p->lo, hi = p->hi, zc = p->c_zero, sc = p->c_scale;
    for (size_t i = begin; i < end; i++) {
        const float qa = rintf(a[i] / sa) + za, qb = rintf(b[i] / sb) + zb;
        const float k  = rintf(fmaf(qa, ra, fmaf(qb, rb, fixed)));
        out[i]         = ((k < lo ? lo : (k > hi ? hi : k)) - zc) * sc; /* vectorizes as blends */
    }
}

#endif /* QSIM_QLADD_LOOP_H */
