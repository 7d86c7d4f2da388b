"""SeqMSE (torchqsim.ptq.apply_seq_mse): the chosen encodings against a brute-force pure-torch
search, per-layer output MSE against min/max encodings, LPBQ/blockwise search, freezing, export /
load, interruption, progress without tqdm, and argument errors."""

import sys

import pytest
import torch
from torch import nn

from torchqsim.functional import lpbq_scales
from torchqsim.ptq import apply_seq_mse
from torchqsim.quantization.param_quantizer import is_frozen
from torchqsim.quantsim import QuantizationSimModel


def _model(seed=0):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(32, 24), nn.ReLU(), nn.Linear(24, 8)).eval()
    with torch.no_grad():   # a few outlier weights: clipping pays at 4 bits
        model[0].weight[:, 0] *= 6
        model[2].weight[:, 3] *= 6
    return model


def _data(n=3, seed=1):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(16, 32, generator=g) for _ in range(n)]


def _sim(seed=0, **kw):
    return QuantizationSimModel(_model(seed), torch.randn(2, 32), default_param_bw=4, **kw)


def _wq(sim, name):
    return sim.model.get_submodule(name).param_quantizers["weight"]


def _brute_force(x, w, num_candidates, block=None):
    """Pure torch: per output channel (or per block of `block` inputs), the candidate range
    absmax * i / N (symmetric 4-bit, scale = m / 7) with the smallest mean squared output error;
    returns the chosen scales and the sorted losses (to skip near ties)."""
    nb = 1 if block is None else w.shape[1] // block
    wb, xb = w.reshape(w.shape[0], nb, -1), x.reshape(x.shape[0], nb, -1)
    absmax = wb.abs().amax(-1)                                        # (O, nb)
    scales, losses = [], []
    for i in range(1, num_candidates + 1):
        s = absmax * i / num_candidates / 7
        wq = torch.clamp(torch.round(wb / s[..., None]), -8, 7) * s[..., None]
        err = torch.einsum("mnk,onk->mon", xb, wq - wb)                # (M, O, nb)
        scales.append(s)
        losses.append(err.square().mean(0))
    losses = torch.stack(losses)
    best = losses.argmin(0)
    chosen = torch.stack(scales).gather(0, best[None])[0]
    return chosen, losses.sort(0).values


@pytest.mark.parametrize("block", [None, 8])
def test_search_picks_the_brute_force_argmin(block):
    sim = _sim()
    if block:
        sim.set_precision("0", block_size=block)
    data = _data()
    apply_seq_mse(sim, data, num_candidates=12, progress=False)
    q, w = _wq(sim, "0"), sim.model.get_submodule("0").weight.detach()
    chosen, ranked = _brute_force(torch.cat(data), w, 12, block)   # no activation encodings yet
    clear = (ranked[1] - ranked[0]) > 1e-4 * ranked[0]             # no near tie
    got = q.get_scale().detach().reshape(chosen.shape)
    assert clear.float().mean() > 0.9
    torch.testing.assert_close(got[clear], chosen[clear], rtol=1e-6, atol=0)
    assert (chosen < w.reshape(w.shape[0], chosen.shape[1], -1).abs().amax(-1) / 7).any()


def _layer_mse(sim, name, x, weight_qdq):
    layer = sim.model.get_submodule(name)
    xq = layer.input_quantizers[0](x) if layer.input_quantizers[0] is not None else x
    w = layer.weight.detach()
    return float((torch.nn.functional.linear(xq, weight_qdq(w) - w)).square().mean())


def test_layer_output_mse_not_above_min_max():
    data = _data()
    sim = _sim(quant_scheme="min_max")
    sim.compute_encodings(lambda m: [m(x) for x in data])
    minmax = {n: _wq(sim, n).get_scale().detach().clone() for n in ("0", "2")}
    apply_seq_mse(sim, data, num_candidates=20, progress=False)
    gains = []
    for name in ("0", "2"):
        seen = []
        hook = sim.model.get_submodule(name).register_forward_pre_hook(
            lambda m, a: seen.append(a[0]))
        with torch.no_grad():
            [sim.model(x) for x in data]
        hook.remove()
        x = torch.cat(seen)
        s_mm = minmax[name]
        seq = _layer_mse(sim, name, x, _wq(sim, name))
        ref = _layer_mse(sim, name, x,
                         lambda w: torch.clamp(torch.round(w / s_mm), -8, 7) * s_mm)
        assert seq <= ref * (1 + 1e-6)
        gains.append(ref / seq)
    assert max(gains) > 1.05


