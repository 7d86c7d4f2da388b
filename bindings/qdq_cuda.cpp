// CUDA implementations of the qdq ops (built only when the installed torch has CUDA, see
// setup.py): the entry points of qdq_entry_points.h (argument checks as on the CPU, outputs) with
// a runner that enqueues the kernels of qsim/qdq_cuda.h on the current stream of the data's
// device. fp16/bf16 data is read and written in its dtype (qsim_cuda_forward_h16 / _backward_h16),
// except for range-learning gradients, which are computed on fp32 copies, as on the CPU. Checking
// scale and zero_point values copies them to the host, so each call synchronises once.
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "cuda_launch.h"
#include "qdq_entry_points.h"
#include "qsim/qdq_cuda.h"

namespace qsim {
namespace {

// The CUDA runner of QdqEntryPoints: enqueues the kernels on the current stream of a.x's device.
struct CudaRunner {
    static constexpr c10::DeviceType kDevice   = c10::DeviceType::CUDA;
    static constexpr bool            kHalfData   = true;
    static constexpr bool            kHalfReduce = false;  // fp32 copies: qsim_cuda_backward_reduce_f32

    static void forward(qsim_op op, const QdqArgs & a, at::Tensor & out) {
        const c10::cuda::CUDAGuard guard(a.x.device());
        const qsim_qparams         p = a.qparams();
        if (a.x.scalar_type() != at::kFloat) {
            check_launch(qsim_cuda_forward_h16(op, half_kind(a.x), &a.layout, &p,
                                               half_bits<const uint16_t>(a.x),
                                               half_bits<uint16_t>(out), a.x.numel(),
                                               current_stream(a.x)));
            return;
        }
        check_launch(qsim_cuda_forward_f32(op, &a.layout, &p, a.x.data_ptr<float>(),
                                           out.data_ptr<float>(), a.x.numel(),
                                           current_stream(a.x)));
    }

    static void backward(qsim_op op, const QdqArgs & a, const at::Tensor & dy, at::Tensor & dx,
                         at::Tensor & ds, at::Tensor & dzp, bool qparam_grads) {
        const c10::cuda::CUDAGuard guard(a.x.device());
        const qsim_qparams         p = a.qparams();
        void * const               s = current_stream(a.x);
        if (a.x.scalar_type() != at::kFloat) {  // kept only without qparam_grads
            check_launch(qsim_cuda_backward_h16(op, half_kind(a.x), &a.layout, &p,
                                                half_bits<const uint16_t>(a.x),
                                                half_bits<const uint16_t>(dy),
                                                half_bits<uint16_t>(dx), a.x.numel(), s));
            return;
        }
        if (!qparam_grads) {
            check_launch(qsim_cuda_backward_f32(op, &a.layout, &p, a.x.data_ptr<float>(),
                                                dy.data_ptr<float>(), dx.data_ptr<float>(),
                                                a.x.numel(), s));
            return;
        }
        at::Tensor work = at::empty({ qsim_cuda_reduce_workspace(&a.layout) },
                                    a.x.options().dtype(at::kDouble));
        check_launch(qsim_cuda_backward_reduce_f32(
            op, &a.layout, &p, a.x.data_ptr<float>(), dy.data_ptr<float>(), dx.data_ptr<float>(),
            work.data_ptr<double>(), ds.data_ptr<float>(), dzp.data_ptr<float>(), a.x.numel(), s));
    }

    static void float_cast(at::ScalarType dtype, const at::Tensor & x, at::Tensor & y) {
        const c10::cuda::CUDAGuard guard(x.device());
        const auto cast = dtype == at::kHalf ? qsim_cuda_cast_f16_f32 : qsim_cuda_cast_bf16_f32;
        check_launch(cast(x.data_ptr<float>(), y.data_ptr<float>(), x.numel(), current_stream(x)));
    }
};

}  // namespace

TORCH_LIBRARY_IMPL(qsim, CUDA, m) {
    register_qdq_ops<CudaRunner>(m);
}

}  // namespace qsim
