"""Which modules a user designates, and the per-module changes made through them: manual
mixed precision (``set_precision``) and exclusion from quantization.

The functions take the :class:`~torchqsim.quantsim.QuantizationSimModel` and change its plan
(``_specs``), then re-create the affected quantizers.
"""

from torch import nn

from .arguments import parse_precision
from .construction import realize
from .propagation import untie

__all__ = ["exclude", "resolve", "set_precision"]


def resolve(sim, target) -> list[str]:
    """Names of the quantized modules `target` designates: a module (of ``model`` or of the
    original model), a module class, a name, or a list of these.

    Raises:
        ValueError: `target` designates no quantized module of the sim.
        TypeError: `target` is none of the above.
    """
    if isinstance(target, (list, tuple, set)):
        return [n for t in target for n in resolve(sim, t)]
    if isinstance(target, str):
        if target not in sim._specs:
            raise ValueError(f"no quantized module named {target!r} in the sim; modules: "
                             f"{', '.join(sorted(sim._specs)[:20])}")
        return [target]
    if isinstance(target, type):
        found = [n for n, m in sim.named_qmodules() if isinstance(m, target)]
        if not found:
            raise ValueError(f"no module of type {target.__name__} in the sim")
        return found
    if isinstance(target, nn.Module):
        found = [n for n, m in sim.named_qmodules() if m is target]
        name = sim._source_names.get(id(target))
        if not found and name in sim._specs:
            found = [name]
        if not found:
            raise ValueError(f"module {type(target).__name__} is not a quantized module of "
                             f"the sim (pass a module of sim.model, its name, or its class)")
        return found
    raise TypeError(f"expected a module, a module class or a name, got "
                    f"{type(target).__name__}")


def _set_blocks(spec, name: str, block_size, decompressed_bw, symmetric) -> None:
    """Sets the weight slot's blockwise / LPBQ settings (None: kept); checked when the
    quantizer is made (:mod:`.blockwise`)."""
    if block_size is None and decompressed_bw is None and symmetric is None:
        return
    weight = spec.params.get("weight")
    if weight is None:
        raise ValueError(f"module {name!r} has no weight parameter: block_size, decompressed_bw "
                         f"and symmetric apply to weights")
    if decompressed_bw is not None and block_size is None and weight.block_size is None:
        raise ValueError(f"module {name!r}: decompressed_bw (LPBQ) needs block_size")
    if block_size is not None:
        weight.block_size = block_size
    if decompressed_bw is not None:
        weight.decompressed_bw = decompressed_bw
    if symmetric is not None:
        weight.symmetric = bool(symmetric)


def set_precision(sim, target, activation, param, block_size=None, decompressed_bw=None,
                  symmetric=None) -> list[str]:
    """``QuantizationSimModel.set_precision``: sets the slots' precision in the plan and
    re-creates the quantizers of the `target` modules; returns their names."""
    act = None if activation is None else parse_precision(activation, "activation")
    names = resolve(sim, target)
    for name in names:
        spec = sim._specs[name]
        _set_blocks(spec, name, block_size, decompressed_bw, symmetric)
        if isinstance(param, dict):
            unknown = set(param) - set(spec.params)
            if unknown:
                raise ValueError(f"module {name!r} has no parameter {sorted(unknown)}; "
                                 f"parameters: {sorted(spec.params)}")
            per_param = {k: parse_precision(v, f"param[{k!r}]") for k, v in param.items()}
        else:
            per_param = {} if param is None else dict.fromkeys(
                spec.params, parse_precision(param, "param"))
        for slot in (spec.inputs + spec.outputs if act else []):
            slot.bitwidth, slot.dtype = act
        for k, (bw, dt) in per_param.items():
            spec.params[k].bitwidth, spec.params[k].dtype = bw, dt
        untie(sim, [name])
        realize(sim, name)
    return names


def exclude(sim, layers) -> None:
    """``QuantizationSimModel.exclude_layers_from_quantization``: disables every slot of the
    designated modules, removes their quantizers and records them in ``sim._excluded``."""
    names = resolve(sim, layers)
    untie(sim, names)
    for name in names:
        for _, _, slot in sim._specs[name].slots():
            slot.enabled = False
        realize(sim, name)
        if name not in sim._excluded:
            sim._excluded.append(name)
