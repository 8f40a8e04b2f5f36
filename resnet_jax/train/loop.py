"""``train_and_evaluate(config, workdir)``: the whole job, resumable from its workdir.

Data-parallel over every device of every process: the state is replicated, the global batch is made
on the devices from an in-memory dataset placed there, or fed by each process's slice (``feed``), and
one jitted step (state donated) runs on all devices. The host reads
device values only at log, eval and checkpoint steps, and dispatches at most ``MAX_STEPS_IN_FLIGHT``
steps ahead of the devices.
"""

import collections
import contextlib
import dataclasses
import math
import os
import time
from collections.abc import Callable
from typing import Any

import jax
from absl import logging
from etils import epath

from resnet_jax import data as data_lib
from resnet_jax.errors import ConfigError, UserError
from resnet_jax.models import create_model
from resnet_jax.models.fields import convention_overrides, model_arguments
from resnet_jax.paths import resolve
from resnet_jax.runtime import lease, storage
from resnet_jax.runtime.preemption import StopRequest
from resnet_jax.train import (
    checkpoint,
    compilation_cache,
    metrics,
    pretrained,
    program,
    progress,
    recipe,
    sharding,
    tracking,
)
from resnet_jax.train.feed import Feed, create_feed
from resnet_jax.train.profiling import StepTrace
from resnet_jax.train.run_record import RunClock, run_record, with_resume_history, write_json
from resnet_jax.train.settings import Settings, settings_of, validate
from resnet_jax.train.startup import Startup
from resnet_jax.train.state import TrainState, create_train_state, init_variables

# Enough queued steps to hide the host's dispatch, few enough that a stop signal (preemption notices give
# ~30 s) is checkpointed a step or two later, not after every step dispatched up to the next log step.
MAX_STEPS_IN_FLIGHT = 2


class TrainingDiverged(FloatingPointError):
    """The loss or gradient norm stopped being finite."""


def build_model(model_settings: Any, input_channels: int = 3):
    """The zoo model the model settings name, with their per-run overrides."""
    return create_model(model_settings.model, input_channels=input_channels, **model_arguments(model_settings))


def with_dataset_facts(full_config: Any, datasets: data_lib.Datasets) -> Any:
    """The config with ``num_classes`` and ``image_size`` that are 0 ("the dataset's") set from the dataset,
    so that the model, the steps and config.json see the numbers the run uses."""
    facts = {"num_classes": datasets.spec.num_classes, "image_size": datasets.image_shape[0]}
    unset = {name: value for name, value in facts.items() if not getattr(full_config, name)}
    if not unset:
        return full_config
    resolved = full_config.copy_and_resolve_references()
    resolved.update(unset)
    return resolved


def _check_steps_per_dispatch(config: Any, input_feed: Feed) -> None:
    """Refuse several steps per dispatch where batches come from the host; say how late a stop may come."""
    dispatch = config.steps_per_dispatch
    if dispatch > 1 and not input_feed.on_devices:
        raise ConfigError(
            f"steps_per_dispatch={dispatch} runs {dispatch} steps in one program over a dataset on the devices, "
            f"but this run's batches are made on the host (a streamed dataset, input_placement='host', or a "
            f"dataset too large for a device's memory); set --config.steps_per_dispatch=1."
        )
    if dispatch > 1:
        logging.info(
            "%d train steps per dispatch: logs, evaluations and checkpoints fall between dispatches on their own "
            "steps; a stop signal is acted on within %d steps.",
            dispatch,
            (MAX_STEPS_IN_FLIGHT + 1) * dispatch,
        )


def _check_finite(values: dict[str, float], steps: range, checkpointer: checkpoint.Checkpointer) -> None:
    """Raise TrainingDiverged, naming the steps and the checkpoint to resume from, on a NaN or Inf."""
    bad = {name: value for name, value in values.items() if not math.isfinite(value)}
    if bad:
        raise TrainingDiverged(
            f"training diverged between steps {steps.start} and {steps.stop - 1}: {bad}. The last good "
            f"checkpoint (step {checkpointer.latest_step()}) is kept in {checkpointer.directory}. Lower "
            "learning_rate, add warm-up or set grad_clip_norm, then re-run the same command to resume from it."
        )


