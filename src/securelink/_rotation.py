"""Certificate rotation without restarts: one stable server context whose material can change.

Calling ``load_cert_chain()`` on a context that is serving races with the handshakes in flight
(some fail under load).  Building a *new* context and switching to it fails none, but servers
such as ``asyncio.start_server`` take one context when they start and keep it.  The way out is
the one the standard library offers for certificates by server name: the stable *outer* context
that the server holds has an ``sni_callback``, and that callback points each new connection at
the *inner* context holding the current material (``ssl_obj.context = inner``), before the
server's certificate is chosen.  A reload builds a fresh inner context and swaps one reference;
a handshake in progress keeps the context it was given.

OpenSSL calls the callback for every ClientHello, with or without a server name, on every TLS
version.  Settings that OpenSSL copies into a connection when it is created (the client
certificate mode, the TLS versions, the curves) come from the outer context, so the options that
control them cannot change on a reload (``RotatingServerContext.FIXED_FIELDS``).  The
certificate, its key, the client CAs (verification reads the store of the connection's current
context), ALPN, the key log and the hooks come from the inner one.  Session tickets are
encrypted with the outer context's keys, so a session made before a reload can be resumed after
it (and resumption does not check certificates again).
"""

from __future__ import annotations

import os
import ssl
import threading

from . import _translate
from ._context import server_context
from ._frozen import Frozen
from ._material import stamp
from ._options import PKCS12, ServerOptions
from ._x509 import FileStamp, duration
from ._x509 import utcnow as _utcnow  # one clock for days_left and warnings; tests move it
from .errors import ConfigurationError, SecureLinkError

TYPE_CHECKING = False  # typing, logging, signal and datetime stay out of `import securelink`
if TYPE_CHECKING:
    import datetime
    import logging
    from collections.abc import Callable
    from types import FrameType, TracebackType
    from typing import Any, ClassVar, Self, TypeAlias

    from ._summary import CertificateSummary

    #: What :func:`signal.signal` returns and accepts as a handler.
    SignalHandler: TypeAlias = Callable[[int, FrameType | None], Any] | int | None

__all__ = ["RotatingServerContext"]

_DAY = 86400.0
#: After a file is seen to change, wait until it has stopped changing for this long (at most
#: ``poll_interval / 2``) before reading it, so a certificate and key written one after the other
#: are read together.  Ten tries at most: a file that never settles is read anyway.
_SETTLE_S = 0.1
_SETTLE_TRIES = 10

#: A file's identity and version (path, device, inode, size, mtime_ns), or just the path when it
#: cannot be read.
_Stamp = FileStamp | tuple[str]


def _logger() -> logging.Logger:
    import logging

    return logging.getLogger("securelink")


def _stamp(path: str) -> _Stamp:
    # stamp() follows symlinks: a Kubernetes-style ..data swap is a new inode.
    return stamp(path) or (path,)


def _watched_paths(options: ServerOptions) -> tuple[str, ...]:
    """The files and directories a build of *options* reads, in order, without duplicates."""
    found: list[str] = []

    def walk(value: object) -> None:
        if isinstance(value, str | os.PathLike):
            path = os.fspath(value)
            if path not in found:
                found.append(path)
        elif isinstance(value, PKCS12):
            walk(value.source)
        elif isinstance(value, tuple):
            for item in value:
                walk(item)
        elif isinstance(value, Frozen):  # an identity by server name: its certificate and key
            walk(getattr(value, "_cert", ()))
            walk(getattr(value, "key", None))

    walk(options._cert)
    walk(options.key)
    walk(options._client_ca)
    for _name, identity in getattr(options, "_names", ()):  # certificates by server name
        walk(identity)
    return tuple(found)


def _stamps(paths: tuple[str, ...]) -> tuple[_Stamp, ...]:
    out: list[_Stamp] = []
    for path in paths:
        out.append(_stamp(path))
        if os.path.isdir(path):  # a CA directory: a file rewritten in place keeps its mtime
            try:
                entries = sorted(os.listdir(path))
            except OSError:
                continue
            out.extend(_stamp(os.path.join(path, entry)) for entry in entries)
    return tuple(out)


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())


