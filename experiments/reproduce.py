"""Reproduce a published table: print the commands that train every row, or compare finished runs with it.

    python experiments/reproduce.py TABLE --emit [--workdir DIR] [--seeds N] [--set FIELD=VALUE ...]
    python experiments/reproduce.py TABLE --run [--workdir DIR] [--seeds N] [--set FIELD=VALUE ...]
    python experiments/reproduce.py TABLE --report DIR [--format markdown|csv] [--json FILE] [--plot FILE.png]
    python experiments/reproduce.py --list

``--emit`` prints one main command per row and seed, with the row's recipe config (and the table's
shared overrides), into ``DIR/ROW/seed=K`` (DIR defaults to runs/TABLE). Run them anywhere (a
scheduler, a pod), or here one after another with ``--run``, as ``sweep.py`` runs a grid: finished
runs are skipped, unfinished ones resume, and Ctrl-C checkpoints the running one and stops. Then
``--report DIR`` prints our test error (mean +- std over seeds)
next to the paper's: at the final step, and the best over the run's evaluations, since papers report
one or the other (the table says which, where its source does). ``--json`` writes every number with
each run's command; ``--plot`` draws training (thin) and test (bold) error against iterations.
"""

import argparse
import json
import shlex
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root: configs, experiments

from experiments import plots, report, sweep, tables  # noqa: E402
from experiments import runs as runs_lib  # noqa: E402


def row_point(table: tables.Table, row: tables.Row, seed: int, fixed: dict[str, str]) -> sweep.Point:
    """The run of ``row`` with ``seed``: named 'ROW/seed=K', with the row's recipe config and the table's overrides."""
    return sweep.Point(f"{row.name}/seed={seed}", {"seed": str(seed), **dict(table.overrides), **fixed}, row.config)


def table_points(table: tables.Table, seeds: int, fixed: dict[str, str]) -> list[sweep.Point]:
    """Every row x seed of ``table``."""
    return [row_point(table, row, seed, fixed) for row in table.rows for seed in range(seeds)]


def point_command(point: sweep.Point, workdir: Path) -> list[str]:
    """The main command that trains ``point`` in ``workdir/ROW/seed=K``, as ``--emit`` prints it."""
    return sweep.command(point.config, workdir / point.name, point.overrides, python="python")


def row_commands(table: tables.Table, workdir: Path, seeds: int, fixed: dict[str, str]) -> list[list[str]]:
    """The main command of every row x seed of ``table``."""
    return [point_command(point, workdir) for point in table_points(table, seeds, fixed)]


def finished_runs(workdir: Path, row: tables.Row) -> list[runs_lib.Run]:
    """The finished runs under ``workdir/ROW``."""
    directory = workdir / row.name
    return [run for run in runs_lib.find_runs(directory) if run.results] if directory.exists() else []


def compare(table: tables.Table, workdir: Path) -> list[dict]:
    """Per row: our finished runs' final and best test error (mean, std, n) next to the published values."""
    rows = []
    for row in table.rows:
        finished = finished_runs(workdir, row)
        mean, std = report.error_statistics([run.test_error for run in finished])
        best, best_std = report.error_statistics([run.best_test_error[0] for run in finished if run.best_test_error])
        train, _ = report.error_statistics([run.final_train_error for run in finished if run.final_train_error])
        rows.append(
            {
                "row": row.name,
                "n": len(finished),
                "test_error": mean,
                "test_error_std": std,
                "best_test_error": best,
                "best_test_error_std": best_std,
                "final_train_error": train,
                "published": row.published,
                "published_std": row.published_std,
                "difference": report.difference(mean, row.published),
                "reference": row.reference,
                "source": row.source,
            }
        )
    return rows


