"""The timm models of the zoo, as they are (tests/python/zoo/zoo_suite.py).

timm imports torchvision, whose only wheel here is a CUDA build kept out of the main environment:
scripts/test.sh runs this file a second time with the side venv's python
(build/aimet-venv, scripts/aimet_venv.sh: torchvision + timm, --no-deps), with
TORCHQSIM_SIDE_VENV=1; there a missing timm is an error. In the main environment the module is
skipped with that explanation (it is not where these models run)."""

import os
import sys

import pytest

if os.environ.get("TORCHQSIM_SIDE_VENV") != "1":
    pytest.skip("timm models run in the side venv: scripts/test.sh runs this file with "
                "build/aimet-venv/bin/python and TORCHQSIM_SIDE_VENV=1", allow_module_level=True)

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "aimet_parity"))
import torchvision_shim  # noqa: E402,F401  (before timm imports torchvision)

import timm_models  # noqa: E402
from zoo_suite import define_tests  # noqa: E402

define_tests(globals(), timm_models.TIMM, compile_subset=("timm_resnet",))
