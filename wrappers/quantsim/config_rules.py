"""Applying a quantsim config to a prepared model: which quantizer slot is on, and how.

The result is a plan, one :class:`ModuleSpec` per quantized module with a :class:`SlotSpec` per
input, output and parameter slot; :class:`~torchqsim.QuantizationSimModel` then builds the
quantizers from it. The order and the rules are AIMET's (reference/aimet.md §1.6-1.8); later
steps override earlier ones:

0. every slot disabled and asymmetric;
1. ``defaults``: ``ops`` (``is_output_quantized`` / ``is_input_quantized`` / ``is_symmetric`` on
   every op), ``params`` on every parameter except biases, then ``strict_symmetric`` and
   ``unsigned_symmetric`` on every slot;
2. ``params``: by parameter name (``weight``, ``bias``; AIMET addresses no other name);
3. ``op_type``: by the module's ONNX types (``onnx_types`` of its quantized class): the I/O
   flags, the ``params`` sub-dict, and ``encoding_constraints`` (a fixed, frozen output range);
4. ``supergroups``: sequential chains (:meth:`ModuleGraph.find_chains`, a branch ends a chain,
   BatchNorms that fold into a Conv/ConvTranspose/Gemm before them are passed over): the
   first op's outputs off, the last op's chain input off, middle ops' chain input and outputs
   off. Every foldable BatchNorm is then simulated folded: its input and parameter slots off,
   and the producing op's output flag moved to the BatchNorm's output;
5. ``model_input``: input slots fed by model inputs (or constant tensors, as AIMET);
6. ``model_output``: output slots that are model outputs;
7. per op: ``per_channel_quantization`` and ``supported_kernels`` from the first of its ONNX types
   that sets them in ``op_type``, else from ``defaults``.

The sim then applies ``defaults.hw_version``'s exception rules (:func:`apply_exception_rules`).

Tensor-level semantics, as AIMET's: ``is_output_quantized: True`` enables the op's outputs;
``False`` disables them and the consumers' input slots that read them, so the tensor is
unquantized everywhere; ``is_input_quantized: True`` enables the op's inputs, ``False`` also
disables the producers' outputs; ``is_symmetric`` applies to the op's inputs, outputs and their
producers' and consumers' slots. Two rules of one section that set one slot differently raise
``ValueError``. Biases start disabled and stay so unless a ``params`` or ``op_type`` rule for
``bias`` enables them.

Example::

    >>> import torch
    >>> from torch import nn
    >>> from torchqsim.graph import ModuleGraph
    >>> from torchqsim.prepare import prepare_model
    >>> from torchqsim.quantsim.config_file import load_config
    >>> from torchqsim.quantsim.config_rules import apply_config, quantize_modules
    >>> gm = quantize_modules(prepare_model(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())))
    >>> specs = apply_config(ModuleGraph.from_graph_module(gm), load_config("default"),
    ...                      output_bw=8, param_bw=8, data_type="int")
    >>> specs["0"].outputs[0].enabled, specs["1"].inputs[0].enabled   # Conv+Relu supergroup
    (False, False)
    >>> specs["0"].inputs[0].enabled, specs["0"].params["weight"].enabled  # model input, weight
    (True, True)
"""

import warnings
from dataclasses import dataclass, field

from torch import fx, nn

from ..graph import MODEL_INPUT, CONSTANT, ModuleGraph, OpNode, Producer
from ..nn.base import QuantizationMixin, to_quantized
from ..nn.functional_modules import Bmm, MatMul

__all__ = ["SlotSpec", "ModuleSpec", "apply_config", "quantize_modules", "param_channel_axis",
           "apply_exception_rules", "check_supported_kernels"]

_FOLDING_PRODUCERS = ("Conv", "ConvTranspose", "Gemm")
_CONV_TRANSPOSE = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)


