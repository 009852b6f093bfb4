"""Running the web application: uvicorn, graceful shutdown, and the signing-secret check."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..errors import ConfigError
from .app import Service, create_app

if TYPE_CHECKING:
    from ..dispatcher import Dispatcher

logger = logging.getLogger("dispatch.web")


def embedded_deployment(dispatcher: Dispatcher) -> bool:
    """True on the embedded default: in-process broker and a SQLite store (one machine by construction)."""
    return dispatcher.embedded and dispatcher.config.store.url.startswith("sqlite")


def require_signing_secret(dispatcher: Dispatcher) -> None:
    """Refuse to serve a scale-out deployment without a configured link secret.

    The embedded default keeps a generated secret in its store. Anywhere else a
    second ``serve`` (or a worker signing links) on another machine must agree, so
    the secret has to be configured: ``[links] secret`` or ``DISPATCH_LINK_SECRET``.
    """
    if not dispatcher.config.links.secret and not embedded_deployment(dispatcher):
        raise ConfigError(
            "dispatch serve needs a signing secret outside the embedded default: set [links] secret "
            "or DISPATCH_LINK_SECRET (the same on every machine that signs or checks links)"
        )


def serve(
    dispatcher: Dispatcher,
    host: str,
    port: int,
    *,
    services: Sequence[Service] = (),
    shutdown_timeout: float = 10,
) -> None:
    """Serve the application with uvicorn until SIGINT/SIGTERM, then shut down gracefully.

    On a signal uvicorn stops accepting connections, lets in-flight requests finish
    (up to ``shutdown_timeout`` seconds), then the application's lifespan stops
    ``services``; then this function returns (and the caller closes the dispatcher,
    which lets the embedded worker finish what was queued). Access logs are off:
    request lines carry client addresses and link tokens, which do not belong in logs.
    """
    import uvicorn

    require_signing_secret(dispatcher)
    config = uvicorn.Config(
        create_app(dispatcher, services=services),
        host=host,
        port=port,
        lifespan="on",
        access_log=False,
        server_header=False,
        proxy_headers=True,
        timeout_graceful_shutdown=shutdown_timeout,
        log_config=None,
    )
    # uvicorn re-raises the signal that stopped it once it has shut down, to the handler
    # that was in place before; this one notes it, so the caller can still clean up.
    received: list[int] = []
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, lambda signum, frame: received.append(signum))
    try:
        uvicorn.Server(config).run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    logger.info("dispatch serve stopped (%s)", ", ".join(signal.Signals(s).name for s in received) or "done")
