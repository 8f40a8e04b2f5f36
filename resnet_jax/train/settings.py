"""The config as training reads it: every package's section assembled, validated, and split into typed, frozen
settings once, at the entry point, for each package to read its own.

Each package declares its own fields and rules as a ``fields.Section``: ``models.fields`` (model),
``data.fields`` (data) and ``train.fields`` (optimisation, run). This module assembles them and checks the
rules that span packages; ``config_schema`` prints them and makes the default config.
"""

import dataclasses
from typing import Any

from resnet_jax.data import check_num_classes, spec
from resnet_jax.data import fields as data_fields
from resnet_jax.errors import require
from resnet_jax.fields import Field, Section, nested, set_names, value_of
from resnet_jax.models import fields as model_fields
from resnet_jax.models.options import RENAMED
from resnet_jax.train import fields as train_fields

SECTIONS: tuple[Section, ...] = (
    model_fields.SECTION,
    data_fields.SECTION,
    train_fields.OPTIMISATION,
    train_fields.RUN,
)


def all_fields(sections: tuple[Section, ...] = SECTIONS) -> tuple[Field, ...]:
    """Every section's fields as declared now (a module may have registered an option since the last call)."""
    return tuple(field for section in sections for field in section.fields)


@dataclasses.dataclass(frozen=True)
class Settings:
    """A validated config as each package reads it: one typed, frozen settings object per section."""

    model: Any
    data: Any
    optimisation: Any
    run: Any


def settings_of(config: Any) -> Settings:
    """Each section's settings of ``config`` (a ConfigDict or dict that ``validate`` accepted)."""
    return Settings(*(section.settings(config) for section in SECTIONS))


def default_values() -> dict[str, Any]:
    """Every field's default, nested by group as ``config.to_dict()`` nests a config."""
    return nested([(field.name, field.default) for field in all_fields()])


def validate(config: Any) -> None:
    """Check every field, each section's rules and the rules between sections, before anything starts;
    ConfigError says what to change."""
    given = set(set_names(config))
    declared = all_fields()
    undeclared = sorted(given - {field.name for field in declared})
    renamed = [RENAMED[name] for name in undeclared if name in RENAMED]
    require(not renamed, " ".join(renamed))
    require(
        not undeclared,
        f"the config sets {', '.join(undeclared)}, which no field declares. Check the spelling against the "
        "fields listed by `python -m resnet_jax.config_schema`; a new option is declared in the fields module of "
        "the package that reads it (resnet_jax/models/fields.py, data/fields.py or train/fields.py).",
    )
    missing = [field.name for field in declared if field.name not in given]
    require(
        not missing,
        f"the config lacks {', '.join(missing)}; config files start from configs/default.py's get_config(), and "
        "a field that a module of yours registers (an architecture option) is in configs made after that module "
        "is imported: import it at the top of your config file.",
    )
    for field in declared:
        field.check(value_of(config, field.name))
    checked = settings_of(config)
    for section in SECTIONS:
        section.check_rules(getattr(checked, section.name))
    _check_across_sections(checked)


def _check_across_sections(checked: Settings) -> None:
    """The rules between fields of different packages."""
    named = spec.NAMED_DATASETS.get(checked.data.dataset)
    if named is not None:  # a named dataset's classes are known before its files are read
        check_num_classes(checked.data.dataset, named.spec.num_classes, checked.model.num_classes)
    require(
        checked.run.steps_per_dispatch == 1 or checked.data.input_placement != "host",
        f"steps_per_dispatch={checked.run.steps_per_dispatch} runs that many steps in one program over a dataset "
        "on the devices, but with input_placement='host' this run's batches are made on the host; set "
        "--config.steps_per_dispatch=1, or --config.input_placement=auto.",
    )
