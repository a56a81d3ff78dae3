"""The blocking helpers (connect, wrap_client, wrap_server) and connect()'s session cache.

They sit above securelink._context, since they build a context from options, and above the socket
and object classes of securelink._sockets, which they use; securelink.aio shares the session
cache and the option-or-context conversion.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
import weakref
from collections import OrderedDict

from . import _hostnames, _report, _translate
from ._context import client_context, server_context
from ._options import ClientOptions, ServerOptions
from ._sockets import SecureLinkSSLSocket, _drain, _not, _server_refused, peer_started
from .errors import ConfigurationError, SecureLinkError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

__all__ = ["connect", "wrap_client", "wrap_server"]

_monotonic = time.monotonic

# --- helpers for blocking sockets --------------------------------------------------------------


def _client_context(options_or_context: ClientOptions | ssl.SSLContext) -> ssl.SSLContext:
    # Shared: securelink owns a context it builds from options here, and connect() resumes
    # sessions per context, so equal options must give the same one (one certifi parse, too).
    return _context_from(
        options_or_context, ClientOptions, lambda o: client_context(o, shared=True)
    )


def _server_context(options_or_context: ServerOptions | ssl.SSLContext) -> ssl.SSLContext:
    return _context_from(
        options_or_context, ServerOptions, lambda o: server_context(o, shared=True)
    )


def _context_from(
    value: object, kind: type[Any], build: Callable[[Any], ssl.SSLContext]
) -> ssl.SSLContext:
    # A context is used as it is; options of the right side are built (shared, see above).
    if isinstance(value, ssl.SSLContext):
        return value
    if isinstance(value, kind):
        return build(value)
    raise TypeError(f"expected {kind.__name__} or ssl.SSLContext, not {type(value).__name__}")


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


# --- session resumption for connect() -------------------------------------------------------
#
# A session is kept per (context, host, port, server name), and only for contexts securelink
# built: their settings are known (verification always on, no hooks that re-verify after the
# handshake in a way a resumed session would skip), and they are documented as not to be
# mutated.  A context from elsewhere (truststore's, or one whose settings the caller changes
# between connections) gets full handshakes, as it would from the standard library.
#
# A session holds a strong reference to the context that made it (CPython's SSLSession does), so
# a kept session pins its context, and a context that trusts the certifi bundle weighs about
# 0.65 MiB: the cache is bounded by contexts as well as by keys, so that a program that builds
# a new context for every connection (whose sessions can never be used again) does not pin
# hundreds of them.  A key's context is checked by identity, so that a session is never offered
# to another context (OpenSSL would refuse it anyway: CPython compares the SSL_CTX).

#: How many (context, host, port, server name) keys keep sessions; the least recently used go.
_SESSION_KEYS = 256
#: How many distinct contexts the kept sessions may belong to.
_SESSION_CONTEXTS = 16
#: Per key: how many sessions are kept, and how many TLS 1.3 connections are watched for tickets.
_PER_KEY = 4

_SessionKey = tuple[int, str, int, str]


class _Pending:
    """A TLS 1.3 connection whose session tickets arrive after the handshake.

    TLS 1.3 servers send their tickets after the handshake, and OpenSSL processes them on a read,
    so the session is read later: once the socket is closed (or gone), never while it may be in
    use by another thread, because OpenSSL replaces a connection's session without a lock when a
    ticket arrives.  The C-level connection is kept because ``close()`` drops it.
    """

    __slots__ = ("owner", "sslobj")

    def __init__(self, sock: ssl.SSLSocket | ssl.SSLObject) -> None:
        this: Any = sock
        self.owner = weakref.ref(sock)
        self.sslobj: Any = this._sslobj

    def finished(self) -> bool:
        sock = self.owner()
        return sock is None or getattr(sock, "_sslobj", None) is not self.sslobj


class _Sessions:
    """The sessions kept for one key, and the connections that may still bring some."""

    __slots__ = ("context", "pending", "sessions", "settings")

    def __init__(self, context: ssl.SSLContext, settings: tuple[object, ...]) -> None:
        self.context = context
        self.settings = settings
        #: (session, single use): TLS 1.3 tickets are used once (RFC 8446, C.4); a TLS 1.2
        #: session may be resumed again and again, as long as the server accepts it.
        self.sessions: list[tuple[ssl.SSLSession, bool]] = []
        self.pending: list[_Pending] = []


_sessions: OrderedDict[_SessionKey, _Sessions] = OrderedDict()
_session_contexts: dict[int, int] = {}  # id(context) -> how many keys of _sessions have it
_sessions_lock = threading.Lock()


def _drop_slot(key: _SessionKey) -> None:
    # With _sessions_lock held.
    if _sessions.pop(key, None) is None:
        return
    left = _session_contexts[key[0]] - 1
    if left:
        _session_contexts[key[0]] = left
    else:
        del _session_contexts[key[0]]


def _add_slot(key: _SessionKey, slot: _Sessions) -> None:
    # With _sessions_lock held; *key* is not in _sessions.  The least recently used keys go
    # first, until both bounds hold.
    while _sessions and (
        len(_sessions) >= _SESSION_KEYS
        or (key[0] not in _session_contexts and len(_session_contexts) >= _SESSION_CONTEXTS)
    ):
        _drop_slot(next(iter(_sessions)))
    _sessions[key] = slot
    _session_contexts[key[0]] = _session_contexts.get(key[0], 0) + 1


def _session_settings(ctx: ssl.SSLContext) -> tuple[object, ...]:
    # What a resumed session would not re-check: if a private context is changed after a
    # session was made (verification loosened or tightened), its sessions are dropped.
    return (
        ctx.verify_mode,
        ctx.check_hostname,
        ctx.hostname_checks_common_name,
        ctx.verify_flags,
        ctx.options,
        ctx.minimum_version,
        ctx.maximum_version,
    )


def _usable(session: ssl.SSLSession | None, now: float) -> bool:
    # Only sessions with a ticket: TLS 1.3 has nothing else to resume with, and with TLS 1.2 a
    # session ID alone (a server-side session cache, servers with tickets turned off) never
    # resumed with CPython's clients in our tests, against OpenSSL's s_server or Python's.
    if session is None or not session.has_ticket:
        return False
    hint = session.ticket_lifetime_hint
    lifetime = min(session.timeout, hint) if hint else session.timeout
    return now < session.time + lifetime


def _keep(slot: _Sessions, session: ssl.SSLSession, single_use: bool) -> None:
    if single_use:
        slot.sessions.append((session, True))
    else:  # the latest TLS 1.2 session replaces the others (a resumed one may be renewed)
        slot.sessions = [kept for kept in slot.sessions if kept[1]]
        slot.sessions.append((session, False))
    del slot.sessions[:-_PER_KEY]


def _harvest(slot: _Sessions, now: float) -> None:
    """Keep the ticket of the most recent watched TLS 1.3 connection that is closed.

    One at a time, when one is needed: reading a session costs about 150 us.
    """
    for i in range(len(slot.pending) - 1, -1, -1):
        pending = slot.pending[i]
        if not pending.finished():
            continue
        del slot.pending[i]
        try:
            session = pending.sslobj.session
        except (ValueError, AttributeError, OSError):  # pragma: no cover - defensive
            continue
        if _usable(session, now):
            _keep(slot, session, single_use=True)
            return


def _take_session(
    ctx: ssl.SSLContext, key: _SessionKey, settings: tuple[object, ...]
) -> ssl.SSLSession | None:
    """A session to offer for *key*, if one is kept (TLS 1.3 tickets are taken out)."""
    now = time.time()
    with _sessions_lock:
        slot = _sessions.get(key)
        if slot is None:
            return None
        if slot.context is not ctx or slot.settings != settings:
            _drop_slot(key)  # a changed context (or, defensively, another at a recycled id)
            return None
        _sessions.move_to_end(key)
        slot.sessions = [kept for kept in slot.sessions if _usable(kept[0], now)]
        if not slot.sessions:
            _harvest(slot, now)
            if not slot.sessions:
                return None
        session, single_use = slot.sessions[-1]
        if single_use:
            slot.sessions.pop()
        return session


def _remember(
    ctx: ssl.SSLContext,
    key: _SessionKey,
    settings: tuple[object, ...],
    sock: ssl.SSLSocket | ssl.SSLObject,
) -> None:
    """Keep *sock*'s session for *key* (TLS 1.2), or watch it for tickets (TLS 1.3)."""
    version = sock.version()
    # Still this thread's own socket: its session can be read safely (TLS 1.2 sends tickets
    # inside the handshake, so this is the whole session).  Reading it costs about 150 us (CPython
    # copies it through DER, certificates included), so a resumed TLS 1.2 session, which is the
    # one already kept, is not read again.
    session = None
    if version != "TLSv1.3" and not sock.session_reused:
        session = sock.session
    now = time.time()
    with _sessions_lock:
        slot = _sessions.get(key)
        if slot is None or slot.context is not ctx or slot.settings != settings:
            _drop_slot(key)
            slot = _Sessions(ctx, settings)
            _add_slot(key, slot)
        _sessions.move_to_end(key)
        if version == "TLSv1.3":
            slot.pending.append(_Pending(sock))
            del slot.pending[:-_PER_KEY]  # the oldest go unread
        elif session is not None and _usable(session, now):
            _keep(slot, session, single_use=False)


