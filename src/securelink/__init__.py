"""securelink: secure TLS and mutual TLS connections that are easy to get right and to understand.

Build plain :class:`ssl.SSLContext` objects from typed, frozen options::

    import securelink

    ctx = securelink.client_context(securelink.ClientOptions(ca="minica.pem"))

Everything public is re-exported here; the modules behind it are private except
:mod:`securelink.errors`, :mod:`securelink.aio` (asyncio helpers) and :mod:`securelink.devca`.
What building contexts and connecting needs is imported with the package; :func:`inspect` and its
records, :func:`peer_identity` and :class:`RotatingServerContext` are imported on first use
(PEP 562), so a program that never uses them does not pay for them.
"""

from ._connect import connect, wrap_client, wrap_server
from ._context import client_context, server_context
from ._hooks import ConnectionInfo, HandshakeMessage
from ._material import MAX_INPUT_SIZE
from ._options import (
    PKCS12,
    ClientAuth,
    ClientOptions,
    Identity,
    Profile,
    ServerOptions,
    Trust,
    UnknownNames,
)
from ._summary import CertificateSummary
from ._translate import explain, translate_errors
from ._version import __version__
from .errors import (
    CertificateExpiredError,
    CertificateNotYetValidError,
    CertificateProblemError,
    CertificateRejectedError,
    CertificateVerificationError,
    ClientCertificateRequiredError,
    ConfigurationError,
    ConnectionRejectedError,
    FrozenInstanceError,
    HandshakeError,
    HandshakeTimeoutError,
    HostnameMismatchError,
    IdentityUnavailableError,
    InputTooLargeError,
    KeyMismatchError,
    KeyPasswordError,
    MaterialError,
    NothingListeningError,
    NotTLSError,
    ProtocolMismatchError,
    RemoteError,
    SecureLinkError,
    SecurityWarning,
    UnknownAuthorityError,
)

# typing is not imported at run time (see _options); type checkers and IDEs see these names as
# ordinary imports, while at run time __getattr__ below imports them on first use.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from ._identity import PeerIdentity, peer_identity
    from ._inspect import (
        CertificateInfo,
        ChainInfo,
        CRLInfo,
        CSRInfo,
        Finding,
        Inspection,
        OtherObject,
        PrivateKeyInfo,
        PublicKeyInfo,
        inspect,
    )
    from ._rotation import RotatingServerContext

#: The public names imported on first use, and the private module of each: together they cost
#: about a quarter of what securelink adds to ``import ssl``, and the common path (options,
#: contexts, connecting, explaining) needs none of them.
_LAZY = {
    "CertificateInfo": "_inspect",
    "ChainInfo": "_inspect",
    "CRLInfo": "_inspect",
    "CSRInfo": "_inspect",
    "Finding": "_inspect",
    "Inspection": "_inspect",
    "OtherObject": "_inspect",
    "PrivateKeyInfo": "_inspect",
    "PublicKeyInfo": "_inspect",
    "inspect": "_inspect",
    "PeerIdentity": "_identity",
    "peer_identity": "_identity",
    "RotatingServerContext": "_rotation",
}

if not TYPE_CHECKING:  # mypy would otherwise accept any misspelt securelink.<name>

    def __getattr__(name: str) -> object:
        """Import a lazily exported name on first use (PEP 562), then keep it as a global."""
        module = _LAZY.get(name)
        if module is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        import importlib  # not loaded at start-up; only the first lazy use pays for it

        value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
        globals()[name] = value  # later look-ups are plain attribute reads
        return value

    def __dir__() -> list[str]:
        """List the lazily exported names too, as if they had been imported."""
        return sorted({*globals(), *_LAZY})


__all__ = [
    "MAX_INPUT_SIZE",
    "PKCS12",
    "CRLInfo",
    "CSRInfo",
    "CertificateExpiredError",
    "CertificateInfo",
    "CertificateNotYetValidError",
    "CertificateProblemError",
    "CertificateRejectedError",
    "CertificateSummary",
    "CertificateVerificationError",
    "ChainInfo",
    "ClientAuth",
    "ClientCertificateRequiredError",
    "ClientOptions",
    "ConfigurationError",
    "ConnectionInfo",
    "ConnectionRejectedError",
    "Finding",
    "FrozenInstanceError",
    "HandshakeError",
    "HandshakeMessage",
    "HandshakeTimeoutError",
    "HostnameMismatchError",
    "Identity",
    "IdentityUnavailableError",
    "InputTooLargeError",
    "Inspection",
    "KeyMismatchError",
    "KeyPasswordError",
    "MaterialError",
    "NotTLSError",
    "NothingListeningError",
    "OtherObject",
    "PeerIdentity",
    "PrivateKeyInfo",
    "Profile",
    "ProtocolMismatchError",
    "PublicKeyInfo",
    "RemoteError",
    "RotatingServerContext",
    "SecureLinkError",
    "SecurityWarning",
    "ServerOptions",
    "Trust",
    "UnknownAuthorityError",
    "UnknownNames",
    "__version__",
    "client_context",
    "connect",
    "explain",
    "inspect",
    "peer_identity",
    "server_context",
    "translate_errors",
    "wrap_client",
    "wrap_server",
]
