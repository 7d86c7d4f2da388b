"""Batch-norm folding (AIMET ``fold_all_batch_norms``).

A BatchNorm in eval mode is the per-channel affine map ``y = a * x + t`` with
``a = gamma / sqrt(running_var + eps)`` and ``t = beta - a * running_mean``. It folds into the
Conv / ConvTranspose / Linear next to it:

- after the layer (``layer -> BN``): output channel ``c`` of the weight and the bias are
  multiplied by ``a[c]``, and ``t[c]`` is added to the bias;
- before the layer (``BN -> layer``, used when the BN has no foldable producer): input channel
  ``c`` of the weight is multiplied by ``a[c]``, and the bias gains ``sum W * t`` over each
  output channel's inputs. This is exact only if the layer never sees padded values, so it is
  done for Linear layers and for convolutions with zero padding; a padded convolution would pad
  the shifted input with 0 where the original pads the BN output with 0. ConvTransposes never
  take a BN from before (their border outputs sum fewer taps).

A pair folds when it is found in a torch.fx trace of the model, the layer's output (or the BN's)
has no other consumer, and each of the two modules is called once. For Linear layers the BN must
see a ``[N, C]`` tensor (checked on the shapes of `dummy_input`'s forward), since BatchNorm1d on
``[N, C, L]`` normalises a different axis than the Linear's features. BNs without running
statistics (``track_running_stats=False``) are left alone. The BN is replaced by ``nn.Identity``;
the model then computes what it computed in eval mode before (train-mode batch statistics are
gone).

Example::

    >>> model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU()).eval()
    >>> pairs = fold_all_batch_norms(model, torch.randn(1, 3, 8, 8))
    >>> len(pairs), model[1]
    (1, Identity())
"""

from typing import NamedTuple

import torch
from torch import nn

from ._channels import (ensure_bias, is_weight_layer, num_channels, scale_channels,
                        weighted_input_sum, zero_padding)
from ._layer_graph import LayerGraph

__all__ = ["fold_all_batch_norms", "FoldedBatchNorm", "fold_batch_norms_with_records",
           "batch_norm_affine"]


class FoldedBatchNorm(NamedTuple):
    """One fold: the layer and BN modules, their paths, and whether the BN came before the
    layer (``bn_before_layer``) or after it. The BN module keeps its statistics."""

    layer_name: str
    bn_name: str
    layer: nn.Module
    bn: nn.Module
    bn_before_layer: bool


def batch_norm_affine(bn: nn.modules.batchnorm._BatchNorm) -> tuple[torch.Tensor, torch.Tensor]:
    """``(a, t)`` with ``bn(x) = a * x + t`` per channel in eval mode (float64).

    Example::

        >>> bn = nn.BatchNorm1d(1, eps=0.0).eval()
        >>> _ = bn.running_var.fill_(4.0), bn.bias.data.fill_(1.0)
        >>> [v.tolist() for v in batch_norm_affine(bn)]
        [[0.5], [1.0]]
    """
    var = bn.running_var.detach().double()
    a = torch.rsqrt(var + bn.eps)
    if bn.weight is not None:
        a = a * bn.weight.detach().double()
    t = -a * bn.running_mean.detach().double()
    if bn.bias is not None:
        t = t + bn.bias.detach().double()
    return a, t


@torch.no_grad()
def _fold_after(layer: nn.Module, bn) -> None:
    a, t = batch_norm_affine(bn)
    ensure_bias(layer)
    scale_channels(layer, a, "out")
    layer.bias.add_(t.to(layer.bias))


@torch.no_grad()
def _fold_before(layer: nn.Module, bn) -> None:
    a, t = batch_norm_affine(bn)
    ensure_bias(layer)
    layer.bias.add_(weighted_input_sum(layer, t.to(layer.weight.dtype)))
    scale_channels(layer, a, "in")


def _foldable_bn(graph: LayerGraph, node) -> bool:
    bn = graph.module(node)
    return (isinstance(bn, nn.modules.batchnorm._BatchNorm) and bn.running_mean is not None
            and graph.called_once(node))


def _rank_ok(layer: nn.Module, shape) -> bool:
    return not isinstance(layer, nn.Linear) or (shape is not None and len(shape) == 2)


def _find_pairs(graph: LayerGraph) -> list[tuple]:
    """``(layer_node, bn_node, bn_before_layer)`` of every foldable pair, in execution order."""
    pairs, used = [], set()
    for node in graph.nodes:
        if not _foldable_bn(graph, node) or not node.args:
            continue
        bn = graph.module(node)
        prev = node.args[0]
        layer = graph.module(prev) if hasattr(prev, "op") else None
        if (is_weight_layer(layer) and graph.called_once(prev) and prev not in used
                and graph.sole_user(prev) is node and bn.num_features == num_channels(layer, "out")
                and _rank_ok(layer, graph.shape(prev))):
            pairs.append((prev, node, False))
            used.add(prev)
            continue
        nxt = graph.sole_user(node)
        layer = graph.module(nxt) if nxt is not None else None
        if (zero_padding(layer)
                and graph.called_once(nxt) and bn.num_features == num_channels(layer, "in")
                and _rank_ok(layer, graph.shape(node))):
            pairs.append((nxt, node, True))
    return pairs


def fold_batch_norms_with_records(model: nn.Module, dummy_input,
                                  who: str = "fold_all_batch_norms") -> list[FoldedBatchNorm]:
    """:func:`fold_all_batch_norms`, returning :class:`FoldedBatchNorm` records (names and the
    removed BN modules with their statistics, which cross-layer equalization uses).

    Example::

        >>> model = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4)).eval()
        >>> records = fold_batch_norms_with_records(model, torch.randn(2, 4))
        >>> [(r.layer_name, r.bn_name) for r in records]
        [('0', '1')]
    """
    graph = LayerGraph.trace(model, dummy_input, who)
    records = []
    for layer_node, bn_node, before in _find_pairs(graph):
        layer, bn = graph.module(layer_node), graph.module(bn_node)
        (_fold_before if before else _fold_after)(layer, bn)
        model.set_submodule(graph.module_name(bn_node), nn.Identity())
        records.append(FoldedBatchNorm(graph.module_name(layer_node), graph.module_name(bn_node),
                                       layer, bn, before))
    return records


def fold_all_batch_norms(model: nn.Module, dummy_input) -> list[tuple[nn.Module, nn.Module]]:
    """Folds every foldable BatchNorm into its Conv / ConvTranspose / Linear, in place.

    See the module docstring for which pairs fold. Each folded BN is replaced by
    ``nn.Identity``; eval-mode outputs are unchanged (up to float rounding).

    Args:
        model: a float model torch.fx can trace (torch.nn modules are leaves).
        dummy_input: an input (tensor, or tuple of positional inputs) to record shapes with.

    Returns:
        The folded ``(layer, bn)`` module pairs (AIMET's return value), in execution order; the
        BN modules keep their statistics.

    Raises:
        TraceError: torch.fx cannot trace `model`.

    Example::

        >>> model = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4)).eval()
        >>> x = torch.randn(5, 4); y = model(x)
        >>> (layer, bn), = fold_all_batch_norms(model, x)
        >>> torch.allclose(model(x), y, atol=1e-6), layer is model[0]
        (True, True)
    """
    return [(r.layer, r.bn) for r in fold_batch_norms_with_records(model, dummy_input)]
