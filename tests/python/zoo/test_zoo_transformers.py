"""The HuggingFace transformers models of the zoo, as they are (tests/python/zoo/zoo_suite.py)."""

import zoo_models
from zoo_suite import define_tests

# tf_enhanced ranges: with min-max W8A8 ranges one of Phi-3's attention matmul outputs lies on a
# rounding tie that the float accumulation order decides (its QDQ graph then matches 97.9 % bit
# for bit: docs/capture.md, Open). Every model compiles with aot_eager, two with inductor too.
define_tests(globals(), zoo_models.HF, compile_subset=("bert", "llama"),
             quant_scheme="tf_enhanced", check_entries=True)
