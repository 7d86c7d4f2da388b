"""Quantizer slots of a sim's modules: read, swap and restore them.

The analysis tools evaluate a sim under many quantizer settings (only one layer quantized, only
weights, a candidate precision per layer). Rather than rebuilding quantizers, they swap the
quantizer objects in the slots of ``input_quantizers`` / ``output_quantizers`` /
``param_quantizers`` and put the originals back afterwards (:class:`SlotState`).

Example::

    >>> import torch
    >>> from torchqsim.quantsim import QuantizationSimModel
    >>> sim = QuantizationSimModel(nn.Sequential(nn.Linear(4, 4)), torch.randn(2, 4))
    >>> with SlotState(sim):
    ...     install(sim.model.get_submodule("0"), {})     # every slot of "0" off
    ...     sorted(slot_map(sim.model.get_submodule("0")))
    []
    >>> sorted(slot_map(sim.model.get_submodule("0")))
    [('input', 0), ('output', 0), ('param', 'weight')]
"""

from torch import nn

__all__ = ["slot_map", "install", "SlotState", "quantized_groups", "CallbackFunc", "call"]


def slot_map(module: nn.Module) -> dict:
    """``{(kind, key): quantizer}`` of a quantized module's enabled slots (kind "input",
    "output" or "param")."""
    out = {("input", i): q for i, q in enumerate(module.input_quantizers) if q is not None}
    out |= {("output", i): q for i, q in enumerate(module.output_quantizers) if q is not None}
    out |= {("param", k): q for k, q in module.param_quantizers.items() if q is not None}
    return out


def install(module: nn.Module, slots: dict) -> None:
    """Sets every slot of `module` to ``slots.get((kind, key))`` (None: off)."""
    for i in range(len(module.input_quantizers)):
        module.input_quantizers[i] = slots.get(("input", i))
    for i in range(len(module.output_quantizers)):
        module.output_quantizers[i] = slots.get(("output", i))
    for k in list(module.param_quantizers.keys()):
        module.param_quantizers[k] = slots.get(("param", k))


def quantized_groups(sim) -> dict:
    """``{module path: module}`` of the sim's modules with at least one enabled quantizer, in
    module order (AIMET's quantizer groups, one per module here)."""
    return {n: m for n, m in sim.named_qmodules() if slot_map(m)}


class SlotState:
    """Snapshot of every quantized module's slots; restores them on :meth:`restore` or when a
    ``with`` block ends (also on an exception or KeyboardInterrupt)."""

    def __init__(self, sim):
        self.modules = dict(sim.named_qmodules())
        self.saved = {n: slot_map(m) for n, m in self.modules.items()}

    def restore(self) -> None:
        for name, module in self.modules.items():
            install(module, self.saved[name])

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.restore()
        return False


class CallbackFunc:
    """A callback and its extra argument (AIMET ``CallbackFunc``): called as
    ``func(model, args)``.

    Example::

        >>> CallbackFunc(lambda m, n: n * 2, 21).func(None, 21)
        42
    """

    def __init__(self, func, func_callback_args=None):
        self.func = func
        self.args = func_callback_args


def call(callback, model: nn.Module, what: str):
    """Runs a :class:`CallbackFunc` as ``func(model, args)`` or a plain callable as
    ``callback(model)``.

    Raises:
        TypeError: `callback` is neither.
    """
    if isinstance(callback, CallbackFunc):
        return callback.func(model, callback.args)
    if callable(callback):
        return callback(model)
    raise TypeError(f"{what} must be a callable f(model) or a CallbackFunc(func, args), got "
                    f"{type(callback).__name__}")
