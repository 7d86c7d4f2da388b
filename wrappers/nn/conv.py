"""Quantized convolutions: ``nn.Conv1d/2d/3d`` and ``nn.ConvTranspose1d/2d/3d``.

The torch function (``F.conv*d`` / ``F.conv_transpose*d``) runs on the quantized weight and
bias with the module's stride, padding (including ``padding_mode``), dilation, groups and, for
transposed convolutions, ``output_padding`` / ``output_size``.

Example::

    >>> import torch
    >>> from torch import nn
    >>> q = QuantizedConv2d.from_module(nn.Conv2d(3, 8, 3, padding=1, padding_mode="reflect"))
    >>> q(torch.randn(1, 3, 5, 5)).shape
    torch.Size([1, 8, 5, 5])
"""

import torch.nn.functional as F
from torch import Tensor, nn

from .base import QuantizationMixin

__all__ = ["QuantizedConv1d", "QuantizedConv2d", "QuantizedConv3d", "QuantizedConvTranspose1d",
           "QuantizedConvTranspose2d", "QuantizedConvTranspose3d"]

_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
_CONV_TRANSPOSE = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}


class _QuantizedConvMixin(QuantizationMixin):
    """Forward of ``nn.ConvNd`` on the quantized weight and bias; ``weight`` is laid out
    ``(C_out, C_in / groups, *kernel)``."""

    is_weight_layer = True

    def quantized_forward(self, x: Tensor) -> Tensor:
        return self.forward_with_weight(x, self.quantized_param("weight", for_op=True))

    def forward_with_weight(self, x: Tensor, weight: Tensor) -> Tensor:
        """The convolution with `weight` in place of the module's (and the quantized bias),
        e.g. AdaRound's soft-rounded weight."""
        padding = self.padding
        if self.padding_mode != "zeros":
            x = F.pad(x, self._reversed_padding_repeated_twice, mode=self.padding_mode)
            padding = 0
        return _CONV[len(self.kernel_size)](x, weight, self.quantized_param("bias"), self.stride,
                                            padding, self.dilation, self.groups)


class _QuantizedConvTransposeMixin(QuantizationMixin):
    """Forward of ``nn.ConvTransposeNd`` on the quantized weight and bias; ``weight`` is laid
    out ``(C_in, C_out / groups, *kernel)``."""

    is_weight_layer = True

    @classmethod
    def param_channel_axis(cls, name: str) -> int:
        """1 for ``weight`` (its output channels), else 0 (AIMET, docs/aimet.md §2.4)."""
        return 1 if name == "weight" else 0

    def folds_following_batch_norm(self) -> bool:
        """As for any ConvTranspose op, except depthwise ones: AIMET does not fold into them."""
        depthwise = self.groups > 1 and self.groups == self.in_channels
        return not depthwise and super().folds_following_batch_norm()

    def quantized_forward(self, x: Tensor, output_size: list[int] | None = None) -> Tensor:
        return self.forward_with_weight(x, self.quantized_param("weight", for_op=True), output_size)

    def forward_with_weight(self, x: Tensor, weight: Tensor,
                            output_size: list[int] | None = None) -> Tensor:
        """The transposed convolution with `weight` in place of the module's (and the quantized
        bias), e.g. AdaRound's soft-rounded weight."""
        if self.padding_mode != "zeros":
            raise ValueError(f"Only 'zeros' padding mode is supported for "
                             f"{type(self).__name__}, got {self.padding_mode!r}")
        dims = len(self.kernel_size)
        output_padding = self._output_padding(x, output_size, self.stride, self.padding,
                                              self.kernel_size, dims, self.dilation)
        return _CONV_TRANSPOSE[dims](x, weight, self.quantized_param("bias"), self.stride,
                                     self.padding, output_padding, self.groups, self.dilation)


@QuantizationMixin.implements(nn.Conv1d, onnx_types=("Conv",))
class QuantizedConv1d(_QuantizedConvMixin, nn.Conv1d):
    """Quantized ``nn.Conv1d``.

    Example::

        >>> QuantizedConv1d(2, 4, 3)(torch.randn(1, 2, 8)).shape
        torch.Size([1, 4, 6])
    """


@QuantizationMixin.implements(nn.Conv2d, onnx_types=("Conv",))
class QuantizedConv2d(_QuantizedConvMixin, nn.Conv2d):
    """Quantized ``nn.Conv2d``.

    Example::

        >>> QuantizedConv2d(2, 4, 3)(torch.randn(1, 2, 8, 8)).shape
        torch.Size([1, 4, 6, 6])
    """


@QuantizationMixin.implements(nn.Conv3d, onnx_types=("Conv",))
class QuantizedConv3d(_QuantizedConvMixin, nn.Conv3d):
    """Quantized ``nn.Conv3d``.

    Example::

        >>> QuantizedConv3d(2, 4, 3)(torch.randn(1, 2, 5, 5, 5)).shape
        torch.Size([1, 4, 3, 3, 3])
    """


@QuantizationMixin.implements(nn.ConvTranspose1d, onnx_types=("ConvTranspose",))
class QuantizedConvTranspose1d(_QuantizedConvTransposeMixin, nn.ConvTranspose1d):
    """Quantized ``nn.ConvTranspose1d`` (per-channel weight axis is 1).

    Example::

        >>> QuantizedConvTranspose1d(2, 4, 3, stride=2)(torch.randn(1, 2, 4)).shape
        torch.Size([1, 4, 9])
    """


@QuantizationMixin.implements(nn.ConvTranspose2d, onnx_types=("ConvTranspose",))
class QuantizedConvTranspose2d(_QuantizedConvTransposeMixin, nn.ConvTranspose2d):
    """Quantized ``nn.ConvTranspose2d`` (per-channel weight axis is 1).

    Example::

        >>> q = QuantizedConvTranspose2d(2, 4, 3, stride=2)
        >>> q(torch.randn(1, 2, 4, 4), output_size=[10, 10]).shape
        torch.Size([1, 4, 10, 10])
    """


@QuantizationMixin.implements(nn.ConvTranspose3d, onnx_types=("ConvTranspose",))
class QuantizedConvTranspose3d(_QuantizedConvTransposeMixin, nn.ConvTranspose3d):
    """Quantized ``nn.ConvTranspose3d`` (per-channel weight axis is 1).

    Example::

        >>> QuantizedConvTranspose3d(2, 4, 2, stride=2)(torch.randn(1, 2, 2, 2, 2)).shape
        torch.Size([1, 4, 4, 4, 4])
    """
