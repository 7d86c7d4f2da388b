"""The errors of preparation: :class:`PrepareError`, with messages that name the user's failing
line, the submodule, and how to exclude it."""

import os
import traceback
from typing import Optional

import torch
from torch import fx, nn

from ..capture import CaptureError


class PrepareError(RuntimeError):
    """torch.fx could not trace the model; the message names the failing code and the fix.

    Example::

        >>> import torch
        >>> from torch import nn
        >>> class Gate(nn.Module):
        ...     def forward(self, x):
        ...         return x if x.sum() > 0 else -x
        >>> try:
        ...     prepare_model(nn.Sequential(Gate()))
        ... except PrepareError as e:
        ...     print("modules_to_exclude" in str(e))
        True
    """


PrepareError.__module__ = "torchqsim.prepare"  # its public path, shown in tracebacks


def _user_frame(exc: BaseException) -> Optional[traceback.FrameSummary]:
    """The innermost traceback frame outside torch and this package: the user's code."""
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # torchqsim
    skip = (os.path.dirname(torch.__file__), package)
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if not os.path.abspath(f.filename).startswith(skip)]
    return frames[-1] if frames else None


def _code(exc: BaseException) -> str:
    frame = _user_frame(exc)
    return (f"\n  File \"{frame.filename}\", line {frame.lineno}, in {frame.name}\n"
            f"    {frame.line}") if frame is not None else ""


def _leaf_advice(path: str, cls: type) -> str:
    return (f"Mark that submodule as a leaf, called without looking inside: "
            f"prepare_model(model, modules_to_exclude=[model.{path}]) or "
            f"module_classes_to_exclude=[{cls.__name__}]. A leaf's own functionals are not "
            f"converted, and QuantizationSimModel needs a quantized class for it "
            f"(@torchqsim.register_quantized({cls.__name__})) or must exclude it too.")


def _prepare_error(model: nn.Module, tracer: fx.Tracer, exc: Exception) -> PrepareError:
    """The error for a failed symbolic trace; `tracer` is the ``_Tracer`` that failed."""
    failed = f"{type(exc).__name__}: {exc}{_code(exc)}\n"
    explain = ("torch.fx runs forward with symbolic values: Python control flow on tensor "
               "values or shapes, len() or iteration over tensors and non-torch calls on them "
               "fail. Pass dummy_input=... : the model is then captured by running it (any "
               "eager model works). ")
    if tracer.failed_module is not None and tracer.failed_module[0]:
        path, cls = tracer.failed_module
        return PrepareError(
            f"prepare_model: torch.fx cannot trace module {path!r} ({cls.__name__}) of "
            f"{type(model).__name__}: {failed}{explain}{_leaf_advice(path, cls)}")
    return PrepareError(
        f"prepare_model: torch.fx cannot trace {type(model).__name__}: the failing code is in "
        f"the model's own forward: {failed}{explain}Fix Python-valued arguments with "
        f"concrete_args={{'name': value}}, or move the data-dependent code into a submodule and "
        f"exclude it with modules_to_exclude=[...] / module_classes_to_exclude=[...].")


def _capture_error(model: nn.Module, exc: CaptureError) -> PrepareError:
    error = exc.error
    where = (f"in module {exc.module!r} ({type(model.get_submodule(exc.module)).__name__})"
             if exc.module else "in its own forward")
    advice = _leaf_advice(exc.module, type(model.get_submodule(exc.module))) if exc.module \
        else "Check that model(dummy_input) runs in eager mode."
    return PrepareError(
        f"prepare_model: {type(model).__name__} raised while it ran on dummy_input to be "
        f"captured, {where}: {type(error).__name__}: {error}{_code(error)}\n"
        f"The model must run in eager mode, in eval mode and without gradients, on "
        f"dummy_input. {advice}")
