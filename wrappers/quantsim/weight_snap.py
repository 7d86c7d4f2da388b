"""AIMET 2.42's weight re-encoding at the end of calibration (docs/aimet.md §2.3).

When a Conv, ConvTranspose or Linear layer leaves ``compute_encodings``, aimet-torch 2.42 sets
its weight quantizer's range again from its encoding (``scale * (qmin - zero point)`` to
``scale * (qmax - zero point)``), after raising the scale where the requantization scale
``input scale * weight scale / output scale`` would fall to ``2^-24`` or below. The held range is
then on the grid, so the scale the quantizer derives from it may move by an ulp: this module
does the same so that the weights' encodings stay AIMET's bit for bit.

AIMET does it only when the layer's input has an integer encoding: the output quantizer of the
module whose output the layer reads directly (no op in between), else the layer's own input
quantizer. (AIMET's further scale raise against int32 bias overflow, for biases beyond
``2^31`` bias steps, is not reproduced.)

Example::

    >>> import torch
    >>> from torch import nn
    >>> from torchqsim.quantsim import QuantizationSimModel
    >>> _ = torch.manual_seed(0)
    >>> sim = QuantizationSimModel(nn.Sequential(nn.Linear(4, 4)), torch.randn(2, 4),
    ...                            quant_scheme="tf_enhanced", config_file="default")
    >>> sim.compute_encodings(lambda m, _: m(torch.randn(8, 4)), None)
    >>> q = sim.model.get_submodule("0").param_quantizers["weight"]
    >>> bool(torch.isclose(q.min, q.get_scale() * q.qmin, rtol=2e-7, atol=0))  # to one ulp
    True
"""

import math

import torch
from torch import fx, nn

from ..nn.base import QuantizationMixin
from ..quantization.grouped_calibration import set_ranges, split_ranges
from ..quantization.param_quantizer import is_frozen
from ..quantization.quantizer import QuantizeDequantize

__all__ = ["snap_weight_ranges"]

_LAYERS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d,
           nn.ConvTranspose3d, nn.Linear)
_MIN_REQUANT_SCALE = 2 ** -23.5


def _int_quantizer(q):
    return q if isinstance(q, QuantizeDequantize) and q.is_initialized() else None


def _input_quantizer(gm: fx.GraphModule, op):
    """The quantizer whose encoding the layer's input carries in AIMET (see module docstring)."""
    arg = op.node.args[0] if op.node.args else None
    if isinstance(arg, fx.Node) and arg.op == "call_module":
        producer = gm.get_submodule(arg.target)
        if isinstance(producer, QuantizationMixin) and len(producer.output_quantizers) == 1 \
                and _int_quantizer(producer.output_quantizers[0]) is not None:
            return producer.output_quantizers[0]
    return _int_quantizer(op.module.input_quantizers[0]) if op.module.input_quantizers else None


def snap_weight_ranges(sim) -> None:
    """Re-encodes every calibrated, unfrozen weight quantizer of a Conv/ConvTranspose/Linear
    layer whose input has an integer encoding, as AIMET does (see the module docstring).

    Layers whose quantizers are on the CPU and keep QuantizeDequantize's scale and range rules,
    with per-tensor input and output encodings, are re-encoded together
    (:func:`_snap_together`), the others one by one."""
    together, alone = {}, []
    for op in sim.graph.ops:
        module = op.module
        if not isinstance(module, _LAYERS) or not isinstance(module, QuantizationMixin):
            continue
        weight_q = _int_quantizer(module.param_quantizers["weight"]) \
            if "weight" in module.param_quantizers else None
        input_q = _input_quantizer(sim.model, op)
        if weight_q is None or input_q is None or is_frozen(weight_q) or \
                getattr(weight_q, "block_axis", None) is not None:  # blockwise: kept as is
            continue
        out_q = _int_quantizer(module.output_quantizers[0]) if module.output_quantizers else None
        job = (weight_q, input_q, out_q)
        if all(q is None or _plain(q) for q in job) and input_q.min.numel() == 1 and \
                (out_q is None or out_q.min.numel() == 1):
            together.setdefault(weight_q.grid, []).append(job)
        else:
            alone.append(job)
    with torch.no_grad():
        for jobs in together.values():
            _snap_together(jobs)
        for job in alone:
            _snap_one(*job)


def _plain(q) -> bool:
    cls = type(q)
    return q._parameters["min"].device.type == "cpu" and \
        cls.get_scale is QuantizeDequantize.get_scale and \
        cls._zero_point is QuantizeDequantize._zero_point and cls._set is QuantizeDequantize._set


def _snap_one(weight_q, input_q, out_q) -> None:
    scale, zp = weight_q.get_scale(), weight_q.get_zero_point()
    if out_q is not None:
        floor = (_MIN_REQUANT_SCALE * out_q.get_scale()) / input_q.get_scale()
        scale = torch.maximum(scale, floor)
    weight_q._set((weight_q.qmin - zp) * scale, (weight_q.qmax - zp) * scale)


def _snap_together(jobs) -> None:
    """:func:`_snap_one` of each ``(weight_q, input_q, out_q)`` of `jobs` (weight quantizers on
    one grid), with every formula applied once to the encodings laid end to end: each is
    elementwise, so every value is the one its layer alone gets."""
    weights = [w for w, _, _ in jobs]
    grid = weights[0].grid
    lo = torch.cat([w._parameters["min"].reshape(-1) for w in weights])
    scale = _scales_of(weights, lo)
    zp = grid.zero_point(lo, scale)
    with_out = [i for i, (_, _, out_q) in enumerate(jobs) if out_q is not None]
    if with_out:
        floors = torch.full((len(jobs),), -math.inf, dtype=scale.dtype)
        outs, ins = [jobs[i][2] for i in with_out], [jobs[i][1] for i in with_out]
        floors[with_out] = (_MIN_REQUANT_SCALE * _scales_of(outs)) / _scales_of(ins)
        sizes = torch.tensor([w._parameters["min"].numel() for w in weights])
        scale = torch.maximum(scale, floors.repeat_interleave(sizes))
    set_ranges(weights, *split_ranges(weights, (grid.qmin - zp) * scale,
                                      (grid.qmax - zp) * scale))


def _scales_of(quantizers, lo=None):
    """``q.get_scale()`` of each quantizer (CPU; all on one grid, or per tensor), laid end to
    end; `lo`: their mins laid so, when the caller has them."""
    lo = torch.cat([q._parameters["min"].reshape(-1) for q in quantizers]) if lo is None else lo
    hi = torch.cat([q._parameters["max"].reshape(-1) for q in quantizers])
    steps = [q.qmax - q.qmin for q in quantizers]
    if len(set(steps)) == 1:
        return (hi - lo) / steps[0]
    return (hi - lo) / torch.tensor(steps, dtype=lo.dtype)
