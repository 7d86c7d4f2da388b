"""AdaRound: learned up/down rounding of weights (Nagel et al. 2020; AIMET ``apply_adaround``).

Rounding each weight to the nearest grid point is not what minimises a layer's output error. For
every Conv / ConvTranspose / Linear layer, in execution order, AdaRound learns whether each
weight rounds down or up::

    t = W / scale;   q_soft = clamp(floor(t) + zp + h(V), qmin, qmax);   W~ = (q_soft - zp) * scale
    h(V) = clamp(sigmoid(V) * (zeta - gamma) + gamma, 0, 1),   zeta = 1.1, gamma = -0.1

minimising over V (Adam, lr 1e-3) the reconstruction error of the layer output on cached data
plus the annealed regulariser that pushes h to 0 or 1::

    loss = mean_over_positions(sum_over_channels (layer(x; W~) - y)^2)
           + reg_param * sum(1 - |2 h(V) - 1| ** beta)      (after the warm start only)

`beta` falls linearly from ``beta_range[0]`` to ``beta_range[1]`` after the first ``warm_start``
fraction of the iterations (no regulariser before). V starts where h equals the fractional part
of t, so the soft weights start at W. The target ``y`` is the layer's output in the FP32 model;
its input ``x`` comes from a copy of the model whose earlier layers already hold their
AdaRounded weights (the paper's asymmetric reconstruction, AIMET's default). Finally
``q = clamp(floor(t) + zp + [V >= 0], qmin, qmax)``.

The weight encoding (scale, zero point) is computed once per layer by a
:class:`~torchqsim.quantization.QuantizeDequantize` with the analyzer of `quant_scheme` and stays
fixed; the quantization arithmetic is ``torchqsim.functional`` (``dequantize`` of the soft and
hard grid integers, ``quantize_dequantize`` for nearest rounding).

The result: every layer's weight holds its AdaRounded values, which lie exactly on the grid, so
a :class:`~torchqsim.QuantizationSimModel` built from the model that loads the returned
encodings with ``freeze=True`` reproduces the AdaRounded integers (AIMET: ``load_encodings`` +
freeze param encodings). Biases are not changed.

Work happens on copies of the model; the model is updated only after the last layer, so an
interruption (KeyboardInterrupt) leaves it as it was.
"""

import copy
import json

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from .._atomic import write_files
from .. import functional as F
from ..nn.base import quantized_class_of
from ..quantization import QuantizeDequantize
from ..quantization._layout import qdq_layout
from ..quantization.scheme import QuantScheme
from ..quantsim.torch_encodings import quantizer_entries
from ._channels import is_weight_layer, out_axis
from ._layer_graph import capture_layer, execution_order, module_names

__all__ = ["apply_adaround", "ADAROUND_ZETA", "ADAROUND_GAMMA"]

ADAROUND_ZETA = 1.1
ADAROUND_GAMMA = -0.1


def _h(v: Tensor) -> Tensor:
    """The rectified sigmoid."""
    return torch.clamp(torch.sigmoid(v) * (ADAROUND_ZETA - ADAROUND_GAMMA) + ADAROUND_GAMMA, 0, 1)


def _v_init(rest: Tensor) -> Tensor:
    """V with ``h(V) = rest`` (rest in [0, 1))."""
    p = (rest - ADAROUND_GAMMA) / (ADAROUND_ZETA - ADAROUND_GAMMA)
    return torch.log(p / (1 - p))


def _weight_quantizer(layer, bw, scheme, per_channel) -> QuantizeDequantize:
    w = layer.weight.detach()
    axis = out_axis(layer)
    shape = [1] * w.dim()
    if per_channel:
        shape[axis] = w.shape[axis]
    q = QuantizeDequantize(tuple(shape), bw, symmetric=True,
                           encoding_analyzer=scheme.analyzer(tuple(shape)))
    with q.compute_encodings():
        q(w)
    return q


