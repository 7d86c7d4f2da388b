"""The placement plan: which quantizer slot of each quantized module is on, and how.

One :class:`ModuleSpec` per quantized module, with a :class:`SlotSpec` per input, output and
parameter slot. :mod:`.config_rules` fills it from a quantsim config, :mod:`.hw_rules` adjusts
it for the hardware version, and :mod:`.construction` creates the quantizers it describes.

Example::

    >>> spec = ModuleSpec(("Conv",), [SlotSpec()], [SlotSpec(enabled=True)],
    ...                   {"weight": SlotSpec(enabled=True, symmetric=True, channel_axis=0)})
    >>> [(kind, key, s.grid.name) for kind, key, s in spec.slots() if s.enabled]
    [('output', 0, 'asymmetric'), ('param', 'weight', 'symmetric')]
"""

from dataclasses import dataclass, field

from ..graph import ModuleGraph, OpNode, Producer
from ..nn.base import QuantizationMixin
from ..quantization.grid import Grid

__all__ = ["ModuleSpec", "Plan", "SlotSpec", "input_indices"]


@dataclass
class SlotSpec:
    """How one quantizer slot is configured.

    Attributes:
        enabled: the slot gets a quantizer (else None: data passes through exactly).
        symmetric, strict, unsigned: the integer grid (:attr:`grid` gives it as a ``Grid``).
        bitwidth: 2..16 for ``dtype="int"``; 16 for ``"float"``.
        dtype: ``"int"`` (integer grid) or ``"float"`` (fp16 simulation).
        channel_axis: parameters only: the per-channel axis, or None for per-tensor.
        encoding_constraints: outputs only: a fixed ``(min, max)`` range (frozen), or
            ``(min, None)``: min fixed, max calibrated (tf).
        block_size: weights only: blockwise integer encodings, blocks of this many input
            channels (per output channel); None: per-channel or per-tensor.
        decompressed_bw: with `block_size`: LPBQ (block scales as integers times a channel
            scale, :class:`~torchqsim.quantization.LpbqQuantizeDequantize`).

    Example::

        >>> SlotSpec(enabled=True, bitwidth=8).grid
        Grid(bitwidth=8, kind=<GridKind.ASYMMETRIC: 3>, qmin=0, qmax=255)
    """

    enabled: bool = False
    symmetric: bool = False
    strict: bool = False
    unsigned: bool = False
    bitwidth: int = 8
    dtype: str = "int"
    channel_axis: int | None = None
    encoding_constraints: tuple[float, float | None] | None = None
    block_size: int | None = None
    decompressed_bw: int | None = None

    @property
    def grid(self) -> Grid:
        """The integer grid of a ``dtype="int"`` slot (bounds from C).

        Raises:
            ValueError: bad flags or bitwidth (see ``Grid.from_flags``).
        """
        return Grid.from_flags(self.bitwidth, self.symmetric, self.strict, self.unsigned)


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


def input_indices(op: OpNode) -> list[int]:
    """Input slots of `op` that receive a tensor argument."""
    n = len(op.module.input_quantizers)
    return [i for i in range(min(n, len(op.inputs))) if op.tensor_inputs[i]]


class Plan:
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
            self._add_nested(op, output_bw, param_bw, data_type)

    def _add_nested(self, op: OpNode, output_bw: int, param_bw: int, data_type: str) -> None:
        """Specs for the quantized modules inside an op's module (``MultiheadAttention``'s
        ``out_proj``): their weights as any weight; their inputs, computed inside the op (the
        attention context), quantized; their outputs, which are the op's, left to the op."""
        for sub, m in op.module.named_modules():
            if sub and isinstance(m, QuantizationMixin):
                act = dict(bitwidth=output_bw, dtype=data_type)
                self.specs[f"{op.name}.{sub}"] = ModuleSpec(
                    tuple(m.onnx_types), [SlotSpec(**act, enabled=True) for _ in m.input_quantizers],
                    [SlotSpec(**act, enabled=False) for _ in m.output_quantizers],
                    {n: SlotSpec(bitwidth=param_bw, dtype=data_type)
                     for n in m.param_quantizers})

    def spec(self, op: OpNode) -> ModuleSpec | None:
        return self.specs.get(op.name) if isinstance(op.module, QuantizationMixin) else None

    def inputs(self, op: OpNode) -> list[SlotSpec]:
        spec = self.spec(op)
        return [spec.inputs[i] for i in input_indices(op)] if spec else []

    def outputs(self, op: OpNode) -> list[SlotSpec]:
        spec = self.spec(op)
        return list(spec.outputs) if spec else []

    def producers_outputs(self, op: OpNode) -> list[SlotSpec]:
        found = []
        for i in input_indices(op) if self.spec(op) else range(len(op.inputs)):
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
                if spec and index in input_indices(consumer):
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

    def set_op(self, op: OpNode, settings: dict, modified: dict, where: str) -> None:
        """Applies AIMET's op-level settings ``{"is_input_quantized" | "is_output_quantized" |
        "is_symmetric": bool or None}`` (None: unset) to the slots each one touches."""
        for key, value in settings.items():
            if value is None:
                continue
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
