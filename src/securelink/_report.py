"""Reports of failed server-side handshakes: one record each on the ``securelink`` logger.

A server's refusal of a client is explained to the client only as an alert ("its logs say why
it refused"), so the server's operator must see the explanation: securelink's socket and object
classes report each failed server-side handshake here, whichever server runs the context
(``http.server``, ``socketserver``, ``asyncio.start_server``, ``securelink.aio``).

A scanner can make hundreds of failed handshakes a second, so reports are rate-limited: in each
interval, the first few per client address (and a bounded number in all) are logged; the rest
are counted, and one summary record says how many were left out, and from where.  The summary
of an interval is logged with the first report after that interval ends, or at exit: no thread
is started for it.

``logging`` is imported on the first report, not with securelink: it costs about as much as
``import ssl`` itself, and a process whose handshakes never fail need not pay for it.
"""

from __future__ import annotations

import threading
import time

from .errors import RemoteError

TYPE_CHECKING = False
if TYPE_CHECKING:
    import logging
    from collections.abc import Callable

__all__ = ["HandshakeReporter", "report", "reporter", "said_nothing"]

#: The logger every record goes to.
LOGGER = "securelink"
#: The level of a report (logging.WARNING, without importing logging).
WARNING = 30
#: The level of a connection closed before the client said anything: a port check (a load
#: balancer's health check, ``nc -z``), not a TLS client.  (logging.DEBUG.)
DEBUG = 10


def _logger() -> logging.Logger:
    import logging

    return logging.getLogger(LOGGER)


def _who(peer: tuple[str, int] | None) -> str | None:
    return f"{peer[0]} port {peer[1]}" if peer else None


