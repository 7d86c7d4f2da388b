"""Fixtures of the AIMET parity suite: the side venv's interpreter (scripts/aimet_venv.sh builds
it) and a runner for the AIMET oracle (aimet_oracle.py) in it.

Where the side venv is missing, the tests skip saying so; under CI (``CI=true``) they fail
instead, since scripts/test.sh builds the venv before pytest runs.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))

_DEFAULT_VENV = REPO / "build" / "aimet-venv"


def aimet_python_path() -> Path:
    """``$TORCHQSIM_AIMET_VENV/bin/python``, else ``build/aimet-venv/bin/python``."""
    return Path(os.environ.get("TORCHQSIM_AIMET_VENV", _DEFAULT_VENV)) / "bin" / "python"


@pytest.fixture(scope="session")
def aimet_python() -> str:
    """The side venv's python, with aimet-torch 2.42.0 importable (skip, or fail under CI)."""
    python = aimet_python_path()
    probe = None
    if python.exists():
        probe = subprocess.run([str(python), "-c", "import importlib.metadata as m; "
                                "print(m.version('aimet-torch'))"],
                               capture_output=True, text=True)
    if probe is not None and probe.returncode == 0 and probe.stdout.strip() == "2.42.0":
        return str(python)
    why = (f"no aimet-torch 2.42.0 venv at {python.parent.parent} "
           f"({probe.stderr.strip()[-300:] if probe else 'missing'}); build it with "
           f"`bash scripts/aimet_venv.sh`")
    if os.environ.get("CI") == "true":
        pytest.fail(why)
    pytest.skip(why)


@pytest.fixture(scope="session")
def aimet_config_dir(aimet_python) -> Path:
    """``aimet_torch/common/quantsim_config/`` inside the side venv (found without importing
    aimet_torch)."""
    out = subprocess.run([aimet_python, "-c", "import importlib.util, os; print(os.path.dirname("
                          "importlib.util.find_spec('aimet_torch').origin))"],
                         capture_output=True, text=True, check=True)
    return Path(out.stdout.strip()) / "common" / "quantsim_config"
