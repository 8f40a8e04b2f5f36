"""Zagoruyko & Komodakis 2016 (Wide Residual Networks) on CIFAR-10/100.

Run (ARG is DATASET (cifar10 or cifar100), optionally MODEL (wrn28_10, wrn16_8, wrn40_4) and 'dropout'
(dropout 0.3, the paper's Table 6 rows), comma-separated in any order):

    python -m resnet_jax.main --config=configs/wrn.py:cifar10 --workdir=runs/wrn28_10_c10
    python -m resnet_jax.main --config=configs/wrn.py:cifar100,wrn16_8 --workdir=runs/wrn16_8_c100
    python -m resnet_jax.main --config=configs/wrn.py:cifar10,dropout --workdir=runs/wrn28_10_c10_dropout

Recipe: batch 128, SGD with Nesterov momentum 0.9, lr 0.1 multiplied by 0.2 at epochs 60, 120 and
160, 200 epochs, weight decay 5e-4, dampening 0, flip + 4-pixel pad-and-crop augmentation.
Hardware: one or more GPUs; statistics over the whole batch (bn_group_size=0).

Published test error: experiments/tables, table 'zagoruyko2016' (Tables 4 and 6).
"""

import ml_collections

from configs import common

MODELS = ("wrn28_10", "wrn16_8", "wrn40_4")
DROPOUT_RATE = 0.3  # the ',dropout' rows of Table 6: dropout between the convolutions of each block


def get_config(arg: str = "cifar10") -> ml_collections.ConfigDict:
    """The WRN recipe for ``arg`` = 'DATASET[,MODEL][,dropout]' (any order; default model wrn28_10)."""
    setting, options = common.parse_arg(
        arg,
        "configs/wrn.py",
        {"dataset": common.CIFAR_DATASETS, "model": MODELS},
        {"model": MODELS[0]},
        ("dropout",),
    )
    config = common.cifar_sgd_config(setting["dataset"], setting["model"])
    config.block_dropout = DROPOUT_RATE if "dropout" in options else 0.0
    config.num_epochs = 200.0
    config.pad_mode = "reflect"
    config.nesterov = True
    config.lr_boundaries_epochs = (60.0, 120.0, 160.0)
    config.lr_decay_factor = 0.2
    config.weight_decay = 5e-4
    config.weight_decay_on_all = True
    return config
