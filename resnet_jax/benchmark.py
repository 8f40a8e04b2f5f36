"""Steady-state throughput and MFU of the loop's train program on device-resident synthetic uint8 images.

The program timed is the one the loop runs (``train.program``: the step, its on-device metric sums and
the stop ballot), so the number is what training gets; it needs jax, flax, optax and clu's metrics, no
TensorFlow.

    python -m resnet_jax.benchmark --model resnet50 --batch_size 256 --dtype bfloat16 --steps 50 --json

With ``--input_config`` it measures a config's input pipeline on this host instead (that mode needs
TensorFlow and the prepared dataset):

    python -m resnet_jax.benchmark --input_config configs/cifar10.py:resnet20 --data_dir DIR --batch_size 128

Model FLOPs per example are 3 x 2 x MACs (forward plus a backward twice as costly); MFU divides the
achieved model FLOP/s by a matmul peak measured on the same devices in the same dtype, so it is a
fraction of what this machine really sustains, not of a datasheet number. Compilation is excluded.
"""

import argparse
import dataclasses
import json
import os
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh

from resnet_jax.data.augment.normalisation import Normalisation
from resnet_jax.models import create_model, get_spec, list_models, profile_model
from resnet_jax.runtime.preemption import StopRequest
from resnet_jax.train import feed, program, sharding
from resnet_jax.train.state import create_train_state, init_variables

FLOPS_PER_MAC = 2
TRAIN_FLOPS_FACTOR = 3  # forward + backward (twice the forward)


def time_call(function, *args, repeats: int) -> float:
    """Seconds per call of an already compiled ``function``, waiting on the result."""
    jax.block_until_ready(function(*args))
    start = time.perf_counter()
    for _ in range(repeats):
        result = function(*args)
    jax.block_until_ready(result)
    return (time.perf_counter() - start) / repeats


def matmul_peak_flops(dtype: str, size: int | None = None, repeats: int = 10) -> float:
    """FLOP/s of a large square matmul on every device at once: the peak MFU is measured against."""
    size = size or (1024 if jax.default_backend() == "cpu" else 8192)
    mesh = sharding.make_mesh()
    stacked = jax.device_put(
        jnp.ones((mesh.size, size, size), dtype), jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("data"))
    )
    matmul = jax.jit(lambda a: jnp.einsum("dij,djk->dik", a, a, preferred_element_type=jnp.float32).astype(dtype))
    return mesh.size * 2 * size**3 / time_call(matmul, stacked, repeats=repeats)


@dataclasses.dataclass
class Compiled:
    """A compiled train program, the arguments of its next call, its compile time and XLA's cost analysis.

    ``next_arguments(arguments, outputs)`` gives the call after: the new state (and sums) with the same batch.
    """

    step: Any
    arguments: tuple
    next_arguments: Callable[[tuple, tuple], tuple]
    compile_s: float
    bytes_accessed: float
    flops: float


@dataclasses.dataclass
class Steps:
    """The compiled train programs of one measurement: the loop's and, with ``--reference``, the bare-Flax one."""

    model: Any
    mesh: Mesh
    ours: Compiled
    reference: Compiled | None
    dispatched: dict[int, Compiled] = dataclasses.field(default_factory=dict)  # k steps per call, for each k > 1


def _compile(jitted, arguments: tuple, next_arguments) -> Compiled:
    """Compile ``jitted`` for ``arguments``, timing it and reading XLA's cost analysis."""
    start = time.perf_counter()
    compiled = jitted.lower(*arguments).compile()
    compile_s = time.perf_counter() - start
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost  # a list of one dict in older jax
    return Compiled(compiled, arguments, next_arguments, compile_s, float(cost["bytes accessed"]), float(cost["flops"]))


