"""`QuantizationSimModel`: a model with quantizers in the loop (AIMET QuantSim, reference
aimet.md §5).

Construction copies the model (unless ``in_place``), prepares it (``prepare_model``: functional
ops become modules), replaces every module by its quantized wrapper, applies the quantsim config
(:mod:`torchqsim.quantsim_apply`, AIMET's order) and creates the quantizers. ``sim.model`` is
then an ordinary ``nn.Module`` (a ``torch.fx.GraphModule``): calibrate it with
:meth:`QuantizationSimModel.compute_encodings`, evaluate it, fine-tune it with any optimizer.

QAT (reference aimet.md §3, §7):

- post-training schemes (``tf``, ``tf_enhanced``, ``percentile``, ``mse``): quantizers use the
  straight-through estimator; activation encodings stay as calibrated (their min/max have
  ``requires_grad=False``); parameter encodings follow the weights, recomputed with the
  scheme's analyzer at every forward in training mode (unless frozen by
  ``load_encodings(..., freeze=True)``). After training call :meth:`compute_param_encodings`
  (or one training-mode forward) so that eval uses the encodings of the final weights;
- range-learning schemes (``range_learning_tf_init``, ``range_learning_tf_enhanced_init``):
  every quantizer's ``min``/``max`` are learnable ``nn.Parameter``s (LSQ-style gradients), and
  nothing is recomputed.

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
import inspect
import json
import math
import os
import warnings
from typing import Any, Callable, Iterable

import torch
from torch import Tensor, nn

from .._atomic import write_files
from .._forward import eval_mode, run_model
from .config_file import load_config
from ..graph import ModuleGraph
from ..nn.base import QuantizationMixin
from ..prepare import prepare_model
from ..quantization.float_quantizer import FloatQuantizeDequantize
from ..quantization.param_quantizer import ParamQuantizeDequantize, freeze, is_frozen
from ..quantization.quantizer import QuantizeDequantize, compute_encodings as _calibrate
from ..quantization.scheme import QuantScheme
from .config_rules import (SlotSpec, apply_config, apply_exception_rules,
                             check_supported_kernels, param_channel_axis, quantize_modules)

__all__ = ["QuantizationSimModel", "quantizer_entries"]

_FLOAT_DTYPES = {16: torch.float16}


def _is_quantizer(m: nn.Module) -> bool:
    return isinstance(m, (QuantizeDequantize, FloatQuantizeDequantize))


def _check_bitwidth(name: str, bw, dtype: str) -> int:
    if isinstance(bw, bool) or not isinstance(bw, int):
        raise TypeError(f"{name} must be an int, got {type(bw).__name__}")
    if dtype == "float" and bw not in _FLOAT_DTYPES:
        raise ValueError(f"{name}={bw} with data type 'float': only 16 (fp16 simulation) is "
                         f"supported")
    if dtype == "int" and not 2 <= bw <= 16:
        raise ValueError(f"{name}={bw}: integer bitwidths must be in 2..16")
    return bw


def _parse_precision(value, what: str) -> tuple[int, str]:
    """``8`` / ``"int8"`` -> (8, "int"); ``"fp16"`` / ``"float16"`` -> (16, "float")."""
    if isinstance(value, str):
        v = value.lower()
        if v in ("fp16", "float16", "float"):
            return 16, "float"
        if v.startswith("int") and v[3:].isdigit():
            return _check_bitwidth(what, int(v[3:]), "int"), "int"
        raise ValueError(f"{what}={value!r}: expected an int bitwidth, 'intN' or 'fp16'")
    return _check_bitwidth(what, value, "int"), "int"


def _floats(values) -> list[bool]:
    values = values if isinstance(values, (tuple, list)) else (values,)
    return [isinstance(v, Tensor) and v.is_floating_point() for v in values]


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
            ``"per_channel"``, ``"target"``); None is ``"default"``.
        in_place: use `model`'s modules instead of a deep copy: ``sim.model`` then shares (and
            trains) `model`'s parameters; `model` itself is not modified.

    Attributes:
        model: the simulated model (``torch.fx.GraphModule`` with quantized wrappers).
        quant_scheme: the :class:`QuantScheme`.
        hw_version: ``defaults.hw_version`` of the config; its AIMET exception rules (Embedding,
            GroupNorm, MatMul precision) are applied at construction
            (:func:`~torchqsim.quantsim_apply.apply_exception_rules`).
        graph: the :class:`~torchqsim.graph.ModuleGraph` of ``model``.

    Raises:
        ValueError / TypeError: a bad argument (the message names it).
        RuntimeError: `model` already holds quantizers.
        UnsupportedModuleError, PrepareError: a module has no quantized class / fx cannot trace.
        ConfigError: an invalid config file.

    Example: see the module docstring.
    """

    def __init__(self, model: nn.Module, dummy_input, quant_scheme="tf_enhanced",
                 default_output_bw: int = 8, default_param_bw: int = 8,
                 default_data_type: str = "int", config_file=None, in_place: bool = False):
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
        self.quant_scheme = QuantScheme.parse(quant_scheme)
        if default_data_type not in ("int", "float"):
            raise ValueError(f"default_data_type must be 'int' or 'float', got "
                             f"{default_data_type!r}")
        _check_bitwidth("default_output_bw", default_output_bw, default_data_type)
        _check_bitwidth("default_param_bw", default_param_bw, default_data_type)
        held = [n or type(model).__name__ for n, m in model.named_modules()
                if _is_quantizer(m) or isinstance(m, QuantizationMixin)]
        if held:
            raise RuntimeError(f"model already holds quantizers or quantized modules "
                               f"({', '.join(held[:5])}{', ...' if len(held) > 5 else ''}): "
                               f"pass the floating-point model")
        self.default_output_bw, self.default_param_bw = default_output_bw, default_param_bw
        self.default_data_type = default_data_type
        self._config = load_config(config_file)
        self.hw_version = self._config["defaults"].get("hw_version", "default")
        self._percentile = 100.0
        self._excluded: list[str] = []
        source = model if in_place else copy.deepcopy(model)
        self._source_names = {id(m): n for n, m in model.named_modules()}
        self.model = quantize_modules(prepare_model(source, dummy_input=dummy_input))
        self.graph = ModuleGraph.from_graph_module(self.model)
        if self.graph.unquantized_ops:
            warnings.warn(f"QuantizationSimModel: these ops stay functions and get no quantizer: "
                          f"{', '.join(self.graph.unquantized_ops)}", stacklevel=2)
        self._specs = apply_config(self.graph, self._config, output_bw=default_output_bw,
                                   param_bw=default_param_bw, data_type=default_data_type)
        self._disable_non_float_slots(dummy_input)
        apply_exception_rules(self.graph, self._specs, self.hw_version)
        check_supported_kernels(self._specs)
        for name in self._specs:
            self._realize(name)

    # ------------------------------------------------------------------ construction helpers

    def _disable_non_float_slots(self, dummy_input) -> None:
        seen: dict[str, tuple[list, list]] = {}
        hooks = []
        for name, module in self.named_qmodules():
            def hook(mod, args, out, name=name):
                seen[name] = (_floats(args), _floats(out))
            hooks.append(module.register_forward_hook(hook))
        try:
            with torch.no_grad(), eval_mode(self.model):
                run_model(self.model, dummy_input)
        finally:
            for h in hooks:
                h.remove()
        for name, (ins, outs) in seen.items():
            spec = self._specs[name]
            for slots, flags in ((spec.inputs, ins), (spec.outputs, outs)):
                for i, slot in enumerate(slots):
                    if i >= len(flags) or not flags[i]:
                        slot.enabled = False

    def _make_quantizer(self, module: nn.Module, kind: str, key, spec: SlotSpec):
        if not spec.enabled:
            return None
        if spec.dtype == "float":
            return FloatQuantizeDequantize(dtype=_FLOAT_DTYPES[spec.bitwidth]).train(
                module.training)
        shape: tuple = ()
        if kind == "param" and spec.channel_axis is not None:
            param = getattr(module, key)
            dims = [1] * param.dim()
            dims[spec.channel_axis] = param.shape[spec.channel_axis]
            shape = tuple(dims)
        cls = ParamQuantizeDequantize if kind == "param" else QuantizeDequantize
        q = cls(shape, spec.bitwidth, spec.symmetric,
                self.quant_scheme.analyzer(shape, self._percentile),
                strict=spec.symmetric and spec.strict, unsigned=spec.symmetric and spec.unsigned)
        q.requires_grad_(self.quant_scheme.is_range_learning)
        if spec.encoding_constraints is not None:
            q.set_range(*spec.encoding_constraints)
            freeze(q)
        return q.to(self._device(module)).train(module.training)

    def _device(self, module: nn.Module) -> torch.device:
        """Where a module's quantizers live: with its own tensors, else the model's first."""
        for tensors in ((*module.parameters(recurse=False), *module.buffers(recurse=False)),
                        (*self.model.parameters(), *self.model.buffers())):
            if tensors:
                return tensors[0].device
        return torch.device("cpu")

    def _realize(self, name: str) -> None:
        module, spec = self.model.get_submodule(name), self._specs[name]
        for i, slot in enumerate(spec.inputs):
            module.input_quantizers[i] = self._make_quantizer(module, "input", i, slot)
        for i, slot in enumerate(spec.outputs):
            module.output_quantizers[i] = self._make_quantizer(module, "output", i, slot)
        for n, slot in spec.params.items():
            module.param_quantizers[n] = self._make_quantizer(module, "param", n, slot)

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

    def _resolve(self, target) -> list[str]:
        """Names of the quantized modules `target` designates: a module (of ``model`` or of the
        original model), a module class, a name, or a list of these."""
        if isinstance(target, (list, tuple, set)):
            return [n for t in target for n in self._resolve(t)]
        if isinstance(target, str):
            if target not in self._specs:
                raise ValueError(f"no quantized module named {target!r} in the sim; modules: "
                                 f"{', '.join(sorted(self._specs)[:20])}")
            return [target]
        if isinstance(target, type):
            found = [n for n, m in self.named_qmodules() if isinstance(m, target)]
            if not found:
                raise ValueError(f"no module of type {target.__name__} in the sim")
            return found
        if isinstance(target, nn.Module):
            found = [n for n, m in self.named_qmodules() if m is target]
            name = self._source_names.get(id(target))
            if not found and name in self._specs:
                found = [name]
            if not found:
                raise ValueError(f"module {type(target).__name__} is not a quantized module of "
                                 f"the sim (pass a module of sim.model, its name, or its class)")
            return found
        raise TypeError(f"expected a module, a module class or a name, got "
                        f"{type(target).__name__}")

    # ------------------------------------------------------------------ configuration

    def set_percentile_value(self, percentile: float) -> None:
        """Sets p of the ``percentile`` scheme's analyzers (in [50, 100]; default 100)."""
        self._percentile = float(percentile)
        for _, q in self.quantizers():
            analyzer = getattr(q, "encoding_analyzer", None)
            if hasattr(analyzer, "set_percentile"):
                analyzer.set_percentile(percentile)

    def set_precision(self, target, activation=None, param=None) -> None:
        """Manual mixed precision: sets the precision of the quantizers of some modules.

        Call before :meth:`compute_encodings` (changed quantizers lose their encodings).
        Enabled/disabled flags are unchanged.

        Args:
            target: a module (of ``sim.model`` or of the original model), a module class
                (e.g. ``nn.Conv2d``), a module name, or a list of these.
            activation: bitwidth (int, or ``"int8"``) or ``"fp16"`` for every input and output
                slot; None keeps it.
            param: the same for every parameter slot, or a dict ``{param_name: precision}``.

        Raises:
            ValueError: unknown target or parameter name, bad precision.

        Example::

            >>> sim.set_precision(nn.Linear, activation=16, param={"weight": 4})  # doctest: +SKIP
        """
        act = None if activation is None else _parse_precision(activation, "activation")
        names = self._resolve(target)
        for name in names:
            spec = self._specs[name]
            if isinstance(param, dict):
                unknown = set(param) - set(spec.params)
                if unknown:
                    raise ValueError(f"module {name!r} has no parameter {sorted(unknown)}; "
                                     f"parameters: {sorted(spec.params)}")
                per_param = {k: _parse_precision(v, f"param[{k!r}]") for k, v in param.items()}
            else:
                per_param = {} if param is None else dict.fromkeys(
                    spec.params, _parse_precision(param, "param"))
            for slot in (spec.inputs + spec.outputs if act else []):
                slot.bitwidth, slot.dtype = act
            for k, (bw, dt) in per_param.items():
                spec.params[k].bitwidth, spec.params[k].dtype = bw, dt
            self._realize(name)
        check_supported_kernels({n: self._specs[n] for n in names})

    def exclude_layers_from_quantization(self, layers) -> None:
        """Removes every quantizer of the given modules (they then run in floating point).

        Args:
            layers: modules, module classes or names (or one of them).

        Example::

            >>> sim.exclude_layers_from_quantization([sim.model.fc])  # doctest: +SKIP
        """
        for name in self._resolve(layers):
            for _, _, slot in self._specs[name].slots():
                slot.enabled = False
            self._realize(name)
            if name not in self._excluded:
                self._excluded.append(name)

    # ------------------------------------------------------------------ calibration

    def compute_param_encodings(self) -> None:
        """Computes every (non-frozen) parameter quantizer's encoding from its parameter now."""
        for name, module in self.named_qmodules():
            for pname, q in module.param_quantizers.items():
                if isinstance(q, QuantizeDequantize) and not is_frozen(q):
                    with q.compute_encodings(process_group=False):
                        q(getattr(module, pname))

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
            self.compute_param_encodings()
            self._calibrate_activations(forward_pass_callback, forward_pass_callback_args, tqdm)

    def _activation_quantizers(self):
        for name, module in self.named_qmodules():
            for kind, slots in (("input_quantizers", module.input_quantizers),
                                ("output_quantizers", module.output_quantizers)):
                for i, q in enumerate(slots):
                    if isinstance(q, QuantizeDequantize) and not is_frozen(q):
                        yield name, module, kind, i, q

    def _calibrate_activations(self, callback, args, tqdm) -> None:
        targets = list(self._activation_quantizers())
        container = nn.ModuleList([q for *_, q in targets])
        for name, _, kind, i, q in targets:
            q.name = f"{name}.{kind}.{i}"
        called: set[str] = set()
        hooks = [m.register_forward_pre_hook(lambda mod, a, n=n: called.add(n))
                 for n, m in self.named_qmodules()]
        bar = tqdm(desc="compute_encodings", unit=" forward", disable=None, leave=False)
        hooks.append(self.model.register_forward_hook(lambda *a: bar.update(1)))
        finished = False
        try:
            with _calibrate(container, process_group=None):
                _run_callback(callback, self.model, args)
                finished = True
        except RuntimeError:
            if not finished:
                raise  # the callback's own error
            self._report_uncalibrated(targets, called)
        finally:
            bar.close()
            for h in hooks:
                h.remove()

    def _report_uncalibrated(self, targets, called: set) -> None:
        failed = []
        for name, module, kind, i, q in targets:
            if q.is_initialized():
                continue
            skipped = int(q.encoding_analyzer.nonfinite.sum())
            if name in called and not skipped:
                # The module ran but never passed a floating tensor through this slot.
                getattr(module, kind)[i] = None
                slots = self._specs[name].inputs if kind == "input_quantizers" else \
                    self._specs[name].outputs
                slots[i].enabled = False
                warnings.warn(f"{q.name} received no floating tensor: disabled", stacklevel=4)
            elif skipped:
                failed.append(f"{q.name}: saw only non-finite values ({skipped} NaN/Inf)")
            else:
                failed.append(f"{q.name}: module {name!r} was not called by "
                              f"forward_pass_callback")
        if failed:
            raise RuntimeError(f"compute_encodings: {len(failed)} quantizers got no encoding:\n  "
                               + "\n  ".join(failed))

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
        act, params = {}, {}
        for name, module in self.named_qmodules():
            for kind, slots in (("input", module.input_quantizers),
                                ("output", module.output_quantizers)):
                for i, q in enumerate(slots):
                    if q is not None and q.is_initialized():
                        act.setdefault(name, {}).setdefault(kind, {})[str(i)] = quantizer_entries(q)[0]
            for pname, q in module.param_quantizers.items():
                if q is not None and q.is_initialized():
                    params[f"{name}.{pname}"] = quantizer_entries(q)
        defaults = self._config["defaults"]
        return {
            "version": "0.6.1",
            "activation_encodings": act,
            "param_encodings": params,
            "excluded_layers": list(self._excluded),
            "quantizer_args": {
                "activation_bitwidth": self.default_output_bw, "dtype": self.default_data_type,
                "is_symmetric": bool(defaults["params"].get("is_symmetric", False)),
                "param_bitwidth": self.default_param_bw,
                "per_channel_quantization": bool(defaults.get("per_channel_quantization")),
                "quant_scheme": self.quant_scheme.aimet_name},
        }

    def save_encodings_to_json(self, path, filename_prefix: str) -> str:
        """Writes :meth:`quantizer_encodings_dict` to ``{path}/{filename_prefix}_torch.encodings``
        atomically; returns the file path."""
        name = f"{filename_prefix}_torch.encodings"
        text = json.dumps(self.quantizer_encodings_dict(), indent=2, sort_keys=True)
        write_files(os.fspath(path), {name: text.encode()})
        return os.path.join(os.fspath(path), name)

    def export(self, path, filename_prefix: str, dummy_input, encoding_version: str = "1.0.0"):
        """Exports the model for a target runtime (AIMET's ``sim.export``); all files or none.

        Writes into the existing directory `path`: ``{prefix}.onnx`` (the FP32 graph with
        quantize-dequantized weights), ``{prefix}.encodings`` (AIMET `encoding_version` 0.6.1,
        1.0.0 or 2.0.0, keyed by the ONNX tensor names), ``{prefix}_torch.encodings`` (module
        names, what :meth:`load_encodings` reads), ``{prefix}_qdq.onnx`` (QuantizeLinear /
        DequantizeLinear, opset 21, which onnxruntime runs bit-exactly) and ``{prefix}.pth``.
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
        return export_sim(self, path, filename_prefix, dummy_input, encoding_version)

    def load_encodings(self, encodings, strict: bool = True, partial: bool = True,
                       freeze: bool = False) -> None:
        """Loads encodings in the ``_torch.encodings`` layout (see
        :meth:`quantizer_encodings_dict`; AIMET 0.6.1 files from aimet-torch read too).

        Each entry sets its quantizer's encoding; when the entry's precision, symmetry or
        channel count differs from the quantizer, the quantizer is re-created to match the file.

        Args:
            encodings: the dict, or a path to the JSON file.
            strict: unknown module/parameter names and entries for disabled slots raise
                (else they are skipped with a warning).
            partial: when False, enabled quantizers the file has no entry for are removed.
            freeze: frozen encodings: no calibration or QAT recomputation changes them and their
                min/max get no gradient.

        Raises:
            RuntimeError: strict and an entry names nothing in the sim.
            ValueError: a malformed entry or section (the message names its JSON path).
            TypeError: `encodings` is neither a dict nor a path.

        Example::

            >>> sim.load_encodings(sim.quantizer_encodings_dict(), freeze=True)  # doctest: +SKIP
        """
        if not isinstance(encodings, (dict, str, os.PathLike)):
            raise TypeError(f"load_encodings: encodings must be a dict or a path, got "
                            f"{type(encodings).__name__}")
        if not isinstance(encodings, dict):
            with open(os.fspath(encodings)) as f:
                encodings = _mapping(json.load(f), "the encodings file")
        loaded: set = set()
        problems = []
        acts = _mapping(encodings.get("activation_encodings"), "activation_encodings")
        for mname, kinds in acts.items():
            kinds = _mapping(kinds, f"activation_encodings[{mname!r}]")
            for kind, entries in kinds.items():
                entries = _mapping(entries, f"activation_encodings[{mname!r}][{kind!r}]")
                for idx, entry in entries.items():
                    where = f"activation_encodings[{mname!r}][{kind!r}][{idx!r}]"
                    key = (mname, kind, int(idx)) if str(idx).isdigit() else None
                    problem = self._load_entry(key, [entry], where, freeze)
                    problems += [problem] if problem else []
                    loaded.add(key)
        for pname, entries in _mapping(encodings.get("param_encodings"), "param_encodings").items():
            mname, _, param = pname.rpartition(".")
            where = f"param_encodings[{pname!r}]"
            entries = entries if isinstance(entries, list) else [entries]
            problem = self._load_entry((mname, "param", param), entries, where, freeze)
            problems += [problem] if problem else []
            loaded.add((mname, "param", param))
        if problems and strict:
            raise RuntimeError("load_encodings: " + "; ".join(problems))
        for p in problems:
            warnings.warn(f"load_encodings: skipped {p}", stacklevel=2)
        if not partial:
            for name, spec in self._specs.items():
                for kind, key, slot in spec.slots():
                    if slot.enabled and (name, kind, key) not in loaded:
                        slot.enabled = False
                        self._set_slot(name, kind, key, None)

    def _set_slot(self, name, kind, key, q) -> None:
        module = self.model.get_submodule(name)
        slots = {"input": module.input_quantizers, "output": module.output_quantizers,
                 "param": module.param_quantizers}[kind]
        slots[key] = q

    def _load_entry(self, key, entries: list, where: str, frozen: bool) -> str | None:
        if key is None or key[0] not in self._specs:
            return f"{where}: no quantized module {key[0] if key else '?'!r} in the sim"
        name, kind, k = key
        spec = self._specs[name]
        slots = spec.params if kind == "param" else \
            {"input": dict(enumerate(spec.inputs)), "output": dict(enumerate(spec.outputs))}.get(kind)
        if slots is None or k not in slots:
            return f"{where}: module {name!r} has no {kind} slot {k!r}"
        slot = slots[k]
        if not slot.enabled:
            return f"{where}: the {kind} quantizer {k!r} of {name!r} is disabled in this sim"
        entries = [_check_entry(e, f"{where}[{i}]" if kind == "param" else where)
                   for i, e in enumerate(entries)]
        first = entries[0]
        if first["dtype"] == "float":
            slot.dtype, slot.bitwidth = "float", _check_bitwidth(f"{where}.bitwidth",
                                                                   first["bitwidth"], "float")
            self._set_slot(name, kind, k, self._make_quantizer(
                self.model.get_submodule(name), kind, k, slot))
            return None
        slot.dtype, slot.bitwidth = "int", _check_bitwidth(f"{where}.bitwidth",
                                                           first["bitwidth"], "int")
        if slot.symmetric != first["is_symmetric"]:
            slot.symmetric, slot.strict, slot.unsigned = first["is_symmetric"], False, False
        module = self.model.get_submodule(name)
        if kind == "param":
            param = getattr(module, k)
            axis = param_channel_axis(module, k)
            if len(entries) > 1 and (param.dim() <= axis or param.shape[axis] != len(entries)):
                raise ValueError(f"{where}: {len(entries)} per-channel entries do not match "
                                 f"parameter shape {tuple(param.shape)}")
            slot.channel_axis = axis if len(entries) > 1 else None
        q = self._make_quantizer(module, kind, k, slot)
        lo, hi = _entry_range(entries, q.qmin, q.qmax, where)
        with torch.no_grad():
            q._set(lo, hi)
        if frozen:
            freeze(q)
        self._set_slot(name, kind, k, q)
        return None

    # ------------------------------------------------------------------ reporting

    def summary(self) -> str:
        """A table of every enabled quantizer: module, slot, precision, grid, per-channel layout
        and encoding (min, max, scale; ranges over channels). Also what ``print(sim)`` shows."""
        rows = [("module", "slot", "type", "grid", "channels", "min", "max", "scale")]
        for path, q in self.quantizers():
            name, _, rest = path.partition(".input_quantizers.") if ".input_quantizers." in \
                path else path.partition(".output_quantizers.") if ".output_quantizers." in \
                path else path.partition(".param_quantizers.")
            slot = ("input " if "input_q" in path else "output " if "output_q" in path
                    else "param ") + rest
            if not isinstance(q, QuantizeDequantize):
                rows.append((name, slot, f"float{q.bitwidth}", "-", "-", "-", "-", "-"))
                continue
            chans = "-" if math.prod(q.shape) == 1 else \
                f"{math.prod(q.shape)} (axis {max(range(len(q.shape)), key=q.shape.__getitem__)})"
            if q.is_initialized():
                enc = q.get_encoding()
                values = [_span(enc.min), _span(enc.max), _span(enc.scale)]
            else:
                values = ["(none)"] * 3
            rows.append((name, slot, f"int{q.bitwidth}", q.grid, chans, *values))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        n_slots = sum(1 for s in self._specs.values() for _ in s.slots())
        head = (f"QuantizationSimModel: scheme {self.quant_scheme.name}, "
                f"{len(rows) - 1} of {n_slots} quantizer slots enabled, "
                f"hw_version {self.hw_version}"
                + (f", excluded: {', '.join(self._excluded)}" if self._excluded else ""))
        return "\n".join([head] + ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()
                                   for r in rows]) + "\n"

    def __str__(self) -> str:
        return self.summary()


def _span(t: Tensor) -> str:
    lo, hi = float(t.min()), float(t.max())
    return f"{lo:.6g}" if lo == hi else f"{lo:.6g}..{hi:.6g}"


def _run_callback(callback: Callable, model: nn.Module, args) -> None:
    if args is None:
        try:
            params = inspect.signature(callback).parameters.values()
            positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY,
                                                          p.POSITIONAL_OR_KEYWORD)]
            if len(positional) == 1 and not any(p.kind == p.VAR_POSITIONAL for p in params):
                callback(model)
                return
        except (TypeError, ValueError):
            pass
    callback(model, args)


def quantizer_entries(q: nn.Module) -> list[dict]:
    """AIMET 0.6.1 entries of a quantizer (one per channel)."""
    if not isinstance(q, QuantizeDequantize):
        return [{"bitwidth": int(q.bitwidth), "dtype": "float"}]
    enc = q.get_encoding()
    sym = "True" if q.symmetric else "False"
    return [{"bitwidth": q.bitwidth, "dtype": "int", "is_symmetric": sym,
             "max": float(hi), "min": float(lo), "offset": int(q.qmin - zp), "scale": float(s)}
            for lo, hi, zp, s in zip(enc.min.flatten().tolist(), enc.max.flatten().tolist(),
                                     enc.zero_point.flatten().tolist(),
                                     enc.scale.flatten().tolist())]


def _mapping(value, where: str) -> dict:
    """`value` when it is a JSON object, {} for null; else a ValueError naming `where`."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"load_encodings: {where}: expected a JSON object, got "
                         f"{type(value).__name__}")
    return value


