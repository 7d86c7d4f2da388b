"""`choose_mixed_precision` on a trained MLP: the applied assignment keeps the (independently
re-measured) accuracy within the allowed drop from FP32, costs fewer BitOps than all-16-bit,
and the sim's quantizers carry the chosen bitwidths."""

import copy


from ptq_task import accuracy
from torchqsim.ptq import choose_mixed_precision
from torchqsim.quantsim import QuantizationSimModel


def test_amp_respects_budget_and_is_cheaper_than_all_16_bit(trained_mlp):
    fp, train, test = trained_mlp
    fp32 = accuracy(fp, test)
    calib = train[0][:512]
    sim = QuantizationSimModel(copy.deepcopy(fp), calib[:8], quant_scheme="tf")
    drop = 0.002
    result = choose_mixed_precision(
        sim, calib[:8], ["W16A16", "W8A16", "W8A8", "W4A8", (8, 4)],
        lambda m: accuracy(m, test), drop, lambda m: m(calib), progress=False)
    assert result.fp32_accuracy == fp32
    got = accuracy(sim.model, test)
    assert got == result.accuracy and got >= fp32 - drop, (fp32, result)
    assert result.bitops < 1.0, result                       # baseline (all W16A16) is 1.0
    assert len(set(result.assignment.values()) - {"A16"}) >= 2, result.assignment  # mixed
    for name, label in result.assignment.items():
        w, _, a = label.partition("A")
        w, a = int(w[1:]) if w else None, int(a)
        m = sim.model.get_submodule(name)
        for q in list(m.input_quantizers) + list(m.output_quantizers):
            assert q is None or q.bitwidth == a, (name, label)
        q = m.param_quantizers["weight"] if "weight" in m.param_quantizers else None
        assert q is None or q.bitwidth == w, (name, label)
    # every group was measured at every cheaper candidate it can take
    assert all(len(s) >= 1 for s in result.sensitivity.values())
