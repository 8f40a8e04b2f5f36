#!/usr/bin/env bash
# The lower bounds of setup.py, tested: a fresh virtual environment gets every core dependency (and the tfds
# extra) at its lower bound, the rest of the dev extra at whatever pip picks, then the quick tests run.
# Run it whenever setup.py changes, and record the outcome in docs/development/versions.md.
#
#   experiments/check_oldest.sh [PYTHON] [VENV_DIR]     (defaults: python3.11, /tmp/resnet_jax_oldest)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${1:-python3.11}
VENV=${2:-/tmp/resnet_jax_oldest}

rm -rf "$VENV"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/pip" install -q --upgrade pip setuptools packaging
"$VENV/bin/python" experiments/lower_bounds.py > "$VENV/constraints.txt"
echo "Lower bounds: $(tr '\n' ' ' < "$VENV/constraints.txt")"
"$VENV/bin/pip" install -q -c "$VENV/constraints.txt" -e ".[dev]"
"$VENV/bin/pip" list 2>/dev/null | grep -iE "^(jax|jaxlib|flax|optax|orbax-checkpoint|numpy|tensorflow-cpu|tensorflow-datasets|clu) "
"$VENV/bin/python" -m pytest -m "not slow" -n 2 -q -p no:cacheprovider
