"""Quantized ``nn.Embedding`` and ``nn.EmbeddingBag``: weight and output quantizers, no input quantizer (indices are
integers).

Example::

    >>> import torch
    >>> from torch import nn
    >>> q = QuantizedEmbedding.from_module(nn.Embedding(10, 4))
    >>> len(q.input_quantizers), list(q.param_quantizers)
    (0, ['weight'])
"""

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..functional import quantize_dequantize
from ..quantization.param_quantizer import ParamQuantizeDequantize
from ..quantization.quantizer import plain_eager
from .base import QuantizationMixin

__all__ = ["QuantizedEmbedding", "QuantizedEmbeddingBag"]


@QuantizationMixin.implements(nn.Embedding, onnx_types=("Gather",))
class QuantizedEmbedding(QuantizationMixin, nn.Embedding):
    """Rows of the quantized weight. With ``max_norm``, the looked-up rows of the floating-point
    weight are renormalized in place first, as torch does, and then quantized.

    Example::

        >>> QuantizedEmbedding(10, 4)(torch.tensor([[1, 2], [3, 9]])).shape
        torch.Size([2, 2, 4])
    """

    num_inputs = 0

    def quantized_forward(self, indices: Tensor) -> Tensor:
        if self.max_norm is not None:
            with torch.no_grad():
                torch.embedding_renorm_(self.weight, indices.contiguous(), self.max_norm,
                                        self.norm_type)
        q = self.param_quantizers["weight"] if "weight" in self.param_quantizers else None
        if _rows_first(q, self.weight, indices):
            return _quantized_rows(q, self.weight, F.embedding(indices, self.weight), indices)
        return F.embedding(indices, self.quantized_param("weight"), self.padding_idx, None,
                           self.norm_type, self.scale_grad_by_freq, self.sparse)


def _rows_first(q, weight: Tensor, indices: Tensor) -> bool:
    """Whether the looked-up rows can be quantized after the lookup: a no-grad eager forward
    with a calibrated integer weight quantizer, per tensor or per row, that keeps no eval cache
    (``cache_eval_output``, off in in-place sims). The fake quantization is element-wise, so
    ``qdq(weight)[indices]`` is ``qdq(weight[indices])`` with each row's own scale and zero point,
    bit for bit, and the quantized table (as large as the weight) is never made."""
    return type(q) is ParamQuantizeDequantize and not q.cache_eval_output and \
        not q.is_folded(weight) and \
        not q.reciprocal_rounding and not q._calibrating and q.block_size is None and \
        q.shape in ((), (weight.shape[0], 1)) and indices.numel() > 0 and \
        not torch.is_grad_enabled() and plain_eager() and q.is_initialized()


def _quantized_rows(q, weight: Tensor, rows: Tensor, indices: Tensor) -> Tensor:
    """`rows` (``weight[indices]``) fake-quantized as their rows of ``q(weight)``."""
    if q.shape == ():
        return q(rows)
    scale, zp = q._qparams(weight.shape)[:2]
    flat = indices.reshape(-1)
    return quantize_dequantize(rows.reshape(flat.numel(), -1), scale[flat], zp[flat], q.qmin,
                               q.qmax, 0).reshape(rows.shape)


@QuantizationMixin.implements(nn.EmbeddingBag, onnx_types=("Gather",))
class QuantizedEmbeddingBag(QuantizationMixin, nn.EmbeddingBag):
    """Sums, means or maxima of bags of rows of the quantized weight (indices, offsets and
    per-sample weights pass as given; the output is quantized).

    Example::

        >>> bag = QuantizedEmbeddingBag(10, 4, mode="mean")
        >>> bag(torch.tensor([1, 2, 3, 9]), torch.tensor([0, 2])).shape
        torch.Size([2, 4])
    """

    num_inputs = 0

    def quantized_forward(self, input: Tensor, offsets: Tensor | None = None,
                          per_sample_weights: Tensor | None = None) -> Tensor:
        return F.embedding_bag(input, self.quantized_param("weight"), offsets, self.max_norm,
                               self.norm_type, self.scale_grad_by_freq, self.mode, self.sparse,
                               per_sample_weights, self.include_last_offset, self.padding_idx)
