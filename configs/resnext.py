"""Xie et al. 2017 (Aggregated Residual Transformations) ResNeXt-29 on CIFAR-10/100.

Run (ARG is 'DATASET' or 'DATASET,MODEL', MODEL resnext29_8x64d (default) or resnext29_16x64d):

    python -m resnet_jax.main --config=configs/resnext.py:cifar10 --workdir=runs/resnext29_8x64d_c10

Recipe (Sec. 5.3): batch 128 on 8 GPUs (16 per GPU, so bn_group_size=16), SGD momentum 0.9,
lr 0.1 divided by 10 at epochs 150 and 225, 300 epochs, weight decay 5e-4 on every parameter,
flip + translation augmentation.

Published test error: experiments/tables, table 'xie2017' (Table 7).
"""

import ml_collections

from configs import common

MODELS = ("resnext29_8x64d", "resnext29_16x64d")


def get_config(arg: str = "cifar10") -> ml_collections.ConfigDict:
    """The ResNeXt-29 recipe for ``arg`` = 'DATASET[,MODEL]' (any order; default model resnext29_8x64d)."""
    setting, _ = common.parse_arg(
        arg, "configs/resnext.py", {"dataset": common.CIFAR_DATASETS, "model": MODELS}, {"model": MODELS[0]}
    )
    config = common.cifar_sgd_config(setting["dataset"], setting["model"])
    config.bn_group_size = 16
    config.num_epochs = 300.0
    config.lr_boundaries_epochs = (150.0, 225.0)
    config.lr_decay_factor = 0.1
    config.weight_decay = 5e-4
    config.weight_decay_on_all = True
    return config
