"""`QuantizationSimModel`: a model with quantizers in the loop (AIMET QuantSim).

Construction copies the model (unless ``in_place``), prepares it (``prepare_model``: functional
ops become modules), replaces every module by its quantized wrapper, applies the quantsim config
(:mod:`torchqsim.quantsim.config_rules`, AIMET's order) and creates the quantizers.
``sim.model`` is then an ordinary ``nn.Module`` (a ``torch.fx.GraphModule``): calibrate it with
:meth:`QuantizationSimModel.compute_encodings`, evaluate it, fine-tune it with any optimizer.

QAT (docs/aimet.md §3, §7): post-training schemes train with straight-through estimators and
keep their encodings (as aimet-torch 2.42; :meth:`QuantizationSimModel.compute_param_encodings`
re-encodes the weights); range-learning schemes learn every quantizer's ``min``/``max``.

Example::

    >>> import torch
    >>> from torch import nn
    >>> from torchqsim.quantsim import QuantizationSimModel
    >>> model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 6 * 6, 4))
    >>> x = torch.randn(2, 3, 8, 8)
    >>> sim = QuantizationSimModel(model, x, quant_scheme="tf", default_output_bw=8,
    ...                            default_param_bw=8)
    >>> sim.compute_encodings(lambda m, _: m(x), None)
    >>> sim.model(x).shape
    torch.Size([2, 4])
"""

import copy
import warnings
from typing import Any, Callable, Iterable

import torch
from torch import nn

from .._forward import eval_mode
from ..coverage import unquantized_parameters
from ..graph import ModuleGraph
from ..nn.base import QuantizationMixin
from ..prepare import prepare_model
from ..quantization.scheme import QuantScheme
from . import calibration, folding, propagation, targets, torch_encodings
from .arguments import check_sim_arguments
from .config_file import load_config
from .config_rules import apply_config
from .construction import disable_non_float_slots, quantize_modules, realize
from .generation import attach_generate
from .hw_rules import apply_exception_rules
from .kernel_support import check_supported_kernels
from .summary import summary as _summary
from .weight_snap import snap_weight_ranges

__all__ = ["QuantizationSimModel"]