@dataclass
class SlotSpec:
    """How one quantizer slot is configured.

    Attributes:
        enabled: the slot gets a quantizer (else None: data passes through exactly).
        symmetric, strict, unsigned: the integer grid (see ``torchqsim.quantization.grid_name``).
        bitwidth: 2..16 for ``dtype="int"``; 16 for ``"float"``.
        dtype: ``"int"`` (integer grid) or ``"float"`` (fp16 simulation).
        channel_axis: parameters only: the per-channel axis, or None for per-tensor.
        encoding_constraints: outputs only: a fixed ``(min, max)`` range (frozen).

    Example::

        >>> SlotSpec(enabled=True, bitwidth=8).grid
        'asymmetric'
    """

    enabled: bool = False
    symmetric: bool = False
    strict: bool = False
    unsigned: bool = False
    bitwidth: int = 8
    dtype: str = "int"
    channel_axis: int | None = None
    encoding_constraints: tuple[float, float] | None = None

    @property
    def grid(self) -> str:
        """The grid name of an integer slot."""
        if not self.symmetric:
            return "asymmetric"
        return "strict_symmetric" if self.strict else \
            "unsigned_symmetric" if self.unsigned else "symmetric"


@dataclass
class ModuleSpec:
    """The slots of one quantized module.

    Attributes:
        op_types: the module's config op types (its quantized class's ``onnx_types``).
        inputs, outputs: one :class:`SlotSpec` per input / output quantizer slot.
        params: parameter name -> :class:`SlotSpec`.
        supported_kernels: the ``supported_kernels`` list that applies to it ([] = any).

    Example::

        >>> ModuleSpec(("Relu",), [SlotSpec()], [SlotSpec(enabled=True)], {}).outputs[0].enabled
        True
    """

    op_types: tuple[str, ...]
    inputs: list[SlotSpec]
    outputs: list[SlotSpec]
    params: dict[str, SlotSpec]
    supported_kernels: list = field(default_factory=list)

    def slots(self):
        """``(kind, key, spec)`` for every slot: kind "input"/"output" with an int key, "param"
        with the parameter name."""
        yield from (("input", i, s) for i, s in enumerate(self.inputs))
        yield from (("output", i, s) for i, s in enumerate(self.outputs))
        yield from (("param", n, s) for n, s in self.params.items())


def quantize_modules(gm: fx.GraphModule) -> fx.GraphModule:
    """Replaces, in place, every module that `gm` calls by its quantized wrapper
    (``torchqsim.nn.to_quantized``; containers and ``nn.Identity`` are left alone).

    Raises:
        UnsupportedModuleError: a called module has no quantized class (the message says how to
            register one or exclude the module).

    Example::

        >>> from torchqsim.prepare import prepare_model
        >>> gm = quantize_modules(prepare_model(nn.Sequential(nn.Linear(2, 2))))
        >>> type(gm.get_submodule("0")).__name__
        'QuantizedLinear'
    """
    for node in gm.graph.nodes:
        if node.op == "call_module":
            module = gm.get_submodule(node.target)
            wrapper = to_quantized(module, node.target)
            if wrapper is not module:
                gm.set_submodule(node.target, wrapper)
    return gm


def param_channel_axis(module: nn.Module, param_name: str) -> int:
    """The per-channel axis of a parameter: 1 for ConvTranspose weights (laid out
    ``(C_in, C_out / groups, ...)``), else 0 (AIMET, reference aimet.md §2.4).

    Example::

        >>> param_channel_axis(nn.ConvTranspose2d(4, 8, 3), "weight"), param_channel_axis(
        ...     nn.Conv2d(4, 8, 3), "weight")
        (1, 0)
    """
    return 1 if isinstance(module, _CONV_TRANSPOSE) and param_name == "weight" else 0


def _input_indices(op: OpNode) -> list[int]:
    """Input slots of `op` that receive a tensor argument."""
    n = len(op.module.input_quantizers)
    return [i for i in range(min(n, len(op.inputs))) if op.tensor_inputs[i]]


