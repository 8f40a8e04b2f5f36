"""Zhong et al. 2017 (Random Erasing Data Augmentation) on CIFAR-10, CIFAR-100 and Fashion-MNIST.

ARG is 'DATASET,MODEL' plus optional tokens, comma-separated in any order:
DATASET is cifar10, cifar100 or fashion_mnist; MODEL is resnet20, resnet32, resnet44, resnet56,
resnet110 or wrn28_10 (the paper's rows), or plain20 ... plain110 (He et al.'s plain nets, for studies);
',erasing' adds Random Erasing with the paper's p = 0.5, sl = 0.02, sh = 0.4, r1 = 0.3 and random fill;
',budget' swaps the paper's 300 epochs for a short cosine schedule (see configs/fashion_mnist.py);
',authors' (Fashion-MNIST, ResNets) trains as the authors' released fashionmnist.py does instead of as the paper
says (below).

    python -m resnet_jax.main --config=configs/random_erasing.py:cifar10,resnet56,erasing --workdir=runs/re_c10_r56

Fashion-MNIST has its own file with the same recipe: configs/fashion_mnist.py:MODEL[,erasing][,budget].

Recipe (the paper, Sec. "Image classification", and the authors' released cifar.py / fashionmnist.py at
github.com/zhunzhong07/Random-Erasing, which agree on these): batch 128, SGD momentum 0.9, lr 0.1 divided by
10 at epochs 150 and 225, 300 epochs, weight decay 5e-4 on every parameter (PyTorch's SGD weight_decay),
random crop after zero-padding 4 pixels and a horizontal flip, then Random Erasing. Hardware: one GPU;
BatchNorm over the whole batch.

Where the default follows the paper's text and not the released code:
- the network: He et al.'s CIFAR ResNets, which the paper cites (cifar_resnetN: basic blocks, option A
  zero-padding shortcuts). The released code builds every depth with projection shortcuts (1x1 conv + BN
  where the shape changes), and from depth 44 on with bottleneck blocks (zhong_resnetN);
- Random Erasing: Algorithm 1 (size and corner redrawn together until the rectangle fits) with random values
  in the rectangle. The released code draws up to 100 sizes until one is smaller than the image, puts its
  corner where it fits, and fills the constant 0.4914 after normalisation;
- normalisation: the train split's per-channel statistics. The released Fashion-MNIST script uses MNIST's
  (0.1307, 0.3081); its CIFAR script fixed CIFAR-10 values.
',authors' takes the released code's side of all three (Fashion-MNIST only here, ResNet-20 to 110); the
batch, schedule, crops and weight decay are the same in both. The released script reports the best test
accuracy over the epochs; the results record the last epoch and the best.

Published test error: experiments/tables, table 'zhong2017' (Table 1: every dataset and model, baseline
and with Random Erasing).
"""

import ml_collections

from configs import common, default
from resnet_jax.errors import ConfigError

DATASETS = ("cifar10", "cifar100", "fashion_mnist")
MODELS = {
    **{f"resnet{depth}": f"cifar_resnet{depth}" for depth in (20, 32, 44, 56, 110)},
    **{f"plain{depth}": f"cifar_plain{depth}" for depth in (20, 32, 44, 56, 110)},
    "wrn28_10": "wrn28_10",
}
OPTIONS = ("erasing", "budget", "authors")
RELEASED_ERASING_FILL = 0.4914  # the released scripts' erasing value, after normalisation (CIFAR-10's red mean)
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
    if "authors" in options:
        authors_code(config, dataset, model)
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


def authors_code(config: ml_collections.ConfigDict, dataset: str, model: str) -> None:
    """Set the network, erasing and normalisation of the authors' released fashionmnist.py (module docstring)."""
    if dataset != "fashion_mnist" or not model.startswith("resnet"):
        raise ConfigError(
            f"',authors' reproduces the authors' released Fashion-MNIST ResNets (resnet20 ... resnet110); for "
            f"{dataset} with {model} leave it out, which trains the recipe as the paper describes it."
        )
    config.model = f"zhong_{model}"
    config.normalisation = "mnist"
    config.random_erasing.sampler = "authors"
    config.random_erasing.fill = "constant"
    config.random_erasing.fill_value = RELEASED_ERASING_FILL
