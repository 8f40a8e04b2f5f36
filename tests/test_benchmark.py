"""The benchmark command reports its contract keys (it never asserts a time)."""

import json

import pytest

from resnet_jax import benchmark


def test_json_report_has_the_contract_keys(capsys):
    benchmark.main(["--model", "cifar_resnet20", "--batch_size", "8", "--steps", "1", "--image_size", "8", "--json"])
    report = json.loads(capsys.readouterr().out)
    for key in ("examples_per_sec", "step_time_ms", "mfu", "matmul_peak_tflops_per_sec"):
        assert report[key] > 0, key
    assert report["examples_per_sec"] * report["step_time_ms"] / 1000 == pytest.approx(8)
    assert report["devices"].startswith("8 x")


@pytest.mark.parametrize(
    "argv", [["--batch_size", "8"], ["--model", "resnet18", "--input_config", "x.py", "--batch_size", "8"]]
)
def test_exactly_one_mode_is_required(argv, capsys):
    with pytest.raises(SystemExit):
        benchmark.main(argv)
    assert "pass --model NAME" in capsys.readouterr().err