class _Plan:
    """The specs being built, with AIMET's tensor-level slot selection."""

    def __init__(self, graph: ModuleGraph, output_bw: int, param_bw: int, data_type: str):
        self.graph = graph
        self.ops = [op for op in graph.ops if isinstance(op.module, QuantizationMixin)]
        self.specs: dict[str, ModuleSpec] = {}
        for op in self.ops:
            m = op.module
            act = dict(bitwidth=output_bw, dtype=data_type)
            self.specs[op.name] = ModuleSpec(
                tuple(m.onnx_types), [SlotSpec(**act) for _ in m.input_quantizers],
                [SlotSpec(**act) for _ in m.output_quantizers],
                {n: SlotSpec(bitwidth=param_bw, dtype=data_type) for n in m.param_quantizers})

    def spec(self, op: OpNode) -> ModuleSpec | None:
        return self.specs.get(op.name) if isinstance(op.module, QuantizationMixin) else None

    def inputs(self, op: OpNode) -> list[SlotSpec]:
        spec = self.spec(op)
        return [spec.inputs[i] for i in _input_indices(op)] if spec else []

    def outputs(self, op: OpNode) -> list[SlotSpec]:
        spec = self.spec(op)
        return list(spec.outputs) if spec else []

    def producers_outputs(self, op: OpNode) -> list[SlotSpec]:
        found = []
        for i in _input_indices(op) if self.spec(op) else range(len(op.inputs)):
            src = op.inputs[i]
            if isinstance(src, Producer) and self.spec(src.op):
                outs = self.spec(src.op).outputs
                if src.output_index < len(outs):
                    found.append(outs[src.output_index])
        return found

    def consumers_inputs(self, op: OpNode) -> list[SlotSpec]:
        found = []
        for per_output in op.consumers:
            for consumer, index in per_output:
                spec = self.spec(consumer)
                if spec and index in _input_indices(consumer):
                    found.append(spec.inputs[index])
        return found

    def targets(self, op: OpNode, key: str, value: bool) -> list[SlotSpec]:
        """The slots an op-level setting touches (AIMET's four lists, §1.6)."""
        if key == "is_input_quantized":
            return self.inputs(op) + ([] if value else self.producers_outputs(op))
        if key == "is_output_quantized":
            return self.outputs(op) + ([] if value else self.consumers_inputs(op))
        return (self.inputs(op) + self.producers_outputs(op) + self.outputs(op) +
                self.consumers_inputs(op))

    def set_op(self, op: OpNode, config: dict, modified: dict, where: str,
               keys=("is_input_quantized", "is_output_quantized", "is_symmetric")) -> None:
        for key in keys:
            if key not in config:
                continue
            value = bool(config[key])
            kind = "is_symmetric" if key == "is_symmetric" else "is_quantized"
            attr = "symmetric" if key == "is_symmetric" else "enabled"
            for slot in self.targets(op, key, value):
                seen = modified.setdefault(id(slot), {})
                if kind in seen and getattr(slot, attr) != value:
                    raise ValueError(
                        f"quantsim config: conflicting settings in {where}: {seen[kind]} and "
                        f"{key}={value} on op {op.name!r} set the same quantizer differently")
                seen[kind] = f"{key}={value} on op {op.name!r}"
                setattr(slot, attr, value)


def _set_param(slot: SlotSpec, config: dict) -> None:
    if "is_quantized" in config:
        slot.enabled = bool(config["is_quantized"])
    if "is_symmetric" in config:
        slot.symmetric = bool(config["is_symmetric"])


def _is_foldable_bn(op: OpNode, types_of) -> bool:
    """A BatchNorm whose only input is the only use of a Conv/ConvTranspose/Gemm output."""
    if "BatchNormalization" not in types_of(op) or len(op.inputs) < 1:
        return False
    src = op.inputs[0]
    if not isinstance(src, Producer):
        return False
    producer = src.op
    if not any(t in _FOLDING_PRODUCERS for t in types_of(producer)):
        return False
    m = producer.module
    if isinstance(m, _CONV_TRANSPOSE) and m.groups > 1 and m.groups == m.in_channels:
        return False  # depthwise ConvTranspose: AIMET does not fold it
    users = [c for per_output in producer.consumers for c, _ in per_output]
    return users == [op] and not any(producer.is_model_output)