def compile_steps(
    model_name: str,
    batch_size: int,
    dtype: str,
    image_size: int,
    reference: bool,
    steps_per_dispatch: tuple[int, ...] = (),
) -> Steps:
    """Compile the loop's data-parallel train program for ``model_name`` (``program.compile_programs``: the
    step, its metric sums and the stop ballot, on a batch as sent), the same running k steps a call for each k
    in ``steps_per_dispatch`` (every step on the one batch, as if made on the devices) and, if asked, its
    bare-Flax twin."""
    num_classes = 1000 if get_spec(model_name).input_size == 224 else 10
    model = create_model(model_name, num_classes=num_classes, dtype=dtype)
    mesh = sharding.make_mesh()
    sharding.batch_sizes(batch_size, mesh.size, jax.process_count())
    replicated = sharding.replicated_sharding(mesh)
    tx = optax.sgd(0.1, momentum=0.9)
    shape = (image_size, image_size, 3)
    rng = np.random.default_rng(0)
    batch = sharding.to_global(
        {
            "image": rng.integers(0, 256, (batch_size, *shape), dtype=np.uint8),
            "label": rng.integers(0, num_classes, batch_size).astype(np.int32),
        },
        mesh,
    )

    def create_ours():
        variables = init_variables(model, jax.random.PRNGKey(0), (1, *shape))
        return create_train_state(variables, tx, jax.random.PRNGKey(1))

    state = jax.jit(create_ours, out_shardings=replicated)()
    programs = program.compile_programs(
        program.StepOptions(),
        model,
        tx,
        mesh,
        state,
        (batch_size, *shape),
        Normalisation.imagenet(),
        feed.sent_batches(mesh),
    )

    def next_arguments(arguments, outputs):
        return outputs[0], batch, outputs[1], arguments[3]

    def arguments_from(state):
        return state, batch, programs.empty_train_metrics(), StopRequest().vote(mesh)

    ours = _compile(programs.train_steps(1), arguments_from(state), next_arguments)
    dispatched = {
        steps: _compile(
            programs.train_steps(steps),
            arguments_from(jax.jit(create_ours, out_shardings=replicated)()),  # the first state is donated
            next_arguments,
        )
        for steps in steps_per_dispatch
        if steps > 1
    }
    twin = None
    if reference:
        from resnet_jax import benchmark_reference

        bare = benchmark_reference.minimal_model(model_name, num_classes, dtype)
        bare_step = jax.jit(
            benchmark_reference.train_step,
            in_shardings=(replicated, sharding.batch_sharding(mesh)),
            out_shardings=(replicated, replicated),
            donate_argnums=0,
        )
        bare_state = jax.jit(lambda: benchmark_reference.create_state(bare, tx, shape), out_shardings=replicated)()
        twin = _compile(bare_step, (bare_state, batch), lambda arguments, outputs: (outputs[0], batch))
    return Steps(model, mesh, ours, twin, dispatched)


def seconds_per_step(compiled: Compiled, steps: int) -> float:
    """Seconds per step of a compiled train program over ``steps`` steps; its arguments move on with them."""
    arguments = compiled.arguments
    jax.block_until_ready(arguments)
    start = time.perf_counter()
    for _ in range(steps):
        outputs = compiled.step(*arguments)
        arguments = compiled.next_arguments(arguments, outputs)
    jax.block_until_ready(outputs)
    compiled.arguments = arguments
    return (time.perf_counter() - start) / steps


def median_seconds_per_step(steps_to_time: list[Compiled], steps: int, rounds: int):
    """Median seconds per step of each compiled step, timed in alternating rounds after two warm-up steps
    each, so that a drift in clocks or host load hits every step alike; also each one's spread (max / min)."""
    for compiled in steps_to_time:
        seconds_per_step(compiled, 2)
    times = [[] for _ in steps_to_time]
    for _ in range(rounds):
        for compiled, measured in zip(steps_to_time, times, strict=True):
            measured.append(seconds_per_step(compiled, steps))
    return [float(np.median(measured)) for measured in times], [max(measured) / min(measured) for measured in times]


