"""The option classes and enums: frozen values, no I/O.

Everything that can be checked without reading a file is checked here, at construction, so an
impossible combination fails where it is written rather than when the first connection is made.
"""

from __future__ import annotations

import enum
import os
import ssl
import sys
from collections.abc import Sequence

from ._compat import dsa_key_classes, tracing_available
from ._frozen import Frozen
from ._x509 import looks_like_pkcs12
from .errors import ConfigurationError, MaterialError

# typing is not imported at run time: it would cost a tenth of `import ssl` for annotations only.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any, Self, TypeAlias

    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes

    from ._hooks import ConnectionInfo, HandshakeMessage

    #: One certificate: a path to a PEM or DER file, PEM or DER bytes, or a ``cryptography``
    #: object.
    CertificateSource: TypeAlias = str | os.PathLike[str] | bytes | x509.Certificate
    #: A private key: a path, PEM or DER bytes (PKCS#8, PKCS#1 or SEC1, encrypted or not), or a
    #: ``cryptography`` private key object.
    KeySource: TypeAlias = str | os.PathLike[str] | bytes | CertificateIssuerPrivateKeyTypes
    #: A password for an encrypted key or PKCS#12 bundle, or a callable that returns one.
    Password: TypeAlias = str | bytes | Callable[[], str | bytes]
    #: CA certificates to trust: a path to a PEM/DER file or a directory of them, PEM or DER
    #: bytes, or a ``cryptography`` certificate.
    CASource: TypeAlias = str | os.PathLike[str] | bytes | x509.Certificate

__all__ = [
    "PKCS12",
    "ClientAuth",
    "ClientOptions",
    "Identity",
    "Profile",
    "ServerOptions",
    "Trust",
    "UnknownNames",
]


class Trust(enum.Enum):
    """Well-known sets of trusted certificate authorities, for :attr:`ClientOptions.ca`."""

    #: The Mozilla-derived bundle shipped by the ``certifi`` package (the default).
    CERTIFI = "certifi"
    #: The operating system's store, as OpenSSL finds it (``ssl.SSLContext.load_default_certs``).
    #: On Linux this honours the ``SSL_CERT_FILE`` and ``SSL_CERT_DIR`` environment variables.
    SYSTEM = "system"


class Profile(enum.Enum):
    """Mozilla's server configuration profiles (https://wiki.mozilla.org/Security/Server_Side_TLS)."""

    #: TLS 1.2 and 1.3, AEAD suites with forward secrecy: for servers that serve the general
    #: public and older clients (the default).
    INTERMEDIATE = "intermediate"
    #: TLS 1.3 only: for services whose clients are all current.
    MODERN = "modern"


class ClientAuth(enum.Enum):
    """Whether a server asks for client certificates, and what it does with them.

    The Go counterparts are the ``tls.ClientAuthType`` constants of the same meaning.  Go's
    ``RequestClientCert`` and ``RequireAnyClientCert``, which accept a client certificate *without
    verifying it*, are deliberately not offered: an unverified certificate proves nothing.
    """

    #: Do not ask for a client certificate (Go's ``NoClientCert``).
    NONE = "none"
    #: Ask; verify it against ``client_ca`` if one is sent, accept clients that send none
    #: (Go's ``VerifyClientCertIfGiven``).
    VERIFY_IF_GIVEN = "verify-if-given"
    #: Require a client certificate that verifies against ``client_ca`` (mutual TLS;
    #: Go's ``RequireAndVerifyClientCert``).
    REQUIRE_AND_VERIFY = "require-and-verify"


class UnknownNames(enum.Enum):
    """What a server does for a client that asks for a name not in ``certificates_by_name``.

    The value of :attr:`ServerOptions.unknown_names`.  Clients that send no name (no SNI)
    always get the ``cert`` certificate, whatever this says.
    """

    #: Serve the ``cert`` certificate (the default); the client then checks it against the name
    #: it asked for, as with any server.
    DEFAULT = "default"
    #: Refuse the handshake with an "unrecognized name" alert; the server side gets
    #: :class:`~securelink.ConnectionRejectedError` with ``hook == "unknown_names"``.
    REJECT = "reject"


