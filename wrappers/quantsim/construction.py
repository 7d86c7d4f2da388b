"""Building the sim's quantizers: wrapping the modules, probing which slots see floating
tensors, and creating one quantizer per enabled slot of the plan (:mod:`.plan`).

The functions take the :class:`~torchqsim.quantsim.QuantizationSimModel` being built and read
its state (``model``, ``quant_scheme``, ``_specs``, ``_percentile``).

Example::

    >>> from torchqsim.prepare import prepare_model
    >>> gm = quantize_modules(prepare_model(nn.Sequential(nn.Linear(2, 2))))
    >>> type(gm.get_submodule("0")).__name__
    'QuantizedLinear'
"""

import itertools

import torch
from torch import Tensor, fx, nn

from .._forward import eval_mode, run_model
from ..nn.base import to_quantized
from ..nn.overwritable import mark_dying_inputs
from ..float_formats import BLOCK_FORMATS, FLOAT_FORMATS
from ..quantization.block_float_quantizer import BlockFloatQuantizeDequantize
from ..quantization.encoding_analyzer import MinMaxEncodingAnalyzer
from ..quantization.float_quantizer import FloatQuantizeDequantize
from ..quantization.param_quantizer import ParamQuantizeDequantize, freeze
from ..quantization.quantizer import QuantizeDequantize
from .arguments import FLOAT_DTYPES
from .blockwise import block_quantizer
from .plan import SlotSpec

__all__ = ["disable_non_float_slots", "make_quantizer", "quantize_modules", "realize",
           "set_slot"]


def quantize_modules(gm: fx.GraphModule) -> fx.GraphModule:
    """Replaces, in place, every module that `gm` calls by its quantized wrapper
    (``torchqsim.nn.to_quantized``; containers and ``nn.Identity`` are left alone).

    Raises:
        UnsupportedModuleError: a called module has no quantized class (the message says how to
            register one or exclude the module).

    Example: see the module docstring.
    """
    for node in gm.graph.nodes:
        if node.op == "call_module":
            module = gm.get_submodule(node.target)
            wrapper = to_quantized(module, node.target)
            if wrapper is not module:
                gm.set_submodule(node.target, wrapper)
    mark_dying_inputs(gm)
    return gm


def _floats(values) -> list[bool]:
    values = values if isinstance(values, (tuple, list)) else (values,)
    return [isinstance(v, Tensor) and v.is_floating_point() for v in values]


def _arranged(module: nn.Module, method: str, *values):
    """A call's arguments or outputs in slot order: ``values`` as they are, or as the module's
    ``slot_arguments`` / ``slot_outputs`` arrange them (a recurrent layer's states)."""
    arrange = getattr(type(module), method, None)
    return values[0] if arrange is None else arrange(*values)


def disable_non_float_slots(sim, dummy_input) -> None:
    """Runs `dummy_input` once and disables, in ``sim._specs``, every input and output slot
    that does not carry a floating tensor (integer indices, masks, missing outputs). Also
    records ``sim._input_ranks``: module path -> rank of its first tensor input in that run (the
    onnxruntime target mode: a Linear on a 2-D input exports as a Gemm)."""
    seen: dict[str, tuple[list, list]] = {}
    sim._input_ranks = {}
    hooks = []
    for name, module in sim.named_qmodules():
        def hook(mod, args, kwargs, out, name=name):
            seen[name] = (_floats(_arranged(mod, "slot_arguments", args, kwargs)),
                          _floats(_arranged(mod, "slot_outputs", out)))
            if args and isinstance(args[0], Tensor):
                sim._input_ranks[name] = args[0].dim()
        hooks.append(module.register_forward_hook(hook, with_kwargs=True))
    try:
        with torch.no_grad(), eval_mode(sim.model):
            run_model(sim.model, dummy_input)
    finally:
        for h in hooks:
            h.remove()
    for name, (ins, outs) in seen.items():
        spec = sim._specs[name]
        for slots, flags in ((spec.inputs, ins), (spec.outputs, outs)):
            for i, slot in enumerate(slots):
                if i >= len(flags) or not flags[i]:
                    slot.enabled = False


