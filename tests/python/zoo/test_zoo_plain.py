"""The plain-torch models of the zoo, as they are (tests/python/zoo/zoo_suite.py), and what
capture adds for them: a branch on a traced size is guarded."""

import pytest
import torch

import plain_models
from torchqsim.capture import ShapeGuardError
from zoo_suite import define_tests
import checks

define_tests(globals(), plain_models.PLAIN, compile_subset=("lstm", "unet"))


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