def _apply_defaults(plan: _Plan, defaults: dict) -> None:
    ops_cfg = defaults.get("ops", {})
    modified: dict = {}
    # Absent and False read the same in the resolved config: apply only what differs from the
    # all-disabled, asymmetric start (AIMET rejects False for these keys in defaults).
    enabled = {k: True for k in ("is_input_quantized", "is_output_quantized", "is_symmetric")
               if ops_cfg.get(k)}
    for op in plan.ops:
        plan.set_op(op, enabled, modified, "defaults.ops")
    for spec in plan.specs.values():
        for name, slot in spec.params.items():
            _set_param(slot, defaults.get("params", {}))
            if name == "bias":
                slot.enabled = False  # AIMET: exclude_param_from_quantization("bias")
    strict, unsigned = bool(defaults.get("strict_symmetric")), bool(
        defaults.get("unsigned_symmetric"))
    if strict and unsigned:
        raise ValueError("quantsim config: defaults.strict_symmetric and "
                         "defaults.unsigned_symmetric cannot both be True")
    for spec in plan.specs.values():
        for _, _, slot in spec.slots():
            slot.strict, slot.unsigned = strict, unsigned


def _apply_params(plan: _Plan, params: dict) -> None:
    for spec in plan.specs.values():
        for name, slot in spec.params.items():
            if name in ("weight", "bias") and name in params:
                _set_param(slot, params[name])


def _apply_op_type(plan: _Plan, op_type: dict) -> None:
    modified: dict = {}
    for op in plan.ops:
        spec = plan.spec(op)
        for t in spec.op_types:
            if t not in op_type:
                continue
            cfg = op_type[t]
            plan.set_op(op, cfg, modified, f"op_type.{t}")
            for name, slot in spec.params.items():
                if name in ("weight", "bias") and name in cfg.get("params", {}):
                    _set_param(slot, cfg["params"][name])
            if "encoding_constraints" in cfg:
                c = cfg["encoding_constraints"]
                for slot in spec.outputs:
                    slot.encoding_constraints = (float(c["min"]), float(c["max"]))


def _apply_supergroups(plan: _Plan, supergroups: list) -> None:
    def types_of(op: OpNode) -> tuple[str, ...]:
        spec = plan.spec(op)
        return spec.op_types[:1] if spec else ()  # AIMET matches the connected-graph type

    def foldable(op: OpNode) -> bool:
        return _is_foldable_bn(op, lambda o: plan.spec(o).op_types if plan.spec(o) else ())

    for group in supergroups:
        for chain in plan.graph.find_chains(types_of, list(group["op_list"]), skip=foldable):
            for k, op in enumerate(chain):
                spec = plan.spec(op)
                if spec is None:
                    continue
                if k > 0:
                    prev = chain[k - 1]
                    for i in _input_indices(op):
                        src = op.inputs[i]
                        if isinstance(src, Producer) and src.op is prev:
                            spec.inputs[i].enabled = False
                if k < len(chain) - 1:
                    for slot in spec.outputs:
                        slot.enabled = False
    for op in plan.ops:
        if foldable(op):
            bn, producer = plan.spec(op), plan.spec(op.inputs[0].op)
            bn.outputs[0].enabled = producer.outputs[0].enabled
            producer.outputs[0].enabled = False
            for slot in bn.inputs + list(bn.params.values()):
                slot.enabled = False


def _apply_model_io(plan: _Plan, model_input: dict, model_output: dict) -> None:
    if "is_input_quantized" in model_input:
        for op in plan.ops:
            spec = plan.spec(op)
            for i in _input_indices(op):
                if op.inputs[i] in (MODEL_INPUT, CONSTANT):
                    spec.inputs[i].enabled = bool(model_input["is_input_quantized"])
    if "is_output_quantized" in model_output:
        for op in plan.ops:
            spec = plan.spec(op)
            for j, is_out in enumerate(op.is_model_output):
                if is_out and j < len(spec.outputs):
                    spec.outputs[j].enabled = bool(model_output["is_output_quantized"])


