"""`choose_mixed_precision` with float and block formats among the candidates: the applied
assignment keeps the (re-measured) accuracy within the allowed drop and the sim's quantizers carry
the chosen formats."""

import copy

from ptq_task import accuracy
from torchqsim.ptq import choose_mixed_precision
from torchqsim.quantsim import QuantizationSimModel


def test_mixed_precision_candidates_with_formats(trained_mlp):
    fp, train, test = trained_mlp
    fp32 = accuracy(fp, test)
    calib = train[0][:512]
    sim = QuantizationSimModel(copy.deepcopy(fp), calib[:8], quant_scheme="tf")
    result = choose_mixed_precision(
        sim, calib[:8], ["W16A16", ("fp8_e4m3", "fp8_e4m3"), ("fp8_e4m3", "mxfp4")],
        lambda m: accuracy(m, test), 0.05, lambda m: m(calib), progress=False)
    assert accuracy(sim.model, test) >= fp32 - 0.05
    labels = set(result.assignment.values())
    assert labels & {"WFP8_E4M3AFP8_E4M3", "WMXFP4AFP8_E4M3", "AFP8_E4M3"}, result.assignment
    for name, label in result.assignment.items():
        m = sim.model.get_submodule(name)
        for q in list(m.input_quantizers) + list(m.output_quantizers):
            assert q is None or getattr(q, "format_name", None) == label.split("A", 1)[1].lower() \
                or label.endswith("A16"), (name, label)
