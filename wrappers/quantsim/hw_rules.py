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
  V66/V68/V69: an integer second input becomes 8-bit symmetric. V73/V75/V79: a 16-bit second
  input becomes symmetric and the first 16-bit.

Example::

    >>> HW_RULES["V68"].matmul.second_set
    (('bitwidth', 8), ('symmetric', True))
    >>> "default" in HW_RULES
    False
"""

import warnings
from dataclasses import dataclass

from torch import nn

from ..graph import ModuleGraph, OpNode, Producer
from ..nn.functional_modules import Bmm, MatMul
from .plan import ModuleSpec, SlotSpec

__all__ = ["HW_RULES", "HwRules", "MatMulInputs", "ParamsFollowOutput", "apply_exception_rules"]


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

# Hardware version -> its rules; any other version ("default" included) has none.
HW_RULES: dict[str, HwRules] = {**dict.fromkeys(("V66", "V68", "V69"), _PRE_V73),
                                **dict.fromkeys(("V73", "V75", "V79"), _V73_PLUS)}


def _matmul_target(op: OpNode, index: int, specs: dict[str, ModuleSpec]) -> SlotSpec | None:
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
    first, second = (_matmul_target(op, i, specs) for i in (0, 1))
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
    ``"default"`` and any version not in :data:`HW_RULES` apply nothing.

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
    rules = HW_RULES.get(hw_version)
    if rules is None:
        return
    for op in graph.ops:
        spec = specs.get(op.name)
        if spec is None:
            continue
        if isinstance(op.module, (MatMul, Bmm)):
            _apply_matmul_rule(rules.matmul, op, specs, hw_version)
        for rule in rules.params:
            _apply_params_rule(rule, op, spec)
