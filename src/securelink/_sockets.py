"""Where translation happens: socket and object classes installed on securelink's contexts.

A context's ``sslsocket_class`` and ``sslobject_class`` are the stdlib's extension points for
the objects ``wrap_socket`` and ``wrap_bio`` create.  securelink's contexts use the subclasses
below, so every failure during the handshake, and the peer's verdict that TLS 1.3 delivers on the
first read or write after it, is explained wherever the context is used: blocking sockets (and so
``http.client`` and ``urllib``), and ``SSLObject`` (and so asyncio).  The contexts themselves stay
plain ``ssl.SSLContext`` objects.

The subclasses also keep what the failed connection still knows (the chain the peer presented,
its address) before it is closed, which the stdlib's own objects lose.

Where the failure alone is ambiguous (TLS 1.2's generic ``handshake failure``; a reset or EOF
right after a TLS 1.3 handshake, which is how a Python server's refusal of a client often
arrives), the socket class lets the translation make one diagnostic handshake to the peer.  The
``SSLObject`` class never does: it runs inside an event loop, which that would block;
securelink.aio makes the diagnosis in a thread instead.
"""

from __future__ import annotations

import _ssl
import contextlib
import contextvars
import socket
import ssl

from . import _hooks, _translate
from .errors import SecureLinkError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from ._options import ClientOptions, ServerOptions

__all__ = ["SecureLinkSSLObject", "SecureLinkSSLSocket", "connect", "wrap_client", "wrap_server"]

_AGAIN = (ssl.SSLWantReadError, ssl.SSLWantWriteError)
# The stdlib's methods, bound once: calling them directly instead of through super() saves a few
# hundred nanoseconds per call, which bulk transfers make thousands of times a second.
_socket_do_handshake = ssl.SSLSocket.do_handshake
_socket_read = ssl.SSLSocket.read
_socket_send = ssl.SSLSocket.send
_socket_write = ssl.SSLSocket.write

#: The peer of the connection being set up by securelink.aio.  An SSLObject never learns its
#: transport's address, but asyncio runs the transport's callbacks (and so the handshake) in a
#: copy of the context of the task that created it, where securelink.aio sets this.
asyncio_peer: contextvars.ContextVar[tuple[str, int] | None] = contextvars.ContextVar(
    "securelink_asyncio_peer", default=None
)
#: Set the same way by securelink.aio's server: sends what OpenSSL has written for the peer (the
#: alert that says why its handshake failed), which asyncio would otherwise drop when it closes
#: the connection.
asyncio_flush: contextvars.ContextVar[Callable[[], None] | None] = contextvars.ContextVar(
    "securelink_asyncio_flush", default=None
)


def _chain(obj: object, verified: bool) -> list[bytes]:
    # Private _sslobj accessors keep the chain after a failure on every supported version (the
    # public ones arrived in 3.13); see the error catalogue's "what a failed socket exposes".
    sslobj = getattr(obj, "_sslobj", None)
    getter = getattr(sslobj, "get_verified_chain" if verified else "get_unverified_chain", None)
    if getter is None:
        return []
    try:
        certs = getter() or []
    except (ssl.SSLError, ValueError, AttributeError):  # pragma: no cover - defensive
        return []
    return [c if isinstance(c, bytes) else c.public_bytes(_ssl.ENCODING_DER) for c in certs]


def _version(obj: Any) -> str | None:
    try:
        version: str | None = obj.version()
    except (ValueError, AttributeError, OSError):  # pragma: no cover - defensive
        version = None
    # After the peer's EOF or alert, version() may say None; the handshake recorded it.
    return version or getattr(obj, "_securelink_version", None)


def _failure(obj: Any, op: str, peer: tuple[str, int] | None) -> _translate.Failure:
    return _translate.Failure(
        role="server" if obj.server_side else "client",
        op=op,
        server_hostname=obj.server_hostname,
        peer=peer,
        context=obj.context,
        chain=_chain(obj, verified=False),
        verified=_chain(obj, verified=True),
        version=_version(obj),
        first_io=not getattr(obj, "_securelink_io_done", False),
        # An SSLObject works inside an event loop, which a diagnostic handshake would block
        # (securelink.aio runs the diagnosis in a thread instead).
        diagnose=isinstance(obj, socket.socket),
    )


