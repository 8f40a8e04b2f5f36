"""Every config field, declared once: name, default, one-line doc, accepted values and who reads it.

``FIELDS`` is the single source. From it come ``configs/default.py`` (``default_config``), the checks
run before anything starts (``validate``), the field listing of ``--help``/``--helpfull``
(``help_text``), the sweep's field-name check (``field_names``) and the README's table
(``python -m resnet_jax.config_schema --markdown``). Adding an option is one ``Field`` here (plus the
code that uses it); a config that sets an undeclared field fails.

Each subsystem reads its own ``view`` (model, data, optimisation, run) of the flat ConfigDict, so what a
subsystem depends on is written here, next to each field. Allowed values that a subsystem dispatches on
(model and dataset names, optimizers, schedules) stay constants of that subsystem and are read from it
lazily, so loading a config imports neither JAX nor TensorFlow (``validate`` does import JAX and flax: it
builds the model definition to check the architecture options). Only ``default_config`` imports
ml_collections, so the core (models, data, the step, the benchmark) runs where only jax, flax and optax
are installed.
"""

import dataclasses
import difflib
import importlib
import math
import sys
from collections.abc import Mapping
from typing import Any

from resnet_jax.errors import ConfigError, require
from resnet_jax.models import options
from resnet_jax.ranges import AT_LEAST_ONE, FRACTION, NON_NEGATIVE, POSITIVE, UNIT_INTERVAL, Range

MODEL, DATA, OPTIMISATION, RUN = "model", "data", "optimisation", "run"
VIEWS = (MODEL, DATA, OPTIMISATION, RUN)


@dataclasses.dataclass(frozen=True)
class Owned:
    """Allowed values that another module owns (``module.attribute``, a sequence or a function giving
    one); ``doc`` describes them in listings where the full list would be too long."""

    module: str
    attribute: str
    doc: str = ""

    def values(self) -> tuple:
        """The values, importing the owner on first use."""
        values = getattr(importlib.import_module(self.module), self.attribute)
        return tuple(values() if callable(values) else values)


@dataclasses.dataclass(frozen=True)
class Field:
    """One config field.

    Attributes:
      name: the flat name, dotted inside a group (``random_erasing.probability``).
      default: the value of ``configs/default.py``; its type is the field's type.
      doc: one line on what it does (and the paper value where one applies).
      views: the subsystems that read it; the first is where it is listed.
      choices: the allowed values (a tuple, or ``Owned`` by the subsystem that dispatches on them).
      range: the allowed numbers (for a tuple field: each element).
      element: the element type of a tuple field; ``length`` its fixed length, if any.
      path: a path or URI ('' for none), which must be on a filesystem this install can open (``gs://``).
    """

    name: str
    default: Any
    doc: str
    views: tuple[str, ...]
    choices: tuple | Owned | None = None
    range: Range | None = None
    element: type | None = None
    length: int | None = None
    path: bool = False

    def allowed_values(self) -> tuple | None:
        """The allowed values, or None when any value of the right type (and range) is allowed."""
        return self.choices.values() if isinstance(self.choices, Owned) else self.choices

    def check(self, value: Any) -> None:
        """Raise ConfigError, saying what is allowed and what the field is for, unless ``value`` fits; a path
        field's ``gs://`` path that this install cannot open raises MissingDependency, naming the extra."""
        problem = self._problem(value)
        if problem:
            close = difflib.get_close_matches(str(value), map(str, self.allowed_values() or ()), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"{self.name} must be {problem}, got {value!r} ({self.name}: {self.doc}).{hint}")
        if self.path:
            _require_filesystem(value, f"--config.{self.name}={value}")

    def _problem(self, value: Any) -> str:
        """What ``value`` should have been, or '' when it fits."""
        if not _has_type(value, self.default, self.element):
            return self.kind()
        if self.length is not None and len(value) != self.length:
            return f"{self.length} values"
        allowed = self.allowed_values()
        if allowed is not None and value not in allowed:
            return f"one of {', '.join(map(repr, allowed))}"
        items = value if isinstance(self.default, tuple) else (value,)
        if self.range is not None and not all(item in self.range for item in items):
            return f"{self.range}{' (each value)' if isinstance(self.default, tuple) else ''}"
        return ""

    def kind(self) -> str:
        """The type in words: 'an int', 'a tuple of float', ..."""
        if isinstance(self.default, tuple):
            return f"a tuple of {self.element.__name__}" if self.element else "a tuple"
        name = type(self.default).__name__
        return f"{'an' if name[0] in 'aeiou' else 'a'} {name}"

    def allowed_text(self) -> str:
        """What the listings say is allowed."""
        if isinstance(self.choices, Owned) and self.choices.doc:
            return self.choices.doc
        if self.choices is not None:
            return ", ".join(map(repr, self.allowed_values()))
        return str(self.range) if self.range else ""


