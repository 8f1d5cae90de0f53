"""The API server: tenants, tokens, roles, workloads, fleet, over HTTP (``/v1``).

- ``app.create_app(settings)``: the FastAPI application (``intercloud server start``);
- ``client.RemoteClient``: the same methods as ``intercloud.sdk.Client``, over HTTP;
- ``tokens``/``roles``: secrets and what each role may do; ``errors``: the one JSON
  error shape ``{"code", "message", "field"}``.
"""
