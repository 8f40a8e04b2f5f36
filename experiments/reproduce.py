"""Reproduce a published table: print the commands that train every row, or compare finished runs with it.

    python experiments/reproduce.py TABLE --emit [--workdir DIR] [--seeds N] [--set FIELD=VALUE ...]
    python experiments/reproduce.py TABLE --report DIR [--format markdown|csv]
    python experiments/reproduce.py --list

``--emit`` prints one main command per row and seed, with the row's recipe config, into
``DIR/ROW/seed=K`` (DIR defaults to runs/TABLE). Run them anywhere (a scheduler, a pod, this machine),
then ``--report DIR`` prints our test error (mean +- std over seeds) next to the paper's.
"""

import argparse
import shlex
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root: configs, experiments

from experiments import report, sweep, tables  # noqa: E402
from experiments import runs as runs_lib  # noqa: E402


def row_commands(table: tables.Table, workdir: Path, seeds: int, fixed: dict[str, str]) -> list[list[str]]:
    """The main command of every row x seed of ``table``."""
    return [
        sweep.command(row.config, workdir / row.name / f"seed={seed}", {"seed": str(seed), **fixed}, python="python")
        for row in table.rows
        for seed in range(seeds)
    ]


def compare(table: tables.Table, workdir: Path) -> list[dict]:
    """Per row: our finished runs' test error (mean, std, n) next to the published and reference values."""
    rows = []
    for row in table.rows:
        directory = workdir / row.name
        finished = [run for run in runs_lib.find_runs(directory) if run.results] if directory.exists() else []
        mean, std = report.error_statistics([run.test_error for run in finished])
        rows.append(
            {
                "row": row.name,
                "n": len(finished),
                "test_error": mean,
                "test_error_std": std,
                "published": row.published,
                "difference": report.difference(mean, row.published),
                "reference": row.reference,
                "source": row.source,
            }
        )
    return rows


def render(rows: list[dict], output_format: str) -> str:
    """The comparison as a markdown table or CSV."""
    if output_format == "csv":
        return report.to_csv(rows)
    lines = [
        "| row | n | ours: test error (%) | published (%) | ours - published | second reference (%) | source |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        cells = [
            row["row"],
            str(row["n"]),
            report.format_error(row["test_error"], row["test_error_std"]),
            "figure only" if row["published"] is None else f"{row['published']:.2f}",
            "" if row["difference"] is None else f"{row['difference']:+.2f}",
            "" if row["reference"] is None else f"{row['reference']:.2f}",
            row["source"],
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    """Parse the command line; emit commands, print the comparison, or list the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("table", nargs="?", choices=list(tables.TABLES))
    parser.add_argument("--list", action="store_true", help="list the tables and their rows")
    parser.add_argument("--emit", action="store_true", help="print the commands that reproduce the table")
    parser.add_argument("--report", type=Path, metavar="DIR", help="compare the runs in DIR with the table")
    parser.add_argument("--workdir", type=Path, help="--emit: where the runs go (default runs/TABLE)")
    parser.add_argument("--seeds", type=int, help="--emit: seeds per row (default: the table's)")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="override for every run")
    parser.add_argument("--format", choices=("markdown", "csv"), default="markdown")
    args = parser.parse_args(argv)
    if args.list:
        for name, table in tables.TABLES.items():
            print(f"{name}: {table.title} ({', '.join(row.name for row in table.rows)})")
        return
    if args.table is None or args.emit == (args.report is not None):
        parser.error("give TABLE and exactly one of --emit or --report DIR (or --list)")
    table = tables.get_table(args.table)
    if args.emit:
        fixed = dict(sweep.parse_assignment(text) for text in args.set)
        seeds = args.seeds or table.seeds
        for argv_ in row_commands(table, args.workdir or Path("runs") / args.table, seeds, fixed):
            print(shlex.join(argv_))
    else:
        print(render(compare(table, args.report), args.format), end="")


if __name__ == "__main__":
    main()
