"""ImageNet (ILSVRC-2012) recipes for the ResNets, ResNeXts and Wide ResNets, EfficientNets and HRNets.

Run (ARG is an ImageNet model name of the registry, default resnet50, and optionally the recipe
'cosine' or 'efficientnet'; 'step' is the default, 'efficientnet' for the EfficientNets):

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

'efficientnet' is Tan & Le 2019's (Sec. 5.2, and their reference TPU code for what the paper leaves out): 350
epochs, batch 4096, RMSProp (decay 0.9, momentum 0.9, TensorFlow's epsilon 1e-3), lr 0.256 at batch 4096
(0.016 x batch / 256), 5 warm-up epochs, then x0.97 every 2.4 epochs, weight decay 1e-5 on the kernels,
label smoothing 0.1, an EMA of the weights (0.9999), and the model's own resolution (B0 224 ... B7 600),
dropout (0.2 ... 0.5), stochastic depth (0.8) and BN (momentum 0.99, eps 1e-3). AutoAugment, which the paper
also uses, is not implemented here: expect roughly half a point of top-1 less (their ablation in the MnasNet
and AutoAugment papers). HRNet-W*-C trains with 'step' (Wang et al.: SGD 0.1, wd 1e-4, 100 epochs with decay at
30, 60 and 90; set --config.num_epochs=100 --config.lr_boundaries_epochs='(30.,60.,90.)' to match exactly).

All use the linear scaling rule: the rate is 0.1 x batch_size / 256, so changing batch_size keeps it.
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
from resnet_jax.models.registry import for_imagenet

MODELS = tuple(name for name in list_models() if for_imagenet(name))
RECIPES = ("step", "cosine", "efficientnet")
EFFICIENTNET_BATCH = 4096
EFFICIENTNET_LR_PER_256 = 0.016  # 0.256 at batch 4096
IMAGENET_TRAIN_EXAMPLES = spec.known("imagenet2012").num_train_examples


def get_config(arg: str = "resnet50") -> ml_collections.ConfigDict:
    """The ImageNet recipe ``arg`` = 'MODEL[,RECIPE]' (any order) with RECIPE 'step' (default) or 'cosine'."""
    setting, _ = common.parse_arg(
        arg, "configs/imagenet.py", {"model": MODELS, "recipe": RECIPES}, {"model": "resnet50", "recipe": "step"}
    )
    model, recipe = setting["model"], setting["recipe"]
    if model.startswith("efficientnet") and not any(token.strip() in RECIPES for token in arg.split(",")):
        recipe = "efficientnet"  # an EfficientNet's default: its paper's recipe
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
    if recipe == "efficientnet":
        _efficientnet_recipe(config)
    elif recipe == "step":
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


def _efficientnet_recipe(config: ml_collections.ConfigDict) -> None:
    """Tan & Le 2019's ImageNet recipe (Sec. 5.2 and the reference TPU code), at the model's own resolution."""
    config.image_size = get_spec(config.model).input_size
    config.batch_size = EFFICIENTNET_BATCH
    config.bn_group_size = 0  # the paper does not give the per-replica BN batch; statistics over each step's batch
    config.optimizer = "rmsprop"
    config.momentum = 0.9
    config.learning_rate = EFFICIENTNET_LR_PER_256
    config.weight_decay = 1e-5
    config.num_epochs = 350.0
    config.schedule = "exponential"
    config.lr_decay_factor = 0.97
    config.lr_decay_every_epochs = 2.4
    config.warmup = "linear"
    config.warmup_epochs = 5.0
    config.label_smoothing = 0.1
    config.ema_decay = 0.9999
