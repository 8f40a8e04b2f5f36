"""Run a module (``-m MODULE ARGS``) or code (``-c CODE``) as if TensorFlow and TFDS were not installed:
``python tests/without_tensorflow.py [--hide=PACKAGE ...] -m MODULE ARGS``.

Every import finder is wrapped so that it finds neither package: ``import tensorflow`` raises
ModuleNotFoundError and ``importlib.util.find_spec('tensorflow')`` is None, as on an accelerator image.
Each ``--hide=PACKAGE`` hides one more (``--hide=gcsfs``: the core install, without the gcs extra).
"""

import os
import runpy
import sys

HIDDEN = ("tensorflow", "tensorflow_datasets")
USAGE = "usage: python tests/without_tensorflow.py [--hide=PACKAGE ...] -m MODULE [ARG ...] | -c CODE"


class HidingFinder:
    """An import finder that finds what ``finder`` finds, except the ``hidden`` packages."""

    def __init__(self, finder, hidden=HIDDEN):
        self.finder = finder
        self.hidden = hidden

    def find_spec(self, name, path=None, target=None):
        """None for the hidden packages and their modules; else the wrapped finder's answer."""
        if name.split(".")[0] in self.hidden:
            return None
        find = getattr(self.finder, "find_spec", None)
        return find(name, path, target) if find else None

    def __getattr__(self, attribute):
        return getattr(self.finder, attribute)


if __name__ == "__main__":
    also = []
    while sys.argv[1:2] and sys.argv[1].startswith("--hide="):
        also.append(sys.argv.pop(1).removeprefix("--hide="))
    sys.meta_path[:] = [HidingFinder(finder, (*HIDDEN, *also)) for finder in sys.meta_path]
    if sys.argv[1:2] not in (["-m"], ["-c"]) or len(sys.argv) < 3:
        sys.exit(USAGE)
    if sys.argv[1] == "-c":
        exec(sys.argv[2], {"__name__": "__main__"})
        sys.exit()
    sys.argv = sys.argv[2:]
    sys.path[0] = os.getcwd()  # as `python -m` has it
    runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
