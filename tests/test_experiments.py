"""Sweeps, reports, published tables and notebooks, on a tiny real sweep over the offline digits."""

import csv
import dataclasses
import io
import json
import re
import shlex
import statistics
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from experiments import report as report_script
from experiments import reproduce, tables
from experiments import sweep as sweep_script
from resnet_jax.config_file import load_config
from resnet_jax.data import prepare
from resnet_jax.errors import ExitCode

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.xdist_group("sweep")  # one worker runs the sweep once
ROOT = Path(__file__).resolve().parents[1]
MODELS = ("cifar_resnet20", "cifar_plain20")
DIGITS_RESNET20_PARAMETERS = 269_722 - 2 * 3 * 3 * 16  # He et al.'s ResNet-20 on 1-channel images: 2 fewer in channels


def _script(name: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "experiments" / name), *args], cwd=ROOT, capture_output=True, text=True, timeout=900
    )


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """2 models x 2 seeds, 3 steps each, on digits: (sweep arguments, sweep directory, first run's stdout)."""
    data_dir = tmp_path_factory.mktemp("tfds")
    prepare.prepare("digits", str(data_dir))
    sweep_dir = tmp_path_factory.mktemp("sweep")
    arguments = ["--config", "configs/digits.py", "--workdir", str(sweep_dir)]
    arguments += ["--grid", f"model={','.join(MODELS)}", "--grid", "seed=0,1"]
    for field, value in dict(
        num_train_steps=3, num_epochs=0, warmup_epochs=0, data_dir=data_dir, log_every_steps=1, eval_every_steps=3
    ).items():
        arguments += ["--set", f"{field}={value}"]
    completed = _script("sweep.py", *arguments)
    assert completed.returncode == 0, completed.stderr[-3000:]
    return arguments, sweep_dir, completed.stdout


@pytest.mark.slow  # the sweep fixture trains 4 points
def test_a_tiny_sweep_writes_one_result_per_point_in_readable_directories(sweep):
    _, sweep_dir, stdout = sweep
    expected = {f"model={model},seed={seed}" for model in MODELS for seed in (0, 1)}
    assert {path.parent.name for path in sweep_dir.glob("*/results.json")} == expected
    assert json.loads(stdout.splitlines()[-1]) == {"finished": 4, "skipped": 0, "failed": 0, "stopped": 0}
    for name in expected:
        record = json.loads((sweep_dir / name / "config.json").read_text())
        assert f"model={record['model']},seed={record['seed']}" == name and record["derived"]["num_train_steps"] == 3


@pytest.mark.slow  # the sweep fixture trains 4 points
def test_a_second_invocation_skips_every_finished_point(sweep, capsys):
    arguments, sweep_dir, _ = sweep
    before = {path: path.stat().st_mtime_ns for path in sweep_dir.glob("*/results.json")}
    assert sweep_script.main(arguments) == 0  # in-process: the fixture ran the real script
    summary = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert summary == {"finished": 0, "skipped": 4, "failed": 0, "stopped": 0}
    assert {path: path.stat().st_mtime_ns for path in before} == before  # nothing was re-run


@pytest.mark.slow  # the sweep fixture trains 4 points
def test_a_changed_set_is_refused_rather_than_reusing_old_points(sweep, capsys):
    arguments, sweep_dir, _ = sweep
    changed = [argument.replace("num_train_steps=3", "num_train_steps=4") for argument in arguments]
    before = {path: path.stat().st_mtime_ns for path in sweep_dir.glob("*/results.json")}
    with pytest.raises(SystemExit) as exit_info:
        sweep_script.main(changed)
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert "started with other settings" in error and "num_train_steps: 3 -> 4" in error
    assert error.count("num_train_steps: 3 -> 4") == 4  # every point named
    assert {path: path.stat().st_mtime_ns for path in before} == before


def test_a_misspelt_field_is_refused_with_the_closest_names(capsys, tmp_path):
    with pytest.raises(SystemExit):
        sweep_script.main(["--config", "configs/digits.py", "--workdir", str(tmp_path), "--grid", "lerning_rate=0.1"])
    assert "'lerning_rate' is not a field of configs/digits.py; did you mean learning_rate" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())  # nothing ran


