"""``python -m intercloud`` runs the CLI."""

from intercloud.cli.main import entrypoint

entrypoint()
