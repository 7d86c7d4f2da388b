"""The HuggingFace transformers models of the zoo, as they are (tests/python/zoo/zoo_suite.py)."""

import zoo_models
from zoo_suite import define_tests

define_tests(globals(), zoo_models.HF, compile_subset=("bert", "llama"))
