"""Cross-layer equalization (AIMET ``equalize_model``; Nagel et al. 2019, "Data-Free
Quantization", DFQ).

Per-tensor weight quantization wastes precision on channels whose weight range is far below the
layer's largest. For two consecutive layers ``L1 -> act -> L2`` with a positively homogeneous
activation (``act(s x) = s act(x)`` for ``s > 0``: ReLU, LeakyReLU, identity, dropout), dividing
output channel ``c`` of L1 (weights and bias) by ``s_c`` and multiplying input channel ``c`` of L2
by ``s_c`` leaves the function unchanged. DFQ's choice ``s_c = sqrt(r1_c / r2_c)``, with ``r1_c``
and ``r2_c`` the ranges (max |w|) of the channel in L1's output and L2's input, makes both ranges
``sqrt(r1_c r2_c)``. Chains (``conv -> depthwise -> conv``) are equalized by sweeping over all
pairs until the scales stop changing (at most 20 sweeps), which reaches DFQ's three-layer
solution.

`equalize_model` does, in place:

1. :func:`~torchqsim.ptq.fold_all_batch_norms` (keeping the folded BNs' ``beta`` and ``gamma``);
2. finds the pairs: both layers Conv / ConvTranspose (any groups, depthwise included) or both
   Linear, the L1 output's only consumer chain made of transparent activations (modules
   ``ReLU``, ``ReLU6``, ``LeakyReLU``, ``Identity``, ``Dropout*``, or ``torch.relu`` /
   ``F.relu`` / ``.relu()``) ending at L2, each module called once;
3. replaces the ``ReLU6`` modules inside those pairs by ``ReLU`` (scaling would move the clip
   point; AIMET replaces every ReLU6 of the model, we only those in equalized pairs). This
   changes the FP32 function wherever such an activation exceeded 6;
4. cross-layer scaling (above);
5. high-bias absorption (DFQ section 4.2): when L1 had a BN folded after it, its pre-activation
   channel ``c`` is about ``N(beta_c, gamma_c^2)`` (both divided by the scales of step 4). The
   amount ``h_c = max(0, beta_c - 3 |gamma_c|)`` (rectifying activation) or ``beta_c`` (identity
   chain) is subtracted from L1's bias and its effect ``sum W2 h`` added to L2's bias. This
   shrinks the range of the activation L1 feeds L2 and is exact for inputs whose pre-activation
   stays above ``h_c`` (with a rectifier; always with identity). It is done only when L2 is a
   Linear or an unpadded convolution, since padded borders would see the shift as well.

Example::

    >>> model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 4, 1)).eval()
    >>> x = torch.randn(2, 3, 8, 8); y = model(x)
    >>> equalize_model(model, x)
    [('0', '2')]
    >>> torch.allclose(model(x), y, atol=1e-5)
    True
"""

from typing import NamedTuple

import torch
from torch import nn

from ._channels import (channel_ranges, ensure_bias, is_weight_layer, num_channels,
                        scale_channels, weighted_input_sum, zero_padding)
from ._layer_graph import LayerGraph
from .batch_norm_fold import fold_batch_norms_with_records

__all__ = ["equalize_model"]

_RECTIFIERS = (nn.ReLU, nn.ReLU6, nn.LeakyReLU)
_IDENTITIES = (nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d)
_RELU_FUNCTIONS = (torch.relu, torch.nn.functional.relu)
_MAX_SWEEPS = 20
_TOLERANCE = 1e-4  # stop when every scale is within this of 1 (relative)


class _Pair(NamedTuple):
    l1_name: str
    l2_name: str
    l1: nn.Module
    l2: nn.Module
    relu6_names: list
    rectified: bool


def _transparent(graph: LayerGraph, node) -> tuple[bool, bool]:
    """(node passes channels through a positively homogeneous map, it rectifies)."""
    m = graph.module(node)
    if m is not None:
        if isinstance(m, _RECTIFIERS):
            return True, True
        return isinstance(m, _IDENTITIES), False
    if node.op == "call_function" and node.target in _RELU_FUNCTIONS:
        return True, True
    if node.op == "call_method" and node.target == "relu":
        return True, True
    return False, False


