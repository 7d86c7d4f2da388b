"""Range learning in one autograd node: :func:`range_qdq`, which `QuantizeDequantize` calls first.

A quantizer whose min/max learn (range learning: they require grad) computes its scale and zero
point from them as torch expressions, ten autograd nodes per call (two scale nodes, the zero
point, reshapes, the qdq op). ``qsim::quantize_dequantize_range`` (bindings/range_learning.cpp)
is one node with the same forward and the same gradients for x, min and max, bit for bit
(tests/python/quantization/test_range_learning_op.py). It serves plain eager and compiled calls
on CPU with fp32 min/max and no blocks. Compiled, AOTAutograd traces the node into its ops
(``range_qparams`` and the qdq op; the qdq backward and ``range_grads``): four ops a quantizer,
where the expressions left inductor a few small kernels and the ``zero_point`` op each way
(a Llama-style decoder's compiled range-learning step 2-3 % faster, the same bits). On x of at
most the quantizer's ``compiled_in_place_dims`` dims (the tensors whose traced layout inductor
keeps: see :mod:`.pointwise_qdq`) the traced forward writes y with ``quantize_dequantize_out``
into an empty tensor and the backward writes dx into a copy of the gradient
(``planned_output``): buffers of inductor's memory plan, where the ops' own outputs were fresh
allocations (that step ~3 % faster again). Traced (fx, TorchScript, ONNX) and exported calls
keep the expressions.

Example::

    >>> from torchqsim.quantization import QuantizeDequantize
    >>> q = QuantizeDequantize((), 8, symmetric=False)
    >>> q.set_range(-1.0, 1.0)
    >>> y = q(torch.tensor([0.3, 2.0]))
    >>> "RangeQdqFunction" in y.grad_fn.name()
    True
"""

import torch
from torch import Tensor

from ._layout import qdq_layout
from ._tracing import compiled, plain_eager

__all__ = ["range_qdq"]

_QDQ_RANGE = torch.ops.qsim.quantize_dequantize_range.default


def range_qdq(q, x: Tensor) -> Tensor | None:
    """``q(x)`` through the one-node op when this call learns q's range there, else None (the
    caller runs its usual path).

    Raises:
        RuntimeError, ValueError: as ``q(x)`` (no encoding, a shape that does not fit).
    """
    if not torch.is_grad_enabled():
        return None
    params = q._parameters  # (an exporter may have swapped min/max for constants)
    lo, hi = params.get("min"), params.get("max")
    if lo is None or hi is None or not (lo.requires_grad or hi.requires_grad) or \
            q.block_size is not None or x.device.type != "cpu" or lo.device.type != "cpu" or \
            lo.dtype != torch.float32 or hi.dtype != torch.float32 or \
            "_constant_qparams" in q.__dict__ or not (plain_eager() or compiled()):
        return None
    q._check_ready(x.shape)
    axis, block, _ = qdq_layout(tuple(x.shape), q.shape)
    if block is not None:
        return None
    planned = compiled() and x.dim() <= q.compiled_in_place_dims
    return _QDQ_RANGE(x, lo, hi, q.bitwidth, int(q.grid.kind), axis, planned)
