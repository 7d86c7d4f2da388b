"""Conversion rules: how one functional call or tensor method becomes a module.

A rule binds the call's arguments by parameter name and builds the module and the arguments it
is called with, or returns None when the call must stay a function (an argument the module
cannot express, e.g. softmax's dtype or a computed interpolate size). The tables that map each
torch function and tensor method to its rule are in :mod:`torchqsim.prepare.rule_table`.
"""

from typing import Callable, NamedTuple, Optional

import torch
from torch import fx, nn


def _functional_modules():
    from ..nn import functional_modules
    return functional_modules


def _quantized_class(module_cls: type) -> Optional[type]:
    from ..nn import quantized_class
    return quantized_class(module_cls)


class _Call(NamedTuple):
    args: dict  # parameter name -> value (fx nodes or constants)
    tensors: set  # nodes that are tensors
    root: nn.Module  # the traced model (owner of get_attr targets)
    training: bool  # the model's training flag while it was traced


class _Rule(NamedTuple):
    params: tuple  # positional parameter names of the function (method: self is "input")
    defaults: dict  # parameter name -> default for the optional ones
    build: Callable[[_Call], Optional[tuple[nn.Module, tuple, dict]]]


class Cast(NamedTuple):
    """A module argument that is `node` cast to `dtype` first: the conversion inserts the
    ``node.to(dtype)`` call (data movement, never quantized) before the module."""
    node: fx.Node
    dtype: torch.dtype


def _is_tensor(call: _Call, value) -> bool:
    return isinstance(value, fx.Node) and value in call.tensors


def _has_node(value) -> bool:
    found = []
    fx.node.map_arg(value, found.append)
    return bool(found)


def _updates_attribute(call: _Call) -> bool:
    """An in-place call (``x.add_(y)``) on a parameter or buffer: must stay in place."""
    x = call.args["input"]
    return isinstance(x, fx.Node) and x.op == "get_attr"


def _inplace(rule: "_Rule") -> "_Rule":
    """`rule` for the in-place method (``add_``): computed out of place, as ``x += y`` is."""
    return rule._replace(build=lambda call: None if _updates_attribute(call)
                         else rule.build(call))


def _binary(module_name: str, other: str = "other", **required):
    """x (op) y with at least one tensor operand, in the call's order (``1 - x`` stays
    ``Subtract()(1, x)``); `other` names y's parameter; `required` arguments (``alpha=1``) must
    have these values."""
    def build(call: _Call):
        if any(call.args.get(k, v) != v for k, v in required.items()):
            return None
        x, y = call.args["input"], call.args[other]
        if _is_mask(x) or _is_mask(y):
            return None
        if not (_is_tensor(call, x) or _is_tensor(call, y)):
            return None  # arithmetic on sizes or Python numbers
        return getattr(_functional_modules(), module_name)(), (x, y), {}
    return build


def _is_mask(value) -> bool:
    """A tensor that held masking values (``finfo.min``, inf) on the dummy input: an op that
    takes one stays in floating point, as no grid could keep both the mask and the data."""
    return isinstance(value, fx.Node) and value.meta.get("mask", False)


def _unary(make: Callable[[_Call], Optional[nn.Module]]):
    def build(call: _Call):
        if not _is_tensor(call, call.args["input"]):
            return None
        module = make(call)
        return None if module is None else (module, (call.args["input"],), {})
    return build


def _functional_unary(module_name: str):
    return _unary(lambda call: getattr(_functional_modules(), module_name)())


_COMPUTED = object()  # an argument that is neither None nor a parameter of the model


def _parameter(call: _Call, name: str):
    """The parameter behind get_attr argument `name`, None for None, else ``_COMPUTED``."""
    return _held_tensor(call, name, call.root.get_parameter)


def _buffer(call: _Call, name: str):
    """The buffer behind get_attr argument `name`, None for None, else ``_COMPUTED``."""
    return _held_tensor(call, name, call.root.get_buffer)


def _held_tensor(call: _Call, name: str, get):
    """``get(target)`` of get_attr argument `name` (None for None); ``_COMPUTED`` for any other
    value, or when `get` finds no such tensor (a buffer asked as a parameter, a plain attribute)."""
    value = call.args[name]
    if value is None:
        return None
    if isinstance(value, fx.Node) and value.op == "get_attr":
        try:
            return get(value.target)
        except AttributeError:
            pass
    return _COMPUTED


def _layer_norm(call: _Call):
    weight, bias = _parameter(call, "weight"), _parameter(call, "bias")
    shape = call.args["normalized_shape"]
    if _COMPUTED in (weight, bias) or (weight is None and bias is not None) \
            or _has_node((shape, call.args["eps"])):
        return None
    module = nn.LayerNorm(shape, eps=call.args["eps"], elementwise_affine=weight is not None,
                          bias=bias is not None, device="meta")
    if weight is not None:
        module.weight = weight
    if bias is not None:
        module.bias = bias
    return module


_BATCH_NORMS = {2: nn.BatchNorm1d, 3: nn.BatchNorm1d, 4: nn.BatchNorm2d}


