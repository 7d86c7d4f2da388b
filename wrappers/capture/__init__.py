"""Graph capture by running the model: every torch call of one eager forward, recorded as fx.

`capture` runs ``model(dummy_input)`` once, in eval mode and without gradients, with a
``TorchFunctionMode`` active and ``nn.Module.__call__`` patched, and writes what happens into a
``torch.fx.Graph`` (design and alternatives: docs/capture.md):

- a call of a *leaf* module (one that has a quantized wrapper, or an excluded one) becomes a
  ``call_module`` node; nothing inside it is recorded;
- every other torch function, tensor method, operator and tensor property that runs, in any
  other module or in plain Python code, becomes a ``call_function``/``call_method`` node whose
  arguments are the nodes that produced its tensor arguments (tensors are followed by
  identity); parameters and buffers become ``get_attr`` nodes; any other tensor the forward
  uses (a cached mask, a tensor made with numpy) becomes a constant attribute;
- sizes read from tensors (``x.shape``, ``x.size(1)``, ``len(x)``) are ints that remember
  where they came from (:class:`_TracedInt`): arithmetic on them is recorded too, so
  ``x.view(b, n, -1)`` stays valid for other batch sizes and sequence lengths;
- Python control flow (``if``, loops, ``**kwargs``, config flags, dataclass outputs) simply
  runs: the graph holds the branch the dummy input took, as ``torch.export`` does. Where the
  branch compared a traced size, the graph checks that comparison again (:func:`shape_guard`)
  and raises :class:`ShapeGuardError` on an input that would branch otherwise. Branches on
  tensor values (``if mask.any()``) and Python numbers read with ``.item()`` are fixed to the
  dummy input's. The output keeps its structure (a ``ModelOutput`` stays a ``ModelOutput``).

Example::

    >>> import torch
    >>> from torch import nn
    >>> class Branchy(nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.fc = nn.Linear(4, 4)
    ...     def forward(self, x, **kwargs):
    ...         if x.shape[-1] == 4 and kwargs.get("scale"):  # Python control flow
    ...             x = x * kwargs["scale"]
    ...         return {"y": self.fc(x).view(x.shape[0], 2, -1)}
    >>> gm = capture(Branchy(), {"x": torch.ones(3, 4), "scale": 2.0},
    ...              lambda m: isinstance(m, nn.Linear))
    >>> gm(torch.ones(5, 4), 2.0)["y"].shape   # sizes stay symbolic
    torch.Size([5, 2, 2])
    >>> gm(torch.ones(5, 3), 2.0)       # the branch taken depends on this shape: guarded
    Traceback (most recent call last):
    ...
    torchqsim.capture.ShapeGuardError: this input takes another branch than the dummy input ...
"""

from .context import cloned, no_fast_paths, preserved
from .recorder import MASK_MAGNITUDE
from .run import CaptureError, capture
from .traced_int import ShapeGuardError, shape_guard

__all__ = ["capture", "CaptureError", "ShapeGuardError", "shape_guard", "cloned", "preserved",
           "MASK_MAGNITUDE", "no_fast_paths"]
