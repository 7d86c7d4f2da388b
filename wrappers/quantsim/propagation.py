"""Encoding propagation: AIMET 2.42's shared quantizers (docs/aimet.md §8).

After placement, aimet-torch 2.42 hands some ops' output quantizer to the ops that feed them, so
that one quantizer (one encoding) covers the inputs and the output:

- a Concat or Scatter op (multi-input ops whose output values are their inputs' values);
- a Resize / Upsample op, when the config names a ``hw_version`` (HTP reuses the encoding;
  ``"default"``, our value for a file without one, does not count);
- a ReLU with an output quantizer.

For such an op, in reverse execution order, each tensor input takes the op's output quantizer:
the producing op's output slot, when it is enabled; a model input, the op's own input slot
(enabled by it). A producer whose output already took another op's quantizer gives it up (the
later rule, as AIMET assigns in reverse order, wins), and a producer that took this op's
quantizer passes it on when it is itself such an op. A frozen quantizer (a config's
``encoding_constraints``) is not shared with a tensor that more than one op reads.

Data-movement ops (reshape, transpose, split, ...) are transparent in
:class:`~torchqsim.graph.ModuleGraph`, so the quantizer passes through them as AIMET's does.

Example::

    >>> import torch
    >>> from torch import nn
    >>> from torchqsim.quantsim import QuantizationSimModel
    >>> class M(nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.a, self.b = nn.Linear(4, 4), nn.Linear(4, 4)
    ...     def forward(self, x):
    ...         return torch.cat([self.a(x), self.b(x)], -1)
    >>> sim = QuantizationSimModel(M(), torch.randn(2, 4), config_file="default")
    >>> sim.model.a.output_quantizers[0] is sim.model.module_cat.output_quantizers[0]
    True
"""

from torch import nn

from ..graph import MODEL_INPUT, ModuleGraph, OpNode, Producer
from .plan import ModuleSpec, input_indices

__all__ = ["share_specs", "shared_slots", "tie_loaded", "tie_quantizers", "untie"]

SlotKey = tuple  # (module name, "input" | "output", index)

_GRID_EQUIVARIANT = frozenset({"Concat", "Scatter", "ScatterElements", "ScatterND"})
_INTERPOLATION = frozenset({"Resize", "Upsample", "CropAndResize"})


def _propagates(op: OpNode, spec: ModuleSpec, hw_version) -> bool:
    if len(spec.outputs) != 1 or not spec.outputs[0].enabled:
        return False
    types = set(spec.op_types)
    return bool(types) and (types <= _GRID_EQUIVARIANT or
                            (hw_version not in (None, "default") and types <= _INTERPOLATION) or
                            isinstance(op.module, nn.ReLU))


def shared_slots(graph: ModuleGraph, specs: dict[str, ModuleSpec], hw_version) -> dict:
    """Slot key -> the key of the output slot whose quantizer it shares (AIMET's propagation
    rule, see the module docstring); slots that keep their own quantizer are absent."""
    owner_of: dict = {}
    model_input_readers = sum(MODEL_INPUT in op.inputs for op in graph.ops)
    for op in reversed(graph.ops):
        spec = specs.get(op.name)
        if spec is None or not _propagates(op, spec, hw_version):
            continue
        own = (op.name, "output", 0)
        owner = owner_of.get(own, own)
        frozen = _spec_of(specs, owner).encoding_constraints is not None
        for i in input_indices(op):
            src = op.inputs[i]
            if isinstance(src, Producer):
                readers = len(src.op.consumers[src.output_index])
                src_spec = specs.get(src.op.name)
                if (frozen and readers > 1) or src_spec is None or \
                        src.output_index >= len(src_spec.outputs) or \
                        not src_spec.outputs[src.output_index].enabled:
                    continue
                owner_of[(src.op.name, "output", src.output_index)] = owner
            elif src == MODEL_INPUT and not (frozen and model_input_readers > 1):
                owner_of[(op.name, "input", i)] = owner
    return {k: v for k, v in owner_of.items() if k != v}


def _spec_of(specs: dict[str, ModuleSpec], key: SlotKey):
    name, kind, i = key
    return (specs[name].inputs if kind == "input" else specs[name].outputs)[i]


def share_specs(specs: dict[str, ModuleSpec], shared: dict) -> None:
    """Gives every sharing slot its owner's settings (enabled, precision, grid, constraints)."""
    for key, owner in shared.items():
        vars(_spec_of(specs, key)).update(vars(_spec_of(specs, owner)))


def _slots(module: nn.Module, kind: str):
    return module.input_quantizers if kind == "input" else module.output_quantizers


def tie_quantizers(sim) -> None:
    """Puts each owner slot's quantizer object into the slots that share it (``sim._shared``)."""
    for (name, kind, i), (oname, okind, oi) in sim._shared.items():
        q = _slots(sim.model.get_submodule(oname), okind)[oi]
        _slots(sim.model.get_submodule(name), kind)[i] = q


def untie(sim, names) -> None:
    """The slots of modules `names` stop sharing (they get their own quantizer when re-created);
    so do the slots that shared the quantizer of one of their outputs."""
    names = set(names)
    sim._shared = {k: o for k, o in sim._shared.items() if k[0] not in names and o[0] not in names}


def tie_loaded(sim, loaded: list) -> set:
    """After ``load_encodings`` put a new quantizer in each slot of `loaded` (keys in file
    order): every group of sharing slots with a loaded slot shares the quantizer of its last
    loaded slot again (AIMET loads into the one shared quantizer: the last entry wins). Returns
    the keys that now hold a loaded quantizer."""
    groups: dict = {}
    for key, owner in sim._shared.items():
        groups.setdefault(owner, [owner]).append(key)
    done = set(loaded)
    for keys in groups.values():
        last = [key for key in loaded if key in keys][-1:]
        if not last:
            continue
        name, kind, i = last[0]
        q = _slots(sim.model.get_submodule(name), kind)[i]
        for key in keys:
            vars(_spec_of(sim._specs, key)).update(vars(_spec_of(sim._specs, last[0])))
            _slots(sim.model.get_submodule(key[0]), key[1])[key[2]] = q
            done.add(key)
    return done
