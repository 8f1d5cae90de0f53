"""Alembic environment for the store's schema (run programmatically by ``open_store``)."""
