"""A quantizer's qdq in ``torch.compile`` graphs (:func:`out_of_place_qdq`), and torch's form
(:func:`reciprocal_qdq`).

Compiled, the op ``qsim::quantize_dequantize`` is an opaque call that allocates its output on
every call (page faults whenever glibc has trimmed the heap, and a cold buffer otherwise), where
inductor would have planned a buffer (dead buffers' memory reused within the graph). So a call
becomes:

- per tensor on a CPU x of at most the quantizer's ``compiled_in_place_dims`` dims (3; 4 in a
  sim of a model without convolutions, whose 4-D tensors are attention's): the in-place op on a
  copy of x, which inductor writes into a buffer of its plan; the C kernel runs in place. With a
  straight-through gradient (x's alone) its traced node keeps x's bits, one bit a value, and its
  backward masks a copy of the gradient in place (``qsim::quantize_dequantize_bits_backward_``);
- per channel with a straight-through gradient on a CPU x of at most ``compiled_in_place_dims``
  dims (a Linear's weight): :class:`PlannedQdq`, y written by ``quantize_dequantize_out`` into an
  empty tensor and dx by ``quantize_dequantize_backward_`` into a copy of the gradient, both
  buffers of inductor's plan;
- without gradients, per channel, on larger x (conv-shaped: inductor may lay it out
  channels-last, which the in-place op cannot take; on a ResNet-style CNN this measured 1.13x
  against 1.19x for the copy and the kernel) or on a float32 x of at most the quantizer's
  ``compiled_pointwise_max_numel`` values (a decode step's activations, where the op's call
  through inductor's wrapper costs more than its values): :func:`pointwise_qdq`, torch
  pointwise operations that inductor fuses into the kernels around them (the weights are
  quantized again each forward); with gradients there, the op, which takes inductor's layout.
  A 16-bit activation takes the op there too: inductor holds a fused producer's value in
  float32, unrounded, so the pointwise form would not quantize the 16-bit value that the op
  and the eager quantizer see (a stored 16-bit weight is read rounded, and stays pointwise);
- the zero point without gradients: :meth:`~torchqsim.quantization.grid.Grid.zero_point`'s
  pointwise form.

Compiled eval forwards against the compiled FP32 model, ResNet / BERT / Llama-style: 1.14-1.32x /
1.23-1.31x / 1.19-1.42x with the op, 1.13x / 1.17x / 1.22x with these forms on x of up to 3 dims,
and BERT / Llama 1.14x / 1.16x with 4-D tensors in place too; compiled straight-through training
steps on the Llama 1.19x with the op, 1.12x with these (benchmarks/notes/issue17.md, sixteenth
and seventeenth sessions). The pointwise operations are the C kernel's (kernels/qdq/qdq_common.h:
``qsim_qdq1``) in the same float32 order, and inductor compiles them without reassociation or
contraction (its default ``-ffp-contract=off``, no unsafe math), so the results are the op's bit
for bit (tests/python/quantization/test_pointwise_qdq.py, against the eager quantizers). Where
the op would raise on a scale that is not finite and positive (an uninitialized quantizer's zero
scale), a run-time assertion fused into a kernel raises, naming the quantizer.

Example::

    >>> import torch
    >>> x, scale, zp = torch.tensor([0.3, -9.0, float("nan")]), torch.tensor(0.1), torch.tensor(3.0)
    >>> pointwise_qdq(x, scale, zp, 0, 255, None, "q")
    tensor([ 0.3000, -0.3000, -0.3000])
"""

import torch
from torch import Tensor

from ._tracing import compiled

__all__ = ["OP_DTYPES", "PlannedQdq", "out_of_place_qdq", "pointwise_applies", "pointwise_qdq",
           "reciprocal_qdq"]

#: The data dtypes the qdq ops take (fp32, and 16-bit floats read and written as they are).
OP_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
_QDQ, _QDQ_INPLACE = (torch.ops.qsim.quantize_dequantize.default,
                      torch.ops.qsim.quantize_dequantize_.default)
