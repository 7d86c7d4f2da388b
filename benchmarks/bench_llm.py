"""A Llama-architecture decoder in the sim against the FP model in the same run (issue 15's
targets), in fp32 and bf16.

Model (built here from a ``transformers.LlamaConfig``, random weights, fixed seed, eager
attention): ``--layers`` decoder layers of width ``--hidden`` (8 heads, MLP 2.75x), vocabulary
``--vocab``, one batch of ``--seq`` tokens. Sim: ``QuantizationSimModel(..., in_place=True)``
with the ``per_channel`` config, ``tf`` ranges, weights ``--param-bw`` bits, activations
``--output-bw`` bits (W8A16 by default), calibrated on the batch.

Rows per dtype (ratios of medians timed interleaved, one call of each per round; outputs fresh):

- ``eval_fwd``: calibrated sim eval forward / FP eval forward (no grad; target <= 1.3);
- ``eval_fwd_cached``: the same with the sim's eval weight cache on (``weight_cache=True``: a
  second copy of the weights, which an in-place sim does not hold by default);
- ``decode_compiled``: ``torch.compile``'d sim eval forward of ``--decode-tokens`` tokens (1: a
  decode step's shape without a KV cache, where reading the weights is most of the time) with
  the weight cache on / the compiled FP model's; ``decode_compiled_uncached``: the same with the
  cache off (the weights quantized in every forward);
- ``decode_eager``: the eager sim eval forward of ``--decode-tokens`` tokens with the weight
  cache on / the FP model's: the few values of a decode step leave the wrappers' per-call cost
  (their Python and the op calls) as most of the difference;
- ``eval_fwd_folded``: the eval forward after ``sim.fold_param_quantizers()`` (each weight
  holds its quantized values: no weight quantization and no second copy; timed last);
- ``qat_step``: one SGD step (forward, cross-entropy, backward, step) of the sim / of a copy of
  the FP model (target <= 1.5);
- ``peak_rss``: peak resident memory (``VmHWM``, reset once the model is built) of a fresh
  process that builds the model, then builds, calibrates and evaluates the sim / of one that
  builds and evaluates the FP model (target <= 1.15). Both import torch and torchqsim first;
  ``model_rss`` is the same ratio of the peaks less the resident memory after those imports
  (the model's own share, stricter);
- ``qat_rss``: the memory 3 training steps (``qat_step``'s) add to a built, calibrated sim / to
  the FP model: each a fresh process's high-water mark less its resident memory before the
  steps, with glibc returning every allocation of 64 KiB or more at once
  (``MALLOC_MMAP_THRESHOLD_=65536``, ``MALLOC_TRIM_THRESHOLD_=0``), so that the peak follows the
  tensors alive (activations and quantized weights the graph keeps, gradients) rather than the
  allocator's reserve;
- ``seq_mse``: seconds per searched Linear layer of ``torchqsim.ptq.apply_seq_mse`` (only when
  it exists; ``--seq-mse-candidates`` candidates, the batch as data).

Usage::

    python benchmarks/bench_llm.py                 # 4 layers, hidden 512, sequence 128
    python benchmarks/bench_llm.py --quick         # 1 warm-up, 3 repeats (a few minutes)
    python benchmarks/bench_llm.py --dtypes bf16 --layers 8 --hidden 1024 --out /tmp/llm.json
    python benchmarks/bench_llm.py --no-rss --clock cpu   # on a busy machine: thread CPU time
"""

import argparse
import copy
import json
import os
import platform
import subprocess
import sys
import time
import warnings
from pathlib import Path

import timing

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "llm.json"
TARGETS = {"eval_fwd": 1.3, "qat_step": 1.5, "peak_rss": 1.15}
DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}