class PKCS12(Frozen):
    """Marks a PKCS#12 bundle (``.p12`` / ``.pfx``) used as a whole identity.

    Pass it as ``cert=`` and leave ``key`` unset: the leaf certificate, its chain and its private
    key all come from the bundle, unlocked with the options' ``password``::

        ServerOptions(cert=PKCS12("server.p12"), password="changeit")

    Args:
        source: A path to the bundle, or its bytes.

    Attributes:
        source: The path or bytes given.
    """

    __slots__ = ("source",)
    _fields = ("source",)
    _hidden = frozenset({"source"})
    source: str | os.PathLike[str] | bytes

    def __init__(self, source: str | os.PathLike[str] | bytes) -> None:
        if isinstance(source, bytearray):
            source = bytes(source)
        if not isinstance(source, str | os.PathLike | bytes) or not source:
            raise ConfigurationError(
                f"PKCS12 takes a path or bytes, not {source!r:.40}.",
                field="cert",
                hint="Pass the path of the .p12/.pfx file, or its contents as bytes.",
            )
        self._set("source", source)


class Identity(Frozen):
    """A certificate (with its chain) and key, for :attr:`ServerOptions.certificates_by_name`.

    The same forms as :attr:`ServerOptions.cert`, ``key`` and ``password``; a :class:`PKCS12`
    bundle as ``cert`` stands alone.

    Attributes:
        cert: The certificate, leaf first, then intermediates; or a :class:`PKCS12` bundle.
        key: Its private key (unset for a bundle).
        password: Unlocks an encrypted key or bundle.
    """

    __slots__ = ("_cert", "cert", "key", "password")
    _fields = ("cert", "key", "password")
    _compare = ("_cert", "key", "password")
    _hidden = frozenset({"cert", "key", "password"})

    cert: CertificateSource | tuple[CertificateSource, ...] | PKCS12
    key: KeySource | None
    password: Password | None
    _cert: tuple[object, ...]

    def __init__(
        self,
        *,
        cert: CertificateSource | Sequence[CertificateSource] | PKCS12,
        key: KeySource | None = None,
        password: Password | None = None,
    ) -> None:
        cert_sources = _normalise_sources(cert, "cert")
        key = _check_key(key)  # type: ignore[assignment]
        _check_identity(cert_sources, key, password, side="an identity", required=True)
        self._set("_cert", cert_sources)
        self._set("cert", cert if _is_single(cert) else cert_sources)
        self._set("key", key)
        self._set("password", password)


def _check_server_names(mapping: object) -> tuple[tuple[str, Identity], ...]:
    if mapping is None:
        return ()
    items = getattr(mapping, "items", None)
    if items is None:
        raise ConfigurationError(
            f"certificates_by_name must be a mapping of server names to Identity, not"
            f" {type(mapping).__name__}.",
            field="certificates_by_name",
            hint='Write certificates_by_name={"api.example.com": Identity(cert=..., key=...)}.',
        )
    out = []
    for name, identity in items():
        if not isinstance(name, str) or not name or name != name.strip().lower():
            raise ConfigurationError(
                f"certificates_by_name has the key {name!r}; names must be non-empty lower-case"
                " DNS names.",
                field="certificates_by_name",
                hint="Write names in lower case, like api.example.com or *.example.com.",
            )
        if "*" in name and (not name.startswith("*.") or "*" in name[2:] or "." not in name[2:]):
            raise ConfigurationError(
                f"certificates_by_name has the pattern {name!r}; a wildcard may only be the whole"
                " first label, as in *.example.com.",
                field="certificates_by_name",
                hint="Use *.example.com (it matches a.example.com, not a.b.example.com).",
            )
        if not isinstance(identity, Identity):
            raise ConfigurationError(
                f"certificates_by_name[{name!r}] must be a securelink.Identity, not"
                f" {type(identity).__name__}.",
                field="certificates_by_name",
                hint="Wrap the certificate and key: Identity(cert=..., key=...).",
            )
        out.append((name, identity))
    return tuple(sorted(out, key=lambda item: item[0]))


