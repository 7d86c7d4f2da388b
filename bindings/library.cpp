// The qsim operator library: every schema in one TORCH_LIBRARY block. Device implementations
// live in TORCH_LIBRARY_IMPL blocks (qdq_cpu.cpp, grid_cpu.cpp, ...), the autograd formulas in
// qdq_autograd.cpp and grid_autograd.cpp; fake (meta) registrations are in wrappers/ops.py.
// Importing torchqsim._C loads this library.
#include <Python.h>
#include <torch/library.h>

#include "qsim/qdq.h"

namespace {

PyObject * division_free(PyObject *, PyObject *) {
    return PyBool_FromLong(qsim_division_free());
}

PyObject * set_division_free(PyObject *, PyObject * on) {
    const int v = PyObject_IsTrue(on);
    if (v < 0) {
        return nullptr;
    }
    qsim_set_division_free(v);
    Py_RETURN_NONE;
}

PyMethodDef methods[] = {
    { "division_free", division_free, METH_NOARGS,
      "division_free() -> bool: whether the x86 qdq kernels take the division-free forms\n"
      "(qsim_division_free in kernels/include/qsim/qdq.h): the same bits either way; by default\n"
      "on Intel CPUs, unless QSIM_DIVISION_FREE=0 or 1 is set." },
    { "set_division_free", set_division_free, METH_O,
      "set_division_free(on): turn the division-free forms on or off for later kernel calls." },
    { nullptr, nullptr, 0, nullptr },
};

}  // namespace

extern "C" PyObject * PyInit__C(void) {
    static PyModuleDef def = { PyModuleDef_HEAD_INIT, "_C", "torchqsim operator library", -1,
                               methods, nullptr, nullptr, nullptr, nullptr };
    return PyModule_Create(&def);
}

