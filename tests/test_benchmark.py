"""The benchmark reports its contract keys; its bare-Flax reference builds and trains the same network.

No test asserts a time.
"""

import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from resnet_jax import benchmark
from resnet_jax.benchmark_reference import create_state, minimal_model, train_step
from resnet_jax.models import create_model, get_spec


def test_json_report_has_the_contract_keys_and_mfu_is_the_hand_counted_flops_over_the_peak(capsys):
    benchmark.main(["--model", "cifar_resnet20", "--batch_size", "8", "--steps", "1", "--image_size", "8", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert report["examples_per_sec"] * report["step_time_ms"] / 1000 == pytest.approx(8)
    assert report["devices"].startswith("8 x")
    # cifar_resnet20 at 8x8 by hand: 3x3 convs at 8/4/2 pixels with 16/32/64 filters, free option-A
    # shortcuts, a 64x10 head; training costs 3 x 2 FLOPs per MAC (forward, backward twice as costly).
    macs = 8 * 8 * 16 * 27 + 6 * 8 * 8 * 16 * 144 + 4 * 4 * 32 * 144 + 5 * 4 * 4 * 32 * 288
    macs += 2 * 2 * 64 * 288 + 5 * 2 * 2 * 64 * 576 + 64 * 10
    assert report["gmacs_per_example"] * 1e9 == pytest.approx(macs)
    flops_per_second = 6 * macs * report["examples_per_sec"]
    assert report["model_tflops_per_sec"] == pytest.approx(flops_per_second / 1e12)
    assert report["mfu"] == pytest.approx(flops_per_second / (report["matmul_peak_tflops_per_sec"] * 1e12))


@pytest.mark.parametrize(
    "argv", [["--batch_size", "8"], ["--model", "resnet18", "--input_config", "x.py", "--batch_size", "8"]]
)
def test_exactly_one_mode_is_required(argv, capsys):
    with pytest.raises(SystemExit):
        benchmark.main(argv)
    assert "pass --model NAME" in capsys.readouterr().err


TORCHVISION_RESNET50_PARAMETERS = 25_557_032  # torchvision.models.resnet50(), its model card
CIFAR_RESNET20_PARAMETERS = 269_722  # He et al. 2016 ResNet-20, 10 classes: its "0.27M", BN scale and bias included


def _parameter_count(model, image_size: int) -> int:
    shapes = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), jnp.zeros((1, image_size, image_size, 3))))
    return sum(leaf.size for leaf in jax.tree_util.tree_leaves(shapes["params"]))


@pytest.mark.parametrize(
    "name", ["resnet50", "resnext50_32x4d", "wide_resnet50_2", "cifar_resnet20", "cifar_plain20", "resnext29_8x64d"]
)
def test_the_bare_flax_twin_has_the_registered_networks_parameters(name):
    size = get_spec(name).input_size
    classes = 1000 if size == 224 else 10
    twin = _parameter_count(minimal_model(name, classes, "float32"), size)
    assert twin == _parameter_count(create_model(name, num_classes=classes), size)
    if name == "resnet50":
        assert twin == TORCHVISION_RESNET50_PARAMETERS


@pytest.mark.extended  # the reference step runs in test_reference_mode_times_both_steps_and_reports_their_ratios
def test_the_bare_flax_step_trains():
    rng = np.random.default_rng(0)
    batch = {"image": rng.integers(0, 256, (16, 8, 8, 3), dtype=np.uint8), "label": rng.integers(0, 10, 16)}
    state = create_state(minimal_model("cifar_resnet20", 10, "float32"), optax.sgd(0.05, momentum=0.9), (8, 8, 3))
    step = jax.jit(train_step)
    losses = []
    for _ in range(15):
        state, outputs = step(state, batch)
        losses.append(float(outputs["loss"]))
    assert losses[-1] < 0.5 * losses[0]
    assert int(state.step) == 15


