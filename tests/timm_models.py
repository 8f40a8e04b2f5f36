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


def timm_model(name: str, seed: int = 0):
    """timm's ``name`` in eval mode with random weights and randomised BatchNorm statistics."""
    import torch

    timm = import_timm()
    torch.manual_seed(seed)
    model = timm.create_model(name, pretrained=False)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.normal_(0.0, 0.1)
                module.running_var.uniform_(0.5, 1.5)
                module.weight.uniform_(0.5, 1.5)
                module.bias.normal_(0.0, 0.1)
    return model.eval()