def _explained(
    obj: Any, exc: BaseException, op: str, peer: tuple[str, int] | None
) -> BaseException:
    """Return the exception to raise instead of *exc*: its explanation, or *exc* itself."""
    refused = getattr(obj, "_securelink_hook_error", None)
    if refused is not None:  # this end's own on_server_name hook said no
        hook, reason = refused
        new_error = _hooks.rejected(obj, hook, reason, (), peer)
        new_error.__cause__ = reason
        return new_error
    try:
        failure = _failure(obj, op, peer)
        if (
            op == "handshake"
            and failure.role == "client"
            and isinstance(obj, socket.socket)
            and isinstance(exc, ssl.SSLError)
        ):
            # The handshake failed for good: let the server go before the explanation's
            # diagnostic handshake, so that a server serving one connection at a time can
            # answer it.  (The stdlib closes this socket right after, in any case.)
            with contextlib.suppress(OSError):
                socket.socket.shutdown(obj, socket.SHUT_RDWR)
        new = _translate.translate(exc, failure)
    except Exception as bug:
        exc.add_note(f"securelink could not explain this error ({type(bug).__name__}: {bug})")
        return exc
    if new is None:
        return exc
    new.__cause__ = exc
    return new


class SecureLinkSSLSocket(ssl.SSLSocket):
    """The ``ssl.SSLSocket`` of securelink's contexts: explains failures, otherwise unchanged."""

    _securelink_io_done = False
    _securelink_version: str | None = None
    _securelink_addr: tuple[str, int] | None = None

    def _securelink_peer(self) -> tuple[str, int] | None:
        # Remembered from before the failure: once the peer has reset the connection,
        # getpeername() fails, and the address is what the explanation (and a diagnostic
        # handshake) needs most.
        if self._securelink_addr is None:
            try:
                peer = self.getpeername()
            except OSError:
                return None
            if not isinstance(peer, tuple) or len(peer) < 2:  # AF_UNIX: a path, not an address
                return None
            self._securelink_addr = (str(peer[0]), int(peer[1]))
        return self._securelink_addr

    def do_handshake(self, block: bool = False) -> None:
        """Perform the TLS handshake, raising securelink errors that explain a failure."""
        peer = self._securelink_peer()
        try:
            _socket_do_handshake(self, block)
        except _AGAIN:
            raise
        except OSError as exc:
            new = _explained(self, exc, "handshake", self._securelink_peer())
            if new is exc:
                raise
            raise new from new.__cause__
        self._securelink_version = self.version()
        hook = _hooks.verify_connection_hook(self.context)
        if hook is not None:
            try:
                _hooks.run_verify_connection(self, hook, peer)
            except SecureLinkError:
                # Rejected: close the connection, as the hook asked (the peer sees it closed).
                with contextlib.suppress(OSError):
                    socket.socket.shutdown(self, socket.SHUT_RDWR)
                raise

    def connect(self, addr: Any) -> None:
        """Connect to *addr* and, by default, perform the handshake."""
        try:
            super().connect(addr)
        except ConnectionRefusedError as exc:
            peer = (str(addr[0]), int(addr[1])) if isinstance(addr, tuple) else None
            new = _explained_connect(self, exc, peer)
            if new is exc:  # pragma: no cover - refused with a peer always translates
                raise
            raise new from exc

    def read(self, len: int = 1024, buffer: Any = None) -> Any:
        """Read, raising securelink errors for the peer's verdicts (TLS 1.3 alerts)."""
        try:
            if (
                self._securelink_io_done
                or self.server_side
                or not getattr(self, "suppress_ragged_eofs", True)  # set by SSLSocket._create
            ):
                data = _socket_read(self, len, buffer)
            else:
                data = self._securelink_first_read(len, buffer)
        except (*_AGAIN, SecureLinkError):
            raise
        except OSError as exc:
            new = _explained(self, exc, "read", self._securelink_peer())
            if new is exc:
                raise
            raise new from exc
        if data and not self._securelink_io_done:  # the peer sent data: it accepted this end
            self._securelink_io_done = True
        return data

    def _securelink_first_read(self, len: int, buffer: Any) -> Any:
        # ssl.SSLSocket.read, except that an EOF before the server sent anything is examined
        # before it is suppressed as a "ragged EOF" (b''): after a TLS 1.3 handshake it may be
        # the server's refusal of this client (Python 3.12 and older report a reset there as
        # an EOF).  Anything not explained is suppressed exactly as the stdlib does.
        this: Any = self  # the stdlib's private parts, as ssl.SSLSocket.read uses them
        this._checkClosed()
        sslobj = this._sslobj
        if sslobj is None:
            raise ValueError("Read on closed or unwrapped SSL socket.")
        try:
            return sslobj.read(len, buffer) if buffer is not None else sslobj.read(len)
        except ssl.SSLError as exc:
            if exc.args[0] != ssl.SSL_ERROR_EOF:
                raise
            new = _explained(self, exc, "read", self._securelink_peer())
            if new is exc:
                return 0 if buffer is not None else b""
            raise new from exc

    def send(self, data: Any, flags: int = 0) -> int:
        """Send, raising securelink errors for the peer's verdicts."""
        try:
            sent = _socket_send(self, data, flags)
        except _AGAIN:
            raise
        except OSError as exc:
            new = _explained(self, exc, "write", self._securelink_peer())
            if new is exc:
                raise
            raise new from exc
        return sent

    def write(self, data: Any) -> int:
        """Write, raising securelink errors for the peer's verdicts."""
        try:
            written = _socket_write(self, data)
        except _AGAIN:
            raise
        except OSError as exc:
            new = _explained(self, exc, "write", self._securelink_peer())
            if new is exc:
                raise
            raise new from exc
        return written


