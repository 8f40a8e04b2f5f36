"""Datasets small enough for memory (digits, Fashion-MNIST, CIFAR): batches gathered and augmented by JAX.

Train order is a seeded permutation per epoch (a swap-or-not shuffle, evaluated only at the positions
a step needs), and the global batch of step s is positions [s*B, (s+1)*B) of the concatenated epochs;
its crops, flips, Random Erasing and the run's registered example augmentations are drawn for the whole
global batch from (seed, s). Batch s is
therefore a pure function of (seed, s): a resumed run sees exactly the batches it would have seen, on
any number of devices and processes.

The same traceable functions serve both placements. On the devices (the default), the uint8 splits are
placed once on every device and the jitted train step calls ``train_batch`` with its own step number,
so the host only dispatches. On the host (``input_placement='host'``, or a dataset too large for the
devices), ``host_train_batches`` runs them on the host CPU and feeds each process its rows. Only jax
and numpy are used: no TensorFlow.
"""

from collections.abc import Iterator

import jax
import jax.numpy as jnp
import numpy as np

from resnet_jax.data.augment import erasing, examples, pad_crop
from resnet_jax.data.pipelines import batching
from resnet_jax.data.streams import Stream, stream_key
from resnet_jax.errors import ConfigError

Batch = dict[str, np.ndarray]
# Positions are int32 on the devices (JAX's default), so a run may visit at most this many examples.
MAX_POSITIONS = 2**31 - 1
# Swap-or-not rounds per bit of the split's size; the uniformity test (test_digits) fails at 1, passes from 2.
ROUNDS_PER_BIT = 6


def check_positions(num_train_steps: int, global_batch: int) -> None:
    """Refuse a run longer than the int32 example positions reach (about 36,000 epochs of 60,000)."""
    if num_train_steps * global_batch > MAX_POSITIONS:
        raise ConfigError(
            f"{num_train_steps} steps of {global_batch} examples visit more than {MAX_POSITIONS} examples, the most "
            "an in-memory dataset's batch positions can count; train fewer steps or epochs."
        )


def _mix(values: jax.Array, key: jax.Array) -> jax.Array:
    """A 32-bit integer hash of ``values`` under ``key`` (Wellons' lowbias32 finaliser), wrapping as uint32."""
    x = values ^ key
    x = (x ^ (x >> 16)) * jnp.uint32(0x7FEB352D)
    x = (x ^ (x >> 15)) * jnp.uint32(0x846CA68B)
    return x ^ (x >> 16)


def num_rounds(num_examples: int) -> int:
    """Swap-or-not rounds for a domain of ``num_examples``: ``ROUNDS_PER_BIT`` per bit of its size."""
    return ROUNDS_PER_BIT * max(1, (num_examples - 1).bit_length())


def permute(round_keys: jax.Array, offsets: jax.Array, num_examples: int) -> jax.Array:
    """A keyed bijection of [0, num_examples), evaluated at ``offsets`` alone: O(len(offsets)) per call.

    Hoang, Morris and Rogaway's swap-or-not shuffle: in round i each value x is paired with
    ``(K_i - x) mod n`` and the pair is swapped when a keyed hash of the pair's larger member says so,
    so every round, and their composition, is a permutation of [0, n) for any n. ``round_keys`` has
    shape ``offsets.shape + (num_rounds(n), 2)``: K_i and the hash key of each round. The number of
    rounds is fixed by n alone, so the computation is the same on every device, with no data-dependent
    loop (a sharded ``while`` would desynchronise the devices' collectives).
    """

    def swap_or_not(round_index, values):
        keys = round_keys[..., round_index, :]
        partners = (keys[..., 0] % num_examples).astype(jnp.int32) - values
        partners = jnp.where(partners < 0, partners + num_examples, partners)
        larger = jnp.maximum(values, partners).astype(jnp.uint32)
        swap = (_mix(larger, keys[..., 1]) & 1) == 1
        return jnp.where(swap, partners, values)

    return jax.lax.fori_loop(0, round_keys.shape[-2], swap_or_not, offsets.astype(jnp.int32))