def build_model(args, dtype):
    """The Llama model (eval mode, `dtype`) and its batch ``{"input_ids": ...}``."""
    import torch
    import transformers
    cfg = transformers.LlamaConfig(
        vocab_size=args.vocab, hidden_size=args.hidden, num_hidden_layers=args.layers,
        num_attention_heads=8, num_key_value_heads=8, intermediate_size=args.hidden * 11 // 4,
        max_position_embeddings=max(256, args.seq), tie_word_embeddings=False)
    cfg._attn_implementation = "eager"
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(cfg).to(getattr(torch, DTYPES[dtype])).eval()
    ids = torch.randint(0, args.vocab, (1, args.seq), generator=torch.Generator().manual_seed(1))
    return model, {"input_ids": ids}


def build_sim(model, batch, args):
    """The calibrated in-place sim of `model`."""
    from torchqsim.quantsim import QuantizationSimModel
    sim = QuantizationSimModel(model, batch, quant_scheme="tf", config_file="per_channel",
                               default_param_bw=args.param_bw, default_output_bw=args.output_bw,
                               in_place=True)
    sim.compute_encodings(lambda m: m(**batch))
    return sim


def stepper(model, batch):
    """One SGD step of `model` on `batch` (next-token cross-entropy)."""
    import torch
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-6)
    ids = batch["input_ids"]

    def step():
        opt.zero_grad(set_to_none=True)
        logits = model(**batch).logits[:, :-1]
        torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(),
                                          ids[:, 1:].reshape(-1)).backward()
        opt.step()

    return step


def no_grad_call(model, inputs):
    """A call of `model` on `inputs` (keyword arguments) without gradients."""
    import torch

    def call():
        with torch.no_grad():
            model(**inputs)
    return call


def set_weight_cache(sim, on):
    """Turns the eval weight cache of every weight quantizer on or off (an in-place sim has it
    off: QuantizationSimModel's weight_cache)."""
    for _, q in sim.quantizers():
        if hasattr(q, "cache_eval_output"):
            q.cache_eval_output = on
            q.clear_cache()


def timed_rows(args, dtype, warmup, repeats):
    """The eval_fwd, eval_fwd_cached, decode_eager, decode_compiled, qat_step and
    eval_fwd_folded rows of one dtype."""
    model, batch = build_model(args, dtype)
    fp_copy = copy.deepcopy(model)  # the QAT baseline: the sim trains model's own parameters
    sim = build_sim(model, batch, args)

    def no_grad(m):
        return no_grad_call(m, batch)

    def row(ours, base):
        return timing.time_row({"ours": ours, "base": base}, warmup, repeats,
                               timing.CLOCKS[args.clock])

    ms = {"eval_fwd": row(no_grad(sim.model.eval()), no_grad(fp_copy.eval()))}
    set_weight_cache(sim, True)
    ms["eval_fwd_cached"] = row(no_grad(sim.model), no_grad(fp_copy))
    step_ids = {"input_ids": batch["input_ids"][:, :args.decode_tokens]}
    ms["decode_eager"] = row(no_grad_call(sim.model, step_ids), no_grad_call(fp_copy, step_ids))
    ms.update(decode_rows(args, sim, fp_copy, batch, row) if args.compiled else {})
    set_weight_cache(sim, False)
    sim.model.train(), fp_copy.train()
    ms["qat_step"] = row(stepper(sim.model, batch), stepper(fp_copy, batch))
    sim.model.eval(), fp_copy.eval()
    sim.fold_param_quantizers()
    ms["eval_fwd_folded"] = row(no_grad(sim.model), no_grad(fp_copy))
    return [{"dtype": dtype, "row": row, "ours_ms": m["ours"], "base_ms": m["base"],
             "ratio": m["ours"] / m["base"]} for row, m in ms.items()]


def decode_rows(args, sim, fp_copy, batch, row):
    """The decode_compiled rows (cache on, then off), against one compiled FP model."""
    import torch
    ids = {"input_ids": batch["input_ids"][:, :args.decode_tokens]}
    ours = no_grad_call(torch.compile(sim.model), ids)
    base = no_grad_call(torch.compile(fp_copy), ids)
    ms = {"decode_compiled": row(ours, base)}
    set_weight_cache(sim, False)
    ms["decode_compiled_uncached"] = row(ours, base)
    return ms