def _check_patterns(name: str, patterns: object) -> tuple[str, ...]:
    if patterns is None:
        return ()
    if _is_single(patterns):
        raise ConfigurationError(
            f"{name} must be a sequence, not {patterns!r}.",
            field=name,
            hint=f'Write {name}=("...",); a bare string would be read letter by letter.',
        )
    values: tuple[object, ...] = tuple(patterns)  # type: ignore[arg-type]
    strings = tuple(v for v in values if isinstance(v, str) and v)
    if not strings or len(strings) != len(values):
        raise ConfigurationError(
            f"{name} must list at least one non-empty string.",
            field=name,
            hint=f"Leave {name} unset to allow every verified peer.",
        )
    return strings


def _check_pins(pins: object) -> tuple[str, ...]:
    values = _check_patterns("pin_public_keys", pins)
    out = []
    for pin in values:
        text = pin.strip()
        if text.startswith("sha256/"):
            import base64
            import binascii

            try:
                raw = base64.b64decode(text[7:], validate=True)
            except binascii.Error:
                raw = b""
        else:
            try:
                raw = bytes.fromhex(text.replace(":", ""))
            except ValueError:
                raw = b""
        if len(raw) != 32:
            raise ConfigurationError(
                f"pin_public_keys has {pin!r}, which is not a SHA-256 of a public key.",
                field="pin_public_keys",
                hint="Give the SHA-256 of the SubjectPublicKeyInfo as 64 hex digits or as"
                " sha256/<base64> (HPKP form); `securelink inspect` shows it as 'key SHA-256'.",
            )
        out.append(raw.hex())
    return tuple(out)


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
        _check_source_type(item, name)
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


#: What each source field accepts, in words, for the error that names a value of another type.
_SOURCE_TYPES = {
    "cert": "a path (str or os.PathLike), PEM or DER bytes, a cryptography x509.Certificate,"
    " a sequence of these (leaf first), or a securelink.PKCS12 bundle",
    "ca": "a securelink.Trust member, a path (str or os.PathLike) to a file or directory, PEM"
    " or DER bytes, a cryptography x509.Certificate, or a sequence of these",
    "client_ca": "a path (str or os.PathLike) to a file or directory, PEM or DER bytes, a"
    " cryptography x509.Certificate, or a sequence of these",
    "key": "a path (str or os.PathLike), PEM or DER bytes, or a cryptography private key object",
}


_SOURCE_EXAMPLES = {
    "cert": 'For example cert="server.pem", key="server.key" (files, as securelink.devca or'
    " minica writes them).",
    "ca": 'For example ca="ca.pem"; leave ca unset to trust the certifi bundle.',
    "client_ca": 'For example client_ca="clients-ca.pem", the CA that issues your clients\''
    " certificates.",
    "key": 'For example key="server.key", or a private key object made with cryptography.',
}


def _is_certificate(value: object) -> bool:
    # Only cryptography makes certificate objects: if it is not imported, this is none of them
    # (and importing it here would make every ClientOptions() pay for it).
    x509 = sys.modules.get("cryptography.x509")
    return x509 is not None and isinstance(value, x509.Certificate)


def _is_private_key(value: object) -> bool:
    if "cryptography" not in sys.modules:
        return False  # as for certificates: no key object exists without cryptography
    from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

    kinds = (
        rsa.RSAPrivateKey,
        ec.EllipticCurvePrivateKey,
        ed25519.Ed25519PrivateKey,
        ed448.Ed448PrivateKey,
        dsa_key_classes()[0],  # accepted here so that the loader can say why it is refused
    )
    return isinstance(value, kinds)


def _wrong_type(name: str, value: object, several: bool) -> ConfigurationError:
    if isinstance(value, set | frozenset) and several:
        hint = f"Pass several sources for {name} as a list or tuple (the order matters)."
    elif isinstance(value, str | bytes):
        hint = f"Pass {name} as one value, or a list or tuple of them."
    else:
        hint = _SOURCE_EXAMPLES[name]
    return ConfigurationError(
        f"{name} must be {_SOURCE_TYPES[name]}, not {type(value).__name__} ({value!r:.40}).",
        field=name,
        hint=hint,
    )