def render(rows: list[dict], output_format: str, measured_at: str) -> str:
    """The comparison as a markdown table or CSV."""
    if output_format == "csv":
        return report.to_csv(rows)
    lines = [
        "| row | n | ours: final test error (%) | ours: best eval (%) | ours: final train error (%) | published (%) "
        "| ours final - published | second reference (%) | source |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        published = report.format_error(row["published"], row["published_std"]) or "none (see source)"
        cells = [
            row["row"],
            str(row["n"]),
            report.format_error(row["test_error"], row["test_error_std"]),
            report.format_error(row["best_test_error"], row["best_test_error_std"]),
            report.format_error(row["final_train_error"], None),
            published,
            "" if row["difference"] is None else f"{row['difference']:+.2f}",
            "" if row["reference"] is None else f"{row['reference']:.2f}",
            row["source"],
        ]
        lines.append("| " + " | ".join(cells) + " |")
    if measured_at:
        lines.append(f"\nPublished numbers measured at: {measured_at}. Ours: the final step, and the best evaluation.")
    return "\n".join(lines) + "\n"


def record(table_name: str, workdir: Path, argv: list[str]) -> dict:
    """Every number of the comparison, with each run's command and curve summary, for experiments/results/."""
    table = tables.get_table(table_name)
    runs = {}
    for row in table.rows:
        runs[row.name] = []
        for run in finished_runs(workdir, row):
            best = run.best_test_error
            runs[row.name].append(
                {
                    "seed": run.config["seed"],
                    "workdir": str(run.workdir),
                    "command": shlex.join(point_command(row_point(table, row, run.config["seed"], {}), workdir)),
                    "steps": run.results["step"],
                    "test_error": run.test_error,
                    "best_test_error": best and best[0],
                    "best_test_error_step": best and best[1],
                    "final_train_error": run.final_train_error,
                    "num_eval_examples": run.results["num_eval_examples"],
                    "wall_time_s": run.results.get("wall_time_s"),
                    "num_params": run.derived.get("num_params"),
                }
            )
    return {
        "table": table_name,
        "title": table.title,
        "published_measured_at": table.measured_at,
        "ours_measured_at": "test_error: final step; best_test_error: best of the run's evaluations",
        "command": shlex.join(["python", "experiments/reproduce.py", *argv]),
        "comparison": compare(table, workdir),
        "runs": runs,
    }


def plot(table: tables.Table, workdir: Path, path: Path) -> None:
    """Training and test error curves of every row's runs, one panel per ``row.panel``."""
    panels: dict[str, list] = {}
    for row in table.rows:
        label = row.name.removeprefix(f"{row.dataset}_")
        panels.setdefault(row.panel, []).append((label, finished_runs(workdir, row), row.published))
    plots.learning_curves(panels, path, table.title)


def run(table: tables.Table, workdir: Path, seeds: int, fixed: dict[str, str]) -> int:
    """Train every row x seed here, one after another, as sweep.py runs a grid; returns the exit code."""
    points = table_points(table, seeds, fixed)
    sweep.check_started_points(workdir, points)
    outcome = sweep.run_sweep("", workdir, points)
    print(json.dumps({key: len(names) for key, names in outcome.items()}))
    return sweep.exit_code(outcome)


def main(argv: list[str] | None = None) -> int:
    """Parse the command line; emit or run the commands, print the comparison, or list the tables."""
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("table", nargs="?", choices=list(tables.TABLES))
    parser.add_argument("--list", action="store_true", help="list the tables and their rows")
    parser.add_argument("--emit", action="store_true", help="print the commands that reproduce the table")
    parser.add_argument("--run", action="store_true", help="run those commands here, one after another")
    parser.add_argument("--report", type=Path, metavar="DIR", help="compare the runs in DIR with the table")
    parser.add_argument("--workdir", type=Path, help="--emit/--run: where the runs go (default runs/TABLE)")
    parser.add_argument("--seeds", type=int, help="--emit/--run: seeds per row (default: the table's)")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="override for every run")
    parser.add_argument("--format", choices=("markdown", "csv"), default="markdown")
    parser.add_argument("--json", type=Path, metavar="FILE", help="--report: also write every number to FILE")
    parser.add_argument("--plot", type=Path, metavar="FILE.png", help="--report: also draw the learning curves")
    args = parser.parse_args(argv)
    if args.list:
        for name, table in tables.TABLES.items():
            print(f"{name}: {table.title} ({', '.join(row.name for row in table.rows)})")
        return 0
    if args.table is None or [args.emit, args.run, args.report is not None].count(True) != 1:
        parser.error("give TABLE and exactly one of --emit, --run or --report DIR (or --list)")
    table = tables.get_table(args.table)
    if args.report is not None:
        print(render(compare(table, args.report), args.format, table.measured_at), end="")
        if args.json:
            args.json.write_text(json.dumps(record(args.table, args.report, argv), indent=2) + "\n")
        if args.plot:
            plot(table, args.report, args.plot)
        return 0
    workdir, seeds = args.workdir or Path("runs") / args.table, args.seeds or table.seeds
    try:
        fixed = dict(sweep.parse_assignment(text) for text in args.set)
        sweep.check_points("", table_points(table, seeds, fixed))
        if args.run:
            return run(table, workdir, seeds, fixed)
    except ValueError as error:
        parser.error(str(error))
    for argv_ in row_commands(table, workdir, seeds, fixed):
        print(shlex.join(argv_))
    return 0


if __name__ == "__main__":
    sys.exit(main())
