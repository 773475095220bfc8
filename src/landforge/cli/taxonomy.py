"""``landforge taxonomy``: list the shipped class systems and mappings, show one.

``show`` also takes the path of a user's own YAML file, so it doubles as a validator:
a broken file gives ``error: <file>: <problem>`` and exit status 2.
"""

from __future__ import annotations

import typer

from landforge.taxonomy import CategoryMapping, ClassDef, ClassSystem, available, load_taxonomy

__all__ = ["register"]

taxonomy_app = typer.Typer(
    help="Class systems and category mappings (shipped, or your own YAML).",
    no_args_is_help=True,
)


@taxonomy_app.command("list")
def list_cmd() -> None:
    """List shipped taxonomies with a one-line description."""
    names = available()
    width = max(map(len, names), default=0)
    for name, description in names.items():
        kind = load_taxonomy(name).kind
        typer.echo(f"{name:<{width}}  {kind:<7}  {description}")


@taxonomy_app.command("show")
def show_cmd(
    name: str = typer.Argument(..., help="A shipped name (see `list`) or a YAML file path."),
) -> None:
    """Show a class system's hierarchy or a mapping's table (validating the file)."""
    tax = load_taxonomy(name)
    typer.echo(f"{tax.name}: {tax.description}")
    if tax.reference:
        typer.echo(f"reference: {tax.reference}")
    if isinstance(tax, ClassSystem):
        _show_classes(tax)
    else:
        _show_mapping(tax)


def _show_classes(cs: ClassSystem) -> None:
    typer.echo(f"levels: {' > '.join(cs.levels)}; {cs.nodata_value} = {cs.nodata_name}")
    width = max(len(c.code) + 2 * c.level for c in cs)

    def show(c: ClassDef) -> None:  # depth first, so children sit under their parent
        value = f"[{c.value}] " if c.value is not None else ""
        zh = f" ({c.name_zh})" if c.name_zh else ""
        typer.echo(f"{'  ' * c.level + c.code:<{width}}  {value}{c.name}{zh}")
        for child in cs.children(c.code):
            show(child)

    for c in cs.primary():
        show(c)


def _show_mapping(m: CategoryMapping) -> None:
    typer.echo(f"{m.source} -> {m.target}")
    if m.key_priority:
        typer.echo(f"key priority: {', '.join(m.key_priority)}")
    pairs = m.pairs
    for c in m.classes():
        sources = [s for s, t in pairs.items() if t == c.code]
        typer.echo(f"{c.code} {c.name}: {', '.join(sources)}")
    if m.ignored:
        typer.echo(f"ignored: {', '.join(m.ignored)}")


def register(app: typer.Typer) -> None:
    """Add the ``taxonomy`` command group to the landforge CLI."""
    app.add_typer(taxonomy_app, name="taxonomy")