def _apply_instance_settings(plan: _Plan, config: dict) -> None:
    defaults, op_type = config["defaults"], config["op_type"]

    def lookup(spec: ModuleSpec, key: str, default):
        for t in spec.op_types:
            if key in op_type.get(t, {}):
                return op_type[t][key]
        return default

    for op in plan.ops:
        spec = plan.spec(op)
        per_channel = bool(lookup(spec, "per_channel_quantization",
                                  defaults.get("per_channel_quantization", False)))
        for name, slot in spec.params.items():
            param = getattr(op.module, name)
            if per_channel and param is not None and param.dim() > 0:
                slot.channel_axis = param_channel_axis(op.module, name)
        spec.supported_kernels = list(lookup(spec, "supported_kernels",
                                             defaults.get("supported_kernels", [])))


def apply_config(graph: ModuleGraph, config: dict, *, output_bw: int, param_bw: int,
                 data_type: str) -> dict[str, ModuleSpec]:
    """The quantizer plan of a prepared, wrapped model under a resolved quantsim config.

    Args:
        graph: the :class:`~torchqsim.graph.ModuleGraph` of the GraphModule whose modules were
            replaced by their quantized wrappers (:func:`quantize_modules`).
        config: a resolved config (``torchqsim.quantsim_config.load_config``).
        output_bw, param_bw, data_type: the activation / parameter bitwidths and the data type
            (``"int"`` or ``"float"``) every slot starts with.

    Returns:
        Module path -> :class:`ModuleSpec`, for every quantized module the graph calls.

    Raises:
        ValueError: two rules of one section set a quantizer differently, or strict and
            unsigned symmetric are both on.

    Example: see the module docstring.
    """
    plan = _Plan(graph, output_bw, param_bw, data_type)
    _apply_defaults(plan, config["defaults"])
    _apply_params(plan, config["params"])
    _apply_op_type(plan, config["op_type"])
    _apply_supergroups(plan, config["supergroups"])
    _apply_model_io(plan, config["model_input"], config["model_output"])
    _apply_instance_settings(plan, config)
    return plan.specs


_HTP_PRE_V73 = frozenset({"V66", "V68", "V69"})
_HTP_V73_PLUS = frozenset({"V73", "V75", "V79"})


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


