"""How a config field is declared, checked and read: ``Field``, and each section's typed, frozen settings.

Each package declares the fields it reads (``models.fields``, ``data.fields``, ``train.fields``) as a
``Section``; ``train.settings`` assembles the sections. A section's settings are a frozen dataclass with
one typed attribute per field, built once from the flat ConfigDict at the entry point and handed down, so
no callee reads the ConfigDict again. Pure Python: loading a config imports neither JAX nor TensorFlow.
"""

import dataclasses
import difflib
import importlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from resnet_jax.errors import ConfigError
from resnet_jax.paths import require_filesystem
from resnet_jax.ranges import Range


@dataclasses.dataclass(frozen=True)
class Owned:
    """Allowed values that a module owns (``module.attribute``, a sequence or a function giving one), read on
    first use; ``doc`` describes them in listings where the full list would be too long."""

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
      choices: the allowed values (a tuple, or ``Owned`` by the module that dispatches on them).
      range: the allowed numbers (for a tuple field: each element).
      element: the element type of a tuple field; ``length`` its fixed length, if any.
      path: a path or URI ('' for none), which must be on a filesystem this install can open (``gs://``).
    """

    name: str
    default: Any
    doc: str
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
            require_filesystem(value, f"--config.{self.name}={value}")

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


def value_of(config: Any, name: str) -> Any:
    """The value of the dotted field ``name`` in a ConfigDict, a dict or settings."""
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


def nested(pairs: Sequence[tuple[str, Any]]) -> dict[str, Any]:
    """``{'a.b': 1}``-style dotted pairs as nested dicts, as ``config.to_dict()`` nests a config."""
    tree: dict[str, Any] = {}
    for name, value in pairs:
        *groups, leaf = name.split(".")
        node = tree
        for group in groups:
            node = node.setdefault(group, {})
        node[leaf] = value
    return tree


def _settings_type(name: str, tree: dict[str, Any]) -> type:
    """A frozen dataclass with one attribute per key of ``tree`` (a default, or a dict for a nested group),
    typed as its default is."""
    attributes = []
    for key, default in tree.items():
        kind = _settings_type(f"{name}.{key}", default) if isinstance(default, dict) else type(default)
        attributes.append((key, kind))
    return dataclasses.make_dataclass(name.replace(".", "_"), attributes, frozen=True)


@dataclasses.dataclass(frozen=True)
class Section:
    """The fields one package declares and reads, its rules between them, and its settings type.

    Attributes:
      name: the section's name in listings (model, data, optimisation, run).
      owner: the package that declares and reads it.
      declared: its fields, in listing order, or a function giving them when they are read (a registry that
        modules outside the package add to).
      check_rules: ``(settings) -> None``: the checks between its fields that one field cannot make; raises
        ConfigError saying what to change.
    """

    name: str
    owner: str
    declared: tuple[Field, ...] | Callable[[], tuple[Field, ...]]
    check_rules: Callable[[Any], None] = lambda settings: None

    @property
    def fields(self) -> tuple[Field, ...]:
        """The section's fields as declared now."""
        return self.declared() if callable(self.declared) else self.declared

    def _settings_type_of(self, fields: tuple[Field, ...]) -> type:
        """The frozen dataclass of the values of ``fields`` (groups are nested dataclasses), made once per list."""
        defaults = [(f.name, f.default) for f in fields]
        key = (self.owner, self.name, tuple((name, type(default)) for name, default in defaults))
        if key not in _SETTINGS_TYPES:
            _SETTINGS_TYPES[key] = _settings_type(f"{self.name.title()}Settings", nested(defaults))
        return _SETTINGS_TYPES[key]

    def settings(self, config: Any, **changes: Any) -> Any:
        """This section's settings from a ConfigDict, a dict or another section's settings; tuple fields become
        tuples. ``changes`` replace fields by their dotted name."""
        fields = self.fields
        values = [
            (f.name, _as_declared(changes[f.name] if f.name in changes else value_of(config, f.name), f))
            for f in fields
        ]
        return _build(self._settings_type_of(fields), nested(values))

    def defaults(self, **changes: Any) -> Any:
        """The settings of every field's default, with ``changes``."""
        return self.settings(nested([(f.name, f.default) for f in self.fields]), **changes)


_SETTINGS_TYPES: dict[tuple, type] = {}


def _as_declared(value: Any, field: Field) -> Any:
    return tuple(value) if isinstance(field.default, tuple) else value


def _build(kind: type, tree: dict[str, Any]) -> Any:
    types = {f.name: f.type for f in dataclasses.fields(kind)}
    return kind(**{key: _build(types[key], value) if isinstance(value, dict) else value for key, value in tree.items()})


def changed(settings: Any, section: Section, names: Sequence[str]) -> list[str]:
    """Which of ``names`` the settings set away from their defaults."""
    defaults = {f.name: f.default for f in section.fields}
    return [name for name in names if value_of(settings, name) != defaults[name]]
