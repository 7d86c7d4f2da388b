"""The quantization simulator, one job per module.

* :mod:`.sim`: :class:`QuantizationSimModel`, the facade users call;
* :mod:`.arguments`: checks of its arguments and of precisions;
* :mod:`.config_file`: quantsim config files and the shipped presets (also
  ``torchqsim.quantsim_config``);
* :mod:`.plan`: the placement plan (a :class:`~.plan.SlotSpec` per quantizer slot);
* :mod:`.config_rules`: AIMET's config sections applied to the plan, with
  :mod:`.bn_fold_wiring` (BatchNorms simulated folded);
* :mod:`.hw_rules`: the ``hw_version`` exception rules, as a table;
* :mod:`.kernel_support`: ``supported_kernels`` warnings;
* :mod:`.construction`: wrapping the modules, probing the slots, creating the quantizers;
* :mod:`.targets`: which modules a user designates; ``set_precision``, exclusion;
* :mod:`.calibration`: ``compute_encodings``;
* :mod:`.torch_encodings`: the ``_torch.encodings`` writer and reader;
* :mod:`.summary`: the summary table.

Example::

    >>> import torchqsim
    >>> torchqsim.quantsim.QuantizationSimModel is torchqsim.QuantizationSimModel
    True
"""

from .sim import QuantizationSimModel
from .torch_encodings import quantizer_entries

__all__ = ["QuantizationSimModel", "quantizer_entries"]
