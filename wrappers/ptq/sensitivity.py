"""Quantization sensitivity analysis (AIMET ``QuantAnalyzer``).

`QuantAnalyzer(model, dummy_input, forward_pass_callback, eval_callback).analyze(...)` builds a
:class:`~torchqsim.QuantizationSimModel` of `model`, calibrates it, and measures, by switching
quantizers on and off (the sim's calibrated quantizers are swapped in and out of their slots):

- the whole model: FP32, fully quantized, weights only, activations only;
- each quantized module alone: all its quantizers, its weights only, its activations only (the
  rest of the model in FP32);

each as the `eval_callback` score and as the SQNR of the model output on `dummy_input`
(``10 log10(sum y^2 / sum (y_q - y)^2)`` dB, against the FP32 output). It also records every
quantizer's encoding range and, for each module, histograms of its FP32 output and weight with
the encoding ranges marked.

Files in `results_dir` (written together, atomically): ``sensitivity.json`` (everything),
``per_layer.csv``, ``encodings_min_max.csv``, ``per_layer_accuracy.png``,
``per_layer_sqnr.png``, ``activation_ranges.png``, ``hist_<module>.png`` per module, and
``index.html``, one page linking them all.
"""

import json
import math
import os
import re

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from .._atomic import write_files
from ..quantization import QuantizeDequantize
from . import _sensitivity_report as report
from .._forward import eval_mode, run_model
from ._sim_slots import SlotState, call, install, quantized_groups, slot_map

__all__ = ["QuantAnalyzer"]


def _flat(out) -> Tensor:
    if isinstance(out, Tensor):
        return out.detach().reshape(-1).double()
    if isinstance(out, dict):
        out = list(out.values())
    return torch.cat([_flat(o) for o in out if isinstance(o, (Tensor, tuple, list, dict))])


def sqnr_db(reference: Tensor, quantized: Tensor) -> float | None:
    """``10 log10(sum ref^2 / sum (q - ref)^2)`` in dB; None when there is no noise (equal
    tensors: infinite SQNR, which JSON cannot hold).

    Example::

        >>> round(sqnr_db(torch.tensor([1.0, 1.0]), torch.tensor([1.1, 0.9])), 3)
        20.0
    """
    signal = float(reference.double().square().sum())
    noise = float((quantized.double() - reference.double()).square().sum())
    return None if noise == 0 else 10 * math.log10(max(signal, 1e-300) / noise)


def _kind(key) -> str:
    return "param" if key[0] == "param" else "activation"


def _safe(name: str, used: set) -> str:
    base = re.sub(r"[^A-Za-z0-9_.-]", "_", name) or "model"
    out, i = base, 1
    while out in used:
        i += 1
        out = f"{base}_{i}"
    used.add(out)
    return out


def _range(q) -> tuple:
    if not isinstance(q, QuantizeDequantize) or not q.is_initialized():
        return None, None
    enc = q.get_encoding()
    return float(enc.min.min()), float(enc.max.max())


