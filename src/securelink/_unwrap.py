"""Find the TLS or connection error inside an exception that wraps it.

HTTP client libraries wrap the ``ssl`` or socket error that ended a connection in exceptions of
their own, and :func:`securelink.explain` needs the error inside.  The libraries are not
imported here (nor anywhere in securelink): the walk is generic, by the standard exception links
and by attribute names, so it also serves libraries not named below.  From each exception it
follows, in this order:

- the attributes ``certificate_error`` and ``os_error`` (aiohttp's ``ClientConnectorError``,
  ``ClientConnectorSSLError`` and ``ClientConnectorCertificateError``), ``reason``
  (:class:`urllib.error.URLError`, urllib3's ``MaxRetryError``) and ``original_error``
  (urllib3's ``ProxyError``), when they hold an exception;
- ``__cause__`` (``raise ... from``: httpx's ``ConnectError`` around httpcore's);
- the exceptions among ``args`` (httpcore, urllib3's ``SSLError``, requests' exceptions, whose
  ``args[0]`` is urllib3's ``MaxRetryError``);
- the ``exceptions`` of an exception group;
- ``__context__``, except from Python's built-in exception classes: a ``KeyError`` raised while
  a TLS error was being handled is a new error, not a wrapper around it.

Each exception is visited once (the links may form cycles), down to :data:`MAX_DEPTH` links.

What counts as the error inside (:func:`is_failure`): an :class:`ssl.SSLError`, a
:class:`ConnectionError`, a :class:`TimeoutError`, a name resolution error, or a plain
:class:`OSError` of the network (its class is ``OSError`` itself, or its ``errno`` is a network
one).  One raised by Python itself ends the walk; a library's subclass of one of them (aiohttp's
are ``ssl.SSLError`` and ``OSError`` subclasses that carry the real error as an attribute), and
a bare ``OSError`` without an ``errno`` (what asyncio and anyio raise from the errors of each
address they tried) are looked inside first, and are the answer only when nothing better is
inside.  A securelink error
met on the way is an explanation made already, and is returned as it is.
"""

from __future__ import annotations

import errno
import socket
import ssl

from .errors import SecureLinkError

__all__ = ["MAX_DEPTH", "find_failure", "is_failure"]

#: How many links deep the walk goes (the libraries above need at most four).
MAX_DEPTH = 12
#: The attributes followed, in order, before the standard links.
ATTRIBUTES = ("certificate_error", "os_error", "reason", "original_error")

# errno values that only the network gives: an OSError carrying one is a connection failure.
_NETWORK_ERRNOS = frozenset(
    getattr(errno, name)
    for name in (
        "ECONNREFUSED",
        "ECONNRESET",
        "ECONNABORTED",
        "EPIPE",
        "ETIMEDOUT",
        "EHOSTUNREACH",
        "ENETUNREACH",
        "ENETDOWN",
        "ENETRESET",
        "EHOSTDOWN",
        "EADDRNOTAVAIL",
        "ENOTCONN",
        "ESHUTDOWN",
    )
    if hasattr(errno, name)
)
# The modules whose exception classes are Python's own: an error of one of these classes was
# raised by the ssl module or the socket layer, and nothing more precise is inside it.
_STDLIB_MODULES = frozenset({"builtins", "ssl", "socket"})


def is_failure(exc: BaseException) -> bool:
    """Whether *exc* is a TLS or connection error (of any class, Python's or a library's)."""
    if isinstance(exc, ssl.SSLError | ConnectionError | TimeoutError | socket.gaierror):
        return True
    if isinstance(exc, socket.herror):
        return True
    return isinstance(exc, OSError) and (type(exc) is OSError or exc.errno in _NETWORK_ERRNOS)


def find_failure(exc: BaseException) -> BaseException | None:
    """Return the TLS or connection error that *exc* is or holds, or ``None``.

    The result is a securelink error found on the way (an explanation made already), an error
    of Python's own classes (the innermost one, as the ssl module or the socket raised it), or,
    when nothing is inside, a library's subclass of one of them.  ``None`` when *exc* holds no
    TLS or connection error at all (a ``KeyError``, an HTTP status error).
    """
    seen: set[int] = set()

    def visit(current: BaseException, depth: int) -> BaseException | None:
        if id(current) in seen or depth > MAX_DEPTH:
            return None
        seen.add(id(current))
        if isinstance(current, SecureLinkError):
            return current
        failure = is_failure(current)
        if failure and _precise(current):
            return current
        for inner in _links(current):
            found = visit(inner, depth + 1)
            if found is not None:
                return found
        return current if failure else None

    return visit(exc, 0)


def _precise(exc: BaseException) -> bool:
    """Whether *exc* is an error as the ssl module or the socket layer raised it.

    A library's subclass is not (it may carry the real error inside), nor a bare ``OSError``
    without an ``errno``: asyncio and anyio raise one ("Multiple exceptions", "All connection
    attempts failed") ``from`` the errors of the addresses they tried.
    """
    if type(exc).__module__ not in _STDLIB_MODULES:
        return False
    return not (type(exc) is OSError and exc.errno is None)


def _links(exc: BaseException) -> list[BaseException]:
    """The exceptions *exc* holds, in the order they are followed (see the module docstring)."""
    out: list[BaseException] = []
    for name in ATTRIBUTES:
        try:
            value = getattr(exc, name, None)
        except Exception:  # a library's property may fail on a half-built error
            value = None
        if isinstance(value, BaseException):
            out.append(value)
    if exc.__cause__ is not None:
        out.append(exc.__cause__)
    out.extend(a for a in exc.args if isinstance(a, BaseException))
    if isinstance(exc, BaseExceptionGroup):
        out.extend(exc.exceptions)
    if exc.__context__ is not None and type(exc).__module__ != "builtins":
        out.append(exc.__context__)
    return out
