"""Every shipped config loads, validates and produces its paper's learning rates at the boundary steps.

Expected values are computed by hand from the papers' recipes (steps per epoch = examples / batch).
"""

import math
import re

import pytest

from configs import ablations, cifar10, default, digits, fashion_mnist, imagenet, random_erasing, resnext, wrn
from resnet_jax import config_schema
from resnet_jax.errors import ConfigError
from resnet_jax.models.options import variant_defaults
from resnet_jax.train import recipe
from resnet_jax.train.settings import settings_of

CIFAR_TRAIN_EXAMPLES = 50_000
ALL_CONFIGS = [
    *[(cifar10, network) for network in cifar10.NETWORKS],
    *[(imagenet, model) for model in imagenet.MODELS],
    (imagenet, "resnet50,cosine"),
    *[(wrn, f"{dataset},{model}") for dataset in ("cifar10", "cifar100") for model in wrn.MODELS],
    (wrn, "cifar10,dropout"),
    *[(resnext, f"{dataset},{model}") for dataset in ("cifar10", "cifar100") for model in resnext.MODELS],
    *[(fashion_mnist, f"{model}{options}") for model in random_erasing.MODELS for options in ("", ",erasing,budget")],
    *[(random_erasing, f"{dataset},resnet56,erasing") for dataset in ("cifar10", "cifar100")],
    *[(ablations, row) for row in ablations.ROWS],
    (ablations, "exclusive_gating,fashion_mnist,resnet56,budget"),
]


def schedule_of(config, num_train_examples):
    settings = settings_of(config)
    length = recipe.training_length(settings.run, num_train_examples)
    return length, recipe.build_schedule(settings.optimisation, length, settings.run.batch_size)


@pytest.mark.parametrize("module, arg", ALL_CONFIGS, ids=[f"{m.__name__}:{a}" for m, a in ALL_CONFIGS])
def test_config_is_valid(module, arg):
    config = module.get_config(arg)
    for field in ("model", "num_classes", "dataset", "data_dir", "batch_size", "learning_rate", "seed", "dtype"):
        assert field in config
    config.dataset = "synthetic"  # the TFDS datasets are checked by the data tests
    config.random_erasing.probability = 0.0  # only the in-memory TFDS datasets erase (tested there)
    config.validation_examples = 0  # and only they hold out a validation split
    config_schema.validate(config)


@pytest.mark.parametrize("module", [default, digits])
def test_argument_free_configs_are_valid(module):
    config_schema.validate(module.get_config())


def test_he2016_cifar_schedule_and_resnet110_warmup():
    length, lr = schedule_of(cifar10.get_config("resnet110"), CIFAR_TRAIN_EXAMPLES)
    assert length.num_train_steps == 64_000
    expected = {0: 0.01, 399: 0.01, 400: 0.1, 31_999: 0.1, 32_000: 0.01, 47_999: 0.01, 48_000: 0.001, 63_999: 0.001}
    for step, value in expected.items():
        assert float(lr(step)) == pytest.approx(value), step
    _, lr20 = schedule_of(cifar10.get_config("resnet20"), CIFAR_TRAIN_EXAMPLES)
    assert float(lr20(0)) == pytest.approx(0.1)


def test_wide_resnet_epoch_schedule():
    length, lr = schedule_of(wrn.get_config("cifar10"), CIFAR_TRAIN_EXAMPLES)
    steps_per_epoch = 50_000 / 128  # 390.625
    assert length.num_train_steps == math.ceil(200 * steps_per_epoch)
    for epoch, value in ((59, 0.1), (61, 0.02), (121, 0.004), (161, 0.0008)):
        assert float(lr(round(epoch * steps_per_epoch))) == pytest.approx(value), epoch
    assert float(lr(round(60 * steps_per_epoch))) == pytest.approx(0.02)  # 23,438 is the first step at 0.02


def test_resnext_epoch_schedule():
    _, lr = schedule_of(resnext.get_config("cifar100"), CIFAR_TRAIN_EXAMPLES)
    assert float(lr(round(149.9 * 390.625))) == pytest.approx(0.1)
    assert float(lr(round(150 * 390.625))) == pytest.approx(0.01)
    assert float(lr(round(225 * 390.625))) == pytest.approx(0.001)