def _has_type(value: Any, default: Any, element: type | None) -> bool:
    if isinstance(default, tuple):
        return isinstance(value, (tuple, list)) and all(_has_type(item, element(), None) for item in value)
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(value, type(default))
    if isinstance(default, float):
        return isinstance(value, (int, float))
    return isinstance(value, type(default))


def _owned(module: str, attribute: str, doc: str = "") -> Owned:
    return Owned(f"resnet_jax.{module}", attribute, doc)


def _require_filesystem(path: str, given: str) -> None:
    """``paths.require_filesystem``: a ``gs://`` path needs gcsfs (or TensorFlow) before anything starts."""
    importlib.import_module("resnet_jax.train.paths").require_filesystem(path, given)


FIELDS = (
    # --- Model (resnet_jax.models) ---
    Field(
        "model",
        "cifar_resnet20",
        "network from the registry (`python -m resnet_jax.models` lists them with sizes)",
        (MODEL, RUN),
        _owned("models", "list_models", "a registered model name"),
    ),
    Field(
        "num_classes",
        0,
        "outputs of the classifier; 0 = the dataset's class count (synthetic: 10)",
        (MODEL, DATA),
        range=NON_NEGATIVE,
    ),
    Field(
        "dtype",
        "float32",
        "compute dtype; parameters, BN statistics and the loss stay float32",
        (MODEL,),
        ("float32", "bfloat16"),
    ),
    # The architecture options, declared in resnet_jax.models.options; a variant's default keeps the model's own.
    *(
        Field(
            option.name,
            option.default,
            option.doc,
            (MODEL, RUN) if option.name == "bn_group_size" else (MODEL,),
            option.config_choices(),
            option.range,
        )
        for option in options.OPTIONS
    ),
    # How the network computes where frameworks differ (EfficientNet's only: the other families compute as PyTorch).
    Field(
        "padding",
        "",
        "'' = the model's own (EfficientNet: 'same', TensorFlow's, as the paper); 'symmetric' is PyTorch's (timm's "
        "efficientnet_b* weights)",
        (MODEL,),
        ("", "same", "symmetric"),
    ),
    Field(
        "bn_epsilon",
        0.0,
        "0 = the model's own; the BatchNorm epsilon (EfficientNet: 1e-3 as TensorFlow; timm's efficientnet_b*: 1e-5)",
        (MODEL,),
        range=NON_NEGATIVE,
    ),
    Field(
        "bn_momentum",
        0.0,
        "0 = the model's own; the BatchNorm running-average decay (EfficientNet: 0.99 as TensorFlow; timm's "
        "efficientnet_b*: 0.9, PyTorch's momentum 0.1)",
        (MODEL,),
        range=FRACTION,
    ),
    # --- Data (resnet_jax.data) ---
    Field(
        "dataset",
        "synthetic",
        "a named dataset, tfds:NAME[/CONFIG][:VERSION] or folder:PATH (PATH/SPLIT/CLASS/IMAGE); 'synthetic' "
        "always exists and needs no files",
        (DATA,),
    ),
    Field("data_dir", "", "TFDS data directory ('' = the TFDS default)", (DATA,), path=True),
    Field(
        "download",
        True,
        "a named or tfds: dataset that is not prepared is downloaded by TFDS when the network answers; False: "
        "stop with the prepare command",
        (DATA,),
    ),
    Field("image_key", "", "tfds: datasets: the image feature ('' = the only Image feature)", (DATA,)),
    Field("label_key", "", "tfds: datasets: the label feature ('' = the only ClassLabel feature)", (DATA,)),
    Field(
        "train_split", "", "tfds: datasets: the train split, TFDS syntax such as 'train[:90%]' ('' = train)", (DATA,)
    ),
    Field("eval_split", "", "tfds: datasets: the test split ('' = test, else validation)", (DATA,)),
    Field(
        "pipeline",
        "auto",
        "what feeds the dataset: 'in_memory' (one image size: exact pad-and-crop on the devices), 'streamed' "
        "(tf.data over TFDS records with resizing crops to image_size) or 'auto': in memory for images of one "
        "size up to 64 pixels, else streamed",
        (DATA,),
        _owned("data.spec", "PIPELINES"),
    ),
    Field(
        "image_size",
        0,
        "image side: 0 = the dataset's own (synthetic: 16; streamed crops: 224); in-memory datasets must match it",
        (DATA,),
        range=NON_NEGATIVE,
    ),
    Field(
        "crop_padding",
        0,
        "pad by this many pixels, then crop back at random (He et al.: 4)",
        (DATA,),
        range=NON_NEGATIVE,
    ),
    Field(
        "pad_mode",
        "constant",
        "padding for the random crop: zeros (He et al.) or 'reflect' (WRN)",
        (DATA,),
        _owned("data", "PAD_MODES"),
    ),
    Field("random_flip", False, "random horizontal flips", (DATA,)),
    Field(
        "random_erasing.probability",
        0.0,
        "Random Erasing (Zhong et al. 2017): chance an image is erased (the paper: 0.5; 0 = off); in-memory datasets",
        (DATA,),
        range=UNIT_INTERVAL,
    ),
    Field(
        "random_erasing.area_range",
        (0.02, 0.4),
        "(sl, sh): erased area fraction",
        (DATA,),
        range=Range(0, 1, low_open=True, high_open=True),
        element=float,
        length=2,
    ),
    Field(
        "random_erasing.min_aspect_ratio",
        0.3,
        "r1: aspect ratio in [r1, 1/r1]",
        (DATA,),
        range=Range(0, 1, low_open=True),
    ),
    Field(
        "random_erasing.fill",
        "random",
        "erased pixels: uniform in [0, 255] (the paper), the mean colour, 0, or 'constant': fill_value",
        (DATA,),
        _owned("data.augment.erasing", "FILLS"),
    ),
    Field(
        "random_erasing.fill_value",
        0.0,
        "fill='constant': the erased pixels' value after normalisation (the authors' released code: 0.4914)",
        (DATA,),
    ),
    Field(
        "random_erasing.sampler",
        "paper",
        "how rectangles are drawn: 'paper' (Algorithm 1: size and corner redrawn until it fits) or 'authors' "
        "(their released code: up to 100 sizes until one is smaller than the image, then a corner where it fits)",
        (DATA,),
        _owned("data.augment.erasing", "SAMPLERS"),
    ),
    Field(
        "normalisation",
        "channel",
        "'channel': the train split's per-channel mean and std (ImageNet's are torchvision's); 'pixel_mean': "
        "subtract its mean image only (He et al. on CIFAR; in-memory datasets); 'imagenet': torchvision's "
        "ImageNet statistics, for fine-tuning its weights; 'mnist': MNIST's (0.1307, 0.3081) on every channel, "
        "as Zhong et al.'s released Fashion-MNIST script",
        (DATA,),
        _owned("data.augment.normalisation", "MODES"),
    ),
    Field(
        "validation_examples",
        0,
        "hold out the last N train examples, evaluated as val/* (He et al.: 5000); the test split is always eval/*",
        (DATA,),
        range=NON_NEGATIVE,
    ),
    Field(
        "train_crop",
        "random_resized",
        "streamed training crop: Inception-style 8-100% area, or 'scale_jitter' (He et al. 2016)",
        (DATA,),
        _owned("data", "TRAIN_CROPS"),
    ),
    Field(
        "scale_range",
        (256, 480),
        "scale_jitter: shorter side resized to a random value in this range",
        (DATA,),
        range=POSITIVE,
        element=int,
        length=2,
    ),
    Field(
        "eval_resize",
        0,
        "streamed eval: shorter side resized to this, then the centre image_size crop (0: image_size / 0.875, "
        "256 for 224)",
        (DATA,),
        range=NON_NEGATIVE,
    ),
    Field(
        "shuffle_buffer_size",
        10_000,
        "streamed training: examples in the shuffle buffers of the global batch's rows together (each row "
        "shuffles its seeded chunks of records through shuffle_buffer_size // batch_size of them, at least 1)",
        (DATA,),
        range=AT_LEAST_ONE,
    ),
    Field(
        "input_placement",
        "auto",
        "in-memory datasets: 'device' keeps the uint8 splits on every device and gathers and augments each "
        "batch there; 'host' makes batches on the host CPU; 'auto': 'device' unless the splits take more than "
        "half of a device's memory",
        (DATA, RUN),
        ("auto", "device", "host"),
    ),
    Field(
        "synthetic.num_train_examples",
        50_000,
        "synthetic train split size (defines an epoch)",
        (DATA,),
        range=AT_LEAST_ONE,
    ),
    Field("synthetic.num_eval_examples", 1_000, "synthetic test split size", (DATA,), range=AT_LEAST_ONE),
    Field("synthetic.noise", 1.0, "pixel noise around each synthetic class's mean colour", (DATA,), range=NON_NEGATIVE),
    # --- Batch and length ---
    Field("batch_size", 32, "global batch over all devices and processes", (RUN, OPTIMISATION), range=AT_LEAST_ONE),
    Field("eval_batch_size", 0, "global eval batch; 0 = batch_size", (RUN,), range=NON_NEGATIVE),
    Field("grad_accum_steps", 1, "microbatches per batch (same result, less memory)", (RUN,), range=AT_LEAST_ONE),
    Field("num_train_steps", 200, "> 0: train this many steps (wins over num_epochs); <= 0: use num_epochs", (RUN,)),
    Field("num_epochs", 0.0, "epochs over the train split, used when num_train_steps <= 0", (RUN,), range=NON_NEGATIVE),
    # --- Optimisation (resnet_jax.train.optim) ---
    Field(
        "optimizer",
        "sgd",
        "'sgd' (momentum), 'lars' (You et al. 2017), 'adamw' or 'rmsprop' (TensorFlow's: decay 0.9, eps 1e-3; "
        "EfficientNet)",
        (OPTIMISATION,),
        _owned("train.optim", "OPTIMIZERS"),
    ),
    Field(
        "momentum",
        0.9,
        "momentum of SGD, LARS and RMSProp (AdamW keeps optax's b1 0.9, b2 0.999)",
        (OPTIMISATION,),
        range=FRACTION,
    ),
    Field("nesterov", False, "Nesterov momentum (WRN)", (OPTIMISATION,)),
    Field("learning_rate", 0.1, "base (peak) learning rate", (OPTIMISATION,), range=NON_NEGATIVE),
    Field(
        "lr_scaling",
        "none",
        "'linear': learning_rate x batch_size / 256 (Goyal et al. 2017)",
        (OPTIMISATION,),
        ("none", "linear"),
    ),
    Field(
        "schedule", "cosine", "learning-rate decay after warm-up", (OPTIMISATION,), _owned("train.optim", "SCHEDULES")
    ),
    Field(
        "lr_boundaries",
        (),
        "piecewise decay points in steps (or use lr_boundaries_epochs)",
        (OPTIMISATION,),
        range=POSITIVE,
        element=int,
    ),
    Field(
        "lr_boundaries_epochs", (), "piecewise decay points in epochs", (OPTIMISATION,), range=POSITIVE, element=float
    ),
    Field(
        "lr_decay_factor",
        0.1,
        "multiplier at each boundary (WRN: 0.2), or every lr_decay_every_epochs (EfficientNet: 0.97)",
        (OPTIMISATION,),
        range=POSITIVE,
    ),
    Field(
        "lr_decay_every_epochs",
        0.0,
        "schedule='exponential': multiply the rate by lr_decay_factor every this many epochs (EfficientNet: 2.4)",
        (OPTIMISATION,),
        range=NON_NEGATIVE,
    ),
    Field("warmup_steps", 0, "warm-up length in steps (or use warmup_epochs)", (OPTIMISATION,), range=NON_NEGATIVE),
    Field("warmup_epochs", 0.0, "warm-up length in epochs", (OPTIMISATION,), range=NON_NEGATIVE),
    Field(
        "warmup",
        "linear",
        "'linear' ramp from warmup_learning_rate, or hold it 'constant' (He et al.'s ResNet-110)",
        (OPTIMISATION,),
        _owned("train.optim", "WARMUPS"),
    ),
    Field(
        "warmup_learning_rate",
        0.0,
        "start (linear) or held (constant) warm-up rate",
        (OPTIMISATION,),
        range=NON_NEGATIVE,
    ),
    Field("weight_decay", 1e-4, "weight decay coefficient", (OPTIMISATION,), range=NON_NEGATIVE),
    Field(
        "weight_decay_mode",
        "",
        "'' = the optimizer's own: 'l2' (added to the gradient, the papers) for SGD and LARS, 'decoupled' for "
        "AdamW; SGD also takes 'decoupled' (SGDW)",
        (OPTIMISATION,),
        ("", "l2", "decoupled"),
    ),
    Field("weight_decay_on_all", False, "decay BN parameters and biases too, as He et al. 2016 did", (OPTIMISATION,)),
    Field("label_smoothing", 0.0, "label smoothing of the cross-entropy", (RUN,), range=FRACTION),
    # Batch augmentations, on the device over the global batch (resnet_jax.train.mixing).
    Field(
        "cutout_size",
        0,
        "Cutout: a square of this side zeroed in each normalised train image (DeVries & Taylor: 16 on "
        "CIFAR-10); 0 = off",
        (RUN,),
        range=NON_NEGATIVE,
    ),
    Field(
        "mixup_alpha",
        0.0,
        "Mixup: lambda ~ Beta(alpha, alpha) per batch (Zhang et al.: 1 on CIFAR); 0 = off",
        (RUN,),
        range=NON_NEGATIVE,
    ),
    Field(
        "cutmix_alpha",
        0.0,
        "CutMix: lambda ~ Beta(alpha, alpha) per batch (Yun et al.: 1); 0 = off",
        (RUN,),
        range=NON_NEGATIVE,
    ),
    Field(
        "cutmix_probability",
        1.0,
        "CutMix: probability that a batch is mixed (Yun et al.'s CIFAR script: 0.5)",
        (RUN,),
        range=UNIT_INTERVAL,
    ),
    Field("grad_clip_norm", 0.0, "> 0: clip the global gradient norm to this", (OPTIMISATION,), range=NON_NEGATIVE),
    Field(
        "ema_decay",
        0.0,
        "> 0: keep an EMA of the parameters, also evaluated (eval_ema/*, val_ema/*)",
        (RUN,),
        range=FRACTION,
    ),
    Field(
        "steps_per_dispatch",
        1,
        "train steps each dispatch of the jitted program runs, as one lax.scan (dataset on the devices only): "
        "fewer kernel launches and host round trips for small nets on accelerators; the same batches and result",
        (RUN,),
        range=AT_LEAST_ONE,
    ),
    # --- Fine-tuning ---
    Field("init_from", "", "a workdir or checkpoint of this package, or a torchvision .pth file", (RUN,), path=True),
    Field("reinit_head", False, "re-initialise the head (always done when num_classes differs)", (RUN,)),
    Field("freeze", "", "comma-separated parts not trained: 'stem', 'layer1', ..., 'head'", (OPTIMISATION, RUN)),
    Field(
        "freeze_mode",
        "inference",
        "how frozen parts run in training: 'inference' (their BatchNorm uses and keeps its running statistics, "
        "no dropout: the pretrained network's function) or 'train' (their BatchNorm normalises each batch and "
        "its statistics follow the new data)",
        (RUN,),
        choices=("inference", "train"),
    ),
    Field("lr_multipliers", "", "per-part learning-rate multipliers, e.g. 'stem=0.1,layer1=0.1'", (OPTIMISATION,)),
    # --- Bookkeeping ---
    Field("seed", 0, "seed of initialisation, data order, augmentation and dropout", (RUN, DATA)),
    Field("log_every_steps", 20, "steps between progress lines and train metrics", (RUN,), range=AT_LEAST_ONE),
    Field("eval_every_steps", 100, "steps between evaluations (also at the end)", (RUN,), range=AT_LEAST_ONE),
    Field(
        "checkpoint_every_steps",
        100,
        "steps between checkpoints (also at the end and on SIGTERM/SIGINT)",
        (RUN,),
        range=AT_LEAST_ONE,
    ),
    Field("max_checkpoints_to_keep", 3, "checkpoints kept in the workdir", (RUN,), range=AT_LEAST_ONE),
    Field("profile", False, "capture a jax.profiler trace of a few steps into the workdir", (RUN,)),
    # --- Experiment tracking (resnet_jax.train.tracking) ---
    Field("wandb_project", "", "log to this Weights & Biases project ('' = off; needs the wandb extra)", (RUN,)),
    Field("wandb_entity", "", "W&B team or user ('' = your default entity)", (RUN,)),
    Field("wandb_run_name", "", "W&B run name ('' = W&B's generated name)", (RUN,)),
    Field("wandb_group", "", "W&B group, e.g. one per sweep ('' = none)", (RUN,)),
    Field(
        "compilation_cache_dir",
        "",
        "JAX's persistent compilation cache: '' = $JAX_COMPILATION_CACHE_DIR or "
        "~/.cache/resnet_jax/jax_compilation_cache; 'none' = off",
        (RUN,),
        path=True,
    ),
    Field(
        "join_timeout_s",
        300,
        "seconds a process of a multi-process job waits for all the others to start before it gives up, "
        "naming the ones that did not arrive",
        (RUN,),
        range=AT_LEAST_ONE,
    ),
)
BY_NAME = {field.name: field for field in FIELDS}
CONVENTION_FIELDS = ("padding", "bn_epsilon", "bn_momentum")  # where a TensorFlow and a PyTorch network differ


