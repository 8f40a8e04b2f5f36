"""Print pip constraints that pin every core requirement of setup.py (and the tfds extra) to its lower bound.

    python experiments/lower_bounds.py > constraints.txt

Reads setup.py's own lists (its ``setup()`` call is captured, not run), so the bounds are never restated.
"""

import sys
from pathlib import Path

import setuptools
from packaging.requirements import Requirement

SETUP = Path(__file__).resolve().parents[1] / "setup.py"


def declared_requirements() -> list[str]:
    """The core requirements and the tfds extra, as setup.py passes them to ``setup()``."""
    captured = {}
    real_setup = setuptools.setup
    setuptools.setup = lambda **arguments: captured.update(arguments)
    try:
        exec(compile(SETUP.read_text(), str(SETUP), "exec"), {"__name__": "__main__", "__file__": str(SETUP)})
    finally:
        setuptools.setup = real_setup
    return [*captured["install_requires"], *captured["extras_require"]["tfds"]]


def lower_bound_constraints(requirements: list[str]) -> list[str]:
    """'jax>=0.6,<0.13' -> 'jax==0.6' for each requirement with a lower bound."""
    constraints = []
    for text in requirements:
        requirement = Requirement(text)
        lows = [spec.version for spec in requirement.specifier if spec.operator in (">=", "==")]
        if lows:
            constraints.append(f"{requirement.name}=={lows[0]}")
    return constraints


if __name__ == "__main__":
    print("\n".join(lower_bound_constraints(declared_requirements())), file=sys.stdout)