def _describe_days(days: float) -> str:
    import datetime

    return duration(datetime.timedelta(days=days))


class _State:
    """What is being served: immutable, replaced as a whole by a reload."""

    __slots__ = ("callback", "certificate", "context", "generation", "options", "paths", "stamps")

    def __init__(
        self,
        *,
        context: ssl.SSLContext,
        options: ServerOptions,
        certificate: CertificateSummary,
        paths: tuple[str, ...],
        stamps: tuple[_Stamp, ...],
        generation: int,
    ) -> None:
        self.context = context
        # securelink's own SNI callback of the inner context (hooks, certificates by name).
        self.callback: Callable[..., int | None] | None = context.sni_callback
        self.options = options
        self.certificate = certificate
        self.paths = paths
        self.stamps = stamps
        self.generation = generation


class RotatingServerContext:
    """A server's TLS material that can be replaced while it serves, behind one stable context.

    Give :attr:`context` to the server once: ``asyncio.start_server(..., ssl=rot.context)``,
    :func:`securelink.aio.start_server`, ``rot.context.wrap_socket(sock, server_side=True)``,
    or anything else that takes an :class:`ssl.SSLContext`.  Then replace the certificate, its key
    and the client CAs without a restart:

    - on demand, with :meth:`reload` (files named in the options are read again; pass new
      options to replace material held in memory);
    - when the files change, with a polling thread (:meth:`start` and :meth:`stop`, or use the
      object as a context manager);
    - on a signal, with :meth:`install_signal_handler` (``SIGHUP`` by default).

    Each new handshake uses the material current when its ClientHello arrives; handshakes in
    progress and established connections keep the material they started with, so none fails
    during a switch.  A reload whose material cannot be used changes nothing: the old material is
    still served, :meth:`reload` raises the securelink exception that says what is wrong, and
    the polling thread and the signal handler log it as one WARNING line on the ``securelink``
    logger, store it in :attr:`last_error` and pass it to *on_error*.

    It also watches the certificate's expiry: :attr:`days_left` and :attr:`not_after`, and a
    WARNING on the ``securelink`` logger once a day per certificate, when a certificate is loaded
    or checked by the polling thread within *expiry_warning_days* of its end.

    Thread-safe: reloads are serialised, and handshakes never wait for them.

    Example::

        rot = securelink.RotatingServerContext(
            securelink.ServerOptions(cert="/etc/tls/server.pem", key="/etc/tls/server.key")
        )
        with rot:  # polls the files every 5 seconds
            server = await asyncio.start_server(handle, "0.0.0.0", 8443, ssl=rot.context)
            await server.serve_forever()

    Args:
        options: The server's material and policy.  It is loaded now, so this raises the same
            errors as :func:`securelink.server_context` if it cannot be used.
        poll_interval: Seconds between two checks of the files by the polling thread.
        expiry_warning_days: Warn when the certificate has fewer days left than this (default
            30); ``None`` never warns.
        on_error: Called (in the polling or reloading thread) with the exception of each reload
            that failed outside :meth:`reload`: a changed file that cannot be used, or a
            reload asked for by a signal or :meth:`request_reload`.

    Raises:
        MaterialError: the certificate, key or a CA cannot be used (see its subclasses).
        ConfigurationError: *poll_interval*, *expiry_warning_days* or *on_error* is not
            usable (its ``field`` names it), or the key log file cannot be created.
        TypeError: *options* is not :class:`~securelink.ServerOptions`.

    .. versionadded:: 0.2.0
    """

    #: The :class:`~securelink.ServerOptions` fields a reload cannot change.  OpenSSL copies what
    #: they control into each connection from the stable context when the connection is created,
    #: before the switch to the current material; changing them needs a new server.
    FIXED_FIELDS: ClassVar[tuple[str, ...]] = (
        "client_auth",
        "min_version",
        "max_version",
        "profile",
        "trace",
    )

    def __init__(
        self,
        options: ServerOptions,
        /,
        *,
        poll_interval: float = 5.0,
        expiry_warning_days: float | None = 30.0,
        on_error: Callable[[SecureLinkError], None] | None = None,
    ) -> None:
        if not isinstance(options, ServerOptions):
            raise TypeError(
                f"RotatingServerContext takes ServerOptions, not {type(options).__name__}"
            )
        if isinstance(poll_interval, bool) or not (
            isinstance(poll_interval, int | float) and 0 < poll_interval < _DAY * 365
        ):
            raise ConfigurationError(
                f"poll_interval must be a positive number of seconds, not {poll_interval!r}.",
                field="poll_interval",
                hint="Pass poll_interval=5.0 (seconds), for example (at most a year); to not"
                " poll, do not call start().",
            )
        if expiry_warning_days is not None and (
            isinstance(expiry_warning_days, bool)
            or not isinstance(expiry_warning_days, int | float)
            or not 0 <= expiry_warning_days < float("inf")
        ):
            raise ConfigurationError(
                f"expiry_warning_days must be a number of days, or None, not"
                f" {expiry_warning_days!r}.",
                field="expiry_warning_days",
                hint="Pass expiry_warning_days=30 (the default), or None for no warning.",
            )
        if on_error is not None and not callable(on_error):
            raise ConfigurationError(
                f"on_error must be a callable, not {type(on_error).__name__}.",
                field="on_error",
                hint="Pass a function that takes the exception, or leave on_error unset.",
            )
        self._poll_interval = float(poll_interval)
        self._warning_days = None if expiry_warning_days is None else float(expiry_warning_days)
        self._on_error = on_error
        self._lock = threading.Lock()  # serialises loads; handshakes never take it
        self._last_error: SecureLinkError | None = None
        self._failed_stamps: tuple[_Stamp, ...] | None = None
        self._warned: dict[str, datetime.datetime] = {}  # certificate SHA-256 -> last warning
        self._threads_lock = threading.Lock()
        self._poller: threading.Thread | None = None
        self._stopping = threading.Event()
        self._requests: set[threading.Thread] = set()
        # The outer context is a full securelink server context for the same options, so that
        # everything OpenSSL copies from it into a new connection (versions, client
        # certificate mode, options, verify flags) and the socket classes that explain
        # failures are securelink's.  Its own certificate is never served: every ClientHello
        # switches the connection to the current inner context first.
        paths = _watched_paths(options)
        stamps = _stamps(paths)
        outer = server_context(options, shared=False)
        inner = server_context(options, shared=False)
        self._outer = outer
        self._state = self._new_state(inner, options, paths, stamps, generation=1)
        outer.sni_callback = self._switch
        self._describe_outer(inner)
        with self._lock:
            self._check_expiry(self._state)

    # --- serving ----------------------------------------------------------------------------

    def _switch(self, conn: Any, server_name: str | None, _outer: ssl.SSLContext) -> int | None:
        # The SNI callback of the outer context: runs in OpenSSL's ClientHello processing,
        # before the certificate is chosen, for every connection (server_name is None when the
        # client sent no name).  One attribute read: a reload swaps _state whole.
        state = self._state
        conn.context = state.context
        if state.callback is not None:
            return state.callback(conn, server_name, state.context)
        return None

    @property
    def context(self) -> ssl.SSLContext:
        """The stable server context: give it to the server once; it always serves the latest.

        A plain :class:`ssl.SSLContext` built by securelink (its failures explain themselves).
        Do not change its settings or its ``sni_callback``: reload new options instead.
        """
        return self._outer

    @property
    def options(self) -> ServerOptions:
        """The options of the material being served."""
        return self._state.options

    @property
    def certificate(self) -> CertificateSummary:
        """A summary of the certificate being served (the leaf for clients that send no name)."""
        return self._state.certificate

    @property
    def not_after(self) -> datetime.datetime:
        """When the certificate being served expires (timezone-aware UTC)."""
        return self._state.certificate.not_after

    @property
    def days_left(self) -> float:
        """Days until the certificate being served expires, as a fraction; negative once it has."""
        return (self.not_after - _utcnow()).total_seconds() / _DAY

    @property
    def generation(self) -> int:
        """How many times material was loaded: 1 after construction, plus one per reload."""
        return self._state.generation

    @property
    def last_error(self) -> SecureLinkError | None:
        """Why the latest reload failed, or ``None`` if the latest reload succeeded."""
        return self._last_error

    @property
    def polling(self) -> bool:
        """Whether the polling thread is running."""
        poller = self._poller
        return poller is not None and poller.is_alive()

    def __repr__(self) -> str:
        state = self._state
        every = f", polling every {self._poll_interval:g} s" if self.polling else ""
        return (
            f"<RotatingServerContext serving {state.certificate.describe()}, valid until"
            f" {state.certificate.not_after:%Y-%m-%d %H:%M} UTC, generation"
            f" {state.generation}{every}>"
        )

    # --- loading ----------------------------------------------------------------------------

    def _new_state(
        self,
        inner: ssl.SSLContext,
        options: ServerOptions,
        paths: tuple[str, ...],
        stamps: tuple[_Stamp, ...],
        *,
        generation: int,
    ) -> _State:
        facts = _translate.facts_for(inner)
        if facts is None or facts.identity is None:  # pragma: no cover - server contexts have one
            raise RuntimeError("securelink built a server context without recording its identity")
        return _State(
            context=inner,
            options=options,
            certificate=facts.identity,
            paths=paths,
            stamps=stamps,
            generation=generation,
        )

    def _describe_outer(self, inner: ssl.SSLContext) -> None:
        # A handshake that fails before the switch (a client that does not speak TLS) is
        # explained from the outer context's facts: make them describe the current material.
        facts = _translate.facts_for(inner)
        if facts is not None:
            _translate.register(self._outer, facts)

    def _check_fixed(self, old: ServerOptions, new: ServerOptions) -> None:
        for name in self.FIXED_FIELDS:
            before, after = getattr(old, name, None), getattr(new, name, None)
            if before != after:
                raise ConfigurationError(
                    f"{name} cannot change on a reload ({before!r} -> {after!r}): OpenSSL takes"
                    " it from the stable context when each connection is created.",
                    field=name,
                    hint=f"Keep {name} as it is in the options you reload, or start a new server"
                    " (and RotatingServerContext) to change it.",
                )

    def _load(self, options: ServerOptions | None) -> CertificateSummary:
        # Called with self._lock held.  Raises without changing anything if the build fails.
        old = self._state
        if options is None:
            options = old.options
        elif not isinstance(options, ServerOptions):
            raise TypeError(f"reload() takes ServerOptions, not {type(options).__name__}")
        paths = _watched_paths(options)
        # Stamped before reading: a file that changes during the build is read again next poll.
        stamps = _stamps(paths)
        try:
            self._check_fixed(old.options, options)
            inner = server_context(options, shared=False)
            state = self._new_state(inner, options, paths, stamps, generation=old.generation + 1)
        except SecureLinkError as exc:
            self._last_error = exc
            raise
        self._state = state  # the switch: new handshakes use it from here on
        self._describe_outer(inner)
        self._end_resumption_if_trust_shrank(old.context, inner)
        self._last_error = None
        self._failed_stamps = None
        _logger().info(
            "loaded new TLS material (generation %d): now serving %s",
            state.generation,
            state.certificate,
        )
        self._check_expiry(state)
        return state.certificate

    def _end_resumption_if_trust_shrank(self, old: ssl.SSLContext, new: ssl.SSLContext) -> None:
        # A resumed session is not verified again, and session tickets belong to the stable
        # context, which outlives every reload: a client whose CA was just removed could come
        # back in on an old ticket.  The stdlib cannot rotate ticket keys, so once a client CA is
        # removed, this server stops resuming sessions (a restart turns it back on).
        if old.verify_mode == ssl.CERT_NONE or self._outer.options & ssl.OP_NO_TICKET:
            return
        before = set(old.get_ca_certs(binary_form=True))
        after = set(new.get_ca_certs(binary_form=True))
        if before <= after:
            return
        self._outer.options |= ssl.OP_NO_TICKET
        self._outer.num_tickets = 0
        _logger().warning(
            "a client CA was removed: this server no longer resumes TLS sessions, so that no"
            " client of a removed CA comes back in on an old session ticket (restart to resume"
            " sessions again)"
        )

    def reload(self, options: ServerOptions | None = None, /) -> CertificateSummary:
        """Load the material again and serve it to new connections.

        Files named in the options are read again, whether they changed or not.  If anything
        cannot be used, nothing changes: the old material is still served, and the exception
        is raised (and kept in :attr:`last_error`).

        Args:
            options: New options to serve from now on (for material held in memory, or to
                point at other files); ``None`` re-reads the current ones.  The fields in
                :attr:`FIXED_FIELDS` must stay the same.

        Returns:
            A summary of the certificate now being served.

        Raises:
            MaterialError: the certificate, key or a CA cannot be used (see its subclasses).
            ConfigurationError: *options* changes a field that is fixed while serving, or the
                key log file cannot be created.
            TypeError: *options* is not :class:`~securelink.ServerOptions`.
        """
        with self._lock:
            return self._load(options)

    def _reload_reporting(self, trigger: str) -> bool:
        """Reload; report a failure (log, last_error, on_error) instead of raising it."""
        with self._lock:
            old = self._state
            # What failed is what was there before the attempt: a file that changes during it
            # is tried again.
            before = _stamps(old.paths)
            try:
                self._load(None)
            except Exception as exc:
                if isinstance(exc, SecureLinkError):
                    error = exc
                else:  # not recognised: keep it, wrapped, rather than lose the thread
                    error = SecureLinkError(
                        f"reloading the TLS material failed unexpectedly:"
                        f" {type(exc).__name__}: {exc}.",
                        hint="The previous material is still served. This may be a bug in"
                        " securelink: please report it with the traceback (__cause__).",
                    )
                    error.__cause__ = exc
                self._last_error = error
                self._failed_stamps = before
                _logger().warning(
                    "TLS material not reloaded (%s); still serving %s until %s UTC: %s",
                    trigger,
                    old.certificate.describe(),
                    f"{old.certificate.not_after:%Y-%m-%d %H:%M}",
                    _one_line(error),
                )
                failed = error
            else:
                return True
        self._report(failed)
        return False

    def _report(self, error: SecureLinkError) -> None:
        if self._on_error is None:
            return
        try:
            self._on_error(error)
        except Exception as exc:  # the polling thread must survive its callback
            _logger().warning("the on_error callback raised %s: %s", type(exc).__name__, exc)

    # --- expiry -----------------------------------------------------------------------------

    def _check_expiry(self, state: _State) -> None:
        # Called with self._lock held.
        if self._warning_days is None:
            return
        cert = state.certificate
        now = _utcnow()
        days = (cert.not_after - now).total_seconds() / _DAY
        if days >= self._warning_days:
            return
        last = self._warned.get(cert.sha256)
        if last is not None and (now - last).total_seconds() < _DAY:
            return  # once a day per certificate
        self._warned[cert.sha256] = now
        when = f"{cert.not_after:%Y-%m-%d %H:%M} UTC"
        if days < 0:
            _logger().warning(
                "%s (SHA-256 %s), served by this server, expired on %s, %s ago: clients refuse"
                " it. Renew it and reload (a changed file is picked up by the polling thread).",
                cert.describe(),
                cert.sha256,
                when,
                _describe_days(days),
            )
        else:
            _logger().warning(
                "%s (SHA-256 %s), served by this server, expires on %s, in %s. Renew it and"
                " reload (a changed file is picked up by the polling thread).",
                cert.describe(),
                cert.sha256,
                when,
                _describe_days(days),
            )

    # --- polling ----------------------------------------------------------------------------

    def _poll(self) -> None:
        """One check: reload if a watched file changed, then check the expiry."""
        state = self._state
        current = _stamps(state.paths)
        if current != state.stamps and current != self._failed_stamps:
            settle = min(_SETTLE_S, self._poll_interval / 2)
            for _ in range(_SETTLE_TRIES):  # wait until the writer is done
                if self._stopping.wait(settle):
                    return
                again = _stamps(state.paths)
                if again == current:
                    break
                current = again
            if state is self._state:  # not reloaded meanwhile by someone else
                self._reload_reporting("a watched file changed")
        with self._lock:
            self._check_expiry(self._state)

    def _run(self) -> None:
        while not self._stopping.wait(self._poll_interval):
            try:
                self._poll()
            except Exception as exc:  # pragma: no cover - _poll reports its own failures
                _logger().warning(
                    "the TLS material polling thread hit %s: %s", type(exc).__name__, exc
                )

    def start(self) -> None:
        """Start the polling thread (a daemon thread; does nothing if it is running).

        Every *poll_interval* seconds it checks the files named in the options (and the files
        in a CA directory): when one has changed, it waits for writing to finish and reloads.
        A failed reload is reported (log, :attr:`last_error`, *on_error*) and tried again when
        the files change again.  Each check also checks the expiry.
        """
        with self._threads_lock:
            if self._poller is not None and self._poller.is_alive():
                return
            self._stopping.clear()
            self._poller = threading.Thread(
                target=self._run, name="securelink-rotation", daemon=True
            )
            self._poller.start()

    def stop(self, timeout: float | None = None) -> None:
        """Stop the polling thread and wait for it, and for reloads asked for by signals.

        Args:
            timeout: Seconds to wait for each thread (``None``: as long as it takes).
        """
        with self._threads_lock:
            poller, self._poller = self._poller, None
            requests = list(self._requests)
            self._stopping.set()
        if poller is not None:
            poller.join(timeout)
        for thread in requests:
            thread.join(timeout)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- signals ----------------------------------------------------------------------------

    def request_reload(self) -> None:
        """Reload in a new thread and return at once; failures are reported, not raised.

        For callers that must not block or cannot handle the exception: signal handlers,
        ``loop.add_signal_handler(signal.SIGHUP, rot.request_reload)``, an admin endpoint in an
        event loop.  A failure is logged, stored in :attr:`last_error` and passed to
        *on_error*, as for the polling thread.  :meth:`stop` waits for these threads.
        """
        thread = threading.Thread(target=self._requested, name="securelink-reload", daemon=True)
        with self._threads_lock:
            self._requests.add(thread)
        thread.start()

    def _requested(self) -> None:
        try:
            self._reload_reporting("reload requested")
        finally:
            with self._threads_lock:
                self._requests.discard(threading.current_thread())

    def install_signal_handler(self, signum: int | None = None) -> SignalHandler:
        """Reload (with :meth:`request_reload`) when the process receives *signum*.

        Python runs signal handlers in the main thread only, so call this from the main thread
        (the standard library raises ``ValueError`` elsewhere).  The handler itself only starts a
        thread: the reload never runs inside the interrupted code.  A Python handler installed
        before is called too, after the request.  In an asyncio program,
        ``loop.add_signal_handler(signal.SIGHUP, rot.request_reload)`` does the same through the
        event loop.

        Args:
            signum: The signal; ``None`` means ``SIGHUP`` (the convention for "reload your
                configuration"; it does not exist on Windows).

        Returns:
            The previous handler, to restore with ``signal.signal(signum, previous)``.

        Raises:
            ValueError: not called from the main thread.
            ConfigurationError: *signum* is ``None`` on a platform without ``SIGHUP``.
        """
        import signal

        if signum is None:
            hup = getattr(signal, "SIGHUP", None)
            if hup is None:  # pragma: no cover - Windows
                raise ConfigurationError(
                    "this platform has no SIGHUP.",
                    field="signum",
                    hint="Name another signal, or call request_reload() from your own trigger.",
                )
            signum = int(hup)
        previous: SignalHandler = signal.getsignal(signum)

        def handler(number: int, frame: FrameType | None) -> None:
            self.request_reload()
            if callable(previous):
                previous(number, frame)

        signal.signal(signum, handler)
        return previous