# The model fields that change a registered architecture only when set away from their defaults.
VARIANT_FIELDS = options.VARIANT_FIELDS


def variant_defaults() -> dict[str, Any]:
    """Each variant field's default: the value that keeps the registered model's own architecture."""
    return {name: options.BY_NAME[name].default for name in VARIANT_FIELDS}


def model_overrides(config: Any) -> dict[str, Any]:
    """The architecture options the config sets away from their defaults: what it changes in the registered
    model (a model family without such an option refuses it by name)."""
    config = view(config, MODEL)
    return {
        option.name: getattr(config, option.name)
        for option in options.OPTIONS
        if getattr(config, option.name) != option.default
    }


def convention_overrides(config: Any) -> dict[str, Any]:
    """The framework conventions (``CONVENTION_FIELDS``: padding, BatchNorm constants) the config sets."""
    config = view(config, MODEL)
    return {name: getattr(config, name) for name in CONVENTION_FIELDS if getattr(config, name) != BY_NAME[name].default}


def model_arguments(config: Any) -> dict[str, Any]:
    """The keyword arguments, besides the name and input channels, of the config's ``create_model`` call."""
    config = view(config, MODEL)
    return {
        "num_classes": config.num_classes,
        "dtype": config.dtype,
        **model_overrides(config),
        **convention_overrides(config),
    }


