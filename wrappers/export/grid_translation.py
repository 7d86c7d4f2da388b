"""ONNX translation of ``qsim::zero_point``, the C zero-point rule of a quantizer that holds
min/max (:meth:`torchqsim.quantization.grid.Grid.zero_point`), in standard ONNX ops.

An exported quantizer computes its zero point from its ``min`` and ``max`` initializers, so the
exporter's optimizer folds these nodes into one constant zero point: the same fp32 arithmetic as
the C rule (IEEE division, Round ties to even), hence the same integers.

- asymmetric: ``Clip(Sub(qmin, Round(Div(min, scale))), qmin, qmax)``;
- unsigned symmetric: ``Where(Less(min, 0), 2^(b-1), 0)``;
- symmetric, strict symmetric: zeros of min's shape.

Example::

    >>> import torch, torchqsim
    >>> from torchqsim.export import QDQ_TRANSLATION_TABLE
    >>> from torchqsim.quantization.grid import Grid, GridKind
    >>> class Zp(torch.nn.Module):
    ...     def forward(self, lo, scale):
    ...         return Grid.of(8, GridKind.ASYMMETRIC).zero_point(lo, scale)
    >>> program = torch.onnx.export(Zp(), (torch.randn(3), torch.rand(3)), dynamo=True,
    ...                             opset_version=21, verbose=False,
    ...                             custom_translation_table=QDQ_TRANSLATION_TABLE)
    >>> [n.op_type for n in program.model_proto.graph.node]
    ['Div', 'Round', 'Sub', 'Clip']
"""

from onnxscript import opset21 as op

from .. import _io
from ..quantization.grid import GridKind

__all__ = ["zero_point"]


def _constant(value: float, like):
    return op.CastLike(op.Constant(value_float=float(value)), like)


def zero_point(min, scale, bitwidth: int, grid: int):
    """``qsim::zero_point(min, scale, bitwidth, grid)`` in ONNX ops (see the module docstring)."""
    qmin, qmax = _io.grid_bounds(int(grid), int(bitwidth))
    if grid == GridKind.ASYMMETRIC:
        z = op.Sub(_constant(qmin, min), op.Round(op.Div(min, scale)))
        return op.Clip(z, _constant(qmin, min), _constant(qmax, min))
    zero = _constant(0, min)
    if grid == GridKind.UNSIGNED_SYMMETRIC:
        return op.Where(op.Less(min, zero), _constant((qmax + 1) // 2, min), zero)
    return op.Expand(zero, op.Shape(min))
