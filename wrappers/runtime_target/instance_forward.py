"""Instance forwards: the target mode swaps a module's computation by giving it an instance
attribute ``forward`` (which ``nn.Module.__call__`` calls instead of the class's) and takes it
back by deleting that attribute.

Example::

    >>> import torch
    >>> def doubled(module, factor, x):
    ...     return type(module).forward(module, x) * factor
    >>> model = torch.nn.Sequential(torch.nn.Identity())
    >>> install(model, {"0": 2.0}, doubled)
    >>> model(torch.ones(1))
    tensor([2.])
    >>> uninstall(model, doubled)
    >>> model(torch.ones(1))
    tensor([1.])
"""

import functools

__all__ = ["install", "uninstall"]


def install(model, per_module: dict, forward) -> None:
    """Gives each module of `per_module` (path -> argument) the forward
    ``forward(module, argument, *args, **kwargs)``."""
    for name, argument in per_module.items():
        module = model.get_submodule(name)
        module.forward = functools.partial(forward, module, argument)


def uninstall(model, forward) -> None:
    """Removes every instance forward of `model` that :func:`install` made from `forward`."""
    for module in model.modules():
        current = module.__dict__.get("forward")
        if isinstance(current, functools.partial) and current.func is forward:
            del module.__dict__["forward"]