@dataclasses.dataclass(frozen=True)
class Run:
    """What the step loop needs besides the state: config, inputs, compiled steps and outputs."""

    config: Any
    workdir: epath.Path
    datasets: data_lib.Datasets
    mesh: Any
    input_feed: Feed
    schedule: Callable
    length: recipe.Length
    steps: program.Programs
    writer: Any
    checkpointer: checkpoint.Checkpointer
    startup: "Startup"
    stop_request: StopRequest
    clock: "RunClock"


def evaluate(
    steps: program.Programs, state: TrainState, datasets: data_lib.Datasets, input_feed: Feed
) -> dict[str, float]:
    """Exact metrics over every eval split, for the raw parameters and (if kept) their EMA.

    The test split's metrics are ``eval/*`` (``eval_ema/*``), a held-out validation split's ``val/*``;
    ``num_eval_examples`` (``num_val_examples``) says how many examples each counted.
    """
    results = {}
    variants = {"": False} if state.ema_params is None else {"": False, "_ema": True}
    for prefix, split in datasets.eval_splits.items():
        accumulated = {suffix: steps.empty_eval_metrics() for suffix in variants}
        for eval_input in input_feed.eval_inputs(prefix):  # each is read once, for the raw parameters and the EMA
            for suffix, use_ema in variants.items():
                accumulated[suffix] = steps.eval(state.variables(use_ema), eval_input, accumulated[suffix])
        for suffix, sums in accumulated.items():
            results.update(program.compute(sums, prefix + suffix))
            counted = program.eval_count(sums)
            if counted != split.num_examples:
                raise RuntimeError(f"{prefix} counted {counted} examples but the split has {split.num_examples}")
        results[f"num_{prefix}_examples"] = split.num_examples
    return results


def train_and_evaluate(config: Any, workdir: str | os.PathLike) -> dict:
    """Train and evaluate as ``config`` says, resuming from ``workdir`` if it holds a checkpoint.

    Returns the final metrics (also written to ``workdir/results.json``), or ``{'step', 'stopped',
    'checkpoint_step'}`` if SIGTERM or Ctrl-C ended the run early: after checkpointing during training;
    with no new checkpoint when it came during start-up or compilation (those finish first).
    """
    validate(config)  # the command line validated it already, and calls ``run``
    return run(config, workdir)


def run(config: Any, workdir: str | os.PathLike) -> dict:
    """``train_and_evaluate`` for a config that ``train.settings.validate`` has checked.

    The workdir's lease is taken before anything else (``lease``), and a storage fault at any write
    ends the run with a ``StorageFault`` saying what to do (``storage``). A user's mistake that stops
    a run before it writes config.json leaves no workdir behind, if the run created it.
    """
    workdir = resolve(workdir)
    created = jax.process_index() == 0 and not workdir.exists()
    try:
        with storage.reported(workdir):
            workdir.mkdir(parents=True, exist_ok=True)
            with lease.held(workdir), StopRequest() as stop_request:  # a signal while waiting for the lease exits
                return _train_and_evaluate(config, workdir, stop_request)
    except UserError as error:
        if created and not isinstance(error, lease.WorkdirInUse) and not (workdir / "config.json").exists():
            with contextlib.suppress(OSError):
                workdir.rmtree()
        raise


