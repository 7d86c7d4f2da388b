"""pytest setup for the zoo: its helpers (zoo_models, checks, zoo_suite) import as top-level
modules; the timm models (they need torchvision) are collected only in the side venv, where
scripts/test.sh runs them with ``TORCHQSIM_SIDE_VENV=1``."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

if os.environ.get("TORCHQSIM_SIDE_VENV") != "1":
    collect_ignore = ["test_zoo_timm.py", "timm_models.py"]
