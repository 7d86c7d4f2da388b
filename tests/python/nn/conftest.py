"""pytest setup for tests/python/nn: `wrapper_reference` imports as a top-level module."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