def _check_source_type(item: object, name: str) -> None:
    if isinstance(item, str | os.PathLike | bytes) or _is_certificate(item):
        return
    if (name == "cert" and isinstance(item, PKCS12)) or (
        name in ("ca", "client_ca") and isinstance(item, Trust)
    ):
        return  # client_ca=Trust gets its own explanation, once the sources are known
    raise _wrong_type(name, item, several=name != "key")


def _check_key(key: object) -> object:
    """Check the type of a ``key`` argument; return it with a bytearray made bytes."""
    if key is None or isinstance(key, str | os.PathLike | bytes) or _is_private_key(key):
        return key
    if isinstance(key, bytearray):
        return bytes(key)
    raise _wrong_type("key", key, several=False)


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


def _profile_versions(
    profile: Profile, min_version: ssl.TLSVersion | None, max_version: ssl.TLSVersion | None
) -> ssl.TLSVersion:
    """Return the minimum version in force: *min_version* if given, else the profile's.

    A version given explicitly that the profile cannot honour fails here rather than being
    overridden: silently serving TLS 1.3 only to someone who asked for TLS 1.2 would refuse
    the very clients they meant to admit.
    """
    if profile is not Profile.MODERN:
        return ssl.TLSVersion.TLSv1_2 if min_version is None else min_version
    for name, version in (("min_version", min_version), ("max_version", max_version)):
        # Versions that are not TLS versions, or below TLS 1.2, are left to _check_versions.
        if isinstance(version, ssl.TLSVersion) and _ORDER.get(version, 3) < 3:
            raise ConfigurationError(
                f"profile=MODERN is TLS 1.3 only, but {name}={version.name} was given"
                " explicitly; securelink does not override a version you chose.",
                field="profile",
                hint=f"Drop {name} (MODERN means TLS 1.3), or keep {name} and use"
                " Profile.INTERMEDIATE.",
            )
    return ssl.TLSVersion.TLSv1_3 if min_version is None else min_version  # Mozilla "modern"


