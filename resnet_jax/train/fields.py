"""Training's config fields, in two sections: optimisation (the optimizer, its schedule, weight decay, which
parts train) and run (length, batches, the step's options, evaluation, checkpoints and bookkeeping); with
their rules and the grammar of ``freeze`` and ``lr_multipliers``. Pure Python until a rule needs a library.
"""

import math
from typing import Any

from resnet_jax.errors import require
from resnet_jax.fields import Field, Owned, Section
from resnet_jax.ranges import AT_LEAST_ONE, FRACTION, NON_NEGATIVE, POSITIVE, UNIT_INTERVAL

OPTIMISATION_FIELDS = (
    Field(
        "optimizer",
        "sgd",
        "'sgd' (momentum), 'lars' (You et al. 2017), 'adamw' or 'rmsprop' (TensorFlow's: decay 0.9, eps 1e-3; "
        "EfficientNet)",
        Owned("resnet_jax.train.optim", "OPTIMIZERS"),
    ),
    Field("momentum", 0.9, "momentum of SGD, LARS and RMSProp (AdamW keeps optax's b1 0.9, b2 0.999)", range=FRACTION),
    Field("nesterov", False, "Nesterov momentum (WRN)"),
    Field("learning_rate", 0.1, "base (peak) learning rate", range=NON_NEGATIVE),
    Field("lr_scaling", "none", "'linear': learning_rate x batch_size / 256 (Goyal et al. 2017)", ("none", "linear")),
    Field("schedule", "cosine", "learning-rate decay after warm-up", Owned("resnet_jax.train.optim", "SCHEDULES")),
    Field(
        "lr_boundaries",
        (),
        "piecewise decay points in steps (or use lr_boundaries_epochs)",
        range=POSITIVE,
        element=int,
    ),
    Field("lr_boundaries_epochs", (), "piecewise decay points in epochs", range=POSITIVE, element=float),
    Field(
        "lr_decay_factor",
        0.1,
        "multiplier at each boundary (WRN: 0.2), or every lr_decay_every_epochs (EfficientNet: 0.97)",
        range=POSITIVE,
    ),
    Field(
        "lr_decay_every_epochs",
        0.0,
        "schedule='exponential': multiply the rate by lr_decay_factor every this many epochs (EfficientNet: 2.4)",
        range=NON_NEGATIVE,
    ),
    Field("warmup_steps", 0, "warm-up length in steps (or use warmup_epochs)", range=NON_NEGATIVE),
    Field("warmup_epochs", 0.0, "warm-up length in epochs", range=NON_NEGATIVE),
    Field(
        "warmup",
        "linear",
        "'linear' ramp from warmup_learning_rate, or hold it 'constant' (He et al.'s ResNet-110)",
        Owned("resnet_jax.train.optim", "WARMUPS"),
    ),
    Field("warmup_learning_rate", 0.0, "start (linear) or held (constant) warm-up rate", range=NON_NEGATIVE),
    Field("weight_decay", 1e-4, "weight decay coefficient", range=NON_NEGATIVE),
    Field(
        "weight_decay_mode",
        "",
        "'' = the optimizer's own: 'l2' (added to the gradient, the papers) for SGD and LARS, 'decoupled' for "
        "AdamW; SGD also takes 'decoupled' (SGDW)",
        ("", "l2", "decoupled"),
    ),
    Field("weight_decay_on_all", False, "decay BN parameters and biases too, as He et al. 2016 did"),
    Field("grad_clip_norm", 0.0, "> 0: clip the global gradient norm to this", range=NON_NEGATIVE),
    Field("freeze", "", "comma-separated parts not trained: 'stem', 'layer1', ..., 'head'"),
    Field(
        "freeze_mode",
        "inference",
        "how frozen parts run in training: 'inference' (their BatchNorm uses and keeps its running statistics, "
        "no dropout: the pretrained network's function) or 'train' (their BatchNorm normalises each batch and "
        "its statistics follow the new data)",
        choices=("inference", "train"),
    ),
    Field("lr_multipliers", "", "per-part learning-rate multipliers, e.g. 'stem=0.1,layer1=0.1'"),
)
RUN_FIELDS = (
    Field("batch_size", 32, "global batch over all devices and processes", range=AT_LEAST_ONE),
    Field("eval_batch_size", 0, "global eval batch; 0 = batch_size", range=NON_NEGATIVE),
    Field("grad_accum_steps", 1, "microbatches per batch (same result, less memory)", range=AT_LEAST_ONE),
    Field("num_train_steps", 200, "> 0: train this many steps (wins over num_epochs); <= 0: use num_epochs"),
    Field("num_epochs", 0.0, "epochs over the train split, used when num_train_steps <= 0", range=NON_NEGATIVE),
    Field("label_smoothing", 0.0, "label smoothing of the cross-entropy", range=FRACTION),
    Field(
        "cutout_size",
        0,
        "Cutout: a square of this side zeroed in each normalised train image (DeVries & Taylor: 16 on "
        "CIFAR-10); 0 = off",
        range=NON_NEGATIVE,
    ),
    Field(
        "mixup_alpha",
        0.0,
        "Mixup: lambda ~ Beta(alpha, alpha) per batch (Zhang et al.: 1 on CIFAR); 0 = off",
        range=NON_NEGATIVE,
    ),
    Field(
        "cutmix_alpha",
        0.0,
        "CutMix: lambda ~ Beta(alpha, alpha) per batch (Yun et al.: 1); 0 = off",
        range=NON_NEGATIVE,
    ),
    Field(
        "cutmix_probability",
        1.0,
        "CutMix: probability that a batch is mixed (Yun et al.'s CIFAR script: 0.5)",
        range=UNIT_INTERVAL,
    ),
    Field(
        "batch_augmentations",
        (),
        "registered batch augmentations applied, in this order, to each normalised train batch on the device, "
        "before Cutout, Mixup and CutMix (register_batch_augmentation, from your config's imports)",
        element=str,
    ),
    Field(
        "ema_decay", 0.0, "> 0: keep an EMA of the parameters, also evaluated (eval_ema/*, val_ema/*)", range=FRACTION
    ),
    Field(
        "steps_per_dispatch",
        1,
        "train steps each dispatch of the jitted program runs, as one lax.scan (dataset on the devices only): "
        "fewer kernel launches and host round trips for small nets on accelerators; the same batches and result",
        range=AT_LEAST_ONE,
    ),
    Field("init_from", "", "a workdir or checkpoint of this package, or a torchvision .pth file", path=True),
    Field("reinit_head", False, "re-initialise the head (always done when num_classes differs)"),
    Field("seed", 0, "seed of initialisation, data order, augmentation and dropout"),
    Field("log_every_steps", 20, "steps between progress lines and train metrics", range=AT_LEAST_ONE),
    Field("eval_every_steps", 100, "steps between evaluations (also at the end)", range=AT_LEAST_ONE),
    Field(
        "checkpoint_every_steps",
        100,
        "steps between checkpoints (also at the end and on SIGTERM/SIGINT)",
        range=AT_LEAST_ONE,
    ),
    Field("max_checkpoints_to_keep", 3, "checkpoints kept in the workdir", range=AT_LEAST_ONE),
    Field("profile", False, "capture a jax.profiler trace of a few steps into the workdir"),
    Field("wandb_project", "", "log to this Weights & Biases project ('' = off; needs the wandb extra)"),
    Field("wandb_entity", "", "W&B team or user ('' = your default entity)"),
    Field("wandb_run_name", "", "W&B run name ('' = W&B's generated name)"),
    Field("wandb_group", "", "W&B group, e.g. one per sweep ('' = none)"),
    Field(
        "compilation_cache_dir",
        "",
        "JAX's persistent compilation cache: '' = $JAX_COMPILATION_CACHE_DIR or "
        "~/.cache/resnet_jax/jax_compilation_cache; 'none' = off",
        path=True,
    ),
    Field(
        "join_timeout_s",
        300,
        "seconds a process of a multi-process job waits for all the others to start before it gives up, "
        "naming the ones that did not arrive",
        range=AT_LEAST_ONE,
    ),
)


