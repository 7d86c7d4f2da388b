"""Floating-point modules for functional ops and tensor methods, inserted by ``prepare_model``
so that each op gets quantizers (their quantized classes are in ``elementwise.py``).

Each module is exactly its torch function: ``Add()(x, y) == x + y`` bit for bit. Binary ops take
a tensor or a Python scalar for either operand (``Subtract()(1.0, mask) == 1.0 - mask``).
``num_inputs`` (a class or instance attribute) is the number of input quantizer slots their
quantized classes get.

Example::

    >>> import torch
    >>> Concat(dim=1, num_inputs=3)(torch.ones(2, 1), torch.zeros(2, 2), torch.ones(2, 1))
    tensor([[1., 0., 0., 1.],
            [1., 0., 0., 1.]])
"""

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["Parameter", "AddMm", "Add", "Subtract", "Multiply", "Divide", "Pow", "MatMul", "Bmm", "Concat", "Exp",
           "Sqrt", "Rsqrt", "Mean", "Interpolate", "ScaledDotProductAttention"]


class Add(nn.Module):
    """``x + y``.

    Example::

        >>> Add()(torch.tensor([1.0]), 2)
        tensor([3.])
    """

    num_inputs = 2

    def forward(self, x, y):
        return x + y


class Subtract(nn.Module):
    """``x - y``.

    Example::

        >>> Subtract()(1.0, torch.tensor([0.25]))
        tensor([0.7500])
    """

    num_inputs = 2

    def forward(self, x, y):
        return x - y


class Multiply(nn.Module):
    """``x * y``.

    Example::

        >>> Multiply()(torch.tensor([1.5]), torch.tensor([2.0]))
        tensor([3.])
    """

    num_inputs = 2

    def forward(self, x, y):
        return x * y


class Divide(nn.Module):
    """``x / y`` (true division).

    Example::

        >>> Divide()(torch.tensor([3.0]), 2)
        tensor([1.5000])
    """

    num_inputs = 2

    def forward(self, x, y):
        return x / y


class Pow(nn.Module):
    """``x ** y``.

    Example::

        >>> Pow()(torch.tensor([3.0]), 2)
        tensor([9.])
    """

    num_inputs = 2

    def forward(self, x, y):
        return x ** y


class MatMul(nn.Module):
    """``torch.matmul(x, y)``.

    Example::

        >>> MatMul()(torch.ones(2, 3), torch.ones(3, 1))
        tensor([[3.],
                [3.]])
    """

    num_inputs = 2

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        return torch.matmul(x, y)


class Bmm(nn.Module):
    """``torch.bmm(x, y)``.

    Example::

        >>> Bmm()(torch.ones(1, 2, 3), torch.ones(1, 3, 1)).shape
        torch.Size([1, 2, 1])
    """

    num_inputs = 2

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        return torch.bmm(x, y)


