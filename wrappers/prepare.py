"""`prepare_model`: make every quantizable computation of a model a module call (torch.fx).

QuantSim puts quantizers on modules, so a ``torch.nn.functional`` call or a tensor operator in
``forward`` would go unquantized (AIMET model_preparer, reference aimet.md §5.4). Preparation
traces the model with ``torch.fx`` and rewrites the graph:

- functionals and tensor methods become modules: ``torch.nn`` modules where one exists
  (``F.relu`` -> ``nn.ReLU``, ``F.gelu(x, approximate=)`` -> ``nn.GELU``, ``softmax`` ->
  ``nn.Softmax(dim)``, ``F.layer_norm``/``F.linear`` on parameters -> ``nn.LayerNorm``/
  ``nn.Linear`` holding those same parameters, ...), else the float modules of
  :mod:`torchqsim.nn.functional_modules` (``x + y`` -> ``Add``, ``x * 0.5`` -> ``Multiply``
  with 0.5 as its second argument, ``@`` -> ``MatMul``, ``torch.cat`` -> ``Concat``, ...);
  a call is converted only when the module it becomes has a quantized wrapper;
- a module called more than once is duplicated, so each call gets its own quantizers;
- the trace stops at modules that have a quantized wrapper and at excluded modules (leaves).

The prepared model computes exactly what the original computes (``torch.equal`` outputs).

Example::

    >>> import torch
    >>> from torch import nn
    >>> from torchqsim.prepare import prepare_model
    >>> class Block(nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.fc = nn.Linear(4, 4)
    ...     def forward(self, x):
    ...         return torch.relu(self.fc(x)) + x
    >>> gm = prepare_model(Block())
    >>> [(name, type(m).__name__) for name, m in gm.named_children()]
    [('fc', 'Linear'), ('module_relu', 'ReLU'), ('module_add', 'Add')]
"""

import copy
import inspect
import operator
import os
import traceback
from typing import Any, Callable, Iterable, NamedTuple, Optional

import torch
import torch.nn.functional as F
from torch import fx, nn

import torch.utils._pytree as pytree

from ._forward import eval_mode, run_model, split_dummy_input
from .capture import (MASK_MAGNITUDE, CaptureError, capture, cloned, no_fast_paths,
                      preserved)
from .graph import tensor_nodes

__all__ = ["prepare_model", "PrepareError"]


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


def _functional_modules():
    from .nn import functional_modules
    return functional_modules


def _quantized_class(module_cls: type) -> Optional[type]:
    from .nn import quantized_class
    return quantized_class(module_cls)


# --------------------------------------------------------------------------------------------
# Conversion rules. A rule binds the call's arguments by parameter name and builds the module
# and the arguments it is called with, or returns None when the call must stay a function
# (an argument the module cannot express, e.g. softmax's dtype or a computed interpolate size).
# --------------------------------------------------------------------------------------------

class _Call(NamedTuple):
    args: dict  # parameter name -> value (fx nodes or constants)
    tensors: set  # nodes that are tensors
    root: nn.Module  # the traced model (owner of get_attr targets)
    training: bool  # the model's training flag while it was traced


class _Rule(NamedTuple):
    params: tuple  # positional parameter names of the function (method: self is "input")
    defaults: dict  # parameter name -> default for the optional ones
    build: Callable[[_Call], Optional[tuple[nn.Module, tuple, dict]]]


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
    value = call.args[name]
    if value is None:
        return None
    if isinstance(value, fx.Node) and value.op == "get_attr":
        try:
            return call.root.get_parameter(value.target)
        except AttributeError:  # a buffer or a plain tensor attribute
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
_X, _XY = ("input",), ("input", "other")
_ADD, _SUB = _binary("Add"), _binary("Subtract")
_MUL, _DIV = _binary("Multiply"), _binary("Divide")
_TORCH_ADD = _Rule(_XY + ("alpha",), {"alpha": 1}, _binary("Add", alpha=1))
_TORCH_SUB = _Rule(_XY + ("alpha",), {"alpha": 1}, _binary("Subtract", alpha=1))
_TORCH_DIV = _Rule(_XY + ("rounding_mode",), {"rounding_mode": None},
                   _binary("Divide", rounding_mode=None))
_MATMUL = _binary("MatMul")
_SOFTMAX = _unary(lambda call: None if not _same_dtype(call, call.args["dtype"]) or _has_node(
    call.args["dim"]) else nn.Softmax(call.args["dim"]))