class QuantAnalyzer:
    """Sensitivity analysis of a model to quantization (module docstring).

    Args:
        model: the FP32 model (not modified).
        dummy_input: input (tensor or tuple) for the sim and for the SQNR measurements.
        forward_pass_callback: calibration: ``f(model)`` or a
            :class:`~torchqsim.ptq.CallbackFunc`.
        eval_callback: ``f(model) -> float`` (e.g. accuracy) or a CallbackFunc.
        modules_to_ignore: modules (of `model`) or module paths to leave unquantized.

    Example::

        >>> model = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2))
        >>> x = torch.randn(32, 8)
        >>> def score(m):
        ...     return -float((m(x) - model(x)).abs().mean())
        >>> qa = QuantAnalyzer(model, x, lambda m: m(x), score)
        >>> import tempfile; d = tempfile.mkdtemp()
        >>> res = qa.analyze(default_param_bw=4, results_dir=d, progress=False)
        >>> sorted(res["layers"]), "index.html" in os.listdir(d)
        (['0', '1', '2'], True)
    """

    def __init__(self, model: nn.Module, dummy_input, forward_pass_callback, eval_callback,
                 modules_to_ignore=None):
        self.model = model
        self.dummy_input = dummy_input
        self.forward_pass_callback = forward_pass_callback
        self.eval_callback = eval_callback
        self.modules_to_ignore = list(modules_to_ignore or [])

    def _score(self, model, fp_out: Tensor) -> tuple[float, float | None]:
        with eval_mode(model), torch.no_grad():
            score = float(call(self.eval_callback, model, "eval_callback"))
            out = _flat(run_model(model, self.dummy_input))
        return score, sqnr_db(fp_out, out)

    def analyze(self, quant_scheme="tf_enhanced", default_param_bw: int = 8,
                default_output_bw: int = 8, config_file=None, results_dir: str = "./tmp/",
                num_bins: int = 64, progress: bool = True) -> dict:
        """Runs the analysis and writes the files (module docstring) into `results_dir`.

        Args:
            quant_scheme, default_param_bw, default_output_bw, config_file: of the sim (as
                :class:`~torchqsim.QuantizationSimModel`).
            results_dir: created if missing.
            num_bins: histogram bins.
            progress: tqdm progress bar over the per-module measurements.

        Returns:
            What ``sensitivity.json`` holds: ``{"model": {...}, "layers": {name: {...}},
            "encodings": [...], "files": [...]}``.
        """
        from ..quantsim import QuantizationSimModel

        sim = QuantizationSimModel(self.model, self.dummy_input, quant_scheme=quant_scheme,
                                   default_output_bw=default_output_bw,
                                   default_param_bw=default_param_bw, config_file=config_file)
        if self.modules_to_ignore:
            sim.exclude_layers_from_quantization(self.modules_to_ignore)
        sim.compute_encodings(lambda m, _: call(self.forward_pass_callback, m,
                                                "forward_pass_callback"), None)
        groups = quantized_groups(sim)
        with SlotState(sim) as state:
            full = {n: slot_map(m) for n, m in groups.items()}

            for m in groups.values():
                install(m, {})
            with torch.no_grad():
                fp_out = _flat(run_model(sim.model.eval(), self.dummy_input))

            def only(select):
                for n, m in groups.items():
                    install(m, {k: q for k, q in full[n].items() if select(n, k)})
                return self._score(sim.model, fp_out)

            whole = {"fp32": only(lambda n, k: False), "quantized": only(lambda n, k: True),
                     "weights_only": only(lambda n, k: _kind(k) == "param"),
                     "activations_only": only(lambda n, k: _kind(k) == "activation")}
            layers = {}
            for name in tqdm(groups, desc="QuantAnalyzer", disable=not progress):
                kinds = {_kind(k) for k in full[name]}
                layers[name] = {
                    "type": type(groups[name]).__name__,
                    "all": only(lambda n, k: n == name),
                    "weights_only": only(lambda n, k: n == name and _kind(k) == "param")
                    if "param" in kinds else None,
                    "activations_only": only(lambda n, k: n == name and
                                             _kind(k) == "activation")
                    if "activation" in kinds else None}
            encodings = [{"module": n, "slot": f"{k[0]} {k[1]}",
                          "bitwidth": getattr(q, "bitwidth", None),
                          "min": _range(q)[0], "max": _range(q)[1]}
                         for n in groups for k, q in full[n].items()]
            state.restore()
            for m in groups.values():
                install(m, {})
            hists = self._histograms(sim, groups, full, num_bins)
        return self._write(results_dir, whole, layers, encodings, hists)

    def _histograms(self, sim, groups, full, num_bins) -> dict:
        """``{module: [(name, counts, lo, hi, enc_min, enc_max)]}``: FP32 output histograms
        (two calibration passes: range, then counts) and weight histograms."""
        ranges, counts = {}, {}

        def observe(name, out, counting):
            if not isinstance(out, Tensor) or not out.is_floating_point():
                return
            v = out.detach().reshape(-1).float()
            v = v[torch.isfinite(v)]
            if not v.numel():
                return
            if counting:
                lo, hi = ranges[name]
                counts[name] = counts.get(name, 0) + torch.histc(v, num_bins, lo, hi)
            else:
                lo, hi = ranges.get(name, (math.inf, -math.inf))
                ranges[name] = (min(lo, float(v.min())), max(hi, float(v.max())))

        for counting in (False, True):
            hooks = [m.register_forward_hook(
                lambda mod, a, out, n=n, c=counting: observe(n, out, c))
                for n, m in groups.items() if not counting or n in ranges]
            try:
                with torch.no_grad():
                    call(self.forward_pass_callback, sim.model.eval(), "forward_pass_callback")
            finally:
                for h in hooks:
                    h.remove()
        panels = {}
        for name, module in groups.items():
            p = []
            if name in counts:
                lo, hi = ranges[name]
                out_q = next((q for (kind, _), q in full[name].items() if kind == "output"), None)
                p.append(("output", counts[name].tolist(), lo, hi, *_range(out_q)))
            w = getattr(module, "weight", None)
            if isinstance(w, Tensor) and w.is_floating_point():
                w = w.detach().float()
                lo, hi = float(w.min()), float(w.max())
                c = torch.histc(w, num_bins, lo, hi) if hi > lo else torch.tensor([w.numel()])
                p.append(("weight", c.tolist(), lo, hi,
                          *_range(full[name].get(("param", "weight")))))
            if p:
                panels[name] = p
        return panels

    def _write(self, results_dir, whole, layers, encodings, hists) -> dict:

        os.makedirs(results_dir, exist_ok=True)
        score = lambda v, i: None if v is None else v[i]  # noqa: E731
        rows = [{"layer": n, "type": r["type"],
                 "score_all": score(r["all"], 0), "score_weights_only": score(r["weights_only"], 0),
                 "score_activations_only": score(r["activations_only"], 0),
                 "sqnr_all_db": score(r["all"], 1),
                 "sqnr_weights_only_db": score(r["weights_only"], 1),
                 "sqnr_activations_only_db": score(r["activations_only"], 1)}
                for n, r in layers.items()]
        summary = [{"setting": k, "score": v[0], "sqnr_db": v[1]} for k, v in whole.items()]
        names = list(layers)
        used = set()
        hist_files = {n: f"hist_{_safe(n, used)}.png" for n in hists}
        files = {
            "per_layer.csv": report.csv_bytes(rows),
            "encodings_min_max.csv": report.csv_bytes(encodings),
            "per_layer_accuracy.png": report.bar_chart_png(
                names, {k: [r[f"score_{k}"] for r in rows]
                        for k in ("all", "weights_only", "activations_only")},
                "Score with only this layer quantized", "eval score", whole["fp32"][0],
                zoom=True),
            "per_layer_sqnr.png": report.bar_chart_png(
                names, {k: [r[f"sqnr_{k}_db"] for r in rows]
                        for k in ("all", "weights_only", "activations_only")},
                "Output SQNR with only this layer quantized", "SQNR (dB)", zoom=True),
            "activation_ranges.png": report.bar_chart_png(
                [f"{e['module']} {e['slot']}" for e in encodings if e["min"] is not None],
                {"min": [e["min"] for e in encodings if e["min"] is not None],
                 "max": [e["max"] for e in encodings if e["min"] is not None]},
                "Encoding ranges", "value"),
        }
        for n, panels in hists.items():
            files[hist_files[n]] = report.histogram_png(n, panels)
        plots = ["per_layer_accuracy.png", "per_layer_sqnr.png", "activation_ranges.png"]
        tables = ["sensitivity.json", "per_layer.csv", "encodings_min_max.csv"]
        result = {"model": {k: {"score": v[0], "sqnr_db": v[1]} for k, v in whole.items()},
                  "layers": {n: {k: ({"score": v[0], "sqnr_db": v[1]} if isinstance(v, tuple)
                                     else v) for k, v in r.items()} for n, r in layers.items()},
                  "encodings": encodings,
                  "files": sorted([*files, "sensitivity.json", "index.html"])}
        files["sensitivity.json"] = json.dumps(result, indent=2).encode()
        files["index.html"] = report.html_report("Quantization sensitivity", summary, rows,
                                                 plots, tables, hist_files)
        write_files(results_dir, files)
        return result
