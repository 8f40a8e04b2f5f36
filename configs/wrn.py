"""Zagoruyko & Komodakis 2016 (Wide Residual Networks) on CIFAR-10/100.

Run (ARG is 'DATASET' or 'DATASET,MODEL', DATASET in cifar10/cifar100, MODEL a wrn* name):

    python -m resnet_jax.main --config=configs/wrn.py:cifar10 --workdir=runs/wrn28_10_c10
    python -m resnet_jax.main --config=configs/wrn.py:cifar100,wrn16_8 --workdir=runs/wrn16_8_c100
    (add --config.dropout_rate=0.3 for the paper's dropout rows)

Recipe: batch 128, SGD with Nesterov momentum 0.9, lr 0.1 multiplied by 0.2 at epochs 60, 120 and
160, 200 epochs, weight decay 5e-4, dampening 0, flip + 4-pixel pad-and-crop augmentation.
Hardware: one or more GPUs; statistics over the whole batch (bn_group_size=0).

Published test error (CIFAR-10 / CIFAR-100): WRN-28-10 4.17% / 20.50% (Table 4), with dropout
3.89% / 18.85% (Table 6); WRN-16-8 4.81% / 22.07%; WRN-40-4 4.97% / 22.89%.
"""

import ml_collections

from configs import common

PUBLISHED_TEST_ERROR = {
    ("cifar10", "wrn28_10"): 4.17,
    ("cifar100", "wrn28_10"): 20.50,
    ("cifar10", "wrn16_8"): 4.81,
    ("cifar100", "wrn16_8"): 22.07,
    ("cifar10", "wrn40_4"): 4.97,
    ("cifar100", "wrn40_4"): 22.89,
}


def get_config(arg: str = "cifar10") -> ml_collections.ConfigDict:
    """The WRN recipe for ``arg`` = 'DATASET' or 'DATASET,MODEL' (default model wrn28_10)."""
    config = common.cifar_sgd_config(*common.parse_setting(arg, "wrn28_10", PUBLISHED_TEST_ERROR))
    config.num_epochs = 200.0
    config.pad_mode = "reflect"
    config.nesterov = True
    config.lr_boundaries_epochs = (60.0, 120.0, 160.0)
    config.lr_decay_factor = 0.2
    config.weight_decay = 5e-4
    config.weight_decay_on_all = True
    return config
