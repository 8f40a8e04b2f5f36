"""``train_and_evaluate(config, workdir)``: the whole job, resumable from its workdir.

Data-parallel over every device of every process: the state is replicated, each process feeds its
slice of the global batch, and one jitted step (state donated) runs on all devices. The host reads
device values only at log, eval and checkpoint steps.
"""

import json
import math
import os
import platform
import time
from pathlib import Path
from typing import Any

import flax
import jax
import jax.numpy as jnp
import optax
from absl import logging
from clu import periodic_actions

from resnet_jax import data as data_lib
from resnet_jax.models import create_model
from resnet_jax.train import checkpoint, metrics, pretrained, recipe, sharding
from resnet_jax.train.preemption import StopRequest
from resnet_jax.train.state import TrainState, create_train_state, init_variables
from resnet_jax.train.step import make_eval_step, make_train_step

EVAL_PREFIX, EMA_PREFIX = "eval", "eval_ema"


class TrainingDiverged(FloatingPointError):
    """The loss or gradient norm stopped being finite."""


def build_model(config: Any):
    """The zoo model the config names, with its per-run overrides."""
    return create_model(
        config.model,
        num_classes=config.num_classes,
        dtype=config.dtype,
        zero_init_residual=config.zero_init_residual,
        dropout_rate=config.dropout_rate,
        bn_group_size=config.bn_group_size,
    )


def run_record(config: Any, sizes: sharding.BatchSizes, length: recipe.Length, learning_rate: float) -> dict:
    """The resolved config plus versions, devices and derived sizes, as written to config.json."""
    devices = jax.devices()
    return {
        **config.to_dict(),
        "versions": {
            "python": platform.python_version(),
            "jax": jax.__version__,
            "flax": flax.__version__,
            "optax": optax.__version__,
        },
        "devices": {
            "platform": devices[0].platform,
            "device_kind": devices[0].device_kind,
            "num_devices": len(devices),
            "num_processes": jax.process_count(),
        },
        "derived": {
            "per_process_batch": sizes.per_process,
            "per_device_batch": sizes.per_device,
            "per_device_microbatch": sizes.per_device_microbatch,
            "base_learning_rate": learning_rate,
            "num_train_steps": length.num_train_steps,
            "steps_per_epoch": length.steps_per_epoch,
        },
    }