def _forget_sessions(key: _SessionKey | None = None) -> None:
    """Forget the sessions kept for *key*, or all of them."""
    with _sessions_lock:
        if key is None:
            _sessions.clear()
            _session_contexts.clear()
        else:
            _drop_slot(key)


def connect(
    host: str,
    port: int,
    options_or_context: ClientOptions | ssl.SSLContext,
    *,
    server_hostname: str | None = None,
    timeout: float | None = None,
    resume: bool = True,
) -> ssl.SSLSocket:
    """Connect to *host*:*port* over TLS and finish the handshake.

    With a context securelink built (from :class:`~securelink.ClientOptions` here, or from
    :func:`~securelink.client_context`), a connection to a server resumes the TLS session of an
    earlier one: an abbreviated handshake, without the certificate exchange and its signatures.
    Check ``sock.session_reused`` to see whether it happened.

    - Sessions are kept per context, host, port and server name (the 256 most recently used
      keys, of at most 16 contexts), and a session is never offered to another context.
    - The server must issue session tickets, as Python's servers do by default.
    - A TLS 1.2 session is kept from the handshake on, and is reused until it expires.
    - A TLS 1.3 server sends its tickets after the handshake, and this end processes them when
      it reads: a TLS 1.3 connection's ticket is taken once the socket is closed, for a later
      ``connect()``, and each ticket is used once (RFC 8446, appendix C.4).
    - Contexts securelink did not build always make full handshakes: securelink cannot know how
      they verify, or whether they will be changed.

    A resumed connection does not verify the server's certificate again: it relies on the
    verification of the handshake that made the session, for the same name, within the
    session's lifetime (set by the server).  Public-key pins and ``verify_connection`` hooks
    still run, with the certificate the session remembers (and no chain).  Pass
    ``resume=False`` to make every handshake a full one.

    The socket has ``TCP_NODELAY`` set, as Go's and asyncio's connections do: TLS writes whole
    records, and with Nagle's algorithm a request written right after a resumed TLS 1.2
    handshake would wait for the server's delayed acknowledgement (about 40 ms on Linux).

    Args:
        host: The host name or address to connect to.
        port: The TCP port.
        options_or_context: :class:`~securelink.ClientOptions`, or a client context.
        server_hostname: The name to verify the certificate against and send as SNI; defaults
            to *host* (only when it is ``None``: an empty string is refused).  Both are checked
            before any connection, as :doc:`/contexts` ("Host names") describes.
        timeout: A timeout in seconds for connecting, the handshake, and later reads and writes.
        resume: Offer a kept session and keep this connection's (default); ignored for contexts
            securelink did not build, which always make full handshakes.

    Returns:
        A connected ``ssl.SSLSocket`` whose handshake is done.

    Raises:
        ConfigurationError: *host* or *server_hostname* is malformed, or could be read two ways
            (``0177.0.0.1``, ``straße.example``); ``field`` says which.  Nothing was connected.
        NothingListeningError: nothing accepted the TCP connection.
        HandshakeError: the TLS handshake failed (see the subclasses for the causes).

    .. versionchanged:: 0.2.0
       Sessions are resumed (the *resume* argument), and ``TCP_NODELAY`` is set.
    """
    # Before any connection: a host the resolver would read one way and the certificate check
    # another (0177.0.0.1) is refused, and the name to verify is normalised (securelink._hostnames).
    name = _hostnames.checked(host, "host")
    if server_hostname is not None:
        name = _hostnames.checked(server_hostname)
    ctx = _client_context(options_or_context)
    key: _SessionKey | None = None
    settings: tuple[object, ...] = ()
    session = None
    if resume and _translate.facts_for(ctx) is not None:
        key = (id(ctx), host, port, name)
        settings = _session_settings(ctx)
        session = _take_session(ctx, key, settings)
    started = _monotonic()
    try:
        raw = socket.create_connection((host, port), timeout=timeout)
    except ConnectionRefusedError as exc:
        refused = _translate.translate(
            exc, _translate.Failure(role="client", op="connect", peer=(host, port))
        )
        if refused is None:  # pragma: no cover - refused with a peer always translates
            raise
        raise refused from exc
    # As Go and asyncio do.  With Nagle's algorithm, a request written right after a resumed
    # TLS 1.2 handshake (whose last flight is the client's) waits for the server's delayed ACK:
    # about 40 ms on Linux, twenty times the handshake.
    try:
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError:
        pass
    # A diagnostic handshake explaining a failure goes to the address connected to (never to
    # *host* resolved again), and ends when this call's timeout, counted from its start, does.
    address: tuple[str, int] | None = None
    try:
        address = (str(raw.getpeername()[0]), int(raw.getpeername()[1]))
    except (OSError, IndexError):
        pass
    scope = _translate.diagnosis_scope.set(
        (address, started + timeout if timeout is not None else None)
    )
    try:
        sock = ctx.wrap_socket(raw, server_hostname=name, session=session)
    except BaseException as exc:
        raw.close()
        if key is not None:
            # Whatever failed, the next attempt starts afresh, with a full handshake.
            _forget_sessions(key)
        new = _explain_foreign(exc, ctx, name, (host, port))
        if new is exc:
            raise
        raise new from exc
    finally:
        _translate.diagnosis_scope.reset(scope)
    if key is not None:
        _remember(ctx, key, settings, sock)
    return sock


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
        server_hostname: The name to verify the server's certificate against (and send as SNI),
            checked as :doc:`/contexts` ("Host names") describes.

    Returns:
        The ``ssl.SSLSocket``, its handshake done.

    Raises:
        ConfigurationError: *server_hostname* is malformed, or could be read two ways (the
            socket is closed).
        HandshakeError: the TLS handshake failed (see the subclasses for the causes).
    """
    try:
        name = _hostnames.checked(server_hostname)
    except (ConfigurationError, TypeError):
        sock.close()
        raise
    return _wrap(sock, _client_context(options_or_context), name)


def _wrap(
    sock: socket.socket,
    ctx: ssl.SSLContext,
    server_hostname: str | None,
    handshake_timeout: float | None = None,
) -> ssl.SSLSocket:
    # wrap_client (a server_hostname) and wrap_server (none): the handshake, then on failure the
    # socket closed and the error explained (contexts securelink built explain their own).
    try:
        peer: Any = sock.getpeername()
    except OSError:  # the client reset the connection already: its address is gone with it
        peer = None
    if server_hostname is not None:
        try:
            return ctx.wrap_socket(sock, server_hostname=server_hostname)
        except BaseException as exc:
            sock.close()
            new = _explain_foreign(exc, ctx, server_hostname, peer)
            if new is exc:
                raise
            raise new from exc
    if sock.family in (socket.AF_INET, socket.AF_INET6):
        # As connect() does, and Go on every TCP connection.  A TLS 1.3 server writes its
        # session tickets after the client's Finished, in more than one segment: with Nagle's
        # algorithm the second waits for the client's delayed ACK of the first (about 40 ms on
        # Linux), and so does every handshake.
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
    address = (str(peer[0]), int(peer[1])) if isinstance(peer, tuple) else None
    # The socket's own timeout comes back after the handshake; during it, handshake_timeout
    # bounds the whole handshake (CPython's do_handshake keeps one deadline across its reads).
    original = sock.gettimeout()
    tls: ssl.SSLSocket | None = None
    try:
        if handshake_timeout is not None:
            sock.settimeout(handshake_timeout)
        # The handshake apart from the wrapping: after a failure, the socket is still open to
        # drain (the stdlib closes it inside wrap_socket).
        tls = ctx.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        tls.do_handshake()
        tls.settimeout(original)
        return tls
    except BaseException as exc:
        new = _server_failure(exc, ctx, tls, address, peer)
        if tls is not None:
            tls.close()
        sock.close()
        if new is exc:
            raise
        raise new from exc


def _close_orphan(exc: BaseException) -> None:
    """Close the SSLSocket a failed ``wrap_socket`` made, which holds the descriptor.

    ``SSLSocket._create`` moves the descriptor into the new object before it checks the
    connection, and when that check raises (a reset: ``recv`` fails) it leaves the object
    unclosed, out of reach but in the traceback: its descriptor would stay open until the
    garbage collector finds it.
    """
    tb = exc.__traceback__
    while tb is not None:
        frame = tb.tb_frame
        orphan = frame.f_locals.get("self") if frame.f_code.co_name == "_create" else None
        if isinstance(orphan, ssl.SSLSocket):
            orphan.close()
            return
        tb = tb.tb_next


def _server_failure(
    exc: BaseException,
    ctx: ssl.SSLContext,
    tls: ssl.SSLSocket | None,
    address: tuple[str, int] | None,
    peer: Any,
) -> BaseException:
    """The explanation of a failed wrap_server() handshake, reported (and the client drained)."""
    if isinstance(tls, SecureLinkSSLSocket) or not isinstance(exc, OSError):
        return exc  # explained, reported and drained by the socket class; or not a failure
    if tls is None:
        # wrap_socket itself failed: the client reset the connection before the handshake
        # began (the stdlib raises ConnectionResetError, or an SSLError when the ClientHello
        # was left unread).  The client went away: a securelink error, as for any other.
        new: BaseException = exc
        if not isinstance(exc, SecureLinkError):
            failure = _translate.Failure(role="server", peer=address, context=ctx, diagnose=False)
            new = _translate.translate(exc, failure) or exc
        # A reset before any byte is a port check (load balancers close so): DEBUG, as the
        # socket class reports a client that closes before its ClientHello.
        _report.report(new, address, quiet=isinstance(exc, ConnectionResetError))
        _close_orphan(exc)
        return new
    if isinstance(exc, TimeoutError) and not isinstance(exc, SecureLinkError):
        # A context securelink did not build: the same words as securelink's own socket class.
        failure = _translate.Failure(role="server", peer=address, context=ctx, diagnose=False)
        new = _translate.timed_out(
            exc, failure, timeout=tls.gettimeout(), silent=_not(peer_started(tls))
        )
    else:
        new = _explain_foreign(exc, ctx, None, peer)
    _server_refused(tls, new, address)
    if not isinstance(exc, TimeoutError):  # a silent client: nothing to wait for
        _drain(tls)
    return new


#: wrap_server's and securelink.aio.start_server's default handshake_timeout, in seconds.
HANDSHAKE_TIMEOUT = 10.0


def wrap_server(
    sock: socket.socket,
    options_or_context: ServerOptions | ssl.SSLContext,
    *,
    handshake_timeout: float | None = HANDSHAKE_TIMEOUT,
) -> ssl.SSLSocket:
    """Wrap an accepted socket as a TLS server and finish the handshake.

    The socket gets ``TCP_NODELAY``, as :func:`connect` does: with Nagle's algorithm every TLS
    1.3 handshake would wait about 40 ms for the client's delayed acknowledgement.  A failed
    handshake is reported on the ``securelink`` logger (see :doc:`/reporting`), and the socket
    is closed only once the client has read the alert that says why (at most 0.25 s and 64 KiB
    of what the client sent are read first), so that it does not get a bare reset instead.

    The whole handshake must finish within *handshake_timeout* seconds (10 by default), then
    the socket's own timeout is restored.  Without a bound, one client that connects and sends
    nothing would hold this call, and a single-threaded accept loop with it, forever.  10 s is
    far above a real handshake (one or two round trips: under a second even over a satellite
    link) yet frees an idle connection six times sooner than asyncio's and nginx's 60 s; Go
    servers are usually given a few seconds (``ReadHeaderTimeout``).  A pending handshake
    costs its file descriptor and, in a server with a thread per connection, about 66 KiB of
    memory, mostly the thread's (measured figures: :doc:`/production`).

    Args:
        sock: A connected TCP socket (from ``accept()``); on failure it is closed.
        options_or_context: :class:`~securelink.ServerOptions`, or a server context.
        handshake_timeout: Seconds the whole handshake may take; ``None`` leaves the socket's
            own timeout in charge (no bound for a blocking socket).

    Returns:
        The ``ssl.SSLSocket``, its handshake done, with the timeout *sock* had.

    Raises:
        HandshakeTimeoutError: the handshake did not finish within *handshake_timeout*.
        HandshakeError: the TLS handshake failed (see the subclasses for the causes), or the
            client reset the connection (:class:`~securelink.RemoteError`).
        ConfigurationError: *handshake_timeout* is not a positive number of seconds.

    .. versionchanged:: 0.2.0
       ``TCP_NODELAY`` is set; failures are reported, and the alert is not lost to a reset.
       The *handshake_timeout* (10 s by default); a client that resets the connection before
       the handshake is a :class:`~securelink.RemoteError`, not a bare ``OSError``.
    """
    return _wrap(sock, _server_context(options_or_context), None, _check_timeout(handshake_timeout))


def _check_timeout(value: float | None, *, optional: bool = True) -> float | None:
    # A timeout of 0 would make the handshake non-blocking (it would fail at once), and a
    # negative one is refused by the socket: both are mistakes, said before any connection.
    if value is None and optional:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not value > 0
        or value == float("inf")
    ):
        raise ConfigurationError(
            f"handshake_timeout must be a positive number of seconds, not {value!r}.",
            field="handshake_timeout",
            hint=f"Give a few seconds (the default is {HANDSHAKE_TIMEOUT:g})"
            + (", or None for the socket's own timeout." if optional else "."),
        )
    return float(value)