@pytest.mark.parametrize(
    "arguments, words",
    [
        (["--grid", "learning_rate=0.1,abc"], ["point learning_rate=abc of configs/digits.py", "'abc'"]),
        (["--grid", "block_dropout=0.1,1.5"], ["point block_dropout=1.5", "block_dropout must be in [0, 1)"]),
        (
            ["--grid", f"model={','.join(MODELS)}", "--set", "gate=exclusive"],
            ["point model=cifar_plain20", "cannot take the options", "shortcut='none' has none"],
        ),
    ],
)
def test_a_value_that_the_command_would_refuse_stops_the_sweep_before_any_point(capsys, tmp_path, arguments, words):
    """Every point's config is parsed and checked as resnet_jax.main would: a bad value in the last point
    costs no run of the first."""
    with pytest.raises(SystemExit) as exit_info:
        sweep_script.main(["--config", "configs/digits.py", "--workdir", str(tmp_path), *arguments])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert all(word in error for word in words), error
    assert not list(tmp_path.iterdir())


def test_reproduce_checks_every_row_with_the_overrides_before_running(capsys, tmp_path):
    """A --set that one row of a table cannot take stops --run before the first row."""
    with pytest.raises(SystemExit):
        reproduce.main(["he2016b_shortcuts", "--run", "--workdir", str(tmp_path), "--set", "model=cifar_plain20"])
    assert "point original/seed=0" not in (error := capsys.readouterr().err)
    assert "cannot take the options" in error and "configs/ablations.py:" in error
    assert not list(tmp_path.iterdir())


@pytest.mark.slow  # the sweep fixture trains 4 points
def test_the_report_gives_mean_std_and_n_over_seeds(sweep, capsys):
    _, sweep_dir, _ = sweep
    completed = _script("report.py", str(sweep_dir), "--format", "csv")
    assert completed.returncode == 0, completed.stderr[-3000:]
    rows = {row["model"]: row for row in csv.DictReader(io.StringIO(completed.stdout))}
    assert set(rows) == set(MODELS)
    for model, row in rows.items():
        errors = [
            100 * (1 - json.loads((sweep_dir / f"model={model},seed={seed}" / "results.json").read_text())["eval/top1"])
            for seed in (0, 1)
        ]
        assert int(row["n"]) == 2
        assert float(row["test_error"]) == pytest.approx(statistics.fmean(errors))
        assert float(row["test_error_std"]) == pytest.approx(statistics.stdev(errors))
        assert int(row["params"]) == DIGITS_RESNET20_PARAMETERS  # a plain net (option A) has the same count
        last_losses = [
            [json.loads(line) for line in (sweep_dir / f"model={model},seed={seed}" / "metrics.jsonl").open()]
            for seed in (0, 1)
        ]
        final = [next(line["train/loss"] for line in reversed(lines) if "train/loss" in line) for lines in last_losses]
        assert float(row["final_train_loss"]) == pytest.approx(statistics.fmean(final))
    report_script.main([str(sweep_dir)])  # in-process; the CSV above came from the real script
    markdown = capsys.readouterr().out
    assert markdown.startswith("| model | n | test error (%) |") and markdown.count("\n") == 2 + len(MODELS)