def field_names() -> list[str]:
    """Every field's flat name, in declaration order."""
    return list(BY_NAME)


def default_config():
    """The default config (configs/default.py) as an ml_collections ConfigDict, locked so that setting an
    undeclared field fails at once. (ml_collections is imported here only: the core needs no config library.)"""
    import ml_collections

    config = ml_collections.ConfigDict(default_values())
    config.lock()
    return config


def default_values() -> dict[str, Any]:
    """Every field's default, nested by group as ``config.to_dict()`` nests a config."""
    values: dict[str, Any] = {}
    for field in FIELDS:
        *groups, leaf = field.name.split(".")
        node = values
        for group in groups:
            node = node.setdefault(group, {})
        node[leaf] = field.default
    return values


def value_of(config: Any, name: str) -> Any:
    """The value of the dotted field ``name`` in a ConfigDict, a dict or a view."""
    for part in name.split("."):
        config = config[part] if isinstance(config, Mapping) else getattr(config, part)
    return config


def set_names(config: Any, prefix: str = "") -> list[str]:
    """The dotted names of the leaves a ConfigDict or dict sets."""
    tree = config.to_dict() if hasattr(config, "to_dict") else dict(config)
    names = []
    for key, value in tree.items():
        names += set_names(value, f"{prefix}{key}.") if isinstance(value, Mapping) else [f"{prefix}{key}"]
    return names