def memory_kib(field):
    """`field` of /proc/self/status (``VmRSS``: resident now, ``VmHWM``: peak) in KiB."""
    with open("/proc/self/status", encoding="ascii") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))


def rss_child(args):
    """Runs in a fresh process: prints {"after_import", "peak"} in KiB for `args.rss_child`.

    The peak is the process's own high-water mark (``VmHWM``), reset once the model is built
    (writing 5 to /proc/self/clear_refs), so that transients of the imports and of building
    the model (transformers initialises in fp32, then the model is cast) do not hide what comes
    after. ``ru_maxrss`` would not do: a child started by vfork + exec inherits its parent's
    peak there.
    """
    import torch

    import torchqsim  # noqa: F401  (both processes import the same modules)
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    after_import = memory_kib("VmRSS")
    model, batch = build_model(args, args.dtype)
    with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
        f.write("5")
    run = model
    if args.rss_child == "sim":
        run = build_sim(model, batch, args).model.eval()
    if args.rss_train:
        step = stepper(run.train(), batch)
        before = memory_kib("VmRSS")
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")
        for _ in range(3):
            step()
        print(json.dumps({"before": before, "peak": memory_kib("VmHWM")}))
        return
    with torch.no_grad():
        for _ in range(3):
            run(**batch)
    print(json.dumps({"after_import": after_import, "peak": memory_kib("VmHWM")}))