def epoch_order(seed: int, epoch, num_examples: int) -> jax.Array:
    """The seeded permutation of the example indices that epoch ``epoch`` visits (all of it: for tests)."""
    offsets = jnp.arange(num_examples, dtype=jnp.int32)
    return permute(_round_keys(seed, jnp.full_like(offsets, epoch), num_examples), offsets, num_examples)


def _round_keys(seed: int, epochs: jax.Array, num_examples: int) -> jax.Array:
    """The swap-or-not round keys of each position's epoch: shape ``epochs.shape + (num_rounds, 2)``."""
    shape = (num_rounds(num_examples), 2)
    draw = jax.vmap(lambda epoch: jax.random.bits(stream_key(seed, Stream.EPOCH_ORDER, epoch), shape))
    return draw(epochs.ravel()).reshape(*epochs.shape, *shape)


def global_batch_indices(seed: int, step, global_batch: int, num_examples: int) -> jax.Array:
    """Example indices of the global batch at ``step``: consecutive positions in the per-epoch orders.

    Each position is mapped alone (``permute``), so a step costs O(batch), not a shuffle of the split.
    """
    positions = jnp.asarray(step, jnp.int32) * global_batch + jnp.arange(global_batch, dtype=jnp.int32)
    epochs = positions // num_examples
    return permute(_round_keys(seed, epochs, num_examples), positions % num_examples, num_examples)


def train_batch(
    split: dict[str, jax.Array],
    step,
    *,
    seed: int,
    global_batch: int,
    augmentation: pad_crop.Augmentation = pad_crop.NO_AUGMENTATION,
    fill_colour: np.ndarray | None = None,
) -> dict[str, jax.Array]:
    """The global train batch of ``step`` (traceable): uint8 images as augmented, and their labels.

    ``fill_colour`` is a 'mean' or 'constant' erasing's fill (``erasing.fill_colour_for``). Inside a jitted
    step over a mesh, the split is replicated and the caller constrains the result to the batch sharding, so
    each device gathers only its rows.
    """
    indices = global_batch_indices(seed, step, global_batch, len(split["label"]))
    drawn = pad_crop.draws(seed, step, global_batch, augmentation)
    images = pad_crop.pad_crop_flip(split["image"][indices], drawn, augmentation)
    if augmentation.random_erasing.probability > 0:
        images = erasing.erase_batch(images, seed, step, augmentation.random_erasing, fill_colour)
    images = examples.apply_in_memory(images, augmentation.named, seed, step)
    return {"image": images, "label": split["label"][indices]}


def eval_batch(split: dict[str, jax.Array], index, batch_size: int) -> dict[str, jax.Array]:
    """Eval batch ``index`` of a split (traceable): positions [index*B, (index+1)*B), past the end padded
    with the last example and masked out, so every example counts exactly once."""
    num_examples = len(split["label"])
    positions = jnp.asarray(index, jnp.int32) * batch_size + jnp.arange(batch_size, dtype=jnp.int32)
    indices = jnp.minimum(positions, num_examples - 1)
    mask = (positions < num_examples).astype(jnp.float32)
    return {"image": split["image"][indices], "label": split["label"][indices], "mask": mask}


def host_train_batches(
    split: Batch,
    *,
    seed: int,
    start_step: int,
    per_process_batch: int,
    process_index: int,
    process_count: int,
    augmentation: pad_crop.Augmentation = pad_crop.NO_AUGMENTATION,
    fill_colour: np.ndarray | None = None,
) -> Iterator[Batch]:
    """This process's rows of every global batch from ``start_step`` on, made on the host CPU.

    The same ``train_batch`` as the devices run, jitted for the host's CPU: the batches are bitwise
    those the device placement makes, whatever the process count.
    """
    cpu = jax.devices("cpu")[0]
    on_cpu = jax.device_put(split, cpu)
    rows = batching.process_rows(per_process_batch, process_index)
    make = jax.jit(
        lambda arrays, step: train_batch(
            arrays,
            step,
            seed=seed,
            global_batch=per_process_batch * process_count,
            augmentation=augmentation,
            fill_colour=fill_colour,
        )
    )
    step = start_step
    while True:
        batch = jax.device_get(make(on_cpu, jax.device_put(np.int32(step), cpu)))
        yield {name: values[rows] for name, values in batch.items()}
        step += 1
