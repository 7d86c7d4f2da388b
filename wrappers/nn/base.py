"""`QuantizationMixin`: the base of every quantized module, and the registry of quantized classes.

A quantized class derives from the mixin and the torch module it quantizes, e.g.
``class QuantizedLinear(QuantizationMixin, nn.Linear)``, and holds three sets of quantizer slots
(aimet-torch v2 names), each slot a quantizer module (any callable ``nn.Module`` x -> x, e.g.
:class:`~torchqsim.quantization.QuantizeDequantize`) or ``None`` (disabled: data passes through
exactly):

- ``input_quantizers: nn.ModuleList``: one per floating tensor input, matched to the positional
  arguments of ``forward`` in order (non-tensor and integer arguments are never quantized);
- ``output_quantizers: nn.ModuleList``: one per tensor output (a tuple output is matched
  element by element);
- ``param_quantizers: nn.ModuleDict``: parameter name -> quantizer, for each parameter the
  module owns directly ("weight", "bias", ...).

The forward quantizes the inputs, runs :meth:`QuantizationMixin.quantized_forward` (the torch
computation with :meth:`QuantizationMixin.quantized_param` in place of each parameter; the
floating-point "shadow" parameter itself is never modified, so it trains as usual), then
quantizes the outputs.

Example::

    >>> import torch
    >>> from torch import nn
    >>> from torchqsim.nn import QuantizedLinear
    >>> from torchqsim.quantization import QuantizeDequantize
    >>> linear = nn.Linear(4, 2)
    >>> qlinear = QuantizedLinear.from_module(linear)
    >>> qlinear.weight is linear.weight
    True
    >>> qlinear.param_quantizers["weight"] = QuantizeDequantize((), 8, symmetric=True)
    >>> qlinear.param_quantizers["weight"].set_range(-1.0, 1.0)
    >>> qlinear(torch.randn(3, 4)).shape
    torch.Size([3, 2])
"""

import sys

import torch
from torch import Tensor, nn

from .._holders import SOLE_REFS
from ..quantization.eager_qparams import eval_into_input
from ..quantization.quantizer import QuantizeDequantize, plain_eager
from .facts import ModuleFacts
from .overwritable import hookless, overwritable, straight_through_in_place, straight_through_into
from .scratch import quantized_weight_for_op

__all__ = ["QuantizationMixin", "UnsupportedModuleError", "UNQUANTIZED_MODULE_TYPES",
           "torch_base_class", "quantized_class", "quantized_class_of", "to_quantized"]

#: Module types the sim leaves alone (no wrapper, no quantizers): containers and ``nn.Identity``.
UNQUANTIZED_MODULE_TYPES = (nn.Identity, nn.Sequential, nn.ModuleList, nn.ModuleDict)


class UnsupportedModuleError(RuntimeError):
    """A leaf module has no quantized class: register one or exclude the module.

    Example::

        >>> class Odd(nn.Module):
        ...     def forward(self, x):
        ...         return x.cumsum(0)
        >>> to_quantized(Odd(), "block.odd")
        Traceback (most recent call last):
        ...
        torchqsim.nn.base.UnsupportedModuleError: module 'block.odd' (...Odd) has no quantized...
    """


def quantize_tensor(quantizer: nn.Module | None, x):
    """`quantizer(x)` for a floating tensor `x` and a quantizer; anything else unchanged.

    Example::

        >>> quantize_tensor(None, torch.ones(2))
        tensor([1., 1.])
        >>> quantize_tensor(nn.Identity(), torch.tensor([3]))   # integer tensors pass through
        tensor([3])
    """
    if quantizer is None or not isinstance(x, Tensor) or not x.is_floating_point() \
            or x.numel() == 0:  # an empty tensor (an empty cache) has no values to quantize
        return x
    return quantizer(x)


def _quantize_sequence(quantizers: nn.ModuleList, values):
    """Quantize `values[i]` with `quantizers[i]`; values beyond the slots pass through."""
    slots = list(quantizers._modules.values())
    if slots.count(None) == len(slots):  # every slot disabled (most inputs): nothing to do
        return tuple(values)
    return tuple([quantize_tensor(q, v) for q, v in zip(slots, values)]) + \
        tuple(values[len(slots):])