class QuantizationSimModel:
    """Simulates quantized inference and training of `model` (AIMET ``QuantizationSimModel``).

    Args:
        model: the trained floating-point model. Must hold no quantizers or quantized modules.
        dummy_input: an input (a tensor, or a tuple of positional inputs) the model runs on once
            during construction, to find which inputs and outputs are floating tensors.
        quant_scheme: a :class:`~torchqsim.quantization.scheme.QuantScheme` or its string
            (``"tf"``/``"min_max"``, ``"tf_enhanced"``, ``"percentile"``, ``"mse"``,
            ``"range_learning_tf_init"``, ``"range_learning_tf_enhanced_init"``).
        default_output_bw: activation bitwidth (2..16 for int; 16 for float).
        default_param_bw: parameter bitwidth (2..16 for int; 16 for float).
        default_data_type: ``"int"`` (integer grids) or ``"float"`` (fp16 simulation).
        config_file: a quantsim config JSON path, or a preset name (``"default"``,
            ``"per_channel"``, ``"target"``); None is ``"per_channel"`` (aimet-torch 2.42's default).
        in_place: use `model`'s modules instead of a deep copy: ``sim.model`` then shares (and
            trains) `model`'s parameters, in their dtype (fp32, fp16 or bf16: activations and
            weights stay in it, encodings and statistics are fp32); `model` itself is not
            modified. The sim then adds only its quantizers' state to the model's memory.
        weight_cache: eval-mode weight quantizers keep their fake-quantized weight until it or
            the encoding changes (bit-identical; a second copy of each weight, an eval forward
            at the FP model's cost). None (the default): on, except with `in_place`.
        tf_enhanced_histogram: ``"aimet"`` (aimet-torch 2.42's histogram) or ``"growing"``
            (no-drop, mergeable by ``torch.distributed``); see :meth:`QuantScheme.analyzer`.
        aimet_eval_rounding: integer quantizers round ``x * (1 / scale)`` in no-grad forwards,
            as aimet-torch 2.42 does; off (the default), every forward divides, as ONNX
            ``QuantizeLinear`` does (docs/aimet.md §2.5).
        aimet_fixed_range_clipping: a config's fixed output range that is not ``[-m, m]`` on
            a symmetric slot (the eNPU files' Softmax ``[0, 1]``) gets aimet-torch 2.42's grid
            (``[-0.502, 0.498]`` at 8 bits); off (the default), a grid that holds the range
            (docs/aimet.md §2.7).

    Attributes:
        model: the simulated model (``torch.fx.GraphModule`` with quantized wrappers; with
            ``model.generate(...)`` for a transformers model that generates: :mod:`.generation`).
        quant_scheme: the :class:`QuantScheme`.
        hw_version: ``defaults.hw_version`` of the config, whose AIMET exception rules are
            applied at construction (:func:`~torchqsim.quantsim.hw_rules.apply_exception_rules`).
        graph: the :class:`~torchqsim.graph.ModuleGraph` of ``model``
            (``graph.unquantized_ops``: the ops left without quantizer, with the reason).
        unquantized_weights: the parameters no quantizer covers (see
            :func:`torchqsim.coverage.unquantized_parameters`); warned about at construction.

    Raises:
        ValueError / TypeError: a bad argument (the message names it).
        RuntimeError: `model` already holds quantizers.
        UnsupportedModuleError, PrepareError: a module has no quantized class / fx cannot trace.
        ConfigError: an invalid config file.

    The job modules of this package (:mod:`.construction`, :mod:`.targets`, :mod:`.calibration`,
    :mod:`.torch_encodings`, :mod:`.summary`) take the sim and share its private state:
    ``_specs`` (the plan, module path -> :class:`~.plan.ModuleSpec`), ``_config`` (the
    :class:`~.config_types.QuantsimConfig`), ``_percentile``, ``_tf_enhanced_histogram``,
    ``_excluded`` (excluded module names), ``_shared`` (slots sharing another slot's quantizer,
    :mod:`.propagation`) and ``_source_names`` (original module id -> name).
    """

    def __init__(self, model: nn.Module, dummy_input, quant_scheme="tf_enhanced",
                 default_output_bw: int = 8, default_param_bw: int = 8,
                 default_data_type: str = "int", config_file=None, in_place: bool = False,
                 tf_enhanced_histogram: str = "aimet", aimet_eval_rounding: bool = False,
                 aimet_fixed_range_clipping: bool = False, weight_cache: bool | None = None):
        self.quant_scheme = check_sim_arguments(model, quant_scheme, default_output_bw,
                                                default_param_bw, default_data_type)
        self.default_output_bw, self.default_param_bw = default_output_bw, default_param_bw
        self.default_data_type = default_data_type
        self._config = load_config(config_file)
        self.hw_version = self._config.defaults.hw_version
        self._percentile = 100.0
        QuantScheme.post_training_tf_enhanced.analyzer((), tf_enhanced_histogram=tf_enhanced_histogram)
        self._tf_enhanced_histogram = tf_enhanced_histogram
        weight_cache = not in_place if weight_cache is None else weight_cache
        for flag, value in (("aimet_eval_rounding", aimet_eval_rounding),
                            ("aimet_fixed_range_clipping", aimet_fixed_range_clipping),
                            ("in_place", in_place), ("weight_cache", weight_cache)):
            if not isinstance(value, bool):
                raise TypeError(f"{flag} must be a bool, got {type(value).__name__}")
        self._weight_cache, self._excluded = weight_cache, []  # excluded module names
        self._aimet_eval_rounding = aimet_eval_rounding
        self._aimet_fixed_range_clipping = aimet_fixed_range_clipping
        source = model if in_place else copy.deepcopy(model)
        self._source_names = {id(m): n for n, m in model.named_modules()}
        self.model = quantize_modules(prepare_model(source, dummy_input=dummy_input))
        attach_generate(self.model, source)  # transformers models: sim.model.generate(...)
        self.graph = ModuleGraph.from_graph_module(self.model)
        if self.graph.unquantized_ops:
            warnings.warn(f"QuantizationSimModel: these ops stay functions and get no quantizer: "
                          f"{', '.join(self.graph.unquantized_ops)} (sim.graph.unquantized_ops "
                          f"says why)", stacklevel=2)
        self.unquantized_weights = unquantized_parameters(self.model)
        if self.unquantized_weights:
            warnings.warn(f"QuantizationSimModel: these parameters get no quantizer and stay "
                          f"FP32: {', '.join(self.unquantized_weights)}", stacklevel=2)
        self._specs = apply_config(self.graph, self._config, output_bw=default_output_bw,
                                   param_bw=default_param_bw, data_type=default_data_type)
        disable_non_float_slots(self, dummy_input)
        apply_exception_rules(self.graph, self._specs, self.hw_version)
        check_supported_kernels(self._specs)
        self._shared = propagation.shared_slots(self.graph, self._specs, self.hw_version)
        propagation.share_specs(self._specs, self._shared)
        for name in self._specs:
            realize(self, name)
        propagation.tie_quantizers(self)

    # ------------------------------------------------------------------ queries

    def named_qmodules(self) -> Iterable[tuple[str, nn.Module]]:
        """``(name, quantized module)`` for every quantized module of ``model``.

        Example::

            >>> [n for n, _ in sim.named_qmodules()]  # doctest: +SKIP
            ['0', '1', '3']
        """
        return ((n, m) for n, m in self.model.named_modules() if isinstance(m, QuantizationMixin))

    def qmodules(self) -> Iterable[nn.Module]:
        """The quantized modules of ``model``."""
        return (m for _, m in self.named_qmodules())

    def quant_wrappers(self) -> Iterable[nn.Module]:
        """Alias of :meth:`qmodules` (AIMET v1 name)."""
        return self.qmodules()

    def quantizers(self) -> Iterable[tuple[str, nn.Module]]:
        """``(path, quantizer)`` for every enabled quantizer, e.g.
        ``("conv1.param_quantizers.weight", q)``."""
        for name, m in self.named_qmodules():
            for kind, slots in (("input_quantizers", enumerate(m.input_quantizers)),
                                ("output_quantizers", enumerate(m.output_quantizers)),
                                ("param_quantizers", m.param_quantizers.items())):
                for key, q in slots:
                    if q is not None:
                        yield f"{name}.{kind}.{key}", q

    # ------------------------------------------------------------------ configuration

    def set_percentile_value(self, percentile: float) -> None:
        """Sets p of the ``percentile`` scheme's analyzers (in [50, 100]; default 100)."""
        calibration.set_percentile(self, percentile)

    def set_precision(self, target, activation=None, param=None, *, block_size=None,
                      decompressed_bw=None, symmetric=None) -> None:
        """Manual mixed precision: sets the precision of the quantizers of some modules.

        Call before :meth:`compute_encodings` (changed quantizers lose their encodings).
        Enabled/disabled flags are unchanged.

        Args:
            target: a module (of ``sim.model`` or of the original model), a module class
                (e.g. ``nn.Conv2d``), a module name, or a list of these.
            activation: bitwidth (int, or ``"int8"``) or ``"fp16"`` for every input and output
                slot; None keeps it.
            param: the same for every parameter slot, or a dict ``{param_name: precision}``.
            block_size: blockwise integer weights, blocks of this many input channels per
                output channel (torchqsim.quantsim.blockwise); None keeps the setting.
            decompressed_bw: with a block size: LPBQ weights (AIMET's
                ``set_grouped_blockwise_quantization_for_weights``), integer block scales of
                ``decompressed_bw - bitwidth`` bits; None keeps the setting.
            symmetric: the weight grid's symmetry; None keeps it.

        Raises:
            ValueError: unknown target or parameter name, bad precision, a block size that does
                not divide a weight's input channels, LPBQ bitwidths out of order, block
                settings on a module without a weight (each naming the module).

        Example::

            >>> sim.set_precision(nn.Linear, activation=16, param={"weight": 4})  # doctest: +SKIP
        """
        names = targets.set_precision(self, target, activation, param, block_size,
                                      decompressed_bw, symmetric)
        check_supported_kernels({n: self._specs[n] for n in names})

    def exclude_layers_from_quantization(self, layers) -> None:
        """Removes every quantizer of the given modules (they then run in floating point).

        Args:
            layers: modules, module classes or names (or one of them).

        Example::

            >>> sim.exclude_layers_from_quantization([sim.model.fc])  # doctest: +SKIP
        """
        targets.exclude(self, layers)

    # ------------------------------------------------------------------ calibration

    def compute_param_encodings(self) -> None:
        """Computes every (non-frozen) parameter quantizer's encoding from its parameter now."""
        calibration.compute_param_encodings(self)

    def compute_encodings(self, forward_pass_callback: Callable,
                          forward_pass_callback_args: Any = None) -> None:
        """Calibrates: parameter encodings from the parameters, activation encodings from the
        batches `forward_pass_callback` runs.

        The callback runs as ``forward_pass_callback(sim.model, forward_pass_callback_args)``
        (or ``forward_pass_callback(sim.model)`` when it takes one argument and no args are
        given), in eval mode under ``torch.no_grad()``, with a progress counter of forward calls
        (tqdm, shown on terminals). Activation quantizers observe and pass data through;
        parameter quantizers already quantize. Frozen quantizers (encoding constraints,
        ``load_encodings(freeze=True)``) are left alone. Each module's training mode is restored
        afterwards.

        Raises:
            RuntimeError: some enabled quantizers saw no data (their modules were not reached
                by the callback, or saw only NaN/Inf); the message lists them.
        """
        from tqdm.auto import tqdm

        with torch.no_grad(), eval_mode(self.model):
            calibration.compute_param_encodings(self, qmodules := list(self.named_qmodules()))
            calibration.calibrate_activations(self, forward_pass_callback,
                                              forward_pass_callback_args, tqdm, qmodules)
            snap_weight_ranges(self)

    # ------------------------------------------------------------------ encodings

    def quantizer_encodings_dict(self) -> dict:
        """The sim's encodings in AIMET's ``_torch.encodings`` layout (version 0.6.1 entries).

        ``{"version": "0.6.1", "activation_encodings": {module: {"input": {"0": entry},
        "output": {"0": entry}}}, "param_encodings": {"module.weight": [entry per channel]},
        "excluded_layers": [...], "quantizer_args": {...}}`` with integer entries
        ``{"bitwidth", "dtype": "int", "is_symmetric": "True"|"False", "max", "min", "offset",
        "scale"}`` (``offset = qmin - zero_point``: AIMET's sign, on the unsigned grid) and
        float entries ``{"bitwidth": 16, "dtype": "float"}``. Quantizers without an encoding
        are left out.

        Example::

            >>> sim.quantizer_encodings_dict()["param_encodings"]["0.weight"][0]["offset"]  # doctest: +SKIP
            -128
        """
        return torch_encodings.encodings_dict(self)

    def save_encodings_to_json(self, path, filename_prefix: str) -> str:
        """Writes :meth:`quantizer_encodings_dict` to ``{path}/{filename_prefix}_torch.encodings``
        atomically; returns the file path."""
        return torch_encodings.save_encodings(self, path, filename_prefix)

    def export(self, path, filename_prefix: str, dummy_input, encoding_version: str = "1.0.0"):
        """Exports the model for a target runtime (AIMET's ``sim.export``); all files or none.

        Writes into the existing directory `path`: ``{prefix}.onnx`` (the FP32 graph with
        quantize-dequantized weights), ``{prefix}.encodings`` (AIMET `encoding_version` 0.6.1,
        1.0.0, 2.0.0 or 2.1.0 (float and block formats too), keyed by the ONNX tensor names),
        ``{prefix}_torch.encodings`` (module names, what :meth:`load_encodings` reads),
        ``{prefix}_qdq.onnx`` (QuantizeLinear / DequantizeLinear, opset 21, which onnxruntime
        runs bit-exactly) and ``{prefix}.pth``.
        See :func:`torchqsim.export.export_sim`.

        Returns:
            dict: ``onnx``, ``encodings``, ``torch_encodings``, ``qdq_onnx``, ``pth`` -> path.

        Raises:
            torchqsim.export.ExportError: the model cannot be exported (nothing is written).

        Example::

            >>> sim.export("out", "model", dummy_input)          # doctest: +SKIP
            {'onnx': 'out/model.onnx', 'encodings': 'out/model.encodings', ...}
        """
        from ..export import export_sim  # lazily: torchqsim.export loads onnx and onnxscript
        from ..runtime_target import reference_semantics
        with reference_semantics(self):  # the target mode changes the simulation, not the file
            return export_sim(self, path, filename_prefix, dummy_input, encoding_version)

    def load_encodings(self, encodings, strict: bool = True, partial: bool = True,
                       freeze: bool = False, onnx_model=None) -> None:
        """Loads encodings in the ``_torch.encodings`` layout (see
        :meth:`quantizer_encodings_dict`; AIMET 0.6.1 files from aimet-torch read too), or a
        ``{prefix}.encodings`` file (AIMET 0.6.1, 1.0.0, 2.0.0 or 2.1.0 with its float and
        block-format entries, keyed by ONNX tensor names, as ``sim.export`` of aimet-torch 2.42
        or torchqsim writes it): its names are mapped to
        quantizer slots through the ONNX model exported with it (``{prefix}.onnx`` beside it,
        or `onnx_model`); entries aimet-torch's exporter derives (int32 biases, data-movement
        outputs repeating their input's encoding) are skipped
        (:mod:`torchqsim.quantsim.onnx_encodings`).

        Each entry sets its quantizer's encoding; when the entry's precision, symmetry or
        channel count differs from the quantizer, the quantizer is re-created to match the file.
        All or nothing: every entry is checked (by the C validation the encodings reader uses:
        scale finite, > 0 and float32; min < max; integer offsets on the grid; the channels of a
        tensor agreeing on dtype, bitwidth and symmetry; the channel count matching the
        parameter) and its quantizer built before the sim changes; on an error nothing is
        applied.

        Args:
            encodings: the dict, or a path to the JSON file.
            strict: unknown module/parameter names and entries for disabled slots raise
                (else they are skipped with a warning).
            partial: when False, enabled quantizers the file has no entry for are removed.
            freeze: frozen encodings: no calibration or QAT recomputation changes them and their
                min/max get no gradient.
            onnx_model: for a ``.encodings`` file: its ONNX model (a path or ``onnx.ModelProto``);
                None: ``{prefix}.onnx`` beside ``{prefix}.encodings``.

        Raises:
            RuntimeError: strict and an entry names nothing in the sim.
            ValueError: a malformed entry or section, or a file that is not JSON (the message
                names the file and the entry's JSON path).
            TypeError: `encodings` is neither a dict nor a path.

        Example::

            >>> sim.load_encodings(sim.quantizer_encodings_dict(), freeze=True)  # doctest: +SKIP
        """
        torch_encodings.load_encodings(self, encodings, strict, partial, freeze, onnx_model)

    # ------------------------------------------------------------------ runtime target

    def set_target(self, target: str, saturation: bool | None = None) -> list[str]:
        """Simulates `target`: ``"onnxruntime"`` (its CPU integer kernels at the default
        optimization level, bit for bit where docs/runtime_target.md says so) or
        ``"reference"`` (the float Q/DQ semantics, the default); `saturation`: MLAS's int16
        pair saturation (x86 without VNNI) or not, None: this CPU's. ``export`` is unchanged.
        Returns the fused modules. See :func:`torchqsim.runtime_target.set_target`.

        Example::

            >>> sim.model.eval(); sim.set_target("onnxruntime")  # doctest: +SKIP
            ['conv1', 'layer1.0.conv1', ...]
        """
        from ..runtime_target import set_target
        return set_target(self, target, saturation)

    def fold_param_quantizers(self) -> list[str]:
        """Writes every calibrated weight's quantized values into the weight itself: no weight
        quantization nor second copy at inference (:func:`.folding.fold_param_quantizers`)."""
        return folding.fold_param_quantizers(self)

    def compare_with_runtime(self, inputs, verbose: bool = True):
        """Runs the exported ``_qdq.onnx`` in onnxruntime on `inputs` and compares every quantized
        tensor with ``sim.model`` (:func:`torchqsim.runtime_target.compare.compare_with_runtime`)."""
        from ..runtime_target.compare import compare_with_runtime
        return compare_with_runtime(self, inputs, verbose)

    # ------------------------------------------------------------------ reporting

    def summary(self) -> str:
        """A table of the enabled quantizers (precision, grid, layout, encoding): ``print(sim)``."""
        return _summary(self)

    def __str__(self) -> str:
        return self.summary()
