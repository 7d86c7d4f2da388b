"""Automatic mixed precision (AIMET ``choose_mixed_precision``).

Given candidate precisions, an evaluation callback and an allowed accuracy drop from FP32, pick
per quantizer group (here: each sim module with enabled quantizers) the cheapest candidate such
that the whole model stays within the drop, and apply it to the sim.

1. Every candidate is applied to the whole sim (``sim.set_precision``) and calibrated once
   (`forward_pass_callback`); the calibrated quantizers of each group are kept.
2. Phase 1, sensitivity: with every group at the most expensive candidate (the baseline), each
   group in turn takes each cheaper candidate and the model is evaluated.
3. Phase 2, greedy by BitOps: moves (group -> candidate) are tried from the least sensitive
   (highest phase-1 accuracy, then largest BitOps saving) on; a move is kept when it lowers the
   cost and the evaluated accuracy stays >= FP32 accuracy - `allowed_accuracy_drop`.
4. The chosen assignment is applied with ``sim.set_precision``, recalibrated and evaluated; if
   the recalibrated model misses the target, the most recently accepted moves are undone one by
   one until it does. The assignment is printed and returned as :class:`MixedPrecisionResult`.

Costs are BitOps on `dummy_input`: for Conv / ConvTranspose / Linear, MACs x activation bits x
weight bits; for other modules, output elements x activation bits squared. Evaluations in steps
2-3 swap the calibrated quantizers into the slots (no recalibration); an interruption there
leaves the sim as it was. Step 4 recreates the quantizers (frozen encodings, e.g. AdaRound's,
are replaced: load them again afterwards).

Candidates: ``(activation_bw, param_bw)`` pairs such as ``(8, 4)``, names ``"W4A8"`` (weights 4,
activations 8), or AIMET's ``((16, "int"), (8, "int"))``; ``(16, "float")`` is fp16; the float
and block formats by name, alone or in pairs: ``("fp8_e4m3", "mxfp4")``, ``"WMXFP4AFP8_E4M3"``
(torchqsim.float_formats; their cost counts their element bits).
"""

import json
import re
import warnings
from typing import NamedTuple

import torch
from tqdm.auto import tqdm

from .._atomic import write_files
from ..float_formats import format_bits, is_format
from ..quantization import QuantizeDequantize
from .._forward import eval_mode, run_model
from ._sim_slots import SlotState, call, install, quantized_groups, slot_map

__all__ = ["choose_mixed_precision", "MixedPrecisionResult", "parse_candidate"]

_NAME = re.compile(r"^W(\d+|[A-Z][A-Z0-9_]*)A(\d+|[A-Z][A-Z0-9_]*)$", re.IGNORECASE)


def _precision(value, where: str) -> tuple[int, str]:
    if isinstance(value, str) and is_format(value.lower()):
        return format_bits(value.lower()), value.lower()
    if isinstance(value, tuple) and len(value) == 2 and is_format(value[1]):
        if value[0] != format_bits(value[1]):
            raise ValueError(f"{where}: format {value[1]!r} has {format_bits(value[1])} bits, "
                             f"not {value[0]}")
        return value
    if isinstance(value, tuple) and len(value) == 2 and value[1] in ("int", "float"):
        bw, dtype = value
    elif isinstance(value, str) and value.upper() == "FP16":
        bw, dtype = 16, "float"
    elif isinstance(value, int) and not isinstance(value, bool) or \
            isinstance(value, str) and value.isdigit():
        bw, dtype = int(value), "int"
    else:
        raise ValueError(f"{where}: expected a bitwidth, 'fp16', a format name (e.g. "
                         f"'fp8_e4m3', 'mxfp4') or (bitwidth, 'int'|'float'|format), "
                         f"got {value!r}")
    if not (dtype == "int" and 2 <= bw <= 16 or dtype == "float" and bw == 16):
        raise ValueError(f"{where}: unsupported precision {bw} {dtype} (int 2..16 or float 16)")
    return int(bw), dtype


