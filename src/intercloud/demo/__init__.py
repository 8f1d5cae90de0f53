"""Small real workloads for the quickstart and tests (run with ``python -m``)."""
