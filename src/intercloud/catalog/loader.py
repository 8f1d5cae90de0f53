"""One entry point for "the catalog": the bundled one, or an external SkyPilot folder,
plus the ``local`` offering describing this machine."""

from __future__ import annotations

from pathlib import Path

from intercloud.catalog.bundled import load_bundled
from intercloud.catalog.catalog import Catalog
from intercloud.catalog.local import local_offerings
from intercloud.catalog.skypilot import load_skypilot_dir


def load_catalog(catalog_dir: Path | None = None) -> Catalog:
    """The catalog to plan against: ``local`` plus the bundled catalog, or, with
    ``catalog_dir``, plus the SkyPilot-format catalog in that folder (see
    ``load_skypilot_dir``). Raises ``CatalogError`` for a folder that cannot be read.
    """
    base = load_bundled() if catalog_dir is None else load_skypilot_dir(Path(catalog_dir))
    return base.merged(Catalog.from_offerings(local_offerings(), ("local",)))