def torch_base_class(qcls: type) -> type:
    """The torch module class a quantized class derives from (first non-mixin module base)."""
    return next(c for c in qcls.__mro__
                if issubclass(c, nn.Module) and not issubclass(c, QuantizationMixin))


class QuantizationMixin(ModuleFacts):
    """Mixin giving a torch module input, output and parameter quantizer slots (AIMET v2 name).

    Slot counts come from ``num_inputs`` / ``num_outputs`` attributes of the quantized class or
    of the torch module (class or instance, e.g. ``Concat(num_inputs=3)``), 1 by default; also
    ``onnx_types`` (set by :meth:`implements`: the AIMET config op-type names of the module).

    Facts about the module family (weight layout, channel axes, BatchNorm folding, MACs) live on
    its quantized class, inherited from :class:`~torchqsim.nn.facts.ModuleFacts`, for the sim's
    plan and the PTQ tools (:func:`quantized_class_of` finds the class of a float module).

    Built-in quantized classes override :meth:`quantized_forward` with an explicit call of the
    torch function on quantized parameters. A registered class that does not (a user's
    ``class QuantizedMyModule(QuantizationMixin, MyModule): pass``) gets a generic one: the torch
    module's own forward, run with each quantized parameter swapped in for the duration of the
    call.

    Example::

        >>> q = tq.nn.QuantizedReLU()       # slots start disabled
        >>> list(q.input_quantizers), list(q.output_quantizers), dict(q.param_quantizers)
        ([None], [None], {})
        >>> q(torch.tensor([-1.0, 2.0]))
        tensor([0., 2.])
    """

    onnx_types: tuple[str, ...] = ()
    _registry: dict[type, type] = {}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.__quant_init__()

    def __quant_init__(self) -> None:
        """Create the quantizer slots, all ``None``: one per input, output and own parameter."""
        self.input_quantizers = nn.ModuleList([None] * getattr(self, "num_inputs", 1))
        self.output_quantizers = nn.ModuleList([None] * getattr(self, "num_outputs", 1))
        self.param_quantizers = nn.ModuleDict(
            {name: None for name, _ in self.named_parameters(recurse=False)})

    @classmethod
    def from_module(cls, module: nn.Module):
        """A quantized copy of `module` that shares its parameters, buffers and submodules.

        The wrapper gets a shallow copy of the module's attributes (AIMET shares ``__dict__``),
        so ``wrapper.weight is module.weight``: training either trains both. Adding quantizers
        to the wrapper does not change `module`.

        Raises:
            TypeError: `module` is not an instance of the torch class this class quantizes.

        Example::

            >>> conv = nn.Conv2d(3, 8, 3)
            >>> tq.nn.QuantizedConv2d.from_module(conv).weight is conv.weight
            True
        """
        base = torch_base_class(cls)
        if not isinstance(module, base):
            raise TypeError(f"{cls.__name__}.from_module expects a {base.__module__}."
                            f"{base.__qualname__}, got {type(module).__qualname__}")
        qmodule = cls.__new__(cls)
        qmodule.__dict__ = {k: v.copy() if isinstance(v, dict) else v
                            for k, v in module.__dict__.items()}
        qmodule.__quant_init__()
        return qmodule

    @classmethod
    def implements(cls, module_cls: type, onnx_types=None):
        """Class decorator registering a quantized class for `module_cls`.

        Also reachable as ``torchqsim.register_quantized``. A later registration for the same
        `module_cls` replaces the earlier one; lookups (:func:`quantized_class`) are by exact type.

        Args:
            module_cls: the torch module class quantized by the decorated class.
            onnx_types: the AIMET config ``op_type`` names that configure it (reference
                aimet.md 1.7), e.g. ``("Gemm", "MatMul")``; by default the class name.

        Raises:
            TypeError: `module_cls` is not an ``nn.Module`` class, or the decorated class does not
                derive from both ``QuantizationMixin`` and `module_cls`.

        Example::

            >>> class Scale(nn.Module):
            ...     def __init__(self):
            ...         super().__init__()
            ...         self.weight = nn.Parameter(torch.tensor(2.0))
            ...     def forward(self, x):
            ...         return x * self.weight
            >>> @QuantizationMixin.implements(Scale, onnx_types=("Mul",))
            ... class QuantizedScale(QuantizationMixin, Scale):
            ...     pass
            >>> quantized_class(Scale) is QuantizedScale, dict(QuantizedScale().param_quantizers)
            (True, {'weight': None})
        """
        if not (isinstance(module_cls, type) and issubclass(module_cls, nn.Module)):
            raise TypeError(f"register_quantized(module_cls): expected an nn.Module class, got "
                            f"{module_cls!r}")
        names = (onnx_types,) if isinstance(onnx_types, str) else onnx_types
        names = (module_cls.__name__,) if names is None else tuple(names)
        if not names or not all(isinstance(n, str) and n for n in names):
            raise TypeError(f"register_quantized({module_cls.__name__}): onnx_types must be "
                            f"non-empty strings, got {onnx_types!r}")

        def register(qcls: type) -> type:
            if not (isinstance(qcls, type) and issubclass(qcls, QuantizationMixin) and
                    issubclass(qcls, module_cls)):
                raise TypeError(f"@register_quantized({module_cls.__name__}) decorates a class "
                                f"deriving from QuantizationMixin and {module_cls.__name__}, "
                                f"got {qcls!r}")
            qcls.onnx_types = names
            QuantizationMixin._registry[module_cls] = qcls
            return qcls

        return register

    @classmethod
    def wrap(cls, module_cls: type, onnx_types=None, module_name: str | None = None) -> type:
        """Create and register ``Quantized<Name>`` for `module_cls` with the generic forward.

        Args:
            module_cls: the torch module class.
            onnx_types: as in :meth:`implements`.
            module_name: ``__module__`` of the new class (the module that stores it, so that it
                pickles); `module_cls`'s module by default.

        Example::

            >>> class Twice(nn.Module):
            ...     def forward(self, x):
            ...         return 2 * x
            >>> QuantizedTwice = QuantizationMixin.wrap(Twice)
            >>> QuantizedTwice.__name__, QuantizedTwice.onnx_types, QuantizedTwice()(torch.ones(1))
            ('QuantizedTwice', ('Twice',), tensor([2.]))
        """
        name = "Quantized" + module_cls.__name__
        doc = (f"Quantized :class:`{module_cls.__module__}.{module_cls.__qualname__}`: the torch "
               f"forward with one input and one output quantizer slot (parameters, if any, in "
               f"``param_quantizers``).\n\n    Example::\n\n        >>> {name}.from_module("
               f"module)  # doctest: +SKIP\n")
        qcls = type(name, (QuantizationMixin, module_cls),
                    {"__module__": module_name or module_cls.__module__, "__qualname__": name,
                     "__doc__": doc})
        return cls.implements(module_cls, onnx_types)(qcls)

    def quantized_param(self, name: str, for_op: bool = False):
        """Parameter `name` through its quantizer (the parameter itself when the slot is None).

        `for_op`: the caller passes the result to one op that consumes it before returning and
        keeps no reference to it; in-place sims may then write it into a per-thread buffer
        (:func:`~torchqsim.nn.scratch.quantized_weight_for_op`).

        Example::

            >>> q = tq.nn.QuantizedLinear(2, 2)
            >>> q.quantized_param("weight") is q.weight
            True
        """
        param = self._parameters.get(name)
        if param is None:  # not a registered parameter (a property, or a plain tensor)
            param = getattr(self, name)
        quantizer = self._modules["param_quantizers"]._modules.get(name)
        if quantizer is None:
            return param
        if for_op:
            once = quantized_weight_for_op(quantizer, param)
            if once is not None:
                return once
        return quantize_tensor(quantizer, param)

    def quantize_inputs(self, args: tuple) -> tuple:
        """Positional arguments quantized by ``input_quantizers`` (slot i <- argument i)."""
        return _quantize_sequence(self._modules["input_quantizers"], args)

    def quantize_outputs(self, out):
        """A tensor output through slot 0; a tuple or list element by element."""
        if isinstance(out, (tuple, list)):
            return type(out)(_quantize_sequence(self._modules["output_quantizers"], out))
        return _quantize_sequence(self._modules["output_quantizers"], (out,))[0]

    def forward(self, *args, **kwargs):
        """Quantize inputs, run :meth:`quantized_forward`, quantize outputs.

        A single tensor output that nothing else can reach is quantized in place instead of into a
        new tensor (:func:`~torchqsim.nn.overwritable.overwritable`) by an output quantizer
        without hooks (:func:`~torchqsim.nn.overwritable.hookless`): without autograd
        (calibration, evaluation), and in training by a per-tensor straight-through quantizer
        (:func:`~torchqsim.nn.overwritable.straight_through_in_place`).
        """
        out = self.quantized_forward(*self.quantize_inputs(args), **kwargs)
        # slot 0 (ModuleList keys are "0", "1", ...)
        q = self._modules["output_quantizers"]._modules.get("0")
        if q is not None and type(q).forward is QuantizeDequantize.forward and hookless(q) and \
                plain_eager():
            if torch.is_grad_enabled():
                if straight_through_in_place(q, out) and sys.getrefcount(out) <= SOLE_REFS and \
                        overwritable(out):
                    y = straight_through_into(q, out)
                    if y is not None:
                        return y
            elif q._calibrating:  # observed, never written: it need not be overwritable
                if type(out) is Tensor and out.is_floating_point() and out.numel():
                    return q.forward_into_input(out)
            elif sys.getrefcount(out) <= SOLE_REFS and overwritable(out):
                return eval_into_input(q, out)
        return self.quantize_outputs(out)

    def quantized_forward(self, *args, **kwargs):
        """The torch computation on already-quantized inputs, with quantized parameters.

        Generic version: the torch module's forward with each quantized parameter swapped into
        the module for the duration of the call. Built-in classes override it.
        """
        slots = self._modules["param_quantizers"]._modules
        if not slots or list(slots.values()).count(None) == len(slots):
            return super().forward(*args, **kwargs)
        active = {n: q for n, q in slots.items() if q is not None}
        saved = {n: self._parameters[n] for n in active}
        try:
            for n, q in active.items():
                self._parameters[n] = q(saved[n])
            return super().forward(*args, **kwargs)
        finally:
            self._parameters.update(saved)


