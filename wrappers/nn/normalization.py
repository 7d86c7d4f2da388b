"""Quantized normalizations: ``nn.BatchNorm1d/2d``, ``nn.LayerNorm``, ``nn.GroupNorm``.

Affine weight and bias go through their parameter quantizers; the running statistics of batch
norm are buffers, updated in training mode exactly as torch does (shared with the original
module after ``from_module``).

Example::

    >>> import torch
    >>> from torch import nn
    >>> q = QuantizedLayerNorm.from_module(nn.LayerNorm(8))
    >>> q(torch.randn(2, 8)).shape
    torch.Size([2, 8])
"""

import torch.nn.functional as F
from torch import Tensor, nn

from .base import QuantizationMixin

__all__ = ["QuantizedBatchNorm1d", "QuantizedBatchNorm2d", "QuantizedLayerNorm",
           "QuantizedGroupNorm"]


class _QuantizedBatchNormMixin(QuantizationMixin):
    """Forward of ``nn.BatchNormNd`` (running statistics, momentum, eval / train) on quantized
    affine parameters."""

    def quantized_forward(self, x: Tensor) -> Tensor:
        self._check_input_dim(x)
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            self.num_batches_tracked.add_(1)
            if self.momentum is None:  # cumulative moving average
                factor = 1.0 / float(self.num_batches_tracked)
        use_batch_stats = self.training or (self.running_mean is None and self.running_var is None)
        keep_stats = not self.training or self.track_running_stats
        return F.batch_norm(x, self.running_mean if keep_stats else None,
                            self.running_var if keep_stats else None,
                            self.quantized_param("weight"), self.quantized_param("bias"),
                            use_batch_stats, factor, self.eps)


@QuantizationMixin.implements(nn.BatchNorm1d, onnx_types=("BatchNormalization",))
class QuantizedBatchNorm1d(_QuantizedBatchNormMixin, nn.BatchNorm1d):
    """Quantized ``nn.BatchNorm1d``.

    Example::

        >>> QuantizedBatchNorm1d(4)(torch.randn(3, 4)).shape
        torch.Size([3, 4])
    """


@QuantizationMixin.implements(nn.BatchNorm2d, onnx_types=("BatchNormalization",))
class QuantizedBatchNorm2d(_QuantizedBatchNormMixin, nn.BatchNorm2d):
    """Quantized ``nn.BatchNorm2d``.

    Example::

        >>> QuantizedBatchNorm2d(4)(torch.randn(2, 4, 3, 3)).shape
        torch.Size([2, 4, 3, 3])
    """


@QuantizationMixin.implements(nn.LayerNorm, onnx_types=("LayerNorm", "LayerNormalization"))
class QuantizedLayerNorm(QuantizationMixin, nn.LayerNorm):
    """Quantized ``nn.LayerNorm``.

    Example::

        >>> QuantizedLayerNorm(4, bias=False)(torch.randn(3, 4)).shape
        torch.Size([3, 4])
    """

    def quantized_forward(self, x: Tensor) -> Tensor:
        return F.layer_norm(x, self.normalized_shape, self.quantized_param("weight"),
                            self.quantized_param("bias"), self.eps)


@QuantizationMixin.implements(nn.GroupNorm, onnx_types=("GroupNorm", "GroupNormalization"))
class QuantizedGroupNorm(QuantizationMixin, nn.GroupNorm):
    """Quantized ``nn.GroupNorm``.

    Example::

        >>> QuantizedGroupNorm(2, 4)(torch.randn(2, 4, 3)).shape
        torch.Size([2, 4, 3])
    """

    def quantized_forward(self, x: Tensor) -> Tensor:
        return F.group_norm(x, self.num_groups, self.quantized_param("weight"),
                            self.quantized_param("bias"), self.eps)
