"""Sizes read from tensors while capturing (:class:`_TracedInt`) and the shape guards that
check, on every later input, the size comparisons Python branched on (:func:`shape_guard`)."""

import operator
import sys
from typing import Callable, Optional

from torch import fx


class _Ref:
    """Where a value comes from: an fx node, made when first needed by `make`."""

    __slots__ = ("node", "make")

    def __init__(self, node: Optional[fx.Node] = None, make: Optional[Callable] = None):
        self.node, self.make = node, make

    def get(self) -> fx.Node:
        if self.node is None:
            self.node = self.make()
        return self.node


class _TracedInt(int):
    """An int read from a tensor's shape that remembers the graph node giving it.

    It is a plain int for everything Python does with it (comparisons, ``range``, slicing,
    dict keys); arithmetic with other ints gives a new traced int, so that sizes passed to
    torch calls are graph values, not the dummy input's numbers.
    """

    _ref: _Ref

    def __new__(cls, value: int, ref: _Ref):
        obj = super().__new__(cls, value)
        obj._ref = ref
        return obj


def _int_operator(op, reflected: bool = False):
    def method(self, other):
        if not isinstance(other, int) or isinstance(other, bool):
            return op(other, int(self)) if reflected else op(int(self), other)
        a, b = (other, self) if reflected else (self, other)
        graph = self._ref.get().graph
        return _TracedInt(op(int(a), int(b)), _Ref(make=lambda: graph.call_function(
            op, (_int_arg(a), _int_arg(b)))))
    return method


class ShapeGuardError(RuntimeError):
    """A captured graph ran on an input that would have taken another Python branch."""


ShapeGuardError.__module__ = "torchqsim.capture"  # its public path, shown in tracebacks


def shape_guard(value: int, op: str, other, expected: bool, where: str) -> None:
    """Raises :class:`ShapeGuardError` unless ``operator.<op>(value, other) == expected``: the
    graph holds
    the branch that the dummy input took at `where` (a graph node, kept by dead code removal).

    Example::

        >>> shape_guard(8, "gt", 4, True, "model.py:3")
        >>> shape_guard(2, "gt", 4, True, "model.py:3")
        Traceback (most recent call last):
        ...
        torchqsim.capture.ShapeGuardError: ...
    """
    if bool(getattr(operator, op)(value, other)) != expected:
        raise ShapeGuardError(
            f"this input takes another branch than the dummy input the model was captured "
            f"with: {where} compared a size ({value} {op} {other} is "
            f"{not expected}, was {expected}). Capture again with an input of this shape "
            f"(QuantizationSimModel / prepare_model with dummy_input=...).")


def _compare(op):
    def method(self, other):
        if not isinstance(other, int) or isinstance(other, bool):
            return op(int(self), other)
        result = op(int(self), int(other))
        frame = sys._getframe(1)
        where = f"{frame.f_code.co_filename}:{frame.f_lineno}"
        self._ref.get().graph.call_function(shape_guard, (
            self._ref.get(), op.__name__, _int_arg(other), result, where))
        return result
    return method


def _int_arg(value):
    return value._ref.get() if isinstance(value, _TracedInt) else int(value)


for _name, _op in (("add", operator.add), ("sub", operator.sub), ("mul", operator.mul),
                   ("floordiv", operator.floordiv), ("mod", operator.mod)):
    setattr(_TracedInt, f"__{_name}__", _int_operator(_op))
    setattr(_TracedInt, f"__r{_name}__", _int_operator(_op, reflected=True))
for _op in (operator.lt, operator.le, operator.gt, operator.ge, operator.eq, operator.ne):
    setattr(_TracedInt, f"__{_op.__name__}__", _compare(_op))
_TracedInt.__hash__ = int.__hash__
_TracedInt.__neg__ = lambda self: _TracedInt(-int(self), _Ref(make=lambda: self._ref.get(
    ).graph.call_function(operator.neg, (self._ref.get(),))))