TORCH_LIBRARY(qsim, m) {
    m.set_python_module("torchqsim.ops");
    const auto tags = std::vector<at::Tag>{ at::Tag::pt2_compliant_tag };
    // Element-wise ops (every output element depends on its own input element only) take any
    // dense layout as it is and give their outputs its strides (qdq_args.h), so inductor may hand
    // them the layout it chose (e.g. channels-last convolution outputs) instead of copying to
    // the strides of the eager trace and back: same bits, two copies fewer per call. The
    // range-learning backward ops are not element-wise (their qparam sums run in memory order)
    // and keep torch's default, the eager trace's stride order.
    const auto elementwise = std::vector<at::Tag>{ at::Tag::pt2_compliant_tag,
                                                   at::Tag::flexible_layout };
    m.def("quantize_dequantize(Tensor x, Tensor scale, Tensor zero_point, int qmin, int qmax, "
          "int? axis=None, int? block_size=None) -> Tensor", elementwise);
    // quantize_dequantize into a caller-owned `out` (x's shape and dtype; x itself for in place).
    // Not differentiable: torchqsim.functional refuses out= when a gradient would be needed.
    m.def("quantize_dequantize_out(Tensor x, Tensor scale, Tensor zero_point, int qmin, int qmax, "
          "int? axis, int? block_size, Tensor(a!) out) -> ()", tags);
    // quantize_dequantize_out unless `out` already holds that result for this x, scale and
    // zero point: the compiled weight cache (weight_cache.cpp).
    m.def("cached_quantize_dequantize_(Tensor(a!) out, Tensor x, Tensor scale, Tensor zero_point, "
          "int qmin, int qmax, int? axis, int? block_size) -> ()", tags);
    // quantize_dequantize per tensor into x itself, differentiable by the straight-through
    // estimator with one bit an element kept for the backward (qdq_inplace.cpp); relu=True: the
    // gradient of quantize_dequantize(relu(x)), the same values on a grid starting at 0.
    m.def("quantize_dequantize_(Tensor(a!) x, Tensor scale, Tensor zero_point, int qmin, "
          "int qmax, bool relu=False) -> ()", tags);
    // Its autograd formula's forward: the same write, returning x's clamped bits (uint8,
    // (numel + 7) / 8 bytes in x's memory order: qsim_run_mask_fn).
    m.def("quantize_dequantize_clamped_(Tensor(a!) x, Tensor scale, Tensor zero_point, int qmin, "
          "int qmax, bool relu=False) -> Tensor", tags);
    // The straight-through quantize_dequantize of compiled and exported graphs (qdq_autograd.cpp):
    // y and x's clamped bits, which the graph keeps for the backward instead of x. Per tensor, a
    // contiguous x (the bits in its element order); the backward gives the gradient with +0
    // where a bit is set, contiguous.
    m.def("quantize_dequantize_bits(Tensor x, Tensor scale, Tensor zero_point, int qmin, int qmax) "
          "-> (Tensor, Tensor)", tags);
    m.def("quantize_dequantize_bits_backward(Tensor grad, Tensor bits) -> Tensor", tags);
    // Into grad itself (contiguous): the backward of quantize_dequantize_'s traced node, on a
    // copy of the gradient that inductor plans.
    m.def("quantize_dequantize_bits_backward_(Tensor(a!) grad, Tensor bits) -> ()", tags);
    m.def("quantize(Tensor x, Tensor scale, Tensor zero_point, int qmin, int qmax, "
          "int? axis=None, int? block_size=None) -> Tensor", elementwise);
    m.def("dequantize(Tensor q, Tensor scale, Tensor zero_point, int? axis=None, "
          "int? block_size=None) -> Tensor", elementwise);
    m.def("quantize_dequantize_backward(Tensor grad, Tensor x, Tensor scale, Tensor zero_point, "
          "int qmin, int qmax, int? axis, int? block_size, bool qparam_grads) "
          "-> (Tensor, Tensor, Tensor)", tags);
    // quantize_dequantize_backward with dx written into `grad` itself; returns (dscale,
    // dzero_point). For a caller that owns grad and no longer needs it (qdq_autograd.cpp).
    m.def("quantize_dequantize_backward_(Tensor(a!) grad, Tensor x, Tensor scale, "
          "Tensor zero_point, int qmin, int qmax, int? axis, int? block_size, bool qparam_grads) "
          "-> (Tensor, Tensor)", tags);
    m.def("quantize_backward(Tensor grad, Tensor x, Tensor scale, Tensor zero_point, "
          "int qmin, int qmax, int? axis, int? block_size, bool qparam_grads) "
          "-> (Tensor, Tensor, Tensor)", tags);
    m.def("dequantize_backward(Tensor grad, Tensor q, Tensor scale, Tensor zero_point, "
          "int? axis, int? block_size, bool qparam_grads) -> (Tensor, Tensor, Tensor)", tags);
    // The data gradient alone (the `*_backward` ops' first output with qparam_grads=False, bit
    // for bit): what autograd calls when scale and zero point get no gradient (STE training).
    m.def("quantize_dequantize_backward_data(Tensor grad, Tensor x, Tensor scale, "
          "Tensor zero_point, int qmin, int qmax, int? axis, int? block_size) -> Tensor",
          elementwise);
    m.def("quantize_backward_data(Tensor grad, Tensor x, Tensor scale, Tensor zero_point, "
          "int qmin, int qmax, int? axis, int? block_size) -> Tensor", elementwise);
    m.def("dequantize_backward_data(Tensor grad, Tensor q, Tensor scale, Tensor zero_point, "
          "int? axis, int? block_size) -> Tensor", elementwise);
    m.def("float_quantize_dequantize(Tensor x, ScalarType dtype) -> Tensor", elementwise);
    // The zero point of quantizers holding min/max on the grid of (bitwidth, grid), from min and
    // their scale: the C rule qsim_zero_points_f32 (qsim/analyzers.h; grid_cpu.cpp,
    // grid_cuda.cpp, autograd in grid_autograd.cpp). `grid` is a qsim_grid_kind value.
    m.def("zero_point(Tensor min, Tensor scale, int bitwidth, int grid) -> Tensor", tags);
    // Range learning in one autograd node (range_learning.cpp): the grid parameters of a held
    // fp32 range (qsim_range_qparams_f32), the range's gradients from theirs
    // (qsim_range_grads_f32), and the qdq op on a range, differentiable in x, min and max;
    // planned_output matters only when traced (range_learning.cpp).
    m.def("range_qparams(Tensor min, Tensor max, int bitwidth, int grid) -> (Tensor, Tensor)", tags);
    m.def("range_grads(Tensor min, Tensor max, Tensor dscale, Tensor dzero_point, int bitwidth, "
          "int grid) -> (Tensor, Tensor)", tags);
    m.def("quantize_dequantize_range(Tensor x, Tensor min, Tensor max, int bitwidth, int grid, "
          "int? axis=None, bool planned_output=False) -> Tensor", tags);
    // The range aimet-torch holds after min/max calibration on an asymmetric grid of `steps` steps
    // (qsim_held_range_f32), and the first encoding without data (-1: none), as 0-dim int64.
    m.def("held_range(Tensor min, Tensor max, int steps, float? fixed_min=None) "
          "-> (Tensor, Tensor, Tensor)", tags);
    // Narrow float formats (float_formats.h, qsim/minifloat.h): any minifloat with a scale, and
    // the OCP MX / NVFP4 block-scaled formats along one axis; fake implementations in
    // wrappers/_float_ops.py.
    m.set_python_module("torchqsim._float_ops");
    m.def("minifloat_quantize_dequantize(Tensor x, Tensor scale, int exponent_bits, "
          "int mantissa_bits, str kind, bool saturate, int? axis=None, int? block_size=None) "
          "-> Tensor", tags);
    m.def("block_float_quantize_dequantize(Tensor x, str fmt, int axis=-1, "
          "Tensor? tensor_scale=None) -> Tensor", tags);
    m.set_python_module("torchqsim.ops");
    // Calibration (stats_cpu.cpp, stats_cuda.cpp): statistics, and encodings (scale, zero_point, min, max) from
    // them; their fake implementations are in wrappers/_stats_ops.py. `grid` is a qsim_grid_kind
    // value (kernels/include/qsim/analyzers.h; Python: torchqsim.quantization.grid.GridKind).
    m.set_python_module("torchqsim._stats_ops");
    m.def("minmax(Tensor x, int? axis=None) -> (Tensor, Tensor, Tensor)", tags);
    m.def("minmax_fold(Tensor x, Tensor(a!) min, Tensor(b!) max, Tensor(c!) nonfinite, "
          "int? axis=None) -> ()", tags);
    m.def("histogram(Tensor x, Tensor range, int bins, int? axis=None) "
          "-> (Tensor, Tensor, Tensor, Tensor)", tags);
    m.def("histogram_grow(Tensor counts, Tensor range, Tensor min, Tensor max) -> (Tensor, Tensor)", tags);
    m.def("encodings_min_max(Tensor min, Tensor max, int bitwidth, int grid) "
          "-> (Tensor, Tensor, Tensor, Tensor)", tags);
    m.def("encodings_tf_enhanced(Tensor counts, Tensor range, Tensor min, Tensor max, int bitwidth, "
          "int grid, float gamma=3.0, int asym_delta_candidates=17, int sym_delta_candidates=101, "
          "int offset_candidates=21) -> (Tensor, Tensor, Tensor, Tensor)", tags);
    m.def("encodings_percentile(Tensor counts, Tensor range, Tensor min, Tensor max, int bitwidth, "
          "int grid, float percentile) -> (Tensor, Tensor, Tensor, Tensor)", tags);
    m.def("encodings_mse(Tensor counts, Tensor range, Tensor min, Tensor max, int bitwidth, "
          "int grid, int num_candidates=100) -> (Tensor, Tensor, Tensor, Tensor)", tags);
    // aimet-torch 2.42's tf_enhanced analyzer (aimet_tfe_cpu.cpp; qsim/aimet_tfe.h): 512-bin
    // histograms as torch.histc makes them, the first batch and the merge of later ones, and the
    // candidate search.
    m.def("tfe_histogram(Tensor x, Tensor lo, Tensor hi) -> Tensor", tags);
    m.def("tfe_search(Tensor counts, Tensor edges, Tensor ranges, int steps, bool symmetric, "
          "Tensor offsets, int lanes) -> (Tensor, Tensor)", tags);
    m.def("tfe_first(Tensor x, Tensor lo, Tensor hi, Tensor(a!) counts, Tensor(b!) edges, "
          "Tensor(c!) ranges, Tensor(d!) limits) -> Tensor", tags);
    m.def("tfe_merge(Tensor x, Tensor lo, Tensor hi, Tensor(a!) counts, Tensor(b!) edges, "
          "Tensor(c!) ranges, Tensor limits) -> Tensor", tags);
    // One batch of the analyzer (aimet_tfe_batch.cpp): minmax, its fold into the running
    // statistics, tfe_first or tfe_merge, the batch counted unless a row was refused;
    // -> (done, lows, highs, refused).
    m.def("tfe_batch(Tensor x, int? axis, Tensor(a!) min, Tensor(b!) max, Tensor(c!) nonfinite, "
          "Tensor(d!) counts, Tensor(e!) edges, Tensor(f!) ranges, Tensor(g!) limits, "
          "Tensor(h!) batches) -> (Tensor, Tensor, Tensor, Tensor)", tags);
    // The onnxruntime target mode (satmm_cpu.cpp; fake in wrappers/_runtime_ops.py): uint8 x int8
    // product with MLAS's int16 pair saturation, (R, K) x (N, K) -> (R, N) int32.
    m.set_python_module("torchqsim._runtime_ops");
    m.def("u8s8_pair_saturated_matmul(Tensor a, Tensor w) -> Tensor", tags);
    // onnxruntime's 8-bit MatMulNBits with int8 compute (matmulnbits_cpu.cpp): (R, K) float32 x
    // (N, K) uint8 with (N, blocks) scales and zero points, optional bias -> (R, N) float32.
    m.def("matmulnbits_q8(Tensor a, Tensor b, Tensor scale, Tensor zp, Tensor? bias) -> Tensor", tags);
    // onnxruntime's QLinearAdd of same-shape dequantized tensors, MLAS's AVX2 + FMA arithmetic
    // (qladd_cpu.cpp): params a_scale, a_zero, b_scale, b_zero, ra, rb, fixed, lo, hi, c_zero, c_scale.
    m.def("qlinear_add_dq(Tensor a, Tensor b, float[] params) -> Tensor", tags);
    // MLAS's requantization to the output's dequantized values (requant_cpu.cpp):
    // clamp(rint(acc * multiplier), lo, hi) * y_scale, multiplier per channel_dim or shared.
    m.def("requantize_dq(Tensor acc, Tensor multiplier, int channel_dim, float lo, float hi, "
          "float y_scale) -> Tensor", tags);
    // onnxruntime's CPU float LayerNormalization, Softmax, Gelu and activations (kind 0 sigmoid,
    // 1 silu, 2 tanh) bit for bit (ortfloat_cpu.cpp): (R, D) rows over the last axis for the first
    // two, element-wise for the others.
    m.def("ort_layer_norm(Tensor x, Tensor gamma, Tensor? beta, float eps) -> Tensor", tags);
    m.def("ort_softmax(Tensor x) -> Tensor", tags);
    m.def("ort_gelu(Tensor x) -> Tensor", tags);
    m.def("ort_activation(Tensor x, int kind) -> Tensor", tags);
    // onnxruntime's ReduceMean of each row of x (R, n) -> (R,) (Eigen's packet order per row).
    m.def("ort_reduce_mean(Tensor x) -> Tensor", tags);
    // MLAS's SGEMM arithmetic of a float MatMul: (B, M, K) x (B, K, N) -> (B, M, N).
    m.def("ort_matmul(Tensor a, Tensor b) -> Tensor", tags);
    // onnxruntime's CPU float Gemm (transB = 1) and Conv in MLAS's fp32 accumulation order
    // (ortconv_cpu.cpp): x (M, K), w (N, K) -> (M, N); x (B, C, H, W), w (O, C / g, kh, kw).
    m.def("ort_gemm(Tensor x, Tensor w, Tensor? bias) -> Tensor", tags);
    m.def("ort_conv2d(Tensor x, Tensor w, Tensor? bias, int[] stride, int[] padding, "
          "int[] dilation, int groups) -> Tensor", tags);
    m.set_python_module("torchqsim.ops");  // back to the default for any later definitions
}
