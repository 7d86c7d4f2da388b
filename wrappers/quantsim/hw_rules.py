"""AIMET's per-hardware exception rules (``defaults.hw_version``), as data.

AIMET v1 ``QuantizationSimModel._apply_exception_rules`` (aimet_torch ``quantsim.py``,
docs/aimet.md §1.9) runs after the config sections. Its rules are the table
:data:`HW_RULES`: hardware version -> :class:`HwRules`, of two kinds:

- :class:`ParamsFollowOutput`: a module family's parameter slots take its output slot's
  bitwidth and symmetry (``nn.Embedding``'s weight, every parameter of ``nn.GroupNorm``; V73,
  V75, V79);
- :class:`MatMulInputs`: the two-activation ``MatMul`` (and ``Bmm``, which also exports as
  MatMul; AIMET names only MatMul), per the HTP op definition: when the second input's
  quantizer matches ``second_if``, it takes ``second_set`` and the first takes ``first_set``.
  V66/V68/V69: an integer second input becomes 8-bit symmetric. V73 and later: a 16-bit second
  input becomes symmetric and the first 16-bit.

AIMET 2.42 tests only for V66/V68/V69; every other version it is given (V73, V75, V79, V81,
V85, or any other string) gets the V73-and-later rules: :func:`rules_for` does the same.
``"default"`` (no ``hw_version`` in the file) applies none of them.

Whatever the version, :data:`ALWAYS` applies too: a ``nn.LayerNorm`` weight is symmetric
exactly when it is quantized to 16 bits or more (AIMET's LayerNorm exception rule); and then
:func:`disable_constant_rescale`: a Div or Mul by a positive finite constant scalar whose data
input is quantized gets no output (nor scalar-input) quantizer, as AIMET 2.42's
``_disable_quantizers_for_constant_rescale_ops``: rescaling a quantized tensor by a constant
keeps it on a grid.

Example::

    >>> rules_for("V68").matmul.second_set
    (('bitwidth', 8), ('symmetric', True))
    >>> rules_for("V85") is rules_for("V73"), rules_for("default")
    (True, None)
"""

import math
import warnings
from dataclasses import dataclass

import torch
from torch import fx, nn

from ..graph import ModuleGraph, OpNode, Producer
from ..nn.functional_modules import Bmm, Divide, MatMul, Multiply
from .plan import ModuleSpec, SlotSpec

__all__ = ["ALWAYS", "HW_RULES", "HwRules", "MatMulInputs", "ParamsFollowOutput",
           "SymmetricFromBitwidth", "apply_exception_rules", "disable_constant_rescale", "rules_for"]


@dataclass(frozen=True)
class ParamsFollowOutput:
    """For modules of `modules` that have a ``weight`` slot: the parameter slots `params`
    (None: all of them) take output slot 0's bitwidth and symmetry."""

    modules: tuple[type, ...]
    params: tuple[str, ...] | None


@dataclass(frozen=True)
class MatMulInputs:
    """The two-activation MatMul rule: when the second input's quantizer has every
    ``(attribute, value)`` of `second_if`, it gets `second_set` and the first input's
    quantizer gets `first_set`. The first input's quantizer is needed only when `first_set` is
    not empty."""

    second_if: tuple[tuple[str, object], ...]
    second_set: tuple[tuple[str, object], ...]
    first_set: tuple[tuple[str, object], ...] = ()


@dataclass(frozen=True)
class SymmetricFromBitwidth:
    """For modules of `modules`: parameter slot `param` is symmetric exactly when its bitwidth
    is at least `min_bits`."""

    modules: tuple[type, ...]
    param: str
    min_bits: int


@dataclass(frozen=True)
class HwRules:
    """The exception rules of one hardware version."""

    params: tuple[ParamsFollowOutput, ...]
    matmul: MatMulInputs


_PRE_V73 = HwRules(
    params=(),
    matmul=MatMulInputs(second_if=(("dtype", "int"),),
                        second_set=(("bitwidth", 8), ("symmetric", True))))
_V73_PLUS = HwRules(
    params=(ParamsFollowOutput((nn.Embedding,), ("weight",)),
            ParamsFollowOutput((nn.GroupNorm,), None)),
    matmul=MatMulInputs(second_if=(("bitwidth", 16),), second_set=(("symmetric", True),),
                        first_set=(("bitwidth", 16),)))

# The versions AIMET 2.42 ships configs for -> their rules (rules_for: any other version
# string gets the V73-and-later ones, as in AIMET).
HW_RULES: dict[str, HwRules] = {**dict.fromkeys(("V66", "V68", "V69"), _PRE_V73),
                                **dict.fromkeys(("V73", "V75", "V79", "V81", "V85"), _V73_PLUS)}

# Rules of every version, "default" included.
ALWAYS = (SymmetricFromBitwidth((nn.LayerNorm,), "weight", 16),)


def rules_for(hw_version: str) -> HwRules | None:
    """The rules of `hw_version`; None for ``"default"`` (the file gives no version)."""
    return None if hw_version == "default" else HW_RULES.get(hw_version, _V73_PLUS)


