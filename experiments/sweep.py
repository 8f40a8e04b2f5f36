"""Run every point of a grid over config fields, each in its own workdir; or print the commands.

    python experiments/sweep.py --config configs/FILE.py[:ARG] --workdir SWEEP_DIR \\
        --grid FIELD=v1,v2,... [--grid ...] [--set FIELD=VALUE ...] [--emit]

Points run one after another, each through the main command (``python -m resnet_jax.main``) in
``SWEEP_DIR/FIELD=v,FIELD=w``. A finished point (``results.json`` present) is skipped; an unfinished
one resumes from its checkpoint; a point started with other overrides (a changed ``--set``) is an
error rather than a silent reuse. Ctrl-C or SIGTERM lets the running point checkpoint, then stops the
sweep: re-run the same command to go on. ``--emit`` prints one complete command per point instead,
for a cluster or TPU-pod scheduler. ``SWEEP_DIR/sweep.json`` records the grid for ``report.py``.
"""

import argparse
import dataclasses
import difflib
import itertools
import json
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root: configs, experiments
SWEEP_RECORD = "sweep.json"
POINT_RECORD = "sweep_point.json"  # in each point's workdir: the overrides it was started with


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


def command(config: str, workdir: Path, overrides: dict[str, str], python: str = sys.executable) -> list[str]:
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


def check_points(config_spec: str, points: list[Point]) -> None:
    """Fail before running anything if any point's config would be refused: a field that is not declared,
    or a value that the command line would reject (type, range, a model that cannot take it)."""
    from absl import flags
    from ml_collections import config_flags

    from resnet_jax import config_schema
    from resnet_jax.errors import ConfigError

    fields_by_spec: dict[str, dict[str, None]] = {}  # each config file's overridden fields, in order
    for point in points:
        fields_by_spec.setdefault(point.config or config_spec, {}).update(dict.fromkeys(point.overrides))
    for spec, fields in fields_by_spec.items():
        check_fields(spec, fields)
    for point in points:
        spec = point.config or config_spec
        argv = ["sweep", f"--config={spec}", *(f"--config.{field}={value}" for field, value in point.overrides.items())]
        flag_values = flags.FlagValues()  # parsed as resnet_jax.main parses the point's command
        config_flags.DEFINE_config_file("config", None, "the point's config", flag_values=flag_values, sys_argv=argv)
        try:
            flag_values(argv)
            config_schema.validate(flag_values.config)
        except (flags.Error, ConfigError) as error:
            raise ValueError(f"point {point.name} of {spec}: {error}") from None


def _run_point(argv: list[str], stop_signals: list[int]) -> int:
    """Run one point; SIGINT/SIGTERM reach it (it checkpoints and exits) and stop the sweep after it."""
    child = subprocess.Popen(argv)

    def forward(signum, frame):
        del frame
        stop_signals.append(signum)
        if signum == signal.SIGTERM:  # Ctrl-C reaches the child's process group by itself
            child.send_signal(signum)

    previous = {number: signal.signal(number, forward) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        return child.wait()
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def check_started_points(sweep_dir: Path, points: list[Point]) -> None:
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


def run_sweep(config: str, sweep_dir: Path, points: list[Point], log=print) -> dict[str, list[str]]:
    """Run the unfinished points in order (each with its own config, or ``config``); returns
    {'finished', 'skipped', 'failed', 'stopped'} names."""
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
        return_code = _run_point(command(point.config or config, workdir, point.overrides), stop_signals)
        durations.append(time.time() - start)
        if (workdir / "results.json").exists():
            outcome["finished"].append(point.name)
        elif return_code == 0 or stop_signals:
            outcome["stopped"].append(point.name)
        else:
            outcome["failed"].append(point.name)
            log(f"[{index}/{len(points)}] {point.name}: failed with exit code {return_code}; see its log above")
        if stop_signals:
            log("Stopped; the running point saved a checkpoint. Re-run the same command to go on.")
            break
    return outcome


def main(argv: list[str] | None = None) -> int:
    """Parse the command line; run the sweep (or print its commands). Returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="configs/FILE.py[:ARG]")
    parser.add_argument("--workdir", required=True, help="the sweep directory; one workdir per point inside")
    parser.add_argument("--grid", action="append", default=[], metavar="FIELD=v1,v2", help="a field to vary")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="override for every point")
    parser.add_argument("--emit", action="store_true", help="print the commands instead of running them")
    args = parser.parse_args(argv)
    sweep_dir = Path(args.workdir)
    try:
        grid = parse_grid(args.grid)
        fixed = dict(parse_assignment(text) for text in args.set)
        if overlap := set(grid) & set(fixed):
            raise ValueError(f"{sorted(overlap)} both in --grid and --set; keep each field in one of them")
        points = grid_points(grid, fixed)
        check_points(args.config, points)
        if not args.emit:
            check_started_points(sweep_dir, points)
    except ValueError as error:
        parser.error(str(error))
    if args.emit:
        for point in points:
            print(shlex.join(command(args.config, sweep_dir / point.name, point.overrides, python="python")))
        return 0
    sweep_dir.mkdir(parents=True, exist_ok=True)
    record = {"config": args.config, "grid": grid, "set": fixed, "points": [point.name for point in points]}
    (sweep_dir / SWEEP_RECORD).write_text(json.dumps(record, indent=2) + "\n")
    outcome = run_sweep(args.config, sweep_dir, points)
    print(json.dumps({key: len(names) for key, names in outcome.items()}))
    if outcome["failed"]:
        print(f"failed points: {', '.join(outcome['failed'])}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
