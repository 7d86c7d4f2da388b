"""``supported_kernels``: warnings for modules whose precision no listed kernel supports
(AIMET's ``warn_on_error``)."""

import warnings

from .config_types import Precision
from .plan import ModuleSpec, SlotSpec

__all__ = ["check_supported_kernels"]


def _kernel_of(slots: list[SlotSpec], default: tuple) -> tuple:
    on = [s for s in slots if s.enabled]
    return (on[0].bitwidth, on[0].dtype) if on else default


def check_supported_kernels(specs: dict[str, ModuleSpec]) -> list[str]:
    """Warns (``UserWarning``, as AIMET's ``warn_on_error``) for every module whose activation
    and parameter precision is not among its ``supported_kernels``; returns the messages.

    Example::

        >>> from torchqsim.quantsim.config_types import Kernel, Precision
        >>> spec = ModuleSpec(("Conv",), [SlotSpec()], [SlotSpec(enabled=True, bitwidth=4)], {},
        ...                   [Kernel(Precision(8, "int"))])
        >>> import warnings
        >>> with warnings.catch_warnings(record=True):
        ...     check_supported_kernels({"conv": spec})
        ["module 'conv': activation int4 is not among its supported_kernels: act int8"]
    """
    messages = []
    for name, spec in specs.items():
        if not spec.supported_kernels:
            continue
        act = _kernel_of(spec.inputs + spec.outputs, None)
        param = _kernel_of(list(spec.params.values()), None)
        ok = False
        for kernel in spec.supported_kernels:
            a, p = kernel.activation, kernel.param
            act_ok = act is None or (a.bitwidth, a.dtype) == act
            param_ok = param is None or p is None or (p.bitwidth, p.dtype) == param
            ok = ok or (act_ok and param_ok)
        if not ok:
            listed = "; ".join(f"act {k.activation}" + (f" param {k.param}" if k.param else "")
                               for k in spec.supported_kernels)
            got = (f"activation {Precision(*act)}" if act else "") + \
                (f"{', ' if act else ''}param {Precision(*param)}" if param else "")
            messages.append(f"module {name!r}: {got} is not among its supported_kernels: {listed}")
    for m in messages:
        warnings.warn(m, stacklevel=3)
    return messages
