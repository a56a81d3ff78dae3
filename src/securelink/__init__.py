"""securelink: secure TLS and mutual TLS connections that are easy to get right and to understand.

Build plain :class:`ssl.SSLContext` objects from typed, frozen options::

    import securelink

    ctx = securelink.client_context(securelink.ClientOptions(ca="minica.pem"))

Everything public is re-exported here; the modules behind it are private except
:mod:`securelink.errors`, :mod:`securelink.aio` (asyncio helpers) and :mod:`securelink.devca`.
"""

from ._context import client_context, server_context
from ._hooks import ConnectionInfo, HandshakeMessage
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
from ._material import MAX_INPUT_SIZE
from ._options import PKCS12, ClientAuth, ClientOptions, Identity, Profile, ServerOptions, Trust
from ._rotation import RotatingServerContext
from ._sockets import connect, wrap_client, wrap_server
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