def benchmark(
    model_name: str,
    batch_size: int,
    dtype: str,
    steps: int,
    image_size: int | None = None,
    reference: bool = False,
    cost_only: bool = False,
    rounds: int = 1,
    steps_per_dispatch: tuple[int, ...] = (),
) -> dict:
    """Measure the jitted data-parallel train step; returns examples/s, step time, MFU, bytes accessed.

    The step time is the median of ``rounds`` timings of ``steps`` steps each, with its spread (max / min).

    ``reference`` also measures a bare-Flax step of the same network (``benchmark_reference``) in this
    run, and ours relative to it; ``cost_only`` compiles and reads XLA's cost analysis without running.
    ``steps_per_dispatch`` also times the program running k steps a call, for each k (about ``steps`` steps
    each), as ``examples_per_sec_by_steps_per_dispatch``.
    """
    image_size = image_size or get_spec(model_name).input_size
    compiled = compile_steps(model_name, batch_size, dtype, image_size, reference, steps_per_dispatch)
    device = jax.devices()[0]
    result = {
        "model": model_name,
        "batch_size": batch_size,
        "image_size": image_size,
        "dtype": dtype,
        "devices": f"{compiled.mesh.size} x {device.device_kind} ({device.platform})",
        "compile_s": compiled.ours.compile_s,
        "bytes_accessed": compiled.ours.bytes_accessed,
        "xla_flops": compiled.ours.flops,
        "jax": jax.__version__,
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
    }
    if reference:
        result["reference_bytes_accessed"] = compiled.reference.bytes_accessed
        result["bytes_accessed_vs_reference"] = compiled.ours.bytes_accessed / compiled.reference.bytes_accessed
    if cost_only:
        return result
    timed = [compiled.ours] + ([compiled.reference] if reference else [])
    (step_time, *reference_time), spreads = median_seconds_per_step(timed, steps, rounds)
    macs = profile_model(compiled.model, image_size).macs
    model_flops = TRAIN_FLOPS_FACTOR * FLOPS_PER_MAC * macs * batch_size / step_time
    peak = matmul_peak_flops(dtype)
    result.update(
        steps=steps,
        rounds=rounds,
        step_time_spread=spreads[0],
        examples_per_sec=batch_size / step_time,
        step_time_ms=1000 * step_time,
        model_tflops_per_sec=model_flops / 1e12,
        matmul_peak_tflops_per_sec=peak / 1e12,
        mfu=model_flops / peak,
        gmacs_per_example=macs / 1e9,
    )
    if steps_per_dispatch:
        per_step = {1: step_time}
        for count, program in compiled.dispatched.items():
            (seconds_per_call,), _ = median_seconds_per_step([program], max(1, steps // count), rounds)
            per_step[count] = seconds_per_call / count
        result["examples_per_sec_by_steps_per_dispatch"] = {
            str(count): batch_size / per_step[count] for count in sorted(set(steps_per_dispatch))
        }
    if reference:
        (reference_time,) = reference_time
        result.update(
            reference_examples_per_sec=batch_size / reference_time,
            reference_step_time_ms=1000 * reference_time,
            reference_step_time_spread=spreads[1],
            throughput_vs_reference=reference_time / step_time,
        )
    return result


def _describe(result: dict) -> str:
    """One human-readable line for a train-step or an input-pipeline result."""
    if "train_examples_per_sec" in result:
        return (
            f"{result['dataset']} input pipeline, batch {result['batch_size']} on {result['host_cpus']} host CPUs: "
            f"train {result['train_examples_per_sec']:.0f} examples/s, eval {result['eval_examples_per_sec']:.0f} "
            "examples/s"
        )
    line = f"{result['model']} batch {result['batch_size']} {result['dtype']} on {result['devices']}: "
    if "step_time_ms" in result:
        line += (
            f"{result['examples_per_sec']:.1f} examples/s, {result['step_time_ms']:.1f} ms/step, "
            f"MFU {100 * result['mfu']:.1f}% (model {result['model_tflops_per_sec']:.3f} TFLOP/s, "
            f"measured matmul peak {result['matmul_peak_tflops_per_sec']:.3f} TFLOP/s), "
        )
    if "examples_per_sec_by_steps_per_dispatch" in result:
        by_count = result["examples_per_sec_by_steps_per_dispatch"].items()
        line += "by steps per dispatch: " + ", ".join(f"{k}: {rate:.1f}" for k, rate in by_count) + " examples/s, "
    line += f"{result['bytes_accessed'] / 1e9:.3f} GB accessed per step (XLA cost analysis)"
    if "reference_bytes_accessed" in result:
        line += f"; against the bare-Flax step: {result['bytes_accessed_vs_reference']:.3f}x its bytes accessed"
    if "reference_examples_per_sec" in result:
        line += (
            f" and {result['throughput_vs_reference']:.3f}x its speed "
            f"(bare Flax: {result['reference_examples_per_sec']:.1f} examples/s)"
        )
    return line


def main(argv: list[str] | None = None) -> None:
    """Parse the command line, benchmark, print a line (or one JSON object with --json)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=list_models(), metavar="NAME", help="train-step mode: the model")
    parser.add_argument("--input_config", metavar="FILE.py[:ARG]", help="input mode: the config whose pipeline runs")
    parser.add_argument("--data_dir", default=None, help="input mode: TFDS data directory (default: the config's)")
    parser.add_argument("--batch_size", type=int, required=True, help="global batch over all devices")
    parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
    parser.add_argument("--steps", type=int, default=20, help="timed steps (batches) after warm-up, per round")
    parser.add_argument(
        "--rounds", type=int, default=1, help="timing rounds (alternating with --reference); the median is reported"
    )
    parser.add_argument("--image_size", type=int, default=None, help="default: the model's native size")
    parser.add_argument(
        "--reference", action="store_true", help="also time a bare-Flax step of the same network, and the ratio"
    )
    parser.add_argument(
        "--cost_only", action="store_true", help="compile and report XLA's bytes accessed and FLOPs, without running"
    )
    parser.add_argument(
        "--steps_per_dispatch",
        type=int,
        nargs="+",
        default=[],
        metavar="K",
        help="also time K train steps per call of the program (e.g. 1 8 32), as the loop's steps_per_dispatch",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    if (args.model is None) == (args.input_config is None):
        parser.error("pass --model NAME (train-step mode) or --input_config FILE.py[:ARG] (input mode)")
    if args.reference:
        if args.model is None:
            parser.error("--reference needs --model: it times a bare-Flax step of that network")
        from resnet_jax.benchmark_reference import minimal_model

        try:
            minimal_model(args.model, num_classes=10, dtype=args.dtype)
        except ValueError as error:
            parser.error(str(error))
    if args.input_config:
        from resnet_jax.config_file import load_config
        from resnet_jax.data.pipelines import throughput
        from resnet_jax.train.settings import settings_of

        settings = settings_of(load_config(args.input_config))
        data_settings = settings.data
        if args.data_dir is not None:
            data_settings = dataclasses.replace(data_settings, data_dir=args.data_dir)
        result = throughput.measure_input(data_settings, args.batch_size, args.steps, seed=settings.run.seed)
    else:
        result = benchmark(
            args.model,
            args.batch_size,
            args.dtype,
            args.steps,
            args.image_size,
            args.reference,
            args.cost_only,
            args.rounds,
            tuple(args.steps_per_dispatch),
        )
    print(json.dumps(result) if args.json else _describe(result))


if __name__ == "__main__":
    main()