def _train_and_evaluate(config: Any, workdir: epath.Path, stop_request: StopRequest) -> dict:
    start_time = time.time()
    startup = Startup()
    is_chief = jax.process_index() == 0

    # The config was validated before JAX started; each package reads its own settings from here on.
    settings = settings_of(config)
    compilation_cache.enable(settings.run.compilation_cache_dir)
    mesh = sharding.make_mesh()
    num_processes = jax.process_count()
    run_settings = settings.run
    sizes = sharding.batch_sizes(
        run_settings.batch_size, mesh.size, num_processes, run_settings.grad_accum_steps, settings.model.bn_group_size
    )
    eval_sizes = sharding.batch_sizes(run_settings.eval_batch_size or run_settings.batch_size, mesh.size, num_processes)
    placement = data_lib.Placement(sizes.global_batch, eval_sizes.global_batch, jax.process_index(), num_processes)
    datasets = data_lib.create_datasets(
        settings.data, placement, seed=run_settings.seed, num_classes=settings.model.num_classes
    )
    input_feed = create_feed(settings.data.input_placement, datasets, mesh, eval_sizes.global_batch)
    _check_steps_per_dispatch(run_settings, input_feed)
    startup.mark("data")
    config = with_dataset_facts(config, datasets)
    settings = settings_of(config)  # with the dataset's class count and image size where the config said 0
    model = build_model(settings.model, input_channels=datasets.image_shape[-1])
    length = recipe.training_length(run_settings, datasets.num_train_examples)
    datasets.check_length(length.num_train_steps)
    schedule = recipe.build_schedule(settings.optimisation, length, run_settings.batch_size)
    input_shape = (1, *datasets.image_shape)
    abstract_params = jax.eval_shape(lambda: init_variables(model, jax.random.PRNGKey(0), input_shape))["params"]
    tx = recipe.build_optimizer(settings.optimisation, schedule, abstract_params)
    num_params = sum(leaf.size for leaf in jax.tree_util.tree_leaves(abstract_params))
    learning_rate = recipe.base_learning_rate(settings.optimisation, run_settings.batch_size)
    record = run_record(config, sizes, length, learning_rate, num_params)
    logging.info("Derived sizes and learning rate: %s", record["derived"])

    checkpointer = checkpoint.Checkpointer(workdir / "checkpoints", run_settings.max_checkpoints_to_keep)
    state = _restore_or_initialise(settings, model, tx, input_shape, mesh, checkpointer)
    jax.block_until_ready(state)
    startup.mark("restore" if int(state.step) else "init")
    if is_chief:
        write_json(workdir / "config.json", with_resume_history(workdir / "config.json", record, int(state.step)))
    global_batch_shape = (sizes.global_batch, *datasets.image_shape)
    options = program.StepOptions.from_settings(run_settings, settings.optimisation)
    steps = program.compile_programs(
        options, model, tx, mesh, state, global_batch_shape, datasets.normalisation, input_feed
    )
    writer = metrics.create_writer(
        workdir, jax.process_index(), tracking.settings(run_settings), record, restored_step=int(state.step)
    )
    clock = RunClock.resumed(start_time, checkpointer, int(state.step), time.time)
    run = Run(
        config=run_settings,
        workdir=workdir,
        datasets=datasets,
        mesh=mesh,
        input_feed=input_feed,
        schedule=schedule,
        length=length,
        steps=steps,
        writer=writer,
        checkpointer=checkpointer,
        startup=startup,
        stop_request=stop_request,
        clock=clock,
    )
    with contextlib.ExitStack() as finishing:  # each runs even if one before it fails (a full disk, say)
        finishing.callback(checkpointer.close)  # pending asynchronous saves finish, even after an error
        finishing.callback(writer.flush)
        step, eval_results, stopped = _train(run, state)
    checkpoint_step = checkpointer.latest_step()
    if stopped:
        writer.close()
        return {"step": step, "stopped": stopped, "checkpoint_step": checkpoint_step}
    results = {"step": step, **eval_results, "wall_time_s": clock()}
    if is_chief:
        write_json(workdir / "results.json", results)
    writer.write_results(results)
    logging.info(progress.summary_line(results))
    writer.close()
    return results


