"""Command line: ``python -m resnet_jax.main --config=configs/FILE.py[:ARG] --workdir=DIR [--config.FIELD=V]``.

Multi-host: ``--coordinator_address=HOST:PORT --num_processes=N --process_id=I`` call
``jax.distributed.initialize``; without them JAX's own auto-detection (TPU pods, SLURM, Kubernetes, Open MPI)
applies. Re-running the same command with the same workdir resumes the run.

Exit codes (``errors.ExitCode``): 0 finished; 1 failed; 2 the user's mistake (do not retry); 75 stopped
by a signal (SIGTERM, SIGHUP, Ctrl-C) with nothing lost: run the same command to resume.

The config is loaded and checked before JAX starts and before anything is written: a
mistake in it, or in a flag, is one paragraph on stderr and exit code 2, with no traceback (``--debug``
shows it), and leaves no workdir behind. Libraries' INFO lines are hidden unless ``--verbosity`` is given.
"""

import re
import sys
from typing import NoReturn

from absl import app, flags
from ml_collections import config_flags

from resnet_jax import config_schema, paths
from resnet_jax.console import quiet_libraries
from resnet_jax.errors import ConfigError, ExitCode, debugging, exit_on_user_error, exit_with
from resnet_jax.runtime.preemption import exit_on_stop_signals
from resnet_jax.train import settings

__doc__ += f"\n{config_schema.help_text()}\n"  # absl's --help and --helpfull print the module's docstring

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Config file, e.g. configs/cifar10.py:resnet56 (its fields are listed above)."
)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints, metrics and results (local or gs://).")
_COORDINATOR = flags.DEFINE_string("coordinator_address", None, "HOST:PORT of process 0 (multi-host).")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "Number of processes (multi-host).")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "This process's index (multi-host).")
flags.DEFINE_bool("debug", False, "Show the traceback of every error, users' mistakes included.")
flags.mark_flags_as_required(["config", "workdir"])

EXAMPLE = "e.g. --config=configs/digits.py --workdir=workdirs/digits"


def unknown_field_message(error: AttributeError, argv: list[str]) -> str:
    """ml_collections' 'did you mean' for a misspelt field, set by a ``--config.FIELD`` override or by the
    config file (whose config is locked), as one sentence."""
    text = str(error).encode().decode("unicode_escape")
    field = re.search(r'Key "([^"]+)"', text) or re.search(r"'([^']+)'", text)
    suggestion = re.search(r'Did you mean "([^"]+)"', text)
    name = field.group(1) if field else "?"
    given = next((arg for arg in argv if re.match(rf"--config\.(\w+\.)*{re.escape(name)}(=|$)", arg)), None)
    where = f"({given})" if given else "(set by the config file)"
    hint = f' Did you mean "{suggestion.group(1)}"?' if suggestion else ""
    return (
        f"the config has no field {name!r} {where}.{hint} Every field is listed, with its meaning, by "
        "`python -m resnet_jax.config_schema` and --helpfull."
    )


def flag_error_message(error: flags.Error) -> str:
    """A flag's error as one paragraph; a config file's own error (a bad ARG, say) without config_flags' traceback."""
    text = str(error)
    raised = list(re.finditer(r"^(?:\w+\.)*\w+(?:Error|Exception): ", text, flags=re.MULTILINE))
    if "Traceback" in text and raised:
        return f"{text[raised[-1].end() :].strip().rstrip('.')} (from --config). {EXAMPLE}."
    return f"{text}. Run with --helpfull for every flag; {EXAMPLE}."


def parse_flags(argv: list[str]) -> list[str]:
    """absl's flag parsing, with a misspelt or mistyped flag or config field as a usage error (exit 2)."""
    try:
        return flags.FLAGS(argv)
    except flags.Error as error:
        if debugging():
            raise
        message = flag_error_message(error)
    except AttributeError as error:  # a field the config does not have
        if debugging():
            raise
        message = unknown_field_message(error, argv)
    exit_with(ConfigError(message))


def load_config():
    """The config that ``--config`` names, checked (names, values, ranges) before anything starts."""
    try:
        config = _CONFIG.value
        config.to_dict()  # config_flags reports a failure to load at the first use of the config
    except OSError as error:  # config_flags reports any failure to load the file this way
        detail = " ".join(line.strip() for line in str(error).splitlines()[1:]) or str(error)
        raise ConfigError(
            f"could not load the config file given to --config ({detail}). Give the path of a config file, "
            f"optionally with :ARG, from the repository root (configs import configs/default.py); {EXAMPLE}."
        ) from error
    settings.validate(config)
    return config


def join_job(config) -> None:
    """Join the multi-process job that the flags or the environment describe; no-op for a single process."""
    from resnet_jax.runtime import joining

    explicit = [_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value]
    if any(value is not None for value in explicit) and any(value is None for value in explicit):
        exit_with(ConfigError("give all of --coordinator_address, --num_processes and --process_id, or none."))
    joining.join(*explicit, timeout_s=config.join_timeout_s)


def main(argv: list[str]) -> None:
    """Check the config, set up the process, then train and evaluate."""
    if len(argv) > 1:
        exit_with(ConfigError(f"unexpected arguments: {' '.join(argv[1:])}; {EXAMPLE}."))
    exit_on_stop_signals("during start-up, before training: nothing was lost; run the same command again")
    if not flags.FLAGS["verbosity"].present:
        quiet_libraries()
    config = exit_on_user_error(load_config)
    exit_on_user_error(paths.require_filesystem, _WORKDIR.value, f"--workdir={_WORKDIR.value}")
    exit_on_user_error(join_job, config)
    from resnet_jax.train import loop

    results = exit_on_user_error(loop.run, config, _WORKDIR.value)  # load_config validated it
    if results.get("stopped"):
        report_stop(results)
    print({key: value for key, value in results.items()}, file=sys.stdout, flush=True)


def report_stop(results: dict) -> NoReturn:
    """One line for a run that a stop signal ended, and ``ExitCode.RESUME``: nothing was lost."""
    saved = results["checkpoint_step"]
    where = (
        f"its checkpoint of step {saved} is in {_WORKDIR.value}; run the same command to resume"
        if saved is not None
        else "it had not started training, so nothing was lost; run the same command to start"
    )
    print(f"Stopped by {results['stopped']} at step {results['step']}: {where}.", file=sys.stderr, flush=True)
    sys.exit(ExitCode.RESUME)


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags)
