"""Whether a quantizer call is plain eager (:func:`plain_eager`), for the paths that cache tensors,
write in place or take ops that only eager autograd records; whether ``torch.compile`` traces it
(:func:`compiled`)."""

import torch
from torch.fx import _symbolic_trace as _fx_trace

__all__ = ["compiled", "plain_eager"]


def plain_eager() -> bool:
    """Whether this is a plain eager call: not traced (fx, TorchScript, ONNX) nor compiled or
    exported, so that cached tensors and in-place writes cannot leak into a captured graph.

    Example::

        >>> plain_eager()
        True
    """
    return not (torch.compiler.is_compiling() or torch.compiler.is_exporting() or
                torch._C._is_tracing() or _fx_trace._is_fx_tracing_flag)


def compiled() -> bool:
    """Whether ``torch.compile`` traces this call (``torch.export`` keeps its former graph: the
    ops that its consumers know).

    Example::

        >>> compiled()
        False
    """
    return torch.compiler.is_compiling() and not torch.compiler.is_exporting()