@pytest.mark.slow  # the sweep fixture trains 4 points
def test_emitted_commands_are_runnable_and_reproduce_the_point(sweep, tmp_path, capsys):
    arguments, sweep_dir, _ = sweep
    assert sweep_script.main([*arguments, "--emit"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4 and all(
        line.startswith("python -m resnet_jax.main --config=configs/digits.py") for line in lines
    )
    argv = shlex.split(lines[0])
    point = next(arg for arg in argv if arg.startswith("--workdir=")).split("=", 1)[1]
    argv = [
        sys.executable if arg == "python" else f"--workdir={tmp_path}" if arg.startswith("--workdir=") else arg
        for arg in argv
    ]
    rerun = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    ours, swept = (json.loads((Path(d) / "results.json").read_text()) for d in (tmp_path, point))
    for key in ("step", "eval/top1", "eval/loss", "num_eval_examples"):
        assert ours[key] == swept[key], key


def test_emit_slurm_asks_each_array_task_for_the_sweeps_own_resources(capsys):
    """The template's #SBATCH lines as the flags say (the job itself runs on a real cluster in test_slurm)."""
    arguments = ["--config", "configs/digits.py", "--workdir", "out", "--grid", "seed=0,1,2", "--emit", "slurm"]
    expected = {
        (): {"nodes": "1", "ntasks-per-node": "1", "gpus-per-node": "1", "cpus-per-task": "8", "time": "24:00:00"},
        ("--nodes", "4", "--gpus-per-node", "8", "--cpus-per-task", "12", "--time", "2:00:00"): {
            "nodes": "4", "ntasks-per-node": "8", "gpus-per-node": "8", "cpus-per-task": "12", "time": "2:00:00"
        },
        ("--gpus-per-node", "0", "--tasks-per-node", "4", "--cpus-per-task", "2"): {
            "nodes": "1", "ntasks-per-node": "4", "cpus-per-task": "2", "time": "24:00:00"
        },
    }
    for flags, wanted in expected.items():
        assert sweep_script.main([*arguments, *flags]) == 0
        script = capsys.readouterr().out
        directives = dict(re.findall(r"^#SBATCH --([\w-]+)=?(\S*)", script, flags=re.MULTILINE))
        assert directives.pop("array") == "0-2" and directives.pop("requeue") == ""
        assert {key: directives.get(key) for key in (*wanted, "gpus-per-node")} == {"gpus-per-node": None, **wanted}
        run = re.search(r"^RUN=\((.*)\)$", script, flags=re.MULTILINE).group(1)
        sweep_command = "python experiments/sweep.py --config configs/digits.py --workdir out --grid 'seed=0,1,2'"
        assert run.startswith(sweep_command)
        assert '--point "${SLURM_ARRAY_TASK_ID}" --launcher "${SRUN[*]}"' in run
        assert re.search(r'^"\$\{RUN\[@\]\}" &$', script, flags=re.MULTILINE)  # srun runs inside the sweep, per point


def test_emit_tpu_prints_the_gcloud_line_that_starts_the_sweep_on_every_worker_detached_with_a_log(capsys):
    arguments = ["--config", "configs/digits.py", "--workdir", "gs://bucket/sweep", "--grid", "seed=0,1"]
    assert sweep_script.main([*arguments, "--emit", "tpu", "--tpu", "pod-a", "--zone", "us-central2-b"]) == 0
    start, follow = capsys.readouterr().out.splitlines()
    words = shlex.split(start)
    assert words[:8] == ["gcloud", "compute", "tpus", "tpu-vm", "ssh", "pod-a", "--zone=us-central2-b", "--worker=all"]
    remote = words[8].removeprefix("--command=")
    # The ssh session may close: nohup keeps SIGHUP away from the sweep, which runs the points one after another.
    assert remote == (
        "cd resnet_jax && mkdir -p logs && nohup python experiments/sweep.py --config configs/digits.py "
        "--workdir gs://bucket/sweep --grid seed=0,1 > logs/sweep.log 2>&1 < /dev/null &"
    )
    assert follow.startswith("# worker 0's log: gcloud compute tpus tpu-vm ssh pod-a --zone=us-central2-b --worker=0")
    assert follow.endswith("'--command=tail -f resnet_jax/logs/sweep.log'")


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--emit", "tpu"], "--emit tpu needs --tpu NAME and --zone ZONE"),
        (["--point", "2"], "--point 2 is not a grid point: this grid has points 0 to 1"),
    ],
)
def test_a_cluster_option_without_what_it_needs_is_refused(capsys, tmp_path, arguments, message):
    grid = ["--grid", "seed=0,1"]
    with pytest.raises(SystemExit):
        sweep_script.main(["--config", "configs/digits.py", "--workdir", str(tmp_path), *grid, *arguments])
    assert message in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("name", list(tables.TABLES))
