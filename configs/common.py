"""Pieces shared by the CIFAR recipes of wrn.py and resnext.py (the default config is default.py)."""

import ml_collections

from configs import default

NUM_CLASSES = {"cifar10": 10, "cifar100": 100}
CIFAR_STEPS_PER_EPOCH = 391  # ceil(50,000 / 128)


def parse_setting(arg: str, default_model: str, published: dict) -> tuple[str, str]:
    """'DATASET' or 'DATASET,MODEL' -> (dataset, model), checked against the published settings."""
    dataset, _, model = arg.partition(",")
    model = model or default_model
    if (dataset, model) not in published:
        raise ValueError(f"unknown setting {arg!r}; choose DATASET,MODEL from {list(published)}")
    return dataset, model


def cifar_sgd_config(dataset: str, model: str) -> ml_collections.ConfigDict:
    """Batch 128, SGD momentum 0.9 from lr 0.1 with a piecewise schedule in epochs: fill in the rest."""
    config = default.get_config()
    config.model = model
    config.dataset = dataset
    config.num_classes = NUM_CLASSES[dataset]
    config.image_size = 32
    config.crop_padding = 4
    config.random_flip = True
    config.batch_size = 128
    config.num_train_steps = 0
    config.optimizer = "sgd"
    config.momentum = 0.9
    config.learning_rate = 0.1
    config.schedule = "piecewise"
    config.log_every_steps = 100
    config.eval_every_steps = 10 * CIFAR_STEPS_PER_EPOCH
    config.checkpoint_every_steps = 10 * CIFAR_STEPS_PER_EPOCH
    return config