_SIGMOID, _TANH = _unary(_plain(nn.Sigmoid)), _unary(_plain(nn.Tanh))
_EXP, _SQRT, _RSQRT = (_functional_unary(n) for n in ("Exp", "Sqrt", "Rsqrt"))
_MEAN = _Rule(_X + ("dim", "keepdim", "dtype"), {"dim": None, "keepdim": False, "dtype": None},
              _unary(_mean))
_RELU_METHOD = _Rule(_X, {}, _unary(_plain(nn.ReLU)))

_FUNCTION_RULES: dict[Any, _Rule] = {
    operator.add: _Rule(_XY, {}, _ADD), operator.iadd: _Rule(_XY, {}, _ADD),
    torch.add: _TORCH_ADD,
    operator.sub: _Rule(_XY, {}, _SUB), operator.isub: _Rule(_XY, {}, _SUB),
    torch.sub: _TORCH_SUB, torch.subtract: _TORCH_SUB,
    operator.mul: _Rule(_XY, {}, _MUL), operator.imul: _Rule(_XY, {}, _MUL),
    torch.mul: _Rule(_XY, {}, _MUL), torch.multiply: _Rule(_XY, {}, _MUL),
    operator.truediv: _Rule(_XY, {}, _DIV), operator.itruediv: _Rule(_XY, {}, _DIV),
    torch.div: _TORCH_DIV, torch.divide: _TORCH_DIV, torch.true_divide: _Rule(_XY, {}, _DIV),
    operator.matmul: _Rule(_XY, {}, _MATMUL), torch.matmul: _Rule(_XY, {}, _MATMUL),
    torch.bmm: _Rule(("input", "mat2"), {}, _binary("Bmm", other="mat2")),
    operator.pow: _Rule(_XY, {}, _binary("Pow")),
    torch.pow: _Rule(("input", "exponent"), {}, _binary("Pow", other="exponent")),
    torch.cat: _Rule(("tensors", "dim"), {"dim": 0}, _concat),
    torch.concat: _Rule(("tensors", "dim"), {"dim": 0}, _concat),
    torch.concatenate: _Rule(("tensors", "dim"), {"dim": 0}, _concat),
    F.softmax: _Rule(_X + ("dim", "_stacklevel", "dtype"),
                     {"dim": None, "_stacklevel": 3, "dtype": None}, _SOFTMAX),
    torch.softmax: _Rule(_X + ("dim", "dtype"), {"dtype": None}, _SOFTMAX),
    F.relu: _Rule(_X + ("inplace",), {"inplace": False}, _unary(_inplace_flag(nn.ReLU))),
    torch.relu: _RELU_METHOD,
    F.relu6: _Rule(_X + ("inplace",), {"inplace": False}, _unary(_inplace_flag(nn.ReLU6))),
    F.hardswish: _Rule(_X + ("inplace",), {"inplace": False},
                       _unary(_inplace_flag(nn.Hardswish))),
    F.silu: _Rule(_X + ("inplace",), {"inplace": False}, _unary(_inplace_flag(nn.SiLU))),
    F.leaky_relu: _Rule(_X + ("negative_slope", "inplace"),
                        {"negative_slope": 0.01, "inplace": False},
                        _unary(lambda c: None if _has_node(c.args["negative_slope"]) else
                               nn.LeakyReLU(c.args["negative_slope"], bool(c.args["inplace"])))),
    F.gelu: _Rule(_X + ("approximate",), {"approximate": "none"},
                  _unary(lambda c: nn.GELU(approximate=c.args["approximate"]))),
    torch.sigmoid: _Rule(_X, {}, _SIGMOID), F.sigmoid: _Rule(_X, {}, _SIGMOID),
    torch.tanh: _Rule(_X, {}, _TANH), F.tanh: _Rule(_X, {}, _TANH),
    F.layer_norm: _Rule(_X + ("normalized_shape", "weight", "bias", "eps"),
                        {"weight": None, "bias": None, "eps": 1e-5}, _unary(_layer_norm)),
    F.linear: _Rule(_X + ("weight", "bias"), {"bias": None}, _unary(_linear)),
    F.embedding: _Rule(_X + ("weight", "padding_idx", "max_norm", "norm_type",
                             "scale_grad_by_freq", "sparse"),
                       {"padding_idx": None, "max_norm": None, "norm_type": 2.0,
                        "scale_grad_by_freq": False, "sparse": False}, _embedding),
    F.dropout: _Rule(_X + ("p", "training", "inplace"),
                     {"p": 0.5, "training": True, "inplace": False}, _unary(_dropout)),
    torch.exp: _Rule(_X, {}, _EXP), torch.sqrt: _Rule(_X, {}, _SQRT),
    torch.rsqrt: _Rule(_X, {}, _RSQRT), torch.mean: _MEAN,
    F.interpolate: _Rule(_INTERPOLATE_PARAMS,
                         {"size": None, "scale_factor": None, "mode": "nearest",
                          "align_corners": None, "recompute_scale_factor": None,
                          "antialias": False}, _unary(_interpolate)),
    F.scaled_dot_product_attention: _Rule(_SDPA_PARAMS, _SDPA_DEFAULTS, _sdpa),
    torch.addmm: _Rule(("input", "mat1", "mat2", "beta", "alpha"), {"beta": 1, "alpha": 1},
                       _addmm),
    F.avg_pool1d: _Rule(_X + _AVG, _AVG_DEFAULTS, _pool(nn.AvgPool1d, *_AVG)),
    torch.avg_pool1d: _Rule(_X + _AVG, _AVG_DEFAULTS, _pool(nn.AvgPool1d, *_AVG)),
    F.avg_pool2d: _Rule(_X + _AVG + ("divisor_override",),
                        {**_AVG_DEFAULTS, "divisor_override": None},
                        _pool(nn.AvgPool2d, *_AVG, "divisor_override")),
    F.max_pool1d: _Rule(_X + _MAX, _MAX_DEFAULTS, _pool(nn.MaxPool1d, *_MAX)),
    F.max_pool2d: _Rule(_X + _MAX, _MAX_DEFAULTS, _pool(nn.MaxPool2d, *_MAX)),
    F.adaptive_avg_pool1d: _Rule(_X + ("output_size",), {},
                                 _pool(nn.AdaptiveAvgPool1d, "output_size")),
    F.adaptive_avg_pool2d: _Rule(_X + ("output_size",), {},
                                 _pool(nn.AdaptiveAvgPool2d, "output_size")),
}

