"""pytest setup for tests/python: the shared test helpers (reference.py, asserts.py,
qdq_cases.py) import as top-level modules from any test below this folder, in every pytest
import mode."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