def test_imagenet_2016_step_recipe():
    length, lr = schedule_of(imagenet.get_config("resnet50"), imagenet.IMAGENET_TRAIN_EXAMPLES)
    steps_per_epoch = 1_281_167 / 256
    assert length.num_train_steps == math.ceil(120 * steps_per_epoch)
    boundaries = [round(e * steps_per_epoch) for e in (30, 60, 90)]
    assert boundaries == [150_137, 300_274, 450_410]  # 5004.56 steps per epoch
    for boundary, before, after in zip(boundaries, (0.1, 0.01, 0.001), (0.01, 0.001, 0.0001), strict=True):
        assert float(lr(boundary - 1)) == pytest.approx(before)
        assert float(lr(boundary)) == pytest.approx(after)


def test_efficientnet_recipe_is_tan_and_le_2019s():
    """RMSProp 0.9 / 0.9, lr 0.256 at batch 4096 scaled linearly, x0.97 every 2.4 epochs after 5 warm-up epochs,
    wd 1e-5, 350 epochs, at the model's own resolution; an EfficientNet gets it by default."""
    config = imagenet.get_config("efficientnet_b3")
    assert (config.optimizer, config.momentum, config.weight_decay, config.image_size) == ("rmsprop", 0.9, 1e-5, 300)
    length, lr = schedule_of(config, imagenet.IMAGENET_TRAIN_EXAMPLES)
    steps_per_epoch = 1_281_167 / 4096
    assert length.num_train_steps == math.ceil(350 * steps_per_epoch)
    warmup, interval = round(5 * steps_per_epoch), round(2.4 * steps_per_epoch)
    assert float(lr(warmup // 2)) == pytest.approx(0.256 * (warmup // 2) / warmup, rel=1e-3)
    assert float(lr(warmup)) == pytest.approx(0.256 * 0.97 ** (warmup // interval))
    assert float(lr(10 * interval)) == pytest.approx(0.256 * 0.97**10)
    assert float(lr(10 * interval - 1)) == pytest.approx(0.256 * 0.97**9)
    config.batch_size = 1024  # linear scaling: a quarter of the rate, 0.064
    _, lr = schedule_of(config, imagenet.IMAGENET_TRAIN_EXAMPLES)
    interval = round(2.4 * 1_281_167 / 1024)
    assert float(lr(10 * interval)) == pytest.approx(0.064 * 0.97**10)
    assert imagenet.get_config("efficientnet_b0,cosine").optimizer == "sgd"


def test_imagenet_cosine_recipe_warms_up_to_the_linearly_scaled_peak():
    config = imagenet.get_config("resnet50,cosine")
    config.batch_size = 1024  # linear scaling rule: 0.1 x 1024 / 256 = 0.4
    length, lr = schedule_of(config, imagenet.IMAGENET_TRAIN_EXAMPLES)
    warmup = round(5 * 1_281_167 / 1024)
    assert float(lr(0)) == pytest.approx(0.0)
    assert float(lr(warmup // 2)) == pytest.approx(0.2, rel=1e-3)
    assert float(lr(warmup)) == pytest.approx(0.4)
    assert float(lr(length.num_train_steps)) == pytest.approx(0.0, abs=1e-6)
    assert config.label_smoothing == 0.1


@pytest.mark.parametrize(
    "module, arg, valid",
    [
        (cifar10, "resnet21", "one network (resnet20, resnet32, "),
        (imagenet, "resnet50,linear", "one recipe (step, cosine, efficientnet; default step)"),
        (wrn, "mnist", "one dataset (cifar10, cifar100)"),
        (resnext, "cifar10,x", "one model (resnext29_8x64d, resnext29_16x64d; default resnext29_8x64d)"),
    ],
)
def test_bad_config_arguments_list_the_valid_ones(module, arg, valid):
    with pytest.raises(ConfigError, match=re.escape(valid)):
        module.get_config(arg)


FASHION_MNIST_TRAIN_EXAMPLES = 60_000


def test_zhong2017_fashion_mnist_recipe_is_the_papers():
    # Zhong et al. 2017 and their fashionmnist.py: batch 128, SGD momentum 0.9, lr 0.1 / 10 at epochs 150
    # and 225, 300 epochs, weight decay 5e-4 (PyTorch's, so on every parameter), pad 4 + crop 28 + flip;
    # Random Erasing p = 0.5, sl = 0.02, sh = 0.4, r1 = 0.3, random values.
    config = fashion_mnist.get_config("erasing,resnet20")  # tokens in any order
    assert (config.model, config.dataset) == ("cifar_resnet20", "fashion_mnist")
    assert (config.num_classes, config.image_size) == (0, 0)  # the dataset's: 10 classes of 28x28, from its spec
    assert (config.batch_size, config.momentum, config.nesterov, config.weight_decay) == (128, 0.9, False, 5e-4)
    assert config.weight_decay_on_all and config.optimizer == "sgd" and config.bn_group_size == 0
    assert (config.crop_padding, config.pad_mode, config.random_flip) == (4, "constant", True)
    erasing = config.random_erasing
    assert (erasing.probability, tuple(erasing.area_range), erasing.min_aspect_ratio, erasing.fill) == (
        0.5,
        (0.02, 0.4),
        0.3,
        "random",
    )
    length, lr = schedule_of(config, FASHION_MNIST_TRAIN_EXAMPLES)
    steps_per_epoch = 60_000 / 128  # 468.75
    assert length.num_train_steps == math.ceil(300 * steps_per_epoch)
    for epoch, value in ((149.9, 0.1), (150, 0.01), (224.9, 0.01), (225, 0.001)):
        assert float(lr(round(epoch * steps_per_epoch))) == pytest.approx(value), epoch
    assert fashion_mnist.get_config("resnet20").random_erasing.probability == 0  # the baseline


def test_the_budget_recipe_is_a_short_cosine_schedule_of_the_same_recipe():
    full, budget = fashion_mnist.get_config("wrn28_10"), fashion_mnist.get_config("wrn28_10,budget")
    length, lr = schedule_of(budget, FASHION_MNIST_TRAIN_EXAMPLES)
    assert length.num_train_steps == math.ceil(5 * 60_000 / 128) == 2344
    assert float(lr(0)) == pytest.approx(0.1) and float(lr(1172)) == pytest.approx(0.05, rel=1e-3)
    assert float(lr(2344)) == pytest.approx(0.0, abs=1e-7)
    differing = {field for field in full if full[field] != budget[field]}
    assert differing == {"num_epochs", "schedule", "lr_boundaries_epochs"}


@pytest.mark.parametrize(
    "arg, problem",
    [
        ("resnet21", "unknown resnet21"),
        ("resnet20,resnet32", "model given twice"),
        ("resnet20,cutout", "unknown cutout"),
        ("cifar10,resnet20", "unknown cifar10"),
        ("", "no model"),
    ],
)
def test_bad_fashion_mnist_arguments_say_what_is_allowed(arg, problem):
    with pytest.raises(
        ConfigError, match=rf"fashion_mnist.py:.*\({problem}.*\)\. Give one model .*options: erasing, budget"
    ):
        fashion_mnist.get_config(arg)


@pytest.mark.parametrize(
    "module, arguments",
    [
        (wrn, ["cifar100,wrn16_8,dropout", "dropout,wrn16_8,cifar100", " wrn16_8 , dropout,cifar100"]),
        (imagenet, ["resnext50_32x4d,cosine", "cosine,resnext50_32x4d"]),
        (random_erasing, ["cifar10,resnet56,erasing", "erasing,cifar10,resnet56"]),
    ],
)
def test_every_config_reads_its_arg_tokens_in_any_order(module, arguments):
    configs = [module.get_config(argument).to_dict() for argument in arguments]
    assert all(config == configs[0] for config in configs)


def test_arg_defaults_and_options_follow_the_papers():
    assert (wrn.get_config("cifar100").model, wrn.get_config("cifar100").block_dropout) == ("wrn28_10", 0.0)
    assert wrn.get_config("cifar10,dropout").block_dropout == 0.3  # Zagoruyko & Komodakis, Table 6
    assert imagenet.get_config("").model == "resnet50" and imagenet.get_config("").num_epochs == 120
    assert "resnet50" in imagenet.MODELS and "cifar_resnet20" not in imagenet.MODELS
    with pytest.raises(ConfigError, match=r"cannot read configs/cifar10.py:resnet21 \(unknown resnet21"):
        cifar10.get_config("resnet21")


def test_num_train_steps_wins_over_an_epoch_recipe_and_says_so(caplog):
    config = cifar10.get_config("resnet20")
    config.num_train_steps, config.num_epochs = 0, 3.0
    config_schema.validate(config)
    assert recipe.training_length(settings_of(config).run, CIFAR_TRAIN_EXAMPLES).num_train_steps == math.ceil(
        3 * 50_000 / 128
    )
    config.num_train_steps = 7  # set on the command line of an epoch-based recipe
    config_schema.validate(config)
    with caplog.at_level("INFO"):
        assert recipe.training_length(settings_of(config).run, CIFAR_TRAIN_EXAMPLES).num_train_steps == 7
    assert "num_train_steps=7 overrides num_epochs=3" in caplog.text


def test_a_shortened_recipe_keeps_its_decay_points_and_names_a_too_long_warm_up(caplog):
    config = cifar10.get_config("resnet110")  # decays at 32k and 48k, warms up for 400 steps
    config.num_train_steps = 40_000
    with caplog.at_level("WARNING"):
        _, lr = schedule_of(config, CIFAR_TRAIN_EXAMPLES)
    assert "decay at step(s) 48000 comes after the last step (40000): never reached" in caplog.text
    assert [float(lr(step)) for step in (399, 400, 32_000)] == pytest.approx([0.01, 0.1, 0.01])
    config.num_train_steps = 400
    with pytest.raises(ConfigError, match=r"warm-up \(warmup_steps=400: 400 steps\) is not shorter than the run"):
        schedule_of(config, CIFAR_TRAIN_EXAMPLES)
    digits_config = digits.get_config()
    digits_config.num_train_steps = 10
    with pytest.raises(ConfigError, match=r"warmup_epochs=1: 22 steps.*lower warmup_epochs \(0 turns it off\)"):
        schedule_of(digits_config, 1437)


# Each recipe's settings as its paper states them, written here rather than read from the configs:
# (weight decay, momentum, Nesterov, global batch, BN group, crop padding, pad mode, flip, normalisation).
PAPER_SETTINGS = {
    # He et al. 2016, Sec. 4.2: wd 1e-4, momentum 0.9, batch 128 on 2 GPUs, 4-pixel pad + 32 crop + flip,
    # per-pixel mean subtracted.
    ("cifar10", "resnet56"): (1e-4, 0.9, False, 128, 64, 4, "constant", True, "pixel_mean"),
    # He et al. 2016, Sec. 3.4: wd 1e-4, momentum 0.9, batch 256 (8 GPUs x 32, as Goyal et al. describe).
    ("imagenet", "resnet50"): (1e-4, 0.9, False, 256, 32, 0, "constant", False, "channel"),
    # Zagoruyko & Komodakis 2016, Sec. 3: wd 5e-4, Nesterov momentum 0.9, batch 128, reflect pad 4 + flip.
    ("wrn", "cifar10"): (5e-4, 0.9, True, 128, 0, 4, "reflect", True, "channel"),
    # Xie et al. 2017, Sec. 5.3: wd 5e-4, momentum 0.9, batch 128 on 8 GPUs (16 each), translation + flip.
    ("resnext", "cifar10"): (5e-4, 0.9, False, 128, 16, 4, "constant", True, "channel"),
    # Zhong et al. 2017 (and their fashionmnist.py): wd 5e-4, momentum 0.9, batch 128, zero pad 4 + flip.
    ("fashion_mnist", "resnet20"): (5e-4, 0.9, False, 128, 0, 4, "constant", True, "channel"),
}
CONFIG_MODULES = {"cifar10": cifar10, "imagenet": imagenet, "wrn": wrn, "resnext": resnext}


@pytest.mark.parametrize("recipe_file, arg", sorted(PAPER_SETTINGS))
def test_each_recipe_sets_what_its_paper_states(recipe_file, arg):
    module = CONFIG_MODULES.get(recipe_file, fashion_mnist)
    config = module.get_config(arg)
    fields = (
        config.weight_decay,
        config.momentum,
        config.nesterov,
        config.batch_size,
        config.bn_group_size,
        config.crop_padding,
        config.pad_mode,
        config.random_flip,
        config.normalisation,
    )
    assert fields == PAPER_SETTINGS[(recipe_file, arg)]
    assert (config.optimizer, config.learning_rate) == ("sgd", 0.1)


def test_random_erasing_recipe_uses_the_papers_hyperparameters():
    settings = fashion_mnist.get_config("resnet20,erasing").random_erasing
    # Zhong et al. 2017, Sec. 4.1: p = 0.5, sl = 0.02, sh = 0.4, r1 = 0.3, random values.
    assert (settings.probability, tuple(settings.area_range), settings.min_aspect_ratio, settings.fill) == (
        0.5,
        (0.02, 0.4),
        0.3,
        "random",
    )


# He et al. 2016b, Table 1 and Fig. 2 (the gate's bias b_g, the scales), Table 2 and Fig. 4 (the orders);
# Huang et al. 2016, Sec. 4 (p_L = 0.5). Written from the papers: (field, value) pairs each row sets.
ABLATION_SETTINGS = {
    "original": {},
    "shortcut_half": {"shortcut_scale": 0.5},
    "constant_scaling": {"shortcut_scale": 0.5, "branch_scale": 0.5},
    "exclusive_gating": {"gate": "exclusive", "gate_bias_init": -6.0},
    "exclusive_gating_b0": {"gate": "exclusive"},
    "exclusive_gating_b7": {"gate": "exclusive", "gate_bias_init": -7.0},
    "shortcut_gating": {"gate": "shortcut_only", "gate_bias_init": -6.0},
    "shortcut_gating_b0": {"gate": "shortcut_only"},
    "conv_shortcut": {"shortcut": "C"},
    "dropout_shortcut": {"shortcut_dropout": 0.5},
    "bn_after_addition": {"activation_order": "bn_after_addition"},
    "relu_before_addition": {"activation_order": "relu_before_addition"},
    "relu_preactivation": {"activation_order": "relu_preactivation"},
    "full_preactivation": {"activation_order": "full_preactivation"},
    "constant_depth": {},
    "stochastic_depth": {"stochastic_depth": 0.5},
}


@pytest.mark.parametrize("row", sorted(ABLATION_SETTINGS))
def test_each_ablation_row_changes_only_its_variant_on_its_papers_recipe(row):
    config = ablations.get_config(row)
    defaults = variant_defaults()
    assert {name: config[name] for name in defaults if config[name] != defaults[name]} == ABLATION_SETTINGS[row]
    assert config.model == "cifar_resnet110" and config.dataset == "cifar10"
    assert (config.batch_size, config.momentum, config.weight_decay, config.learning_rate) == (128, 0.9, 1e-4, 0.1)
    if row in ("constant_depth", "stochastic_depth"):  # Huang et al.: 500 epochs, /10 at 250 and 375, Nesterov
        assert (config.num_epochs, tuple(config.lr_boundaries_epochs), config.nesterov) == (500.0, (250.0, 375.0), True)
        assert config.validation_examples == 5_000 and config.warmup_steps == 0
    else:  # He et al. 2016's CIFAR recipe, with the 400-iteration warm-up of ResNet-110
        assert (config.num_train_steps, tuple(config.lr_boundaries), config.nesterov) == (
            64_000,
            (32_000, 48_000),
            False,
        )
        assert (config.warmup, config.warmup_steps, config.warmup_learning_rate) == ("constant", 400, 0.01)


def test_the_fashion_mnist_probe_is_the_budget_recipe_with_the_rows_variant():
    probe = ablations.get_config("exclusive_gating,fashion_mnist,resnet56,budget")
    budget = fashion_mnist.get_config("resnet56,budget")
    changed = {name for name in budget.to_dict() if probe[name] != budget[name]}
    assert changed == {"gate", "gate_bias_init"}


def test_the_finetune_recipes_are_the_five_strategies_of_the_advice():
    from configs import finetune

    configs = {strategy: finetune.get_config(strategy) for strategy in finetune.STRATEGIES}
    body = "stem,layer1,layer2,layer3"  # cifar_resnet20: everything but the head
    assert configs["probe"].freeze == body and not configs["probe"].lr_multipliers
    assert configs["last"].freeze == "stem,layer1,layer2" and not configs["last"].lr_multipliers
    assert configs["discriminative"].lr_multipliers == "stem=0.1,layer1=0.1,layer2=0.1,layer3=0.1"
    assert not configs["discriminative"].freeze and not configs["full"].freeze and not configs["full"].lr_multipliers
    assert not configs["scratch"].reinit_head and all(
        configs[s].reinit_head for s in ("probe", "discriminative", "full", "last")
    )
    assert {(c.learning_rate, c.num_train_steps, c.batch_size, c.num_classes) for c in configs.values()} == {
        (0.1, 200, 64, 0)
    }
    assert finetune.get_config("probe,resnet18").freeze == "stem,layer1,layer2,layer3,layer4"
    photos = finetune.get_config("photos,full,resnet18")  # the streamed pipeline's crops, not pad-and-crop
    assert (photos.crop_padding, photos.pipeline, photos.random_flip) == (0, "streamed", True)
    for config in (*configs.values(), photos):
        config_schema.validate(config)
