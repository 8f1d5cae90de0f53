"""One entry point for "the catalog": the bundled one, or an external SkyPilot folder.

``intercloud.catalog.bundled`` and ``intercloud.catalog.local`` are imported when needed,
so this module imports cleanly on its own.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from pathlib import Path
from typing import cast

from intercloud.catalog.catalog import Catalog
from intercloud.catalog.skypilot import load_skypilot_dir
from intercloud.model import Offering

_LOCAL = "intercloud.catalog.local"


def load_catalog(catalog_dir: Path | None = None) -> Catalog:
    """The catalog to plan against.

    With ``catalog_dir``: the SkyPilot-format catalog in that folder (see
    ``load_skypilot_dir``) plus the ``local`` offerings (your own machines).
    Without: the bundled catalog, ``intercloud.catalog.bundled.load_bundled()``.
    Raises ``CatalogError`` for a folder that cannot be read.
    """
    if catalog_dir is None:
        bundled = importlib.import_module("intercloud.catalog.bundled")
        return cast(Catalog, bundled.load_bundled())
    return load_skypilot_dir(Path(catalog_dir)).merged(_local_catalog())


def _local_catalog() -> Catalog:
    """The ``local`` offerings; empty while ``intercloud.catalog.local`` does not exist."""
    try:
        local = importlib.import_module(_LOCAL)
    except ModuleNotFoundError as e:
        if e.name != _LOCAL:
            raise
        return Catalog(())
    rows = local.local_offerings()
    if isinstance(rows, Catalog):
        return rows
    return Catalog.from_offerings(cast(Iterable[Offering], rows), ("local",))
