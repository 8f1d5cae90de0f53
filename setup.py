"""The compiled FleetState hot path (``intercloud.scheduler.fleet._fleetc``), built where
a C compiler and the Python headers exist. ``optional=True``: when it cannot be built the
install goes on without it and ``FleetState`` runs its pure-Python path (the same
decisions: tests/scheduler/fleet/test_fleet_state_bulk.py)."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "intercloud.scheduler.fleet._fleetc",
            ["src/intercloud/scheduler/fleet/_fleetc.c"],
            optional=True,
        )
    ]
)
