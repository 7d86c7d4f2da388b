"""Facts about a module family that the sim's plan and the PTQ tools need: which modules are
weight layers, the channel axes of parameters and outputs, BatchNorm folding, multiply-accumulate
counts. :class:`ModuleFacts` holds the defaults (a module without a channel-mixing weight);
:class:`~torchqsim.nn.QuantizationMixin` derives from it and each family's quantized class
overrides what differs (``nn/conv.py``, ``nn/linear.py``). Weight layers also have
``forward_with_weight(x, weight)``: their torch function with a given weight.

Example::

    >>> from torchqsim.nn import QuantizedConvTranspose2d as Deconv, quantized_class_of
    >>> Deconv.is_weight_layer, Deconv.param_channel_axis("weight")
    (True, 1)
    >>> quantized_class_of(nn.Conv1d(2, 2, 1)).param_channel_axis("weight")
    0
"""

from torch import Tensor

__all__ = ["ModuleFacts"]

#: Config op types of the ops AIMET folds a following BatchNorm into (docs/aimet.md §1.8).
_BN_FOLDING_OP_TYPES = ("Conv", "ConvTranspose", "Gemm")


class ModuleFacts:
    """The facts' defaults; see the module docstring. ``onnx_types`` and, for weight layers,
    ``weight`` come from the quantized class."""

    #: Whether ``weight`` maps input channels to output channels (Conv, ConvTranspose, Linear):
    #: the layers the PTQ tools (BatchNorm folding, CLE, bias correction, AdaRound) rewrite.
    is_weight_layer: bool = False

    @classmethod
    def param_channel_axis(cls, name: str) -> int:
        """The output-channel axis of parameter `name`, along which per-channel encodings run:
        0 (AIMET, docs/aimet.md §2.4); ConvTranspose's ``weight`` overrides it.

        Example::

            >>> conv, deconv = tq.nn.QuantizedConv2d, tq.nn.QuantizedConvTranspose2d
            >>> conv.param_channel_axis("weight"), deconv.param_channel_axis("weight")
            (0, 1)
        """
        return 0

    @classmethod
    def output_channel_dim(cls, ndim: int) -> int:
        """The channel dim of an output with `ndim` dims: 1 (torch's ``(N, C, ...)``); Linear
        overrides it (features last).

        Example::

            >>> conv, linear = tq.nn.QuantizedConv2d, tq.nn.QuantizedLinear
            >>> conv.output_channel_dim(4), linear.output_channel_dim(3)
            (1, 2)
        """
        return 1

    def folds_following_batch_norm(self) -> bool:
        """Whether a BatchNorm that alone consumes this module's output is simulated folded into
        it (AIMET: into Conv, ConvTranspose and Gemm ops, by config op type).

        Example::

            >>> tq.nn.QuantizedLinear(2, 2).folds_following_batch_norm()
            True
        """
        return any(t in _BN_FOLDING_OP_TYPES for t in self.onnx_types)

    def mac_count(self, x: Tensor, y: Tensor) -> int | None:
        """Multiply-accumulates of a weight layer's call ``y = self(x)`` (None for other
        modules): each element of the tensor whose channels index ``weight``'s dim 0 (``y``;
        ``x`` for ConvTranspose) meets ``weight.numel() / weight.shape[0]`` weights.

        Example::

            >>> conv = tq.nn.QuantizedConv2d(3, 8, 3)
            >>> x = torch.randn(1, 3, 5, 5)
            >>> conv.mac_count(x, conv(x))          # 8 * 3 * 3 outputs, 3 * 3 * 3 MACs each
            1944
        """
        if not self.is_weight_layer:
            return None
        side = y if self.param_channel_axis("weight") == 0 else x
        return side.numel() * self.weight.numel() // self.weight.shape[0]
