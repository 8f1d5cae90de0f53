"""The compiled hot paths, built where a C compiler and the Python headers exist: the
FleetState bookkeeping (``intercloud.scheduler.fleet._fleetc``) and the scheduler's walk
over held gangs (``intercloud.scheduler._walkc``). ``optional=True``: when one cannot be
built the install goes on without it and the pure-Python path runs (the same decisions:
tests/scheduler/fleet/test_fleet_state_bulk.py, tests/scheduler/core/test_core_walk_compiled.py)."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "intercloud.scheduler.fleet._fleetc",
            ["src/intercloud/scheduler/fleet/_fleetc.c"],
            optional=True,
        ),
        Extension(
            "intercloud.scheduler._walkc",
            ["src/intercloud/scheduler/_walkc.c"],
            optional=True,
        ),
    ]
)
