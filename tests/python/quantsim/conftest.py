"""pytest setup for tests/python/quantsim: `config_helpers` imports as a top-level module."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
