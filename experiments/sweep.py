"""Run every point of a grid over config fields, each in its own workdir; or print the commands.

    python experiments/sweep.py --config configs/FILE.py[:ARG] --workdir SWEEP_DIR \\
        --grid FIELD=v1,v2,... [--grid ...] [--set FIELD=VALUE ...] [--emit]

Points run one after another, each through the main command (``python -m resnet_jax.main``) in
``SWEEP_DIR/FIELD=v,FIELD=w`` (a local path or ``gs://``). A finished point (``results.json`` present)
is skipped; an unfinished one resumes from its checkpoint; a point started with other overrides (a
changed ``--set``) is an error rather than a silent reuse. Ctrl-C or SIGTERM lets the running point
checkpoint, then stops the sweep, which exits 75 like the main command (docs/guides/clusters.md, "Exit
codes"): re-run the same command to go on. ``SWEEP_DIR/sweep.json`` records the grid for ``report.py``.
``--point I`` runs grid point I only; ``--launcher`` prefixes its command (``srun``, say: the scheduler then
signals the point's tasks itself, and the sweep does not pass its own SIGTERM on).

Instead of running, ``--emit`` prints for a scheduler:
- ``--emit`` (``commands``): one complete main command per point;
- ``--emit slurm``: an sbatch script (``experiments/launch/slurm.sbatch``) for one array job whose task
  i runs point i through this script (``--point`` under ``srun``), skipping it if finished; each task asks
  for ``--nodes``, ``--gpus-per-node`` (0: a partition without GPUs), ``--tasks-per-node``,
  ``--cpus-per-task`` and ``--time``;
- ``--emit tpu --tpu NAME --zone ZONE``: the ``gcloud compute tpus tpu-vm ssh NAME --worker=all`` line that
  starts this sweep on every worker of a TPU VM or pod slice, detached from the ssh session (``nohup``), with
  its log in ``~/resnet_jax/logs/`` on each worker, and the line that follows worker 0's log.
"""

import argparse
import dataclasses
import difflib
import itertools
import json
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

from etils import epath

from resnet_jax import paths
from resnet_jax.errors import ExitCode, UserError

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the repository root: configs, experiments
SWEEP_RECORD = "sweep.json"
POINT_RECORD = "sweep_point.json"  # in each point's workdir: the overrides it was started with
SLURM_TEMPLATE = REPO / "experiments" / "launch" / "slurm.sbatch"
EMIT_FORMATS = ("commands", "slurm", "tpu")


@dataclasses.dataclass(frozen=True)
class Point:
    """One run: its directory name, the config overrides (grid values, then --set values), and its own
    config file where it differs from the sweep's (a published table's rows, say)."""

    name: str
    overrides: dict[str, str]
    config: str = ""


def parse_assignment(text: str) -> tuple[str, str]:
    """'FIELD=VALUE' -> (FIELD, VALUE), or an error that shows the expected form."""
    field, separator, value = text.partition("=")
    if not separator or not field:
        raise ValueError(f"expected FIELD=VALUE, got {text!r}")
    return field, value


def parse_grid(specs: list[str]) -> dict[str, list[str]]:
    """['model=a,b', 'seed=0,1'] -> {'model': ['a', 'b'], 'seed': ['0', '1']} (order kept)."""
    grid = {}
    for spec in specs:
        field, values = parse_assignment(spec)
        if field in grid:
            raise ValueError(f"--grid {field} given twice; put all its values in one --grid {field}=v1,v2")
        grid[field] = [value for value in values.split(",") if value]
        if not grid[field]:
            raise ValueError(f"--grid {field} has no values; use --grid {field}=v1,v2,...")
    return grid


def point_name(values: dict[str, str]) -> str:
    """A readable directory name such as 'model=cifar_resnet20,seed=0' (path separators replaced)."""
    return ",".join(f"{field}={value}" for field, value in values.items()).replace("/", "_").replace(" ", "_")