def validate(config: Any) -> None:
    """Check every field and the rules between fields, before anything starts; ConfigError says what to change."""
    given = set(set_names(config))
    undeclared = sorted(given - set(BY_NAME))
    require(
        not undeclared,
        f"the config sets {', '.join(undeclared)}, which no field declares. Check the spelling against the "
        "fields listed by `python -m resnet_jax.config_schema`; a new option is declared in "
        "resnet_jax/config_schema.py (FIELDS).",
    )
    missing = [name for name in BY_NAME if name not in given]
    require(
        not missing,
        f"the config lacks {', '.join(missing)}; config files start from configs/default.py's get_config().",
    )
    for field in FIELDS:
        field.check(value_of(config, field.name))
    _check_rules(config)


def _check_rules(config: Any) -> None:
    """The checks that involve more than one field."""
    require(
        config.num_train_steps > 0 or config.num_epochs > 0,
        f"set num_train_steps > 0 or num_epochs > 0 (got {config.num_train_steps} and {config.num_epochs})",
    )
    require(
        not (config.lr_boundaries and config.lr_boundaries_epochs),
        "set lr_boundaries (steps) or lr_boundaries_epochs, not both",
    )
    require(not (config.warmup_steps and config.warmup_epochs), "set warmup_steps or warmup_epochs, not both")
    for name in ("scale_range", "random_erasing.area_range"):
        low, high = value_of(config, name)
        require(low <= high, f"{name} must be (low, high) with low <= high, got {(low, high)}")
    require(
        not (config.mixup_alpha > 0 and config.cutmix_alpha > 0),
        "set mixup_alpha or cutmix_alpha, not both: a batch is mixed one way",
    )
    parse_parts(config.freeze)
    parse_multipliers(config.lr_multipliers)
    importlib.import_module("resnet_jax.train.optim").check_weight_decay_mode(
        config.optimizer, config.weight_decay_mode
    )
    _check_model(config)
    _check_dataset_rules(config)
    if config.wandb_project:
        importlib.import_module("resnet_jax.train.tracking").require_wandb()


