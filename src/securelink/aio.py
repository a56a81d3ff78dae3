"""asyncio helpers: connections and servers whose TLS failures explain themselves.

Contexts built by securelink already explain failures when used directly with
``asyncio.open_connection(ssl=...)`` and ``asyncio.start_server(ssl=...)``, report a server's
failed handshakes on the ``securelink`` logger, and send the TLS alert asyncio would drop.  These
helpers add what only the caller knows (the peer's address), turn "connection refused" into
:class:`~securelink.NothingListeningError`, and, on the server, report the failures that never
reach the TLS layer (a handshake timeout, a client that resets the connection) and pass every
failure to ``on_handshake_error``.

They also make up for what asyncio does not do.  Its client transport reports a server's
refusal after a TLS 1.3 handshake as a bare connection reset, which no ``SSLObject`` sees:
:func:`open_connection` explains it (with a diagnostic handshake, in a thread).
"""

from __future__ import annotations

import asyncio
import errno
import functools
import ssl

from . import _connect, _hostnames, _report, _sockets, _translate
from ._connect import _client_context, _server_context
from .errors import HandshakeError, ProtocolMismatchError, RemoteError, SecureLinkError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from typing import Any

    from ._options import ClientOptions, ServerOptions

__all__ = ["open_connection", "start_server"]


def _refused(exc: OSError) -> bool:
    if isinstance(exc, ConnectionRefusedError):
        return True
    # With several addresses (localhost: ::1 and 127.0.0.1) asyncio raises one OSError whose
    # message lists every failure and whose errno is None; it has no structured form before 3.12.
    text = str(exc)
    return text.startswith("Multiple exceptions:") and "Connect call failed" in text