def grid_points(grid: dict[str, list[str]], fixed: dict[str, str]) -> list[Point]:
    """Every combination of the grid's values, the last field varying fastest, plus the fixed fields."""
    points = []
    for combination in itertools.product(*grid.values()):
        values = dict(zip(grid, combination, strict=True))
        points.append(Point(point_name(values), {**values, **fixed}))
    return points


def command(config: str, workdir: epath.Path, overrides: dict[str, str], python: str = sys.executable) -> list[str]:
    """The main command that trains one point (``python`` is 'python' in emitted commands)."""
    return [
        python,
        "-m",
        "resnet_jax.main",
        f"--config={config}",
        f"--workdir={workdir}",
        *(f"--config.{field}={value}" for field, value in overrides.items()),
    ]


def check_fields(config_spec: str, fields) -> None:
    """Fail before running anything if the config file does not load or a field is not declared in the
    config schema (with the closest names)."""
    from resnet_jax import config_schema
    from resnet_jax.config_file import load_config

    load_config(config_spec)
    known = config_schema.field_names()
    for field in fields:
        if field not in known:
            close = difflib.get_close_matches(field, known, n=3)
            hint = f"; did you mean {' or '.join(close)}?" if close else ""
            raise ValueError(f"{field!r} is not a field of {config_spec}{hint}")


def check_config_arguments(arguments: list[str]) -> None:
    """Raise ValueError unless the ``--config=SPEC`` and ``--config.FIELD=VALUE`` words of ``arguments`` give a
    config that ``resnet_jax.main`` accepts (other words, such as ``--workdir``, are left to the caller)."""
    from absl import flags
    from ml_collections import config_flags

    from resnet_jax import config_schema
    from resnet_jax.errors import ConfigError

    argv = ["check", *(word for word in arguments if word.startswith("--config"))]
    flag_values = flags.FlagValues()  # parsed as resnet_jax.main parses its command line
    config_flags.DEFINE_config_file("config", None, "the run's config", flag_values=flag_values, sys_argv=argv)
    try:
        flag_values(argv)
        config_schema.validate(flag_values.config)
    except (flags.Error, ConfigError) as error:
        raise ValueError(str(error)) from None
    except AttributeError as error:  # a --config.FIELD the config does not have
        detail = " ".join(str(error).encode().decode("unicode_escape").replace("'", "").strip('"').split())
        raise ValueError(f"the config has no field {detail}".replace(" Did you", ". Did you")) from None


def check_main_command(argv: list[str]) -> None:
    """Raise ValueError unless ``argv`` is ``python -m resnet_jax.main --workdir=... --config=...`` with a config
    that the command accepts (a launcher's command, checked before a cluster runs it)."""
    if argv[1:3] != ["-m", "resnet_jax.main"]:
        raise ValueError(f"not the main command (python -m resnet_jax.main ...): {shlex.join(argv)}")
    if not any(word.startswith("--workdir=") for word in argv):
        raise ValueError(f"the main command has no --workdir=DIR: {shlex.join(argv)}")
    check_config_arguments(argv[3:])


def check_points(config_spec: str, points: list[Point]) -> None:
    """Fail before running anything if any point's config would be refused: a field that is not declared,
    or a value that the command line would reject (type, range, a model that cannot take it)."""
    fields_by_spec: dict[str, dict[str, None]] = {}  # each config file's overridden fields, in order
    for point in points:
        fields_by_spec.setdefault(point.config or config_spec, {}).update(dict.fromkeys(point.overrides))
    for spec, fields in fields_by_spec.items():
        check_fields(spec, fields)
    for point in points:
        spec = point.config or config_spec
        try:
            check_config_arguments(command(spec, epath.Path(point.name), point.overrides))
        except ValueError as error:
            raise ValueError(f"point {point.name} of {spec}: {error}") from None


