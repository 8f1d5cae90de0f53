"""Trace readers, one module per format, registered by format name.

    from intercloud.twin.traces import get_reader
    for job in get_reader("tiresias").read("60_job.csv"):
        ...

Formats: ``generic_csv`` (intercloud's documented CSV), ``philly`` (Microsoft Philly,
processed CSV), ``alibaba_openb`` (Alibaba openb pod lists), ``tiresias`` (Tiresias CSV),
``philly_gavel`` (Gavel's Philly-derived ``.trace`` files).
"""

from intercloud.twin.traces import alibaba_openb, generic_csv, philly, philly_gavel, tiresias
from intercloud.twin.traces.base import (
    TraceError,
    TraceJob,
    TraceReader,
    formats,
    get_reader,
    read_trace,
    register,
)

__all__ = [
    "TraceError",
    "TraceJob",
    "TraceReader",
    "alibaba_openb",
    "formats",
    "generic_csv",
    "get_reader",
    "philly",
    "philly_gavel",
    "read_trace",
    "register",
    "tiresias",
]
