"""An LLM recipe (issue 15 item 6): a Llama-architecture model through FP16, W16A16, W8A16 and
W4A16 (LPBQ weights searched by SeqMSE, an 8-bit KV cache, an 8-bit lm_head), then a short
QAT, with the held-out perplexity at each step, and the export.

The model is trained here for a few minutes on the Python standard library's sources, with a
byte-level BPE tokenizer trained by ``tokenizers`` (examples/llm_data.py), or loaded from a local
HuggingFace checkpoint directory (``--checkpoint DIR``, holding ``tokenizer.json``).

Run it with::

    python examples/llm.py                      # trains for ~2 minutes, then quantizes
    python examples/llm.py --quick              # the reduced run the tests use
    python examples/llm.py --checkpoint DIR     # your own (small) Llama-architecture model

Example::

    >>> result = run_workflow(QUICK, out_dir=tempfile.mkdtemp())   # doctest: +SKIP
    >>> [row.precision for row in result.rows][:2]                 # doctest: +SKIP
    ['FP32', 'FP16']
"""

import argparse
import os
import sys
import tempfile
import time
import warnings
from typing import NamedTuple, Optional

import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from llm_data import perplexity, stdlib_text, tiny_llama, train, train_tokenizer, windows  # noqa: E402
from torchqsim.ptq import apply_seq_mse  # noqa: E402
from torchqsim.quantsim import QuantizationSimModel  # noqa: E402
from torchqsim.quantsim.attention import set_attention_precision  # noqa: E402

__all__ = ["FULL", "QUICK", "Settings", "Row", "Result", "run_workflow", "quantize_w4a16"]


class Settings(NamedTuple):
    """Sizes and steps of a run (:data:`FULL`, :data:`QUICK`)."""

    files: int          # standard-library modules read
    vocab: int          # tokenizer vocabulary
    hidden: int         # model width (4 heads, 2 kv heads)
    layers: int
    length: int         # tokens per sequence
    steps: int          # training steps
    batch: int
    lr: float
    qat_steps: int
    calibration: int    # calibration (and SeqMSE) sequences
    evaluation: int     # held-out sequences the perplexity is measured on
    candidates: int     # SeqMSE candidates per channel
    block_size: int     # LPBQ block (input channels)


FULL = Settings(files=150, vocab=2048, hidden=128, layers=4, length=128, steps=500, batch=16,
                lr=3e-3, qat_steps=40, calibration=32, evaluation=256, candidates=20,
                block_size=64)
QUICK = Settings(files=12, vocab=384, hidden=64, layers=2, length=32, steps=30, batch=8,
                 lr=3e-3, qat_steps=3, calibration=4, evaluation=16, candidates=4,
                 block_size=32)


class Row(NamedTuple):
    precision: str
    perplexity: float
    seconds: float


class Result(NamedTuple):
    rows: list
    exported: dict


def _sim(model, dummy, param_bw: int, output_bw: int, data_type: str = "int"):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the ops left unquantized are listed in sim.graph
        return QuantizationSimModel(model, dummy, quant_scheme="tf", default_param_bw=param_bw,
                                    default_output_bw=output_bw, default_data_type=data_type)


def _calibrate(sim, batches) -> None:
    sim.compute_encodings(lambda m, _: [m(input_ids=b) for b in batches], None)


def quantize_w4a16(model: nn.Module, dummy: dict, batches: list, settings: Settings):
    """The W4A16 sim of AIMET's LLM recipe: LPBQ 4-bit weights (8-bit block scales) searched by
    SeqMSE, 8-bit embedding, lm_head and norm weights, 8-bit keys and values (the KV cache),
    16-bit activations; calibrated on ``batches``."""
    sim = _sim(model, dummy, param_bw=8, output_bw=16)
    layers = [m for n, m in model.named_modules() if isinstance(m, nn.Linear) and n != "lm_head"]
    sim.set_precision(layers, param={"weight": 4}, block_size=settings.block_size,
                      decompressed_bw=8)
    set_attention_precision(sim, key=8, value=8)
    apply_seq_mse(sim, [(b,) for b in batches], num_candidates=settings.candidates,
                  modules_to_exclude=["lm_head"], progress=False)
    _calibrate(sim, batches)
    return sim


