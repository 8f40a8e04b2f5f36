"""The config schema: every field of every config is declared once, and what is made from it (defaults,
validation, views, listings) follows the declarations."""

import ast
import dataclasses
import re
from pathlib import Path

import ml_collections
import pytest
from test_configs import ALL_CONFIGS

from configs import default, digits
from experiments import sweep
from resnet_jax import config_schema
from resnet_jax.errors import ConfigError
from resnet_jax.fields import Field, Section, set_names
from resnet_jax.ranges import Range
from resnet_jax.train.fields import parse_parts
from resnet_jax.train.settings import SECTIONS, all_fields, settings_of

REPO = Path(__file__).resolve().parents[1]
# The fields DESIGN.md fixes as the public contract of every config.
CONTRACT_FIELDS = (
    "model",
    "num_classes",
    "dataset",
    "data_dir",
    "batch_size",
    "num_epochs",
    "num_train_steps",
    "learning_rate",
    "seed",
    "dtype",
    "eval_every_steps",
    "checkpoint_every_steps",
    "log_every_steps",
)


@pytest.mark.parametrize("module, arg", ALL_CONFIGS, ids=[f"{m.__name__}:{a}" for m, a in ALL_CONFIGS])
def test_every_field_of_every_config_is_declared(module, arg):
    config = module.get_config(arg)
    assert sorted(set_names(config)) == sorted(config_schema.field_names())


def test_the_contract_fields_are_declared_and_names_are_unique():
    names = [field.name for field in all_fields()]
    assert len(names) == len(set(names))
    assert set(CONTRACT_FIELDS) <= set(names)


def test_a_field_set_without_a_declaration_fails():
    config = default.get_config()
    with pytest.raises(AttributeError, match="learnin_rate"):
        config.learnin_rate = 0.3  # the default config is locked: a config file fails at this line
    unlocked = ml_collections.ConfigDict(default.get_config().to_dict())
    unlocked.randaugment_magnitude = 9  # a field some code might start reading before anyone declares it
    with pytest.raises(ConfigError, match="the config sets randaugment_magnitude, which no field declares"):
        config_schema.validate(unlocked)