class _ExplainingStreamProtocol(asyncio.StreamReaderProtocol):
    """A stream protocol that explains a connection lost right after a TLS 1.3 handshake.

    A server that refuses a client after a TLS 1.3 handshake (no client certificate, or one it
    rejects) closes the connection, and the client's transport often sees the reset before the
    alert that says why.  The ``SSLObject`` never sees a transport's reset, so it is explained
    here, the way the blocking socket class explains it (see ``_translate._closed``).
    """

    def __init__(self, reader: asyncio.StreamReader, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(reader, loop=loop)
        self._securelink_loop = loop
        self._securelink_ssl: Any = None
        self._securelink_peer: tuple[str, int] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._securelink_ssl = transport.get_extra_info("ssl_object")
        peername = transport.get_extra_info("peername")
        if peername:
            self._securelink_peer = (str(peername[0]), int(peername[1]))
        super().connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        obj = self._securelink_ssl
        if not (
            isinstance(exc, ConnectionResetError | BrokenPipeError | ConnectionAbortedError)
            and isinstance(obj, _sockets.SecureLinkSSLObject)
        ):
            super().connection_lost(exc)
            return
        failure = _sockets._failure(obj, "read", self._securelink_peer)
        if not (failure.first_io and failure.version == "TLSv1.3"):
            super().connection_lost(exc)  # an ordinary network error: it stays what it is
            return
        failure.diagnose = True  # in a thread, below
        # The explanation may take one diagnostic handshake (blocking): not on the event loop.
        pending = self._securelink_loop.run_in_executor(None, _translate.translate, exc, failure)

        def done(future: asyncio.Future[SecureLinkError | None]) -> None:
            explained: BaseException = exc
            if future.cancelled():
                pass
            elif future.exception() is not None:
                bug = future.exception()
                exc.add_note(
                    f"securelink could not explain this error ({type(bug).__name__}: {bug})"
                )
            elif (new := future.result()) is not None:
                new.__cause__ = exc
                explained = new
            assert isinstance(explained, Exception)
            super(_ExplainingStreamProtocol, self).connection_lost(explained)

        pending.add_done_callback(done)


def _ambiguous(exc: HandshakeError) -> bool:
    # What only a diagnostic handshake can tell apart: a refusal before the server's
    # certificate, a server that closed the handshake without an alert, or one that refused
    # with an alert that does not say why (GnuTLS's 'decode error' to a client without a
    # certificate; a 'handshake failure' from a server that speaks only TLS 1.1).
    if isinstance(exc, ProtocolMismatchError):
        return exc.mismatch == "unknown"
    return type(exc) is RemoteError


def _explain_at(
    exc: BaseException,
    ctx: ssl.SSLContext,
    name: str,
    peer: tuple[str, int],
    scope: tuple[tuple[str, int] | None, float | None],
) -> SecureLinkError:
    # In the executor's thread: the diagnosis goes to *scope*'s address, by its deadline.
    token = _translate.diagnosis_scope.set(scope)
    try:
        return _translate.explain(exc, server_hostname=name, context=ctx, peer=peer)
    finally:
        _translate.diagnosis_scope.reset(token)


async def _explain_in_thread(
    exc: BaseException,
    ctx: ssl.SSLContext,
    name: str,
    host: str,
    port: int,
    scope: tuple[tuple[str, int] | None, float | None] = (None, None),
) -> SecureLinkError:
    """Explain a client's handshake failure, diagnosing it in a thread (it may block).

    *scope* is the address the connection had (the diagnosis goes there, not to *host* resolved
    again) and the deadline of the caller's ``ssl_handshake_timeout``.
    """
    return await asyncio.get_running_loop().run_in_executor(
        None, functools.partial(_explain_at, exc, ctx, name, (host, port), scope)
    )


def _scope(
    address: list[tuple[str, int]], started: float, timeout: float | None
) -> tuple[tuple[str, int] | None, float | None]:
    # The loop's clock is time.monotonic() (asyncio's default): the deadline is in its terms.
    deadline = started + timeout if timeout is not None else None
    return (address[0] if address else None, deadline)


async def open_connection(
    host: str,
    port: int,
    options_or_context: ClientOptions | ssl.SSLContext,
    *,
    server_hostname: str | None = None,
    ssl_handshake_timeout: float | None = None,
    limit: int = 2**16,
    resume: bool = True,
    **kwargs: Any,
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Open a TLS connection to *host*:*port*, like :func:`asyncio.open_connection`.

    Besides the handshake, the first read after it is explained too: with TLS 1.3 a server that
    refuses this client says so only after the handshake, and its refusal often arrives as a
    bare connection reset.

    Like :func:`securelink.connect`, and sharing its cache, it resumes the TLS session of an
    earlier connection to the same server with the same context (securelink's contexts only);
    ``writer.get_extra_info("ssl_object").session_reused`` says whether it did.

    Args:
        host: The host to connect to.
        port: The TCP port.
        options_or_context: :class:`~securelink.ClientOptions`, or a client context.
        server_hostname: The name to verify and send as SNI; defaults to *host* (only when it
            is ``None``: an empty string is refused).  Both are checked before any connection,
            as :doc:`/contexts` ("Host names") describes.
        ssl_handshake_timeout: Seconds to wait for the handshake (asyncio's default: 60); a
            handshake that takes longer is a :class:`~securelink.HandshakeTimeoutError`.
        limit: The reader's buffer limit, as for :func:`asyncio.open_connection`.
        resume: Offer a kept session and keep this connection's (default).
        **kwargs: Passed on to :meth:`asyncio.loop.create_connection` (``local_addr``...).

    Returns:
        The ``(reader, writer)`` pair, the handshake done.

    Raises:
        ConfigurationError: *host* or *server_hostname* is malformed, or could be read two ways
            (``0177.0.0.1``, ``straße.example``); ``field`` says which.  Nothing was connected.
        NothingListeningError: nothing accepted the TCP connection.
        HandshakeTimeoutError: the handshake did not finish within *ssl_handshake_timeout*.
        HandshakeError: the TLS handshake failed (see the subclasses for the causes).
    """
    # Checked before any connection, as securelink.connect does (securelink._hostnames).
    if server_hostname is None:
        name = _hostnames.checked(host, "host")
    else:
        name = _hostnames.checked(server_hostname)
        if host is not None:  # None when a connected socket is passed as sock=
            _hostnames.checked(host, "host")
    ctx = _client_context(options_or_context)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=limit, loop=loop)
    protocol = _ExplainingStreamProtocol(reader, loop)
    # The handshake runs in transport callbacks that inherit this task's context: this is how
    # the SSLObject learns whom it talks to (for the explanation and its diagnostics).
    token = _sockets.asyncio_peer.set((host, port))
    # When this client rejects the server's certificate, the server must hear why (an 'unknown
    # ca' alert, as securelink.connect sends), not see a bare close: asyncio drops what OpenSSL
    # wrote.  (This also keeps a securelink.aio server's own flush, inherited when this code
    # runs in its handler, off this connection.)
    flush_token = _sockets.asyncio_flush.set(_sockets.flush_asyncio_alert)
    key: _connect._SessionKey | None = None
    settings: tuple[object, ...] = ()
    session = None
    if resume and _translate.facts_for(ctx) is not None:
        key = (id(ctx), host, port, name)
        settings = _connect._session_settings(ctx)
        session = _connect._take_session(ctx, key, settings)
    session_token = _sockets.asyncio_session.set(session)
    created: list[ssl.SSLObject] = []
    objects_token = _sockets.asyncio_objects.set(created)
    # Filled by the SSLObject with the address connected to: a diagnosis goes there.
    address: list[tuple[str, int]] = []
    address_token = _sockets.asyncio_address.set(address)
    started = loop.time()
    connected = False
    try:
        transport, _ = await loop.create_connection(
            lambda: protocol,
            host,
            port,
            ssl=ctx,
            server_hostname=name,
            ssl_handshake_timeout=ssl_handshake_timeout,
            **kwargs,
        )
        connected = True
    except HandshakeError as exc:
        if exc.peer is None:
            exc.peer = (host, port)
        if _ambiguous(exc) and exc.__cause__ is not None:
            # Inside the event loop the SSLObject could not make its diagnostic handshake.
            scope = _scope(address, started, ssl_handshake_timeout)
            better = await _explain_in_thread(exc.__cause__, ctx, name, host, port, scope)
            if not (isinstance(better, HandshakeError) and _ambiguous(better)):
                raise better from exc.__cause__
        raise
    except SecureLinkError:
        raise
    except OSError as exc:
        waited = _translate.asyncio_timeout(exc)
        if waited is not None:
            # This client gave up (asyncio's ConnectionAbortedError would read as a reset).
            failure = _translate.Failure(
                role="client", server_hostname=name, peer=(host, port), context=ctx
            )
            silent = _sockets.peer_started(created[-1]) if created else None
            raise _translate.timed_out(
                exc,
                failure,
                timeout=ssl_handshake_timeout or waited,
                silent=None if silent is None else not silent,
            ) from exc
        if _refused(exc):
            new = _translate.translate(
                # asyncio's combined error has no errno: give the platform's ECONNREFUSED.
                ConnectionRefusedError(exc.errno or errno.ECONNREFUSED, str(exc)),
                _translate.Failure(role="client", op="connect", peer=(host, port)),
            )
            if new is not None:
                raise new from exc
        if isinstance(exc, ssl.SSLError | ConnectionResetError):
            # asyncio reports a server that closes during the handshake as a bare
            # ConnectionResetError, which never passes through the SSLObject.
            scope = _scope(address, started, ssl_handshake_timeout)
            raise await _explain_in_thread(exc, ctx, name, host, port, scope) from exc
        raise
    finally:
        if key is not None and not connected:
            # Whatever failed, the next attempt starts afresh, with a full handshake.
            _connect._forget_sessions(key)
        _sockets.asyncio_peer.reset(token)
        _sockets.asyncio_flush.reset(flush_token)
        _sockets.asyncio_session.reset(session_token)
        _sockets.asyncio_objects.reset(objects_token)
        # The transport's callbacks keep copies of this context, and so the list: it must not
        # keep the SSLObject alive (the session cache takes a TLS 1.3 ticket once it is gone).
        del created[:]
        _sockets.asyncio_address.reset(address_token)
    ssl_object = transport.get_extra_info("ssl_object")
    if key is not None and ssl_object is not None:
        _connect._remember(ctx, key, settings, ssl_object)
    return reader, asyncio.StreamWriter(transport, protocol, reader, loop)


async def start_server(
    client_connected_cb: Callable[
        [asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None] | None
    ],
    host: str | None,
    port: int,
    options_or_context: ServerOptions | ssl.SSLContext,
    *,
    on_handshake_error: Callable[[SecureLinkError], None] | None = None,
    handshake_timeout: float = _connect.HANDSHAKE_TIMEOUT,
    ssl_handshake_timeout: float | None = None,
    **kwargs: Any,
) -> asyncio.Server:
    """Start a TLS server, like :func:`asyncio.start_server`.

    Each client's handshake runs before *client_connected_cb* is called.  When one fails, the
    server logs one line on the ``securelink`` logger at WARNING level (who connected, and what was
    wrong; rate-limited, and a client that closed before saying anything only at DEBUG: see
    :doc:`/reporting`), calls *on_handshake_error* with the securelink exception if given, sends
    the client the TLS alert that says why, closes that connection, and goes on serving.

    Args:
        client_connected_cb: Called (or awaited) with ``(reader, writer)`` for each client whose
            handshake succeeded.
        host: The address to listen on (``None``: all).
        port: The port (0 picks a free one).
        options_or_context: :class:`~securelink.ServerOptions`, or a server context.
        on_handshake_error: Called with the explanation of each failed client handshake.
        handshake_timeout: Seconds each client's whole handshake may take (default 10, see
            below); a handshake that takes longer is a
            :class:`~securelink.HandshakeTimeoutError`.
        ssl_handshake_timeout: asyncio's name for *handshake_timeout*; when given, it is used
            instead.
        **kwargs: Passed on to :func:`asyncio.start_server`.

    Returns:
        The :class:`asyncio.Server`.

    Raises:
        ConfigurationError: the timeout is not a positive number of seconds.

    asyncio's own default is 60 s, and asyncio holds about 310 KiB for each TLS connection from
    its first byte (its 256 KiB read buffer, and OpenSSL's state): 500 clients that connect and
    send nothing would hold about 150 MB for a minute.  10 s is far above a real handshake (one
    or two round trips) and frees such a connection six times sooner; Go servers are usually
    given a few seconds, nginx waits 60 s.  Measured figures: :doc:`/production`.

    .. versionchanged:: 0.2.0
       *handshake_timeout*, 10 s by default instead of asyncio's 60 s; a handshake timeout is a
       :class:`~securelink.HandshakeTimeoutError` instead of a ``RemoteError`` blaming the client.
    """
    ctx = _server_context(options_or_context)
    timeout = _connect._check_timeout(
        handshake_timeout if ssl_handshake_timeout is None else ssl_handshake_timeout,
        optional=False,
    )

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peername = writer.get_extra_info("peername")
        peer = (str(peername[0]), int(peername[1])) if peername else None
        transport = writer.transport

        def flush_alert() -> None:
            # asyncio closes a connection whose handshake failed without sending the alert
            # OpenSSL wrote for the client, so the client would see a bare reset and never
            # learn why.  Its TLS protocol object sends what is pending (private, 3.11+).
            flush = getattr(transport.get_protocol(), "_process_outgoing", None)
            if flush is not None:
                flush()

        peer_token = _sockets.asyncio_peer.set(peer)  # see open_connection
        flush_token = _sockets.asyncio_flush.set(flush_alert)
        # asyncio drops its SSLObject when it aborts a handshake: kept here, to tell whether
        # the client had started.
        created: list[ssl.SSLObject] = []
        objects_token = _sockets.asyncio_objects.set(created)
        try:
            await writer.start_tls(ctx, ssl_handshake_timeout=timeout)
        except (TimeoutError, OSError) as exc:
            ssl_object = getattr(transport.get_protocol(), "_sslobj", None)
            if ssl_object is None and created:
                ssl_object = created[-1]
            error: SecureLinkError
            if isinstance(exc, SecureLinkError):
                error = exc
            elif _translate.asyncio_timeout(exc) is not None:
                # This server gave up: not the client's doing, whatever asyncio's error says.
                started = _sockets.peer_started(ssl_object) if ssl_object is not None else None
                error = _translate.timed_out(
                    exc,
                    _translate.Failure(role="server", peer=peer, context=ctx, diagnose=False),
                    timeout=timeout,
                    silent=None if started is None else not started,
                )
                error.__cause__ = exc
            else:
                error = _translate.explain(exc, context=ctx, peer=peer)
            if isinstance(error, HandshakeError) and error.peer is None:
                error.peer = peer
            # The SSLObject reported what failed inside it; the rest (a timeout, a client that
            # closed the connection) is reported here, once, with the same rate limit.
            if not getattr(exc, "_securelink_reported", False):
                _report.report(error, peer, quiet=_report.said_nothing(error, ssl_object))
            if on_handshake_error is not None:
                on_handshake_error(error)
            writer.transport.abort()
            return
        finally:
            # The application's own code runs next, in this task: not in this connection's name.
            _sockets.asyncio_peer.reset(peer_token)
            _sockets.asyncio_flush.reset(flush_token)
            _sockets.asyncio_objects.reset(objects_token)
            del created[:]  # the connection's SSLObject is asyncio's to keep, not this list's
        result = client_connected_cb(reader, writer)
        if asyncio.iscoroutine(result):
            await result

    return await asyncio.start_server(handle, host, port, **kwargs)