_QDQ_OUT, _QDQ_BACKWARD_INTO = (torch.ops.qsim.quantize_dequantize_out.default,
                                torch.ops.qsim.quantize_dequantize_backward_.default)


def _needs_grad(*tensors: Tensor) -> bool:
    """Whether autograd records a gradient for any of `tensors`."""
    return torch.is_grad_enabled() and any(t.requires_grad for t in tensors)


def pointwise_applies(x: Tensor, *qparams: Tensor) -> bool:
    """Whether ``torch.compile`` traces this call (not ``torch.export``) on floating `x` of a dtype
    the op takes, and no gradient reaches `x` or `qparams` (the tensors the qdq is computed from).

    Example::

        >>> pointwise_applies(torch.ones(2))      # eager
        False
    """
    return compiled() and x.dtype in OP_DTYPES and not _needs_grad(x, *qparams)


def _assert_scale(scale: Tensor, label: str) -> None:
    """The op's scale check as an assertion that inductor fuses into a kernel."""
    torch._assert_async(torch.all((scale > 0) & (scale < float("inf"))),
                        f"{label}: scale must be finite and > 0 (has it an encoding? calibrate it "
                        f"or call set_range())")


def pointwise_qdq(x: Tensor, scale: Tensor, zero_point: Tensor, qmin: int, qmax: int,
                  axis: int | None, label: str) -> Tensor:
    """``qsim::quantize_dequantize(x, scale, zero_point, qmin, qmax, axis)`` without a block size,
    as pointwise operations: ``rint(x / scale) + zp`` clamped to ``[qmin, qmax]`` (NaN to qmin),
    then ``(q - zp) * scale``, in float32; a 16-bit `x` is widened first and its result rounded
    back. `label` names the quantizer in the error.

    Raises:
        RuntimeError: (when the compiled kernel runs) a scale is not finite and > 0.
    """
    _assert_scale(scale, label)
    if axis is not None and scale.dim() == 1:
        shape = [1] * x.dim()
        shape[axis] = -1
        scale, zero_point = scale.reshape(shape), zero_point.reshape(shape)
    scale, zero_point = scale.float(), zero_point.float()
    pos = torch.round(x.float() / scale) + zero_point
    q = torch.where(pos > qmin, torch.clamp_max(pos, qmax), torch.full_like(pos, qmin))
    # q - zp is an integer of at most 17 bits; through int32 it is +0 where the kernel's is (its
    # `rint(x / s) + 0` is +0 for x / s in (-0.5, 0], and the compiler may drop a `+ 0`)
    return ((q - zero_point).to(torch.int32).to(torch.float32) * scale).to(x.dtype)


class PlannedQdq(torch.autograd.Function):
    """The straight-through ``quantize_dequantize(x, scale, zero_point, qmin, qmax, axis)`` of a
    compiled call into tensors of the graph: the forward writes y into ``empty_like(x)``
    (``quantize_dequantize_out``), the backward writes dx into a copy of the gradient laid out
    like x (``quantize_dequantize_backward_``, no scale or zero-point gradient), so inductor
    plans both buffers (warm memory reused within the graph) where the op and its
    ``quantize_dequantize_backward_data`` allocate fresh outputs. The same values and gradient,
    bit for bit (tests/python/quantization/test_pointwise_qdq.py). x is kept for the backward.

    Example::

        >>> x = torch.tensor([[0.26, 9.0]], requires_grad=True)
        >>> y = PlannedQdq.apply(x, torch.tensor([0.1]), torch.tensor([0.0]), -128, 127, 0)
        >>> y.sum().backward()
        >>> y.detach(), x.grad
        (tensor([[0.3000, 9.0000]]), tensor([[1., 1.]]))
    """

    @staticmethod
    def forward(x, scale, zero_point, qmin, qmax, axis):
        y = torch.empty_like(x)
        _QDQ_OUT(x, scale, zero_point, qmin, qmax, axis, None, y)
        return y

    @staticmethod
    def setup_context(ctx, inputs, output):
        x, scale, zero_point, ctx.qmin, ctx.qmax, ctx.axis = inputs
        ctx.save_for_backward(x, scale, zero_point)

    @staticmethod
    def backward(ctx, grad):
        x, scale, zero_point = ctx.saved_tensors
        dx = torch.empty_like(x).copy_(grad)
        _QDQ_BACKWARD_INTO(dx, x, scale, zero_point, ctx.qmin, ctx.qmax, ctx.axis, None, False)
        return dx, None, None, None, None, None


