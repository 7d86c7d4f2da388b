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
from .config_types import Defaults, OpTypeSettings, ParamSettings, QuantsimConfig
from .plan import ModuleSpec, Plan, SlotSpec, input_indices

__all__ = ["apply_config"]


def _set_param(slot: SlotSpec, settings: ParamSettings) -> None:
    if settings.is_quantized is not None:
        slot.enabled = settings.is_quantized
    if settings.is_symmetric is not None:
        slot.symmetric = settings.is_symmetric
    if settings.block_size is not None:
        slot.block_size = settings.block_size
    if settings.decompressed_bw is not None:
        slot.decompressed_bw = settings.decompressed_bw


def _op_settings(cfg: OpTypeSettings) -> dict:
    return {"is_input_quantized": cfg.is_input_quantized,
            "is_output_quantized": cfg.is_output_quantized, "is_symmetric": cfg.is_symmetric}


def _apply_defaults(plan: Plan, defaults: Defaults) -> None:
    modified: dict = {}
    # Absent and False read the same in the resolved config: apply only what differs from the
    # all-disabled, asymmetric start (AIMET rejects False for these keys in defaults).
    enabled = {"is_input_quantized": defaults.ops_is_input_quantized or None,
               "is_output_quantized": defaults.ops_is_output_quantized or None,
               "is_symmetric": defaults.ops_is_symmetric or None}
    for op in plan.ops:
        plan.set_op(op, enabled, modified, "defaults.ops")
    for spec in plan.specs.values():
        for name, slot in spec.params.items():
            _set_param(slot, defaults.params)
            if name == "bias":
                slot.enabled = False  # AIMET: exclude_param_from_quantization("bias")
    strict, unsigned = defaults.strict_symmetric, defaults.unsigned_symmetric
    if strict and unsigned:
        raise ValueError("quantsim config: defaults.strict_symmetric and "
                         "defaults.unsigned_symmetric cannot both be True")
    for spec in plan.specs.values():
        for _, _, slot in spec.slots():
            slot.strict, slot.unsigned = strict, unsigned


def _apply_params(plan: Plan, params) -> None:
    for spec in plan.specs.values():
        for name, slot in spec.params.items():
            if name in ("weight", "bias") and name in params:
                _set_param(slot, params[name])


# Data-preserving ("grid-preserving") op types: f(q(x)) == q(f(x)). AIMET 2.42 gives each that
# the config does not list ``is_output_quantized: False`` (its _is_grid_preserving_op).
GRID_PRESERVING_OPS = frozenset({
    "Col2Im", "Compress", "DepthToSpace", "Dropout", "Expand", "Flatten", "Gather",
    "GatherElements", "GatherND", "Identity", "MaxPool", "MaxRoiPool", "NonZero", "Pad",
    "ReduceMax", "ReduceMin", "Reshape", "Slice", "SpaceToDepth", "Split", "SplitToSequence",
    "Squeeze", "Tile", "TopK", "Transpose", "Unsqueeze"})
_UNQUANTIZED_OUTPUT = OpTypeSettings(is_output_quantized=False)


def _apply_op_type(plan: Plan, op_type) -> None:
    """Rule ``op_type``: every op type of a module that the config lists applies (in the
    module's order); a data-preserving type it does not list (:data:`GRID_PRESERVING_OPS`)
    applies ``is_output_quantized: False``."""
    modified: dict = {}
    for op in plan.ops:
        spec = plan.spec(op)
        for t in spec.op_types:
            cfg = op_type.get(t, _UNQUANTIZED_OUTPUT if t in GRID_PRESERVING_OPS else None)
            if cfg is None:
                continue
            plan.set_op(op, _op_settings(cfg), modified, f"op_type.{t}")
            for name, slot in spec.params.items():
                if name in ("weight", "bias") and name in cfg.params:
                    _set_param(slot, cfg.params[name])
            if cfg.encoding_constraints is not None:
                c = cfg.encoding_constraints
                for slot in spec.outputs:
                    slot.encoding_constraints = (c.min, c.max)


def _apply_supergroups(plan: Plan, supergroups) -> None:
    def types_of(op: OpNode) -> tuple[str, ...]:
        spec = plan.spec(op)
        # every type name of the module (GELU/Gelu, LayerNorm/LayerNormalization, Upsample/
        # Resize, ...), as AIMET's files use either form
        return spec.op_types if spec else ()

    def foldable(op: OpNode) -> bool:
        return is_foldable_bn(plan, op)

    for group in supergroups:
        for chain in plan.graph.find_chains(types_of, list(group.op_list), skip=foldable):
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


def _apply_model_io(plan: Plan, model_input: bool | None, model_output: bool | None) -> None:
    if model_input is not None:
        for op in plan.ops:
            spec = plan.spec(op)
            for i in input_indices(op):
                if op.inputs[i] in (MODEL_INPUT, CONSTANT):
                    spec.inputs[i].enabled = model_input
    if model_output is not None:
        for op in plan.ops:
            spec = plan.spec(op)
            for j, is_out in enumerate(op.is_model_output):
                if is_out and j < len(spec.outputs):
                    spec.outputs[j].enabled = model_output


def _apply_instance_settings(plan: Plan, config: QuantsimConfig) -> None:
    defaults, op_type = config.defaults, config.op_type

    def lookup(spec: ModuleSpec, get, default):
        for t in spec.op_types:
            value = get(op_type[t]) if t in op_type else None
            if value is not None and value != ():
                return value
        return default

    for op in plan.ops:
        spec = plan.spec(op)
        per_channel = lookup(spec, lambda c: c.per_channel_quantization,
                             defaults.per_channel_quantization)
        for name, slot in spec.params.items():
            param = getattr(op.module, name)
            if per_channel and param is not None and param.dim() > 0:
                slot.channel_axis = op.module.param_channel_axis(name)
        spec.supported_kernels = list(lookup(spec, lambda c: c.supported_kernels,
                                             defaults.supported_kernels))


def apply_config(graph: ModuleGraph, config: QuantsimConfig, *, output_bw: int, param_bw: int,
                 data_type: str) -> dict[str, ModuleSpec]:
    """The quantizer plan of a prepared, wrapped model under a resolved quantsim config.

    Args:
        graph: the :class:`~torchqsim.graph.ModuleGraph` of the GraphModule whose modules were
            replaced by their quantized wrappers (:func:`quantize_modules`).
        config: a parsed config (``torchqsim.quantsim.config_file.load_config``).
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
    _apply_defaults(plan, config.defaults)
    _apply_params(plan, config.params)
    _apply_op_type(plan, config.op_type)
    _apply_supergroups(plan, config.supergroups)
    wire_folded_batch_norms(plan)
    _apply_model_io(plan, config.model_input_is_input_quantized,
                    config.model_output_is_output_quantized)
    _apply_instance_settings(plan, config)
    return plan.specs