def _run_point(argv: list[str], stop_signals: list[int], launched: bool = False) -> int:
    """Run one point; SIGINT/SIGTERM reach it (it checkpoints and exits) and stop the sweep after it. Under a
    ``launched`` point (srun), the scheduler signals the point's tasks itself: a SIGTERM passed on to srun
    would make it kill them before they save."""
    child = subprocess.Popen(argv)

    def forward(signum, frame):
        del frame
        stop_signals.append(signum)
        if signum == signal.SIGTERM and not launched:  # Ctrl-C reaches the child's process group by itself
            child.send_signal(signum)

    previous = {number: signal.signal(number, forward) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        return child.wait()
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def check_started_points(sweep_dir: epath.Path, points: list[Point]) -> None:
    """Refuse to skip or resume a point that was started with other overrides (a changed --set, say)."""
    conflicts = []
    for point in points:
        record = sweep_dir / point.name / POINT_RECORD
        if record.exists() and (before := json.loads(record.read_text())) != point.overrides:
            changed = sorted(set(before.items()) ^ set(point.overrides.items()))
            fields = sorted({field for field, _ in changed})
            details = ", ".join(f"{field}: {before.get(field)} -> {point.overrides.get(field)}" for field in fields)
            conflicts.append(f"{point.name} ({details})")
    if conflicts:
        raise ValueError(
            "these points were started with other settings, so their results or checkpoints do not match what "
            f"you asked for: {'; '.join(conflicts)}. Use a new --workdir, or delete those point directories."
        )


def run_sweep(
    config: str, sweep_dir: epath.Path, points: list[Point], log=print, launcher: tuple[str, ...] = ()
) -> dict[str, list[str]]:
    """Run the unfinished points in order (each with its own config, or ``config``; its command after
    ``launcher``); returns {'finished', 'skipped', 'failed', 'stopped'} names."""
    outcome = {"finished": [], "skipped": [], "failed": [], "stopped": []}
    durations, stop_signals = [], []
    for index, point in enumerate(points, 1):
        workdir = sweep_dir / point.name
        if (workdir / "results.json").exists():
            outcome["skipped"].append(point.name)
            log(f"[{index}/{len(points)}] {point.name}: finished before, skipped")
            continue
        remaining = len(points) - index + 1
        eta = f", about {sum(durations) / len(durations) * remaining / 60:.1f} min left" if durations else ""
        log(f"[{index}/{len(points)}] {point.name}: running{eta}")
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / POINT_RECORD).write_text(json.dumps(point.overrides, indent=2) + "\n")
        start = time.time()
        argv = [*launcher, *command(point.config or config, workdir, point.overrides)]
        return_code = _run_point(argv, stop_signals, launched=bool(launcher))
        durations.append(time.time() - start)
        if (workdir / "results.json").exists():
            outcome["finished"].append(point.name)
        elif return_code == ExitCode.RESUME:
            outcome["stopped"].append(point.name)
            log(f"[{index}/{len(points)}] {point.name}: stopped after saving its checkpoint; re-run the same command")
            break
        else:
            outcome["failed"].append(point.name)
            log(f"[{index}/{len(points)}] {point.name}: failed with exit code {return_code}; see its log above")
        if stop_signals:
            log("Stopped by a signal. Re-run the same command to go on.")
            break
    return outcome


def exit_code(outcome: dict[str, list[str]]) -> ExitCode:
    """The main command's code for a sweep's outcome: a failed point fails it, a stopped one asks to resume."""
    if outcome["failed"]:
        return ExitCode.FAILED
    return ExitCode.RESUME if outcome["stopped"] else ExitCode.FINISHED


@dataclasses.dataclass(frozen=True)
class SlurmResources:
    """What each array task of ``--emit slurm`` asks for: nodes, GPUs and tasks per node, CPUs per task, time."""

    nodes: int = 1
    gpus_per_node: int = 1
    tasks_per_node: int | None = None  # one per GPU by default (one on a partition without GPUs)
    cpus_per_task: int = 8
    time: str = "24:00:00"

    def directives(self) -> dict[str, str | None]:
        """The template's #SBATCH options and their values (None: delete the line)."""
        tasks = self.tasks_per_node or max(self.gpus_per_node, 1)
        return {
            "nodes": str(self.nodes),
            "ntasks-per-node": str(tasks),
            "gpus-per-node": str(self.gpus_per_node) if self.gpus_per_node else None,
            "cpus-per-task": str(self.cpus_per_task),
            "time": self.time,
        }


