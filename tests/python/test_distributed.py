"""Calibration and QAT on 2 ranks (gloo, loopback, `mp.spawn`): `torchqsim.distributed`.

One spawn runs every scenario (process start-up dominates the time); each rank writes what it
computed to a file and the tests compare the ranks with each other and with oracles computed here
in one process:

- min/max and histograms whose ranks' first batches span the union's range: single-process
  calibration on the union of the shards, bit for bit (the documented equality conditions);
- histograms with different ranges per rank: a pure-Python re-binning of the ranks' own
  histograms (each old bin's count to the merged bin holding its centre), and the analyzer's
  encoding of that merged histogram;
- QAT under DDP: the same training in one process on the concatenated batches (the averaged
  gradient is the gradient of the mean loss over the union, up to float summation order).
"""

import math
import os
import socket
from datetime import timedelta

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from torchqsim import QuantizationSimModel
from torchqsim.distributed import ignore_statistics_in_ddp, sync_statistics
from torchqsim.quantization import (MinMaxEncodingAnalyzer, MseEncodingAnalyzer,
                                    PercentileEncodingAnalyzer, QuantizeDequantize,
                                    SqnrEncodingAnalyzer, compute_encodings)

pytestmark = pytest.mark.skipif(not (dist.is_available() and dist.is_gloo_available()),
                                reason="torch.distributed with gloo is not available")

WORLD = 2
CHANNELS = 3


def _gen(seed):
    return torch.Generator().manual_seed(seed)


# ---- data: a function of the rank, so the parent rebuilds every shard --------------------------

def _spanning_shard(rank):
    """Batches of (CHANNELS, n) whose first batch holds every channel's global min and max, so
    every rank's histogram starts (and stays) on the union's range; the ranks' data differ in
    distribution, and rank 1 has non-finite values."""
    g = _gen(10 + rank)
    lo = -torch.arange(1.0, CHANNELS + 1).unsqueeze(1)
    hi = 2 * torch.arange(1.0, CHANNELS + 1).unsqueeze(1)
    power = 0.25 if rank == 0 else 4.0  # rank 0's data lean to the top, rank 1's to the bottom

    def inside(n):
        return lo + (hi - lo) * torch.rand(CHANNELS, n, generator=g) ** power

    batches = [torch.cat([lo, hi, inside(200)], 1), inside(300), inside(100)]
    if rank == 1:
        batches[1][0, 5], batches[1][2, 7], batches[2][1, 0] = math.nan, math.inf, -math.inf
    return batches


def _growing_shard(rank):
    """Batches whose ranges differ between the ranks and grow from batch to batch."""
    g = _gen(20 + rank)
    return [torch.randn(CHANNELS, 150, generator=g) * (1 + 2 * rank) * (k + 1) + rank
            for k in range(3)]


def _union(shard):
    return [b for r in range(WORLD) for b in shard(r)]


def _quantizers():
    """Quantizers of every analyzer kind, per tensor and per channel, with the data each sees
    (4-bit histograms: there the searches clip, so each rank's data alone gives other encodings
    than the union)."""
    spec = [(MinMaxEncodingAnalyzer, (), 8, _growing_shard),
            (MinMaxEncodingAnalyzer, (CHANNELS, 1), 8, _growing_shard),
            (SqnrEncodingAnalyzer, (), 4, _spanning_shard),
            (SqnrEncodingAnalyzer, (CHANNELS, 1), 4, _spanning_shard),
            (PercentileEncodingAnalyzer, (CHANNELS, 1), 4, _spanning_shard),
            (MseEncodingAnalyzer, (), 4, _spanning_shard)]
    qs = nn.ModuleList()
    for cls, shape, bitwidth, _ in spec:
        a = cls(shape, percentile=99.0) if cls is PercentileEncodingAnalyzer else cls(shape)
        qs.append(QuantizeDequantize(shape, bitwidth, symmetric=False, encoding_analyzer=a))
    return qs, [shard for *_, shard in spec]


def _calibrate_all(qs, shards, data_of):
    with compute_encodings(qs):
        for q, shard in zip(qs, shards):
            for x in data_of(shard):
                q(x)


def _encodings(qs):
    return [tuple(t.clone() for t in q.get_encoding()) for q in qs]


# ---- QAT model ---------------------------------------------------------------------------------

