"""ImageNet (ILSVRC-2012) recipes for the torchvision-layout ResNets, ResNeXts and Wide ResNets.

Run (ARG is an ImageNet model name of the registry, default resnet50, and optionally the recipe
'cosine'; 'step' is the default):

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

Published top-1 error: experiments/tables, table 'imagenet_reference' (single 224 crop: torchvision's
reference weights, and Xie et al. 2017 Table 5 for resnext101_64x4d) and 'he2016_imagenet' (the paper's
10-crop numbers). The cosine recipe adds about +1 top-1 (Bag of Tricks, Table 6).
"""

import ml_collections

from configs import common, default
from resnet_jax.data import spec
from resnet_jax.models import get_spec, list_models
from resnet_jax.models.registry import IMAGENET_INPUT_SIZE

MODELS = tuple(name for name in list_models() if get_spec(name).input_size == IMAGENET_INPUT_SIZE)
RECIPES = ("step", "cosine")
IMAGENET_TRAIN_EXAMPLES = spec.known("imagenet2012").num_train_examples


def get_config(arg: str = "resnet50") -> ml_collections.ConfigDict:
    """The ImageNet recipe ``arg`` = 'MODEL[,RECIPE]' (any order) with RECIPE 'step' (default) or 'cosine'."""
    setting, _ = common.parse_arg(
        arg, "configs/imagenet.py", {"model": MODELS, "recipe": RECIPES}, {"model": "resnet50", "recipe": "step"}
    )
    model, recipe = setting["model"], setting["recipe"]
    config = default.get_config()
    config.model = model
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
