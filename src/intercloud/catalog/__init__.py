"""Offerings of every provider: the bundled catalog and loaders for external ones."""

from intercloud.catalog.bundled import load_bundled
from intercloud.catalog.catalog import Catalog, Columns
from intercloud.catalog.errors import CatalogError
from intercloud.catalog.local import local_offerings

__all__ = ["Catalog", "CatalogError", "Columns", "load_bundled", "local_offerings"]
