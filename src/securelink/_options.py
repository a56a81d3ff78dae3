"""The option classes and enums: frozen values, no I/O.

Everything that can be checked without reading a file is checked here, at construction, so an
impossible combination fails where it is written rather than when the first connection is made.
"""

from __future__ import annotations

import enum
import os
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeAlias, Union

from .errors import ConfigurationError

if TYPE_CHECKING:
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes

__all__ = [
    "PKCS12",
    "CASource",
    "CertificateSource",
    "ClientAuth",
    "ClientOptions",
    "KeySource",
    "Password",
    "ServerOptions",
    "Trust",
]


class Trust(enum.Enum):
    """Well-known sets of trusted certificate authorities, for :attr:`ClientOptions.ca`."""

    #: The Mozilla-derived bundle shipped by the ``certifi`` package (the default).
    CERTIFI = "certifi"
    #: The operating system's store, as OpenSSL finds it (``ssl.SSLContext.load_default_certs``).
    #: On Linux this honours the ``SSL_CERT_FILE`` and ``SSL_CERT_DIR`` environment variables.
    SYSTEM = "system"


class ClientAuth(enum.Enum):
    """Whether a server asks for client certificates, and what it does with them.

    The Go counterparts are the ``tls.ClientAuthType`` constants of the same meaning.  Go's
    ``RequestClientCert`` and ``RequireAnyClientCert``, which accept a client certificate *without
    verifying it*, are deliberately not offered: an unverified certificate proves nothing.
    """

    #: Do not ask for a client certificate (Go: ``NoClientCert``).
    NONE = "none"
    #: Ask; verify it against ``client_ca`` if one is sent, accept clients that send none
    #: (Go: ``VerifyClientCertIfGiven``).
    VERIFY_IF_GIVEN = "verify-if-given"
    #: Require a client certificate that verifies against ``client_ca`` (mutual TLS;
    #: Go: ``RequireAndVerifyClientCert``).
    REQUIRE_AND_VERIFY = "require-and-verify"


@dataclass(frozen=True, slots=True)
class PKCS12:
    """Marks a PKCS#12 bundle (``.p12`` / ``.pfx``) used as a whole identity.

    Pass it as ``cert=`` and leave ``key`` unset: the leaf certificate, its chain and its private
    key all come from the bundle, unlocked with the options' ``password``::

        ServerOptions(cert=PKCS12("server.p12"), password="changeit")

    Args:
        source: A path to the bundle, or its bytes.
    """

    source: str | os.PathLike[str] | bytes

    def __post_init__(self) -> None:
        if not isinstance(self.source, str | os.PathLike | bytes | bytearray):
            raise ConfigurationError(
                f"PKCS12 takes a path or bytes, not {type(self.source).__name__}.",
                field="cert",
                hint="Pass the path of the .p12/.pfx file, or its contents as bytes.",
            )


#: One certificate: a path to a PEM or DER file, PEM or DER bytes, or a ``cryptography`` object.
CertificateSource: TypeAlias = Union[str, "os.PathLike[str]", bytes, "x509.Certificate"]
#: A private key: a path, PEM or DER bytes (PKCS#8, PKCS#1 or SEC1, encrypted or not), or a
#: ``cryptography`` private key object.
KeySource: TypeAlias = Union[str, "os.PathLike[str]", bytes, "CertificateIssuerPrivateKeyTypes"]
#: A password for an encrypted key or PKCS#12 bundle, or a callable that returns one.
Password: TypeAlias = str | bytes | Callable[[], str | bytes]
#: CA certificates to trust: a path to a PEM/DER file or a directory of them, PEM or DER bytes, or
#: a ``cryptography`` certificate.
CASource: TypeAlias = Union[str, "os.PathLike[str]", bytes, "x509.Certificate"]

_MINIMUM = ssl.TLSVersion.TLSv1_2
_ORDER = {
    ssl.TLSVersion.TLSv1_2: 2,
    ssl.TLSVersion.TLSv1_3: 3,
    ssl.TLSVersion.MAXIMUM_SUPPORTED: 4,
}


def _is_single(value: object) -> bool:
    # str and bytes are sequences too, but here each one is a single source.
    return not isinstance(value, Sequence) or isinstance(value, str | bytes | bytearray)


