"""Empirical bias correction (AIMET ``correct_bias``, empirical mode; Nagel et al. 2019 §4.2).

Quantizing weights (and the activations upstream) shifts the expected output of a layer:
``E[y_q] != E[y]``. For each Conv / ConvTranspose / Linear layer with a bias, in execution order,
`correct_bias` measures the per-channel means of the layer's output in the FP32 model and in the
quantized model (the sim, whose earlier layers are already corrected) over the same batches,
and subtracts the difference from the bias::

    bias -= E[y_quantized] - E[y_fp32]      (means over batch and spatial positions)

The quantized output is taken before the layer's own output quantizer (its rounding noise is
zero-mean; its clipping is not the bias's to undo). The FP32 means come from a copy of `model`
taken before any correction. Layers without a bias are skipped (AIMET adds one for folded BNs;
fold batch norms first).

After the correction the sim's activation encodings are those calibrated before it; recompute
them (``sim.compute_encodings``) for deployment.
"""

import copy
from typing import NamedTuple

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from .._forward import eval_mode
from ..nn.base import quantized_class_of
from ._channels import is_weight_layer
from ._layer_graph import batches, execution_order, module_names, run_batches

__all__ = ["QuantParams", "correct_bias"]


class QuantParams(NamedTuple):
    """How `correct_bias` builds its own sim when given no sim (AIMET ``QuantParams``).

    Example::

        >>> QuantParams(weight_bw=4).act_bw
        8
    """

    weight_bw: int = 8
    act_bw: int = 8
    quant_scheme: str = "tf_enhanced"
    config_file: str | None = None


def _channel_mean(y: Tensor, layer: nn.Module) -> Tensor:
    dim = quantized_class_of(layer).output_channel_dim(y.dim())
    return y.detach().double().transpose(0, dim).reshape(y.shape[dim], -1).mean(dim=1)


class _MeanRecorder:
    """Running per-channel output means of some layers (forward hooks)."""

    def __init__(self, layers: dict, pre_output_quantizer: bool):
        self.sums, self.counts = {}, {}
        self.handles = []
        for name, m in layers.items():
            if pre_output_quantizer:
                self.handles.append(_hook_before_output_quantizer(m, name, self))
            else:
                self.handles.append(m.register_forward_hook(
                    lambda mod, args, out, n=name: self.add(n, mod, out)))

    def add(self, name, module, y):
        mean = _channel_mean(y, module)
        self.sums[name] = self.sums.get(name, 0) + mean
        self.counts[name] = self.counts.get(name, 0) + 1

    def means(self) -> dict:
        return {n: s / self.counts[n] for n, s in self.sums.items()}

    def remove(self):
        for h in self.handles:
            h.remove()


def _hook_before_output_quantizer(module, name, recorder):
    """Records `module`'s output before its output quantizer: wraps the quantizer slot."""
    slots = module.output_quantizers
    original = slots[0]

    class _Tap(nn.Module):
        def forward(self, y):
            recorder.add(name, module, y)
            return y if original is None else original(y)

    slots[0] = _Tap()

    class _Handle:
        @staticmethod
        def remove():
            slots[0] = original

    return _Handle()


def _means(model, layers, data_loader, num_batches, who, pre_output_quantizer=False) -> dict:
    rec = _MeanRecorder(layers, pre_output_quantizer)
    try:
        run_batches(model, data_loader, num_batches, who)
    finally:
        rec.remove()
    return rec.means()


def _make_sim(model, params: QuantParams, data_loader, num_batches, who):
    from ..quantsim import QuantizationSimModel
    first = next(iter(batches(data_loader, 1, who)))
    sim = QuantizationSimModel(model, first, quant_scheme=params.quant_scheme,
                               default_output_bw=params.act_bw, default_param_bw=params.weight_bw,
                               config_file=params.config_file)

    sim.compute_encodings(lambda m, _: run_batches(m, data_loader, num_batches, who), None)
    return sim


def correct_bias(model: nn.Module, sim_or_params, data_loader, num_batches: int, *,
                 layers_to_ignore=(), progress: bool = True) -> dict:
    """Empirical bias correction of `model` (and of the sim), in place.

    Args:
        model: the FP32 model the sim was built from; its layers are matched to the sim's by
            module path.
        sim_or_params: a calibrated :class:`~torchqsim.QuantizationSimModel` of `model`, or a
            :class:`QuantParams` to build and calibrate one (on the same batches).
        data_loader: yields batches (a tensor, or a tuple/list whose first element is the input).
        num_batches: batches per measurement.
        layers_to_ignore: module paths (or modules of `model`) to leave alone.
        progress: show a tqdm progress bar (one step per layer).

    Returns:
        ``{module path: bias shift applied}`` (the subtracted ``E[y_q] - E[y]``, float32).

    Raises:
        TypeError: `sim_or_params` is neither a sim nor QuantParams.
        ValueError: bad `num_batches` or an empty data loader.

    Example::

        >>> model = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2))
        >>> data = [torch.randn(32, 8) for _ in range(2)]
        >>> shifts = correct_bias(model, QuantParams(weight_bw=4), data, 2, progress=False)
        >>> sorted(shifts)
        ['0', '2']
    """
    who = "correct_bias"
    if isinstance(sim_or_params, QuantParams):
        sim = _make_sim(model, sim_or_params, data_loader, num_batches, who)
    elif hasattr(sim_or_params, "named_qmodules") and hasattr(sim_or_params, "model"):
        sim = sim_or_params
    else:
        raise TypeError(f"{who}: sim_or_params must be a QuantizationSimModel or QuantParams, "
                        f"got {type(sim_or_params).__name__}")
    ignored = module_names(model, layers_to_ignore, "layers_to_ignore", who)
    fp_layers = {n: m for n, m in model.named_modules()
                 if is_weight_layer(m) and m.bias is not None and n not in ignored}
    q_layers = {n: m for n, m in sim.named_qmodules() if n in fp_layers}
    fp = copy.deepcopy(model).eval()
    fp_means = _means(fp, {n: fp.get_submodule(n) for n in q_layers}, data_loader, num_batches,
                      who)
    shifts = {}
    with eval_mode(sim.model):
        first = next(iter(batches(data_loader, 1, who)))
        order = execution_order(sim.model, first, q_layers)
        for name in tqdm(order, desc=who, disable=not progress, unit="layer"):
            q_mean = _means(sim.model, {name: q_layers[name]}, data_loader, num_batches, who,
                            pre_output_quantizer=True)[name]
            shift = (q_mean - fp_means[name]).float()
            with torch.no_grad():
                sim_bias, fp_bias = q_layers[name].bias, fp_layers[name].bias
                sim_bias.sub_(shift.to(sim_bias))
                if fp_bias is not sim_bias:
                    fp_bias.sub_(shift.to(fp_bias))
            shifts[name] = shift
    if any(m.param_quantizers["bias"] is not None for m in q_layers.values()
           if "bias" in m.param_quantizers):
        sim.compute_param_encodings()
    return shifts
