"""Dataset export and import: one function per format, chosen by ``format``.

A new format is one value of :data:`landforge.datasets.export_options.ExportFormat`
and one ``fn(store, out, opts, map_path=None) -> Path`` in :data:`EXPORTERS` (and,
when it can be read back, one ``fn(source, out, opts) -> Path`` in :data:`IMPORTERS`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from landforge.datasets.export_options import ExportOptions, ImportOptions
from landforge.datasets.stac import export_stac, import_stac
from landforge.errors import OptionError

__all__ = ["EXPORTERS", "IMPORTERS", "export_dataset", "import_dataset"]

Exporter = Callable[..., Path]


def _export_mslu(
    store: str | os.PathLike[str],
    out: str | os.PathLike[str],
    opts: ExportOptions,
    map_path: str | os.PathLike[str] | None = None,
) -> Path:
    """MSLU-100K layout of a labelled parcels file (``store``), patches cut from ``map_path``."""
    from landforge.labelling.mslu import export_mslu_dataset  # pandas, rasterio, Pillow

    return export_mslu_dataset(store, out, opts, map_path=map_path)


#: format -> exporter ``fn(store, out, opts, map_path=None) -> Path``
EXPORTERS: dict[str, Exporter] = {"stac": export_stac, "mslu": _export_mslu}
#: format -> importer ``fn(source, out, opts) -> Path`` (a chip store)
IMPORTERS: dict[str, Exporter] = {"stac": import_stac}


def export_dataset(
    store: str | os.PathLike[str],
    out: str | os.PathLike[str],
    opts: ExportOptions | Mapping[str, Any] | None = None,
    *,
    map_path: str | os.PathLike[str] | None = None,
    **overrides: Any,
) -> Path:
    """Export ``store`` (a chip store; for mslu a labelled parcels file) in ``opts.format``."""
    o = ExportOptions.build(opts, **overrides)
    fn = EXPORTERS.get(o.format)
    if fn is None:  # a format named in ExportFormat without an exporter
        raise OptionError("format", f"no exporter for {o.format!r}; known: {', '.join(EXPORTERS)}")
    return fn(store, out, o, map_path=map_path)


def import_dataset(
    source: str | os.PathLike[str],
    out: str | os.PathLike[str],
    opts: ImportOptions | Mapping[str, Any] | None = None,
    **overrides: Any,
) -> Path:
    """Read an exported dataset ``source`` back into a chip store at ``out``."""
    o = ImportOptions.build(opts, **overrides)
    fn = IMPORTERS.get(o.format)
    if fn is None:
        raise OptionError(
            "format", f"{o.format!r} cannot be read back; known: {', '.join(IMPORTERS)}"
        )
    return fn(source, out, o)
