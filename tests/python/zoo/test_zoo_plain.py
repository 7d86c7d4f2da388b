"""The plain-torch models of the zoo, as they are (tests/python/zoo/zoo_suite.py), and what
capture adds for them: a branch on a traced size is guarded."""

import pytest
import torch

import plain_models
from torchqsim.capture import ShapeGuardError
from zoo_suite import define_tests
import checks

_RECURRENT_GAP = ("torch.onnx.export turns the recurrent weights into the RNN/GRU/LSTM op's "
                  "concatenated W/R/B tensors: their encodings are not in .encodings yet "
                  "(the QDQ graph quantizes them and matches bit for bit)")
define_tests(globals(), plain_models.PLAIN, compile_subset=("lstm", "unet"), encodings_gaps={
    "rnn": _RECURRENT_GAP, "gru": _RECURRENT_GAP, "lstm": _RECURRENT_GAP,
    "norm_attention": "nn.MultiheadAttention's in_proj_weight is exported as slices: its "
                      "encoding is not in .encodings yet (the QDQ graph matches bit for bit)"})


def test_sim_of_a_shape_branching_model_refuses_the_other_branch():
    model, x = plain_models.shape_branch()
    sim = checks.calibrated_sim(model, x, 16)
    wider = torch.randn(2, 4, 40)   # same branch (> 16): runs, and matches FP32 closely
    sim.compute_encodings(lambda m: (m(x), m(wider)))  # ranges that cover both inputs
    with torch.no_grad():
        error = ((sim.model(wider) - model(wider)).norm() / model(wider).norm()).item()
    assert error < 1e-3
    with pytest.raises(ShapeGuardError, match="another branch"):
        sim.model(torch.randn(2, 4, 8))