def _check_model(config: Any) -> None:
    """Build the model the config names (a module definition: no weights, no compute), so that an
    architecture the zoo refuses, such as a gate on a plain net, is reported before anything starts."""
    try:
        arguments = model_arguments(config) | {"num_classes": config.num_classes or 1}  # 0: the dataset's, known later
        importlib.import_module("resnet_jax.models").create_model(config.model, **arguments)
    except ValueError as error:
        raise ConfigError(
            f"--config.model={config.model} cannot take the options this config sets: {error}. Change or drop "
            "the option (the README's Variants section lists them)."
        ) from None


def _check_dataset_rules(config: Any) -> None:
    """The dataset's name, the options of its pipeline when the name or ``pipeline`` tells it (otherwise the
    images choose it, and ``create_datasets`` checks them), and the options only tfds: datasets have."""
    data = importlib.import_module("resnet_jax.data")
    pipeline = data.pipeline_of(config.dataset, config.pipeline)  # also checks the name's grammar
    if config.dataset.startswith(data.spec.FOLDER_PREFIX):
        _require_filesystem(data.spec.folder_path(config.dataset), f"--config.dataset={config.dataset}")
    require(
        pipeline != data.spec.SYNTHETIC or config.pipeline == data.spec.AUTO,
        f"pipeline={config.pipeline!r} chooses how a dataset of images is fed; the synthetic dataset is made "
        "batch by batch. Drop --config.pipeline.",
    )
    if pipeline in (data.spec.IN_MEMORY, data.spec.STREAMED):
        check_pipeline_options(config, pipeline)
    _check_erasing(config, pipeline)
    tfds_only = [name for name in ("image_key", "label_key", "train_split", "eval_split") if getattr(config, name)]
    require(
        not tfds_only or config.dataset.startswith(data.spec.TFDS_PREFIX),
        f"{', '.join(tfds_only)} choose{'s' if len(tfds_only) == 1 else ''} the features and splits of a tfds:NAME "
        f"dataset; dataset {config.dataset!r} is not one. Drop {'it' if len(tfds_only) == 1 else 'them'}.",
    )
    require(
        config.validation_examples == 0 or config.dataset != "synthetic",
        "validation_examples needs a TFDS dataset; the synthetic one has no train examples to hold out",
    )


