"""The ASGI application of ``dispatch serve``: routes, error pages, health, metrics, services.

Routes: the customer's pages (:mod:`dispatch.web.pages`), the acceptance page of a written
offer (:mod:`dispatch.web.offers`), ``GET /health``,
``GET /metrics`` (Prometheus exposition of the default registry), the read-only
operator view (:mod:`dispatch.web.operator`), the translators' preview
(:mod:`dispatch.web.preview`), and whatever plugins add through
the ``dispatch_web_routes`` hook (the SMS plugin's Twilio callbacks). Services
given to :func:`create_app` (the inbound SMTP listener, say) are started with
the application and stopped after it, in reverse order, on shutdown.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, generate_latest
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ..errors import PluginError
from ..host import PluginHost
from ..metrics import register_queue_collector
from .offers import OfferPages
from .operator import OperatorView
from .pages import PageError, Pages
from .preview import PreviewView
from .ratelimit import RateLimit

if TYPE_CHECKING:
    from ..dispatcher import Dispatcher

logger = logging.getLogger("dispatch.web")

#: Paths dispatch serves itself; a plugin may not register these or anything under them.
RESERVED = ("/u/", "/preferences/", "/p", "/offer/", "/o/", "/operator", "/preview/", "/health", "/metrics")

ERROR_PAGES = Counter("dispatch_web_error_pages", "Error pages served by dispatch serve", ["status"])


@runtime_checkable
class Service(Protocol):
    """Something that runs beside the web application, such as the inbound SMTP listener.

    ``start`` and ``stop`` may be coroutines (run on the application's event loop) or
    plain methods (such as aiosmtpd's ``Controller``, which runs its own thread).
    """

    def start(self) -> Any:
        """Start serving (return once it is up)."""

    def stop(self) -> Any:
        """Stop serving and release what it holds."""


def create_app(dispatcher: Dispatcher, *, services: Sequence[Service] = ()) -> Starlette:
    """The web application over ``dispatcher``, with ``services`` run for its lifetime."""
    pages = Pages(dispatcher)
    offers = OfferPages(dispatcher, pages)
    operator = OperatorView(dispatcher)
    preview = PreviewView(dispatcher, operator)
    register_queue_collector(lambda now: dispatcher.store.queue_depth(now))  # queue depth and age at /metrics

    async def health(request: Request) -> Response:
        def check() -> bool:
            try:
                dispatcher.store.ping()
                return True
            except Exception as exc:  # health reports, never raises
                logger.warning("health: store unreachable: %s", type(exc).__name__)
                return False

        ok = await run_in_threadpool(check)
        return JSONResponse({"status": "ok" if ok else "unavailable", "store": ok}, status_code=200 if ok else 503)

    async def metrics(request: Request) -> Response:
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    limited = RateLimit(dispatcher.config.web.rate_limit)  # pages a token or a code opens, per client
    routes: list[BaseRoute] = [
        Route("/u/{token}", limited(pages.unsubscribe), methods=["GET", "POST"]),
        Route("/preferences/{token}", limited(pages.preferences), methods=["GET", "POST"]),
        Route("/p", limited(pages.short_code), methods=["GET"]),  # the code form: ?code= tries a code too
        Route("/p/", limited(pages.short_code), methods=["GET"]),
        Route("/p/{code}", limited(pages.short_code), methods=["GET"]),
        Route("/offer/{token}", limited(offers.page), methods=["GET", "POST"]),
        Route("/o/{code}", limited(offers.short_code), methods=["GET"]),
        Route("/operator", operator.page, methods=["GET"]),
        Route("/preview/{message_type}", preview.page, methods=["GET"]),
        Route("/health", health, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        *plugin_routes(dispatcher),
    ]

    async def page_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, PageError)
        ERROR_PAGES.labels(str(exc.status)).inc()
        return await run_in_threadpool(pages.error_page, request, exc.status, exc.kind, exc.message, exc.back)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        ERROR_PAGES.labels(str(exc.status_code)).inc()
        if exc.status_code == 405:
            kind = "method"
        elif exc.status_code == 404:
            kind = "page"
        elif exc.status_code in (401, 403):
            kind = "forbidden"
        elif exc.status_code == 429:
            kind = "busy"  # "too many tries: wait a moment"
        else:
            kind = "form"
        response = await run_in_threadpool(pages.error_page, request, exc.status_code, kind, None)
        response.headers.update(exc.headers or {})
        return response

    async def server_error(request: Request, exc: Exception) -> Response:
        ERROR_PAGES.labels("500").inc()
        logger.error("error on %s %s: %s", request.method, request.url.path.split("/")[1], type(exc).__name__)
        try:
            return await run_in_threadpool(pages.error_page, request, 500, "server", None)
        except Exception:  # the error page itself failed: plain text then
            return Response("Internal server error\n", status_code=500, media_type="text/plain")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        started: list[Service] = []
        try:
            for service in services:
                await _maybe_await(service.start())
                started.append(service)
            yield
        finally:
            for service in reversed(started):
                try:
                    await _maybe_await(service.stop())
                except Exception:
                    logger.exception("a service did not stop cleanly: %s", type(service).__name__)

    app = Starlette(
        routes=routes,
        exception_handlers={PageError: page_error, HTTPException: http_error, Exception: server_error},
        lifespan=lifespan,
    )
    app.state.dispatcher = dispatcher
    app.state.pages = pages
    return app


async def _maybe_await(result: Any) -> None:
    if inspect.isawaitable(result):
        await result


def plugin_routes(dispatcher: Dispatcher) -> list[Route]:
    """The routes plugins add through ``dispatch_web_routes``; clashes are a :class:`PluginError`."""
    routes: list[Route] = []
    taken: dict[str, str] = {}

    def register(path: str, endpoint: Callable[[Request], Any], methods: Sequence[str] = ("POST",)) -> None:
        if not isinstance(path, str) or not path.startswith("/"):
            raise PluginError(f"web route {path!r} must be a path starting with /")
        if any(path == r.rstrip("/") or path.startswith(r if r.endswith("/") else r + "/") for r in RESERVED):
            raise PluginError(f"web route {path!r} is dispatch's own")
        if not callable(endpoint):
            raise PluginError(f"web route {path!r}: endpoint {endpoint!r} is not callable")
        owner = getattr(endpoint, "__module__", "?")
        if path in taken:
            raise PluginError(f"web route {path!r} is registered twice ({taken[path]} and {owner})")
        taken[path] = owner
        routes.append(Route(path, endpoint, methods=[m.upper() for m in methods]))

    dispatcher.pm.hook.dispatch_web_routes(register=register, dispatcher=PluginHost.of(dispatcher))
    return routes