def test_reference_mode_times_both_steps_and_reports_their_ratios(capsys, monkeypatch):
    timed = []

    def fixed_timings(steps_to_time, steps, rounds):  # ours 4 ms, the bare step 2 ms
        timed.append((steps_to_time, steps, rounds))
        return [0.004, 0.002], [1.1, 1.3]

    monkeypatch.setattr(benchmark, "median_seconds_per_step", fixed_timings)
    argv = ["--model", "cifar_resnet20", "--batch_size", "8", "--steps", "5", "--image_size", "8", "--json"]
    benchmark.main([*argv, "--reference", "--rounds", "3"])
    report = json.loads(capsys.readouterr().out)
    ((ours, bare), steps, rounds) = timed[0][0], timed[0][1], timed[0][2]
    assert ours.step is not bare.step and (steps, rounds) == (5, 3)  # two programs, as asked
    assert report["examples_per_sec"] == pytest.approx(2000) and report["step_time_ms"] == pytest.approx(4)
    assert report["reference_examples_per_sec"] == pytest.approx(4000)
    assert report["throughput_vs_reference"] == pytest.approx(0.5)  # ours takes twice as long
    assert (report["step_time_spread"], report["reference_step_time_spread"]) == (1.1, 1.3)
    assert report["bytes_accessed_vs_reference"] == pytest.approx(
        report["bytes_accessed"] / report["reference_bytes_accessed"]
    )


def test_the_benchmark_times_the_loops_own_train_program(monkeypatch, tmp_path):
    """One program: the benchmark and the loop both compile ``program.compile_programs``'s train program (the
    step, its metric sums and the stop ballot), and the benchmark's calls carry the sums from step to step."""
    from resnet_jax.train import loop, program

    built = []

    def recording(*args, **kwargs):
        programs = compile_programs(*args, **kwargs)
        built.append(programs)
        return programs

    compile_programs = program.compile_programs
    monkeypatch.setattr(program, "compile_programs", recording)
    steps = benchmark.compile_steps("cifar_resnet20", 8, "float32", 8, reference=False)
    assert len(built) == 1 and len(steps.ours.arguments) == 4  # state, batch, metric sums, stop votes
    sums_before = steps.ours.arguments[2]
    benchmark.seconds_per_step(steps.ours, 2)
    assert int(steps.ours.arguments[2].loss.count) == 2 * 8 and steps.ours.arguments[2] is not sums_before
    config = loop_config(tmp_path)
    loop.train_and_evaluate(config, tmp_path / "run")
    assert len(built) == 2 and built[1].train_steps(1) is not built[0].train_steps(1)  # the loop compiled its own


def loop_config(tmp_path):
    from configs import default

    config = default.get_config()
    config.update(dict(batch_size=8, image_size=8, num_train_steps=2, eval_every_steps=2, log_every_steps=2))
    config.synthetic.num_eval_examples = 8
    return config


def test_cost_only_compiles_both_steps_and_runs_neither(capsys):
    argv = ["--model", "cifar_resnet20", "--batch_size", "8", "--image_size", "8", "--json"]
    benchmark.main([*argv, "--reference", "--cost_only"])
    report = json.loads(capsys.readouterr().out)
    # A momentum-SGD step reads the float32 parameters and momentum and writes both: at least 4 x 4 bytes each.
    lower_bound = 4 * 4 * CIFAR_RESNET20_PARAMETERS
    assert report["bytes_accessed"] >= lower_bound and report["reference_bytes_accessed"] >= lower_bound
    assert not {"examples_per_sec", "reference_examples_per_sec", "mfu"} & set(report)


def test_reference_mode_refuses_a_pre_activation_network_in_one_line(capsys):
    with pytest.raises(SystemExit):
        benchmark.main(["--model", "wrn16_8", "--batch_size", "8", "--reference"])
    assert "post-activation ResNets, ResNeXts and plain nets only" in capsys.readouterr().err


def test_k_steps_per_dispatch_run_k_steps_a_call_and_are_reported_per_step(capsys, monkeypatch):
    steps_a_call = []

    def one_call_then_fixed_timings(steps_to_time, steps, rounds):  # runs each program once; 4 ms a call
        for compiled in steps_to_time:
            steps_a_call.append(int(compiled.step(*compiled.arguments)[0].step))
        return [0.004] * len(steps_to_time), [1.0] * len(steps_to_time)

    monkeypatch.setattr(benchmark, "median_seconds_per_step", one_call_then_fixed_timings)
    argv = ["--model", "cifar_resnet20", "--batch_size", "8", "--image_size", "8", "--steps", "8", "--json"]
    benchmark.main([*argv, "--steps_per_dispatch", "1", "4"])
    assert steps_a_call == [1, 4]  # the step program, then the one of 4 steps a call
    by_count = json.loads(capsys.readouterr().out)["examples_per_sec_by_steps_per_dispatch"]
    assert by_count == pytest.approx({"1": 8 / 0.004, "4": 8 / 0.001})  # 4 steps in the 4 ms of one call