STREAMED_ONLY = ("train_crop", "scale_range", "eval_resize", "shuffle_buffer_size")  # the resizing crops and records
IN_MEMORY_ONLY = ("crop_padding", "pad_mode")  # the pad-and-crop of images of one size


def check_pipeline_options(config: Any, pipeline: str) -> None:
    """Refuse an option that ``pipeline`` ('in_memory' or 'streamed') would ignore, naming the pipeline; and
    streamed crops that cannot fit."""
    spec = importlib.import_module("resnet_jax.data.spec")
    ignored = IN_MEMORY_ONLY if pipeline == spec.STREAMED else STREAMED_ONLY
    changed = [name for name in ignored if value_of(config, name) != BY_NAME[name].default]
    other = spec.IN_MEMORY if pipeline == spec.STREAMED else spec.STREAMED
    known = spec.KNOWN.get(config.dataset)
    possible = not (other == spec.IN_MEMORY and known is not None and known.image_shape[0] is None)
    needs = "images of one size" if other == spec.IN_MEMORY else "TFDS records"
    switch = f", or set --config.pipeline={other} (which needs {needs})" if possible else ""
    require(
        not changed,
        f"{', '.join(f'{name}={value_of(config, name)!r}' for name in changed)}: options of the {other} pipeline, "
        f"which the {pipeline} pipeline that feeds dataset {config.dataset!r} would ignore. Drop "
        f"{'it' if len(changed) == 1 else 'them'}{switch}.",
    )
    if pipeline == spec.STREAMED:
        _check_erasing(config, pipeline)
        require(
            config.normalisation != "pixel_mean",
            f"normalisation='pixel_mean' subtracts a mean image of one size, an option of the in_memory pipeline; "
            f"dataset {config.dataset!r} is fed by the streamed pipeline. Set --config.normalisation=channel (or "
            "imagenet).",
        )
        _check_crops_fit(config)


