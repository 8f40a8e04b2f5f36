"""Summarise a sweep: one row per grid point without the seed, test error as mean +- std over seeds.

    python experiments/report.py SWEEP_DIR [--format markdown|csv] [--published TABLE]

Reads every workdir under SWEEP_DIR (config.json, results.json, metrics.jsonl). Runs are grouped by
the sweep's grid fields (from ``sweep.json``; without it, by every config field that differs between
runs), the seed left out. Each row gives the varied fields, n (finished runs), the final test error
in percent as mean +- std (sample std, n-1), the last logged train loss (metrics.jsonl), parameters
and mean wall time. ``--published TABLE`` adds the paper's number for the row's model and dataset,
and our difference from it.
"""

import argparse
import csv
import io
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root: configs, experiments

from experiments import runs as runs_lib  # noqa: E402
from experiments import tables  # noqa: E402
from resnet_jax.paths import resolve  # noqa: E402

IGNORED_FIELDS = ("seed",)


def error_statistics(errors: list[float]) -> tuple[float | None, float | None]:
    """(mean, sample standard deviation) of test errors; std is None for fewer than two runs."""
    if not errors:
        return None, None
    return statistics.fmean(errors), statistics.stdev(errors) if len(errors) > 1 else None


def difference(ours: float | None, published: float | None) -> float | None:
    """Our test error minus the paper's, in points; None when either is missing."""
    return None if ours is None or published is None else ours - published


def format_error(mean: float | None, std: float | None) -> str:
    """'6.97 +- 0.16', '6.97' for one run, '' for none."""
    if mean is None:
        return ""
    return f"{mean:.2f}" if std is None else f"{mean:.2f} +- {std:.2f}"


IDENTITY_FIELDS = ("model", "dataset")  # what names the runs when no field tells them apart (one run, say)


def grouping_fields(sweep_dir, runs: list[runs_lib.Run]) -> list[str]:
    """The sweep's grid fields, or every config field that differs between the runs, or when none does the model
    and the dataset; never the seed."""
    record = sweep_dir / "sweep.json"
    if record.exists():
        fields = list(json.loads(record.read_text())["grid"])
    else:
        keys = sorted({key for run in runs for key in run.config})
        fields = [key for key in keys if len({json.dumps(run.config.get(key)) for run in runs}) > 1]
    return [field for field in fields if field not in IGNORED_FIELDS] or list(IDENTITY_FIELDS)


def _value(config: dict, field: str):
    for part in field.split("."):
        config = config.get(part, {}) if isinstance(config, dict) else {}
    return config


def summarise(runs: list[runs_lib.Run], fields: list[str], table: tables.Table | None = None) -> list[dict]:
    """One dict per group of runs that share the values of ``fields``, in first-seen order."""
    groups: dict[tuple, list[runs_lib.Run]] = {}
    for run in runs:
        groups.setdefault(tuple(json.dumps(_value(run.config, field)) for field in fields), []).append(run)
    rows = []
    for key, members in groups.items():
        finished = [run for run in members if run.results is not None]
        mean, std = error_statistics([run.test_error for run in finished])
        row = {field: json.loads(value) for field, value in zip(fields, key, strict=True)}
        row.update(
            n=len(finished),
            unfinished=len(members) - len(finished),
            test_error=mean,
            test_error_std=std,
            final_train_loss=_mean_of(_last(run, "train/loss") for run in finished),
            params=members[0].derived.get("num_params"),
            wall_time_s=_mean_of(run.results.get("wall_time_s") for run in finished),
        )
        if table is not None:
            published = _published(table, members[0].config)
            row.update(published, difference=difference(mean, published["published"]))
        rows.append(row)
    return rows


def _last(run: runs_lib.Run, key: str) -> float | None:
    """The last value of ``key`` in the run's metrics.jsonl, or None."""
    values = run.curve(key)[1]
    return values[-1] if values else None


def _mean_of(values) -> float | None:
    """Mean of the values that are not None; None if there are none."""
    present = [value for value in values if value is not None]
    return statistics.fmean(present) if present else None


def _published(table: tables.Table, config: dict) -> dict:
    """The paper's error for this model, dataset (and augmentation), and its source (paper, table, row)."""
    for row in table.rows:
        if row.matches(config):
            return {"published": row.published, "source": row.source}
    return {"published": None, "source": "not in the table"}


def unmatched_warning(runs: list[runs_lib.Run], table: tables.Table, name: str) -> str | None:
    """A warning naming the runs' (model, dataset) pairs that no row of the published table describes."""
    missing = sorted(
        {
            f"{run.config.get('model')} on {run.config.get('dataset')}"
            for run in runs
            if not any(row.matches(run.config) for row in table.rows)
        }
    )
    if not missing:
        return None
    models = sorted({row.model for row in table.rows})
    datasets = sorted({row.dataset for row in table.rows})
    return (
        f"warning: --published {name} has no row for {', '.join(missing)} (its models: {', '.join(models)}; "
        f"its datasets: {', '.join(datasets)}), so those rows' published column is empty. Pick the table of "
        "these runs' models and dataset."
    )


def to_csv(rows: list[dict]) -> str:
    """Rows of dicts as CSV, every number unrounded."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def render(rows: list[dict], fields: list[str], output_format: str) -> str:
    """The summary as a markdown table or CSV."""
    if output_format == "csv":
        return to_csv(rows)
    has_published = any("published" in row for row in rows)
    header = [*fields, "n", "test error (%)", "final train loss", "params", "wall time (s)"]
    header += ["published (%)", "ours - published"] if has_published else []
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [str(row[field]) for field in fields]
        n = f"{row['n']}" + (f" (+{row['unfinished']} unfinished)" if row["unfinished"] else "")
        cells += [n, format_error(row["test_error"], row["test_error_std"]), _number(row["final_train_loss"], "{:.4f}")]
        cells += [f"{row['params'] / 1e6:.2f}M" if row["params"] else "", _number(row["wall_time_s"], "{:.0f}")]
        if has_published:
            cells += [_number(row["published"], "{:.2f}"), _number(row["difference"], "{:+.2f}")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _number(value: float | None, template: str) -> str:
    return "" if value is None else template.format(value)


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and print the summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep_dir", type=resolve, help="a sweep's directory, local or gs://")
    parser.add_argument("--format", choices=("markdown", "csv"), default="markdown")
    parser.add_argument("--published", choices=list(tables.TABLES), help="compare with this published table")
    args = parser.parse_args(argv)
    runs = runs_lib.find_runs(args.sweep_dir)
    if not runs:
        parser.error(f"no workdirs (folders with config.json) under {args.sweep_dir}")
    fields = grouping_fields(args.sweep_dir, runs)
    table = tables.get_table(args.published) if args.published else None
    warning = table and unmatched_warning(runs, table, args.published)
    if warning:
        print(warning, file=sys.stderr)
    print(render(summarise(runs, fields, table), fields, args.format), end="")


if __name__ == "__main__":
    main()
