"""timm for the tests, on a machine where torchvision's wheel does not install.

``import timm`` imports torchvision's transforms, datasets, ``ops.misc`` and feature extraction at module
level, but the model code of the architectures tested here uses none of them. ``import_timm`` stands empty
placeholder modules in for torchvision (every attribute a placeholder class) only when torchvision is
absent, then imports timm; without timm (or torch) the calling test is skipped with the install line.
"""

import importlib.abc
import importlib.util
import sys
import types

import pytest

CLASSIFIER_SCALE = 0.25
INSTALL = 'pip install --no-deps "timm==1.0.31" (see the README: timm pulls a CUDA torch otherwise)'


class _Placeholder(type):
    """A class whose every attribute is another placeholder class (``transforms.InterpolationMode.NEAREST``)."""

    def __getattr__(cls, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _Placeholder(name, (), {})


class _PlaceholderModule(types.ModuleType):
    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _Placeholder(name, (), {})


class _PlaceholderLoader(importlib.abc.Loader):
    def create_module(self, spec):
        module = _PlaceholderModule(spec.name)
        module.__path__ = []
        return module

    def exec_module(self, module):
        pass


class _TorchvisionPlaceholders(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "torchvision" or name.startswith("torchvision."):
            return importlib.util.spec_from_loader(name, _PlaceholderLoader(), is_package=True)
        return None


def import_timm():
    """The timm package (torchvision stood in for if missing); skips the test when timm or torch is absent."""
    pytest.importorskip("torch", reason="torch==2.13.0 (the torch extra) is not installed")
    if importlib.util.find_spec("timm") is None:
        pytest.skip(f"timm is not installed: {INSTALL}")
    if importlib.util.find_spec("torchvision") is None and not any(
        isinstance(finder, _TorchvisionPlaceholders) for finder in sys.meta_path
    ):
        sys.meta_path.append(_TorchvisionPlaceholders())
    import timm

    return timm


def timm_model(name: str, seed: int = 0, image_size: int = 64):
    """timm's ``name`` in eval mode with random weights and randomised BatchNorm statistics.

    The affine parameters are drawn, the statistics set to those of one batch of random images (one train-mode
    pass with cumulative averaging), so that activations stay of order one through the depth as in a trained
    network, then perturbed (means shifted, variances scaled): a converter that mixes any of them up changes
    the logits. The classifier is drawn at ``CLASSIFIER_SCALE`` of timm's scale, for logits below 1: float32's
    rounding through 50 layers is about 3e-5 of a logit, so the 1e-4 of the parity tests tests the mapping."""
    timm = import_timm()  # skips the test without torch or timm
    import torch

    torch.manual_seed(seed)
    model = timm.create_model(name, pretrained=False)
    norms = [module for module in model.modules() if isinstance(module, torch.nn.BatchNorm2d)]
    with torch.no_grad():
        for norm in norms:
            norm.weight.uniform_(0.75, 1.25)
            norm.bias.normal_(0.0, 0.1)
            norm.momentum = None  # cumulative: after one batch, the running statistics are that batch's
            norm.reset_running_stats()
        model.train()(torch.randn(32, 3, image_size, image_size))
        for norm in norms:
            norm.momentum = 0.1
            norm.running_mean.add_(0.1 * norm.running_var.sqrt() * torch.randn_like(norm.running_mean))
            norm.running_var.mul_(torch.empty_like(norm.running_var).uniform_(0.8, 1.25))
        model.get_classifier().weight.mul_(CLASSIFIER_SCALE)
    return model.eval()
