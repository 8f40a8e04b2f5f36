"""Zhong et al. 2017 (Random Erasing Data Augmentation) on CIFAR-10, CIFAR-100 and Fashion-MNIST.

ARG is 'DATASET,MODEL' plus optional tokens, comma-separated in any order:
DATASET is cifar10, cifar100 or fashion_mnist; MODEL is resnet20, resnet32, resnet44, resnet56,
resnet110 or wrn28_10 (the paper's rows), or plain20 ... plain110 (He et al.'s plain nets, for studies);
',erasing' adds Random Erasing with the paper's p = 0.5, sl = 0.02, sh = 0.4, r1 = 0.3 and random fill;
',budget' swaps the paper's 300 epochs for a short cosine schedule (see configs/fashion_mnist.py).

    python -m resnet_jax.main --config=configs/random_erasing.py:cifar10,resnet56,erasing --workdir=runs/re_c10_r56

Fashion-MNIST has its own file with the same recipe: configs/fashion_mnist.py:MODEL[,erasing][,budget].

Recipe (the paper, Sec. "Image classification", and the authors' released cifar.py / fashionmnist.py at
github.com/zhunzhong07/Random-Erasing): batch 128, SGD momentum 0.9, lr 0.1 divided by 10 at epochs 150
and 225, 300 epochs, weight decay 5e-4 on every parameter (PyTorch's SGD weight_decay), random crop
after zero-padding 4 pixels and a horizontal flip, then Random Erasing. Per-channel normalisation with
the train split's statistics. Hardware: one GPU; BatchNorm over the whole batch.
Differences from the released script, on purpose: it normalises Fashion-MNIST with MNIST's
statistics and fills erased pixels with a constant; it builds ResNet-44/56/110 from bottleneck blocks
with projection shortcuts, where the paper cites He et al.'s ResNets, which this recipe trains (option A).

Published test error: experiments/tables, table 'zhong2017' (Table 1: every dataset and model, baseline
and with Random Erasing).
"""

import ml_collections

from configs import common, default

DATASETS = ("cifar10", "cifar100", "fashion_mnist")
MODELS = {
    **{f"resnet{depth}": f"cifar_resnet{depth}" for depth in (20, 32, 44, 56, 110)},
    **{f"plain{depth}": f"cifar_plain{depth}" for depth in (20, 32, 44, 56, 110)},
    "wrn28_10": "wrn28_10",
}
OPTIONS = ("erasing", "budget")
BATCH_SIZE = 128
BUDGET_EPOCHS = 5.0  # the ',budget' schedule: cifar_resnet20 on Fashion-MNIST in about 20 min on 2 CPU cores


def get_config(arg: str = "fashion_mnist,resnet20") -> ml_collections.ConfigDict:
    """Zhong et al.'s recipe for ``arg`` = 'DATASET,MODEL[,erasing][,budget]' (any order)."""
    setting, options = common.parse_arg(
        arg, "configs/random_erasing.py", {"dataset": DATASETS, "model": MODELS}, {}, OPTIONS
    )
    return recipe(setting["dataset"], setting["model"], options)


def recipe(dataset: str, model: str, options: set[str]) -> ml_collections.ConfigDict:
    """The recipe for a dataset, a model name of ``MODELS`` and a subset of ``OPTIONS``."""
    steps_per_epoch = common.steps_per_epoch(dataset, BATCH_SIZE)
    config = default.get_config()
    config.model = MODELS[model]
    config.dataset = dataset
    config.crop_padding = 4
    config.random_flip = True
    config.batch_size = BATCH_SIZE
    config.num_train_steps = 0
    config.optimizer = "sgd"
    config.momentum = 0.9
    config.learning_rate = 0.1
    config.weight_decay = 5e-4
    config.weight_decay_on_all = True
    if "budget" in options:
        config.num_epochs = BUDGET_EPOCHS
        config.schedule = "cosine"
    else:
        config.num_epochs = 300.0
        config.schedule = "piecewise"
        config.lr_boundaries_epochs = (150.0, 225.0)
        config.lr_decay_factor = 0.1
    if "erasing" in options:
        config.random_erasing.probability = 0.5
    config.log_every_steps = 50
    config.eval_every_steps = steps_per_epoch  # every epoch, as the authors' script: curves and best epoch
    config.checkpoint_every_steps = steps_per_epoch
    return config
