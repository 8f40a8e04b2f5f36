"""Loading a config file given as ``configs/FILE.py[:ARG]``, the way ``--config`` of the main command names it."""

import importlib.util
import sys
from pathlib import Path


def load_config(spec: str):
    """``configs/FILE.py[:ARG]`` -> that file's ``get_config(ARG)``, as ``--config`` of the main command reads it."""
    path, _, arg = spec.partition(":")
    repository = str(Path(path).resolve().parent.parent)  # config files import `configs.default`
    if repository not in sys.path:
        sys.path.insert(0, repository)
    module_spec = importlib.util.spec_from_file_location(Path(path).stem, path)
    if module_spec is None:
        raise FileNotFoundError(f"no config file at {path!r}; pass e.g. configs/cifar10.py:resnet20")
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module.get_config(arg) if arg else module.get_config()