def _block_axis(module: nn.Module, kind: str, key) -> int:
    """The blocked axis of a block-format quantizer: for a weight of two or more dims its input
    channels (as AIMET blocks them: the other of the two channel axes), else the last axis."""
    if kind != "param" or getattr(module, key).dim() < 2:
        return -1
    return 1 if module.param_channel_axis(key) == 0 else 0


def make_quantizer(sim, module: nn.Module, kind: str, key, spec: SlotSpec):
    """The quantizer `spec` describes for slot (`kind`, `key`) of `module`, on the module's
    device and in its training mode; None for a disabled slot."""
    if not spec.enabled:
        return None
    if spec.dtype == "float":
        return FloatQuantizeDequantize(dtype=FLOAT_DTYPES[spec.bitwidth]).train(module.training)
    if spec.dtype in FLOAT_FORMATS:
        return FloatQuantizeDequantize(spec.dtype).train(module.training)
    if spec.dtype in BLOCK_FORMATS:
        q = BlockFloatQuantizeDequantize(spec.dtype, _block_axis(module, kind, key))
        return _placed(sim, module, q)
    if kind == "param" and spec.block_size is not None:
        analyzer = lambda shape: sim.quant_scheme.analyzer(shape, sim._percentile,  # noqa: E731
                                                            sim._tf_enhanced_histogram)
        q = block_quantizer(sim, module, key, spec, analyzer, spec.symmetric)
        q.requires_grad_(sim.quant_scheme.is_range_learning and spec.decompressed_bw is None)
        return _placed(sim, module, q)
    shape: tuple = ()
    if kind == "param" and spec.channel_axis is not None:
        param = getattr(module, key)
        dims = [1] * param.dim()
        dims[spec.channel_axis] = param.shape[spec.channel_axis]
        shape = tuple(dims)
    cls = ParamQuantizeDequantize if kind == "param" else QuantizeDequantize
    fixed = spec.encoding_constraints
    symmetric = spec.symmetric or _symmetric_range(fixed)
    # A fixed range [min >= 0, max] on a symmetric slot takes the unsigned grid, which holds it
    # (docs/aimet.md §2.7), unless the sim follows AIMET's clipping grid.
    unsigned = symmetric and (spec.unsigned or _unsigned_fixed_range(sim, fixed))
    # A min-only constraint (AIMET 2.42's HTP Relu): min fixed, max calibrated with "tf"
    # whatever the scheme, as AIMET switches a constrained quantizer to tf.
    analyzer = MinMaxEncodingAnalyzer(shape, fixed_min=fixed[0]) \
        if fixed is not None and fixed[1] is None else \
        sim.quant_scheme.analyzer(shape, sim._percentile, sim._tf_enhanced_histogram)
    q = cls(shape, spec.bitwidth, symmetric, analyzer,
            strict=symmetric and spec.strict, unsigned=unsigned)
    q.requires_grad_(sim.quant_scheme.is_range_learning)
    q.reciprocal_rounding = sim._aimet_eval_rounding
    q.compiled_in_place_dims = _compiled_in_place_dims(sim)
    if kind == "param":
        q.cache_eval_output = sim._weight_cache
    if fixed is not None and fixed[1] is not None:
        _set_fixed_range(q, *fixed, aimet_clipping=sim._aimet_fixed_range_clipping)
        freeze(q)
    return _placed(sim, module, q)


def _compiled_in_place_dims(sim) -> int:
    """``compiled_in_place_dims`` of `sim`'s quantizers: 4 in a model without convolutions (its
    4-D tensors keep the traced layout under inductor), else 3 (inductor may lay out convolution
    outputs channels-last)."""
    if "_compiled_in_place_dims" not in vars(sim):
        sim._compiled_in_place_dims = 3 if any(
            isinstance(m, nn.modules.conv._ConvNd) for m in sim.model.modules()) else 4
    return sim._compiled_in_place_dims


