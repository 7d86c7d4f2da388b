"""A quantizer's qdq in ``torch.compile`` graphs without gradients: :func:`out_of_place_qdq`.

Compiled, a quantizer call with no gradient to compute (an evaluation forward under
``torch.no_grad()``) needs neither the op's autograd formula nor its bits, and the op
``qsim::quantize_dequantize`` there is an opaque call that allocates its output on every call
(page faults whenever glibc has trimmed the heap). So the call becomes:

- per tensor, x of up to 3 dims: the in-place op on ``x.clone()``: inductor writes the copy
  into a buffer of its memory plan (dead buffers' memory reused within the graph) and the C
  kernel runs in place;
- per channel, and x of 4 dims or more (conv-shaped: inductor may lay it out channels-last; on a
  ResNet-style CNN this measured 1.13x against 1.19x for the copy and the kernel):
  :func:`pointwise_qdq`, torch pointwise operations that inductor fuses into the kernels around
  them (the weights are quantized again each forward);
- the zero point, in both: :meth:`~torchqsim.quantization.grid.Grid.zero_point`'s pointwise form.

Compiled eval forwards against the compiled FP32 model, ResNet / BERT / Llama-style: 1.14-1.32x /
1.23-1.31x / 1.19-1.42x with the op (the spread is the page faults), 1.13x / 1.17x / 1.22x with
these (benchmarks/notes/issue17.md, sixteenth session). The pointwise operations are the C
kernel's (kernels/qdq/qdq_common.h: ``qsim_qdq1``) in the same float32 order, and inductor
compiles them without reassociation or contraction (its default ``-ffp-contract=off``, no
unsafe math), so the results are the op's bit for bit
(tests/python/quantization/test_pointwise_qdq.py, against the eager quantizers). Where the op
would raise on a scale that is not finite and positive (an uninitialized quantizer's zero
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

__all__ = ["OP_DTYPES", "out_of_place_qdq", "pointwise_applies", "pointwise_qdq"]

#: The data dtypes the qdq ops take (fp32, and 16-bit floats read and written as they are).
OP_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
_QDQ, _QDQ_INPLACE = (torch.ops.qsim.quantize_dequantize.default,
                      torch.ops.qsim.quantize_dequantize_.default)


def pointwise_applies(x: Tensor, *qparams: Tensor) -> bool:
    """Whether ``torch.compile`` traces this call (not ``torch.export``) on floating `x` of a dtype
    the op takes, and no gradient reaches `x` or `qparams` (the tensors the qdq is computed from).

    Example::

        >>> pointwise_applies(torch.ones(2))      # eager
        False
    """
    return compiled() and x.dtype in OP_DTYPES and not (
        torch.is_grad_enabled() and (x.requires_grad or any(t.requires_grad for t in qparams)))


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



def out_of_place_qdq(x: Tensor, scale: Tensor, zero_point: Tensor, qmin: int, qmax: int,
                     axis: int | None, block: tuple | None, label) -> Tensor:
    """A quantizer's qdq of `x` into a new tensor. Where :func:`pointwise_applies` and there is
    no block size: :func:`pointwise_qdq` per channel or for x of 4 dims or more, else the
    in-place op on ``x.clone()`` (see the module docstring); elsewhere the op. `label()` names
    the quantizer (called only for the compiled forms' scale check).

    Example::

        >>> out_of_place_qdq(torch.tensor([0.26]), torch.tensor(0.1), torch.tensor(0.0), -128, 127,
        ...                  None, None, lambda: "q")
        tensor([0.3000])
    """
    if block is None and pointwise_applies(x, scale, zero_point):
        if axis is not None or x.dim() > 3:
            return pointwise_qdq(x, scale, zero_point, qmin, qmax, axis, label())
        _assert_scale(scale, label())  # per tensor: the C kernel, in place on a planned copy
        y = x.clone()
        _QDQ_INPLACE(y, scale, zero_point, qmin, qmax)
        return y
    return _QDQ(x, scale, zero_point, qmin, qmax, axis, block)
