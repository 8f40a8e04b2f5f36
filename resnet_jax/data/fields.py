"""The data's config fields, with their rules: which dataset, how it is fed and augmented.

``check_rules`` runs at validation with what the dataset's name tells; ``check_pipeline_options`` runs again
in ``create_datasets`` when the images chose the pipeline (``tfds:`` and ``folder:`` datasets). Pure Python:
loading a config imports neither JAX nor TensorFlow.
"""

from typing import Any

from resnet_jax.data import spec
from resnet_jax.errors import require
from resnet_jax.fields import Field, Owned, Section, changed, value_of
from resnet_jax.paths import require_filesystem
from resnet_jax.ranges import AT_LEAST_ONE, NON_NEGATIVE, POSITIVE, UNIT_INTERVAL, Range

PAD_MODES = ("constant", "reflect")
TRAIN_CROPS = ("random_resized", "scale_jitter")
DEFAULT_CROP = 224  # the streamed pipeline's crop side when image_size is 0
STREAMED_ONLY = ("train_crop", "scale_range", "eval_resize", "shuffle_buffer_size")  # the resizing crops and records
IN_MEMORY_ONLY = ("crop_padding", "pad_mode")  # the pad-and-crop of images of one size
TFDS_ONLY = ("image_key", "label_key", "train_split", "eval_split")  # the features and splits of tfds:NAME