def _write_json(path: Path, record: dict) -> None:
    """Write atomically, so a crash never leaves a half-written file."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=2, sort_keys=True, default=str) + "\n")
    os.replace(tmp, path)


def _check_finite(values: dict[str, float], step: int, checkpointer: checkpoint.Checkpointer) -> None:
    bad = {name: value for name, value in values.items() if not math.isfinite(value)}
    if bad:
        raise TrainingDiverged(
            f"training diverged by step {step}: {bad}. The last good checkpoint (step "
            f"{checkpointer.latest_step()}) is kept in {checkpointer.directory}. Lower learning_rate, add warm-up "
            "or set grad_clip_norm, then re-run the same command to resume from it."
        )


def train_and_evaluate(config: Any, workdir: str | os.PathLike) -> dict:
    """Train and evaluate as ``config`` says, resuming from ``workdir`` if it holds a checkpoint.

    Returns the final metrics (also written to ``workdir/results.json``), or the last logged values
    with ``'stopped': 'SIGTERM'`` if a stop signal ended the run early after checkpointing.
    """
    start_time = time.time()
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    is_chief = jax.process_index() == 0

    # Everything that can be wrong with the config fails here, before any compilation.
    recipe.validate_config(config)
    model = build_model(config)
    mesh = sharding.make_mesh()
    num_devices, num_processes = mesh.size, jax.process_count()
    sizes = sharding.batch_sizes(
        config.batch_size, num_devices, num_processes, config.grad_accum_steps, config.bn_group_size
    )
    eval_sizes = sharding.batch_sizes(config.eval_batch_size or config.batch_size, num_devices, num_processes)
    datasets = data_lib.create_datasets(
        config,
        per_process_batch=sizes.per_process,
        per_process_eval_batch=eval_sizes.per_process,
        process_index=jax.process_index(),
        process_count=num_processes,
    )
    length = recipe.training_length(config, datasets.num_train_examples)
    schedule = recipe.build_schedule(config, length)
    input_shape = (1, *datasets.image_shape)
    abstract_variables = jax.eval_shape(lambda: init_variables(model, jax.random.PRNGKey(0), input_shape))
    tx = recipe.build_optimizer(config, schedule, abstract_variables["params"])
    record = run_record(config, sizes, length, recipe.base_learning_rate(config))
    logging.info("Derived sizes and learning rate: %s", record["derived"])

    replicated = sharding.replicated_sharding(mesh)
    state = _initial_state(config, model, tx, input_shape, replicated)
    checkpointer = checkpoint.Checkpointer(workdir / "checkpoints", config.max_checkpoints_to_keep)
    if checkpointer.latest_step() is not None:
        abstract_state = jax.tree_util.tree_map(
            lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=replicated), state
        )
        state = checkpointer.restore(abstract_state)
        logging.info("Resumed from %s at step %d.", checkpointer.directory, int(state.step))
    if is_chief:
        _write_json(workdir / "config.json", record)

    train_step = make_train_step(
        model,
        tx,
        label_smoothing=config.label_smoothing,
        grad_accum_steps=config.grad_accum_steps,
        num_shards=num_devices,
        ema_decay=config.ema_decay,
    )
    eval_step = make_eval_step(model)
    train_metrics_type = metrics.collection(jax.eval_shape(train_step, state, _abstract_batch(sizes, datasets))[1])
    eval_metrics_type = metrics.collection(metrics.EVAL_OUTPUTS)
    batch_sharding = sharding.batch_sharding(mesh)

    def train_and_accumulate(state, batch, accumulated):
        state, outputs = train_step(state, batch)
        return state, accumulated.merge(train_metrics_type.single_from_model_output(**outputs))

    def eval_and_accumulate(variables, batch, accumulated):
        return accumulated.merge(eval_metrics_type.single_from_model_output(**eval_step(variables, batch)))

    train_and_accumulate = jax.jit(
        train_and_accumulate,
        in_shardings=(replicated, batch_sharding, replicated),
        out_shardings=(replicated, replicated),
        donate_argnums=(0, 2),
    )
    eval_and_accumulate = jax.jit(
        eval_and_accumulate, in_shardings=(replicated, batch_sharding, replicated), out_shardings=replicated
    )
    empty_train_metrics = jax.jit(train_metrics_type.empty, out_shardings=replicated)
    empty_eval_metrics = jax.jit(eval_metrics_type.empty, out_shardings=replicated)

    def evaluate(state: TrainState) -> dict[str, float]:
        results = {}
        for prefix, use_ema in ((EVAL_PREFIX, False), (EMA_PREFIX, True)):
            if use_ema and state.ema_params is None:
                continue
            accumulated = empty_eval_metrics()
            for batch in datasets.eval_batches():
                accumulated = eval_and_accumulate(
                    state.variables(use_ema), sharding.to_global(batch, mesh), accumulated
                )
            results.update(metrics.compute(accumulated, prefix))
            counted = metrics.eval_count(accumulated)
            if counted != datasets.num_eval_examples:
                raise RuntimeError(f"eval counted {counted} examples, expected {datasets.num_eval_examples}")
        results["num_eval_examples"] = datasets.num_eval_examples
        return results

    writer = metrics.create_writer(workdir, jax.process_index())
    step = int(state.step)
    report_progress = periodic_actions.ReportProgress(
        num_train_steps=length.num_train_steps, writer=writer, every_steps=config.log_every_steps, every_secs=None
    )
    hooks = [report_progress]
    if config.profile and is_chief:
        hooks.append(periodic_actions.Profile(logdir=os.fspath(workdir), num_profile_steps=5, first_profile=step + 10))

    train_iterator = datasets.train_batches(step)
    accumulated = empty_train_metrics()
    eval_results: dict[str, float] = {}
    last_log = (time.time(), step)
    stopped = None
    with StopRequest() as stop_request:
        while step < length.num_train_steps:
            batch = sharding.to_global(next(train_iterator), mesh)
            state, accumulated = train_and_accumulate(state, batch, accumulated)
            step += 1
            for hook in hooks:
                hook(step)
            is_last = step == length.num_train_steps
            log_now = step % config.log_every_steps == 0 or is_last
            checkpoint_now = step % config.checkpoint_every_steps == 0 or is_last
            stop_now = stop_request.requested(at_sync_point=log_now)
            if log_now or checkpoint_now or stop_now:
                values = metrics.compute(accumulated, "train")
                _check_finite({k: values[k] for k in ("train/loss", "train/grad_norm")}, step, checkpointer)
                accumulated = empty_train_metrics()
                now = time.time()
                examples_per_sec = (step - last_log[1]) * config.batch_size / max(now - last_log[0], 1e-9)
                values["train/lr"] = float(schedule(step - 1))
                values["train/examples_per_sec"] = examples_per_sec
                values["train/eta_seconds"] = (length.num_train_steps - step) * config.batch_size / examples_per_sec
                writer.write_scalars(step, values)
                last_log = (now, step)
            if step % config.eval_every_steps == 0 or is_last:
                with report_progress.timed("eval"):
                    eval_results = evaluate(state)
                writer.write_scalars(step, {k: v for k, v in eval_results.items() if k != "num_eval_examples"})
                last_log = (time.time(), step)
            if checkpoint_now or stop_now:
                with report_progress.timed("checkpoint"):
                    checkpointer.save(step, state)
            if stop_now:
                stopped = stop_request.signal_name or "signal"
                logging.warning("Stopped by %s at step %d; re-run the same command to resume.", stopped, step)
                break
    writer.flush()
    checkpointer.close()
    if stopped:
        return {"step": step, "stopped": stopped}
    if not eval_results:  # resumed at the very end: evaluate the final state once more
        eval_results = evaluate(state)
    results = {"step": step, **eval_results, "wall_time_s": time.time() - start_time}
    if is_chief:
        _write_json(workdir / "results.json", results)
    writer.close()
    return results


def _abstract_batch(sizes: sharding.BatchSizes, datasets: data_lib.Datasets) -> dict:
    """Shapes of one global train batch, to find the step's output names without running it."""
    return {
        "image": jax.ShapeDtypeStruct((sizes.global_batch, *datasets.image_shape), jnp.float32),
        "label": jax.ShapeDtypeStruct((sizes.global_batch,), jnp.int32),
    }


def _initial_state(config: Any, model, tx, input_shape, replicated) -> TrainState:
    """A fresh replicated state: initialised, or loaded from ``config.init_from`` for fine-tuning."""
    init_rng, state_rng = jax.random.split(jax.random.PRNGKey(config.seed))
    use_ema = config.ema_decay > 0
    if not config.init_from:

        def create_fresh() -> TrainState:
            return create_train_state(init_variables(model, init_rng, input_shape), tx, state_rng, use_ema)

        return jax.jit(create_fresh, out_shardings=replicated)()
    fresh = jax.device_get(jax.jit(lambda: init_variables(model, init_rng, input_shape))())
    variables = pretrained.merge(fresh, pretrained.load(config.init_from, config.model), config.reinit_head)
    logging.info("Initialised from %s.", config.init_from)

    def create_from(variables: dict) -> TrainState:
        return create_train_state(variables, tx, state_rng, use_ema)

    return jax.jit(create_from, in_shardings=replicated, out_shardings=replicated)(variables)