def _grid(q: QuantizeDequantize, w: Tensor):
    """(scale, zero_point, axis) of `q` in torchqsim.functional's per-tensor/channel form."""
    axis, _, _ = qdq_layout(w.shape, q.shape)
    enc = q.get_encoding()
    flat = (lambda t: t.reshape(())) if axis is None else (lambda t: t.reshape(-1))
    return flat(enc.scale), flat(enc.zero_point), axis


def _recon_loss(out: Tensor, target: Tensor, layer: nn.Module) -> Tensor:
    dim = quantized_class_of(layer).output_channel_dim(out.dim())
    return (out - target).square().sum(dim=dim).mean()


def _optimize_layer(layer, q, x, y, iterations, reg_param, beta_range, warm_start, batch_size,
                    gen, bar):
    """Learns the rounding of one layer; returns its AdaRounded weight."""
    wrapper = quantized_class_of(layer).from_module(layer)  # its forward_with_weight
    w = layer.weight.detach()
    scale, zp, axis = _grid(q, w)
    bshape = [1] * w.dim()
    if axis is not None:
        bshape[axis] = -1
    t = w / scale.reshape(bshape)
    floor = torch.floor(t)
    base = floor + zp.reshape(bshape).to(w.dtype)
    v = nn.Parameter(_v_init(t - floor))
    opt = torch.optim.Adam([v], lr=1e-3)
    warm = int(warm_start * iterations)
    for it in range(iterations):
        idx = torch.randint(0, x.shape[0], (min(batch_size, x.shape[0]),), generator=gen)
        h = _h(v)
        w_soft = F.dequantize(torch.clamp(base + h, q.qmin, q.qmax), scale, zp, axis)
        loss = _recon_loss(wrapper.forward_with_weight(x[idx], w_soft), y[idx], layer)
        if it >= warm:
            progress = (it - warm) / max(1, iterations - warm)
            beta = beta_range[0] + (beta_range[1] - beta_range[0]) * progress
            loss = loss + reg_param * (1 - (2 * h - 1).abs().pow(beta)).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        bar.update(1)
    with torch.no_grad():
        return F.dequantize(torch.clamp(base + (v >= 0).to(w.dtype), q.qmin, q.qmax), scale, zp,
                            axis)


def _check(who, **kw):
    for name, v in kw.items():
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ValueError(f"{who}: {name} must be a positive integer, got {v!r}")