def _bool(value, where: str) -> bool:
    if isinstance(value, bool):
        return value
    if value in ("True", "False"):
        return value == "True"
    raise ValueError(f"{where}: expected true/false or 'True'/'False', got {value!r}")


def _check_entry(entry, where: str) -> dict:
    if not isinstance(entry, dict):
        raise ValueError(f"{where}: expected an encoding object, got {type(entry).__name__}")
    dtype = entry.get("dtype", "int")
    if dtype not in ("int", "float"):
        raise ValueError(f"{where}.dtype: expected 'int' or 'float', got {dtype!r}")
    if "bitwidth" not in entry:
        raise ValueError(f"{where}: missing 'bitwidth'")
    out = {"dtype": dtype, "bitwidth": entry["bitwidth"]}
    if dtype == "float":
        return out
    for key in ("scale", "offset"):
        if key not in entry and not ("min" in entry and "max" in entry):
            raise ValueError(f"{where}: missing {key!r} (or min/max)")
    out["is_symmetric"] = _bool(entry.get("is_symmetric", False), f"{where}.is_symmetric")
    for key in ("scale", "offset", "min", "max"):
        if key in entry:
            if isinstance(entry[key], bool) or not isinstance(entry[key], (int, float)) or \
                    not math.isfinite(entry[key]):
                raise ValueError(f"{where}.{key}: expected a finite number, got {entry[key]!r}")
            out[key] = entry[key]
    if "scale" in out and out["scale"] <= 0:
        raise ValueError(f"{where}.scale: must be > 0, got {out['scale']!r}")
    return out


def _entry_range(entries: list[dict], qmin: int, qmax: int, where: str) -> tuple[Tensor, Tensor]:
    """Per-channel (min, max) of entries: their min/max when given, else from scale/offset."""
    lo, hi = [], []
    for i, e in enumerate(entries):
        if "min" in e and "max" in e:
            lo.append(e["min"])
            hi.append(e["max"])
            continue
        off = int(e["offset"])
        if not -(qmax - qmin) <= off <= 0:
            raise ValueError(f"{where}[{i}].offset: {off} is outside the grid of "
                             f"{qmax - qmin + 1} levels")
        s = torch.tensor(e["scale"], dtype=torch.float32)
        lo.append(float(s * off))
        hi.append(float(s * (off + qmax - qmin)))
    return (torch.tensor(lo, dtype=torch.float32), torch.tensor(hi, dtype=torch.float32))
