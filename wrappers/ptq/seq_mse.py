"""Sequential MSE (SeqMSE): weight encodings searched layer by layer (AIMET ``apply_seq_mse``).

For every Conv / ConvTranspose / Linear layer of a sim with an integer weight quantizer, in
execution order, the layer's input is captured from the sim itself (the earlier layers already
hold their SeqMSE encodings; calibrated activation quantizers apply, uncalibrated ones pass
data through) and quantized by the layer's input quantizer when it has one. Then, for each
element of the weight's encoding (per tensor, per output channel, or per block of a blockwise /
LPBQ quantizer) and each candidate ``i = 1 .. num_candidates``::

    range_i = (wmin * i / num_candidates, wmax * i / num_candidates)
              wmin, wmax: the element's weight range (including 0; +-max|w| on symmetric grids)
    loss_i  = mean over the data of (layer(x_q; Q_i(w)) - layer(x_q; w))^2

where ``Q_i`` fake-quantizes with the encoding that ``set_range(range_i)`` gives, and the loss of
a block is that of the block's share of the output (its input channels alone). Each element
takes the candidate with the smallest loss (the first on ties), the weight quantizer gets that
range (an LPBQ quantizer then compresses its block scales as after calibration) and is frozen,
so later ``compute_encodings`` calls keep it, and ``export`` / ``load_encodings`` carry it.

An interruption (KeyboardInterrupt) leaves the layers done so far with their frozen SeqMSE
encodings and the others as they were.
"""

import sys

import torch
from torch import Tensor, nn

from .._forward import eval_mode
from ..quantization._layout import stats_view
from ..quantization.param_quantizer import freeze, is_frozen
from ..quantization.quantizer import QuantizeDequantize
from ._layer_graph import batches, capture_layer, execution_order, module_names
from ._sim_slots import SlotState, install

__all__ = ["apply_seq_mse", "candidate_ranges"]


def _layers(sim, excluded: set) -> dict:
    """``{name: module}``: weight layers with an enabled, unfrozen integer weight quantizer."""
    out = {}
    for name, m in sim.named_qmodules():
        q = m.param_quantizers["weight"] if "weight" in m.param_quantizers else None
        if name not in excluded and getattr(type(m), "is_weight_layer", False) and \
                isinstance(q, QuantizeDequantize) and not is_frozen(q):
            out[name] = m
    return out


def _calibrated_only(sim) -> SlotState:
    """Empties the slots of activation quantizers without an encoding (they pass data through
    while SeqMSE runs); the returned state puts them back."""
    state = SlotState(sim)
    for name, module in state.modules.items():
        install(module, {k: q for k, q in state.saved[name].items() if k[0] == "param" or
                         not isinstance(q, QuantizeDequantize) or q.is_initialized()})
    return state


def candidate_ranges(w: Tensor, q: QuantizeDequantize, num_candidates: int):
    """``(lo, hi)``, each ``(num_candidates, *q.shape)`` on the CPU (where ``set_range`` computes
    encodings): candidate ``i`` is the weight range of each encoding element scaled by
    ``(i + 1) / num_candidates`` (module docstring).

    Example::

        >>> q = QuantizeDequantize((2, 1), 4, symmetric=True)
        >>> lo, hi = candidate_ranges(torch.tensor([[1.0, -2.0], [0.5, 0.25]]), q, 2)
        >>> hi.flatten().tolist(), lo[1].flatten().tolist()
        ([1.0, 0.25, 2.0, 0.5], [-2.0, -0.5])
    """
    view, axis = stats_view(w.detach().float(), q.shape)
    dims = [d for d in range(view.dim()) if d != axis]
    lo = (view.amin(dim=dims) if dims else view).reshape(q.shape).clamp(max=0).cpu()
    hi = (view.amax(dim=dims) if dims else view).reshape(q.shape).clamp(min=0).cpu()
    if q.symmetric:
        hi = torch.maximum(hi, -lo)
        lo = -hi
    f = torch.arange(1, num_candidates + 1, dtype=torch.float32)
    f = (f / num_candidates).reshape((-1,) + (1,) * len(q.shape))
    return lo * f, hi * f


def _channel_mse(err: Tensor, layer: nn.Module) -> Tensor:
    """Mean squared `err` per output channel."""
    dim = type(layer).output_channel_dim(err.dim())
    return err.float().square().mean(dim=[d for d in range(err.dim()) if d != dim])


def _loss(layer, x: Tensor, ref: Tensor, w: Tensor, wq: Tensor, q) -> Tensor:
    """The loss of weight `wq` for every element of `q`'s encoding (module docstring)."""
    axis = getattr(q, "block_axis", None)
    if axis is None:
        err = layer.forward_with_weight(x, wq) - ref
        return err.float().square().mean().reshape(q.shape) if not any(s > 1 for s in q.shape) \
            else _channel_mse(err, layer).reshape(q.shape)
    nb = q.shape[axis]
    dw = wq - w
    if isinstance(layer, nn.Linear):
        span = w.shape[1] // nb
        err = torch.einsum("mnk,onk->mon", x.reshape(-1, nb, span).float(),
                           dw.reshape(-1, nb, span).float())
        return err.square().mean(0)
    loss = torch.empty(q.shape, device=w.device)
    span = w.shape[axis] // nb
    for b in range(nb):
        part = torch.zeros_like(dw)
        part.narrow(axis, b * span, span).copy_(dw.narrow(axis, b * span, span))
        err = layer.forward_with_weight(x, w + part) - ref
        loss.narrow(axis, b, 1).copy_(_channel_mse(err, layer).reshape(
            loss.narrow(axis, b, 1).shape))
    return loss


