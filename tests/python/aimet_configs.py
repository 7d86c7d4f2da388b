"""Where the tests find AIMET 2.42's shipped quantsim config files.

They are read in place from ``aimet_torch/common/quantsim_config/`` of the side venv that
scripts/aimet_venv.sh builds: the folder ``$QSIM_AIMET_CONFIGS`` (scripts/test.sh sets it), else
found by path under ``$TORCHQSIM_AIMET_VENV`` or build/aimet-venv, without importing aimet_torch.
A test that needs a missing file skips, saying why; under ``CI=true`` it fails instead.
"""

import glob
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# The 19 files aimet-torch 2.42.0 ships.
AIMET_FILES = sorted(
    ["default_config.json", "default_config_per_channel.json", "dsp_quantsim_config.json",
     "enpu_quantsim_config_v6.json", "enpu_quantsim_config_v7.json",
     "enpu_quantsim_config_v7_per_channel.json"]
    + [f"htp_quantsim_config_v{v}.json" for v in (66, 68, 69, 73, 75, 79, 81, 85)]
    + [f"htp_quantsim_config_v{v}_per_channel_linear.json" for v in (69, 73, 75, 79, 81)])


def aimet_configs_dir() -> Path | None:
    """The folder of AIMET's shipped configs, or None when there is none."""
    if os.environ.get("QSIM_AIMET_CONFIGS"):
        return Path(os.environ["QSIM_AIMET_CONFIGS"])
    venv = os.environ.get("TORCHQSIM_AIMET_VENV", str(REPO / "build" / "aimet-venv"))
    found = sorted(glob.glob(os.path.join(glob.escape(venv), "lib", "python3*", "site-packages",
                                          "aimet_torch", "common", "quantsim_config")))
    return Path(found[-1]) if found else None


def aimet_config(name: str) -> Path:
    """The path of AIMET's config file `name`; skips the test (fails it under CI) if missing."""
    folder = aimet_configs_dir()
    if folder is None or not (folder / name).is_file():
        why = (f"AIMET 2.42 config {name} not found (folder: {folder}); build the side venv "
               f"with scripts/aimet_venv.sh or set QSIM_AIMET_CONFIGS")
        if os.environ.get("CI") == "true":
            pytest.fail(why)
        pytest.skip(why)
    return folder / name