def parse_candidate(candidate) -> tuple[tuple[int, str], tuple[int, str]]:
    """``((act_bw, act_dtype), (param_bw, param_dtype))`` of a candidate.

    Example::

        >>> parse_candidate("W4A8"), parse_candidate((16, 8))
        (((8, 'int'), (4, 'int')), ((16, 'int'), (8, 'int')))
    """
    if isinstance(candidate, str):
        m = _NAME.match(candidate.strip())
        if not m:
            raise ValueError(f"candidate {candidate!r}: expected a name like 'W8A16' (weights "
                             f"8, activations 16) or 'WFP16AFP16'")
        return _precision(m.group(2), f"candidate {candidate!r}"), \
            _precision(m.group(1), f"candidate {candidate!r}")
    if isinstance(candidate, (tuple, list)) and len(candidate) == 2:
        return (_precision(tuple(candidate[0]) if isinstance(candidate[0], list) else
                           candidate[0], f"candidate {candidate!r} activation"),
                _precision(tuple(candidate[1]) if isinstance(candidate[1], list) else
                           candidate[1], f"candidate {candidate!r} param"))
    raise ValueError(f"candidate {candidate!r}: expected (activation, param) or a name 'W8A8'")


def _tag(bw, dtype) -> str:
    return "FP16" if dtype == "float" else dtype.upper() if is_format(dtype) else str(bw)


def _label(c, weighted: bool = True) -> str:
    """"W8A16", "WMXFP4AFP8_E4M3"; "A16" for a group without weights."""
    (a, ad), (p, pd) = c
    act = f"A{_tag(a, ad)}"
    return f"W{_tag(p, pd)}{act}" if weighted else act


def _arg(precision):
    bw, dtype = precision
    return "fp16" if dtype == "float" else dtype if is_format(dtype) else bw


class MixedPrecisionResult(NamedTuple):
    """What :func:`choose_mixed_precision` chose.

    Attributes:
        assignment: ``{module path: "W8A16"-style name}`` ("A16" for groups without weights).
        accuracy: evaluated after applying and recalibrating the assignment.
        fp32_accuracy: with every quantizer off.
        baseline_accuracy: with every group at the most expensive candidate.
        bitops: relative cost of the assignment (baseline = 1.0).
        sensitivity: ``{module path: {candidate name: phase-1 accuracy}}`` (names as in
            `assignment`).
    """

    assignment: dict
    accuracy: float
    fp32_accuracy: float
    baseline_accuracy: float
    bitops: float
    sensitivity: dict

    def table(self) -> str:
        """The assignment as a text table (also printed by :func:`choose_mixed_precision`)."""
        rows = [("group", "precision")] + list(self.assignment.items())
        w = max(len(r[0]) for r in rows)
        return "\n".join([f"{a.ljust(w)}  {b}" for a, b in rows] + [
            f"accuracy {self.accuracy:.4g} (fp32 {self.fp32_accuracy:.4g}, baseline "
            f"{self.baseline_accuracy:.4g}), BitOps {self.bitops:.3f} x baseline"])


def _workloads(sim, groups: dict, dummy_input) -> dict:
    """``{group: (ops, has_weight)}``: MACs for weighted layers, output elements otherwise."""
    work = {}

    def hook(mod, args, out, name):
        y = out[0] if isinstance(out, (tuple, list)) else out
        macs = mod.mac_count(args[0], y) if args else None
        if macs is not None:
            work[name] = (work.get(name, (0, True))[0] + macs, True)
        elif torch.is_tensor(y):
            work[name] = (work.get(name, (0, False))[0] + y.numel(), False)

    hooks = [m.register_forward_hook(lambda mod, a, o, n=n: hook(mod, a, o, n))
             for n, m in groups.items()]
    try:
        with torch.no_grad(), SlotState(sim), eval_mode(sim.model):
            for m in groups.values():
                install(m, {})
            run_model(sim.model, dummy_input)
    finally:
        for h in hooks:
            h.remove()
    return work