def _find_pairs(graph: LayerGraph) -> list[_Pair]:
    pairs = []
    for node in graph.nodes:
        l1 = graph.module(node)
        if not is_weight_layer(l1) or not graph.called_once(node):
            continue
        relu6, rectified, cur = [], False, graph.sole_user(node)
        while cur is not None:
            passes, rect = _transparent(graph, cur)
            if not passes:
                break
            if isinstance(graph.module(cur), nn.ReLU6):
                relu6.append(graph.module_name(cur))
            rectified |= rect
            cur = graph.sole_user(cur)
        l2 = graph.module(cur) if cur is not None else None
        if (is_weight_layer(l2) and graph.called_once(cur)
                and isinstance(l1, nn.Linear) == isinstance(l2, nn.Linear)
                and num_channels(l1, "out") == num_channels(l2, "in")):
            pairs.append(_Pair(graph.module_name(node), graph.module_name(cur), l1, l2, relu6,
                               rectified))
    return pairs


@torch.no_grad()
def _scale_pair(pair: _Pair, stats: dict) -> float:
    """One DFQ step on a pair; returns max |log s| (0 when already equalized)."""
    r1, r2 = channel_ranges(pair.l1, "out").double(), channel_ranges(pair.l2, "in").double()
    ok = (r1 > 0) & (r2 > 0)
    s = torch.where(ok, torch.sqrt(r1 / torch.where(ok, r2, 1.0)), 1.0)
    scale_channels(pair.l1, 1.0 / s, "out")
    scale_channels(pair.l2, s, "in")
    if pair.l1_name in stats:
        beta, gamma = stats[pair.l1_name]
        stats[pair.l1_name] = (beta / s, gamma / s)
    return float(s.log().abs().max()) if s.numel() else 0.0


@torch.no_grad()
def _absorb_high_bias(pair: _Pair, stats: dict) -> None:
    beta, gamma = stats[pair.l1_name]
    h = torch.clamp(beta - 3 * gamma.abs(), min=0.0) if pair.rectified else beta
    ensure_bias(pair.l2)
    pair.l1.bias.sub_(h.to(pair.l1.bias))
    pair.l2.bias.add_(weighted_input_sum(pair.l2, h).to(pair.l2.bias))
    stats[pair.l1_name] = (beta - h, gamma)


def equalize_model(model: nn.Module, dummy_input) -> list[tuple[str, str]]:
    """Cross-layer equalization of `model`, in place (steps in the module docstring).

    Args:
        model: a float model torch.fx can trace, in eval mode for the BN folding to be exact.
        dummy_input: an input (tensor, or tuple of positional inputs) for shape recording.

    Returns:
        The ``(L1, L2)`` module paths of the equalized pairs, in execution order (AIMET returns
        nothing).

    Raises:
        TraceError: torch.fx cannot trace `model`.

    Example::

        >>> model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU6(), nn.Linear(8, 2))
        >>> equalize_model(model.eval(), torch.randn(3, 4)), model[2]
        ([('0', '3')], ReLU())
    """
    folds = fold_batch_norms_with_records(model, dummy_input, who="equalize_model")
    stats = {}
    for rec in folds:
        if not rec.bn_before_layer:
            gamma = rec.bn.weight.detach().double() if rec.bn.weight is not None else \
                torch.ones_like(rec.bn.running_mean, dtype=torch.float64)
            beta = rec.bn.bias.detach().double() if rec.bn.bias is not None else \
                torch.zeros_like(gamma)
            stats[rec.layer_name] = (beta, gamma)
    pairs = _find_pairs(LayerGraph.trace(model, dummy_input, "equalize_model"))
    for pair in pairs:
        for name in pair.relu6_names:
            model.set_submodule(name, nn.ReLU(inplace=model.get_submodule(name).inplace))
    for _ in range(_MAX_SWEEPS):
        if max((_scale_pair(p, stats) for p in pairs), default=0.0) < _TOLERANCE:
            break
    for pair in pairs:
        if pair.l1_name in stats and zero_padding(pair.l2) and pair.l1.bias is not None:
            _absorb_high_bias(pair, stats)
    return [(p.l1_name, p.l2_name) for p in pairs]
