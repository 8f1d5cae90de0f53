"""The FastAPI application: ``create_app(settings)``; ``app_from_env`` for uvicorn's
worker processes (``--workers N`` imports it by name)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from intercloud.api.audit import install_audit
from intercloud.api.body_limit import BodyLimit
from intercloud.api.context import ApiContext, ApiSettings
from intercloud.api.dashboard import routes as dashboard
from intercloud.api.errors import ERROR_SCHEMA, install_handlers
from intercloud.api.metrics import ApiMetrics, install_metrics
from intercloud.api.routes import fleet, tenants, tokens, workloads

API_VERSION = "1"


def create_app(settings: ApiSettings | None = None) -> FastAPI:
    """The app over the store ``settings`` names (opened at once: a bad database fails
    here, not at the first request)."""
    ctx = ApiContext.open(settings or ApiSettings())

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        ctx.close()

    app = FastAPI(
        title="intercloud",
        version=API_VERSION,
        description=(
            "Intercloud broker and fleet scheduler. Every call needs "
            "`Authorization: Bearer <token>`; errors are `{code, message, field}`."
        ),
        lifespan=lifespan,
        responses={
            "4XX": {
                "description": "Refused",
                "content": {"application/json": {"schema": ERROR_SCHEMA}},
            }
        },
    )
    app.state.ctx = ctx
    install_handlers(app)
    app.add_middleware(BodyLimit, limit=ctx.settings.max_body_bytes)
    install_audit(app)  # outside the body limit: a refused body is audited too
    install_metrics(app, ApiMetrics(ctx.store))  # outermost: times the audit write too
    for module in (workloads, tenants, tokens, fleet):
        app.include_router(module.router)
    app.include_router(dashboard.router)
    workloads.install_lean_submit(app.router.routes)
    return app


def app_from_env() -> FastAPI:
    """The app of a worker process, configured by the environment."""
    from intercloud.gc_tuning import tune_gc

    tune_gc()
    return create_app(ApiSettings.from_env())