def quantized_class(module_cls: type) -> type | None:
    """The registered quantized class of exactly `module_cls`, or None.

    Example::

        >>> quantized_class(nn.Linear).__name__, quantized_class(nn.Unfold)
        ('QuantizedLinear', None)
    """
    return QuantizationMixin._registry.get(module_cls)


def quantized_class_of(module: nn.Module) -> type:
    """The quantized class whose facts describe `module`: its own class when it is quantized,
    else the registered quantized class of the nearest class in its MRO (a subclass of
    ``nn.Conv2d`` is described by ``QuantizedConv2d``), else :class:`QuantizationMixin` (the
    defaults).

    Example::

        >>> quantized_class_of(nn.ConvTranspose1d(2, 4, 3)).param_channel_axis("weight")
        1
        >>> quantized_class_of(nn.LSTM(2, 2)).is_weight_layer
        False
    """
    if isinstance(module, QuantizationMixin):
        return type(module)
    for cls in type(module).__mro__:
        if cls in QuantizationMixin._registry:
            return QuantizationMixin._registry[cls]
    return QuantizationMixin


def to_quantized(module: nn.Module, name: str = ""):
    """The quantized wrapper of `module` (sharing its parameters), for module path `name`.

    Quantized modules and :data:`UNQUANTIZED_MODULE_TYPES` are returned unchanged.

    Raises:
        UnsupportedModuleError: no quantized class is registered for ``type(module)``; the
            message names `name` and the class and shows how to register or exclude it.

    Example::

        >>> type(to_quantized(nn.ReLU(), "act")).__name__
        'QuantizedReLU'
    """
    if isinstance(module, QuantizationMixin) or type(module) in UNQUANTIZED_MODULE_TYPES:
        return module
    qcls = quantized_class(type(module))
    if qcls is None:
        cls = type(module)
        raise UnsupportedModuleError(
            f"module {name or '<root>'!r} ({cls.__module__}.{cls.__qualname__}) has no quantized "
            f"class. Register one:\n\n"
            f"    @torchqsim.register_quantized({cls.__name__})\n"
            f"    class Quantized{cls.__name__}(torchqsim.nn.QuantizationMixin, {cls.__name__}):\n"
            f"        pass  # quantizes inputs, parameters and outputs around "
            f"{cls.__name__}.forward\n\n"
            f"or exclude it so it runs in floating point: prepare_model(..., "
            f"modules_to_exclude=[model.{name or '...'}]) or "
            f"module_classes_to_exclude=[{cls.__name__}]")
    return qcls.from_module(module)