def test_lpbq_search_compresses_the_blockwise_choice():
    data = _data()
    plain, lpbq = _sim(), _sim()
    plain.set_precision("0", block_size=8)
    lpbq.set_precision("0", block_size=8, decompressed_bw=8)
    for sim in (plain, lpbq):
        apply_seq_mse(sim, data, num_candidates=10, modules_to_exclude=["2"], progress=False)
    ints, channel = lpbq_scales(_wq(plain, "0").get_scale().detach(), 4, 8, axis=1)
    q = _wq(lpbq, "0")
    assert torch.equal(q.per_block_int_scale, ints) and torch.equal(q.per_channel_scale, channel)
    assert not is_frozen(_wq(lpbq, "2"))


def test_frozen_then_kept_by_calibration_and_load():
    data = _data()
    sim = _sim()
    apply_seq_mse(sim, data, progress=False)
    chosen = _wq(sim, "0").get_scale().detach().clone()
    assert all(is_frozen(_wq(sim, n)) for n in ("0", "2"))
    sim.compute_encodings(lambda m: [m(x) for x in data])
    assert torch.equal(_wq(sim, "0").get_scale(), chosen)
    fresh = _sim()
    fresh.load_encodings(sim.quantizer_encodings_dict(), freeze=True)
    with torch.no_grad():
        assert torch.equal(fresh.model(data[0]), sim.model(data[0]))


class _InterruptingLoader:
    """Yields the batches; the `stop`-th pass over it raises KeyboardInterrupt."""

    def __init__(self, data, stop):
        self.data, self.stop, self.passes = data, stop, 0

    def __iter__(self):
        self.passes += 1
        if self.passes == self.stop:
            raise KeyboardInterrupt
        return iter(self.data)


def test_interrupt_keeps_the_layers_done():
    data = _data()
    sim = _sim()
    sim.compute_encodings(lambda m: [m(x) for x in data])
    before = _wq(sim, "2").get_scale().detach().clone()
    quantizers = list(sim.quantizers())
    with pytest.raises(KeyboardInterrupt):   # passes: first batch, layer "0", layer "2"
        apply_seq_mse(sim, _InterruptingLoader(data, 3), progress=False)
    assert is_frozen(_wq(sim, "0")) and not is_frozen(_wq(sim, "2"))
    assert torch.equal(_wq(sim, "2").get_scale(), before)
    assert list(sim.quantizers()) == quantizers and not sim.model.training
    with torch.no_grad():
        sim.model(data[0])


def test_plain_progress_without_tqdm(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tqdm", None)
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    apply_seq_mse(_sim(), _data(1), num_candidates=2)
    err = capsys.readouterr().err
    assert "apply_seq_mse: 1/2 layers (0)" in err and "apply_seq_mse: 2/2 layers (2)" in err


@pytest.mark.parametrize("kw,match", [
    ({"num_candidates": 0}, "num_candidates must be a positive integer"),
    ({"num_candidates": True}, "num_candidates must be a positive integer"),
    ({"num_batches": 0}, "num_batches must be a positive integer"),
    ({"modules_to_exclude": ["nope"]}, "modules_to_exclude names 'nope'"),
    ({"modules_to_exclude": ["0", "2"]}, "no Conv / ConvTranspose / Linear layer"),
])
def test_bad_arguments(kw, match):
    with pytest.raises(ValueError, match=match):
        apply_seq_mse(_sim(), _data(1), progress=False, **kw)
    with pytest.raises(ValueError, match="data_loader yielded no batch"):
        apply_seq_mse(_sim(), [], progress=False)
