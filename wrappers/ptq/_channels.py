"""Channel bookkeeping of Conv / ConvTranspose / Linear weights (any groups).

A weight ``W`` of shape ``[A, B, *kernel]`` is ``[out, in/groups, ...]`` for Conv and Linear and
``[in, out/groups, ...]`` for ConvTranspose: the layer's quantized class says which
(``is_weight_layer``, ``param_channel_axis("weight")``, :mod:`torchqsim.nn`). `channel_index`
maps each ``(a, b)`` to the output or input channel it belongs to, so scaling, ranges and bias
shifts are one formula for all of them (depthwise and grouped convolutions included).
"""

import torch
from torch import Tensor, nn

from ..nn.base import quantized_class_of

__all__ = ["is_weight_layer", "out_axis", "channel_index", "num_channels", "scale_channels",
           "channel_ranges", "weighted_input_sum", "is_depthwise", "zero_padding", "ensure_bias"]

_CONV_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


def is_weight_layer(m: nn.Module) -> bool:
    """Whether `m` is a Conv / ConvTranspose / Linear layer (its quantized class's
    ``is_weight_layer``).

    Example::

        >>> is_weight_layer(nn.ConvTranspose2d(2, 2, 1)), is_weight_layer(nn.BatchNorm2d(2))
        (True, False)
    """
    return quantized_class_of(m).is_weight_layer


def out_axis(m: nn.Module) -> int:
    """The output-channel axis of `m`'s weight: 0, or 1 for ConvTranspose."""
    return quantized_class_of(m).param_channel_axis("weight")


def _groups(m: nn.Module) -> int:
    return getattr(m, "groups", 1)


def num_channels(m: nn.Module, which: str) -> int:
    """Number of output (``which="out"``) or input (``"in"``) channels of a layer."""
    if isinstance(m, nn.Linear):
        return m.out_features if which == "out" else m.in_features
    return m.out_channels if which == "out" else m.in_channels


def channel_index(m: nn.Module, which: str) -> Tensor:
    """``[A, B]`` int64: the output or input channel of each ``weight[a, b]``.

    Example::

        >>> channel_index(nn.Conv2d(4, 2, 1, groups=2), "in").tolist()   # weight [2, 2, 1, 1]
        [[0, 1], [2, 3]]
    """
    a, b = m.weight.shape[:2]
    dev = m.weight.device
    rows = torch.arange(a, device=dev).view(-1, 1).expand(a, b)
    cols = torch.arange(b, device=dev).view(1, -1).expand(a, b)
    if (which == "out") == (out_axis(m) == 0):   # the channel indexes dim 0 within its group
        return rows.clone()
    per_group = a // _groups(m)                  # dim-0 rows per group
    return (rows // per_group) * b + cols


def _expand(v: Tensor, w: Tensor) -> Tensor:
    return v.reshape(v.shape + (1,) * (w.dim() - 2))


@torch.no_grad()
def scale_channels(m: nn.Module, s: Tensor, which: str) -> None:
    """Multiplies the weight of output (and the bias) or input channel ``c`` by ``s[c]``.

    Example::

        >>> lin = nn.Linear(2, 1, bias=False); lin.weight.data = torch.tensor([[1.0, 2.0]])
        >>> scale_channels(lin, torch.tensor([3.0, 0.5]), "in"); lin.weight.tolist()
        [[3.0, 1.0]]
    """
    w = m.weight
    w.mul_(_expand(s.to(w.dtype)[channel_index(m, which)], w))
    if which == "out" and m.bias is not None:
        m.bias.mul_(s.to(m.bias.dtype))


@torch.no_grad()
def channel_ranges(m: nn.Module, which: str) -> Tensor:
    """``max |W|`` over the weights of each output or input channel (DFQ's channel range).

    Example::

        >>> lin = nn.Linear(2, 2, bias=False)
        >>> lin.weight.data = torch.tensor([[1.0, -4.0], [2.0, 3.0]])
        >>> channel_ranges(lin, "out").tolist(), channel_ranges(lin, "in").tolist()
        ([4.0, 3.0], [2.0, 4.0])
    """
    w = m.weight.detach()
    per_ab = w.abs().reshape(w.shape[0], w.shape[1], -1).amax(dim=2)
    out = torch.zeros(num_channels(m, which), dtype=w.dtype, device=w.device)
    return out.scatter_reduce(0, channel_index(m, which).reshape(-1), per_ab.reshape(-1), "amax")


@torch.no_grad()
def weighted_input_sum(m: nn.Module, v: Tensor) -> Tensor:
    """Per output channel, ``sum W * v[input channel]`` over the kernel: the output shift a
    constant input shift `v` causes in a Conv (without padding effects) or Linear layer.

    Example::

        >>> lin = nn.Linear(2, 1); lin.weight.data = torch.tensor([[1.0, 2.0]])
        >>> weighted_input_sum(lin, torch.tensor([1.0, 10.0])).tolist()
        [21.0]
    """
    w = m.weight.detach()
    contrib = (w * _expand(v.to(w.dtype)[channel_index(m, "in")], w))
    contrib = contrib.reshape(w.shape[0], w.shape[1], -1).sum(dim=2)
    out = torch.zeros(num_channels(m, "out"), dtype=w.dtype, device=w.device)
    return out.index_add(0, channel_index(m, "out").reshape(-1), contrib.reshape(-1))


def is_depthwise(m: nn.Module) -> bool:
    """A convolution with one input and one output channel per group."""
    return isinstance(m, _CONV_TYPES) and m.groups == m.in_channels == m.out_channels


def zero_padding(m: nn.Module) -> bool:
    """Whether a layer sees no padded values (Linear, or Conv with padding 0), so a constant
    input shift moves every output position alike."""
    if isinstance(m, nn.Linear):
        return True
    if not isinstance(m, _CONV_TYPES):
        return False
    if m.padding == "valid":
        return True
    if m.padding == "same":
        return all((k - 1) * d == 0 for k, d in zip(m.kernel_size, m.dilation))
    return all(p == 0 for p in m.padding)


def ensure_bias(m: nn.Module) -> None:
    """Gives a layer without bias a zero bias parameter (same dtype, device, requires_grad as
    its weight)."""
    if m.bias is None:
        w = m.weight
        m.bias = nn.Parameter(torch.zeros(num_channels(m, "out"), dtype=w.dtype, device=w.device),
                              requires_grad=w.requires_grad)
