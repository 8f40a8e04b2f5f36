"""The compiled train and eval programs: what the loop runs and what ``benchmark`` measures, one and the same.

The train program wraps the pure step (``step.make_train_step``) with the feed's batch making (a gather
and augmentation on the devices, or the batch as sent) and the on-device accumulation of its metrics
(``clu.metrics`` sums and counts), and takes the processes' stop votes so that every process learns of
a stop request at the same step (``preemption.StopRequest``). The eval program does the same for the
eval step. Both are jitted with explicit shardings; the train program donates the state and the sums.
"""

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from clu import metrics as clu_metrics

from resnet_jax.data import NO_MIXING, Mixing
from resnet_jax.train import sharding
from resnet_jax.train.feed import Feed
from resnet_jax.train.fields import parse_parts
from resnet_jax.train.state import TrainState
from resnet_jax.train.step import make_eval_step, make_train_step

EVAL_OUTPUTS = ("loss", "top1", "top5")


@dataclasses.dataclass(frozen=True)
class StepOptions:
    """The config's choices inside the train step (the defaults: plain cross-entropy, one microbatch)."""

    label_smoothing: float = 0.0
    grad_accum_steps: int = 1
    ema_decay: float = 0.0
    mixing: Mixing = NO_MIXING
    inference_parts: tuple[str, ...] = ()  # frozen parts that run as at inference (freeze_mode='inference')

    @classmethod
    def from_settings(cls, run: Any, optimisation: Any) -> "StepOptions":
        """The step's choices from the run and optimisation settings (which parts are frozen, and how they run)."""
        mixing = Mixing(
            run.cutout_size, run.mixup_alpha, run.cutmix_alpha, run.cutmix_probability, run.batch_augmentations
        )
        frozen = parse_parts(optimisation.freeze) if optimisation.freeze_mode == "inference" else ()
        return cls(run.label_smoothing, run.grad_accum_steps, run.ema_decay, mixing, tuple(frozen))


def _field(output_name: str) -> str:
    """Collection field for a step output: dataclass fields cannot contain '/'."""
    return output_name.replace("/", "__")


def collection(output_names) -> type[clu_metrics.Collection]:
    """A clu Collection averaging each named step output (masked by the ``mask`` output when present)."""
    return clu_metrics.Collection.create(
        **{_field(name): clu_metrics.Average.from_output(name) for name in output_names if name != "mask"}
    )


def compute(metrics: clu_metrics.Collection, prefix: str) -> dict[str, float]:
    """Host values ``{'prefix/name': value}`` of an accumulated collection (a sync point)."""
    values = sharding.to_host(metrics.compute())
    return {f"{prefix}/{name.replace('__', '/')}": float(value) for name, value in values.items()}


def eval_count(metrics: clu_metrics.Collection) -> int:
    """How many real (unmasked) examples an eval collection has seen."""
    return int(sharding.to_host(metrics.top1.count))


@dataclasses.dataclass(frozen=True)
class Programs:
    """The jitted programs of a run: ``train_steps(k)(state, input, sums, stop_votes) -> (state, sums, ballot)``
    (state and sums donated), k train steps in one call (a ``lax.scan`` for k > 1; compiled once per k), and
    ``eval(variables, input, sums) -> sums``, with their empty sums."""

    train_steps: Callable[[int], Callable]
    eval: Callable
    empty_train_metrics: Callable
    empty_eval_metrics: Callable


def compile_programs(
    options: StepOptions,
    model,
    tx,
    mesh,
    state: TrainState,
    global_batch_shape: tuple[int, ...],
    normalisation,
    input_feed: Feed,
) -> Programs:
    """Wrap the pure steps (normalising uint8 images on the device) with the feed's batch making and
    metric accumulation; jit them with explicit shardings."""
    replicated, batch_sharding = sharding.replicated_sharding(mesh), sharding.batch_sharding(mesh)
    train_step = make_train_step(
        model,
        tx,
        label_smoothing=options.label_smoothing,
        grad_accum_steps=options.grad_accum_steps,
        num_shards=mesh.size,
        ema_decay=options.ema_decay,
        normalise=normalisation,
        mixing=options.mixing,
        frozen=options.inference_parts,
    )
    eval_step = make_eval_step(model, normalisation)
    abstract_batch = {
        "image": jax.ShapeDtypeStruct(global_batch_shape, jnp.uint8),
        "label": jax.ShapeDtypeStruct(global_batch_shape[:1], jnp.int32),
    }
    train_metrics = collection(jax.eval_shape(train_step, state, abstract_batch)[1])
    eval_metrics = collection(EVAL_OUTPUTS)

    def train_and_accumulate(state, train_input, accumulated, stop_votes, steps: int = 1):
        """``steps`` train steps from ``state`` (a ``lax.scan`` for more than one), each making its batch from
        ``train_input`` at its own step, as one step at a time would."""

        def body(carry, _):
            state, accumulated = carry
            state, outputs = train_step(state, input_feed.train_batch(train_input, state.step))
            return (state, accumulated.merge(train_metrics.single_from_model_output(**outputs))), None

        if steps == 1:
            (state, accumulated), _ = body((state, accumulated), None)
        else:
            (state, accumulated), _ = jax.lax.scan(body, (state, accumulated), length=steps, unroll=unroll(steps))
        ballot = jnp.any(stop_votes)  # see StopRequest; also a buffer of its own for the host to wait on
        return state, accumulated, ballot

    def unroll(steps: int) -> int:
        """A loop on accelerators; unrolled on XLA:CPU, where the collectives of simulated devices inside a loop
        wait on each other past XLA's rendezvous timeout, and convolutions in loops run slower."""
        return steps if mesh.devices.flat[0].platform == "cpu" else 1

    @functools.cache
    def train_steps(steps: int) -> Callable:
        return jax.jit(
            functools.partial(train_and_accumulate, steps=steps),
            in_shardings=(replicated, input_feed.input_sharding, replicated, batch_sharding),
            out_shardings=(replicated, replicated, replicated),
            donate_argnums=(0, 2),
        )

    def eval_and_accumulate(variables, eval_input, accumulated):
        outputs = eval_step(variables, input_feed.eval_batch(eval_input))
        return accumulated.merge(eval_metrics.single_from_model_output(**outputs))

    return Programs(
        train_steps=train_steps,
        eval=jax.jit(
            eval_and_accumulate,
            in_shardings=(replicated, input_feed.input_sharding, replicated),
            out_shardings=replicated,
        ),
        empty_train_metrics=jax.jit(train_metrics.empty, out_shardings=replicated),
        empty_eval_metrics=jax.jit(eval_metrics.empty, out_shardings=replicated),
    )