class _Tiny(nn.Module):
    """4-bit quantized input (tf_enhanced), per-channel 4-bit weight, 8-bit output (min/max)."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(CHANNELS, 4)
        with torch.no_grad():
            self.linear.weight.copy_(torch.randn(4, CHANNELS, generator=_gen(3)))
            self.linear.bias.copy_(torch.randn(4, generator=_gen(4)))
        self.input_quantizer = QuantizeDequantize((), 4, symmetric=False,
                                                  encoding_analyzer=SqnrEncodingAnalyzer())
        self.weight_quantizer = QuantizeDequantize((4, 1), 4, symmetric=True)
        self.output_quantizer = QuantizeDequantize((), 8, symmetric=False)

    def forward(self, x):
        w = self.weight_quantizer(self.linear.weight)
        return self.output_quantizer(nn.functional.linear(self.input_quantizer(x), w,
                                                          self.linear.bias))


def _qat_inputs(rank):
    # (n, CHANNELS) rows of the spanning shard: the first batch spans the union's range
    return [b.nan_to_num(0.0, 0.0, 0.0).t().contiguous() for b in _spanning_shard(rank)]


def _qat_target(x):
    return torch.tanh(x @ torch.tensor([[1.0, -0.5, 0.25, 2.0]] * CHANNELS) / 4)


def _train(model, batches, steps=4):
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    losses = []
    for step in range(steps):
        x = batches[step % len(batches)]
        loss = nn.functional.mse_loss(model(x), _qat_target(x))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.detach())
    return losses


def _sim_encodings(quant_scheme, batches):
    """Every quantizer's encoding of a QuantizationSimModel of a small CNN calibrated on
    `batches`."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(CHANNELS, 4, 3), nn.ReLU(), nn.Flatten(),
                          nn.Linear(4 * 4 * 4, 5))
    sim = QuantizationSimModel(model, batches[0], quant_scheme=quant_scheme,
                               tf_enhanced_histogram="growing")
    sim.compute_encodings(lambda m: [m(x) for x in batches])
    return {name: tuple(q.get_encoding()) for name, q in sim.quantizers()}


def _sim_inputs(rank):
    g = _gen(30 + rank)
    return [torch.randn(4, CHANNELS, 6, 6, generator=g) * (1 + rank) for _ in range(2)]