def _cost(work, name, cand) -> float:
    ops, weighted = work.get(name, (0, False))
    (a, _), (p, _) = cand
    return float(ops) * a * (p if weighted else a)


def choose_mixed_precision(sim, dummy_input, candidates, eval_callback,
                           allowed_accuracy_drop: float, forward_pass_callback,
                           results_dir: str | None = None,
                           progress: bool = True) -> MixedPrecisionResult:
    """Chooses and applies a mixed-precision assignment (steps in the module docstring).

    Args:
        sim: a :class:`~torchqsim.QuantizationSimModel`.
        dummy_input: an input (tensor or tuple) for counting BitOps.
        candidates: two or more precisions (see the module docstring), e.g.
            ``["W8A8", "W8A16", "W16A16", "W4A8"]``.
        eval_callback: ``f(model) -> float`` (higher is better) or a
            :class:`~torchqsim.ptq.CallbackFunc`; called on ``sim.model``.
        allowed_accuracy_drop: how far below the FP32 accuracy the result may be.
        forward_pass_callback: calibration, ``f(model)`` or a CallbackFunc (as for
            ``sim.compute_encodings``).
        results_dir: if given, ``mixed_precision.json`` (sensitivity, assignment, accuracies)
            is written there atomically.
        progress: tqdm progress bars.

    Returns:
        A :class:`MixedPrecisionResult` (also printed as a table).

    Raises:
        ValueError: fewer than two distinct candidates, a bad candidate, or a negative drop.

    Example::

        >>> from torchqsim.quantsim import QuantizationSimModel
        >>> model = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2))
        >>> x = torch.randn(64, 8)
        >>> sim = QuantizationSimModel(model, x)
        >>> def accuracy(m):
        ...     return -float((m(x) - model(x)).square().mean())
        >>> res = choose_mixed_precision(sim, x, ["W8A8", "W16A16"], accuracy, 1e-3,
        ...                              lambda m: m(x), progress=False)  # doctest: +ELLIPSIS
        group...
        >>> sorted(res.assignment)
        ['0', '1', '2']
    """
    parsed = []
    for c in candidates:
        p = parse_candidate(c)
        if p not in parsed:
            parsed.append(p)
    if len(parsed) < 2:
        raise ValueError(f"choose_mixed_precision: need at least two distinct candidates, got "
                         f"{list(candidates)!r}")
    if not allowed_accuracy_drop >= 0:
        raise ValueError(f"choose_mixed_precision: allowed_accuracy_drop must be >= 0, got "
                         f"{allowed_accuracy_drop!r}")
    groups = quantized_groups(sim)
    work = _workloads(sim, groups, dummy_input)
    parsed.sort(key=lambda c: (sum(_cost(work, n, c) for n in groups), c))
    baseline = parsed[-1]
    evaluate = _evaluator(sim, eval_callback)
    state = SlotState(sim)
    before = {n: _precisions(m) for n, m in groups.items()}
    try:
        fp32, base_acc, sens, current, accepted = _search(
            sim, groups, parsed, work, evaluate, forward_pass_callback, allowed_accuracy_drop,
            progress)
    except BaseException:
        for name, (act, params) in before.items():  # the sim as it was
            sim.set_precision(name, activation=act, param=params or None)
        state.restore()
        raise
    state.restore()
    target = fp32 - allowed_accuracy_drop
    while True:  # recalibrated encodings differ a little from the searched ones
        _apply(sim, groups, current)
        sim.compute_encodings(_calibration(forward_pass_callback), None)
        accuracy = evaluate()
        if accuracy >= target or not accepted:
            break
        current[accepted.pop()] = baseline
    if accuracy < target:
        warnings.warn(f"choose_mixed_precision: even the baseline {_label(baseline)} has "
                      f"accuracy {accuracy:.4g} < FP32 {fp32:.4g} - allowed drop "
                      f"{allowed_accuracy_drop}; returning the baseline", stacklevel=2)
    total = sum(_cost(work, n, baseline) for n in groups) or 1.0
    result = MixedPrecisionResult(
        {n: _label(c, _weighted(work, n)) for n, c in current.items()}, accuracy, fp32, base_acc,
        sum(_cost(work, n, c) for n, c in current.items()) / total, sens)
    print(result.table())
    if results_dir is not None:
        write_files(results_dir, {"mixed_precision.json": json.dumps(
            result._asdict(), indent=2).encode()})
    return result


