"""BatchNorms simulated as folded into the Conv / ConvTranspose / Gemm before them (AIMET's
supergroup step, docs/aimet.md §1.8): the BatchNorm's input and parameter slots go off and
the producing op's output flag moves to the BatchNorm's output.

Example::

    >>> from torchqsim.graph import ModuleGraph
    >>> from torchqsim.prepare import prepare_model
    >>> from torchqsim.quantsim.construction import quantize_modules
    >>> gm = quantize_modules(prepare_model(nn.Sequential(nn.Conv2d(3, 4, 3),
    ...                                                   nn.BatchNorm2d(4))))
    >>> plan = Plan(ModuleGraph.from_graph_module(gm), 8, 8, "int")
    >>> plan.specs["0"].outputs[0].enabled = True
    >>> wire_folded_batch_norms(plan)
    >>> plan.specs["0"].outputs[0].enabled, plan.specs["1"].outputs[0].enabled
    (False, True)
"""

from ..graph import OpNode, Producer
from .plan import Plan

__all__ = ["is_foldable_bn", "wire_folded_batch_norms"]


def is_foldable_bn(plan: Plan, op: OpNode) -> bool:
    """A BatchNorm whose only input is the only use of the output of a quantized module that
    folds a following BatchNorm (``folds_following_batch_norm``: Conv, ConvTranspose, Gemm)."""
    spec = plan.spec(op)
    if spec is None or "BatchNormalization" not in spec.op_types or len(op.inputs) < 1:
        return False
    src = op.inputs[0]
    if not isinstance(src, Producer):
        return False
    producer = src.op
    if plan.spec(producer) is None or not producer.module.folds_following_batch_norm():
        return False
    users = [c for per_output in producer.consumers for c, _ in per_output]
    return users == [op] and not any(producer.is_model_output)


def wire_folded_batch_norms(plan: Plan) -> None:
    """Rewires, in `plan`, every foldable BatchNorm as folded (see the module docstring)."""
    for op in plan.ops:
        if is_foldable_bn(plan, op):
            bn, producer = plan.spec(op), plan.spec(op.inputs[0].op)
            bn.outputs[0].enabled = producer.outputs[0].enabled
            producer.outputs[0].enabled = False
            for slot in bn.inputs + list(bn.params.values()):
                slot.enabled = False
