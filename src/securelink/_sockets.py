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

On the server side, both classes report each failed handshake on the ``securelink`` logger
(securelink._report), whatever server runs the context, and make sure the alert that says why
reaches the client: the socket class drains what the client sent before it is closed (a reset
may reach the client before it reads the alert), and the object class sends what asyncio would
drop.
"""

from __future__ import annotations

import contextvars
import socket
import ssl
import sys
import time

from . import _hooks, _hostnames, _report, _translate
from ._compat import der_chain
from .errors import SecureLinkError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from types import FrameType
    from typing import Any


__all__ = ["SecureLinkSSLObject", "SecureLinkSSLSocket"]

_AGAIN = (ssl.SSLWantReadError, ssl.SSLWantWriteError)
# The stdlib's methods, bound once: calling them directly instead of through super() saves a few
# hundred nanoseconds per call, which bulk transfers make thousands of times a second.
_socket_do_handshake = ssl.SSLSocket.do_handshake
#: The clock of the diagnosis deadlines (_translate's): bound here, not looked up in ``time``.
_monotonic = time.monotonic
_socket_read = ssl.SSLSocket.read
_socket_send = ssl.SSLSocket.send
_socket_write = ssl.SSLSocket.write

#: The peer of the connection being set up by securelink.aio.  An SSLObject never learns its
#: transport's address, but asyncio runs the transport's callbacks (and so the handshake) in a
#: copy of the context of the task that created it, where securelink.aio sets this.
asyncio_peer: contextvars.ContextVar[tuple[str, int] | None] = contextvars.ContextVar(
    "securelink_asyncio_peer", default=None
)
#: Set the same way by securelink.aio.open_connection: an empty list, which the client's
#: SSLObject fills with the address its transport is connected to, at the start of the
#: handshake, so that a diagnostic handshake goes to that exact address (not to the name
#: resolved again).
asyncio_address: contextvars.ContextVar[list[tuple[str, int]] | None] = contextvars.ContextVar(
    "securelink_asyncio_address", default=None
)
#: The TLS session securelink.aio.open_connection offers to resume, set the same way.
asyncio_session: contextvars.ContextVar[ssl.SSLSession | None] = contextvars.ContextVar(
    "securelink_asyncio_session", default=None
)
#: Set the same way by securelink.aio.open_connection: the SSLObjects created for it are added,
#: so that after asyncio's handshake timeout it can tell whether the server had answered.
asyncio_objects: contextvars.ContextVar[list[ssl.SSLObject] | None] = contextvars.ContextVar(
    "securelink_asyncio_objects", default=None
)
#: Set the same way by securelink.aio's server and client: sends what OpenSSL has written for the
#: peer (the alert that says why its handshake failed), which asyncio would otherwise drop when
#: it closes the connection.  Unset (plain asyncio), the SSLObject uses flush_asyncio_alert.
asyncio_flush: contextvars.ContextVar[Callable[[], None] | None] = contextvars.ContextVar(
    "securelink_asyncio_flush", default=None
)

#: After a failed server-side handshake, how long (seconds) and how much (bytes) to read what the
#: client sent before closing: see _drain.
DRAIN_SECONDS = 0.25
DRAIN_BYTES = 64 * 1024


def _drain(sock: socket.socket) -> None:
    """Let the alert of a failed server-side handshake reach the client, then close cleanly.

    OpenSSL has written its alert (why this server refused the client), but the client has
    usually sent more: the rest of its flight, and with TLS 1.3 its first request, written right
    after its Finished without waiting for the server.  A socket closed with unread data makes
    the kernel answer with a reset, and a reset that reaches the client before it has read the
    alert makes it fail without ever reading it (curl reports "getpeername() failed"; some
    systems discard what was received before a reset), so it never learns why.  So: send FIN
    after the alert, then read and drop what the client sends until it closes (having read the
    alert), bounded by DRAIN_SECONDS and DRAIN_BYTES.  A non-blocking socket (an event loop's)
    is drained of what has already arrived only: it must not block.
    """
    raw = socket.socket  # the kernel socket's methods, under TLS
    timeout = sock.gettimeout()
    deadline = time.monotonic() + DRAIN_SECONDS
    left = DRAIN_BYTES
    try:
        raw.shutdown(sock, socket.SHUT_WR)
        while left > 0:
            if timeout != 0.0:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                sock.settimeout(remaining)
            data = raw.recv(sock, min(left, 16384))
            if not data:  # the client closed its end: nothing left to reset
                break
            left -= len(data)
    except OSError:  # timed out, would block, or reset: the drain is over
        pass
    finally:
        try:
            sock.settimeout(timeout)
        except OSError:
            pass


def peer_started(obj: Any) -> bool | None:
    """Whether the peer of a handshake that did not finish had started it (``None``: unknown).

    A server has read the client's ClientHello once OpenSSL chose a cipher suite from it, and a
    client has read the server's ServerHello once it knows the suite the server chose.
    """
    try:
        return obj.cipher() is not None
    except (ValueError, AttributeError, OSError):  # pragma: no cover - defensive
        return None


def _server_refused(obj: Any, error: BaseException, peer: tuple[str, int] | None) -> None:
    """Report a failed server-side handshake (the operator's half of the explanation)."""
    _report.report(error, peer, quiet=_report.said_nothing(error, obj))


def _not(value: bool | None) -> bool | None:
    return None if value is None else not value


def _asyncio_protocol() -> Any:
    """The asyncio ``SSLProtocol`` whose handshake is running further up this call stack.

    An ``SSLObject`` knows neither its transport nor its protocol; asyncio's protocol calls
    ``do_handshake()`` from its own method, so its frame holds it.  ``None`` when there is none
    (another event loop, such as uvloop, whose protocol is not Python code).  Used only after a
    failure: walking frames costs a few microseconds.
    """
    sslproto = sys.modules.get("asyncio.sslproto")
    if sslproto is None:
        return None
    try:
        frame: FrameType | None = sys._getframe(2)
    except ValueError:  # pragma: no cover - a shallow stack
        return None
    for _ in range(6):
        if frame is None:
            break
        # Only asyncio's own frames are looked into (f_locals makes a dict of the frame's).
        if frame.f_code.co_filename == sslproto.__file__:
            candidate = frame.f_locals.get("self")
            if isinstance(candidate, sslproto.SSLProtocol):
                return candidate
        frame = frame.f_back
    return None


def asyncio_peer_of_caller() -> tuple[str, int] | None:
    """The peer address of the asyncio connection whose handshake is running (see above)."""
    protocol = _asyncio_protocol()
    transport = getattr(protocol, "_transport", None)
    if transport is None:
        return None
    peer = transport.get_extra_info("peername")
    if not isinstance(peer, tuple) or len(peer) < 2:
        return None
    return (str(peer[0]), int(peer[1]))


def flush_asyncio_alert() -> None:
    """Send what OpenSSL has written for the peer of the asyncio handshake running (the alert).

    asyncio closes a connection whose handshake failed without sending it; its TLS protocol
    object sends what is pending (a private method, Python 3.11 and later).
    """
    flush = getattr(_asyncio_protocol(), "_process_outgoing", None)
    if flush is not None:
        flush()


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
        chain=der_chain(obj, verified=False),
        verified=der_chain(obj, verified=True),
        version=_version(obj),
        first_io=not getattr(obj, "_securelink_io_done", False),
        # An SSLObject works inside an event loop, which a diagnostic handshake would block
        # (securelink.aio runs the diagnosis in a thread instead).
        diagnose=isinstance(obj, socket.socket),
        deadline=_deadline(obj, op),
    )


def _deadline(obj: Any, op: str) -> float | None:
    """When the caller's time limit for this socket operation runs out (``time.monotonic()``).

    The socket's timeout, counted from the start of the handshake (or, for a read or write,
    from now): a diagnostic handshake must not make the caller wait longer than it chose to.
    ``None`` when the socket has no timeout (the diagnosis keeps its own bound).
    """
    if not isinstance(obj, socket.socket):
        return None
    timeout = obj.gettimeout()
    if not timeout:  # None (blocking) or 0.0 (non-blocking): no limit of the caller's
        return None
    started = getattr(obj, "_securelink_started", None) if op == "handshake" else None
    return (started if started is not None else _monotonic()) + timeout


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
            try:
                socket.socket.shutdown(obj, socket.SHUT_RDWR)
            except OSError:
                pass
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
    _securelink_started: float | None = None

    @classmethod
    def _create(
        cls,
        sock: socket.socket,
        server_side: bool = False,
        do_handshake_on_connect: bool = True,
        suppress_ragged_eofs: bool = True,
        server_hostname: str | bytes | None = None,
        context: ssl.SSLContext | None = None,
        session: ssl.SSLSession | None = None,
    ) -> Any:
        # The name is checked (securelink._hostnames) before the stdlib's constructor runs: it
        # detaches the socket before it encodes the name, so that a name it cannot encode
        # would leave the caller with a closed socket and the descriptor in a half-built one.
        if server_hostname is not None and not server_side:
            server_hostname = _hostnames.checked(server_hostname)
        create: Any = super()._create  # type: ignore[misc]  # a private stdlib constructor
        return create(
            sock=sock,
            server_side=server_side,
            do_handshake_on_connect=do_handshake_on_connect,
            suppress_ragged_eofs=suppress_ragged_eofs,
            server_hostname=server_hostname,
            context=context,
            session=session,
        )

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
        if self._securelink_started is None:  # the caller's timeout counts from here
            self._securelink_started = _monotonic()
        try:
            _socket_do_handshake(self, block)
        except _AGAIN:
            raise
        except OSError as exc:
            if self.server_side and isinstance(exc, TimeoutError):
                # This server gave up (wrap_server's handshake_timeout, or the socket's own):
                # say so, and whether the client had even started.
                new: BaseException = _translate.timed_out(
                    exc,
                    _failure(self, "handshake", self._securelink_peer()),
                    timeout=self.gettimeout(),
                    silent=_not(peer_started(self)),
                )
                new.__cause__ = exc
            else:
                new = _explained(self, exc, "handshake", self._securelink_peer())
            if self.server_side:
                # Whatever server runs this context (socketserver swallows the error), its
                # operator hears why; then the client gets the alert instead of a reset.
                _server_refused(self, new, self._securelink_peer())
                if not isinstance(exc, TimeoutError):  # a silent client: nothing to wait for
                    _drain(self)
            if new is exc:
                raise
            raise new from new.__cause__
        self._securelink_version = self.version()
        hook = _hooks.verify_connection_hook(self.context)
        if hook is not None:
            try:
                _hooks.run_verify_connection(self, hook, peer)
            except SecureLinkError as rejected:
                # Rejected: close the connection, as the hook asked (the peer sees it closed).
                try:
                    socket.socket.shutdown(self, socket.SHUT_RDWR)
                except OSError:
                    pass
                if self.server_side:
                    _report.report(rejected, peer)
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

    @classmethod
    def _create(
        cls,
        incoming: ssl.MemoryBIO,
        outgoing: ssl.MemoryBIO,
        server_side: bool = False,
        server_hostname: str | bytes | None = None,
        session: ssl.SSLSession | None = None,
        context: ssl.SSLContext | None = None,
    ) -> Any:
        # asyncio's create_connection() has no session argument; securelink.aio passes the
        # session to resume this way, in the task that creates the connection.
        if session is None and not server_side:
            session = asyncio_session.get()
        create: Any = super()._create  # type: ignore[misc]  # a private stdlib constructor
        obj = create(incoming, outgoing, server_side, server_hostname, session, context)
        created = asyncio_objects.get()
        if created is not None:
            created.append(obj)
        return obj

    def do_handshake(self) -> None:
        """Perform the TLS handshake, raising securelink errors that explain a failure."""
        try:
            self._sslobj.do_handshake()  # the stdlib's body, without a second Python frame
        except _AGAIN:
            cell = asyncio_address.get()
            if cell is not None and not cell and not self.server_side:
                # The first flight: the transport is up, and its address known (see above).
                address = asyncio_peer_of_caller()
                if address is not None:
                    cell.append(address)
            raise
        except OSError as exc:
            # What securelink.aio set, or else asyncio's protocol found up the stack: plain
            # asyncio servers (and so every ASGI server) drop the alert too.
            flush = asyncio_flush.get() or flush_asyncio_alert
            if flush is not None:
                try:
                    flush()
                except Exception as bug:  # best effort: the explanation matters more
                    exc.add_note(f"securelink could not send the TLS alert ({bug!r})")
            peer = self._securelink_where()
            if peer is None and self.server_side:
                # Plain asyncio.start_server (and every server built on it): its transport knows.
                peer = asyncio_peer_of_caller()
            new = _explained(self, exc, "handshake", peer)
            if self.server_side:
                # asyncio logs a failed handshake only in debug mode: the operator hears it here.
                _server_refused(self, new, peer)
            if new is exc:
                raise
            raise new from new.__cause__
        self._securelink_version = self.version()
        hook = _hooks.verify_connection_hook(self.context)
        if hook is not None:
            try:
                _hooks.run_verify_connection(self, hook, self._securelink_where())
            except SecureLinkError as rejected:
                if self.server_side:
                    _report.report(rejected, self._securelink_where())
                raise

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
