"""Lets torchvision import on the CPU torch wheel inside the AIMET oracle venv.

The torchvision wheel that matches torch 2.13 carries CUDA kernels whose library does not load
next to the CPU torch; its Python side then asks the dispatcher whether ``torchvision::nms`` has
a Meta kernel and fails because the op was never defined. Defining the two op schemas that its
import touches (``nms``, ``qnms``) with `torch.library` first is enough: AIMET only imports
torchvision, it never calls these ops on the paths the oracle runs.

Import this module before anything imports torchvision (``import torchvision_shim``).
"""

import torch.library

_LIB = torch.library.Library("torchvision", "DEF")  # noqa: kept alive for the process
_LIB.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
_LIB.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
