"""Every config field, as users see it: the default config, the ``--help`` listing and the field reference.

The fields are declared by the packages that read them (``models.fields``, ``data.fields``,
``train.fields``) and assembled, validated and split into settings by ``train.settings``. Only
``default_config`` imports ml_collections, so the core runs where only jax, flax and optax are installed.
``python -m resnet_jax.config_schema`` lists the fields; ``--markdown`` writes the reference page.
"""

import sys

from resnet_jax.train.settings import SECTIONS, all_fields, default_values, validate

__all__ = ["default_config", "field_names", "help_text", "markdown_table", "validate"]


def field_names() -> list[str]:
    """Every field's flat name, in declaration order."""
    return [field.name for field in all_fields(SECTIONS)]


def default_config():
    """The default config (configs/default.py) as an ml_collections ConfigDict, locked so that setting an
    undeclared field fails at once. (ml_collections is imported here only: the core needs no config library.)"""
    import ml_collections

    config = ml_collections.ConfigDict(default_values())
    config.lock()
    return config


def help_text() -> str:
    """The field listing of ``--help`` and ``--helpfull``: one line per field, by section."""
    lines = ["Config fields (override any with --config.FIELD=VALUE):"]
    for section in SECTIONS:
        lines.append(f"  {section.name} ({section.owner}):")
        for field in section.fields:
            allowed = field.allowed_text()
            lines.append(f"    {field.name} = {field.default!r}: {field.doc}" + (f" [{allowed}]" if allowed else ""))
    return "\n".join(lines)


def markdown_table() -> str:
    """The field reference: one table row per field, by section."""
    rows = []
    for section in SECTIONS:
        rows += [
            f"## {section.name}",
            "",
            f"Declared and read by `{section.owner}`.",
            "",
            "| field | default | allowed | meaning |",
            "|---|---|---|---|",
        ]
        for field in section.fields:
            allowed, doc = (text.replace("|", "\\|") for text in (field.allowed_text(), field.doc))
            rows.append(f"| `{field.name}` | `{field.default!r}` | {allowed} | {doc} |")
        rows.append("")
    return "\n".join(rows)


if __name__ == "__main__":
    print(markdown_table() if "--markdown" in sys.argv else help_text())