def out_of_place_qdq(x: Tensor, scale: Tensor, zero_point: Tensor, qmin: int, qmax: int,
                     axis: int | None, block: tuple | None, label,
                     in_place_dims: int = 3, pointwise_max_numel: int = 0,
                     stored: bool = False) -> Tensor:
    """A quantizer's qdq of `x` into a new tensor. Compiled (:func:`~._tracing.compiled`) without
    a block size, on a dtype of :data:`OP_DTYPES`: without gradients on a float32 x of at most
    `pointwise_max_numel` values, :func:`pointwise_qdq`; else per tensor on a CPU x of at most
    `in_place_dims` dims, the in-place op on a copy (see the module docstring), whose traced
    node keeps x's bits for the backward where x gets a straight-through gradient; per channel
    there with a straight-through gradient, :class:`PlannedQdq`. Other compiled calls without
    gradients: :func:`pointwise_qdq` on float32 x, and on 16-bit x that are `stored` (a
    parameter, never a value that a kernel of the graph computes). Elsewhere the op: fused into
    its producer's kernel, a 16-bit x would be quantized as inductor holds it there, in float32
    before its rounding to 16 bits, where the op (and the eager quantizer) sees the rounded value.
    `label()` names the quantizer (called only for the compiled forms' scale check).

    Example::

        >>> out_of_place_qdq(torch.tensor([0.26]), torch.tensor(0.1), torch.tensor(0.0), -128, 127,
        ...                  None, None, lambda: "q")
        tensor([0.3000])
    """
    if block is None and compiled() and x.dtype in OP_DTYPES:
        qparam_grads = _needs_grad(scale, zero_point)
        grads = qparam_grads or _needs_grad(x)
        if not grads and x.dtype == torch.float32 and x.numel() <= pointwise_max_numel:
            return pointwise_qdq(x, scale, zero_point, qmin, qmax, axis, label())
        planned = x.dim() <= in_place_dims and x.is_cpu and not qparam_grads
        if planned and axis is None:
            _assert_scale(scale, label())
            # with a gradient, contiguous (the traced node's bits are in element order)
            y = x.clone(memory_format=torch.contiguous_format if grads else torch.preserve_format)
            _QDQ_INPLACE(y, scale, zero_point, qmin, qmax)
            return y
        if planned and grads:
            _assert_scale(scale, label())
            return PlannedQdq.apply(x, scale, zero_point, qmin, qmax, axis)
        if not grads and (stored or x.dtype == torch.float32):
            return pointwise_qdq(x, scale, zero_point, qmin, qmax, axis, label())
    return _QDQ(x, scale, zero_point, qmin, qmax, axis, block)


def reciprocal_qdq(x: Tensor, scale: Tensor, zp: Tensor, axis, qmin: int, qmax: int) -> Tensor:
    """torch's fake-quantize (positions ``rint(x * (1 / scale)) + zp``), per tensor or per
    channel along `axis`: a quantizer's ``reciprocal_rounding``.

    Example::

        >>> reciprocal_qdq(torch.tensor([0.26]), torch.tensor(0.1), torch.tensor(0), None, 0, 255)
        tensor([0.3000])
    """
    zp = zp.to(torch.int32)
    if scale.dim() == 0:
        return torch.fake_quantize_per_tensor_affine(x, scale, zp, qmin, qmax)
    return torch.fake_quantize_per_channel_affine(x, scale, zp, axis, qmin, qmax)
