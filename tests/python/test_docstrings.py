"""Every docstring example in the torchqsim package runs and shows what it says (doctest)."""

import doctest
import importlib
import pkgutil
import warnings

import pytest
import torch

import torchqsim

# Names every example may use without importing them (as in the README's examples).
EXTRA_GLOBALS = {"torch": torch, "nn": torch.nn, "tq": torchqsim}

# The package and every Python module of it (not the compiled _C/_io/_eager, not the __main__
# entry points).
MODULES = ["torchqsim"] + sorted(m.name for m in pkgutil.walk_packages(torchqsim.__path__, "torchqsim.")
                 if m.name not in ("torchqsim._C", "torchqsim._io", "torchqsim._eager")
                 and not m.name.endswith(".__main__"))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    threads = torch.get_num_threads()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = doctest.testmod(module, extraglobs=EXTRA_GLOBALS,
                                 optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    torch.set_num_threads(threads)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples in {name} failed"