def _model(settings: Settings, checkpoint: Optional[str]):
    """(model, tokenizer, train rows, held-out rows, seconds spent training)."""
    train_text, held_text = stdlib_text(settings.files)
    start = time.perf_counter()
    if checkpoint:
        import transformers
        from tokenizers import Tokenizer
        tokenizer = Tokenizer.from_file(os.path.join(checkpoint, "tokenizer.json"))
        model = transformers.AutoModelForCausalLM.from_pretrained(
            checkpoint, attn_implementation="eager", torch_dtype=torch.float32).eval()
        model.config.use_cache = False  # perplexity needs no KV cache
        return model, windows(tokenizer, train_text, settings.length), \
            windows(tokenizer, held_text, settings.length), 0.0
    tokenizer = train_tokenizer(train_text, settings.vocab)
    data = windows(tokenizer, train_text, settings.length)
    model = tiny_llama(tokenizer.get_vocab_size(), settings.hidden, settings.layers)
    train(model, data, settings.steps, settings.batch, settings.lr)
    return model.eval(), data, windows(tokenizer, held_text, settings.length), \
        time.perf_counter() - start


def run_workflow(settings: Settings, out_dir: str, checkpoint: Optional[str] = None) -> Result:
    """Trains (or loads) the model, then measures the held-out perplexity of FP32 and of each
    quantized sim; exports the last sim (W4A16 after QAT) into ``out_dir``."""
    model, data, held_out, seconds = _model(settings, checkpoint)
    # HF's mask code branches on batch size 1: every batch here has the dummy's (> 1) branch
    held_out = held_out[:settings.evaluation]
    held_out = held_out[:max(2, held_out.shape[0] // settings.batch * settings.batch)]
    batches = list(data[:settings.calibration].split(settings.batch))
    dummy = {"input_ids": data[:2]}
    rows = [Row("FP32", perplexity(model, held_out, settings.batch), seconds)]
    for name, param_bw, output_bw, data_type in (("FP16", 16, 16, "float"),
                                                 ("W16A16", 16, 16, "int"),
                                                 ("W8A16", 8, 16, "int")):
        start = time.perf_counter()
        sim = _sim(model, dummy, param_bw, output_bw, data_type)
        _calibrate(sim, batches)
        rows.append(Row(name, perplexity(sim.model, held_out, settings.batch),
                        time.perf_counter() - start))
    start = time.perf_counter()
    sim = quantize_w4a16(model, dummy, batches, settings)
    rows.append(Row("W4A16 LPBQ+SeqMSE, KV8", perplexity(sim.model, held_out, settings.batch),
                    time.perf_counter() - start))
    start = time.perf_counter()
    train(sim.model, data, settings.qat_steps, settings.batch, settings.lr / 30, seed=1)
    rows.append(Row("W4A16 + QAT", perplexity(sim.model, held_out, settings.batch),
                    time.perf_counter() - start))
    exported = sim.export(out_dir, "llm", dummy, encoding_version="2.1.0")
    return Result(rows, exported)


def format_table(rows: list) -> str:
    """The perplexity table (the change against FP32 in percent)."""
    base = rows[0].perplexity
    lines = [f"{'precision':<24}{'perplexity':>12}{'vs FP32':>10}{'seconds':>9}"]
    lines += [f"{r.precision:<24}{r.perplexity:>12.3f}{100 * (r.perplexity / base - 1):>+9.2f}%"
              f"{r.seconds:>9.1f}" for r in rows]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="the reduced run of the tests")
    parser.add_argument("--checkpoint", default=None, help="a local HF checkpoint directory")
    parser.add_argument("--out", default=None, help="export directory (default: a temp dir)")
    args = parser.parse_args(argv)
    out_dir = args.out or tempfile.mkdtemp(prefix="torchqsim-llm-")
    os.makedirs(out_dir, exist_ok=True)
    result = run_workflow(QUICK if args.quick else FULL, out_dir, args.checkpoint)
    print(format_table(result.rows))
    print("exported:", ", ".join(sorted(os.path.basename(p) for p in result.exported.values())),
          "in", out_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
