"""Offerings of every provider: the bundled catalog and loaders for external ones."""

from intercloud.catalog.catalog import Catalog, Columns

__all__ = ["Catalog", "Columns"]