def _explained_connect(
    sock: Any, exc: BaseException, peer: tuple[str, int] | None
) -> BaseException:
    new = _translate.translate(
        exc, _translate.Failure(role="client", op="connect", peer=peer, context=sock.context)
    )
    if new is None:  # pragma: no cover - refused with a peer always translates
        return exc
    new.__cause__ = exc
    return new


class SecureLinkSSLObject(ssl.SSLObject):
    """The ``ssl.SSLObject`` of securelink's contexts (asyncio): explains failures."""

    _sslobj: Any  # the stdlib's private _ssl._SSLSocket, set by SSLObject._create

    _securelink_io_done = False
    _securelink_version: str | None = None
    #: The peer's address, when the code that created the object knows it (securelink.aio).
    securelink_peer: tuple[str, int] | None = None

    def _securelink_where(self) -> tuple[str, int] | None:
        return self.securelink_peer or asyncio_peer.get()

    def do_handshake(self) -> None:
        """Perform the TLS handshake, raising securelink errors that explain a failure."""
        try:
            self._sslobj.do_handshake()  # the stdlib's body, without a second Python frame
        except _AGAIN:
            raise
        except OSError as exc:
            flush = asyncio_flush.get()
            if flush is not None:
                try:
                    flush()
                except Exception as bug:  # best effort: the explanation matters more
                    exc.add_note(f"securelink could not send the TLS alert ({bug!r})")
            new = _explained(self, exc, "handshake", self._securelink_where())
            if new is exc:
                raise
            raise new from new.__cause__
        self._securelink_version = self.version()
        hook = _hooks.verify_connection_hook(self.context)
        if hook is not None:
            _hooks.run_verify_connection(self, hook, self._securelink_where())

    def read(self, len: int = 1024, buffer: Any = None) -> Any:
        """Read, raising securelink errors for the peer's verdicts (TLS 1.3 alerts)."""
        try:
            # The stdlib's body, without a second Python frame: asyncio reads in small pieces.
            data = self._sslobj.read(len, buffer) if buffer is not None else self._sslobj.read(len)
        except _AGAIN:
            raise
        except OSError as exc:
            new = _explained(self, exc, "read", self._securelink_where())
            if new is exc:
                raise
            raise new from exc
        if data and not self._securelink_io_done:  # the peer sent data: it accepted this end
            self._securelink_io_done = True
        return data

    def write(self, data: Any) -> int:
        """Write, raising securelink errors for the peer's verdicts."""
        try:
            written: int = self._sslobj.write(data)  # the stdlib's body, one frame less
        except _AGAIN:
            raise
        except OSError as exc:
            new = _explained(self, exc, "write", self._securelink_where())
            if new is exc:
                raise
            raise new from exc
        return written


# --- helpers for blocking sockets --------------------------------------------------------------


def _client_context(options_or_context: ClientOptions | ssl.SSLContext) -> ssl.SSLContext:
    from ._context import client_context
    from ._options import ClientOptions

    if isinstance(options_or_context, ssl.SSLContext):
        return options_or_context
    if isinstance(options_or_context, ClientOptions):
        return client_context(options_or_context)
    raise TypeError(
        f"expected ClientOptions or ssl.SSLContext, not {type(options_or_context).__name__}"
    )