# Tensor methods: `x.add(y)` binds like `torch.add(x, y)`.
_METHOD_RULES: dict[str, _Rule] = {
    "add": _TORCH_ADD, "sub": _TORCH_SUB, "subtract": _TORCH_SUB,
    "mul": _FUNCTION_RULES[torch.mul], "multiply": _FUNCTION_RULES[torch.mul],
    "div": _TORCH_DIV, "divide": _TORCH_DIV, "true_divide": _FUNCTION_RULES[torch.true_divide],
    "matmul": _FUNCTION_RULES[torch.matmul], "bmm": _FUNCTION_RULES[torch.bmm],
    "pow": _FUNCTION_RULES[torch.pow],
    "softmax": _FUNCTION_RULES[torch.softmax], "relu": _RELU_METHOD,
    "sigmoid": _Rule(_X, {}, _SIGMOID), "tanh": _Rule(_X, {}, _TANH),
    "exp": _Rule(_X, {}, _EXP), "sqrt": _Rule(_X, {}, _SQRT), "rsqrt": _Rule(_X, {}, _RSQRT),
    "mean": _MEAN,
}
_METHOD_RULES.update({f"{name}_": _inplace(_METHOD_RULES[name])
                      for name in ("add", "sub", "mul", "div", "pow")})


def _bind(node: fx.Node, rule: _Rule) -> Optional[dict]:
    """The call's arguments by parameter name, or None if they do not fit `rule.params`."""
    if len(node.args) > len(rule.params) or any(k not in rule.params for k in node.kwargs):
        return None
    bound = dict(rule.defaults)
    bound.update(zip(rule.params, node.args))
    bound.update(node.kwargs)
    return bound if all(p in bound for p in rule.params) else None


