"""asyncio helpers: connections and servers whose TLS failures explain themselves.

Contexts built by securelink already explain failures when used directly with
``asyncio.open_connection(ssl=...)`` and ``asyncio.start_server(ssl=...)``.  These helpers add
what only the caller knows (the peer's address), turn "connection refused" into
:class:`~securelink.NothingListeningError`, and, on the server, report each failed client
handshake as one log line on the ``securelink`` logger instead of asyncio's traceback.
"""

from __future__ import annotations

import asyncio
import logging
import ssl

from . import _translate
from ._sockets import _client_context, _server_context
from .errors import HandshakeError, SecureLinkError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from typing import Any

    from ._options import ClientOptions, ServerOptions

__all__ = ["open_connection", "start_server"]

logger = logging.getLogger("securelink")


def _refused(exc: OSError) -> bool:
    if isinstance(exc, ConnectionRefusedError):
        return True
    # With several addresses (localhost: ::1 and 127.0.0.1) asyncio raises one OSError whose
    # message lists every failure and whose errno is None; it has no structured form before 3.12.
    text = str(exc)
    return text.startswith("Multiple exceptions:") and "Connect call failed" in text


async def open_connection(
    host: str,
    port: int,
    options_or_context: ClientOptions | ssl.SSLContext,
    *,
    server_hostname: str | None = None,
    ssl_handshake_timeout: float | None = None,
    **kwargs: Any,
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Open a TLS connection to *host*:*port*, like :func:`asyncio.open_connection`.

    Args:
        host: The host to connect to.
        port: The TCP port.
        options_or_context: :class:`~securelink.ClientOptions`, or a client context.
        server_hostname: The name to verify and send as SNI; defaults to *host*.
        ssl_handshake_timeout: Seconds to wait for the handshake (asyncio's default: 60).
        **kwargs: Passed on to :func:`asyncio.open_connection` (``limit``, ``local_addr``...).

    Returns:
        The ``(reader, writer)`` pair, the handshake done.

    Raises:
        NothingListeningError: nothing accepted the TCP connection.
        HandshakeError: the TLS handshake failed (see the subclasses for the causes).
    """
    ctx = _client_context(options_or_context)
    name = server_hostname or host
    try:
        return await asyncio.open_connection(
            host,
            port,
            ssl=ctx,
            server_hostname=name,
            ssl_handshake_timeout=ssl_handshake_timeout,
            **kwargs,
        )
    except HandshakeError as exc:
        if exc.peer is None:
            exc.peer = (host, port)
        raise
    except SecureLinkError:
        raise
    except OSError as exc:
        if _refused(exc):
            new = _translate.translate(
                ConnectionRefusedError(111, str(exc)),
                _translate.Failure(role="client", op="connect", peer=(host, port)),
            )
            if new is not None:
                raise new from exc
        if isinstance(exc, ssl.SSLError):
            raise _translate.explain(
                exc, server_hostname=name, context=ctx, peer=(host, port)
            ) from exc
        raise


async def start_server(
    client_connected_cb: Callable[
        [asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None] | None
    ],
    host: str | None,
    port: int,
    options_or_context: ServerOptions | ssl.SSLContext,
    *,
    on_handshake_error: Callable[[SecureLinkError], None] | None = None,
    ssl_handshake_timeout: float | None = None,
    **kwargs: Any,
) -> asyncio.Server:
    """Start a TLS server, like :func:`asyncio.start_server`.

    Each client's handshake runs before *client_connected_cb* is called.  When one fails, the
    server logs one line on the ``securelink`` logger at WARNING level (who connected, and what was
    wrong), calls *on_handshake_error* with the securelink exception if given, closes that
    connection, and goes on serving.

    Args:
        client_connected_cb: Called (or awaited) with ``(reader, writer)`` for each client whose
            handshake succeeded.
        host: The address to listen on (``None``: all).
        port: The port (0 picks a free one).
        options_or_context: :class:`~securelink.ServerOptions`, or a server context.
        on_handshake_error: Called with the explanation of each failed client handshake.
        ssl_handshake_timeout: Seconds to wait for each handshake (asyncio's default: 60).
        **kwargs: Passed on to :func:`asyncio.start_server`.

    Returns:
        The :class:`asyncio.Server`.
    """
    ctx = _server_context(options_or_context)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peername = writer.get_extra_info("peername")
        peer = (str(peername[0]), int(peername[1])) if peername else None
        try:
            await writer.start_tls(ctx, ssl_handshake_timeout=ssl_handshake_timeout)
        except (TimeoutError, OSError) as exc:
            error = (
                exc
                if isinstance(exc, SecureLinkError)
                else _translate.explain(exc, context=ctx, peer=peer)
            )
            if isinstance(error, HandshakeError) and error.peer is None:
                error.peer = peer
            who = f"{peer[0]} port {peer[1]}" if peer else "a client"
            logger.warning("TLS handshake with %s failed: %s", who, error)
            if on_handshake_error is not None:
                on_handshake_error(error)
            writer.transport.abort()
            return
        result = client_connected_cb(reader, writer)
        if asyncio.iscoroutine(result):
            await result

    return await asyncio.start_server(handle, host, port, **kwargs)
