"""Cutout, Mixup and CutMix against samplers written here from the authors' released code, the mixed
loss against a hand computation, and the same draws whatever the batch's sharding."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import random_variables
from scipy import stats

from resnet_jax.data.augment.mixing import MIXING_STREAM, Mixing, mix
from resnet_jax.models import create_model
from resnet_jax.train import sharding
from resnet_jax.train.state import create_train_state
from resnet_jax.train.step import cross_entropy, make_train_step

DRAWS, P_FLOOR = 2000, 1e-3


def _indexed_images(batch: int, size: int) -> jax.Array:
    """Image i is the constant i + 1: any pixel says which example it came from (0 where cut out)."""
    return jnp.broadcast_to(jnp.arange(1.0, batch + 1)[:, None, None, None], (batch, size, size, 1))


def _draw(mixing: Mixing, batch: int, size: int):
    """``DRAWS`` mixed batches of indexed images, one per key."""
    images = _indexed_images(batch, size)
    return jax.vmap(lambda key: mix(images, key, mixing))(jax.random.split(jax.random.key(0), DRAWS))


def _devries_cutout_area(rng: np.random.Generator, size: int, length: int) -> int:
    """uoguelph-mlrg/Cutout's ``Cutout.__call__``: centre uniform over the pixels, the square clipped."""
    y, x = rng.integers(size), rng.integers(size)
    y1, y2 = np.clip(y - length // 2, 0, size), np.clip(y + length // 2, 0, size)
    x1, x2 = np.clip(x - length // 2, 0, size), np.clip(x + length // 2, 0, size)
    return int((y2 - y1) * (x2 - x1))


def test_cutout_zeroes_one_clipped_square_per_image_with_devries_distribution():
    mixed = _draw(Mixing(cutout_size=16), 4, 32)
    holes = np.asarray(mixed.images[..., 0] == 0)  # (draws, batch, 32, 32)
    rows, columns = holes.any(axis=3), holes.any(axis=2)
    # Each hole is one axis-aligned rectangle (rows x columns), at most 16 x 16.
    np.testing.assert_array_equal(holes, rows[..., :, None] & columns[..., None, :])
    assert rows.sum(-1).max() <= 16 and columns.sum(-1).max() <= 16
    ours = holes.sum(axis=(2, 3)).ravel()
    rng = np.random.default_rng(1)
    reference = [_devries_cutout_area(rng, 32, 16) for _ in range(len(ours))]
    assert stats.ks_2samp(ours, reference).pvalue > P_FLOOR
    np.testing.assert_array_equal(np.asarray(mixed.weight), 1.0)  # no label mixing


def test_mixup_blends_each_image_with_a_permuted_partner_at_a_beta_weight():
    alpha = 0.4
    mixed = _draw(Mixing(mixup_alpha=alpha), 8, 4)
    weights, partners = np.asarray(mixed.weight), np.asarray(mixed.partner)
    assert all(sorted(p) == list(range(8)) for p in partners)  # a permutation of the batch
    own = np.arange(1.0, 9)
    expected = weights[:, None] * own + (1 - weights[:, None]) * (partners + 1.0)
    np.testing.assert_allclose(np.asarray(mixed.images)[:, :, 0, 0, 0], expected, rtol=1e-5)
    reference = np.random.default_rng(2).beta(alpha, alpha, DRAWS)  # facebookresearch/mixup-cifar10
    assert stats.ks_2samp(weights, reference).pvalue > P_FLOOR


def _yun_cutmix_kept_fraction(rng: np.random.Generator, size: int, alpha: float, probability: float) -> float:
    """clovaai/CutMix-PyTorch's ``rand_bbox`` and lambda adjustment; 1.0 when the batch is not mixed."""
    if rng.random() >= probability:
        return 1.0
    lam = rng.beta(alpha, alpha)
    cut = int(size * np.sqrt(1.0 - lam))
    cx, cy = rng.integers(size), rng.integers(size)
    x1, x2 = np.clip(cx - cut // 2, 0, size), np.clip(cx + cut // 2, 0, size)
    y1, y2 = np.clip(cy - cut // 2, 0, size), np.clip(cy + cut // 2, 0, size)
    return 1 - (x2 - x1) * (y2 - y1) / size**2


def test_cutmix_pastes_one_box_from_the_partners_and_weighs_labels_by_the_kept_area():
    mixed = _draw(Mixing(cutmix_alpha=1.0, cutmix_probability=0.5), 4, 16)
    images, partners, weights = np.asarray(mixed.images[..., 0]), np.asarray(mixed.partner), np.asarray(mixed.weight)
    own = np.arange(1.0, 5)[None, :, None, None]
    partner_values = np.broadcast_to((partners + 1.0)[..., None, None], images.shape)
    from_partner = images != own
    np.testing.assert_array_equal(images[from_partner], partner_values[from_partner])  # pasted from the partner
    for draw in range(DRAWS):  # one box for the whole batch; an image paired with itself shows none
        paired = partners[draw] != np.arange(4)
        if paired.any():
            box = from_partner[draw][paired.argmax()]
            assert all((from_partner[draw][i] == box).all() for i in np.flatnonzero(paired))
            assert weights[draw] == pytest.approx(1 - box.mean(), abs=1e-6)
    rng = np.random.default_rng(3)
    reference = [_yun_cutmix_kept_fraction(rng, 16, 1.0, 0.5) for _ in range(DRAWS)]
    assert stats.ks_2samp(weights, reference).pvalue > P_FLOOR
    assert 900 <= (weights == 1.0).sum() <= 1150  # half the batches left alone (plus empty boxes)


def test_the_mixed_loss_is_the_weighted_cross_entropy_of_both_labels():
    model = create_model("cifar_resnet20", num_classes=5, stage_sizes=(1, 1), widths=(4, 8), stem_width=4)
    tx = optax.sgd(0.0)
    state = create_train_state(random_variables(model, 8), tx, jax.random.PRNGKey(1))
    rng = np.random.default_rng(0)
    batch = {"image": jnp.asarray(rng.standard_normal((8, 8, 8, 3)), jnp.float32), "label": jnp.arange(8) % 5}
    mixing = Mixing(mixup_alpha=1.0)
    _, outputs = jax.jit(make_train_step(model, tx, mixing=mixing))(state, batch)
    mixed = mix(batch["image"], jax.random.fold_in(jax.random.fold_in(state.rng, 0), MIXING_STREAM), mixing)
    logits, _ = model.apply(state.variables(), mixed.images, train=True, mutable=["batch_stats"])
    labels, partners = batch["label"], batch["label"][mixed.partner]
    expected = mixed.weight * cross_entropy(logits, labels) + (1 - mixed.weight) * cross_entropy(logits, partners)
    assert 0.05 < float(mixed.weight) < 0.95  # both labels count
    np.testing.assert_allclose(np.asarray(outputs["loss"]), np.asarray(expected), rtol=1e-5)


@pytest.mark.parametrize("mixing", [Mixing(cutout_size=3), Mixing(mixup_alpha=1.0), Mixing(cutmix_alpha=1.0)])
def test_the_draws_do_not_depend_on_how_the_batch_is_sharded(mixing):
    """The global batch on 1 device or split over 8: the same mixed images (so process count and resume
    change nothing: the key is the step's)."""
    images = jnp.asarray(np.random.default_rng(0).standard_normal((16, 6, 6, 3)), jnp.float32)
    key = jax.random.key(7)
    one = jax.jit(lambda x: mix(x, key, mixing).images)(images)
    mesh = sharding.make_mesh()
    spread = jax.jit(lambda x: mix(x, key, mixing).images, in_shardings=sharding.batch_sharding(mesh))(images)
    np.testing.assert_array_equal(np.asarray(one), np.asarray(spread))


@pytest.mark.slow
# Resumed runs end bitwise: test_lean_runs, test_resume; the draws depend on (seed, step) alone: the test above.
@pytest.mark.extended
def test_a_cutmix_run_resumed_halfway_ends_bitwise_equal_to_an_uninterrupted_one(tmp_path):
    """The config's CutMix through the loop: 4 steps straight, or 2 then the same command for 4 (the
    schedule is constant, so only the resume differs). The draws come from (seed, step)."""
    from configs import default
    from resnet_jax.train import checkpoint, loop

    def config(steps: int):
        config = default.get_config()
        config.update(dict(image_size=8, batch_size=16, num_train_steps=steps, checkpoint_every_steps=2))
        config.update(dict(cutmix_alpha=1.0, schedule="piecewise", lr_boundaries=(), eval_every_steps=100))
        config.synthetic.num_eval_examples = 32
        return config

    loop.train_and_evaluate(config(4), tmp_path / "straight")
    loop.train_and_evaluate(config(2), tmp_path / "resumed")
    loop.train_and_evaluate(config(4), tmp_path / "resumed")
    straight, resumed = (checkpoint.load_tree(tmp_path / name) for name in ("straight", "resumed"))
    for a, b in zip(jax.tree_util.tree_leaves(straight), jax.tree_util.tree_leaves(resumed), strict=True):
        np.testing.assert_array_equal(a, b)
    assert '"cutmix_alpha": 1.0' in (tmp_path / "resumed" / "config.json").read_text()
    unmixed = config(2)
    unmixed.cutmix_alpha = 0.0
    loop.train_and_evaluate(unmixed, tmp_path / "unmixed")
    first_steps = checkpoint.load_tree(tmp_path / "resumed" / "checkpoints" / "2")["params"]
    moved = checkpoint.load_tree(tmp_path / "unmixed")["params"]
    assert any(  # CutMix changed the training (its batches were mixed)
        not np.array_equal(a, b)
        for a, b in zip(jax.tree_util.tree_leaves(first_steps), jax.tree_util.tree_leaves(moved), strict=True)
    )


def test_a_registered_batch_augmentation_runs_first_on_its_own_key_and_an_unknown_name_is_refused(toy_extensions):
    _, toy_augmentation, _ = toy_extensions
    from resnet_jax.config_schema import default_config
    from resnet_jax.data.augment.mixing import NAMED_STREAM
    from resnet_jax.errors import ConfigError
    from resnet_jax.train.settings import validate

    images = jax.random.normal(jax.random.key(0), (8, 4, 4, 1))
    key = jax.random.key(5)
    mixed = mix(images, key, Mixing(named=(toy_augmentation.NAME,)))
    flipped = jax.random.bernoulli(jax.random.fold_in(key, NAMED_STREAM), 0.5, (8, 1, 1, 1))
    np.testing.assert_array_equal(mixed.images, np.where(flipped, -images, images))  # drawn by hand
    assert 0 < int(flipped.sum()) < 8 and float(mixed.weight) == 1.0
    config = default_config()
    config.batch_augmentations = ("toy_negate_halff",)
    with pytest.raises(ConfigError, match="'toy_negate_halff' is not registered.*did you mean 'toy_negate_half'"):
        validate(config)