FIELDS = (
    Field(
        "dataset",
        "synthetic",
        "a named dataset, tfds:NAME[/CONFIG][:VERSION] or folder:PATH (PATH/SPLIT/CLASS/IMAGE); 'synthetic' "
        "always exists and needs no files",
    ),
    Field("data_dir", "", "TFDS data directory ('' = the TFDS default)", path=True),
    Field(
        "download",
        True,
        "a named or tfds: dataset that is not prepared is downloaded by TFDS when the network answers; False: "
        "stop with the prepare command",
    ),
    Field("image_key", "", "tfds: datasets: the image feature ('' = the only Image feature)"),
    Field("label_key", "", "tfds: datasets: the label feature ('' = the only ClassLabel feature)"),
    Field(
        "train_split",
        "",
        "tfds: datasets: the train split, TFDS syntax such as 'train[:90%]' ('' = train)",
    ),
    Field("eval_split", "", "tfds: datasets: the test split ('' = test, else validation)"),
    Field(
        "pipeline",
        "auto",
        "what feeds the dataset: 'in_memory' (one image size: exact pad-and-crop on the devices), 'streamed' "
        "(tf.data over TFDS records with resizing crops to image_size) or 'auto': in memory for images of one "
        "size up to 64 pixels, else streamed",
        Owned("resnet_jax.data.spec", "PIPELINES"),
    ),
    Field(
        "image_size",
        0,
        "image side: 0 = the dataset's own (synthetic: 16; streamed crops: 224); in-memory datasets must match it",
        range=NON_NEGATIVE,
    ),
    Field(
        "crop_padding",
        0,
        "pad by this many pixels, then crop back at random (He et al.: 4)",
        range=NON_NEGATIVE,
    ),
    Field(
        "pad_mode",
        "constant",
        "padding for the random crop: zeros (He et al.) or 'reflect' (WRN)",
        PAD_MODES,
    ),
    Field("random_flip", False, "random horizontal flips"),
    Field(
        "random_erasing.probability",
        0.0,
        "Random Erasing (Zhong et al. 2017): chance an image is erased (the paper: 0.5; 0 = off); in-memory datasets",
        range=UNIT_INTERVAL,
    ),
    Field(
        "random_erasing.area_range",
        (0.02, 0.4),
        "(sl, sh): erased area fraction",
        range=Range(0, 1, low_open=True, high_open=True),
        element=float,
        length=2,
    ),
    Field(
        "random_erasing.min_aspect_ratio",
        0.3,
        "r1: aspect ratio in [r1, 1/r1]",
        range=Range(0, 1, low_open=True),
    ),
    Field(
        "random_erasing.fill",
        "random",
        "erased pixels: uniform in [0, 255] (the paper), the mean colour, 0, or 'constant': fill_value",
        Owned("resnet_jax.data.augment.erasing", "FILLS"),
    ),
    Field(
        "random_erasing.fill_value",
        0.0,
        "fill='constant': the erased pixels' value after normalisation (the authors' released code: 0.4914)",
    ),
    Field(
        "random_erasing.sampler",
        "paper",
        "how rectangles are drawn: 'paper' (Algorithm 1: size and corner redrawn until it fits) or 'authors' "
        "(their released code: up to 100 sizes until one is smaller than the image, then a corner where it fits)",
        Owned("resnet_jax.data.augment.erasing", "SAMPLERS"),
    ),
    Field(
        "example_augmentations",
        (),
        "registered augmentations of each train example, applied in this order after the crops, flips and Random "
        "Erasing, by either pipeline (register_example_augmentation, from your config's imports)",
        element=str,
    ),
    Field(
        "normalisation",
        "channel",
        "'channel': the train split's per-channel mean and std (ImageNet's are torchvision's); 'pixel_mean': "
        "subtract its mean image only (He et al. on CIFAR; in-memory datasets); 'imagenet': torchvision's "
        "ImageNet statistics, for fine-tuning its weights; 'mnist': MNIST's (0.1307, 0.3081) on every channel, "
        "as Zhong et al.'s released Fashion-MNIST script",
        Owned("resnet_jax.data.augment.normalisation", "MODES"),
    ),
    Field(
        "validation_examples",
        0,
        "hold out the last N train examples, evaluated as val/* (He et al.: 5000); the test split is always eval/*",
        range=NON_NEGATIVE,
    ),
    Field(
        "train_crop",
        "random_resized",
        "streamed training crop: Inception-style 8-100% area, or 'scale_jitter' (He et al. 2016)",
        TRAIN_CROPS,
    ),
    Field(
        "scale_range",
        (256, 480),
        "scale_jitter: shorter side resized to a random value in this range",
        range=POSITIVE,
        element=int,
        length=2,
    ),
    Field(
        "eval_resize",
        0,
        "streamed eval: shorter side resized to this, then the centre image_size crop (0: image_size / 0.875, "
        "256 for 224)",
        range=NON_NEGATIVE,
    ),
    Field(
        "shuffle_buffer_size",
        10_000,
        "streamed training: examples in the shuffle buffers of the global batch's rows together (each row "
        "shuffles its seeded chunks of records through shuffle_buffer_size // batch_size of them, at least 1)",
        range=AT_LEAST_ONE,
    ),
    Field(
        "input_placement",
        "auto",
        "in-memory datasets: 'device' keeps the uint8 splits on every device and gathers and augments each "
        "batch there; 'host' makes batches on the host CPU; 'auto': 'device' unless the splits take more than "
        "half of a device's memory",
        ("auto", "device", "host"),
    ),
    Field(
        "synthetic.num_train_examples",
        50_000,
        "synthetic train split size (defines an epoch)",
        range=AT_LEAST_ONE,
    ),
    Field("synthetic.num_eval_examples", 1_000, "synthetic test split size", range=AT_LEAST_ONE),
    Field("synthetic.noise", 1.0, "pixel noise around each synthetic class's mean colour", range=NON_NEGATIVE),
)


def check_rules(settings: Any) -> None:
    """The dataset's name, the options of its pipeline when the name or ``pipeline`` tells it (otherwise the
    images choose it, and ``create_datasets`` checks them), and the options only tfds: datasets have."""
    for name in ("scale_range", "random_erasing.area_range"):
        low, high = value_of(settings, name)
        require(low <= high, f"{name} must be (low, high) with low <= high, got {(low, high)}")
    source = spec.parse(settings.dataset)  # ConfigError where the name fits no kind's grammar
    pipeline = spec.pipeline_of(source, settings.pipeline)
    if source.kind == "folder":
        require_filesystem(source.target, f"--config.dataset={settings.dataset}")
    require(
        pipeline != spec.SYNTHETIC or settings.pipeline == spec.AUTO,
        f"pipeline={settings.pipeline!r} chooses how a dataset of images is fed; the synthetic dataset is made "
        "batch by batch. Drop --config.pipeline.",
    )
    if pipeline in (spec.IN_MEMORY, spec.STREAMED):
        check_pipeline_options(settings, pipeline)
    else:  # not known yet, or synthetic
        _check_example_augmentations(settings, pipeline)
    _check_erasing(settings, pipeline)
    tfds_only = [name for name in TFDS_ONLY if getattr(settings, name)]
    require(
        not tfds_only or source.kind == "tfds",
        f"{', '.join(tfds_only)} choose{'s' if len(tfds_only) == 1 else ''} the features and splits of a tfds:NAME "
        f"dataset; dataset {settings.dataset!r} is not one. Drop {'it' if len(tfds_only) == 1 else 'them'}.",
    )
    require(
        settings.validation_examples == 0 or settings.dataset != spec.SYNTHETIC,
        "validation_examples needs a TFDS dataset; the synthetic one has no train examples to hold out",
    )


