"""Which rule converts which call: the tables of torch functions and tensor methods, and
:func:`_conversion`, which binds a call to its rule and notes why a call stays a function."""

import operator
from typing import Any, Optional

import torch
import torch.nn.functional as F
from torch import fx, nn

from ..capture import MASK_MAGNITUDE
from ..graph import node_args
from .rules import (_AVG, _AVG_DEFAULTS, _INTERPOLATE_PARAMS, _MAX, _MAX_DEFAULTS, _SDPA_DEFAULTS,
                    _SDPA_PARAMS, _Call, _Rule, _addmm, _batch_norm, _binary, _concat, _dropout,
                    _embedding, _functional_unary, _has_node, _inplace, _inplace_flag, _interpolate,
                    _is_mask, _layer_norm, _linear, _mean, _plain, _pool, _quantized_class,
                    _sdpa, _softmax, _unary)

_X, _XY = ("input",), ("input", "other")
_ADD, _SUB = _binary("Add"), _binary("Subtract")
_MUL, _DIV = _binary("Multiply"), _binary("Divide")
_TORCH_ADD = _Rule(_XY + ("alpha",), {"alpha": 1}, _binary("Add", alpha=1))
_TORCH_SUB = _Rule(_XY + ("alpha",), {"alpha": 1}, _binary("Subtract", alpha=1))
_TORCH_DIV = _Rule(_XY + ("rounding_mode",), {"rounding_mode": None},
                   _binary("Divide", rounding_mode=None))
_MATMUL = _binary("MatMul")
_SOFTMAX = _softmax
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
    F.batch_norm: _Rule(_X + ("running_mean", "running_var", "weight", "bias", "training",
                              "momentum", "eps"),
                        {"weight": None, "bias": None, "training": False, "momentum": 0.1,
                         "eps": 1e-5}, _unary(_batch_norm)),
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
    if built is None and any(_is_mask(a) for a in node_args(node)):
        node.meta["unquantized_reason"] = (
            f"{node.target}: an operand is a mask (values beyond ±{MASK_MAGNITUDE:g} on the "
            f"dummy input, or made with one): no grid holds both the mask and the data; the "
            f"consumer quantizes")
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
