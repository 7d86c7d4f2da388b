"""Blockwise integer and LPBQ weight quantizers of a sim (issue 15, docs/formats.md §6).

A weight slot whose spec has ``block_size`` gets an integer quantizer with one encoding per
(output channel, block of ``block_size`` input channels), as aimet-torch's
``set_blockwise_quantization_for_weights``; with ``decompressed_bw`` too, an
:class:`~torchqsim.quantization.LpbqQuantizeDequantize` (aimet-torch's
``set_grouped_blockwise_quantization_for_weights``, ``block_grouping=-1``). The blocked axis is
the weight's input-channel axis (1, or 0 for ConvTranspose weights); other dimensions (kernel
taps) share their block's encoding. The slot's spec chooses it: ``sim.set_precision(...,
block_size=, decompressed_bw=)``, the helpers below, or a config file's ``params`` entry
(``"block_size"``, ``"decompressed_bw"``).

Example::

    >>> import torch
    >>> from torch import nn
    >>> from torchqsim.quantsim import QuantizationSimModel
    >>> sim = QuantizationSimModel(nn.Sequential(nn.Linear(64, 8)), torch.randn(2, 64))
    >>> set_grouped_blockwise_quantization_for_weights(sim, nn.Linear, 4, True, 8, 32)
    >>> q = sim.model.get_submodule("0").param_quantizers["weight"]
    >>> type(q).__name__, q.shape, q.decompressed_bw
    ('LpbqQuantizeDequantize', (8, 2), 8)
"""

from torch import nn

from ..quantization.lpbq_quantizer import LpbqQuantizeDequantize, check_decompressed_bw
from ..quantization.param_quantizer import ParamQuantizeDequantize

__all__ = ["block_quantizer", "block_shape", "set_blockwise_quantization_for_weights",
           "set_grouped_blockwise_quantization_for_weights"]


def _name(sim, module: nn.Module) -> str:
    return next((n for n, m in sim.model.named_modules() if m is module), type(module).__name__)


def block_shape(sim, module: nn.Module, key: str, block_size) -> tuple[tuple, int]:
    """``(encoding shape, blocked axis)`` of blockwise encodings of parameter `key`.

    Raises:
        ValueError: naming the module: a parameter of fewer than two dimensions, a block size
            that is not a positive integer or does not divide the input channels.
    """
    param = getattr(module, key)
    where = f"module {_name(sim, module)!r}, parameter {key!r}"
    if isinstance(block_size, bool) or not isinstance(block_size, int) or block_size < 1:
        raise ValueError(f"{where}: block_size must be a positive integer, got {block_size!r}")
    if param.dim() < 2:
        raise ValueError(f"{where}: blockwise encodings need a weight of two or more dimensions "
                         f"(blocks of input channels per output channel); shape "
                         f"{tuple(param.shape)}")
    out = module.param_channel_axis(key)
    axis = 1 if out == 0 else 0
    if param.shape[axis] % block_size:
        raise ValueError(f"{where}: block_size {block_size} does not divide the "
                         f"{param.shape[axis]} input channels (axis {axis} of shape "
                         f"{tuple(param.shape)})")
    shape = [1] * param.dim()
    shape[out] = param.shape[out]
    shape[axis] = param.shape[axis] // block_size
    return tuple(shape), axis


def block_quantizer(sim, module: nn.Module, key: str, spec, analyzer, symmetric: bool):
    """The blockwise (or LPBQ) quantizer of weight slot `key` (spec.block_size set); `analyzer`
    makes the calibration analyzer of an encoding shape.

    Raises:
        ValueError: naming the module: bad block size (:func:`block_shape`), a non-integer
            precision, LPBQ on an asymmetric slot or with a bad ``decompressed_bw``.
    """
    where = f"module {_name(sim, module)!r}, parameter {key!r}"
    if spec.dtype != "int":
        raise ValueError(f"{where}: blockwise encodings need an integer precision, got "
                         f"{spec.dtype!r}")
    shape, axis = block_shape(sim, module, key, spec.block_size)
    blocks = tuple(n // s for n, s in zip(getattr(module, key).shape, shape))
    if spec.decompressed_bw is None:
        q = ParamQuantizeDequantize(shape, spec.bitwidth, symmetric, analyzer(shape), blocks,
                                    strict=symmetric and spec.strict)
        q.block_axis = axis
        return q
    if not symmetric:
        raise ValueError(f"{where}: LPBQ needs a symmetric weight grid (is_symmetric)")
    check_decompressed_bw(spec.decompressed_bw, spec.bitwidth, f"{where}: decompressed_bw")
    return LpbqQuantizeDequantize(shape, spec.bitwidth, spec.decompressed_bw, analyzer(shape),
                                  blocks, axis=axis)


def set_blockwise_quantization_for_weights(sim, arg, bitwidth: int, symmetric: bool,
                                           block_size: int) -> None:
    """aimet-torch's helper: blockwise integer weights for the modules `arg` designates (a
    module, module class, name, or a list: as ``sim.set_precision``'s `target`).

    Raises:
        ValueError: as :meth:`QuantizationSimModel.set_precision`.
    """
    sim.set_precision(arg, param={"weight": bitwidth}, block_size=block_size,
                      symmetric=symmetric)


def set_grouped_blockwise_quantization_for_weights(sim, arg, bitwidth: int, symmetric: bool,
                                                   decompressed_bw: int, block_size: int,
                                                   block_grouping: int = -1) -> None:
    """aimet-torch's helper: LPBQ weights (one integer-scale group per output channel:
    `block_grouping` must be -1, the only grouping QNN runs) for the modules `arg` designates.

    Raises:
        ValueError: `block_grouping` other than -1, `symmetric` False, or as
            :meth:`QuantizationSimModel.set_precision`.
    """
    if block_grouping != -1:
        raise ValueError(f"block_grouping={block_grouping!r}: only -1 (all the blocks of an "
                         f"output channel in one group) is supported")
    if symmetric is not True:
        raise ValueError("symmetric must be True: LPBQ is symmetric")
    sim.set_precision(arg, param={"weight": bitwidth}, block_size=block_size,
                      decompressed_bw=decompressed_bw, symmetric=True)