def _conversion(node: fx.Node, call: _Call) -> Optional[tuple[nn.Module, tuple, dict]]:
    if node.op == "call_function":
        rule = _FUNCTION_RULES.get(node.target) if _hashable(node.target) else None
    elif node.op == "call_method":
        rule = _METHOD_RULES.get(node.target)
    else:
        return None
    if rule is None:
        return None
    args = _bind(node, rule)
    built = None if args is None else rule.build(call._replace(args=args))
    if built is None and any(_is_mask(a) for a in _node_list(node)):
        node.meta["unquantized_reason"] = (
            f"{node.target}: an operand is a mask (values beyond ±{MASK_MAGNITUDE:g} on the "
            f"dummy input): no grid holds both the mask and the data; the consumer quantizes")
    elif built is None:
        node.meta["unquantized_reason"] = (
            f"{node.target}: an argument its module cannot express (a computed dim or size, "
            f"a dtype, a flag other than the model's own)")
    elif _quantized_class(type(built[0])) is None:
        node.meta["unquantized_reason"] = f"{type(built[0]).__name__} has no quantized class"
        built = None
    return built


def _hashable(target) -> bool:
    try:
        hash(target)
        return True
    except TypeError:
        return False


# --------------------------------------------------------------------------------------------
# Tracing
# --------------------------------------------------------------------------------------------

class _Tracer(fx.Tracer):
    """torch.fx's symbolic tracer (``prepare_model`` without a dummy input): stops at modules
    with a quantized wrapper and at excluded modules; remembers the module where it failed."""

    def __init__(self, is_leaf: Callable[[nn.Module], bool]):
        super().__init__()
        self._is_leaf = is_leaf
        self.failed_module: Optional[tuple[str, type]] = None

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return self._is_leaf(m)

    def call_module(self, m, forward, args, kwargs):
        try:
            return super().call_module(m, forward, args, kwargs)
        except Exception:
            if self.failed_module is None:  # the innermost module is the first to see it
                self.failed_module = (self.path_of_module(m), type(m))
            raise


def _user_frame(exc: BaseException) -> Optional[traceback.FrameSummary]:
    """The innermost traceback frame outside torch and this package: the user's code."""
    skip = (os.path.dirname(torch.__file__), os.path.dirname(os.path.abspath(__file__)))
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


def _prepare_error(model: nn.Module, tracer: _Tracer, exc: Exception) -> PrepareError:
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


# --------------------------------------------------------------------------------------------
# Graph rewrites
# --------------------------------------------------------------------------------------------

def _free_name(gm: nn.Module, base: str) -> str:
    name, n = base, 0
    while hasattr(gm, name):
        n += 1
        name = f"{base}_{n}"
    return name


def _duplicate_reused_modules(gm: fx.GraphModule) -> None:
    """Gives every call after the first of a module its own copy, named ``module_<fx node>``
    (e.g. ``module_relu_1``, as AIMET's model preparer names it).

    The copies share the original's parameters and buffers (tied, as in the original model),
    so training updates one set of weights while each call has its own quantizers.
    """
    seen = set()
    for node in gm.graph.nodes:
        if node.op != "call_module":
            continue
        if node.target not in seen:
            seen.add(node.target)
            continue
        original = gm.get_submodule(node.target)
        memo = {id(t): t for t in (*original.parameters(), *original.buffers())}
        name = _free_name(gm, "module_" + node.name)
        gm.add_module(name, copy.deepcopy(original, memo))
        node.target = name


def _input_dependent(gm: fx.GraphModule, tensors: set) -> set:
    """The nodes whose floating values depend on the model's inputs' values. The rest (masks
    and position tables made from shapes, integer and boolean tensors, functions of parameters)
    are constants: exported graphs fold them, so they stay functions and get no quantizer."""
    dependent: set = set()
    for node in gm.graph.nodes:
        if node.op in ("placeholder", "call_module"):
            dependent.add(node)
        elif node in tensors and node.meta.get("dtype", torch.float32).is_floating_point \
                and any(a in dependent for a in _node_list(node)):
            dependent.add(node)
    return dependent


def _node_list(node: fx.Node) -> list:
    found: list = []
    fx.node.map_arg((node.args, node.kwargs), found.append)
    return found