def config_fields_read_in(path: Path) -> set[str]:
    """Every ``config.NAME`` (and ``config.GROUP.NAME``) read in a source file."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "config":
            names.add(node.attr)
    return names


def test_every_field_the_code_reads_or_sets_is_declared():
    """A field used in the package or a recipe without a declaration in the schema fails here."""
    groups = {name.split(".")[0] for name in config_schema.field_names() if "." in name}
    declared = set(config_schema.field_names()) | groups
    methods = {"to_dict", "update", "lock", "unlock", "get"}
    sources = [*sorted((REPO / "resnet_jax").rglob("*.py")), *sorted((REPO / "configs").glob("*.py"))]
    undeclared = {
        f"{path.relative_to(REPO)}: config.{name}"
        for path in sources
        for name in config_fields_read_in(path) - declared - methods
    }
    assert not undeclared, sorted(undeclared)


def test_the_default_config_is_the_smoke_test_its_docstring_describes():
    config = default.get_config()
    # configs/default.py: cifar_resnet20 on the offline synthetic dataset for 200 steps.
    assert (config.model, config.dataset, config.num_train_steps, config.num_epochs) == (
        "cifar_resnet20",
        "synthetic",
        200,
        0.0,
    )
    assert (config.optimizer, config.momentum, config.learning_rate, config.seed) == ("sgd", 0.9, 0.1, 0)
    assert config.random_erasing.probability == 0.0 and config.block_dropout == 0.0  # regularisers off
    assert config.random_erasing.area_range == (0.02, 0.4)  # Zhong et al. 2017's (sl, sh)
    assert config.random_erasing.min_aspect_ratio == 0.3  # their r1
    config_schema.validate(config)
    config_schema.validate(digits.get_config())


@pytest.mark.parametrize(
    "name, value, message",
    [
        ("dtype", "float16", "dtype must be one of 'float32', 'bfloat16', got 'float16'"),
        ("batch_size", 0, "batch_size must be >= 1, got 0"),
        ("label_smoothing", 1.0, r"label_smoothing must be in \[0, 1\), got 1.0"),
        ("lr_boundaries", (100, -5), r"lr_boundaries must be > 0 \(each value\), got \(100, -5\)"),
        ("scale_range", (256, 320, 480), "scale_range must be 2 values"),
        ("dataset", "cifar11", "dataset must be one of .* Did you mean 'cifar10'"),
        ("model", "resnet51", "model must be one of .* Did you mean 'resnet50'"),
        ("optimizer", "adam", "optimizer must be one of 'sgd', 'lars', 'adamw', 'rmsprop', got 'adam'"),
        ("random_flip", 1, "random_flip must be a bool, got 1"),
        ("num_classes", 2.5, "num_classes must be an int, got 2.5"),
        ("lr_multipliers", "layer1", r"lr_multipliers entries look like 'layer1=0.1'"),
        ("lr_multipliers", "layer1=-1", r"lr_multipliers entries look like"),
    ],
)
def test_values_outside_a_declaration_are_refused_with_what_is_allowed(name, value, message):
    config = ml_collections.ConfigDict(default.get_config().to_dict(), type_safe=False)  # any value
    config[name] = value
    with pytest.raises(ConfigError, match=message):
        config_schema.validate(config)


def test_an_int_where_a_float_is_declared_and_a_trailing_comma_in_a_part_list_are_accepted():
    config = ml_collections.ConfigDict(default.get_config().to_dict())
    config.learning_rate = 1
    config.num_train_steps, config.num_epochs = 0, 3
    config.freeze = "stem,"
    config_schema.validate(config)
    assert parse_parts(config.freeze) == ["stem"]


def test_ranges_include_and_exclude_their_ends_as_written():
    assert 0 in Range(0) and 0 not in Range(0, low_open=True)
    assert 1 in Range(0, 1) and 1 not in Range(0, 1, high_open=True)
    assert [str(r) for r in (Range(0), Range(0, low_open=True), Range(0, 1, high_open=True))] == [
        ">= 0",
        "> 0",
        "in [0, 1)",
    ]


def test_each_package_reads_typed_frozen_settings_of_exactly_the_fields_it_declares():
    config = default.get_config()
    config.scale_range = [256, 480]  # a list, as a command line or a JSON file may give it
    settings = settings_of(config)
    for section in SECTIONS:
        values = getattr(settings, section.name)
        tops = {field.name.split(".")[0] for field in section.fields}
        assert {f.name for f in dataclasses.fields(values)} == tops, section.name
        for field in section.fields:
            value = config_schema_value(values, field.name)
            assert isinstance(value, type(field.default)), field.name
    data = settings.data
    assert data.scale_range == (256, 480)  # tuple fields are tuples
    assert (data.random_erasing.fill, data.synthetic.noise) == ("random", 1.0)
    assert not hasattr(data, "seed") and not hasattr(settings.run, "dataset")  # another package's field is not here
    with pytest.raises(dataclasses.FrozenInstanceError):
        data.dataset = "cifar10"


def config_schema_value(values, name: str):
    for part in name.split("."):
        values = getattr(values, part)
    return values


def test_every_field_has_a_doc_and_one_owner_and_a_consistent_type():
    owners = [field.name for section in SECTIONS for field in section.fields]
    assert len(owners) == len(set(owners)) == len(all_fields())
    assert {section.owner for section in SECTIONS} == {"resnet_jax.models", "resnet_jax.data", "resnet_jax.train"}
    for field in all_fields():
        assert field.doc, field.name
        field.check(field.default)
        if isinstance(field.default, tuple):
            assert field.element is not None, field.name


def test_the_old_dropout_rate_field_is_refused_with_a_paragraph_naming_its_two_new_names():
    config = default.get_config().to_dict() | {"dropout_rate": 0.3}
    with pytest.raises(ConfigError, match=r"two names now: block_dropout, .*--config\.block_dropout.* head_dropout"):
        config_schema.validate(config)


def test_the_help_listing_and_the_sweep_check_come_from_the_schema(monkeypatch):
    listing = config_schema.help_text()
    for field in all_fields():
        assert re.search(rf"^    {re.escape(field.name)} = ", listing, re.MULTILINE), field.name
    extra = Field("toy_alpha", 0.0, "a toy's alpha")
    monkeypatch.setattr(config_schema, "SECTIONS", (*SECTIONS, Section("extra", "tests", (extra,))))
    assert "toy_alpha = 0.0: a toy's alpha" in config_schema.help_text()
    assert "`toy_alpha`" in config_schema.markdown_table()
    sweep.check_fields("configs/digits.py", ["toy_alpha"])  # declared: the sweep accepts it
    monkeypatch.setattr(config_schema, "SECTIONS", SECTIONS)
    with pytest.raises(ValueError, match="'toy_alpha' is not a field of configs/digits.py"):
        sweep.check_fields("configs/digits.py", ["toy_alpha"])


def test_every_architecture_option_is_declared_once_and_the_config_derives_its_fields():
    """models.options.OPTIONS is the one declaration: each is a ResNet field, the config's field of the same name
    has its default, doc, choices and range, and the variant list is the options marked variant."""
    import dataclasses

    from resnet_jax.models import ResNet
    from resnet_jax.models.options import OPTIONS, variant_defaults

    resnet_fields = {field.name for field in dataclasses.fields(ResNet)}
    for option in OPTIONS:
        assert option.name in resnet_fields, option.name
        field = {field.name: field for field in all_fields()}[option.name]
        assert (field.default, field.doc, field.range) == (option.default, option.doc, option.range)
        assert field.allowed_values() == option.config_choices()
    assert variant_defaults() == {
        "shortcut": "", "activation_order": "", "se_ratio": 0.0, "stochastic_depth": 1.0, "shortcut_scale": 1.0,
        "branch_scale": 1.0, "gate": "", "gate_bias_init": 0.0, "shortcut_dropout": 0.0,
    }  # fmt: skip


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"shortcut": "none", "shortcut_dropout": 0.5}, "shortcut_dropout acts on the shortcut"),
        ({"shortcut": "none", "gate": "exclusive"}, "gate acts on the shortcut"),
        ({"shortcut": "none", "zero_init_residual": True}, "would zero a plain network's only path"),
        ({"activation_order": "relu_before_addition", "zero_init_residual": True}, "relu'\\(0\\) = 0"),
        ({"shortcut": "E"}, "shortcut must be one of"),
        ({"stochastic_depth": 0.0}, "stochastic_depth must be in \\(0, 1\\]"),
    ],
)
def test_an_impossible_combination_is_refused_by_the_option_that_declares_it(overrides, message):
    from resnet_jax.models import create_model

    with pytest.raises(ValueError, match=message):
        create_model("cifar_resnet20", num_classes=10, **overrides)


def test_a_family_without_an_option_refuses_it_by_name():
    from resnet_jax.errors import ConfigError
    from resnet_jax.models import create_model

    for name, family in (("efficientnet_b0", "EfficientNet"), ("hrnet_w18_small", "HRNet")):
        with pytest.raises(
            ConfigError, match=rf"shortcut is an option of the ResNet family, and '{name}' is of the {family} family"
        ):
            create_model(name, num_classes=10, shortcut="D")
        with pytest.raises(ConfigError, match="gate, se_ratio are options of the ResNet family.*drop them"):
            create_model(name, num_classes=10, gate="exclusive", se_ratio=0.25)
