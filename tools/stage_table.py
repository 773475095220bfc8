"""Write the table of stages (inputs, options model, outputs) into docs/dev/architecture.md.

    python tools/stage_table.py           # rewrite the table between the markers
    python tools/stage_table.py --check   # exit 1 if the doc is out of date (a test runs it)

The table is made from the stage registry, so it cannot drift from the code.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from landforge.pipeline.registry import registered_stages

DOC = Path(__file__).resolve().parents[1] / "docs" / "dev" / "architecture.md"
BEGIN = "<!-- stage-table:begin (tools/stage_table.py) -->"
END = "<!-- stage-table:end -->"


def stage_table() -> str:
    """Markdown table of every registered stage."""
    rows = [
        "| stage (`type:`) | command | reads | options model | writes |",
        "|---|---|---|---|---|",
    ]
    for st in registered_stages().values():
        cfg = st.config
        bases = [
            b.__name__
            for b in cfg.__mro__[1:]
            if b.__name__.endswith(("Options", "Config"))
            and b.__module__.startswith("landforge.")
            and b.__name__ not in ("StageConfig", "Options")
        ]
        model = f"`{cfg.__name__}`" + (f" (`{'`, `'.join(bases)}`)" if bases else "")
        command = f"`landforge {' '.join(st.command)}`" if st.command else ""
        reads = ", ".join(f"`{f}`" for f in cfg.input_fields)
        writes = ", ".join(f"`{f}`" for f in cfg.output_fields)
        rows.append(f"| `{st.name}` | {command} | {reads} | {model} | {writes} |")
    return "\n".join(rows)


def render(text: str) -> str:
    """``text`` with the table between the markers replaced."""
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    return f"{head}{BEGIN}\n{stage_table()}\n{END}{tail}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    text = DOC.read_text()
    new = render(text)
    if args.check:
        if new != text:
            print(f"{DOC}: stage table out of date; run python tools/stage_table.py")
            return 1
        return 0
    DOC.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