def _clone_state(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _statistics(model):
    return {f"{name}.{k}": v.clone() for name, m in model.named_modules()
            if isinstance(m, QuantizeDequantize) for k, v in m.encoding_analyzer.stats().items()}


# ---- the ranks ---------------------------------------------------------------------------------

def _worker(rank, port, out_dir):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=WORLD, timeout=timedelta(seconds=60))
    try:
        result = {}
        # every analyzer kind in one batched merge (module-level compute_encodings)
        qs, shards = _quantizers()
        _calibrate_all(qs, shards, lambda shard: shard(rank))
        result["encodings"] = _encodings(qs)
        result["stats"] = [{k: v.clone() for k, v in q.encoding_analyzer.stats().items()}
                           for q in qs]
        # histograms on different ranges: the analyzer API directly, before and after the merge
        analyzers = [SqnrEncodingAnalyzer((CHANNELS, 1), num_bins=64), MseEncodingAnalyzer()]
        for a in analyzers:
            for x in _growing_shard(rank):
                a.update_stats(x)
        result["growing_before"] = [{k: v.clone() for k, v in a.stats().items()}
                                    for a in analyzers]
        sync_statistics(analyzers)
        result["growing_after"] = [{k: v.clone() for k, v in a.stats().items()} for a in analyzers]
        result["growing_encodings"] = [tuple(a.compute_encodings(8, symmetric=False))
                                       for a in analyzers]
        # one quantizer's own context, and opting out with process_group=False
        q = QuantizeDequantize((), 8, symmetric=False)
        with q.compute_encodings():
            q(_growing_shard(rank)[0])
        result["single_quantizer"] = tuple(q.get_encoding())
        with q.compute_encodings(process_group=False):
            q(_growing_shard(rank)[0])
        result["local_quantizer"] = tuple(q.get_encoding())
        # QuantizationSimModel.compute_encodings
        for scheme in ("tf", "tf_enhanced"):
            result[f"sim_{scheme}"] = _sim_encodings(scheme, _sim_inputs(rank))
        # ranks whose analyzers differ: the same clear error on both
        try:
            sync_statistics([MinMaxEncodingAnalyzer(() if rank == 0 else (2, 1))])
            result["mismatch"] = None
        except ValueError as e:
            result["mismatch"] = str(e)
        # calibration through the DDP module with grad enabled (where DDP broadcasts rank 0's
        # buffers before every forward unless told to ignore them), then QAT under DDP
        torch.manual_seed(0)
        model = ignore_statistics_in_ddp(_Tiny())
        ddp = nn.parallel.DistributedDataParallel(model)
        with compute_encodings(model):
            for x in _qat_inputs(rank):
                ddp(x)
        result["qat_calibrated"] = _clone_state(model)
        result["qat_statistics"] = _statistics(model)
        result["qat_losses"] = _train(ddp, _qat_inputs(rank))
        result["qat_trained"] = _clone_state(model)
        torch.save(result, os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    out = tmp_path_factory.mktemp("ranks")
    mp.spawn(_worker, args=(_free_port(), str(out)), nprocs=WORLD, join=True)
    return [torch.load(out / f"rank{r}.pt") for r in range(WORLD)]


# ---- the tests ---------------------------------------------------------------------------------

def _assert_equal_encodings(got, want, what):
    for name, g, w in zip(("scale", "zero_point", "min", "max"), got, want):
        assert torch.equal(g, w), f"{what}: {name} {g.flatten().tolist()} != {w.flatten().tolist()}"


def test_every_rank_gets_single_process_encodings_of_the_union(ranks):
    qs, shards = _quantizers()
    _calibrate_all(qs, shards, _union)  # one process, all the data (rank 0's shard first)
    want = _encodings(qs)
    for r, result in enumerate(ranks):
        for i, (got, ref) in enumerate(zip(result["encodings"], want)):
            _assert_equal_encodings(got, ref, f"rank {r}, quantizer {i} "
                                              f"({qs[i].encoding_analyzer})")
        for i, (got, q) in enumerate(zip(result["stats"], qs)):
            for name, ref in q.encoding_analyzer.stats().items():
                assert torch.equal(got[name], ref), f"rank {r}, quantizer {i}: {name} differs"
    # a rank's own data alone gives other encodings: the merge is what makes them equal
    alone = []
    for r in range(WORLD):
        own, _ = _quantizers()
        _calibrate_all(own, shards, lambda shard: shard(r))
        alone.append(_encodings(own))
    for i, ref in enumerate(want):
        assert any(not torch.equal(a[i][0], ref[0]) for a in alone), f"quantizer {i}: no test"
    assert int(ranks[0]["stats"][2]["nonfinite"]) == 3  # rank 1's NaN, +Inf, -Inf


def _merged_reference(before):
    """The ranks' histograms merged by a pure-Python re-binning onto the union of their ranges."""
    lo = torch.stack([s["range"][..., 0] for s in before]).amin(0)
    hi = torch.stack([s["range"][..., 1] for s in before]).amax(0)
    bins = before[0]["counts"].shape[-1]
    counts = torch.zeros_like(before[0]["counts"]).reshape(-1, bins)
    for s in before:
        c, rng = s["counts"].reshape(-1, bins), s["range"].reshape(-1, 2)
        for ch in range(c.shape[0]):
            t_lo, t_hi = float(lo.flatten()[ch]), float(hi.flatten()[ch])
            o_lo, o_hi = float(rng[ch, 0]), float(rng[ch, 1])
            for i in range(bins):
                centre = o_lo + (i + 0.5) * (o_hi - o_lo) / bins
                j = math.floor((centre - t_lo) / ((t_hi - t_lo) / bins))
                counts[ch, min(max(j, 0), bins - 1)] += c[ch, i]
    return {"min": torch.stack([s["min"] for s in before]).amin(0),
            "max": torch.stack([s["max"] for s in before]).amax(0),
            "nonfinite": sum(s["nonfinite"] for s in before),
            "counts": counts.reshape(before[0]["counts"].shape),
            "range": torch.stack([lo, hi], -1)}


def test_histograms_on_different_ranges_merge_onto_the_union_of_ranges(ranks):
    analyzers = [SqnrEncodingAnalyzer((CHANNELS, 1), num_bins=64), MseEncodingAnalyzer()]
    for i, a in enumerate(analyzers):
        before = [result["growing_before"][i] for result in ranks]
        assert not torch.equal(before[0]["range"], before[1]["range"])  # the case under test
        want = _merged_reference(before)
        for name in ("min", "max", "nonfinite", "counts", "range"):
            for r, result in enumerate(ranks):
                assert torch.equal(result["growing_after"][i][name], want[name]), \
                    f"analyzer {i}, rank {r}: merged {name} differs from the reference"
        finite = sum(sum(int(x.isfinite().sum()) for x in _growing_shard(r)) for r in range(WORLD))
        assert int(want["counts"].sum()) == finite
        for name, buf in a.stats().items():
            buf.copy_(want[name])
        ref = a.compute_encodings(8, symmetric=False)
        for r, result in enumerate(ranks):
            _assert_equal_encodings(result["growing_encodings"][i], ref, f"analyzer {i}, rank {r}")


def test_quantizer_context_merges_unless_process_group_is_false(ranks):
    both = MinMaxEncodingAnalyzer()
    for r in range(WORLD):
        both.update_stats(_growing_shard(r)[0])
    want = both.compute_encodings(8, symmetric=False)
    for r, result in enumerate(ranks):
        _assert_equal_encodings(result["single_quantizer"], want, f"rank {r}")
        own = MinMaxEncodingAnalyzer()
        own.update_stats(_growing_shard(r)[0])
        _assert_equal_encodings(result["local_quantizer"], own.compute_encodings(8, False),
                                f"rank {r}, process_group=False")


def test_sim_compute_encodings_merges_across_ranks(ranks):
    union = _union(_sim_inputs)
    want = _sim_encodings("tf", union)
    alone = _sim_encodings("tf", _sim_inputs(0))
    assert any(not torch.equal(alone[n][0], want[n][0]) for n in want)  # the merge matters
    for r, result in enumerate(ranks):
        assert result["sim_tf"].keys() == want.keys()
        for name, ref in want.items():
            _assert_equal_encodings(result["sim_tf"][name], ref, f"rank {r}, tf, {name}")
    # tf_enhanced: the activations' histograms start on different ranges per rank, so the merge
    # re-bins them (checked against a reference above) and single-process equality is not
    # guaranteed: a count one bin away can tip the SQNR search to a neighbouring candidate, at most
    # one step of its grid (1/16 of the range) away. The ranks agree exactly. (On this data the
    # encodings happen to equal the single process's too.)
    single = _sim_encodings("tf_enhanced", union)
    for name, enc in ranks[0]["sim_tf_enhanced"].items():
        _assert_equal_encodings(ranks[1]["sim_tf_enhanced"][name], enc, f"tf_enhanced, {name}")
        step = (single[name][3] - single[name][2]).abs() / 16
        for got, ref in zip(enc[2:], single[name][2:]):
            assert ((got - ref).abs() <= step).all(), \
                f"tf_enhanced, {name}: {got} far from single-process {ref}"


def test_ranks_with_different_analyzers_get_a_clear_error(ranks):
    for result in ranks:
        assert result["mismatch"] is not None and "ranks' analyzers differ" in result["mismatch"]


def test_calibration_through_ddp_then_qat_keeps_the_ranks_identical(ranks):
    # calibration through the DDP module equals one process calibrating on the union
    torch.manual_seed(0)
    model = _Tiny()
    with compute_encodings(model):
        for x in _union(_qat_inputs):
            model(x)
    want, want_statistics = _clone_state(model), _statistics(model)
    for r, result in enumerate(ranks):
        for name, ref in want.items():
            assert torch.equal(result["qat_calibrated"][name], ref), f"rank {r}: {name} differs"
        for name, ref in want_statistics.items():
            assert torch.equal(result["qat_statistics"][name], ref), f"rank {r}: {name} differs"
    # QAT: identical on both ranks, bit for bit (DDP all-reduces the min/max gradients)
    trained = [result["qat_trained"] for result in ranks]
    for name in want:
        assert torch.equal(trained[0][name], trained[1][name]), f"{name} differs between ranks"
    for name in ("input_quantizer.min", "weight_quantizer.max", "output_quantizer.max"):
        assert not torch.equal(trained[0][name], want[name]), f"{name} did not learn"
    # ... and equal to one process on the concatenated batches, up to summation order
    one = _train(model, [torch.cat(xs) for xs in zip(*(_qat_inputs(r) for r in range(WORLD)))])
    for name, ref in _clone_state(model).items():
        torch.testing.assert_close(trained[0][name], ref, rtol=1e-4, atol=1e-5,
                                   msg=lambda m: f"{name}: {m}")
    ddp_loss = torch.stack([torch.stack(result["qat_losses"]) for result in ranks]).mean(0)
    torch.testing.assert_close(ddp_loss, torch.stack(one), rtol=1e-4, atol=1e-6)
