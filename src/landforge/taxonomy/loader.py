"""Find, read, validate and cache taxonomy files.

A taxonomy is named either by a shipped name (``"mslu"``, a file in ``taxonomy/data/``)
or by a path to a user's own YAML file with the same schema. Every file is validated
when loaded; any problem becomes an :class:`~landforge.errors.InputError` naming the file.
Loaded taxonomies are cached by resolved path and modification time, so each file is
read once per process while an edited user file is picked up again.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml
from pydantic import ValidationError

from landforge.errors import InputError
from landforge.taxonomy.classes import ClassDef, ClassSystem
from landforge.taxonomy.mapping import CategoryMapping
from landforge.taxonomy.schema import OSM_SOURCE, ClassFile, MappingFile

__all__ = [
    "DATA_DIR",
    "Taxonomy",
    "available",
    "clear_cache",
    "load_classes",
    "load_mapping",
    "load_taxonomy",
]

DATA_DIR = Path(__file__).resolve().parent / "data"

Taxonomy = ClassSystem | CategoryMapping
NameOrPath = str | os.PathLike[str]

_cache: dict[tuple[Path, int, int], Taxonomy] = {}
_lock = threading.RLock()


def available() -> dict[str, str]:
    """Shipped taxonomies: ``name -> description``, sorted by name."""
    return {p.stem: load_taxonomy(p.stem).description for p in _shipped()}


def clear_cache() -> None:
    """Forget every loaded taxonomy (for tests and long-lived sessions)."""
    with _lock:
        _cache.clear()


def load_taxonomy(name: NameOrPath) -> Taxonomy:
    """Load a class system or a mapping by shipped name or by path.

    Args:
        name: a shipped name (see :func:`available`) or the path of a YAML file.

    Raises:
        InputError: unknown name, missing file, or a file that fails validation.
    """
    return _load(_resolve(name), stack=())


def load_classes(name: NameOrPath) -> ClassSystem:
    """Load a class system (``taxonomy: classes``) by shipped name or path.

    Raises:
        InputError: as :func:`load_taxonomy`, or if the file is a mapping.
    """
    tax = load_taxonomy(name)
    if not isinstance(tax, ClassSystem):
        raise InputError(_source(tax), f"'{tax.name}' is a mapping, not a class system")
    return tax


def load_mapping(name: NameOrPath) -> CategoryMapping:
    """Load a category mapping (``taxonomy: mapping``) by shipped name or path.

    Raises:
        InputError: as :func:`load_taxonomy`, or if the file is a class system.
    """
    tax = load_taxonomy(name)
    if not isinstance(tax, CategoryMapping):
        raise InputError(_source(tax), f"'{tax.name}' is a class system, not a mapping")
    return tax


# -- resolving names ----------------------------------------------------------------------
def _shipped() -> list[Path]:
    return sorted(DATA_DIR.glob("*.yaml"))


def _is_path(name: NameOrPath) -> bool:
    if isinstance(name, os.PathLike):
        return True
    return "/" in name or os.sep in name or name.lower().endswith((".yaml", ".yml"))


def _resolve(name: NameOrPath, relative_to: Path | None = None) -> Path:
    if not isinstance(name, str | os.PathLike):
        raise InputError("taxonomy", f"expected a taxonomy name or path, got {name!r}")
    if _is_path(name):
        path = Path(name).expanduser()
        if relative_to is not None and not path.is_absolute():
            path = relative_to / path
        if not path.is_file():
            what = "is a directory" if path.is_dir() else "does not exist"
            raise InputError(path, f"taxonomy file {what}")
        return path.resolve()
    path = DATA_DIR / f"{name}.yaml"
    if not path.is_file():
        names = ", ".join(p.stem for p in _shipped())
        raise InputError("taxonomy", f"unknown taxonomy '{name}'; available: {names}")
    return path


def _source(tax: Taxonomy) -> str:
    return str(tax.path) if tax.path else tax.name


# -- loading ------------------------------------------------------------------------------
def _load(path: Path, stack: tuple[Path, ...]) -> Taxonomy:
    if path in stack:
        raise InputError(path, "taxonomy files refer to each other in a loop")
    st = path.stat()
    key = (path, st.st_mtime_ns, st.st_size)
    with _lock:
        hit = _cache.get(key)
        if hit is not None:
            return hit
        raw = _read_yaml(path)
        kind = raw.get("taxonomy")
        if kind == "classes":
            tax: Taxonomy = _build_classes(path, raw)
        elif kind == "mapping":
            tax = _build_mapping(path, raw, (*stack, path))
        else:
            raise InputError(path, f"'taxonomy:' must be 'classes' or 'mapping', found {kind!r}")
        for old in [k for k in _cache if k[0] == path]:  # an edited file: drop stale copy
            del _cache[old]
        _cache[key] = tax
        return tax


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate mapping keys instead of keeping the last one.

    Plain ``yaml.safe_load`` silently drops the first of two equal keys, which would
    hide exactly the mistakes the validation is meant to catch (a target listed twice).
    """


