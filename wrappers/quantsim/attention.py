"""The quantizers of attention: keys (after RoPE), values, scores and probabilities, found in the
captured graph so that they can be set apart from the other activations (issue 15 item 5, e.g.
an 8-bit KV cache in a W16A16 sim).

Attention written as ``softmax(q @ k^T * scale + mask) @ v`` (HF transformers' eager
attention, most hand-written attention) is captured as two ``MatMul`` modules around a
``Softmax`` module; each quantizes its output:

- **scores**: the ``q @ k^T`` matmul (before scaling and masking);
- **probs**: the softmax;
- **key**: the op whose output reaches the scores matmul as ``k`` through data movement only
  (transpose, ``repeat_kv``'s expand/reshape): after RoPE, the rotary ``Add``; its output
  quantizer quantizes what a KV cache holds;
- **value**: the same for the ``probs @ v`` matmul's ``v`` (the ``v_proj`` linear).

Fused attention (``F.scaled_dot_product_attention``, ``nn.MultiheadAttention``) has no separate
scores and probabilities and is not listed.

Example::

    >>> for a in attention_quantizers(sim):  # doctest: +SKIP
    ...     print(a.key, a.value, a.scores, a.probs)
    >>> set_attention_precision(sim, key=8, value=8)  # doctest: +SKIP
"""

from dataclasses import dataclass

from torch import fx

from ..graph.nodes import Producer
from ..nn.activation import QuantizedSoftmax
from ..nn.elementwise import QuantizedBmm, QuantizedMatMul

__all__ = ["AttentionQuantizers", "attention_quantizers", "set_attention_precision"]

_MATMULS = (QuantizedMatMul, QuantizedBmm)
_MAX_STEPS = 8  # ops between the scores matmul and the softmax (scale, mask, casts)


@dataclass(frozen=True)
class AttentionQuantizers:
    """The modules (names in ``sim.model``) whose output quantizers hold one attention's keys,
    values, scores and probabilities."""

    key: str
    value: str
    scores: str
    probs: str


def _scores_matmul(sim, softmax: fx.Node):
    """The matmul the softmax's input comes from, through scaling, masking and casts."""
    node = softmax.args[0] if softmax.args else None
    for _ in range(_MAX_STEPS):
        if not isinstance(node, fx.Node):
            return None
        if node.op == "call_module" and isinstance(sim.model.get_submodule(node.target), _MATMULS):
            return node.target
        tensors = [a for a in node.args if isinstance(a, fx.Node)]
        node = tensors[0] if tensors else None
    return None


def _producer(op, index: int):
    source = op.inputs[index] if index < len(op.inputs) else None
    return source.op.name if isinstance(source, Producer) else None


def _values_matmul(sim, probs):
    """The matmul reading the probabilities as its first operand (through dropout and casts)."""
    pending = [c for c, _ in probs.consumers[0]]
    for _ in range(_MAX_STEPS):
        if not pending:
            return None
        op = pending.pop(0)
        if isinstance(op.module, _MATMULS):
            return op
        for consumers in op.consumers[:1]:
            pending.extend(c for c, _ in consumers)
    return None


def attention_quantizers(sim) -> list:
    """The attentions of ``sim.model`` written as matmul -> softmax -> matmul, in execution
    order, each as an :class:`AttentionQuantizers`.

    Example::

        >>> [a.probs for a in attention_quantizers(sim)]  # doctest: +SKIP
        ['module_softmax', 'module_softmax_1']
    """
    found = []
    for op in sim.graph.ops:
        if not isinstance(op.module, QuantizedSoftmax):
            continue
        scores = _scores_matmul(sim, op.node)
        values = _values_matmul(sim, op)
        if scores is None or values is None:
            continue
        key, value = _producer(sim.graph.op(scores), 1), _producer(values, 1)
        if key is not None and value is not None:
            found.append(AttentionQuantizers(key, value, scores, op.name))
    return found


def set_attention_precision(sim, key=None, value=None, scores=None, probs=None) -> list:
    """Sets the activation precision of the attention quantizers of every attention of the sim
    (:meth:`QuantizationSimModel.set_precision` of those modules), e.g. an 8-bit KV cache in a
    W16A16 sim. Call before ``compute_encodings``.

    Args:
        key, value, scores, probs: a bitwidth (or ``"int8"``, ``"fp16"``) for that role; None
            keeps it.

    Returns:
        The :class:`AttentionQuantizers` found.

    Raises:
        ValueError: the sim has no attention of that form; keys and values come from one op
            (GPT-2's fused ``c_attn``) and are given different precisions; a bad precision.
    """
    found = attention_quantizers(sim)
    if not found:
        raise ValueError("set_attention_precision: sim.model has no attention written as "
                         "matmul -> softmax -> matmul (fused attention such as "
                         "scaled_dot_product_attention is not split into quantizers)")
    shared = [a.key for a in found if a.key == a.value]
    if shared and key != value:
        raise ValueError(f"set_attention_precision: keys and values of {shared[0]!r} are one "
                         f"tensor (a fused projection), so key and value must be equal")
    for role, precision in (("key", key), ("value", value), ("scores", scores),
                            ("probs", probs)):
        if precision is not None:
            sim.set_precision(sorted({getattr(a, role) for a in found}), activation=precision)
    return found