def _check_erasing(config: Any, pipeline: str | None) -> None:
    """Random Erasing is drawn by the in-memory pipeline alone (``pipeline`` None: not known yet)."""
    require(
        config.random_erasing.probability == 0 or pipeline in (None, "in_memory"),
        f"random_erasing is applied by the in_memory pipeline (images of one size: digits, fashion_mnist, CIFAR, "
        f"small tfds: and folder: datasets), not to dataset {config.dataset!r}, which the {pipeline} pipeline "
        "feeds; set --config.random_erasing.probability=0 or use one of those datasets",
    )


def _check_crops_fit(config: Any) -> None:
    size = config.image_size or importlib.import_module("resnet_jax.data").DEFAULT_CROP
    require(
        config.eval_resize == 0 or config.eval_resize >= size,
        f"eval_resize={config.eval_resize} is smaller than image_size={size}: the centre {size} crop must fit "
        f"in the resized image; set --config.eval_resize to at least {size} (the standard is 256 for 224 crops), "
        "or 0 for that ratio.",
    )
    require(
        config.train_crop != "scale_jitter" or config.scale_range[0] >= size,
        f"scale_range={tuple(config.scale_range)} starts below image_size={size}: the random {size} crop must "
        f"fit in the resized image; use a range starting at {size} or more (He et al.: [256, 480] for 224 crops).",
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


class ConfigView:
    """Read-only attribute access to the fields one subsystem reads (groups are nested views)."""

    def __init__(self, name: str, values: dict[str, Any]):
        object.__setattr__(self, "_name", name)
        object.__setattr__(self, "_values", values)

    def __getattr__(self, field: str) -> Any:
        values = object.__getattribute__(self, "_values")
        if field not in values:
            name = object.__getattribute__(self, "_name")
            raise AttributeError(f"the {name} view has no field {field!r}; list it in that field's views in FIELDS")
        return values[field]

    def __setattr__(self, field: str, value: Any) -> None:
        raise AttributeError(f"config views are read-only; set {field!r} on the ConfigDict instead")

    def __repr__(self) -> str:
        return f"ConfigView({object.__getattribute__(self, '_name')}, {object.__getattribute__(self, '_values')})"


def view(config: Any, name: str) -> ConfigView:
    """The fields of ``config`` that the subsystem ``name`` (one of VIEWS) reads."""
    if isinstance(config, ConfigView) and object.__getattribute__(config, "_name") == name:
        return config
    values: dict[str, Any] = {}
    for field in FIELDS:
        if name in field.views:
            *groups, leaf = field.name.split(".")
            node = values
            for group in groups:
                node = node.setdefault(group, {})
            node[leaf] = value_of(config, field.name)
    return _nest(name, values)


def _nest(name: str, values: dict[str, Any]) -> ConfigView:
    return ConfigView(name, {k: _nest(f"{name}.{k}", v) if isinstance(v, dict) else v for k, v in values.items()})


def help_text() -> str:
    """The field listing of ``--help`` and ``--helpfull``: one line per field, grouped by view."""
    lines = ["Config fields (override any with --config.FIELD=VALUE):"]
    for section in VIEWS:
        lines.append(f"  {section}:")
        for field in FIELDS:
            if field.views[0] == section:
                allowed = field.allowed_text()
                lines.append(
                    f"    {field.name} = {field.default!r}: {field.doc}" + (f" [{allowed}]" if allowed else "")
                )
    return "\n".join(lines)


def markdown_table() -> str:
    """The README's field table."""
    rows = ["| field | default | allowed | read by | meaning |", "|---|---|---|---|---|"]
    for section in VIEWS:
        for field in FIELDS:
            if field.views[0] == section:
                allowed = field.allowed_text().replace("|", "\\|")
                rows.append(
                    f"| `{field.name}` | `{field.default!r}` | {allowed} | {', '.join(field.views)} | {field.doc} |"
                )
    return "\n".join(rows)


if __name__ == "__main__":
    print(markdown_table() if "--markdown" in sys.argv else help_text())