def _placed(sim, module: nn.Module, q: nn.Module) -> nn.Module:
    """`q`, just built (its tensors on the default device, in training mode), on the device of
    `module`'s quantizers (:func:`_device`), in `module`'s training mode. A quantizer already
    there (the default device is the model's) is not passed through ``Module.to``, which costs
    a fifth of building it, nor through ``train(True)``, which walks its modules."""
    device = _device(sim.model, module)
    if device != torch.get_default_device():
        q = q.to(device)
    return q if module.training else q.eval()


def _symmetric_range(fixed) -> bool:
    """A fixed range ``[-m, m]`` (AIMET: ``np.allclose(min, -max)``) makes the grid symmetric."""
    return fixed is not None and fixed[1] is not None and \
        abs(fixed[0] + fixed[1]) <= 1e-8 + 1e-5 * abs(fixed[1])


def _unsigned_fixed_range(sim, fixed) -> bool:
    """Whether a fixed range that is not ``[-m, m]`` and has ``min >= 0`` moves its symmetric
    slot to the unsigned grid (not with ``aimet_fixed_range_clipping``)."""
    return fixed is not None and fixed[1] is not None and fixed[0] >= 0 and \
        not _symmetric_range(fixed) and not sim._aimet_fixed_range_clipping


def _set_fixed_range(q: QuantizeDequantize, lo: float, hi: float, aimet_clipping: bool) -> None:
    """A config's fixed range. Asymmetric grids and ``[-m, m]`` (and every range with
    `aimet_clipping`) as aimet-torch 2.42 sets it: scale ``(hi - lo) / (qmax - qmin)`` as given
    (not widened to the grid as calibration is), zero point from `lo` (0 on symmetric grids, so
    the grid may not hold ``[lo, hi]``). Other ranges on a symmetric grid: the smallest grid
    holding ``[lo, hi]`` (:meth:`QuantizeDequantize.set_range`)."""
    if q.symmetric and not aimet_clipping and not _symmetric_range((lo, hi)):
        q.set_range(lo, hi)
        return
    scale = (torch.tensor(hi, dtype=torch.float32) - lo) / (q.qmax - q.qmin)
    zp = torch.zeros(()) if q.symmetric else \
        q.grid.zero_point(torch.tensor(lo, dtype=torch.float32), scale)
    with torch.no_grad():
        q._set(scale * (q.qmin - zp), scale * (q.qmax - zp))


def _device(model: nn.Module, module: nn.Module) -> torch.device:
    """Where a module's quantizers live: with its own tensors, else the model's first."""
    own = (t for t in itertools.chain(module._parameters.values(), module._buffers.values())
           if t is not None)  # the dicts themselves: parameters() costs a generator chain
    first = next(own, None)
    if first is None:
        first = next(itertools.chain(model.parameters(), model.buffers()), None)
    return torch.device("cpu") if first is None else first.device


def realize(sim, name: str) -> None:
    """(Re)creates every quantizer of module `name` from its spec."""
    module, spec = sim.model.get_submodule(name), sim._specs[name]
    for i, slot in enumerate(spec.inputs):
        module.input_quantizers[i] = make_quantizer(sim, module, "input", i, slot)
    for i, slot in enumerate(spec.outputs):
        module.output_quantizers[i] = make_quantizer(sim, module, "output", i, slot)
    for n, slot in spec.params.items():
        module.param_quantizers[n] = make_quantizer(sim, module, "param", n, slot)


def set_slot(sim, name: str, kind: str, key, q) -> None:
    """Puts quantizer `q` (or None) in slot (`kind`, `key`) of module `name`."""
    module = sim.model.get_submodule(name)
    slots = {"input": module.input_quantizers, "output": module.output_quantizers,
             "param": module.param_quantizers}[kind]
    slots[key] = q