def _normalise_sources(value: object, name: str) -> tuple[object, ...]:
    if value is None:
        return ()
    items = (value,) if _is_single(value) else tuple(value)  # type: ignore[arg-type]
    if not items:
        raise ConfigurationError(
            f"{name} is an empty sequence.",
            field=name,
            hint=f"Give at least one source for {name}, or leave it unset.",
        )
    out: list[object] = []
    for item in items:
        if isinstance(item, bytearray):
            item = bytes(item)
        if isinstance(item, str) and item.lstrip().startswith("-----BEGIN"):
            raise ConfigurationError(
                f"{name} was given PEM text as a str; a str is read as a file path.",
                field=name,
                hint="Pass PEM data as bytes (for example pem_text.encode()), or pass a path.",
            )
        if isinstance(item, str) and not item:
            raise ConfigurationError(
                f"{name} was given an empty path.",
                field=name,
                hint=f"Pass the path of the {name} file.",
            )
        if isinstance(item, bytes) and not item:
            raise ConfigurationError(
                f"{name} was given empty bytes.",
                field=name,
                hint=f"Pass the {name} data (PEM or DER), or a path to it.",
            )
        out.append(item)
    return tuple(out)


def _check_versions(
    min_version: ssl.TLSVersion, max_version: ssl.TLSVersion | None
) -> ssl.TLSVersion | None:
    for name, version in (("min_version", min_version), ("max_version", max_version)):
        if version is None and name == "max_version":
            continue
        if not isinstance(version, ssl.TLSVersion):
            raise ConfigurationError(
                f"{name} must be an ssl.TLSVersion, not {version!r}.",
                field=name,
                hint="Use ssl.TLSVersion.TLSv1_2 or ssl.TLSVersion.TLSv1_3.",
            )
        if version not in _ORDER or (
            name == "min_version" and version is ssl.TLSVersion.MAXIMUM_SUPPORTED
        ):
            raise ConfigurationError(
                f"{name}={version.name} allows TLS below 1.2, which securelink does not offer:"
                " TLS 1.0 and 1.1 were deprecated by RFC 8996 in 2021.",
                field=name,
                hint="Use ssl.TLSVersion.TLSv1_2 (the default minimum) or TLSv1_3; a peer that"
                " only speaks TLS 1.0/1.1 needs upgrading.",
            )
    if max_version is not None and _ORDER[min_version] > _ORDER[max_version]:
        raise ConfigurationError(
            f"min_version={min_version.name} is above max_version={max_version.name},"
            " so no TLS version could ever be negotiated.",
            field="max_version",
            hint="Raise max_version or lower min_version.",
        )
    return max_version


def _check_alpn(alpn: object) -> tuple[str, ...]:
    if _is_single(alpn):
        raise ConfigurationError(
            f"alpn must be a sequence of protocol names, not {alpn!r}.",
            field="alpn",
            hint='Write alpn=("h2", "http/1.1"); a bare string would be read letter by letter.',
        )
    names: tuple[object, ...] = tuple(alpn)  # type: ignore[arg-type]
    for name in names:
        if not isinstance(name, str) or not name:
            raise ConfigurationError(
                f"alpn contains {name!r}; every entry must be a non-empty protocol name.",
                field="alpn",
                hint='Use registered ALPN names such as "h2" and "http/1.1".',
            )
        try:
            encoded = name.encode("ascii")
        except UnicodeEncodeError:
            encoded = b""
        if not encoded or len(encoded) > 255:
            raise ConfigurationError(
                f"alpn entry {name!r} is not an ASCII name of 1 to 255 bytes.",
                field="alpn",
                hint='Use registered ALPN names such as "h2" and "http/1.1".',
            )
    if len(set(names)) != len(names):
        raise ConfigurationError(
            f"alpn lists a protocol twice: {names!r}.",
            field="alpn",
            hint="List each protocol once, most preferred first.",
        )
    return tuple(str(name) for name in names)


def _check_identity(
    cert: tuple[object, ...], key: object, password: object, *, side: str, required: bool
) -> None:
    pkcs12 = [c for c in cert if isinstance(c, PKCS12)]
    if pkcs12 and len(cert) > 1:
        raise ConfigurationError(
            "cert mixes a PKCS12 bundle with other certificates.",
            field="cert",
            hint="A PKCS12 bundle is a whole identity: pass it alone as cert=PKCS12(...).",
        )
    if pkcs12 and key is not None:
        raise ConfigurationError(
            "key was given together with cert=PKCS12(...), which already holds the key.",
            field="key",
            hint="Leave key unset when cert is a PKCS12 bundle.",
        )
    if not cert and required:
        raise ConfigurationError(
            f"{side} needs a certificate: cert is not set.",
            field="cert",
            hint="Pass cert= and key= (for example from securelink.devca), or cert=PKCS12(...).",
        )
    if cert and not pkcs12 and key is None:
        raise ConfigurationError(
            "cert was given without key: a certificate is useless without its private key.",
            field="key",
            hint="Pass key= as well; for a file holding both, pass the same path to cert= and"
            " key=.",
        )
    if key is not None and not cert:
        raise ConfigurationError(
            "key was given without cert.",
            field="cert",
            hint="Pass the certificate (and chain) that belongs to this key as cert=.",
        )
    if password is not None and not cert:
        raise ConfigurationError(
            "password was given, but there is no key or PKCS12 bundle for it to unlock.",
            field="password",
            hint="Remove password=, or pass the encrypted key it unlocks.",
        )
    if password is not None and not (
        isinstance(password, str | bytes | bytearray) or callable(password)
    ):
        raise ConfigurationError(
            f"password must be str, bytes or a callable returning one, not"
            f" {type(password).__name__}.",
            field="password",
            hint="Pass the password as str or bytes, or a function that returns it.",
        )


