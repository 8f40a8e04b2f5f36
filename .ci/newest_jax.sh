#!/usr/bin/env bash
# CI's second job: the newest JAX and flax (jax 0.11 and later need Python >= 3.12) in a virtual environment of
# their own, beside the main suite on Python 3.11. It holds the core install and pytest: no TensorFlow (a run on
# a prepared in-memory dataset needs none) and no torch (the CPU wheel of torch==2.13.0 is for Python 3.11; the
# torch parity tests run in the main suite).
#   .ci/newest_jax.sh install    # start it in the background while the main suite runs: mostly downloads
#   .ci/newest_jax.sh test       # the short test set: the train step, a whole run of the loop, checkpoints
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${NEWEST_JAX_VENV:-/tmp/resnet_jax_newest_jax}
TESTS=(
  tests/test_step.py
  tests/test_checkpoint.py
  tests/test_config_schema.py
  "tests/test_loop.py::test_learns_the_synthetic_rule_and_writes_the_workdir_contract"
)

newest_python() {  # python3.13 or python3.12 on the PATH, else pyenv's
  local candidate
  for candidate in python3.13 python3.12 "$(pyenv root 2>/dev/null)"/versions/3.1[23]*/bin/python; do
    if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then
      command -v "$candidate"
      return
    fi
  done
}

case "${1:-}" in
  install)
    PYTHON=$(newest_python)
    if [[ -z "$PYTHON" ]]; then echo "no Python >= 3.12 on this machine: the newest-JAX job is skipped"; exit 0; fi
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV"
    # pytest below 9.2, as the dev extra says: pytest-xdist's groups (test_loop's) need it.
    if ! "$VENV/bin/pip" install -q -e . "pytest<9.2" pytest-xdist > "$VENV/install.log" 2>&1; then
      grep -v '^WARNING' "$VENV/install.log" >&2
      exit 1
    fi
    ;;
  test)
    if [[ ! -x "$VENV/bin/python" ]]; then echo "the newest-JAX job was skipped (no Python >= 3.12)"; exit 0; fi
    "$VENV/bin/python" -c 'import sys, jax, flax; print(f"Python {sys.version.split()[0]}, jax {jax.__version__}, flax {flax.__version__}")'
    "$VENV/bin/python" -m pytest -n 2 -q -p no:cacheprovider "${TESTS[@]}"
    ;;
  *) echo "usage: .ci/newest_jax.sh install|test" >&2; exit 2 ;;
esac
