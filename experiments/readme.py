"""The README's generated blocks: the config-field table (from resnet_jax/config_schema.py) and the
published numbers (from experiments/tables), so neither is written twice.

    python experiments/readme.py          # rewrite the blocks of README.md in place
    python experiments/readme.py --check  # exit 1 if README.md is out of date (the tests do this too)

A block is the text between ``<!-- BEGIN generated: NAME -->`` and ``<!-- END generated: NAME -->``.
"""

import re
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root: configs, experiments

from experiments import tables  # noqa: E402
from resnet_jax import config_schema  # noqa: E402

README = Path(__file__).resolve().parent.parent / "README.md"


def published_numbers() -> str:
    """One line per table: its name, title and each row's published error."""
    lines = []
    for name, table in tables.TABLES.items():
        rows = [
            f"{row.name} {row.published:g}" + (f" ± {row.published_std:g}" if row.published_std else "")
            for row in table.rows
            if row.published is not None
        ]
        numbers = "; ".join(rows) if rows else "curves only"
        lines.append(f"- `{name}`: {table.title}. Error (%): {numbers}.")
    return "\n".join(lines)


BLOCKS: dict[str, Callable[[], str]] = {
    "config-fields": config_schema.markdown_table,
    "published-numbers": published_numbers,
}


def render(text: str) -> str:
    """``text`` with every generated block replaced by its current content."""
    for name, make in BLOCKS.items():
        begin, end = f"<!-- BEGIN generated: {name} -->", f"<!-- END generated: {name} -->"
        pattern = re.compile(rf"({begin}\n)(?:.*?\n)?({end})", re.DOTALL)
        if not pattern.search(text):
            raise ValueError(f"README.md has no block {name!r}; add its BEGIN and END lines")
        text = pattern.sub(lambda match, make=make: f"{match.group(1)}{make()}\n{match.group(2)}", text)
    return text


def main(argv: list[str]) -> int:
    """Rewrite README.md's blocks, or with --check report whether they are current."""
    text = README.read_text()
    current = render(text)
    if "--check" in argv:
        if current != text:
            print("README.md is out of date: run python experiments/readme.py", file=sys.stderr)
            return 1
        return 0
    README.write_text(current)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