def test_reproduce_emits_every_row_with_its_recipe(name, capsys):
    table = tables.TABLES[name]
    reproduce.main([name, "--emit", "--seeds", "2", "--workdir", "out"])
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 * len(table.rows)
    for row in table.rows:
        mine = [line for line in lines if f"--workdir=out/{row.name}/seed=" in line]
        assert len(mine) == 2 and all(f"--config={row.config}" in line for line in mine)
        config = load_config(row.config)  # the recipe exists and trains the row's network on its dataset
        assert row.matches(config.to_dict()), row.name
        others = [other.name for other in table.rows if other is not row and other.matches(config.to_dict())]
        assert not others, (row.name, others)  # a run counts for its own row only: variants told apart


def test_published_numbers_live_only_in_the_tables():
    """No config states a published number: each names its table (``experiments/tables``) instead."""
    numbers = {f"{row.published:.2f}" for table in tables.TABLES.values() for row in table.rows if row.published}
    for path in sorted((REPO / "configs").glob("*.py")):
        text = path.read_text()
        found = sorted(number for number in numbers if re.search(rf"(?<![\d.]){re.escape(number)}(?!\d)", text))
        assert not found, f"{path.name} states published numbers {found}; refer to its table instead"


def test_the_reference_pages_are_generated_from_the_code_and_current():
    from experiments import reference_pages

    assert reference_pages.stale_pages() == [], "run python experiments/reference_pages.py"
    config = (reference_pages.REFERENCE / "config.md").read_text()
    assert "| `random_erasing.min_aspect_ratio` | `0.3` | in (0, 1] | r1: aspect ratio" in config  # Zhong et al.'s r1
    models = (reference_pages.REFERENCE / "models.md").read_text()
    assert all(f"| `{name}` |" in models for name in ("cifar_resnet20", "efficientnet_b0", "hrnet_w18"))
    published = (reference_pages.REFERENCE / "published.md").read_text()
    assert all(f"## `{name}`" in published for name in tables.TABLES)


def test_a_changed_table_row_or_field_makes_its_reference_page_stale(monkeypatch):
    from experiments import reference_pages
    from resnet_jax.train import settings

    he = tables.TABLES["he2016_cifar10"]
    changed = dataclasses.replace(he, rows=(dataclasses.replace(he.rows[0], published=1.23), *he.rows[1:]))
    monkeypatch.setitem(tables.TABLES, "he2016_cifar10", changed)
    assert "| resnet20 | 1.23 |" in reference_pages.published_page()
    assert reference_pages.stale_pages() == ["published.md"]
    run = settings.SECTIONS[-1]
    renamed = dataclasses.replace(run, declared=(dataclasses.replace(run.fields[0], doc="another meaning"),))
    monkeypatch.setattr(reference_pages.config_schema, "SECTIONS", (*settings.SECTIONS[:-1], renamed))
    assert reference_pages.stale_pages() == ["config.md", "published.md"]


def _fake_run(directory: Path, model: str, seed: int, top1: float) -> None:
    directory.mkdir(parents=True)
    record = {"model": model, "dataset": "cifar10", "seed": seed, "derived": {"num_params": 269_722}}
    (directory / "config.json").write_text(json.dumps(record))
    (directory / "results.json").write_text(json.dumps({"eval/top1": top1, "wall_time_s": 1.0}))


def test_reproduce_report_compares_with_the_paper(tmp_path):
    _fake_run(tmp_path / "resnet20" / "seed=0", "cifar_resnet20", 0, 0.9100)
    _fake_run(tmp_path / "resnet20" / "seed=1", "cifar_resnet20", 1, 0.9150)
    rows = {row["row"]: row for row in reproduce.compare(tables.TABLES["he2016_cifar10"], tmp_path)}
    assert rows["resnet20"]["n"] == 2
    assert rows["resnet20"]["test_error"] == pytest.approx(8.75)  # (9.00 + 8.50) / 2
    assert rows["resnet20"]["difference"] == pytest.approx(0.0)
    assert rows["resnet20"]["test_error_std"] == pytest.approx(0.3536, abs=1e-4)
    assert rows["resnet56"]["n"] == 0 and rows["resnet56"]["difference"] is None
    assert rows["plain20"]["published"] is None