def apply_adaround(model: nn.Module, dummy_input, data_loader, num_batches: int,
                   param_bw: int = 4, iterations: int | None = None, *,
                   reg_param: float = 0.01, beta_range: tuple = (20.0, 2.0),
                   warm_start: float = 0.2, quant_scheme="tf_enhanced", per_channel: bool = True,
                   param_bw_override: dict | None = None, modules_to_ignore=None,
                   path: str | None = None, filename_prefix: str = "adaround",
                   seed: int = 0, progress: bool = True) -> dict:
    """AdaRounds the weights of every Conv / ConvTranspose / Linear of `model` (in place, at the
    end) and returns their encodings.

    Args:
        model: a float model (its mode is kept; the tool runs copies in eval mode).
        dummy_input: an input (tensor or tuple) for finding the layers' execution order.
        data_loader: yields batches (a tensor, or a tuple/list whose first element is the
            input); the first `num_batches` are cached per layer.
        num_batches: how many batches to cache.
        param_bw: weight bitwidth (AIMET ``default_param_bw``), 2..16.
        iterations: optimisation steps per layer; None takes AIMET's default, 10000, or 15000
            when any weight bitwidth is below 8.
        reg_param: weight of the rounding regulariser (AIMET 0.01).
        beta_range: ``(start, end)`` of the annealed regulariser exponent (AIMET (20, 2)).
        warm_start: fraction of the iterations without the regulariser (AIMET 0.2).
        quant_scheme: analyzer of the (fixed) weight encodings: a
            :class:`~torchqsim.QuantScheme` or its string ("tf", "tf_enhanced", "mse", ...).
        per_channel: per-output-channel encodings (axis 0; ConvTranspose axis 1) or per-tensor;
            must match the sim that will load them. Weights use the signed symmetric grid.
        param_bw_override: ``{module path: bitwidth}`` for layers with another bitwidth.
        modules_to_ignore: modules (or module paths) to leave alone.
        path: if given, the encodings are also saved (atomically) to
            ``{path}/{filename_prefix}.encodings`` as ``{"activation_encodings": {},
            "param_encodings": ...}``, which ``sim.load_encodings(file, freeze=True)`` reads.
        filename_prefix: file name stem for `path`.
        seed: seeds the minibatch sampling.
        progress: show a tqdm progress bar (layers x iterations).

    Returns:
        ``{"<module path>.weight": [entry, ...]}``: the weights' encodings in the sim's
        ``_torch.encodings`` layout (one AIMET 0.6.1 entry per channel, or one for per-tensor:
        ``{"bitwidth", "dtype", "is_symmetric", "min", "max", "offset", "scale"}``), ready for
        ``sim.load_encodings({"param_encodings": returned}, freeze=True)``.

    Raises:
        ValueError: bad bitwidths, iteration counts or regulariser settings, or no layer to
            round.
        KeyboardInterrupt: re-raised after an interruption; `model` is unchanged.

    Example::

        >>> model = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2))
        >>> data = [torch.randn(16, 8) for _ in range(2)]
        >>> enc = apply_adaround(model, data[0], data, 2, param_bw=4, iterations=20,
        ...                      progress=False)
        >>> sorted(enc), len(enc["0.weight"]), enc["0.weight"][0]["bitwidth"]
        (['0.weight', '2.weight'], 8, 4)
    """
    who = "apply_adaround"
    overrides = dict(param_bw_override or {})
    bws = {param_bw, *overrides.values()}
    if iterations is None:
        iterations = 15000 if min(bws) < 8 else 10000
    _check(who, num_batches=num_batches, iterations=iterations)
    if not (0 <= warm_start < 1) or reg_param < 0 or len(beta_range) != 2:
        raise ValueError(f"{who}: need 0 <= warm_start < 1, reg_param >= 0 and a (start, end) "
                         f"beta_range; got {warm_start!r}, {reg_param!r}, {beta_range!r}")
    scheme = QuantScheme.parse(quant_scheme)
    ignored = module_names(model, modules_to_ignore or (), "modules_to_ignore", who)
    fp = copy.deepcopy(model).eval()
    work = copy.deepcopy(model).eval()
    layers = {n: m for n, m in work.named_modules() if is_weight_layer(m)
              and n not in ignored}
    unknown = sorted(set(overrides) - set(layers))
    if unknown:
        raise ValueError(f"{who}: param_bw_override names {unknown}, which are not Conv / "
                         f"ConvTranspose / Linear layers of the model (or are ignored)")
    order = execution_order(work, dummy_input, layers)
    if not order:
        raise ValueError(f"{who}: the model has no Conv / ConvTranspose / Linear layer to round "
                         f"that the dummy_input forward reaches")
    gen = torch.Generator().manual_seed(seed)
    results, entries = {}, {}
    with tqdm(total=len(order) * iterations, desc=who, disable=not progress, unit="it") as bar:
        for name in order:
            bar.set_postfix_str(name)
            layer = layers[name]
            bw = overrides.get(name, param_bw)
            q = _weight_quantizer(layer, bw, scheme, per_channel)
            x, batch_size = capture_layer(work, layer, data_loader, num_batches, who, False)
            y, _ = capture_layer(fp, fp.get_submodule(name), data_loader, num_batches, who, True)
            w = _optimize_layer(layer, q, x, y, iterations, reg_param, beta_range, warm_start,
                                batch_size, gen, bar)
            with torch.no_grad():
                layer.weight.copy_(w)
            results[name] = w
            entries[f"{name}.weight"] = quantizer_entries(q)
    if path is not None:
        text = json.dumps({"activation_encodings": {}, "param_encodings": entries}, indent=2)
        write_files(path, {f"{filename_prefix}.encodings": text.encode()})
    with torch.no_grad():  # commit
        for name, w in results.items():
            model.get_submodule(name).weight.copy_(w)
    return entries