class HandshakeReporter:
    """Logs failed server-side handshakes, at most *per_address* per address per *interval*.

    Thread-safe: servers report from their accepting thread, their workers and event loops.

    Args:
        interval: The length of a rate-limiting interval, in seconds.  An interval starts with
            the first report after the previous one ended.
        per_address: How many records each client address (host, without the port) may have
            in an interval.
        total: How many records all addresses together may have in an interval (a scan from
            many addresses).
        addresses: How many addresses are counted one by one in an interval; the left-out
            reports of any more are counted together (the memory an interval takes is bounded).
        clock: A monotonic clock, in seconds (for tests).
    """

    def __init__(
        self,
        *,
        interval: float = 60.0,
        per_address: int = 5,
        total: int = 50,
        addresses: int = 1024,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.interval = interval
        self.per_address = per_address
        self.total = total
        self.addresses = addresses
        self._clock = clock
        self._lock = threading.Lock()
        self._started: float | None = None  # when the current interval started
        #: (address, is a WARNING) -> records logged in this interval: port checks logged at
        #: DEBUG do not use up the WARNINGs of an address (a load balancer's, say).
        self._logged: dict[tuple[str, bool], int] = {}
        self._logged_total = 0
        self._left_out: dict[str, int] = {}  # address -> reports left out in this interval
        self._left_out_elsewhere = 0  # left out, from addresses past the *addresses* bound
        self._atexit = False

    def report(
        self, error: BaseException, peer: tuple[str, int] | None, *, level: int = WARNING
    ) -> bool:
        """Report one failed handshake with the client at *peer* (if known).

        An exception already reported (by a socket class, then by the server that catches it)
        is not reported again.

        Returns:
            Whether a record was logged for it (``False``: already reported, left out by the
            rate limit, or the logger does not take records of *level*).
        """
        if getattr(error, "_securelink_reported", False):
            return False
        try:  # exceptions take attributes
            error._securelink_reported = True  # type: ignore[attr-defined]
        except AttributeError:
            pass
        logger = _logger()
        if not logger.isEnabledFor(level):  # silenced: nothing to count either
            return False
        address = peer[0] if peer else "an unknown address"
        with self._lock:
            summary = self._roll(self._clock())
            key = (address, level >= WARNING)
            logged = self._logged.get(key, 0)
            keep = (
                logged < self.per_address
                and self._logged_total < self.total
                and (logged or len(self._logged) < self.addresses)
            )
            if keep:
                self._logged[key] = logged + 1
                self._logged_total += 1
            else:
                if address in self._left_out or len(self._left_out) < self.addresses:
                    self._left_out[address] = self._left_out.get(address, 0) + 1
                else:
                    self._left_out_elsewhere += 1
                self._flush_at_exit()
        # Logged outside the lock: a handler may be slow, or report something itself.
        if summary is not None:
            self._log_summary(logger, *summary)
        if not keep:
            return False
        who = _who(peer)
        # One line: log files and their parsers expect a record per line.
        text = str(error).replace("\n", " ") or type(error).__name__
        extra = {"securelink_peer": peer, "securelink_error": error}
        if who is None or who in text:  # the explanation names the client already
            logger.log(level, "TLS handshake failed: %s", text, extra=extra)
        else:
            logger.log(level, "TLS handshake with %s failed: %s", who, text, extra=extra)
        return True

    def left_out(self) -> int:
        """How many reports the current interval has left out so far."""
        with self._lock:
            return sum(self._left_out.values()) + self._left_out_elsewhere

    def flush(self) -> None:
        """End the current interval now: log the summary of what it left out, if anything."""
        with self._lock:
            summary = self._take()
            self._started = None
        if summary is not None:
            self._log_summary(_logger(), *summary)

    def _roll(self, now: float) -> tuple[dict[str, int], int] | None:
        # With the lock held: start a new interval if the current one is over.
        if self._started is not None and now - self._started < self.interval:
            return None
        summary = self._take()
        self._started = now
        return summary

    def _take(self) -> tuple[dict[str, int], int] | None:
        # With the lock held: what the interval left out, and a fresh interval's counters.
        summary = (self._left_out, self._left_out_elsewhere) if self._left_out else None
        self._logged = {}
        self._logged_total = 0
        self._left_out = {}
        self._left_out_elsewhere = 0
        return summary

    def _flush_at_exit(self) -> None:
        # With the lock held.  The last interval's summary must not be lost with the process.
        if not self._atexit:
            import atexit

            atexit.register(self.flush)
            self._atexit = True

    def _log_summary(
        self, logger: logging.Logger, left_out: dict[str, int], elsewhere: int
    ) -> None:
        count = sum(left_out.values()) + elsewhere
        top = sorted(left_out.items(), key=lambda item: (-item[1], item[0]))
        parts = [f"{n} from {address}" for address, n in top[:5]]
        others = sum(n for _, n in top[5:]) + elsewhere
        if others:
            parts.append(f"{others} from other addresses")
        logger.warning(
            "%d more failed TLS %s not logged (at most %d per address, %d in all, every %g s): %s",
            count,
            "handshake was" if count == 1 else "handshakes were",
            self.per_address,
            self.total,
            self.interval,
            ", ".join(parts),
            extra={"securelink_left_out": dict(top), "securelink_left_out_count": count},
        )


#: The reporter securelink's socket and object classes use.
reporter = HandshakeReporter()


def report(error: BaseException, peer: tuple[str, int] | None, *, quiet: bool = False) -> bool:
    """Report a failed server-side handshake through :data:`reporter`.

    Args:
        error: What failed (securelink's explanation, or the error itself).
        peer: The client's address, if known.
        quiet: The client closed the connection before it said anything (a port check): a
            DEBUG record instead of a WARNING.

    Returns:
        Whether a record was logged.
    """
    return reporter.report(error, peer, level=DEBUG if quiet else WARNING)


def said_nothing(error: BaseException, obj: object) -> bool:
    """Whether *error* is a connection closed before the client sent a ClientHello.

    Such a connection is a port check (a load balancer's, a monitor's), not a TLS client, and a
    WARNING for each would drown the refusals the operator needs to see.  *obj* is the
    connection's ``SSLSocket`` or ``SSLObject`` (or ``None``), still open: a server knows the
    client's cipher suites once it has read its ClientHello.
    """
    import ssl

    if isinstance(error, RemoteError):
        closed = error.alert is None
    else:
        closed = isinstance(error, ConnectionError | ssl.SSLEOFError)
    if not closed:
        return False
    shared_ciphers = getattr(obj, "shared_ciphers", None)
    if shared_ciphers is None:
        return False
    try:
        return not shared_ciphers()
    except (ValueError, AttributeError, OSError):  # pragma: no cover - defensive
        return False
