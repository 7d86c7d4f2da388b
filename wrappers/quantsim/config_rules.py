"""Applying a quantsim config to a prepared model: which quantizer slot is on, and how.

The result is the plan (:mod:`.plan`), one :class:`~.plan.ModuleSpec` per quantized module with
a :class:`~.plan.SlotSpec` per input, output and parameter slot;
:class:`~torchqsim.QuantizationSimModel` then builds the quantizers from it. The order and the
rules are AIMET's (docs/aimet.md §1.6-1.8); later steps override earlier ones:

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

The sim then applies ``defaults.hw_version``'s exception rules
(:func:`~torchqsim.quantsim.hw_rules.apply_exception_rules`).

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
    >>> from torchqsim.quantsim.config_rules import apply_config
    >>> from torchqsim.quantsim.construction import quantize_modules
    >>> gm = quantize_modules(prepare_model(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())))
    >>> specs = apply_config(ModuleGraph.from_graph_module(gm), load_config("default"),
    ...                      output_bw=8, param_bw=8, data_type="int")
    >>> specs["0"].outputs[0].enabled, specs["1"].inputs[0].enabled   # Conv+Relu supergroup
    (False, False)
    >>> specs["0"].inputs[0].enabled, specs["0"].params["weight"].enabled  # model input, weight
    (True, True)
"""

from ..graph import MODEL_INPUT, CONSTANT, ModuleGraph, OpNode, Producer
from .bn_fold_wiring import is_foldable_bn, wire_folded_batch_norms
from .plan import ModuleSpec, Plan, SlotSpec, input_indices

__all__ = ["apply_config"]


def _set_param(slot: SlotSpec, config: dict) -> None:
    if "is_quantized" in config:
        slot.enabled = bool(config["is_quantized"])
    if "is_symmetric" in config:
        slot.symmetric = bool(config["is_symmetric"])


def _apply_defaults(plan: Plan, defaults: dict) -> None:
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


def _apply_params(plan: Plan, params: dict) -> None:
    for spec in plan.specs.values():
        for name, slot in spec.params.items():
            if name in ("weight", "bias") and name in params:
                _set_param(slot, params[name])


def _apply_op_type(plan: Plan, op_type: dict) -> None:
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


def _apply_supergroups(plan: Plan, supergroups: list) -> None:
    def types_of(op: OpNode) -> tuple[str, ...]:
        spec = plan.spec(op)
        return spec.op_types[:1] if spec else ()  # AIMET matches the connected-graph type

    def foldable(op: OpNode) -> bool:
        return is_foldable_bn(plan, op)

    for group in supergroups:
        for chain in plan.graph.find_chains(types_of, list(group["op_list"]), skip=foldable):
            for k, op in enumerate(chain):
                spec = plan.spec(op)
                if spec is None:
                    continue
                if k > 0:
                    prev = chain[k - 1]
                    for i in input_indices(op):
                        src = op.inputs[i]
                        if isinstance(src, Producer) and src.op is prev:
                            spec.inputs[i].enabled = False
                if k < len(chain) - 1:
                    for slot in spec.outputs:
                        slot.enabled = False


def _apply_model_io(plan: Plan, model_input: dict, model_output: dict) -> None:
    if "is_input_quantized" in model_input:
        for op in plan.ops:
            spec = plan.spec(op)
            for i in input_indices(op):
                if op.inputs[i] in (MODEL_INPUT, CONSTANT):
                    spec.inputs[i].enabled = bool(model_input["is_input_quantized"])
    if "is_output_quantized" in model_output:
        for op in plan.ops:
            spec = plan.spec(op)
            for j, is_out in enumerate(op.is_model_output):
                if is_out and j < len(spec.outputs):
                    spec.outputs[j].enabled = bool(model_output["is_output_quantized"])


def _apply_instance_settings(plan: Plan, config: dict) -> None:
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
                slot.channel_axis = op.module.param_channel_axis(name)
        spec.supported_kernels = list(lookup(spec, "supported_kernels",
                                             defaults.get("supported_kernels", [])))


def apply_config(graph: ModuleGraph, config: dict, *, output_bw: int, param_bw: int,
                 data_type: str) -> dict[str, ModuleSpec]:
    """The quantizer plan of a prepared, wrapped model under a resolved quantsim config.

    Args:
        graph: the :class:`~torchqsim.graph.ModuleGraph` of the GraphModule whose modules were
            replaced by their quantized wrappers (:func:`quantize_modules`).
        config: a resolved config (``torchqsim.quantsim.config_file.load_config``).
        output_bw, param_bw, data_type: the activation / parameter bitwidths and the data type
            (``"int"`` or ``"float"``) every slot starts with.

    Returns:
        Module path -> :class:`ModuleSpec`, for every quantized module the graph calls.

    Raises:
        ValueError: two rules of one section set a quantizer differently, or strict and
            unsigned symmetric are both on.

    Example: see the module docstring.
    """
    plan = Plan(graph, output_bw, param_bw, data_type)
    _apply_defaults(plan, config["defaults"])
    _apply_params(plan, config["params"])
    _apply_op_type(plan, config["op_type"])
    _apply_supergroups(plan, config["supergroups"])
    wire_folded_batch_norms(plan)
    _apply_model_io(plan, config["model_input"], config["model_output"])
    _apply_instance_settings(plan, config)
    return plan.specs