def _unknown_names_member(value: object) -> str:
    """Name the :class:`UnknownNames` member a wrong ``unknown_names`` value meant."""
    if isinstance(value, str) and value in ("default", "reject"):
        return f"UnknownNames.{value.upper()}"
    return "UnknownNames.DEFAULT or UnknownNames.REJECT"


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
                f"alpn contains {name!r:.40} ({type(name).__name__}); every entry must be a"
                " non-empty str naming a protocol.",
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
    if cert and not pkcs12 and key is None and not _maybe_pkcs12(cert):
        raise ConfigurationError(
            "cert was given without key: a certificate is useless without its private key.",
            field="key",
            hint="Pass key= as well; for a file holding both, pass the same path to cert= and"
            " key=; for a PKCS#12 bundle (.p12/.pfx), pass cert=securelink.PKCS12(path) with"
            " password=.",
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


def _maybe_pkcs12(cert: tuple[object, ...]) -> bool:
    """Whether a lone ``cert`` given without ``key`` is, or may be, a PKCS#12 bundle.

    PKCS#12 bytes are recognised here and refused with the way to pass them.  A path named
    .p12/.pfx can only be told apart by reading it, which construction never does: it is left
    to the context build, where the loader names what the file holds and how to pass it (and
    reports the missing key if it holds a plain certificate after all).
    """
    if len(cert) != 1:
        return False
    source = cert[0]
    if isinstance(source, bytes):
        if looks_like_pkcs12(source):
            raise MaterialError(
                "the in-memory certificate holds a PKCS#12 bundle in DER form, not a certificate.",
                source="the in-memory certificate",
                found="PKCS#12",
                hint="A PKCS#12 bundle holds a whole identity: pass"
                " cert=securelink.PKCS12(data) with password=, and leave key unset.",
            )
        return False
    return isinstance(source, str | os.PathLike) and os.fspath(source).lower().endswith(
        (".p12", ".pfx")
    )


def _check_hook(name: str, hook: object) -> None:
    if hook is not None and not callable(hook):
        raise ConfigurationError(
            f"{name} must be a callable, not {type(hook).__name__}.",
            field=name,
            hint=f"Pass a function for {name}, or leave it unset.",
        )
    # Every CPython 3.11-3.13 has the private callback, hence no coverage of the refusal.
    if name == "trace" and hook is not None and not tracing_available():  # pragma: no cover
        raise ConfigurationError(
            "trace is not available on this Python: it relies on CPython's private"
            " SSLContext._msg_callback, which this interpreter lacks.",
            field="trace",
            hint="Leave trace unset, or trace with `openssl s_client -msg` instead.",
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


class ClientOptions(Frozen):
    """How a client connects: whom it trusts and, for mutual TLS, who it is.

    Frozen and keyword-only; make a changed copy with :meth:`replace` (or :func:`copy.replace`
    on Python 3.13+).  Build an
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
            The ``SSLKEYLOGFILE`` environment variable is never read.  A link, or anything but
            a regular file, is refused, and an existing file's mode is never changed (see
            :doc:`/production`).
        verify_connection: Called with a :class:`~securelink.ConnectionInfo` after the server's
            chain has been verified (Go: ``VerifyConnection``).  Raise to reject the connection:
            it is closed and :class:`~securelink.ConnectionRejectedError` is raised, naming the
            reason.  For pinning, allow-lists of names or SPIFFE IDs, and logging.
        trace: Called with each :class:`~securelink.HandshakeMessage` sent and received, in
            order.  For debugging and teaching: it slows every TLS record down.
        pin_public_keys: Accept only servers whose certificate's public key has one of these
            SHA-256 digests (of the SubjectPublicKeyInfo; 64 hex digits or ``sha256/<base64>``),
            in addition to normal verification.  Keep a backup pin for the next key, or a
            renewal with a new key locks the client out.  Stored as lower-case hex.
        diagnose: Allow a diagnostic handshake to explain an ambiguous failure (default
            ``True``): one extra handshake to the server's address, remembered per server for
            30 seconds and bounded by the caller's timeout (see :doc:`/explain`).  ``False``
            opens no connection the application did not ask for; the explanation then says
            what it could not tell.
    """

    __slots__ = (
        "_ca",
        "_cert",
        "alpn",
        "ca",
        "cert",
        "diagnose",
        "key",
        "keylog",
        "max_version",
        "min_version",
        "password",
        "pin_public_keys",
        "trace",
        "verify_connection",
    )
    _fields = (
        "ca",
        "cert",
        "key",
        "password",
        "min_version",
        "max_version",
        "alpn",
        "keylog",
        "verify_connection",
        "trace",
        "pin_public_keys",
        "diagnose",
    )
    _compare = (
        "_ca",
        "_cert",
        "key",
        "password",
        "min_version",
        "max_version",
        "alpn",
        "keylog",
        "verify_connection",
        "trace",
        "pin_public_keys",
        "diagnose",
    )
    _hidden = frozenset({"cert", "key", "password"})

    ca: Trust | CASource | tuple[Trust | CASource, ...]
    cert: CertificateSource | tuple[CertificateSource, ...] | PKCS12 | None
    key: KeySource | None
    password: Password | None
    min_version: ssl.TLSVersion
    max_version: ssl.TLSVersion | None
    alpn: tuple[str, ...]
    keylog: str | os.PathLike[str] | None
    verify_connection: Callable[[ConnectionInfo], None] | None
    trace: Callable[[HandshakeMessage], None] | None
    pin_public_keys: tuple[str, ...]
    diagnose: bool
    _ca: tuple[object, ...]
    _cert: tuple[object, ...]

    def __init__(
        self,
        *,
        ca: Trust | CASource | Sequence[Trust | CASource] = Trust.CERTIFI,
        cert: CertificateSource | Sequence[CertificateSource] | PKCS12 | None = None,
        key: KeySource | None = None,
        password: Password | None = None,
        min_version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2,
        max_version: ssl.TLSVersion | None = None,
        alpn: Sequence[str] = (),
        keylog: str | os.PathLike[str] | None = None,
        verify_connection: Callable[[ConnectionInfo], None] | None = None,
        trace: Callable[[HandshakeMessage], None] | None = None,
        pin_public_keys: Sequence[str] = (),
        diagnose: bool = True,
    ) -> None:
        if not isinstance(diagnose, bool):
            raise ConfigurationError(
                f"diagnose must be True or False, not {type(diagnose).__name__}.",
                field="diagnose",
                hint="Pass diagnose=False to turn diagnostic handshakes off, or leave it unset.",
            )
        self._set("diagnose", diagnose)
        _check_versions(min_version, max_version)
        self._set("min_version", min_version)
        self._set("max_version", max_version)
        self._set("alpn", _check_alpn(alpn))
        self._set("pin_public_keys", _check_pins(pin_public_keys) if pin_public_keys else ())
        _check_hook("verify_connection", verify_connection)
        self._set("verify_connection", verify_connection)
        _check_hook("trace", trace)
        self._set("trace", trace)
        if ca is None:
            raise ConfigurationError(
                "ca=None would trust nothing, so no server could ever be verified.",
                field="ca",
                hint="Leave ca unset for the certifi bundle, use Trust.SYSTEM, or name your CA.",
            )
        ca_sources = _normalise_sources(ca, "ca")
        self._set("_ca", ca_sources)
        self._set("ca", ca if isinstance(ca, Trust) or _is_single(ca) else ca_sources)
        cert_sources = _normalise_sources(cert, "cert")
        self._set("_cert", cert_sources)
        self._set("cert", cert if cert is None or _is_single(cert) else cert_sources)
        key = _check_key(key)  # type: ignore[assignment]
        _check_identity(cert_sources, key, password, side="client", required=False)
        self._set("key", key)
        self._set("password", password)
        _check_keylog(keylog)
        self._set("keylog", keylog)


class ServerOptions(Frozen):
    """How a server proves who it is and, optionally, checks who its clients are.

    Frozen and keyword-only; make a changed copy with :meth:`replace` (or :func:`copy.replace`
    on Python 3.13+).  Build an
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
        min_version: The lowest TLS version accepted (Go: ``MinVersion``).  Not given (or
            ``None``), it is the profile's: TLS 1.2, or TLS 1.3 with :attr:`Profile.MODERN`;
            anything below TLS 1.2 is refused.  The attribute holds the version in force.
        max_version: The highest TLS version accepted (Go: ``MaxVersion``); ``None`` means the
            highest the linked OpenSSL supports.
        alpn: Application protocols the server is willing to speak, most preferred first (Go:
            ``NextProtos``).
        keylog: Write TLS secrets to this file (mode 0600), for debugging with Wireshark only;
            a link or anything but a regular file is refused, as for the client's.
        verify_connection: Called with a :class:`~securelink.ConnectionInfo` after the client's
            chain (if any) has been verified (Go: ``VerifyConnection``).  Raise to reject the
            client: the connection is closed, and the server side gets
            :class:`~securelink.ConnectionRejectedError`.
        on_server_name: Called with the server name the client asked for (SNI; ``None`` if it
            sent none), before the certificate is chosen: the moment of Go's
            ``GetCertificate``.  Raise to refuse the name (the client gets an "unrecognized
            name" alert).
        trace: Called with each :class:`~securelink.HandshakeMessage` sent and received, in
            order.  For debugging and teaching: it slows every TLS record down.
        profile: Mozilla's profile: :attr:`Profile.INTERMEDIATE` (default) or
            :attr:`Profile.MODERN`, which makes the server TLS 1.3 only.  A ``min_version`` or
            ``max_version`` given explicitly below TLS 1.3 contradicts ``MODERN`` and raises
            :class:`~securelink.ConfigurationError` with ``field="profile"``.
        certificates_by_name: Other certificates to serve by server name (Go:
            ``GetCertificate``/``NameToCertificate``): ``{"api.example.com": Identity(...),
            "*.example.com": Identity(...)}``.  An exact name wins over a wildcard, which matches
            one label.  ``cert``/``key`` serve clients that send no name.
        unknown_names: What a client that asks for a name not listed gets: an
            :class:`UnknownNames` member, :attr:`UnknownNames.DEFAULT` (the ``cert``
            certificate, the default) or :attr:`UnknownNames.REJECT` (an "unrecognized name"
            alert).  Clients that send no name always get ``cert``.
        allowed_peers: Accept only clients whose certificate names one of these (exact DNS names,
            IP addresses, URIs such as SPIFFE IDs, or ``fnmatch`` patterns like
            ``spiffe://example.org/billing/*``), checked after verification.  Needs
            ``client_auth=REQUIRE_AND_VERIFY``.
    """

    __slots__ = (
        "_cert",
        "_client_ca",
        "_min_version",
        "_names",
        "allowed_peers",
        "alpn",
        "cert",
        "certificates_by_name",
        "client_auth",
        "client_ca",
        "key",
        "keylog",
        "max_version",
        "min_version",
        "on_server_name",
        "password",
        "profile",
        "trace",
        "unknown_names",
        "verify_connection",
    )
    _fields = (
        "cert",
        "key",
        "password",
        "client_auth",
        "client_ca",
        "min_version",
        "max_version",
        "alpn",
        "keylog",
        "verify_connection",
        "on_server_name",
        "trace",
        "profile",
        "certificates_by_name",
        "unknown_names",
        "allowed_peers",
    )
    _compare = (
        "_cert",
        "key",
        "password",
        "client_auth",
        "_client_ca",
        "min_version",
        "max_version",
        "alpn",
        "keylog",
        "verify_connection",
        "on_server_name",
        "trace",
        "profile",
        "_names",
        "unknown_names",
        "allowed_peers",
    )
    _hidden = frozenset({"cert", "key", "password"})

    cert: CertificateSource | tuple[CertificateSource, ...] | PKCS12
    key: KeySource | None
    password: Password | None
    client_auth: ClientAuth
    client_ca: CASource | tuple[CASource, ...] | None
    min_version: ssl.TLSVersion
    max_version: ssl.TLSVersion | None
    alpn: tuple[str, ...]
    keylog: str | os.PathLike[str] | None
    verify_connection: Callable[[ConnectionInfo], None] | None
    on_server_name: Callable[[str | None], None] | None
    trace: Callable[[HandshakeMessage], None] | None
    profile: Profile
    certificates_by_name: Mapping[str, Identity]
    unknown_names: UnknownNames
    allowed_peers: tuple[str, ...]
    _cert: tuple[object, ...]
    _client_ca: tuple[object, ...]
    _names: tuple[tuple[str, Identity], ...]
    _min_version: ssl.TLSVersion | None

    def __init__(
        self,
        *,
        cert: CertificateSource | Sequence[CertificateSource] | PKCS12,
        key: KeySource | None = None,
        password: Password | None = None,
        client_auth: ClientAuth = ClientAuth.NONE,
        client_ca: CASource | Sequence[CASource] | None = None,
        min_version: ssl.TLSVersion | None = None,
        max_version: ssl.TLSVersion | None = None,
        alpn: Sequence[str] = (),
        keylog: str | os.PathLike[str] | None = None,
        verify_connection: Callable[[ConnectionInfo], None] | None = None,
        on_server_name: Callable[[str | None], None] | None = None,
        trace: Callable[[HandshakeMessage], None] | None = None,
        profile: Profile = Profile.INTERMEDIATE,
        certificates_by_name: Mapping[str, Identity] | None = None,
        unknown_names: UnknownNames = UnknownNames.DEFAULT,
        allowed_peers: Sequence[str] = (),
    ) -> None:
        if not isinstance(profile, Profile):
            raise ConfigurationError(
                f"profile must be a securelink.Profile member, not {profile!r}.",
                field="profile",
                hint="Use Profile.INTERMEDIATE (the default) or Profile.MODERN (TLS 1.3 only).",
            )
        self._set("profile", profile)
        # Kept as given (None when left to the profile) so that replace() and pickling pass it on
        # as given: ServerOptions(...).replace(profile=MODERN) must not see TLS 1.2 as chosen.
        self._set("_min_version", min_version)
        min_version = _profile_versions(profile, min_version, max_version)
        names = _check_server_names(certificates_by_name)
        self._set("_names", names)
        self._set("certificates_by_name", dict(names))
        if not isinstance(unknown_names, UnknownNames):
            # The strings of 0.1 ("default", "reject") are refused rather than converted: one
            # spelling per value, like profile= and client_auth=; the hint names the member.
            raise ConfigurationError(
                f"unknown_names must be a securelink.UnknownNames member, not {unknown_names!r}.",
                field="unknown_names",
                hint=f"Use {_unknown_names_member(unknown_names)}: DEFAULT serves cert= to names"
                " not listed, REJECT refuses them.",
            )
        self._set("unknown_names", unknown_names)
        peers = _check_patterns("allowed_peers", allowed_peers) if allowed_peers else ()
        if peers and client_auth is not ClientAuth.REQUIRE_AND_VERIFY:
            raise ConfigurationError(
                "allowed_peers needs client_auth=ClientAuth.REQUIRE_AND_VERIFY: without a"
                " verified client certificate there is no identity to check.",
                field="allowed_peers",
                hint="Require client certificates, or drop allowed_peers.",
            )
        self._set("allowed_peers", peers)
        _check_versions(min_version, max_version)
        self._set("min_version", min_version)
        self._set("max_version", max_version)
        self._set("alpn", _check_alpn(alpn))
        for name, hook in (
            ("verify_connection", verify_connection),
            ("on_server_name", on_server_name),
            ("trace", trace),
        ):
            _check_hook(name, hook)
            self._set(name, hook)
        if not isinstance(client_auth, ClientAuth):
            raise ConfigurationError(
                f"client_auth must be a securelink.ClientAuth member, not {client_auth!r}.",
                field="client_auth",
                hint="Use ClientAuth.NONE, ClientAuth.VERIFY_IF_GIVEN or"
                " ClientAuth.REQUIRE_AND_VERIFY.",
            )
        self._set("client_auth", client_auth)
        cert_sources = _normalise_sources(cert, "cert")
        self._set("_cert", cert_sources)
        self._set("cert", cert if cert is None or _is_single(cert) else cert_sources)
        key = _check_key(key)  # type: ignore[assignment]
        _check_identity(cert_sources, key, password, side="a server", required=True)
        self._set("key", key)
        self._set("password", password)
        ca_sources = _normalise_sources(client_ca, "client_ca")
        if any(isinstance(item, Trust) for item in ca_sources):
            raise ConfigurationError(
                "client_ca names a public trust store; any certificate issued to anyone by a"
                " public CA would then be accepted as a client identity.",
                field="client_ca",
                hint="Pass the private CA that issues your clients' certificates.",
            )
        self._set("_client_ca", ca_sources)
        self._set(
            "client_ca", client_ca if client_ca is None or _is_single(client_ca) else ca_sources
        )
        if client_auth is not ClientAuth.NONE and not ca_sources:
            raise ConfigurationError(
                f"client_auth={client_auth.name} needs client_ca: without it no client"
                " certificate could ever be verified.",
                field="client_ca",
                hint="Pass client_ca= with the CA that issues your clients' certificates.",
            )
        if client_auth is ClientAuth.NONE and ca_sources:
            raise ConfigurationError(
                "client_ca was given but client_auth is NONE, so it would never be used.",
                field="client_auth",
                hint="Set client_auth=ClientAuth.REQUIRE_AND_VERIFY for mutual TLS, or drop"
                " client_ca.",
            )
        _check_keylog(keylog)
        self._set("keylog", keylog)

    def replace(self, **changes: Any) -> Self:
        """Return a copy with the given fields changed, checked like a new object.

        A ``min_version`` that was not given stays not given, so ``replace(profile=...)``
        takes the new profile's minimum instead of clashing with the old one's.

        Raises:
            TypeError: a name is not a field.
            ConfigurationError: the changed combination is invalid.
        """
        changes.setdefault("min_version", self._min_version)
        return super().replace(**changes)

    __replace__ = replace  # copy.replace() on Python 3.13+

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled as given too, for the same reason as replace().
        rebuild, (cls, kwargs) = super().__reduce__()
        return (rebuild, (cls, {**kwargs, "min_version": self._min_version}))
