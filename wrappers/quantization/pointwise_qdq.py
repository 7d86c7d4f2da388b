"""A quantizer's qdq as torch pointwise operations, for ``torch.compile`` graphs without gradients.

Compiled, a quantizer call with no gradient to compute (an evaluation or calibration forward
under ``torch.no_grad()``) needs neither the op's autograd formula nor its bits: as the
operations below, inductor fuses each quantizer into the kernel of the op that produced its
input and of the ops that read its output, where the op ``qsim::quantize_dequantize`` is an
opaque call that allocates its output (a compiled Llama-style decoder's eval forward 1.42x the
compiled FP32 forward with the ops, ~1.27x with these; benchmarks/notes/issue17.md).

The operations are the C kernel's (kernels/qdq/qdq_common.h: ``qsim_qdq1``) in the same
float32 order (and :meth:`~torchqsim.quantization.grid.Grid.zero_point` computes the zero point
the same way), and inductor compiles them without reassociation or
contraction (its default ``-ffp-contract=off``, no unsafe math), so the results are the op's
bit for bit (tests/python/quantization/test_pointwise_qdq.py, against the op and the eager
model). Where the op would raise on a scale that is not finite and positive (an uninitialized
quantizer's zero scale), a run-time assertion inside the fused kernel raises instead.

Example::

    >>> import torch
    >>> x, scale, zp = torch.tensor([0.3, -9.0, float("nan")]), torch.tensor(0.1), torch.tensor(3.0)
    >>> pointwise_qdq(x, scale, zp, 0, 255, None, "q")
    tensor([ 0.3000, -0.3000, -0.3000])
"""

import torch
from torch import Tensor

from ._tracing import compiled

__all__ = ["out_of_place_qdq", "pointwise_applies", "pointwise_qdq"]

_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
_QDQ = torch.ops.qsim.quantize_dequantize.default


def pointwise_applies(x: Tensor, *qparams: Tensor) -> bool:
    """Whether ``torch.compile`` traces this call (not ``torch.export``) on floating `x` of a dtype
    the op takes, and no gradient reaches `x` or `qparams` (the tensors the qdq is computed from).

    Example::

        >>> pointwise_applies(torch.ones(2))      # eager
        False
    """
    return compiled() and x.dtype in _DTYPES and not (
        torch.is_grad_enabled() and (x.requires_grad or any(t.requires_grad for t in qparams)))


def pointwise_qdq(x: Tensor, scale: Tensor, zero_point: Tensor, qmin: int, qmax: int,
                  axis: int | None, label: str) -> Tensor:
    """``qsim::quantize_dequantize(x, scale, zero_point, qmin, qmax, axis)`` without a block size,
    as pointwise operations: ``rint(x / scale) + zp`` clamped to ``[qmin, qmax]`` (NaN to qmin),
    then ``(q - zp) * scale``, in float32; a 16-bit `x` is widened first and its result rounded
    back. `label` names the quantizer in the error.

    Raises:
        RuntimeError: (when the compiled kernel runs) a scale is not finite and > 0.
    """
    torch._assert_async(torch.all((scale > 0) & (scale < float("inf"))),
                        f"{label}: scale must be finite and > 0 (has it an encoding? calibrate it "
                        f"or call set_range())")
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
    """A quantizer's qdq of `x` into a new tensor: :func:`pointwise_qdq` where
    :func:`pointwise_applies` and there is no block size, else the op. `label()` names the
    quantizer (called only for the pointwise form's error).

    Example::

        >>> out_of_place_qdq(torch.tensor([0.26]), torch.tensor(0.1), torch.tensor(0.0), -128, 127,
        ...                  None, None, lambda: "q")
        tensor([0.3000])
    """
    if block is None and pointwise_applies(x, scale, zero_point):
        return pointwise_qdq(x, scale, zero_point, qmin, qmax, axis, label())
    return _QDQ(x, scale, zero_point, qmin, qmax, axis, block)