def _check_keylog(keylog: object) -> None:
    if keylog is not None and not isinstance(keylog, str | os.PathLike):
        raise ConfigurationError(
            f"keylog must be a path, not {type(keylog).__name__}.",
            field="keylog",
            hint="Pass the path of the key log file, or leave keylog unset.",
        )
    if keylog == "":
        raise ConfigurationError(
            "keylog is an empty path.", field="keylog", hint="Pass a path or leave keylog unset."
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class ClientOptions:
    """How a client connects: whom it trusts and, for mutual TLS, who it is.

    Frozen and keyword-only; change a copy with :func:`dataclasses.replace`.  Build an
    :class:`ssl.SSLContext` from it with :func:`securelink.client_context`.

    Attributes:
        ca: The certificate authorities that server certificates must chain to (Go:
            ``RootCAs``).  The default, :attr:`Trust.CERTIFI`, is the ``certifi`` bundle;
            :attr:`Trust.SYSTEM` is the operating system's store.  Anything else is an explicit list
            of CAs that *replaces* the default: a path to a PEM or DER file or a directory of them,
            PEM or DER bytes, an ``x509.Certificate``, or a sequence of these.  To add a private CA
            to the public bundle, include the bundle in the sequence:
            ``ca=(Trust.CERTIFI, "corp-ca.pem")``.
        cert: The client's own certificate for mutual TLS (Go: ``Certificates``), leaf first, then
            intermediates; or a :class:`PKCS12` bundle.  ``None`` (the default) sends none.
        key: The private key of ``cert``.  Required with ``cert`` unless ``cert`` is a bundle.
        password: Unlocks an encrypted ``key`` or a :class:`PKCS12` bundle: ``str``, ``bytes`` or a
            callable returning one.  Never prompted for.
        min_version: The lowest TLS version offered (Go: ``MinVersion``).  Default TLS 1.2;
            anything lower is refused.
        max_version: The highest TLS version offered (Go: ``MaxVersion``); ``None`` means the
            highest the linked OpenSSL supports.
        alpn: Application protocols to offer, most preferred first (Go: ``NextProtos``).
        keylog: Write TLS secrets to this file (NSS key log format, mode 0600) so Wireshark can
            decrypt the traffic.  Anyone with the file can read every session: for debugging only.
            The ``SSLKEYLOGFILE`` environment variable is never read.
    """

    ca: Trust | CASource | Sequence[Trust | CASource] = Trust.CERTIFI
    cert: CertificateSource | Sequence[CertificateSource] | PKCS12 | None = None
    key: KeySource | None = None
    password: Password | None = None
    min_version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2
    max_version: ssl.TLSVersion | None = None
    alpn: Sequence[str] = ()
    keylog: str | os.PathLike[str] | None = None
    _cert: tuple[object, ...] = field(init=False, repr=False, compare=False)
    _ca: tuple[object, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_versions(self.min_version, self.max_version)
        object.__setattr__(self, "alpn", _check_alpn(self.alpn))
        if self.ca is None:
            raise ConfigurationError(
                "ca=None would trust nothing, so no server could ever be verified.",
                field="ca",
                hint="Leave ca unset for the certifi bundle, use Trust.SYSTEM, or name your CA.",
            )
        ca = _normalise_sources(self.ca, "ca")
        object.__setattr__(self, "_ca", ca)
        if not isinstance(self.ca, Trust) and not _is_single(self.ca):
            object.__setattr__(self, "ca", ca)
        cert = _normalise_sources(self.cert, "cert")
        object.__setattr__(self, "_cert", cert)
        if self.cert is not None and not _is_single(self.cert):
            object.__setattr__(self, "cert", cert)
        _check_identity(cert, self.key, self.password, side="client", required=False)
        _check_keylog(self.keylog)


@dataclass(frozen=True, kw_only=True, slots=True)
class ServerOptions:
    """How a server proves who it is and, optionally, checks who its clients are.

    Frozen and keyword-only; change a copy with :func:`dataclasses.replace`.  Build an
    :class:`ssl.SSLContext` from it with :func:`securelink.server_context`.

    Attributes:
        cert: The server's certificate (Go: ``Certificates``), leaf first, then intermediates: a
            path (PEM or DER), PEM or DER bytes, an ``x509.Certificate``, or a sequence of these; or
            a :class:`PKCS12` bundle.  Required.  It must carry a SubjectAltName: clients check
            names against the SAN only.
        key: The private key of ``cert``: a path, PEM or DER bytes (PKCS#8, PKCS#1 or SEC1,
            encrypted or not), or a ``cryptography`` private key object.  Required unless ``cert``
            is a bundle.  Key material given in memory never touches the disk in plaintext.
        password: Unlocks an encrypted ``key`` or a :class:`PKCS12` bundle: ``str``, ``bytes`` or a
            callable returning one.  Never prompted for.
        client_auth: Whether clients must present a certificate (Go: ``ClientAuth``).  Default
            :attr:`ClientAuth.NONE`.
        client_ca: The CAs that client certificates must chain to (Go: ``ClientCAs``), in the same
            forms as :attr:`ClientOptions.ca`, except that there is no default and public stores
            (:class:`Trust`) are refused: a public CA vouches for names, not for your clients.
            Required exactly when ``client_auth`` is not ``NONE``.
        min_version: The lowest TLS version accepted (Go: ``MinVersion``).  Default TLS 1.2;
            anything lower is refused.
        max_version: The highest TLS version accepted (Go: ``MaxVersion``); ``None`` means the
            highest the linked OpenSSL supports.
        alpn: Application protocols the server is willing to speak, most preferred first (Go:
            ``NextProtos``).
        keylog: Write TLS secrets to this file (mode 0600), for debugging with Wireshark only.
    """

    cert: CertificateSource | Sequence[CertificateSource] | PKCS12
    key: KeySource | None = None
    password: Password | None = None
    client_auth: ClientAuth = ClientAuth.NONE
    client_ca: CASource | Sequence[CASource] | None = None
    min_version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2
    max_version: ssl.TLSVersion | None = None
    alpn: Sequence[str] = ()
    keylog: str | os.PathLike[str] | None = None
    _cert: tuple[object, ...] = field(init=False, repr=False, compare=False)
    _client_ca: tuple[object, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_versions(self.min_version, self.max_version)
        object.__setattr__(self, "alpn", _check_alpn(self.alpn))
        if not isinstance(self.client_auth, ClientAuth):
            raise ConfigurationError(
                f"client_auth must be a securelink.ClientAuth member, not {self.client_auth!r}.",
                field="client_auth",
                hint="Use ClientAuth.NONE, ClientAuth.VERIFY_IF_GIVEN or"
                " ClientAuth.REQUIRE_AND_VERIFY.",
            )
        cert = _normalise_sources(self.cert, "cert")
        object.__setattr__(self, "_cert", cert)
        if self.cert is not None and not _is_single(self.cert):
            object.__setattr__(self, "cert", cert)
        _check_identity(cert, self.key, self.password, side="a server", required=True)
        client_ca = _normalise_sources(self.client_ca, "client_ca")
        if any(isinstance(item, Trust) for item in client_ca):
            raise ConfigurationError(
                "client_ca names a public trust store; any certificate issued to anyone by a"
                " public CA would then be accepted as a client identity.",
                field="client_ca",
                hint="Pass the private CA that issues your clients' certificates.",
            )
        object.__setattr__(self, "_client_ca", client_ca)
        if self.client_ca is not None and not _is_single(self.client_ca):
            object.__setattr__(self, "client_ca", client_ca)
        if self.client_auth is not ClientAuth.NONE and not client_ca:
            raise ConfigurationError(
                f"client_auth={self.client_auth.name} needs client_ca: without it no client"
                " certificate could ever be verified.",
                field="client_ca",
                hint="Pass client_ca= with the CA that issues your clients' certificates.",
            )
        if self.client_auth is ClientAuth.NONE and client_ca:
            raise ConfigurationError(
                "client_ca was given but client_auth is NONE, so it would never be used.",
                field="client_auth",
                hint="Set client_auth=ClientAuth.REQUIRE_AND_VERIFY for mutual TLS, or drop"
                " client_ca.",
            )
        _check_keylog(self.keylog)