# glibc returns every allocation of 64 KiB or more at once (qat_rss)
EXACT_MALLOC = {"MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "0"}


def rss_child_run(args, dtype, who, train):
    """What rss_child printed in a fresh process for `who` ("sim" or "fp")."""
    cmd = [sys.executable, __file__, "--rss-child", who, "--dtype", dtype,
           *(["--rss-train"] if train else []),
           *(f"--{k}={getattr(args, k.replace('-', '_'))}" for k in
             ("layers", "hidden", "seq", "vocab", "param-bw", "output-bw"))]
    env = {**os.environ, **EXACT_MALLOC} if train else None
    done = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
    return json.loads(done.stdout.strip().splitlines()[-1])


def rss_rows(args, dtype):
    """The peak_rss, model_rss and qat_rss rows of one dtype (four fresh processes)."""
    out = {who: rss_child_run(args, dtype, who, False) for who in ("sim", "fp")}
    model = {w: out[w]["peak"] - out[w]["after_import"] for w in out}
    steps = {who: rss_child_run(args, dtype, who, True) for who in ("sim", "fp")}
    grown = {w: steps[w]["peak"] - steps[w]["before"] for w in steps}
    return [{"dtype": dtype, "row": "peak_rss", "ours_mib": out["sim"]["peak"] / 1024,
             "base_mib": out["fp"]["peak"] / 1024, "ratio": out["sim"]["peak"] / out["fp"]["peak"]},
            {"dtype": dtype, "row": "model_rss", "ours_mib": model["sim"] / 1024,
             "base_mib": model["fp"] / 1024, "ratio": model["sim"] / max(1, model["fp"])},
            {"dtype": dtype, "row": "qat_rss", "ours_mib": grown["sim"] / 1024,
             "base_mib": grown["fp"] / 1024, "ratio": grown["sim"] / max(1, grown["fp"])}]


def seq_mse_rows(args, dtype):
    """Seconds per searched Linear layer of apply_seq_mse, when torchqsim has it."""
    import torch

    import torchqsim.ptq as ptq
    if not hasattr(ptq, "apply_seq_mse"):
        return []
    model, batch = build_model(args, dtype)
    from torchqsim.quantsim import QuantizationSimModel
    sim = QuantizationSimModel(model, batch, quant_scheme="tf", config_file="per_channel",
                               default_param_bw=args.param_bw, default_output_bw=args.output_bw,
                               in_place=True)
    layers = sum(1 for _, m in sim.named_qmodules() if isinstance(m, torch.nn.Linear))
    start = time.perf_counter()
    ptq.apply_seq_mse(sim, [batch["input_ids"]], num_candidates=args.seq_mse_candidates,
                      progress=False)
    seconds = time.perf_counter() - start
    return [{"dtype": dtype, "row": "seq_mse", "s_per_layer": seconds / layers,
             "layers": layers, "candidates": args.seq_mse_candidates}]


def print_row(r):
    target = TARGETS.get(r["row"])
    verdict = "" if target is None else \
        f"  target <= {target:.2f} " + ("met" if r["ratio"] <= target else "MISSED")
    if "ours_ms" in r:
        what = f"ours {r['ours_ms']:9.2f} ms   base {r['base_ms']:9.2f} ms "
    elif "ours_mib" in r:
        what = f"ours {r['ours_mib']:8.1f} MiB  base {r['base_mib']:8.1f} MiB"
    else:
        print(f"{r['dtype']:5} {r['row']:10} {r['s_per_layer']:8.2f} s per Linear layer "
              f"({r['layers']} layers, {r['candidates']} candidates)", flush=True)
        return
    print(f"{r['dtype']:5} {r['row']:10} {what}  ratio {r['ratio']:5.2f}{verdict}", flush=True)


def parse(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 warm-up, 3 repeats")
    parser.add_argument("--dtypes", default="bf16,fp32", help="comma-separated: bf16,fp32,fp16")
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--vocab", type=int, default=8192)
    parser.add_argument("--param-bw", type=int, default=8)
    parser.add_argument("--output-bw", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the timed rows")
    parser.add_argument("--decode-tokens", type=int, default=1,
                        help="tokens of the decode rows' forward")
    parser.add_argument("--no-compile", dest="compiled", action="store_false",
                        help="skip the decode_compiled rows")
    timing.add_clock_argument(parser)
    parser.add_argument("--seq-mse-candidates", type=int, default=20,
                        help="apply_seq_mse's num_candidates (20, AIMET's default)")
    parser.add_argument("--no-rss", dest="rss", action="store_false", help="skip the RSS rows")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON output path")
    parser.add_argument("--rss-child", choices=["sim", "fp"], help=argparse.SUPPRESS)
    parser.add_argument("--rss-train", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--dtype", default="bf16", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    timing.check_clock(parser, args.clock, [args.threads])
    bad = [d for d in args.dtypes.split(",") if d not in DTYPES]
    if bad:
        parser.error(f"--dtypes: unknown dtype {bad[0]!r} (bf16, fp32, fp16)")
    return args


def main(argv=None):
    args = parse(argv)
    if args.rss_child:
        return rss_child(args)
    import torch
    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore")
    warmup, repeats = (1, 3) if args.quick else (2, 7)
    start, rows = time.time(), []
    for dtype in args.dtypes.split(","):
        new = timed_rows(args, dtype, warmup, repeats) + \
            (rss_rows(args, dtype) if args.rss else []) + seq_mse_rows(args, dtype)
        for r in new:
            r["target"] = TARGETS.get(r["row"])
            print_row(r)
        rows += new
    meta = {"torch": torch.__version__, "python": platform.python_version(),
            "threads": args.threads, "warmup": warmup, "repeats": repeats,
            "model": {k: getattr(args, k) for k in ("layers", "hidden", "seq", "vocab")},
            "bits": f"W{args.param_bw}A{args.output_bw}", "load_average": os.getloadavg(),
            "elapsed_s": time.time() - start, "clock": args.clock}
    print(f"load average {meta['load_average']}, {meta['elapsed_s']:.0f} s")
    timing.write_json(args.out, {"meta": meta, "rows": rows})


if __name__ == "__main__":
    sys.exit(main())
