"""The sim's summary table (``QuantizationSimModel.summary``, also what ``print(sim)`` shows)."""

import math

from torch import Tensor

from ..quantization.quantizer import QuantizeDequantize

__all__ = ["summary"]


def _span(t: Tensor) -> str:
    lo, hi = float(t.min()), float(t.max())
    return f"{lo:.6g}" if lo == hi else f"{lo:.6g}..{hi:.6g}"


def _row(path: str, q) -> tuple[str, ...]:
    """The table row of the quantizer at `path` (``module.<kind>_quantizers.<key>``)."""
    name, _, rest = path.partition(".input_quantizers.") if ".input_quantizers." in \
        path else path.partition(".output_quantizers.") if ".output_quantizers." in \
        path else path.partition(".param_quantizers.")
    slot = ("input " if "input_q" in path else "output " if "output_q" in path
            else "param ") + rest
    if not isinstance(q, QuantizeDequantize):
        name_of = getattr(q, "format_name", None)
        kind = f"float{q.bitwidth}" if name_of in (None, "fp16", "bf16") else name_of
        block = getattr(q, "block_size", None)
        scale = getattr(q, "tensor_scale", None)  # NVFP4's calibrated tensor scale
        return (name, slot, kind, "-", f"blocks of {block} (axis {q.axis})" if block else "-",
                "-", "-", "-" if scale is None else f"{float(scale):.6g}")
    chans = "-" if math.prod(q.shape) == 1 else \
        f"{math.prod(q.shape)} (axis {max(range(len(q.shape)), key=q.shape.__getitem__)})"
    if q.is_initialized():
        enc = q.get_encoding()
        values = [_span(enc.min), _span(enc.max), _span(enc.scale)]
    else:
        values = ["(none)"] * 3
    return (name, slot, f"int{q.bitwidth}", q.grid.name, chans, *values)


def summary(sim) -> str:
    """A table of every enabled quantizer of `sim`: module, slot, precision, grid, per-channel
    layout and encoding (min, max, scale; ranges over channels), under a one-line header."""
    rows = [("module", "slot", "type", "grid", "channels", "min", "max", "scale")]
    rows += [_row(path, q) for path, q in sim.quantizers()]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    n_slots = sum(1 for s in sim._specs.values() for _ in s.slots())
    head = (f"QuantizationSimModel: scheme {sim.quant_scheme.name}, "
            f"{len(rows) - 1} of {n_slots} quantizer slots enabled, "
            f"hw_version {sim.hw_version}"
            + (f", excluded: {', '.join(sim._excluded)}" if sim._excluded else ""))
    gaps = [f"unquantized op {n}: {why}" for n, why in sim.graph.unquantized_ops.items()] + \
        [f"unquantized weight {n}" for n in getattr(sim, "unquantized_weights", ())]
    return "\n".join([head] + ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()
                               for r in rows] + gaps) + "\n"
