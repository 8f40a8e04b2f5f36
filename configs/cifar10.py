"""He et al. 2016 (Deep Residual Learning, Sec. 4.2) on CIFAR-10: ResNet-20...1202 and the plain nets.

Run (ARG is resnet20, resnet32, resnet44, resnet56, resnet110, resnet1202 or plain20...plain110),
after preparing the dataset once from cifar-10-binary.tar.gz:

    python -m resnet_jax.data.prepare cifar10 --data_dir ~/tensorflow_datasets --manual_dir ~/archives
    python -m resnet_jax.main --config=configs/cifar10.py:resnet56 --workdir=runs/cifar10_resnet56

Recipe: batch 128, SGD momentum 0.9, lr 0.1 divided by 10 at 32k and 48k iterations, stop at 64k,
weight decay 1e-4 on every parameter, 4-pixel pad + random 32x32 crop + horizontal flip, and the
per-pixel mean subtracted. The paper chose this schedule on a 45k/5k train/val split: add
--config.validation_examples=5000 to hold out the last 5,000 train images (reported as val/*; the
test split is still eval/*).
ResNet-110 and -1202 warm up at lr 0.01 for the first 400 iterations (Sec. 4.2).
Hardware: the paper used 2 GPUs x 64 images, so BatchNorm statistics use groups of 64
(bn_group_size=64); one GPU or a TPU host reproduces it exactly.

Published CIFAR-10 test error: experiments/tables, table 'he2016_cifar10' (Table 6; plain nets: Fig. 6),
listed with `python experiments/reproduce.py --list`.
"""

import ml_collections

from configs import common, default

DEPTHS = {"resnet": (20, 32, 44, 56, 110, 1202), "plain": (20, 32, 44, 56, 110)}
NETWORKS = tuple(f"{family}{depth}" for family, depths in DEPTHS.items() for depth in depths)
WARMUP_DEPTHS = (110, 1202)


def get_config(arg: str = "resnet20") -> ml_collections.ConfigDict:
    """He et al.'s CIFAR-10 recipe for the network ``arg`` (e.g. 'resnet56', 'plain20')."""
    network = common.parse_arg(arg, "configs/cifar10.py", {"network": NETWORKS})[0]["network"]
    depth = int(network.removeprefix("resnet").removeprefix("plain"))
    config = default.get_config()
    config.model = f"cifar_{network}"
    config.dataset = "cifar10"
    config.crop_padding = 4
    config.random_flip = True
    config.normalisation = "pixel_mean"
    config.batch_size = 128
    config.bn_group_size = 64
    config.num_train_steps = 64_000
    config.learning_rate = 0.1
    config.schedule = "piecewise"
    config.lr_boundaries = (32_000, 48_000)
    config.lr_decay_factor = 0.1
    if depth in WARMUP_DEPTHS:
        config.warmup = "constant"
        config.warmup_steps = 400
        config.warmup_learning_rate = 0.01
    config.optimizer = "sgd"
    config.momentum = 0.9
    config.weight_decay = 1e-4
    config.weight_decay_on_all = True
    config.log_every_steps = 100
    config.eval_every_steps = 4_000
    config.checkpoint_every_steps = 4_000
    return config
