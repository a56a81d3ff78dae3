"""securelink: secure TLS and mutual TLS connections that are easy to get right and to understand.

Build plain :class:`ssl.SSLContext` objects from typed, frozen options::

    import securelink

    ctx = securelink.client_context(securelink.ClientOptions(ca="minica.pem"))

Everything public is re-exported here; the modules behind it are private except
:mod:`securelink.errors` and :mod:`securelink.devca`.
"""

from ._context import client_context, server_context
from ._options import PKCS12, ClientAuth, ClientOptions, ServerOptions, Trust
from ._version import __version__
from .errors import (
    CertificateProblemError,
    ConfigurationError,
    KeyMismatchError,
    KeyPasswordError,
    MaterialError,
    SecureLinkError,
    SecurityWarning,
)

__all__ = [
    "PKCS12",
    "CertificateProblemError",
    "ClientAuth",
    "ClientOptions",
    "ConfigurationError",
    "KeyMismatchError",
    "KeyPasswordError",
    "MaterialError",
    "SecureLinkError",
    "SecurityWarning",
    "ServerOptions",
    "Trust",
    "__version__",
    "client_context",
    "server_context",
]