def parse_parts(text: str) -> list[str]:
    """``freeze``'s grammar: 'stem, layer1' -> ['stem', 'layer1']."""
    return [part.strip() for part in text.split(",") if part.strip()]


def parse_multipliers(text: str) -> dict[str, float]:
    """``lr_multipliers``' grammar: 'stem=0.1,layer1=0.5' -> {'stem': 0.1, 'layer1': 0.5}."""
    multipliers = {}
    for part in parse_parts(text):
        name, separator, value = part.partition("=")
        try:
            multipliers[name.strip()] = float(value) if separator else math.nan
        except ValueError:
            multipliers[name.strip()] = math.nan
        require(
            multipliers[name.strip()] >= 0,
            f"lr_multipliers entries look like 'layer1=0.1' (a part, '=', a number >= 0), got {part!r}",
        )
    return multipliers


def check_optimisation_rules(settings: Any) -> None:
    """Decay points and warm-up given one way each, the parts' grammar, and a weight-decay mode the optimizer has."""
    from resnet_jax.train import optim

    require(
        not (settings.lr_boundaries and settings.lr_boundaries_epochs),
        "set lr_boundaries (steps) or lr_boundaries_epochs, not both",
    )
    require(not (settings.warmup_steps and settings.warmup_epochs), "set warmup_steps or warmup_epochs, not both")
    parse_parts(settings.freeze)
    parse_multipliers(settings.lr_multipliers)
    optim.check_weight_decay_mode(settings.optimizer, settings.weight_decay_mode)


def check_run_rules(settings: Any) -> None:
    """A length, one way of mixing batches, registered batch augmentations, and W&B installed when asked for."""
    require(
        settings.num_train_steps > 0 or settings.num_epochs > 0,
        f"set num_train_steps > 0 or num_epochs > 0 (got {settings.num_train_steps} and {settings.num_epochs})",
    )
    require(
        not (settings.mixup_alpha > 0 and settings.cutmix_alpha > 0),
        "set mixup_alpha or cutmix_alpha, not both: a batch is mixed one way",
    )
    if settings.batch_augmentations:
        from resnet_jax.data import check_batch_augmentations

        problem = check_batch_augmentations(settings.batch_augmentations)
        require(not problem, problem)
    if settings.wandb_project:
        from resnet_jax.train import tracking

        tracking.require_wandb()


OPTIMISATION = Section("optimisation", "resnet_jax.train", OPTIMISATION_FIELDS, check_optimisation_rules)
RUN = Section("run", "resnet_jax.train", RUN_FIELDS, check_run_rules)