def slurm_array_script(sweep_arguments: list[str], num_points: int, resources: SlurmResources) -> str:
    """The sbatch template as one array job over the grid: task i runs point i with this script, its tasks
    under the template's srun, each array task asking for ``resources``."""
    script = SLURM_TEMPLATE.read_text()
    quoted = " ".join(f"'{word}'" if "," in word and "'" not in word else shlex.quote(word) for word in sweep_arguments)
    run = (
        f"RUN=(python experiments/sweep.py {quoted}"  # a comma unquoted in an array reads as a typo (SC2054)
        ' --point "${SLURM_ARRAY_TASK_ID}" --launcher "${SRUN[*]}")'
    )
    script, replaced = re.subn(r"^RUN=\(.*\)$", lambda _: run, script, count=1, flags=re.MULTILINE)
    launch, launched = re.subn(r'^"\$\{SRUN\[@\]\}" ', "", script, count=1, flags=re.MULTILINE)
    array = f"#SBATCH --array=0-{num_points - 1}      # one task per grid point; each task gets the nodes below"
    script, named = re.subn(
        r"^#SBATCH --job-name=.*$", f"#SBATCH --job-name=resnet_jax_sweep\n{array}", launch, count=1, flags=re.M
    )
    for option, value in resources.directives().items():
        def directive(match: re.Match, option=option, value=value) -> str:
            return "" if value is None else f"#SBATCH --{option}={value}{match[1]}\n"

        script, found = re.subn(rf"^#SBATCH --{option}=\S*(.*)\n", directive, script, flags=re.MULTILINE)
        if not found:
            raise RuntimeError(f"{SLURM_TEMPLATE} lost its #SBATCH --{option} line")
    if not (replaced and launched and named):
        raise RuntimeError(f"{SLURM_TEMPLATE} lost its RUN=(...), srun or --job-name line")
    return script.replace("slurm-%x-%j.out", "slurm-%x-%A_%a.out")


def tpu_command(tpu: str, zone: str, sweep_arguments: list[str], log_name: str) -> str:
    """The gcloud line that starts the sweep on every worker of TPU VM ``tpu`` (the repository in ~/resnet_jax),
    detached from the ssh session (``nohup``: the run keeps going when it closes) with its output in
    ``~/resnet_jax/logs/LOG_NAME.log`` on each worker. The points run one after another, as the sweep runs them."""
    sweep_command = shlex.join(["python", "experiments/sweep.py", *sweep_arguments])
    remote = f"cd resnet_jax && mkdir -p logs && nohup {sweep_command} > logs/{log_name}.log 2>&1 < /dev/null &"
    return shlex.join(
        ["gcloud", "compute", "tpus", "tpu-vm", "ssh", tpu, f"--zone={zone}", "--worker=all", f"--command={remote}"]
    )


def emit(args: argparse.Namespace, sweep_dir: epath.Path, points: list[Point], sweep_arguments: list[str]) -> None:
    """Print the sweep for a scheduler, in the format ``--emit`` names."""
    if args.emit == "slurm":
        resources = SlurmResources(args.nodes, args.gpus_per_node, args.tasks_per_node, args.cpus_per_task, args.time)
        print(slurm_array_script(sweep_arguments, len(points), resources), end="")
    elif args.emit == "tpu":
        log_name = sweep_dir.name or "sweep"
        print(tpu_command(args.tpu, args.zone, sweep_arguments, log_name))
        follow = ["gcloud", "compute", "tpus", "tpu-vm", "ssh", args.tpu, f"--zone={args.zone}", "--worker=0"]
        print(f"# worker 0's log: {shlex.join([*follow, f'--command=tail -f resnet_jax/logs/{log_name}.log'])}")
    else:
        for point in points:
            print(shlex.join(command(args.config, sweep_dir / point.name, point.overrides, python="python")))


