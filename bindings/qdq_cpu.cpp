// CPU implementations of the qdq ops: the entry points of qdq_entry_points.h (argument checks,
// outputs) with a runner that calls the C kernels on torch's thread pool. fp16/bf16 data is read
// and written in its dtype, widened to fp32 a cache-sized chunk at a time (qsim_forward_h16,
// qsim_backward_reduce_h16 for range-learning gradients).
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <algorithm>

#include "qdq_entry_points.h"

namespace qsim {
namespace {

// Elements per task. Forward moves 8 bytes an element: 64K elements (512 KiB, about 40 us on one
// core) is well above the cost of waking a thread, and anything smaller stays on the caller's
// thread. Results never depend on the split: the forward is element-wise and the reductions have
// fixed groups (qsim_reduce_groups).
constexpr int64_t kGrain = 1 << 16;

// The CPU runner of QdqEntryPoints: the C kernels on torch's thread pool.
struct CpuRunner {
    static constexpr c10::DeviceType kDevice   = c10::DeviceType::CPU;
    static constexpr bool            kHalfData   = true;
    static constexpr bool            kHalfReduce = true;

    static void forward(qsim_op op, const QdqArgs & a, at::Tensor & y) {
        const auto p = a.qparams();
        if (a.x.scalar_type() != at::kFloat) {
            const qsim_half_kind kind = half_kind(a.x);
            const uint16_t *     xp   = half_bits<const uint16_t>(a.x);
            uint16_t *           yp   = half_bits<uint16_t>(y);
            at::parallel_for(0, a.x.numel(), kGrain, [&](int64_t b, int64_t e) {
                qsim_forward_h16(nullptr, op, kind, &a.layout, &p, xp, yp, b, e);
            });
            return;
        }
        const float * xp = a.x.data_ptr<float>();
        float *       yp = y.data_ptr<float>();
        at::parallel_for(0, a.x.numel(), kGrain, [&](int64_t b, int64_t e) {
            qsim_forward_f32(nullptr, op, &a.layout, &p, xp, yp, b, e);
        });
    }

    static void backward(qsim_op op, const QdqArgs & a, const at::Tensor & dy, at::Tensor & dx,
                         at::Tensor & ds, at::Tensor & dzp, bool qparam_grads) {
        const auto p = a.qparams();
        const bool half = a.x.scalar_type() != at::kFloat;
        if (qparam_grads) {
            reduce(op, a, dy, dx, ds, dzp, half);
        } else if (half) {
            const qsim_half_kind kind = half_kind(a.x);
            const uint16_t *     xp = half_bits<const uint16_t>(a.x), * dyp = half_bits<const uint16_t>(dy);
            uint16_t *           dxp = half_bits<uint16_t>(dx);
            at::parallel_for(0, a.x.numel(), kGrain, [&](int64_t b, int64_t e) {
                qsim_backward_h16(nullptr, op, kind, &a.layout, &p, xp, dyp, dxp, b, e);
            });
        } else {
            const float * xp  = a.x.data_ptr<float>();
            const float * dyp = dy.data_ptr<float>();
            float *       dxp = dx.data_ptr<float>();
            at::parallel_for(0, a.x.numel(), kGrain, [&](int64_t b, int64_t e) {
                qsim_backward_f32(nullptr, op, &a.layout, &p, xp, dyp, dxp, b, e);
            });
        }
    }

    // The backward with range-learning gradients. Each group's sums land in a fixed slot and
    // combine in order: thread-count independent. 16-bit data gets a scratch buffer per task.
    static void reduce(qsim_op op, const QdqArgs & a, const at::Tensor & dy, at::Tensor & dx,
                       at::Tensor & ds, at::Tensor & dzp, bool half) {
        const auto    p         = a.qparams();
        const int64_t groups    = qsim_reduce_groups(&a.layout);
        const int64_t per_group = std::max<int64_t>(1, a.x.numel() / std::max<int64_t>(1, groups));
        at::Tensor    sums      = at::empty({ 2 * groups }, a.x.options().dtype(at::kDouble));
        double *      sp        = sums.data_ptr<double>();
        at::parallel_for(0, groups, std::max<int64_t>(1, kGrain / per_group), [&](int64_t b, int64_t e) {
            if (!half) {
                qsim_backward_reduce_f32(nullptr, op, &a.layout, &p, a.x.data_ptr<float>(),
                                         dy.data_ptr<float>(), dx.data_ptr<float>(), sp, b, e);
                return;
            }
            at::Tensor scratch = at::empty({ qsim_reduce_h16_scratch(&a.layout) }, a.x.options().dtype(at::kFloat));
            qsim_backward_reduce_h16(nullptr, op, half_kind(a.x), &a.layout, &p,
                                     half_bits<const uint16_t>(a.x), half_bits<const uint16_t>(dy),
                                     half_bits<uint16_t>(dx), sp, b, e, scratch.data_ptr<float>());
        });
        qsim_reduce_finish(&a.layout, sp, ds.data_ptr<float>(), dzp.data_ptr<float>());
    }

    static void float_cast(at::ScalarType dtype, const at::Tensor & x, at::Tensor & y) {
        const qsim_cast_fn cast = dtype == at::kHalf ? qsim_qdq_best()->cast_f16 : qsim_qdq_best()->cast_bf16;
        const float *      xp   = x.data_ptr<float>();
        float *            yp   = y.data_ptr<float>();
        at::parallel_for(0, x.numel(), kGrain, [&](int64_t b, int64_t e) {
            cast(static_cast<size_t>(e - b), xp + b, yp + b);
        });
    }
};

}  // namespace

TORCH_LIBRARY_IMPL(qsim, CPU, m) {
    register_qdq_ops<CpuRunner>(m);
}

}  // namespace qsim