def _search(sim, groups, parsed, work, evaluate, forward_pass_callback, drop, progress):
    """Steps 1-3; returns (fp32, baseline accuracy, sensitivity, assignment, accepted moves
    in order). Leaves quantizer slots changed (the caller restores them)."""
    baseline = parsed[-1]
    fp32 = _fp32_accuracy(groups, evaluate)
    calibrated = {}
    for cand in tqdm(parsed, desc="AMP calibration", disable=not progress):
        _apply(sim, groups, {n: cand for n in groups})
        sim.compute_encodings(_calibration(forward_pass_callback), None)
        calibrated[cand] = {n: slot_map(m) for n, m in groups.items()}

    def run(assign):
        for n, m in groups.items():
            install(m, calibrated[assign[n]][n])
        return evaluate()

    current = {n: baseline for n in groups}
    base_acc = run(current)
    sens = {n: {} for n in groups}
    moves = [(n, c) for n in groups for c in parsed[:-1] if _distinct(work, n, c, baseline)]
    for n, c in tqdm(moves, desc="AMP phase 1", disable=not progress):
        sens[n][_label(c, _weighted(work, n))] = run({**current, n: c})
    moves.sort(key=lambda m: (-sens[m[0]][_label(m[1], _weighted(work, m[0]))],
                              _cost(work, m[0], m[1]) - _cost(work, m[0], baseline)))
    accepted = []
    if base_acc >= fp32 - drop:
        for n, c in tqdm(moves, desc="AMP phase 2", disable=not progress):
            if _cost(work, n, c) < _cost(work, n, current[n]) and \
                    run({**current, n: c}) >= fp32 - drop:
                current[n] = c
                accepted = [a for a in accepted if a != n] + [n]
    return fp32, base_acc, sens, current, accepted


def _precisions(module) -> tuple:
    """(activation precision, {param: precision}) of a module's current quantizers, in
    ``sim.set_precision``'s terms."""
    def prec(q):
        if isinstance(q, QuantizeDequantize):
            return q.bitwidth
        name = getattr(q, "format_name", "fp16")
        return name if is_format(name) else "fp16"
    slots = slot_map(module)
    acts = [q for (kind, _), q in slots.items() if kind != "param"]
    return (prec(acts[0]) if acts else None,
            {k: prec(q) for (kind, k), q in slots.items() if kind == "param"})


def _weighted(work, name) -> bool:
    return work.get(name, (0, False))[1]


def _distinct(work, name, cand, baseline) -> bool:
    """Whether `cand` differs from `baseline` for this group (weights matter only if it has
    any)."""
    return cand != baseline if _weighted(work, name) else cand[0] != baseline[0]


def _evaluator(sim, eval_callback):
    def evaluate() -> float:
        with eval_mode(sim.model), torch.no_grad():
            return float(call(eval_callback, sim.model, "eval_callback"))
    return evaluate


def _calibration(forward_pass_callback):
    return lambda model, _: call(forward_pass_callback, model, "forward_pass_callback")


def _fp32_accuracy(groups, evaluate) -> float:
    for m in groups.values():
        install(m, {})
    return evaluate()


def _apply(sim, groups: dict, assignment: dict) -> None:
    for name, m in groups.items():
        act, param = assignment[name]
        has_params = any(k == "param" for k, _ in slot_map(m))
        sim.set_precision(name, activation=_arg(act), param=_arg(param) if has_params else None)