def target_quantizer(op: OpNode, index: int, specs: dict[str, ModuleSpec]) -> SlotSpec | None:
    """The quantizer that quantizes input `index` of `op`: its own input slot if enabled, else
    the nearest enabled output (or, failing that, first input) slot up the chain of producers;
    None where the chain reaches a model input or an op with several tensor inputs."""
    if specs[op.name].inputs[index].enabled:
        return specs[op.name].inputs[index]
    src = op.inputs[index]
    while isinstance(src, Producer):
        spec = specs.get(src.op.name)
        if spec is not None:
            outs = spec.outputs[src.output_index:src.output_index + 1]
            for slot in outs + spec.inputs[:1]:
                if slot.enabled:
                    return slot
        srcs = [s for s, t in zip(src.op.inputs, src.op.tensor_inputs) if t]
        if len(srcs) != 1:
            return None
        src = srcs[0]
    return None


def _apply_params_rule(rule: ParamsFollowOutput, op: OpNode, spec: ModuleSpec) -> None:
    if isinstance(op.module, rule.modules) and "weight" in spec.params:
        out = spec.outputs[0]
        for name in spec.params if rule.params is None else rule.params:
            spec.params[name].bitwidth = out.bitwidth
            spec.params[name].symmetric = out.symmetric


def _apply_matmul_rule(rule: MatMulInputs, op: OpNode, specs: dict[str, ModuleSpec],
                       hw_version: str) -> None:
    first, second = (target_quantizer(op, i, specs) for i in (0, 1))
    if first and second and first.dtype == second.dtype == "float":
        return
    if second is None or (first is None and rule.first_set):
        warnings.warn(f"hw_version {hw_version}: the quantizer of an input of MatMul "
                      f"{op.name!r} could not be found (no enabled quantizer up its "
                      f"producers); its exception rule is not applied", stacklevel=4)
    elif all(getattr(second, attr) == value for attr, value in rule.second_if):
        for slot, changes in ((second, rule.second_set), (first, rule.first_set)):
            for attr, value in changes:
                setattr(slot, attr, value)


def apply_exception_rules(graph: ModuleGraph, specs: dict[str, ModuleSpec],
                          hw_version: str) -> None:
    """Applies, in place, the exception rules of `hw_version` (:data:`HW_RULES`).

    The quantizer of each MatMul input is its input slot if enabled, else the nearest enabled
    slot up the producers (AIMET's ``_get_target_quantizer``); nothing is done when both are
    fp16. An input whose quantizer cannot be found gets a ``UserWarning`` (AIMET logs one).
    ``"default"`` applies only :data:`ALWAYS`.

    Args:
        graph: the :class:`~torchqsim.graph.ModuleGraph` the specs were built on.
        specs: module path -> :class:`~.plan.ModuleSpec` (from
            :func:`~torchqsim.quantsim.config_rules.apply_config`).
        hw_version: the config's ``defaults.hw_version``.

    Example::

        >>> from torchqsim.prepare import prepare_model
        >>> from torchqsim.quantsim.config_file import load_config
        >>> from torchqsim.quantsim.config_rules import apply_config
        >>> from torchqsim.quantsim.construction import quantize_modules
        >>> gm = quantize_modules(prepare_model(nn.Sequential(nn.Embedding(10, 4))))
        >>> graph = ModuleGraph.from_graph_module(gm)
        >>> specs = apply_config(graph, load_config("default"), output_bw=16, param_bw=8,
        ...                      data_type="int")
        >>> apply_exception_rules(graph, specs, "V73")
        >>> specs["0"].params["weight"].bitwidth, specs["0"].params["weight"].symmetric
        (16, False)
    """
    rules = rules_for(hw_version)
    for op in graph.ops:
        spec = specs.get(op.name)
        if spec is None:
            continue
        for always in ALWAYS:
            slot = spec.params.get(always.param) if isinstance(op.module, always.modules) else None
            if slot is not None:
                slot.symmetric = slot.bitwidth >= always.min_bits
        if rules is None:
            continue
        if isinstance(op.module, (MatMul, Bmm)):
            _apply_matmul_rule(rules.matmul, op, specs, hw_version)
        for rule in rules.params:
            _apply_params_rule(rule, op, spec)
    disable_constant_rescale(graph, specs)


def _positive_scalar(gm_node: fx.Node, value) -> bool:
    """`value` (an argument of `gm_node`) is a positive finite one-element constant that is not
    a parameter."""
    if isinstance(value, fx.Node) and value.op == "get_attr":
        value = getattr(gm_node.graph.owning_module, value.target, None)
    if isinstance(value, nn.Parameter) or (isinstance(value, torch.Tensor) and value.numel() != 1):
        return False
    if isinstance(value, torch.Tensor):
        value = value.item()
    return isinstance(value, (int, float)) and not isinstance(value, bool) and \
        math.isfinite(value) and value > 0


def disable_constant_rescale(graph: ModuleGraph, specs: dict[str, ModuleSpec]) -> None:
    """AIMET's constant-rescale rule (see the module docstring), in place: for a Div by (or a
    Mul with either operand) a positive finite constant scalar, when the other operand's
    quantizer (:func:`target_quantizer`) is enabled, the scalar's input slot and the output
    slot are disabled."""
    for op in graph.ops:
        spec = specs.get(op.name)
        if spec is None or not isinstance(op.module, (Divide, Multiply)) or len(op.inputs) != 2:
            continue
        args = op.node.args
        data, scalar = 0, 1
        if isinstance(op.module, Multiply) and not _positive_scalar(op.node, args[1]):
            data, scalar = 1, 0
        if not _positive_scalar(op.node, args[scalar]):
            continue
        source = target_quantizer(op, data, specs) if op.tensor_inputs[data] else None
        if source is not None and source.enabled:
            for slot in spec.inputs[scalar:scalar + 1] + spec.outputs[:1]:
                slot.enabled = False