def test_report_with_published_gives_the_difference_in_csv_too(tmp_path, capsys):
    _fake_run(tmp_path / "a", "cifar_resnet20", 0, 0.9100)
    _fake_run(tmp_path / "b", "cifar_resnet20", 1, 0.9150)
    _fake_run(tmp_path / "c", "cifar_resnet56", 0, 0.9300)
    report_script.main([str(tmp_path), "--format", "csv", "--published", "he2016_cifar10"])
    rows = {row["model"]: row for row in csv.DictReader(io.StringIO(capsys.readouterr().out))}
    assert float(rows["cifar_resnet20"]["published"]) == 8.75  # He et al. Table 6
    assert float(rows["cifar_resnet20"]["difference"]) == pytest.approx(0.0)
    assert float(rows["cifar_resnet56"]["difference"]) == pytest.approx(7.0 - 6.97)


def test_a_report_of_runs_that_no_field_tells_apart_names_their_model_and_dataset(tmp_path, capsys):
    _fake_run(tmp_path / "only", "cifar_resnet20", 0, 0.9100)
    report_script.main([str(tmp_path)])
    header, _, row = capsys.readouterr().out.splitlines()
    assert header.startswith("| model | dataset | n |") and row.startswith("| cifar_resnet20 | cifar10 | 1 | 9.00 |")


def test_report_warns_when_the_published_table_is_for_other_models_or_data(tmp_path, capsys):
    _fake_run(tmp_path / "a", "cifar_resnet20", 0, 0.9100)
    report_script.main([str(tmp_path), "--published", "he2016_imagenet"])
    stderr = capsys.readouterr().err
    assert "warning: --published he2016_imagenet has no row for cifar_resnet20 on cifar10" in stderr
    assert "its datasets: imagenet2012" in stderr
    report_script.main([str(tmp_path), "--published", "he2016_cifar10"])
    assert "warning" not in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize("notebook", ["compare_runs.ipynb", "gradient_flow.ipynb"])
def test_notebooks_run_end_to_end_on_the_sweep(sweep, notebook, monkeypatch):
    _, sweep_dir, _ = sweep
    path = ROOT / "notebooks" / notebook
    stored = nbformat.read(path, as_version=4)
    assert all(
        not cell.get("outputs") and cell.get("execution_count") is None
        for cell in stored.cells
        if cell.cell_type == "code"
    )
    monkeypatch.setenv("RESNET_JAX_RUNS", str(sweep_dir))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    executed = NotebookClient(
        stored, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    ).execute()
    printed = "".join(o.get("text", "") for cell in executed.cells for o in cell.get("outputs", []))
    assert "4 runs under" in printed
    if notebook == "compare_runs.ipynb":  # each network's mean test error over its seeds, from results.json
        for family, model in (("plain", "cifar_plain20"), ("resnet", "cifar_resnet20")):
            top1 = [
                json.loads((sweep_dir / f"model={model},seed={s}" / "results.json").read_text())["eval/top1"]
                for s in (0, 1)
            ]
            error = statistics.fmean(100 * (1 - value) for value in top1)
            assert f"{family:>6}-20    test error {error:.2f}% over 2 run(s)" in printed
    else:  # each (depth, seed) twin found, and its first logged gradient norm of the stem
        assert "2 plain/residual pairs: [(20, 0), (20, 1)]" in printed
        first = next(
            line
            for line in (sweep_dir / "model=cifar_plain20,seed=0" / "metrics.jsonl").open()
            if "train/grad_norm/stem" in line
        )
        assert f"'stem': {round(json.loads(first)['train/grad_norm/stem'], 4)}" in printed


