"""pytest setup for the zoo: its helpers (zoo_models, checks, zoo_suite) import as top-level
modules."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
