"""Running a model on an AIMET-style ``dummy_input``, and in eval mode for a while.

A ``dummy_input`` (AIMET's convention, also for the inputs the PTQ tools take) is a tensor, a
tuple or list of positional inputs, or a dict of keyword inputs.

Example::

    >>> import torch
    >>> from torch import nn
    >>> model = nn.Sequential(nn.Linear(2, 2), nn.Dropout()).train()
    >>> with eval_mode(model):
    ...     y = run_model(model, (torch.ones(1, 2),))
    >>> model.training, model[1].training
    (True, True)
"""

import contextlib

from torch import nn

__all__ = ["eval_mode", "run_model", "split_dummy_input"]


def split_dummy_input(dummy_input) -> tuple:
    """``(args, kwargs)`` for ``model(*args, **kwargs)`` from a ``dummy_input``.

    Example::

        >>> import torch
        >>> split_dummy_input(torch.ones(1)), split_dummy_input({"x": 1})
        (((tensor([1.]),), {}), ((), {'x': 1}))
    """
    if isinstance(dummy_input, dict):
        return (), dict(dummy_input)
    if isinstance(dummy_input, (tuple, list)):
        return tuple(dummy_input), {}
    return (dummy_input,), {}


def run_model(model: nn.Module, dummy_input):
    """``model`` called on ``dummy_input`` (unpacked as in :func:`split_dummy_input`).

    Example::

        >>> import torch
        >>> run_model(torch.add, (torch.ones(1), 2))
        tensor([3.])
    """
    args, kwargs = split_dummy_input(dummy_input)
    return model(*args, **kwargs)


@contextlib.contextmanager
def eval_mode(model: nn.Module):
    """Within the block every module of ``model`` is in eval mode; each module's own training
    flag is put back afterwards (also when the block raises).

    Example::

        >>> m = nn.Sequential(nn.Dropout(), nn.Dropout())
        >>> _ = m[1].eval()           # one module in eval mode, the rest training
        >>> with eval_mode(m):
        ...     m[0].training
        False
        >>> m[0].training, m[1].training
        (True, False)
    """
    flags: list = []
    try:
        _to_eval(model, flags)
        yield model
    finally:
        # Backwards: a module reached twice was recorded first with its own flag.
        for module, training in reversed(flags):
            if module.training is not training:
                object.__setattr__(module, "training", training)


def _to_eval(module: nn.Module, flags: list) -> None:
    """What ``module.eval()`` does, without nn.Module.__setattr__, recording ``(module, flag)``
    of every module reached in `flags` first: a module with its own ``train()`` (e.g. one that
    clears a cache) gets the call for its subtree, as model.eval() makes it; every other
    module's flag is set directly and its children are walked."""
    if type(module).train is not nn.Module.train:
        flags.extend((m, m.training) for m in module.modules())
        module.train(False)
        return
    flags.append((module, module.training))
    if module.training:
        object.__setattr__(module, "training", False)
    for child in module._modules.values():
        if child is not None:
            _to_eval(child, flags)