def main(argv: list[str] | None = None) -> int:
    """Parse the command line; run the sweep (or print it for a scheduler). Returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="configs/FILE.py[:ARG]")
    parser.add_argument("--workdir", required=True, help="the sweep directory (local or gs://); one workdir per point")
    parser.add_argument("--grid", action="append", default=[], metavar="FIELD=v1,v2", help="a field to vary")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="override for every point")
    parser.add_argument("--point", type=int, metavar="I", help="run grid point I only (0-based; a SLURM array task)")
    parser.add_argument("--launcher", default="", help="prefix of each point's command, e.g. 'srun'")
    parser.add_argument(
        "--emit", nargs="?", const="commands", choices=EMIT_FORMATS, help="print the sweep for a scheduler instead"
    )
    parser.add_argument("--tpu", help="--emit tpu: the TPU VM or pod slice's name")
    parser.add_argument("--zone", help="--emit tpu: its zone")
    slurm = SlurmResources()
    parser.add_argument("--nodes", type=int, default=slurm.nodes, help="--emit slurm: nodes per point")
    parser.add_argument(
        "--gpus-per-node", type=int, default=slurm.gpus_per_node, help="--emit slurm: 0 on a partition without GPUs"
    )
    parser.add_argument("--tasks-per-node", type=int, help="--emit slurm: processes per node (default: one per GPU)")
    parser.add_argument("--cpus-per-task", type=int, default=slurm.cpus_per_task, help="--emit slurm: input threads")
    parser.add_argument("--time", default=slurm.time, help="--emit slurm: each array task's time limit")
    args = parser.parse_args(argv)
    sweep_dir = epath.Path(args.workdir)
    try:
        paths.require_filesystem(args.workdir, f"--workdir {args.workdir}")
        grid = parse_grid(args.grid)
        fixed = dict(parse_assignment(text) for text in args.set)
        if overlap := set(grid) & set(fixed):
            raise ValueError(f"{sorted(overlap)} both in --grid and --set; keep each field in one of them")
        if args.emit == "tpu" and not (args.tpu and args.zone):
            raise ValueError("--emit tpu needs --tpu NAME and --zone ZONE (as `gcloud compute tpus tpu-vm list` shows)")
        points = grid_points(grid, fixed)
        if args.point is not None and not 0 <= args.point < len(points):
            raise ValueError(f"--point {args.point} is not a grid point: this grid has points 0 to {len(points) - 1}")
        check_points(args.config, points)
        if not args.emit:
            check_started_points(sweep_dir, points)
    except (ValueError, UserError) as error:
        parser.error(str(error))
    if args.emit:
        sweep_arguments = ["--config", args.config, "--workdir", args.workdir]
        sweep_arguments += [word for text in args.grid for word in ("--grid", text)]
        sweep_arguments += [word for text in args.set for word in ("--set", text)]
        emit(args, sweep_dir, points, sweep_arguments)
        return 0
    sweep_dir.mkdir(parents=True, exist_ok=True)
    record = {"config": args.config, "grid": grid, "set": fixed, "points": [point.name for point in points]}
    (sweep_dir / SWEEP_RECORD).write_text(json.dumps(record, indent=2) + "\n")
    chosen = points if args.point is None else [points[args.point]]
    outcome = run_sweep(args.config, sweep_dir, chosen, launcher=tuple(shlex.split(args.launcher)))
    print(json.dumps({key: len(names) for key, names in outcome.items()}))
    if outcome["failed"]:
        print(f"failed points: {', '.join(outcome['failed'])}", file=sys.stderr)
    return exit_code(outcome)


if __name__ == "__main__":
    sys.exit(main())
