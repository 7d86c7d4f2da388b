"""The timm models of the zoo, as they are (tests/python/zoo/zoo_suite.py).

timm imports torchvision, whose only wheel here is a CUDA build kept out of the main environment:
scripts/test.sh runs this file with the side venv's python (build/aimet-venv, built by
scripts/aimet_venv.sh with torchvision and timm, ``--no-deps``) and ``TORCHQSIM_SIDE_VENV=1``.
The main environment does not collect it (tests/python/zoo/conftest.py); in the side venv a
missing timm is an import error, not a skip."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "aimet_parity"))
import torchvision_shim  # noqa: E402,F401  (before timm imports torchvision)

import timm_models  # noqa: E402
from zoo_suite import define_tests  # noqa: E402

define_tests(globals(), timm_models.TIMM, compile_subset=("timm_resnet",))