def _convert_functionals(gm: fx.GraphModule, model: nn.Module,
                         traced_training: bool) -> None:
    tensors = tensor_nodes(gm)
    dependent = _input_dependent(gm, tensors)
    for node in list(gm.graph.nodes):
        if node not in dependent:
            continue
        built = _conversion(node, _Call({}, tensors, gm, traced_training))
        if built is None:
            continue
        module, args, kwargs = built
        name = _free_name(gm, "module_" + node.name)  # AIMET's model preparer: module_add, ...
        gm.add_module(name, module.train(model.training))
        with gm.graph.inserting_before(node):
            new = gm.graph.call_module(name, args, kwargs)
        new.meta = dict(node.meta)
        node.replace_all_uses_with(new)
        gm.graph.erase_node(node)
        tensors.add(new)
    for node in list(gm.graph.nodes):
        # parameters absorbed into nn.LayerNorm / nn.Linear: their get_attr nodes are unused now
        if node.op == "get_attr" and not node.users:
            gm.graph.erase_node(node)
            _drop_attribute(gm, model, node.target)


def _wrap_parameters(gm: fx.GraphModule) -> None:
    """Every parameter still read by a ``get_attr`` node (used by a function, not by its module)
    is read through a :class:`~torchqsim.nn.functional_modules.Parameter` module instead, so
    that it gets a parameter quantizer."""
    for node in list(gm.graph.nodes):
        if node.op != "get_attr" or not node.users:
            continue
        owner, _, field = node.target.rpartition(".")
        param = gm.get_submodule(owner)._parameters.get(field)
        if param is None or any(_is_inplace_user(u, node) for u in node.users):
            continue
        name = _free_name(gm, node.target.replace(".", "_"))
        gm.add_module(name, _functional_modules().Parameter(param))
        with gm.graph.inserting_before(node):
            new = gm.graph.call_module(name, (), {})
        new.meta = dict(node.meta)
        node.replace_all_uses_with(new)
        gm.graph.erase_node(node)


def _is_inplace_user(user: fx.Node, node: fx.Node) -> bool:
    """`user` writes into `node`'s value (``param.add_(...)``, ``param[i] = ...``)."""
    name = user.target if user.op == "call_method" else getattr(user.target, "__name__", "")
    return bool(user.args) and user.args[0] is node and isinstance(name, str) and (
        (name.endswith("_") and not name.endswith("__")) or name == "setitem")


def _drop_attribute(gm: fx.GraphModule, model: nn.Module, target: str) -> None:
    """Removes `target` from `gm` if no node uses it and it is not held by one of `model`'s
    modules (GraphModule puts a traced-through module's attributes in a new holder module)."""
    prefix, _, field = target.rpartition(".")
    owner = gm.get_submodule(prefix)
    if any(n.op == "get_attr" and n.target == target for n in gm.graph.nodes):
        return
    if owner is gm or owner is not model.get_submodule(prefix):
        delattr(owner, field)


def _check_excludes(modules_to_exclude, module_classes_to_exclude) -> tuple[list, tuple]:
    modules = list(modules_to_exclude or [])
    for i, m in enumerate(modules):
        if not isinstance(m, nn.Module):
            raise TypeError(f"prepare_model: modules_to_exclude[{i}] must be an nn.Module "
                            f"instance (e.g. model.block), got {type(m).__name__}")
    classes = tuple(module_classes_to_exclude or ())
    for i, c in enumerate(classes):
        if not (isinstance(c, type) and issubclass(c, nn.Module)):
            raise TypeError(f"prepare_model: module_classes_to_exclude[{i}] must be an "
                            f"nn.Module subclass, got {c!r}")
    return modules, classes


def _is_leaf(modules: list, classes: tuple) -> Callable[[nn.Module], bool]:
    excluded = {id(m) for m in modules}
    return lambda m: (id(m) in excluded or isinstance(m, classes)
                      or _quantized_class(type(m)) is not None)


def _symbolic_trace(model: nn.Module, is_leaf, concrete_args) -> fx.GraphModule:
    tracer = _Tracer(is_leaf)
    try:
        graph = tracer.trace(model, concrete_args)
    except Exception as exc:
        raise _prepare_error(model, tracer, exc) from exc
    return fx.GraphModule(tracer.root, graph, type(model).__name__)  # takes model.training


def _captured(model: nn.Module, is_leaf, dummy_input, concrete_args) -> fx.GraphModule:
    if concrete_args:
        args, kwargs = split_dummy_input(dummy_input)
        dummy_input = {**inspect.signature(model.forward).bind_partial(*args).arguments,
                       **kwargs, **concrete_args}
    try:
        with preserved(model):
            return capture(model, cloned(dummy_input), is_leaf)
    except CaptureError as exc:
        raise _capture_error(model, exc) from exc.error