def _server_context(options_or_context: ServerOptions | ssl.SSLContext) -> ssl.SSLContext:
    from ._context import server_context
    from ._options import ServerOptions

    if isinstance(options_or_context, ssl.SSLContext):
        return options_or_context
    if isinstance(options_or_context, ServerOptions):
        return server_context(options_or_context)
    raise TypeError(
        f"expected ServerOptions or ssl.SSLContext, not {type(options_or_context).__name__}"
    )


def _explain_foreign(
    exc: BaseException, ctx: ssl.SSLContext, server_hostname: str | None, peer: Any
) -> BaseException:
    # A context securelink did not build has the stdlib's classes: explain from the outside.
    # securelink's own contexts explained what they recognise already; and a timeout stays a
    # TimeoutError, for the `except` clauses written for it.
    if isinstance(exc, SecureLinkError) or _translate.facts_for(ctx) is not None:
        return exc
    if not isinstance(exc, ssl.SSLError | ConnectionError):
        return exc
    return _translate.explain(exc, server_hostname=server_hostname, context=ctx, peer=peer)


def connect(
    host: str,
    port: int,
    options_or_context: ClientOptions | ssl.SSLContext,
    *,
    server_hostname: str | None = None,
    timeout: float | None = None,
) -> ssl.SSLSocket:
    """Connect to *host*:*port* over TLS and finish the handshake.

    Args:
        host: The host name or address to connect to.
        port: The TCP port.
        options_or_context: :class:`~securelink.ClientOptions`, or a client context.
        server_hostname: The name to verify the certificate against and send as SNI; defaults
            to *host*.
        timeout: A timeout in seconds for connecting, the handshake, and later reads and writes.

    Returns:
        A connected ``ssl.SSLSocket`` whose handshake is done.

    Raises:
        NothingListeningError: nothing accepted the TCP connection.
        HandshakeError: the TLS handshake failed (see the subclasses for the causes).
    """
    ctx = _client_context(options_or_context)
    name = server_hostname or host
    try:
        raw = socket.create_connection((host, port), timeout=timeout)
    except ConnectionRefusedError as exc:
        refused = _translate.translate(
            exc, _translate.Failure(role="client", op="connect", peer=(host, port))
        )
        if refused is None:  # pragma: no cover - refused with a peer always translates
            raise
        raise refused from exc
    try:
        return ctx.wrap_socket(raw, server_hostname=name)
    except BaseException as exc:
        raw.close()
        new = _explain_foreign(exc, ctx, name, (host, port))
        if new is exc:
            raise
        raise new from exc


def wrap_client(
    sock: socket.socket,
    options_or_context: ClientOptions | ssl.SSLContext,
    *,
    server_hostname: str,
) -> ssl.SSLSocket:
    """Wrap a connected socket as a TLS client and finish the handshake.

    Args:
        sock: A connected TCP socket; on failure it is closed.
        options_or_context: :class:`~securelink.ClientOptions`, or a client context.
        server_hostname: The name to verify the server's certificate against (and send as SNI).

    Returns:
        The ``ssl.SSLSocket``, its handshake done.

    Raises:
        HandshakeError: the TLS handshake failed (see the subclasses for the causes).
    """
    ctx = _client_context(options_or_context)
    try:
        peer: Any = sock.getpeername()
    except OSError:
        peer = None
    try:
        return ctx.wrap_socket(sock, server_hostname=server_hostname)
    except BaseException as exc:
        sock.close()
        new = _explain_foreign(exc, ctx, server_hostname, peer)
        if new is exc:
            raise
        raise new from exc


def wrap_server(
    sock: socket.socket, options_or_context: ServerOptions | ssl.SSLContext
) -> ssl.SSLSocket:
    """Wrap an accepted socket as a TLS server and finish the handshake.

    Args:
        sock: A connected TCP socket (from ``accept()``); on failure it is closed.
        options_or_context: :class:`~securelink.ServerOptions`, or a server context.

    Returns:
        The ``ssl.SSLSocket``, its handshake done.

    Raises:
        HandshakeError: the TLS handshake failed (see the subclasses for the causes).
    """
    ctx = _server_context(options_or_context)
    try:
        peer: Any = sock.getpeername()
    except OSError:
        peer = None
    try:
        return ctx.wrap_socket(sock, server_side=True)
    except BaseException as exc:
        sock.close()
        new = _explain_foreign(exc, ctx, None, peer)
        if new is exc:
            raise
        raise new from exc