def apply_exception_rules(graph: ModuleGraph, specs: dict[str, ModuleSpec],
                          hw_version: str) -> None:
    """Applies, in place, AIMET's per-hardware exception rules for ``defaults.hw_version``.

    AIMET v1 ``QuantizationSimModel._apply_exception_rules`` (aimet_torch ``quantsim.py``,
    reference aimet.md §1.9), run after the config sections:

    - ``nn.Embedding`` (Gather) and ``nn.GroupNorm``, for V73/V75/V79: the weight (GroupNorm:
      every parameter slot) takes the output slot's bitwidth and symmetry;
    - two-activation ``MatMul`` (and ``Bmm``, which also exports as MatMul; AIMET names only
      MatMul), per the HTP op definition. The quantizer of each input is its input slot if
      enabled, else the nearest enabled slot up the producers (AIMET's
      ``_get_target_quantizer``); nothing is done when both are fp16. V66/V68/V69: the second
      input becomes 8-bit symmetric (integer slots only: 8-bit fp does not exist here).
      V73/V75/V79: if the second input is 16-bit it becomes symmetric and the first 16-bit.
      An input whose quantizer cannot be found gets a ``UserWarning`` (AIMET logs one).

    ``"default"`` and any other version apply nothing.

    Args:
        graph: the :class:`~torchqsim.graph.ModuleGraph` the specs were built on.
        specs: module path -> :class:`ModuleSpec` (from :func:`apply_config`).
        hw_version: the config's ``defaults.hw_version``.

    Example::

        >>> import torch
        >>> from torchqsim.prepare import prepare_model
        >>> from torchqsim.quantsim.config_file import load_config
        >>> gm = quantize_modules(prepare_model(nn.Sequential(nn.Embedding(10, 4))))
        >>> graph = ModuleGraph.from_graph_module(gm)
        >>> specs = apply_config(graph, load_config("default"), output_bw=16, param_bw=8,
        ...                      data_type="int")
        >>> apply_exception_rules(graph, specs, "V73")
        >>> specs["0"].params["weight"].bitwidth, specs["0"].params["weight"].symmetric
        (16, False)
    """
    if hw_version not in _HTP_PRE_V73 | _HTP_V73_PLUS:
        return
    for op in graph.ops:
        spec = specs.get(op.name)
        if spec is None:
            continue
        if isinstance(op.module, (nn.Embedding, nn.GroupNorm)):
            if hw_version in _HTP_V73_PLUS and "weight" in spec.params:
                out = spec.outputs[0]
                names = spec.params if isinstance(op.module, nn.GroupNorm) else ["weight"]
                for name in names:
                    spec.params[name].bitwidth = out.bitwidth
                    spec.params[name].symmetric = out.symmetric
        elif isinstance(op.module, (MatMul, Bmm)):
            first, second = (_matmul_target(op, i, specs) for i in (0, 1))
            pre_v73 = hw_version in _HTP_PRE_V73
            if first and second and first.dtype == second.dtype == "float":
                continue
            if second is None or (first is None and not pre_v73):
                warnings.warn(f"hw_version {hw_version}: the quantizer of an input of MatMul "
                              f"{op.name!r} could not be found (no enabled quantizer up its "
                              f"producers); its exception rule is not applied", stacklevel=3)
            elif pre_v73:
                if second.dtype == "int":
                    second.bitwidth, second.symmetric = 8, True
            elif second.bitwidth == 16:
                second.symmetric = True
                first.bitwidth = 16


def _kernel_of(slots: list[SlotSpec], default: tuple) -> tuple:
    on = [s for s in slots if s.enabled]
    return (on[0].bitwidth, on[0].dtype) if on else default


def check_supported_kernels(specs: dict[str, ModuleSpec]) -> list[str]:
    """Warns (``UserWarning``, as AIMET's ``warn_on_error``) for every module whose activation
    and parameter precision is not among its ``supported_kernels``; returns the messages.

    Example::

        >>> spec = ModuleSpec(("Conv",), [SlotSpec()], [SlotSpec(enabled=True, bitwidth=4)], {},
        ...                   [{"activation": {"bitwidth": 8, "dtype": "int"}}])
        >>> import warnings
        >>> with warnings.catch_warnings(record=True):
        ...     check_supported_kernels({"conv": spec})
        ["module 'conv': activation int4 is not among its supported_kernels: act int8"]
    """
    messages = []
    for name, spec in specs.items():
        if not spec.supported_kernels:
            continue
        act = _kernel_of(spec.inputs + spec.outputs, None)
        param = _kernel_of(list(spec.params.values()), None)
        ok = False
        for kernel in spec.supported_kernels:
            a, p = kernel["activation"], kernel.get("param")
            act_ok = act is None or (a["bitwidth"], a["dtype"]) == act
            param_ok = param is None or p is None or (p["bitwidth"], p["dtype"]) == param
            ok = ok or (act_ok and param_ok)
        if not ok:
            listed = "; ".join(
                f"act {k['activation']['dtype']}{k['activation']['bitwidth']}" +
                (f" param {k['param']['dtype']}{k['param']['bitwidth']}" if "param" in k else "")
                for k in spec.supported_kernels)
            got = (f"activation {act[1]}{act[0]}" if act else "") + \
                (f"{', ' if act else ''}param {param[1]}{param[0]}" if param else "")
            messages.append(f"module {name!r}: {got} is not among its supported_kernels: {listed}")
    for m in messages:
        warnings.warn(m, stacklevel=3)
    return messages
