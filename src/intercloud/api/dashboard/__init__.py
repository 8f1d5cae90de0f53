"""The web dashboard served by the API under ``/ui`` (see ``routes``)."""
