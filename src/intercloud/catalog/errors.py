"""Errors raised while reading catalogs."""

from __future__ import annotations


class CatalogError(ValueError):
    """A catalog file or folder that cannot be read.

    The message is one line and names the file, and where it applies the line number
    and column, e.g. ``aws/vms.csv:12: column 'Price': cannot read 'abc' as a number``.
    """