def _search_layer(layer: nn.Module, x: Tensor, num_candidates: int) -> None:
    """Sets and freezes the layer's weight encoding to the best candidates."""
    q = layer.param_quantizers["weight"]
    w = layer.weight.detach()
    if layer.input_quantizers and layer.input_quantizers[0] is not None:
        x = layer.input_quantizers[0](x)
    probe = QuantizeDequantize(q.shape, q.bitwidth, q.symmetric).to(w.device)  # LPBQ: plain
    probe.grid = q.grid
    probe.block_axis = getattr(q, "block_axis", None)
    lo, hi = candidate_ranges(w, q, num_candidates)
    ref = layer.forward_with_weight(x, w)
    best_loss = torch.full(q.shape, float("inf"), device=w.device)
    best = torch.zeros(q.shape, dtype=torch.long, device=w.device)
    for i in range(num_candidates):
        probe.set_range(lo[i], hi[i])
        loss = _loss(layer, x, ref, w, probe(w), probe)
        better = loss < best_loss
        best_loss = torch.where(better, loss, best_loss)
        best = torch.where(better, torch.full_like(best, i), best)
    pick = best.cpu().unsqueeze(0)
    q.set_range(lo.gather(0, pick).squeeze(0), hi.gather(0, pick).squeeze(0))
    freeze(q)


class _PlainProgress:
    """A progress line on stderr per layer (when tqdm is not installed)."""

    def __init__(self, total: int, desc: str, enabled: bool):
        self.total, self.desc, self.enabled, self.n = total, desc, enabled, 0

    def update(self, name: str) -> None:
        self.n += 1
        if self.enabled:
            print(f"{self.desc}: {self.n}/{self.total} layers ({name})", file=sys.stderr)

    def close(self) -> None:
        pass


class _TqdmProgress(_PlainProgress):
    def __init__(self, tqdm, total: int, desc: str, enabled: bool):
        super().__init__(total, desc, enabled)
        self.bar = tqdm(total=total, desc=desc, disable=not enabled, unit="layer")

    def update(self, name: str) -> None:
        self.bar.set_postfix_str(name)
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()


def _progress(total: int, desc: str, enabled: bool):
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return _PlainProgress(total, desc, enabled)
    return _TqdmProgress(tqdm, total, desc, enabled)


def apply_seq_mse(sim, data_loader, num_candidates: int = 20, *, num_batches: int | None = None,
                  modules_to_exclude=None, progress: bool = True) -> None:
    """Searches the weight encodings of `sim`'s Conv / ConvTranspose / Linear layers one layer
    at a time, in execution order, minimising each layer's output MSE (module docstring).

    Args:
        sim: a :class:`~torchqsim.QuantizationSimModel`. Call it before ``compute_encodings``
            (as AIMET: activation quantizers without encodings pass data through) or after it
            (calibrated activation quantizers then quantize the layers' inputs).
        data_loader: yields batches (a tensor, or a tuple/list whose first element is the
            input); every layer's inputs over them are cached while it is searched.
        num_candidates: candidate ranges per encoding element (AIMET's default 20).
        num_batches: how many batches to use (None: all).
        modules_to_exclude: modules of ``sim.model`` (or their paths) to leave alone; layers
            with frozen or non-integer weight quantizers are left alone too.
        progress: show a progress bar (tqdm when installed, else a line per layer on stderr).

    Raises:
        ValueError: `num_candidates` or `num_batches` not a positive integer, an unknown
            module in `modules_to_exclude`, no layer to search, or an empty `data_loader`.
        KeyboardInterrupt: re-raised; the layers done keep their frozen encodings.

    Example::

        >>> from torchqsim.quantsim import QuantizationSimModel
        >>> model = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2))
        >>> sim = QuantizationSimModel(model, torch.randn(4, 8), default_param_bw=4)
        >>> apply_seq_mse(sim, [torch.randn(16, 8)], num_candidates=10, progress=False)
        >>> is_frozen(sim.model.get_submodule("0").param_quantizers["weight"])
        True
    """
    who = "apply_seq_mse"
    if isinstance(num_candidates, bool) or not isinstance(num_candidates, int) or \
            num_candidates < 1:
        raise ValueError(f"{who}: num_candidates must be a positive integer, got "
                         f"{num_candidates!r}")
    excluded = module_names(sim.model, modules_to_exclude or (), "modules_to_exclude", who)
    layers = _layers(sim, excluded)
    first = next(iter(batches(data_loader, num_batches, who)))
    with _calibrated_only(sim), eval_mode(sim.model), torch.no_grad():
        order = execution_order(sim.model, first, layers)
        if not order:
            raise ValueError(f"{who}: no Conv / ConvTranspose / Linear layer with an unfrozen "
                             f"integer weight quantizer is reached by the data")
        bar = _progress(len(order), who, progress)
        try:
            for name in order:
                x, _ = capture_layer(sim.model, layers[name], data_loader, num_batches, who,
                                     output=False)
                _search_layer(layers[name], x, num_candidates)
                bar.update(name)
        finally:
            bar.close()