def _check_reproduces(model: nn.Module, gm: fx.GraphModule, dummy_input) -> None:
    """The prepared graph must give, on the dummy input, exactly the captured output."""
    expected = pytree.tree_leaves(gm.capture_output)
    del gm.capture_output
    with preserved(model), eval_mode(gm), torch.no_grad(), no_fast_paths():
        got = pytree.tree_leaves(run_model(gm, cloned(dummy_input)))
    for i, (a, b) in enumerate(zip(expected, got)):
        same = torch.equal(a, b) or (a.shape == b.shape and a.dtype == b.dtype and bool(
            ((a == b) | (a.isnan() & b.isnan())).all())) if isinstance(a, torch.Tensor) and \
            isinstance(b, torch.Tensor) else type(a) is type(b)
        if not same or len(expected) != len(got):
            raise PrepareError(
                f"prepare_model: the captured graph of {type(model).__name__} does not "
                f"reproduce its output {i} on dummy_input. A computation escaped capture: a "
                f"tensor changed in place through an alias, or values computed outside torch "
                f"(numpy, Python floats from .item()) that depend on the input. Exclude the "
                f"module that does it (modules_to_exclude=[...]).")


def prepare_model(model: nn.Module, concrete_args: Optional[dict[str, Any]] = None,
                  modules_to_exclude: Optional[list[nn.Module]] = None,
                  module_classes_to_exclude: Optional[list[type]] = None,
                  dummy_input: Any = None) -> fx.GraphModule:
    """Traces `model` with torch.fx and rewrites it so that QuantSim can quantize every op.

    See the module docstring for what is rewritten. New modules are named after their fx
    nodes (``add``, ``add_1``, ``softmax``, ``truediv``, ``layer_norm``; a reused module's
    second call ``relu_1``) and are attributes of the returned GraphModule; the modules of
    `model` are shared with it, not copied (QuantizationSimModel copies the model first), and
    are not modified. Duplicates of a reused module share its parameters and buffers (AIMET
    deep-copies them instead; sharing keeps tied weights tied during training). Functional
    ``dropout`` becomes ``nn.Dropout`` only when its ``training`` flag was the model's mode
    (``training=self.training``), so it then follows ``train()``/``eval()``. ``x += y`` becomes
    an out-of-place ``Add``.

    Args:
        model: the model to prepare.
        concrete_args: fixed values for some forward arguments (torch.fx ``concrete_args``),
            e.g. ``{"attention_mask": None}``.
        modules_to_exclude: module instances kept as leaves: called, not traced into.
        module_classes_to_exclude: module classes whose instances are kept as leaves.
        dummy_input: optional example input (a tensor, a tuple of positional inputs or a dict
            of keyword inputs). Every traced op is then also evaluated on it, so that forward
            code may take ``len()`` of or unpack shape tuples (``(*x.shape[:-1], -1, d)``, as
            HuggingFace models do). Sizes stay symbolic: the graph runs on other shapes too.

    Returns:
        A ``torch.fx.GraphModule`` whose outputs equal `model`'s exactly.

    Raises:
        PrepareError: torch.fx cannot trace the model (the message names the code and how to
            exclude the submodule).
        TypeError: `model` is not an nn.Module, or a bad exclude entry.

    Example::

        >>> import math, torch
        >>> from torch import nn
        >>> class Attention(nn.Module):
        ...     def forward(self, q, k):
        ...         return torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]), -1)
        >>> gm = prepare_model(Attention())
        >>> [type(m).__name__ for m in gm.children()]
        ['MatMul', 'Divide', 'Softmax']
        >>> q, k = torch.randn(2, 3, 8), torch.randn(2, 3, 8)
        >>> torch.equal(gm(q, k), Attention()(q, k))
        True
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"prepare_model: model must be an nn.Module, got {type(model).__name__}")
    is_leaf = _is_leaf(*_check_excludes(modules_to_exclude, module_classes_to_exclude))
    if dummy_input is None:
        gm = _symbolic_trace(model, is_leaf, concrete_args)
    else:
        gm = _captured(model, is_leaf, dummy_input, concrete_args)
    _duplicate_reused_modules(gm)
    _convert_functionals(gm, model, traced_training=model.training if dummy_input is None
                         else False)
    _wrap_parameters(gm)
    gm.graph.lint()
    gm.recompile()
    if dummy_input is not None:
        _check_reproduces(model, gm, dummy_input)
    return gm
