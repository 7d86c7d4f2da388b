"""What a quantizer keeps between plain eager calls: the op's qparams for each input shape
(:func:`eager_qparams`), and the in-place call of a no-grad forward built on them
(:func:`eval_into_input`), which takes the op's direct eager entry (``torchqsim._eager``).

Example::

    >>> import torch
    >>> from torchqsim.quantization import QuantizeDequantize
    >>> q = QuantizeDequantize((), 8, symmetric=False)
    >>> q.set_range(0.0, 2.55)
    >>> eager_qparams(q, (3,))[2:]
    (0, 255, None, None)
    >>> with torch.no_grad():
    ...     eval_into_input(q, torch.tensor([0.004, 1.0, 9.0]))
    tensor([0.0000, 1.0000, 2.5500])
"""

import torch
from torch import Tensor

from .. import _eager
from .pointwise_qdq import OP_DTYPES

__all__ = ["eager_qparams", "eval_into_input"]

_SHAPES_KEPT = 8  # input shapes whose qparams a quantizer keeps


def eager_qparams(q, x_shape) -> tuple:
    """``q._qparams(x_shape)`` in a plain eager call (:func:`~torchqsim.quantization._tracing.
    plain_eager`, which the caller checked): ``(scale, zero_point, qmin, qmax, axis,
    block_size)`` of the op for an input of `x_shape`, once `x_shape` and the encoding are
    checked (``q._checked_qparams``).

    When min/max get no gradient, they are computed once per input shape (a quantizer shared by
    tensors of a few shapes keeps each; at most ``_SHAPES_KEPT``) and reused until min, max or
    ``initialized`` changes (another tensor, or an in-place write: ``set_range``,
    ``load_state_dict``, an optimizer step; all bump the tensor's version counter), or the grid,
    shape or block size does: a call then costs a few attribute reads.
    """
    params = q._parameters
    lo, hi = params["min"], params["max"]
    if torch.is_grad_enabled() and (lo.requires_grad or hi.requires_grad):
        return q._checked_qparams(x_shape)
    init = q._buffers["initialized"]
    key = (lo._version, hi._version, init._version, lo.data_ptr(), hi.data_ptr(), q.grid,
           q.shape, q.block_size)
    cached = q.__dict__.get("_qparam_cache")
    if cached is None or cached[0] is not lo or cached[1] is not hi or \
            cached[2] is not init or cached[3] != key:
        cached = q._qparam_cache = (lo, hi, init, key, {})
    by_shape = cached[4]
    qparams = by_shape.get(x_shape)
    if qparams is None:
        if len(by_shape) >= _SHAPES_KEPT:
            by_shape.clear()
        qparams = by_shape[x_shape] = q._checked_qparams(x_shape)
    return qparams


def eval_into_input(q, x: Tensor) -> Tensor:
    """``q.forward_into_input(x)`` (the same bits, in `x`) for a
    :class:`~torchqsim.quantization.QuantizeDequantize` `q` that is not calibrating, in a plain
    eager call without gradients (the wrappers' call on a module's fresh output, whose caller
    checked all three). A per-tensor float CPU `x` goes to the in-place op through
    ``torchqsim._eager`` (bindings/eager_module.cpp: the dispatcher's call without torch.ops'
    argument boxing, a few microseconds a call inside a model's forward).
    """
    scale, zp, qmin, qmax, axis, block = eager_qparams(q, x.shape)
    if axis is None and block is None and not q.reciprocal_rounding and x.dtype in OP_DTYPES \
            and x.is_cpu:
        _eager.quantize_dequantize_(x, scale, zp, qmin, qmax)
        return x
    return q.forward_into_input(x)
