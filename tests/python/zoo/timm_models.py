"""The timm models of the zoo (issue 12's list: a ResNet, an EfficientNet, a DeiT, a MobileViT, a
LeViT), random-init and shrunk to zoo size through timm's own constructor arguments or model
configurations (depth, widths, image size): the architectures' code paths as they are, at a
fraction of the cost.

timm imports torchvision, which lives only in the side venv (scripts/aimet_venv.sh): this module
is imported by test_zoo_timm.py when that venv runs it."""

import dataclasses

import torch

import timm
from zoo_models import trained_norms


def _image(size: int, batch: int = 3) -> torch.Tensor:
    """A batch of three: a QAT step runs BatchNorm in training mode, where the last stages hold
    one value per channel and image (1x1 maps, pooled features): one image is an error, and two
    normalise to exactly +-1, whose gradient with respect to everything before is zero."""
    return torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(7))


def _model(name: str, **kwargs) -> torch.nn.Module:
    torch.manual_seed(0)
    return trained_norms(timm.create_model(name, pretrained=False, num_classes=10,
                                           **kwargs).eval())


def _trained_linears(model: torch.nn.Module) -> torch.nn.Module:
    """torch's default Linear initialisation in place of timm's std-0.02 one: the residual
    branches of a random ViT then add O(1) to the stream, as trained ones do, instead of 1 % of
    it, where the model's output is the difference of nearly equal numbers (a W16A16 error no
    grid can avoid)."""
    torch.manual_seed(1)
    for m in model.modules():
        if isinstance(m, torch.nn.Linear):
            m.reset_parameters()
    return model


def timm_resnet():
    return _model("resnet18", layers=[1, 1, 1, 1], channels=(8, 16, 32, 64), stem_width=8), \
        _image(32)


def timm_efficientnet():
    return _model("test_efficientnet"), _image(32)  # timm's own small EfficientNet


def timm_deit():
    model = _trained_linears(_model("deit_tiny_patch16_224", img_size=32, depth=2, embed_dim=48,
                                    num_heads=3))
    # timm initialises the class token at std 1e-6 (trained ones are O(0.1)); concatenated with
    # the patch embeddings, such a token is below one step of any shared grid: as trained.
    torch.nn.init.normal_(model.cls_token, std=0.02, generator=torch.Generator().manual_seed(8))
    return model, _image(32)


def timm_mobilevit():
    """timm's MobileViT-XXS configuration cut to one inverted-residual stage and one MobileViT
    stage (unfold into patches, transformer, fold back, fuse), built by timm's ``ByobNet``."""
    from timm.models.byobnet import ByobNet
    from timm.models.mobilevit import _inverted_residual_block, _mobilevit_block, model_cfgs
    cfg = dataclasses.replace(model_cfgs["mobilevit_xxs"], num_features=64, blocks=(
        _inverted_residual_block(d=1, c=16, s=1, br=2.0),
        _mobilevit_block(d=1, c=32, s=2, transformer_dim=32, transformer_depth=1, patch_size=2,
                         br=2.0)))
    torch.manual_seed(0)
    return trained_norms(ByobNet(cfg, num_classes=10).eval()), _image(32)


def timm_levit():
    """LeViT at 128 pixels: its 16x stem and two 2x downsamplings leave 2x2 tokens in the last
    stage (at 64, one token: a softmax over one key is constant and its bias gets no gradient)."""
    return _trained_linears(_model("levit_128s", img_size=128, embed_dim=(32, 48, 64),
                                   depth=(1, 1, 1), num_heads=(2, 2, 2), key_dim=8)), _image(128)


TIMM = {f.__name__: f for f in (timm_resnet, timm_efficientnet, timm_deit, timm_mobilevit,
                                timm_levit)}
