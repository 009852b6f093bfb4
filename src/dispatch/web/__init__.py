"""``dispatch serve``: the pages and callbacks messages point back to, as an ASGI application.

- :func:`create_app` builds the Starlette application over a :class:`~dispatch.Dispatcher`
  (customer pages, ``/health``, ``/metrics``, operator view, plugin routes);
- :func:`serve` runs it under uvicorn with graceful shutdown and the services beside it;
- :class:`Service` is what runs beside it (``async start()`` / ``async stop()``).
"""

from .app import RESERVED, Service, create_app, plugin_routes
from .server import embedded_deployment, require_signing_secret, serve

__all__ = [
    "RESERVED",
    "Service",
    "create_app",
    "embedded_deployment",
    "plugin_routes",
    "require_signing_secret",
    "serve",
]
