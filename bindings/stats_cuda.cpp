// CUDA implementations of the statistics ops minmax and histogram (built only when the installed
// torch has CUDA, see setup.py): the CPU binding's argument checks (stats_args.h), then the
// kernels of qsim/stats_cuda.h on the current stream of x's device. Results equal the CPU's bit
// for bit. `range` must be on x's device; histogram copies it to the host to check it and to
// compute each channel's bins (qsim_bins_of), so each histogram call synchronises once.
// The ops that turn statistics into encodings (encodings_*, histogram_grow) read a few values per
// channel and search on the host: on CUDA tensors they run the CPU kernels on host copies and
// return their results on the device of the inputs (run_on_host).
#include <ATen/core/Tensor.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/core/stack.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/util/Exception.h>
#include <torch/library.h>

#include <cstring>
#include <tuple>

#include "cuda_launch.h"
#include "qsim/stats_cuda.h"
#include "stats_args.h"

namespace qsim {
namespace {

MinMax minmax_cuda(const at::Tensor & x_in, std::optional<int64_t> axis) {
    const at::Tensor           x = check_stats_data("minmax", x_in, axis, c10::DeviceType::CUDA);
    const c10::cuda::CUDAGuard guard(x.device());
    const qsim_channel_view    v = channel_view("minmax", x, axis);
    MinMax                     m = empty_minmax(stat_shape(v, axis), x.options());
    check_launch(qsim_cuda_minmax_f32(&v, x.data_ptr<float>(), std::get<0>(m).data_ptr<float>(),
                                      std::get<1>(m).data_ptr<float>(),
                                      std::get<2>(m).data_ptr<int64_t>(), current_stream(x)));
    return m;
}

// The bins of each channel of `range` (checked, on the CPU) for the kernels, on `device`:
// qsim_bins_of, or count 0 for a channel without a range.
at::Tensor channel_bins(const at::Tensor & range, int64_t bins, const at::Device & device) {
    static_assert(sizeof(qsim_bins) == 3 * sizeof(int32_t), "qsim_bins is three 32-bit fields");
    const int64_t channels = range.numel() / 2;
    at::Tensor    out      = at::empty({ channels, 3 }, range.options().dtype(at::kInt));
    const auto *  rp       = reinterpret_cast<const qsim_hist_range *>(range.data_ptr<double>());
    for (int64_t c = 0; c < channels; c++) {
        const qsim_bins b = rp[c].hi > rp[c].lo ? qsim_bins_of(rp[c], bins) : qsim_bins{ 0, 0, 0 };
        std::memcpy(out.data_ptr<int32_t>() + 3 * c, &b, sizeof b);
    }
    return out.to(device);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> histogram_cuda(
    const at::Tensor & x_in, const at::Tensor & range_in, int64_t bins, std::optional<int64_t> axis) {
    const char * op = "histogram";
    check_bins(op, bins);
    const at::Tensor           x = check_stats_data(op, x_in, axis, c10::DeviceType::CUDA);
    const c10::cuda::CUDAGuard guard(x.device());
    const qsim_channel_view    v  = channel_view(op, x, axis);
    auto                       sh = stat_shape(v, axis);
    TORCH_CHECK_VALUE(range_in.device() == x.device(), op, ": range must be on x's device (",
                      x.device(), "), got ", range_in.device());
    const at::Tensor range   = check_range(op, range_in.cpu(), sh);
    const at::Tensor qbins   = channel_bins(range, bins, x.device());
    MinMax           m       = empty_minmax(sh, x.options());
    sh.push_back(bins);
    at::Tensor counts = at::zeros(sh, x.options().dtype(at::kLong));
    check_launch(qsim_cuda_histogram_f32(
        &v, x.data_ptr<float>(), reinterpret_cast<const qsim_bins *>(qbins.data_ptr<int32_t>()),
        bins, counts.data_ptr<int64_t>(), std::get<0>(m).data_ptr<float>(),
        std::get<1>(m).data_ptr<float>(), std::get<2>(m).data_ptr<int64_t>(), current_stream(x)));
    return { counts, std::get<0>(m), std::get<1>(m), std::get<2>(m) };
}

// Boxed kernel: every tensor argument copied to the host, the op called again (the CPU kernel),
// every tensor result copied back to the first CUDA argument's device.
void run_on_host(const c10::OperatorHandle & op, torch::jit::Stack * stack) {
    const size_t              args = op.schema().arguments().size();
    std::optional<c10::Device> device;
    for (size_t i = stack->size() - args; i < stack->size(); i++) {
        c10::IValue & v = (*stack)[i];
        if (v.isTensor() && v.toTensor().is_cuda()) {
            device = device.value_or(v.toTensor().device());
            v      = v.toTensor().cpu();
        }
    }
    op.callBoxed(stack);
    const size_t outs = op.schema().returns().size();
    for (size_t i = stack->size() - outs; device && i < stack->size(); i++) {
        c10::IValue & v = (*stack)[i];
        if (v.isTensor()) {
            v = v.toTensor().to(*device);
        }
    }
}

}  // namespace

TORCH_LIBRARY_IMPL(qsim, CUDA, m) {
    m.impl("minmax", &minmax_cuda);
    m.impl("histogram", &histogram_cuda);
    for (const char * name : { "histogram_grow", "encodings_min_max", "encodings_tf_enhanced",
                               "encodings_percentile", "encodings_mse" }) {
        m.impl(name, torch::CppFunction::makeFromBoxedFunction<&run_on_host>());
    }
}

}  // namespace qsim