def check_pipeline_options(settings: Any, pipeline: str) -> None:
    """Refuse an option that ``pipeline`` ('in_memory' or 'streamed') would ignore, naming the pipeline; and
    streamed crops that cannot fit."""
    ignored = IN_MEMORY_ONLY if pipeline == spec.STREAMED else STREAMED_ONLY
    set_away = changed(settings, SECTION, ignored)
    other = spec.IN_MEMORY if pipeline == spec.STREAMED else spec.STREAMED
    named = spec.NAMED_DATASETS.get(settings.dataset)
    possible = not (other == spec.IN_MEMORY and named is not None and named.spec.image_shape[0] is None)
    needs = "images of one size" if other == spec.IN_MEMORY else "TFDS records"
    switch = f", or set --config.pipeline={other} (which needs {needs})" if possible else ""
    require(
        not set_away,
        f"{', '.join(f'{name}={value_of(settings, name)!r}' for name in set_away)}: options of the {other} "
        f"pipeline, which the {pipeline} pipeline that feeds dataset {settings.dataset!r} would ignore. Drop "
        f"{'it' if len(set_away) == 1 else 'them'}{switch}.",
    )
    _check_example_augmentations(settings, pipeline)
    if pipeline == spec.STREAMED:
        _check_erasing(settings, pipeline)
        require(
            settings.normalisation != "pixel_mean",
            f"normalisation='pixel_mean' subtracts a mean image of one size, an option of the in_memory pipeline; "
            f"dataset {settings.dataset!r} is fed by the streamed pipeline. Set --config.normalisation=channel (or "
            "imagenet).",
        )
        _check_crops_fit(settings)


def _check_erasing(settings: Any, pipeline: str | None) -> None:
    """Random Erasing is drawn by the in-memory pipeline alone (``pipeline`` None: not known yet)."""
    require(
        settings.random_erasing.probability == 0 or pipeline in (None, spec.IN_MEMORY),
        f"random_erasing is applied by the in_memory pipeline (images of one size: digits, fashion_mnist, CIFAR, "
        f"small tfds: and folder: datasets), not to dataset {settings.dataset!r}, which the {pipeline} pipeline "
        "feeds; set --config.random_erasing.probability=0 or use one of those datasets",
    )


def _check_example_augmentations(settings: Any, pipeline: str | None) -> None:
    """The named example augmentations are registered and have a function for ``pipeline`` (None: not known
    yet); the synthetic dataset is made batch by batch and takes none."""
    names = settings.example_augmentations
    if not names:
        return
    require(
        pipeline != spec.SYNTHETIC,
        f"example_augmentations={names} augment a dataset's images; the synthetic dataset has none. Drop them.",
    )
    from resnet_jax.data.augment.examples import check_example_augmentations  # the registry imports JAX

    problem = check_example_augmentations(names, pipeline)
    require(not problem, f"{problem}.")


def _check_crops_fit(settings: Any) -> None:
    size = settings.image_size or DEFAULT_CROP
    require(
        settings.eval_resize == 0 or settings.eval_resize >= size,
        f"eval_resize={settings.eval_resize} is smaller than image_size={size}: the centre {size} crop must fit "
        f"in the resized image; set --config.eval_resize to at least {size} (the standard is 256 for 224 crops), "
        "or 0 for that ratio.",
    )
    require(
        settings.train_crop != "scale_jitter" or settings.scale_range[0] >= size,
        f"scale_range={tuple(settings.scale_range)} starts below image_size={size}: the random {size} crop must "
        f"fit in the resized image; use a range starting at {size} or more (He et al.: [256, 480] for 224 crops).",
    )


SECTION = Section("data", "resnet_jax.data", FIELDS, check_rules)
