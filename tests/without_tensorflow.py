"""Run a module (``-m MODULE ARGS``) or code (``-c CODE``) as if TensorFlow and TFDS were not installed:
``python tests/without_tensorflow.py -m MODULE ARGS``.

Every import finder is wrapped so that it finds neither package: ``import tensorflow`` raises
ModuleNotFoundError and ``importlib.util.find_spec('tensorflow')`` is None, as on an accelerator image.
"""

import os
import runpy
import sys

HIDDEN = ("tensorflow", "tensorflow_datasets")


class HidingFinder:
    """An import finder that finds what ``finder`` finds, except the hidden packages."""

    def __init__(self, finder):
        self.finder = finder

    def find_spec(self, name, path=None, target=None):
        """None for the hidden packages and their modules; else the wrapped finder's answer."""
        if name.split(".")[0] in HIDDEN:
            return None
        find = getattr(self.finder, "find_spec", None)
        return find(name, path, target) if find else None

    def __getattr__(self, attribute):
        return getattr(self.finder, attribute)


if __name__ == "__main__":
    sys.meta_path[:] = [HidingFinder(finder) for finder in sys.meta_path]
    if sys.argv[1:2] not in (["-m"], ["-c"]) or len(sys.argv) < 3:
        sys.exit("usage: python tests/without_tensorflow.py -m MODULE [ARG ...] | -c CODE")
    if sys.argv[1] == "-c":
        exec(sys.argv[2], {"__name__": "__main__"})
        sys.exit()
    sys.argv = sys.argv[2:]
    sys.path[0] = os.getcwd()  # as `python -m` has it
    runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
