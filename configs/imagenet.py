"""ImageNet (ILSVRC-2012) recipes for the torchvision-layout ResNets, ResNeXts and Wide ResNets.

Run (ARG is a model name, optionally followed by ',cosine'):

    python -m resnet_jax.main --config=configs/imagenet.py:resnet50 --workdir=runs/imagenet_resnet50
    python -m resnet_jax.main --config=configs/imagenet.py:resnet50,cosine --workdir=runs/r50_cosine

'step' (default) is He et al. 2016's recipe: batch 256, SGD momentum 0.9, lr 0.1 divided by 10 at
epochs 30, 60 and 90, 120 epochs (their 60e4 iterations), weight decay 1e-4 on every parameter.
'cosine' is the warm-up + cosine variant (Goyal et al. 2017; He et al. 2019, Bag of Tricks):
5 epochs of linear warm-up, cosine decay to 0 at 100 epochs, label smoothing 0.1, no decay on BN
parameters and biases, zero-initialised last BN of each block.
Both train on Inception-style random-resized crops, as torchvision's reference did; He et al.'s own
scale augmentation (shorter side in [256, 480], random 224 crop) is --config.train_crop=scale_jitter.
Eval: shorter side 256, centre 224 crop. Prepare the data once from the two original tars:

    python -m resnet_jax.data.prepare imagenet2012 --data_dir ~/tensorflow_datasets --manual_dir ~/archives

Both use the linear scaling rule: the rate is 0.1 x batch_size / 256, so changing batch_size keeps it.
Hardware: 8 GPUs x 32 images (bn_group_size=32), or any TPU/GPU slice; use --config.dtype=bfloat16
on accelerators.

Published single-crop 224px top-1 (torchvision's reference weights, trained with the step recipe):
resnet18 69.76, resnet34 73.31, resnet50 76.13, resnet101 77.37, resnet152 78.31,
resnext50_32x4d 77.62, resnext101_32x8d 79.31, wide_resnet50_2 78.47, wide_resnet101_2 78.85;
resnext101_64x4d 79.6 (Xie et al. 2017, Table 5). The cosine recipe adds about +1 (Bag of Tricks, Table 6).
"""

import ml_collections

from configs import default

PUBLISHED_TOP1 = {
    "resnet18": 69.76,
    "resnet34": 73.31,
    "resnet50": 76.13,
    "resnet101": 77.37,
    "resnet152": 78.31,
    "resnext50_32x4d": 77.62,
    "resnext101_32x8d": 79.31,
    "resnext101_64x4d": 79.6,
    "wide_resnet50_2": 78.47,
    "wide_resnet101_2": 78.85,
}
RECIPES = ("step", "cosine")
IMAGENET_TRAIN_EXAMPLES = 1_281_167


def get_config(arg: str = "resnet50") -> ml_collections.ConfigDict:
    """The ImageNet recipe ``arg`` = 'MODEL' or 'MODEL,RECIPE' with RECIPE in ('step', 'cosine')."""
    model, _, recipe = arg.partition(",")
    recipe = recipe or "step"
    if model not in PUBLISHED_TOP1:
        raise ValueError(f"unknown ImageNet model {model!r}; choose one of {list(PUBLISHED_TOP1)}")
    if recipe not in RECIPES:
        raise ValueError(f"unknown recipe {recipe!r}; choose one of {RECIPES}")
    config = default.get_config()
    config.model = model
    config.num_classes = 1000
    config.dataset = "imagenet2012"
    config.image_size = 224
    config.batch_size = 256
    config.bn_group_size = 32
    config.optimizer = "sgd"
    config.momentum = 0.9
    config.learning_rate = 0.1
    config.lr_scaling = "linear"
    config.weight_decay = 1e-4
    config.num_train_steps = 0
    if recipe == "step":
        config.num_epochs = 120.0
        config.schedule = "piecewise"
        config.lr_boundaries_epochs = (30.0, 60.0, 90.0)
        config.weight_decay_on_all = True
    else:
        config.num_epochs = 100.0
        config.schedule = "cosine"
        config.warmup = "linear"
        config.warmup_epochs = 5.0
        config.label_smoothing = 0.1
        config.zero_init_residual = True
    config.log_every_steps = 100
    config.eval_every_steps = 5_000
    config.checkpoint_every_steps = 2_000
    return config
