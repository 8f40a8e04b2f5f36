"""Fine-tuning a pretrained network on a new dataset: the five strategies of the common advice.

ARG is STRATEGY plus an optional MODEL and 'photos', comma-separated in any order:
- 'scratch': no pretraining, every layer trained from a fresh initialisation (the baseline);
- 'probe': the pretrained body frozen, only the new head trained (a linear probe);
- 'discriminative': every layer trained, the pretrained ones at 0.1x the head's learning rate;
- 'full': every layer trained at the full learning rate;
- 'last': the last stage and the new head trained, the stem and the earlier stages frozen ("fine-tune the last
  layers").
MODEL is resnet20 (default), resnet32, resnet56 (CIFAR ResNets), resnet18 or resnet50 (torchvision's).
'photos' is for large or varying images, which the streamed pipeline feeds: its random-resized crops
and flips replace the pad-and-crop of small images (which that pipeline would refuse).

    python -m resnet_jax.main --config=configs/finetune.py:probe --workdir=runs/ft_probe \\
        --config.dataset=folder:PATH --config.init_from=PRETRAINED_WORKDIR

``init_from`` takes a workdir of this package (its last checkpoint), a checkpoint folder or a torchvision
``.pth``; the head is always re-initialised for the new classes (``reinit_head``). ``num_classes`` and
``image_size`` are the dataset's. With 'scratch', leave ``init_from`` unset.

Recipe: batch 64, SGD momentum 0.9, head learning rate 0.1 with cosine decay over a fixed 200 steps (the
same for every dataset size, so strategies and sizes are compared at equal compute), weight decay 5e-4,
zero-pad 4 + random crop + horizontal flip (with 'photos': random-resized crop + flip at image_size, 224
unless set), per-channel normalisation with the target's train statistics.
Frozen parts run as at inference (``freeze_mode='inference'``): their BatchNorm normalises with the pretrained
running statistics and keeps them, so 'probe' trains a linear classifier on the pretrained network's features.
"""

import ml_collections

from configs import common, default
from resnet_jax.models import get_spec

STRATEGIES = ("scratch", "probe", "discriminative", "full", "last")
MODELS = {
    **{f"resnet{depth}": f"cifar_resnet{depth}" for depth in (20, 32, 56)},
    "resnet18": "resnet18",
    "resnet50": "resnet50",
}
PRETRAINED_LR_MULTIPLIER = 0.1  # 'discriminative': the pretrained layers' learning rate over the head's
FINETUNE_STEPS = 200


def body_parts(model: str) -> list[str]:
    """The pretrained parts of ``model``: the stem and each stage (everything but the head)."""
    return ["stem", *(f"layer{stage + 1}" for stage in range(len(get_spec(model).kwargs["stage_sizes"])))]


def get_config(arg: str = "full") -> ml_collections.ConfigDict:
    """The fine-tuning recipe for ``arg`` = 'STRATEGY[,MODEL][,photos]' (any order)."""
    setting, options = common.parse_arg(
        arg, "configs/finetune.py", {"strategy": STRATEGIES, "model": MODELS}, {"model": "resnet20"}, ("photos",)
    )
    strategy, model = setting["strategy"], MODELS[setting["model"]]
    config = default.get_config()
    config.model = model
    config.dataset = "fashion_mnist"  # replace with the target: --config.dataset=folder:PATH or tfds:NAME
    config.crop_padding = 0 if "photos" in options else 4
    config.pipeline = "streamed" if "photos" in options else "auto"
    config.random_flip = True
    config.batch_size = 64
    config.num_train_steps = FINETUNE_STEPS
    config.optimizer = "sgd"
    config.momentum = 0.9
    config.learning_rate = 0.1
    config.schedule = "cosine"
    config.weight_decay = 5e-4
    config.reinit_head = strategy != "scratch"
    if strategy == "probe":
        config.freeze = ",".join(body_parts(model))
    if strategy == "last":
        config.freeze = ",".join(body_parts(model)[:-1])
    if strategy == "discriminative":
        config.lr_multipliers = ",".join(f"{part}={PRETRAINED_LR_MULTIPLIER}" for part in body_parts(model))
    config.log_every_steps = 50
    config.eval_every_steps = FINETUNE_STEPS  # the test split once, at the end
    config.checkpoint_every_steps = 100
    return config
