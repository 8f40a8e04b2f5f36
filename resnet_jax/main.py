"""Command line: ``python -m resnet_jax.main --config=configs/FILE.py[:ARG] --workdir=DIR [--config.FIELD=V]``.

Multi-host: ``--coordinator_address=HOST:PORT --num_processes=N --process_id=I`` call
``jax.distributed.initialize``; without them JAX's own auto-detection (TPU pods, SLURM, Open MPI)
applies. Re-running the same command with the same workdir resumes the run.
"""

import sys

from absl import app, flags, logging
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file, e.g. configs/cifar10.py:resnet56.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints, metrics and results.")
_COORDINATOR = flags.DEFINE_string("coordinator_address", None, "HOST:PORT of process 0 (multi-host).")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "Number of processes (multi-host).")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "This process's index (multi-host).")
flags.mark_flags_as_required(["config", "workdir"])


def initialize_distributed() -> None:
    """Join the multi-process job if flags or the environment describe one; no-op for a single process."""
    import jax

    explicit = [_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value]
    if any(value is not None for value in explicit):
        if any(value is None for value in explicit):
            raise app.UsageError("give all of --coordinator_address, --num_processes and --process_id, or none")
        jax.distributed.initialize(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value)
        return
    try:
        jax.distributed.initialize()  # TPU pods, SLURM and Open MPI describe themselves
    except (ValueError, RuntimeError) as error:
        logging.info("Running as a single process (%s).", str(error).splitlines()[0])


def main(argv: list[str]) -> None:
    """Set up the process, then train and evaluate."""
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    from resnet_jax.data.tfds_source import tensorflow

    tensorflow()  # before anything starts TensorFlow's runtime: it must not see (and take) the GPUs
    initialize_distributed()
    from resnet_jax.errors import exit_on_user_error
    from resnet_jax.train.loop import train_and_evaluate

    results = exit_on_user_error(train_and_evaluate, _CONFIG.value, _WORKDIR.value)
    logging.info("Final results: %s", results)
    print({key: value for key, value in results.items()}, file=sys.stdout, flush=True)


if __name__ == "__main__":
    app.run(main)