def _batch_norm(call: _Call):
    """``F.batch_norm`` on the model's parameters and running statistics (timm's
    ``BatchNormAct2d`` calls it from its own forward) -> ``nn.BatchNorm1d/2d`` holding the same
    tensors, when its training flag is the model's own (the module then follows train/eval)."""
    a = call.args
    weight, bias = _parameter(call, "weight"), _parameter(call, "bias")
    mean, var = _buffer(call, "running_mean"), _buffer(call, "running_var")
    cls = _BATCH_NORMS.get(a["input"].meta.get("ndim")) if isinstance(a["input"], fx.Node) else None
    if cls is None or _COMPUTED in (weight, bias, mean, var) or mean is None or var is None \
            or (weight is None) != (bias is None) or a["training"] != call.training \
            or _has_node((a["momentum"], a["eps"])):
        return None
    module = cls(mean.numel(), eps=a["eps"], momentum=a["momentum"],
                 affine=weight is not None, device=mean.device)
    module.running_mean, module.running_var = mean, var
    if weight is not None:
        module.weight, module.bias = weight, bias
    return module


def _linear(call: _Call):
    weight, bias = _parameter(call, "weight"), _parameter(call, "bias")
    if weight is None or _COMPUTED in (weight, bias) or weight.dim() != 2:
        return None
    module = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None, device="meta")
    module.weight = weight
    if bias is not None:
        module.bias = bias
    return module


def _embedding(call: _Call):
    weight, a = _parameter(call, "weight"), call.args
    if weight is None or weight is _COMPUTED or weight.dim() != 2 or a["max_norm"] is not None \
            or _has_node((a["padding_idx"], a["scale_grad_by_freq"], a["sparse"])):
        return None
    module = nn.Embedding(*weight.shape, padding_idx=a["padding_idx"], device="meta",
                          scale_grad_by_freq=a["scale_grad_by_freq"], sparse=a["sparse"])
    module.weight = weight
    return module, (a["input"],), {}


def _pool(cls, *options):
    """``F.avg_pool2d(x, 2)`` and the like -> ``nn.AvgPool2d(2)``, when every option is fixed."""
    def build(call: _Call):
        values = [call.args[o] for o in options]
        return None if _has_node(values) else cls(*values)
    return _unary(build)


_AVG = ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad")
_AVG_DEFAULTS = {"stride": None, "padding": 0, "ceil_mode": False, "count_include_pad": True}
_MAX = ("kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices")
_MAX_DEFAULTS = {"stride": None, "padding": 0, "dilation": 1, "ceil_mode": False,
                 "return_indices": False}


def _addmm(call: _Call):
    weight, bias, a = _parameter(call, "mat2"), _parameter(call, "input"), call.args
    if weight is None or bias is None or _COMPUTED in (weight, bias) or a["beta"] != 1 \
            or a["alpha"] != 1 or not _is_tensor(call, a["mat1"]):
        return None
    return _functional_modules().AddMm(weight, bias), (a["mat1"],), {}


def _dropout(call: _Call):
    # `F.dropout(x, p, training=self.training)` is traced with the flag's value; a module
    # follows the model's train/eval mode instead, which is the same thing. A flag that
    # differs from the model's mode was not `self.training`: keep that call as it is.
    if call.args["training"] != call.training or _has_node(call.args["p"]):
        return None
    return nn.Dropout(call.args["p"], inplace=bool(call.args.get("inplace", False)))


def _same_dtype(call: _Call, dtype) -> bool:
    """A ``dtype=`` argument that changes nothing: None, or the input's own dtype (known when
    the model was captured on a dummy input)."""
    return dtype is None or dtype == call.args["input"].meta.get("dtype")


def _softmax(call: _Call):
    """``nn.Softmax(dim)``; ``softmax(x, dtype=d)`` (HF's fp32 attention probabilities in
    bf16/fp16 models) is ``softmax(x.to(d))`` by definition, so the module gets a :class:`Cast`."""
    x, dtype, dim = call.args["input"], call.args["dtype"], call.args["dim"]
    if not _is_tensor(call, x) or _has_node((dim, dtype)):
        return None
    if _same_dtype(call, dtype):
        return nn.Softmax(dim), (x,), {}
    if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        return None
    return nn.Softmax(dim), (Cast(x, dtype),), {}


def _mean(call: _Call):
    if not _same_dtype(call, call.args["dtype"]) or _has_node((call.args["dim"], call.args["keepdim"])):
        return None
    return _functional_modules().Mean(call.args["dim"], call.args["keepdim"])


def _interpolate(call: _Call):
    values = [call.args[p] for p in _INTERPOLATE_PARAMS[1:]]
    return None if _has_node(values) else _functional_modules().Interpolate(*values)


def _concat(call: _Call):
    tensors, dim = call.args["tensors"], call.args["dim"]
    if not isinstance(tensors, (list, tuple)) or _has_node(dim) \
            or not all(_is_tensor(call, t) for t in tensors):
        return None
    return _functional_modules().Concat(dim, len(tensors)), tuple(tensors), {}


def _sdpa(call: _Call):
    # the module has the function's signature: q, k, v (and a mask) positional, options as kwargs
    a = call.args
    args = (a["query"], a["key"], a["value"]) + (() if a["attn_mask"] is None else
                                                 (a["attn_mask"],))
    options = {k: a[k] for k in _SDPA_PARAMS[4:] if a[k] != _SDPA_DEFAULTS[k]}
    return _functional_modules().ScaledDotProductAttention(), args, options


def _inplace_flag(cls):
    return lambda call: cls(inplace=bool(call.args["inplace"]))


def _plain(cls):
    return lambda call: cls()


_INTERPOLATE_PARAMS = ("input", "size", "scale_factor", "mode", "align_corners",
                       "recompute_scale_factor", "antialias")
_SDPA_PARAMS = ("query", "key", "value", "attn_mask", "dropout_p", "is_causal", "scale",
                "enable_gqa")
_SDPA_DEFAULTS = {"attn_mask": None, "dropout_p": 0.0, "is_causal": False, "scale": None,
                  "enable_gqa": False}