def _no_duplicates(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> Any:
    loader.flatten_mapping(node)
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        try:
            dup = key in seen
        except TypeError:  # unhashable key: let the base constructor complain
            break
        if dup:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _no_duplicates)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(path, f"cannot read taxonomy file: {exc}") from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise InputError(path, f"invalid YAML{where}: {problem}") from None
    if not isinstance(data, dict):
        raise InputError(path, "a taxonomy file must be a YAML mapping with 'taxonomy:' first")
    return data


def _pydantic_problem(exc: ValidationError, raw: dict[str, Any]) -> str:
    """First validation error as ``where: what`` (and how many more)."""
    errors = exc.errors()
    err = errors[0]
    loc = list(err["loc"])
    where = ""
    if len(loc) >= 2 and loc[0] == "classes" and isinstance(loc[1], int):
        entry = raw.get("classes", [])[loc[1]]
        code = entry.get("code") if isinstance(entry, dict) else None
        where = f"class {code!r}" if isinstance(code, str) else f"classes[{loc[1]}]"
        loc = loc[2:]
    parts = [where] if where else []
    parts += [str(p) for p in loc]
    msg = str(err["msg"])
    if err["type"] == "string_type" and isinstance(err.get("input"), bool | int | float):
        msg += " (quote it: YAML reads yes/no/on/off as booleans and 01 as a number)"
    more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
    return f"{'.'.join(parts) or 'file'}: {msg}{more}"


def _build_classes(path: Path, raw: dict[str, Any]) -> ClassSystem:
    try:
        spec = ClassFile.model_validate(raw)
        depth = spec.check()
    except ValidationError as exc:
        raise InputError(path, _pydantic_problem(exc, raw)) from None
    except ValueError as exc:
        raise InputError(path, str(exc)) from None
    name = _check_name(path, spec.name)
    classes = [
        ClassDef(
            code=c.code,
            name=c.name,
            level=depth[c.code],
            parent=c.parent,
            value=c.value,
            color=c.color,
            name_zh=c.name_zh,
            description=c.description,
            aliases=tuple(c.aliases),
            attrs=MappingProxyType(dict(c.attrs)),
        )
        for c in spec.classes
    ]
    return ClassSystem(
        name,
        spec.levels,
        classes,
        description=spec.description,
        reference=spec.reference,
        nodata_value=spec.nodata_value,
        nodata_name=spec.nodata_name,
        path=path,
    )


def _build_mapping(path: Path, raw: dict[str, Any], stack: tuple[Path, ...]) -> CategoryMapping:
    try:
        spec = MappingFile.model_validate(raw)
        pairs = spec.pairs()
    except ValidationError as exc:
        raise InputError(path, _pydantic_problem(exc, raw)) from None
    except ValueError as exc:
        raise InputError(path, str(exc)) from None
    name = _check_name(path, spec.name)
    target = _system(spec.target, "target", path, stack)
    for code in spec.map:
        if code not in target:
            raise InputError(
                path, f"target code {code!r} does not exist in class system '{target.name}'"
            )
    source: ClassSystem | None = None
    if spec.source != OSM_SOURCE:
        source = _system(spec.source, "source", path, stack)
        for cat in [*pairs, *spec.ignore]:
            if cat not in source:
                raise InputError(path, f"source category {cat!r} does not exist in '{source.name}'")
        covered = set(pairs) | set(spec.ignore)
        for c in source.classes:
            if not any(a.code in covered for a in source.lineage(c.code)):
                raise InputError(
                    path,
                    f"category {c.code!r} of '{source.name}' is neither mapped nor ignored",
                )
    return CategoryMapping(
        name,
        spec.source if source is None else source.name,
        target.name,
        pairs,
        spec.ignore,
        target_system=target,
        source_system=source,
        key_priority=spec.key_priority,
        description=spec.description,
        reference=spec.reference,
        path=path,
    )


def _system(ref: str, role: str, path: Path, stack: tuple[Path, ...]) -> ClassSystem:
    """The class system a mapping names as its source or target."""
    try:
        tax = _load(_resolve(ref, relative_to=path.parent), stack)
    except InputError as exc:
        raise InputError(path, f"{role} '{ref}': {exc.line()}") from None
    if not isinstance(tax, ClassSystem):
        raise InputError(path, f"{role} '{ref}' is a mapping, not a class system")
    return tax


def _check_name(path: Path, name: str | None) -> str:
    if path.parent == DATA_DIR and name is not None and name != path.stem:
        raise InputError(path, f"name '{name}' differs from the file name '{path.stem}'")
    return name or path.stem