def _fake_curves(directory: Path, config: dict, train_top1: list[float], eval_top1: list[float]) -> None:
    """A finished run with a config.json, metrics.jsonl (train every 10 steps, eval every 20) and results.json."""
    directory.mkdir(parents=True)
    (directory / "config.json").write_text(json.dumps({**config, "derived": {"num_params": 1000}}))
    lines = [{"step": 10 * (i + 1), "train/top1": top1} for i, top1 in enumerate(train_top1)]
    lines += [{"step": 20 * (i + 1), "eval/top1": top1} for i, top1 in enumerate(eval_top1)]
    (directory / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    results = {"step": 20 * len(eval_top1), "eval/top1": eval_top1[-1], "num_eval_examples": 100, "wall_time_s": 2.0}
    (directory / "results.json").write_text(json.dumps(results))


def test_reproduce_reports_final_and_best_test_error_and_writes_json_and_a_figure(tmp_path):
    runs, name = tmp_path / "runs", "he2016_degradation_fashion_mnist"
    table = tables.TABLES[name]
    for row in table.rows:
        config = {"model": row.model, "dataset": row.dataset, "seed": 0}
        _fake_curves(runs / row.name / "seed=0", config, [0.5, 0.7, 0.8, 0.9], [0.6, 0.9, 0.85])
    json_path, png_path = tmp_path / "study.json", tmp_path / "study.png"
    reproduce.main([name, "--report", str(runs), "--json", str(json_path), "--plot", str(png_path)])
    record = json.loads(json_path.read_text())
    row = next(row for row in record["comparison"] if row["row"] == "plain56")
    assert row["test_error"] == pytest.approx(15.0) and row["best_test_error"] == pytest.approx(10.0)  # 1 - 0.85, 0.9
    assert row["final_train_error"] == pytest.approx(10.0) and row["published"] is None
    run = record["runs"]["plain56"][0]
    assert run["best_test_error_step"] == 40 and run["steps"] == 60
    emitted = reproduce.row_commands(table, runs, 1, {})
    assert run["command"] == shlex.join(next(argv for argv in emitted if "plain56/" in argv[4]))
    assert "--config.num_epochs=2" in run["command"]  # the study's shared budget
    assert png_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png_path.stat().st_size > 20_000


def test_random_erasing_rows_match_only_runs_with_random_erasing(tmp_path, capsys):
    for name, probability, top1 in (("base", 0.0, 0.95), ("erased", 0.5, 0.96)):
        config = {"model": "cifar_resnet20", "dataset": "fashion_mnist", "seed": 0}
        _fake_curves(tmp_path / name, {**config, "random_erasing": {"probability": probability}}, [0.9], [top1])
    report_script.main([str(tmp_path), "--format", "csv", "--published", "zhong2017"])
    rows = {row["random_erasing"]: row for row in csv.DictReader(io.StringIO(capsys.readouterr().out))}
    published = {float(row["published"]) for row in rows.values()}
    assert published == {4.39, 4.02}  # Zhong et al. Table 1, ResNet-20 on Fashion-MNIST, baseline and + RE


def test_zhong2017_agrees_with_the_authors_readme():
    # github.com/zhunzhong07/Random-Erasing, "Our results" (baseline, + RE), independent of the table's source.
    readme = {
        ("cifar10", "cifar_resnet20"): (7.21, 6.73),
        ("cifar100", "cifar_resnet110"): (23.73, 22.10),
        ("fashion_mnist", "cifar_resnet32"): (4.16, 3.80),
        ("fashion_mnist", "wrn28_10"): (4.01, 3.65),
    }
    rows = tables.TABLES["zhong2017"].rows
    assert len(rows) == 3 * 6 * 2
    for (dataset, model), expected in readme.items():
        found = tuple(row.published for row in rows if (row.dataset, row.model) == (dataset, model))
        assert found == expected


def test_reproduce_run_trains_every_row_once_with_the_emitted_commands(tmp_path, monkeypatch, capsys):
    ran = []

    def fake_run_point(argv, stop_signals, launched=False):  # stands in for training: records, writes results
        ran.append(argv)
        workdir = Path(next(arg for arg in argv if arg.startswith("--workdir=")).split("=", 1)[1])
        (workdir / "results.json").write_text("{}")
        return 0

    monkeypatch.setattr(sweep_script, "_run_point", fake_run_point)
    arguments = ["he2016_degradation_fashion_mnist", "--workdir", str(tmp_path), "--set", "learning_rate=0.05"]
    assert reproduce.main([*arguments, "--run"]) == 0
    reproduce.main([*arguments, "--emit"])
    emitted = [shlex.split(line) for line in capsys.readouterr().out.splitlines() if line.startswith("python ")]
    assert [argv[1:] for argv in ran] == [argv[1:] for argv in emitted] and len(ran) == 4
    assert all(argv[0] == sys.executable for argv in ran)
    assert reproduce.main([*arguments, "--run"]) == 0 and len(ran) == 4  # finished runs are skipped
    assert '"skipped": 4' in capsys.readouterr().out


@pytest.mark.slow
@pytest.mark.extended  # a point resumes like any run (test_resume); skipping finished points: the tests above
def test_a_sweep_stopped_by_sigterm_resumes_its_point_and_goes_on(tmp_path):
    import signal
    import time

    arguments = [
        sys.executable,
        str(ROOT / "experiments" / "sweep.py"),
        "--config=configs/default.py",
        f"--workdir={tmp_path}",
        "--grid=learning_rate=0.05,0.1",
        *(f"--set={field}" for field in ("image_size=8", "num_train_steps=30", "log_every_steps=2")),
        *(f"--set={field}" for field in ("checkpoint_every_steps=5", "synthetic.num_eval_examples=32")),
    ]
    first = tmp_path / "learning_rate=0.05"
    with (tmp_path / "sweep.log").open("w") as log:
        sweep_process = subprocess.Popen(arguments, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 300
        while not ((first / "metrics.jsonl").exists() and '"step": 6,' in (first / "metrics.jsonl").read_text()):
            assert time.monotonic() < deadline and sweep_process.poll() is None, (tmp_path / "sweep.log").read_text()
            time.sleep(0.1)
        sweep_process.send_signal(signal.SIGTERM)
        assert sweep_process.wait(timeout=300) == ExitCode.RESUME, (tmp_path / "sweep.log").read_text()
    assert not (first / "results.json").exists() and not (tmp_path / "learning_rate=0.1").exists()
    assert "learning_rate=0.05: stopped after saving its checkpoint" in (tmp_path / "sweep.log").read_text()
    stopped_at = max(int(path.name) for path in (first / "checkpoints").iterdir() if path.name.isdigit())

    completed = subprocess.run(arguments, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    records = [json.loads(line) for line in (first / "metrics.jsonl").read_text().splitlines()]
    starts = [record["step"] for record in records if "startup/total_s" in record]
    assert starts == [1, stopped_at + 1]  # the point resumed from its checkpoint
    for point in ("learning_rate=0.05", "learning_rate=0.1"):
        assert json.loads((tmp_path / point / "results.json").read_text())["step"] == 30


def test_the_transfer_study_plans_every_cell_and_tabulates_mean_and_std():
    from experiments import transfer

    commands = transfer.planned(Path("/study"), "/data")
    assert len(commands) == 1 + 3 * 5 * 3  # pretraining, then N x strategy x seed
    assert "--config.dataset=folder:/study/folders/pretrain" in commands[0]
    probes = [c for c in commands if "--config=configs/finetune.py:probe" in c]
    assert len(probes) == 9 and all("--config.init_from=/study/runs/pretrain" in c for c in probes)
    assert not any("--config.init_from" in arg for c in commands if "finetune.py:scratch" in " ".join(c) for arg in c)
    cells = {
        f"n{n}_{s}": {"shots_per_class": n, "strategy": s, "test_errors": [10.0, 12.0, 14.0] if n == 10 else []}
        for n in (10, 100, 1000)
        for s in transfer.STRATEGIES
    }
    table = transfer.markdown_table({"cells": cells})
    assert "| (b) linear probe | 12.00 +- 2.00 (n=3) | not run | not run |" in table  # sample std of 10, 12, 14