def _train(run: Run, state: TrainState) -> tuple[int, dict[str, float], str | None]:
    """The step loop: train, log, evaluate and checkpoint; returns (step, last eval, stop signal or None)."""
    config, steps, length = run.config, run.steps, run.length
    step = int(state.step)
    profile = StepTrace(run.workdir, step, enabled=config.profile and jax.process_index() == 0)
    train_inputs = run.input_feed.train_inputs(step)
    accumulated = steps.empty_train_metrics()
    eval_results: dict[str, float] = {}
    last_log = (time.time(), step)  # for examples/s
    last_checked = step  # the metrics accumulated since were all finite up to here
    stop_request = run.stop_request
    if stop_request.requested_before_training():  # came during start-up or compilation
        return step, eval_results, stop_request.reason
    try:
        in_flight: collections.deque[jax.Array] = collections.deque()  # the ballots of the unfinished dispatches
        every = (config.log_every_steps, config.eval_every_steps, config.checkpoint_every_steps)
        while step < length.num_train_steps:
            count = dispatch_length(step, config.steps_per_dispatch, every, length.num_train_steps)
            state, accumulated, ballot = steps.train_steps(count)(
                state, next(train_inputs), accumulated, stop_request.vote(run.mesh)
            )
            step += count
            in_flight.append(ballot)
            finished_ballot = None
            if len(in_flight) > MAX_STEPS_IN_FLIGHT:  # so a stop signal is seen, and saved, within a few steps
                finished_ballot = in_flight.popleft()
                finished_ballot.block_until_ready()
            if not run.startup.reported:
                run.startup.report(run.writer, step, first_step=state)
            profile(step)
            is_last = step == length.num_train_steps
            log_now = step % config.log_every_steps == 0 or is_last
            checkpoint_now = step % config.checkpoint_every_steps == 0 or is_last
            stop_now = stop_request.requested(finished_ballot)
            if log_now or checkpoint_now or stop_now:  # a host sync: never save a diverged state unseen
                values = program.compute(accumulated, "train")
                _check_finite(
                    {k: values[k] for k in ("train/loss", "train/grad_norm")},
                    range(last_checked + 1, step + 1),
                    run.checkpointer,
                )
                accumulated, last_checked = steps.empty_train_metrics(), step
                now = time.time()
                examples_per_sec = (step - last_log[1]) * config.batch_size / max(now - last_log[0], 1e-9)
                values["train/lr"] = float(run.schedule(step - 1))
                values["train/examples_per_sec"] = examples_per_sec
                values["train/eta_seconds"] = (length.num_train_steps - step) * config.batch_size / examples_per_sec
                run.writer.write_scalars(step, values)
                logging.info(progress.train_line(step, length.num_train_steps, values))
                last_log = (now, step)
            if step % config.eval_every_steps == 0 or is_last:
                eval_results = evaluate(steps, state, run.datasets, run.input_feed)
                run.writer.write_scalars(step, {k: v for k, v in eval_results.items() if not k.startswith("num_")})
                for line in progress.eval_lines(step, eval_results):
                    logging.info(line)
                last_log = (time.time(), step)
            if checkpoint_now or stop_now:
                run.checkpointer.save(step, state, run.clock())
            if stop_now:
                logging.warning(
                    "Stopped by %s at step %d; run the same command to resume.", stop_request.reason, step
                )
                return step, eval_results, stop_request.reason
        if not eval_results:  # resumed from the final checkpoint: evaluate it again for results.json
            eval_results = evaluate(steps, state, run.datasets, run.input_feed)
        return step, eval_results, None
    finally:
        profile.stop()


def dispatch_length(step: int, steps_per_dispatch: int, every: tuple[int, ...], last_step: int) -> int:
    """How many train steps the dispatch after ``step`` runs: ``steps_per_dispatch``, unless the next multiple of
    one of ``every`` (logging, evaluation, checkpoints) or ``last_step`` comes sooner; then the largest power of
    two that does not pass it. So each of those falls between two dispatches, on its own step, and a run
    compiles at most log2(steps_per_dispatch) + 1 train programs."""
    next_event = min([last_step, *((step // interval + 1) * interval for interval in every)])
    remaining = next_event - step
    return steps_per_dispatch if remaining >= steps_per_dispatch else 1 << (remaining.bit_length() - 1)


def _restore_or_initialise(settings: Settings, model, tx, input_shape, mesh, checkpointer) -> TrainState:
    """The latest checkpoint onto this mesh if there is one; else a fresh (or pretrained) state. A PyTorch file of
    an EfficientNet needs the framework conventions the model settings set."""
    replicated = sharding.replicated_sharding(mesh)
    config = settings.run
    init_rng, state_rng = jax.random.split(jax.random.PRNGKey(config.seed))
    use_ema = config.ema_decay > 0

    def create_fresh() -> TrainState:
        return create_train_state(init_variables(model, init_rng, input_shape), tx, state_rng, use_ema)

    if checkpointer.latest_step() is not None:
        abstract_state = jax.tree_util.tree_map(
            lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=replicated), jax.eval_shape(create_fresh)
        )
        state = checkpointer.restore_latest(abstract_state)
        logging.info("Resumed from %s at step %d.", checkpointer.directory, int(state.step))
        return state
    if not config.init_from:
        return jax.jit(create_fresh, out_shardings=replicated)()
    fresh = jax.device_get(jax.jit(lambda: init_variables(model, init_rng, input_shape))())
    loaded = pretrained.load(config.init_from, model, settings.model.model, convention_overrides(settings.model))
    advice = pretrained.mismatch_advice(config.init_from, settings.model.model)
    variables = pretrained.merge(fresh, loaded, config.reinit_head, advice)
    logging.info("Initialised from %s.", config.init_from)

    def create_from(variables: dict) -> TrainState:
        return create_train_state(variables, tx, state_rng, use_ema)

    return jax.jit(create_from, in_shardings=replicated, out_shardings=replicated)(variables)
