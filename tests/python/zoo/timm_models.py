"""The timm models of the zoo (issue 12's list: a ResNet, an EfficientNet, a DeiT, a MobileViT, a
LeViT), random-init and shrunk to zoo size through timm's own constructor arguments (depth,
widths, image size): the architectures' code paths as they are, at a fraction of the cost.

timm imports torchvision, which lives only in the side venv (scripts/aimet_venv.sh): this module
is imported by test_zoo_timm.py when that venv runs it."""

import torch

import timm


def _image(size: int, batch: int = 1) -> torch.Tensor:
    return torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(7))


def _model(name: str, **kwargs) -> torch.nn.Module:
    torch.manual_seed(0)
    return timm.create_model(name, pretrained=False, num_classes=10, **kwargs).eval()


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
    return _model("mobilevit_xxs"), _image(32)


def timm_levit():
    return _trained_linears(_model("levit_128s", img_size=64, embed_dim=(32, 48, 64),
                                   depth=(1, 1, 1), num_heads=(2, 2, 2), key_dim=8)), _image(64)


TIMM = {f.__name__: f for f in (timm_resnet, timm_efficientnet, timm_deit, timm_mobilevit,
                                timm_levit)}