class Concat(nn.Module):
    """``torch.cat(xs, dim)``; `num_inputs` is the number of tensors (input quantizer slots).

    Example::

        >>> Concat()(torch.ones(1), torch.zeros(1))
        tensor([1., 0.])
    """

    def __init__(self, dim: int = 0, num_inputs: int = 2):
        super().__init__()
        self.dim = dim
        self.num_inputs = num_inputs

    def forward(self, *xs: Tensor) -> Tensor:
        return torch.cat(xs, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, num_inputs={self.num_inputs}"


class Exp(nn.Module):
    """``torch.exp(x)``.

    Example::

        >>> Exp()(torch.tensor([0.0]))
        tensor([1.])
    """

    def forward(self, x: Tensor) -> Tensor:
        return torch.exp(x)


class Sqrt(nn.Module):
    """``torch.sqrt(x)``.

    Example::

        >>> Sqrt()(torch.tensor([4.0]))
        tensor([2.])
    """

    def forward(self, x: Tensor) -> Tensor:
        return torch.sqrt(x)


class Rsqrt(nn.Module):
    """``torch.rsqrt(x)``.

    Example::

        >>> Rsqrt()(torch.tensor([4.0]))
        tensor([0.5000])
    """

    def forward(self, x: Tensor) -> Tensor:
        return torch.rsqrt(x)


class Mean(nn.Module):
    """``torch.mean(x, dim, keepdim)`` (``dim=None``: over all elements).

    Example::

        >>> Mean(dim=1)(torch.tensor([[1.0, 3.0]]))
        tensor([2.])
    """

    def __init__(self, dim=None, keepdim: bool = False):
        super().__init__()
        self.dim = dim
        self.keepdim = keepdim

    def forward(self, x: Tensor) -> Tensor:
        return torch.mean(x, self.dim, self.keepdim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, keepdim={self.keepdim}"


class Interpolate(nn.Module):
    """``F.interpolate(x, size, scale_factor, mode, align_corners, recompute_scale_factor,
    antialias)``.

    Example::

        >>> Interpolate(scale_factor=2)(torch.ones(1, 1, 2)).shape
        torch.Size([1, 1, 4])
    """

    def __init__(self, size=None, scale_factor=None, mode: str = "nearest", align_corners=None,
                 recompute_scale_factor=None, antialias: bool = False):
        super().__init__()
        self.size = size
        self.scale_factor = scale_factor
        self.mode = mode
        self.align_corners = align_corners
        self.recompute_scale_factor = recompute_scale_factor
        self.antialias = antialias

    def forward(self, x: Tensor) -> Tensor:
        return F.interpolate(x, self.size, self.scale_factor, self.mode, self.align_corners,
                             self.recompute_scale_factor, self.antialias)

    def extra_repr(self) -> str:
        return f"size={self.size}, scale_factor={self.scale_factor}, mode={self.mode!r}"


class ScaledDotProductAttention(nn.Module):
    """``F.scaled_dot_product_attention`` with its functional signature (for HF BERT's sdpa path).

    Example::

        >>> q = torch.zeros(1, 2, 4)
        >>> ScaledDotProductAttention()(q, q, torch.ones(1, 2, 4))
        tensor([[[1., 1., 1., 1.],
                 [1., 1., 1., 1.]]])
    """

    num_inputs = 3

    def forward(self, query: Tensor, key: Tensor, value: Tensor, attn_mask: Tensor | None = None,
                dropout_p: float = 0.0, is_causal: bool = False, scale: float | None = None,
                enable_gqa: bool = False) -> Tensor:
        return F.scaled_dot_product_attention(query, key, value, attn_mask, dropout_p, is_causal,
                                              scale=scale, enable_gqa=enable_gqa)


class AddMm(nn.Module):
    """``torch.addmm(bias, x, weight)`` with `weight` laid out ``(in, out)`` (HF GPT-2's
    ``Conv1D``), holding the model's own parameters; its output channels are axis 1.

    Example::

        >>> w, b = nn.Parameter(torch.ones(3, 2)), nn.Parameter(torch.zeros(2))
        >>> AddMm(w, b)(torch.ones(4, 3))[0]
        tensor([3., 3.], grad_fn=<SelectBackward0>)
    """

    def __init__(self, weight: nn.Parameter, bias: nn.Parameter):
        super().__init__()
        self.weight, self.bias = weight, bias

    def forward(self, x: Tensor) -> Tensor:
        return torch.addmm(self.bias, x, self.weight)


class Parameter(nn.Module):
    """A parameter the model uses in a function rather than in its module (a class token, a
    layer scale, ``1 + weight`` of an RMSNorm): ``forward()`` returns it, so that it gets a
    parameter quantizer like any weight. Holds the model's own parameter.

    Example::

        >>> p = nn.Parameter(torch.ones(2))
        >>> Parameter(p)() is p
        True
    """

    num_inputs = 0

    def __init__(self, weight: nn.Parameter):
        super().__init__()
        self.weight = weight

    def forward(self) -> Tensor:
        return self.weight
