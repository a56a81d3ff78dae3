"""Raw ``ssl`` and socket errors -> securelink errors that name the facts and the fix.

Translation is keyed on stable fields (``verify_code``, OpenSSL's ``reason``, the exception
class), never on message text, which differs between builds.  What OpenSSL's exception lacks (the
certificate, the names, the dates) comes from the connection itself at the failure point: the
chain the peer presented, the context's trust anchors, and what securelink recorded when it built
the context.  See ``../shared/reference/tls-error-catalog.md`` for the raw behaviour this relies
on.
"""

from __future__ import annotations

import _thread
import contextvars
import socket
import ssl
import sys
import time
import weakref

from . import errors as E
from ._compat import dsa_key_classes
from ._summary import CertificateSummary
from ._x509 import MIN_RSA_BITS, OPENSSL_MIN_EC_BITS, duration, utcnow

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, TypeAlias

    from .errors import AuthorityKind

__all__ = ["ContextFacts", "Failure", "explain", "register", "translate", "translate_errors"]


class ContextFacts:
    """What securelink knows about a context it built, for explanations."""

    __slots__ = (
        "__weakref__",
        "diagnose",
        "has_identity",
        "identity",
        "role",
        "trusted",
        "versions",
    )

    def __init__(
        self,
        *,
        role: str,
        trusted: str,
        versions: tuple[str, ...],
        identity: CertificateSummary | None,
        diagnose: bool = True,
    ) -> None:
        self.diagnose = diagnose  # ClientOptions.diagnose: diagnostic handshakes allowed
        self.role = role
        self.trusted = trusted
        self.versions = versions
        self.identity = identity
        self.has_identity = identity is not None


_facts: weakref.WeakKeyDictionary[ssl.SSLContext, ContextFacts] = weakref.WeakKeyDictionary()


def register(ctx: ssl.SSLContext, facts: ContextFacts) -> None:
    """Remember *facts* about *ctx* for as long as the context lives."""
    _facts[ctx] = facts


def facts_for(ctx: ssl.SSLContext | None) -> ContextFacts | None:
    """Return what securelink recorded about *ctx*, if it built it."""
    if ctx is None:
        return None
    try:
        return _facts.get(ctx)
    except TypeError:  # pragma: no cover - an unhashable look-alike
        return None


class Failure:
    """Everything known at the point of failure.

    ``first_io`` is true until the peer has sent application data: until then a reset or EOF
    may still be the peer's verdict on the handshake (TLS 1.3 delivers it late).  Writes do not
    count, since a write succeeds before the server's verdict arrives.

    ``diagnose`` allows a diagnostic handshake (a blocking network round trip) when the failure
    alone is ambiguous.  It is off where blocking is not allowed: inside an event loop.
    ``deadline`` (``time.monotonic()``) is when the caller's time limit runs out (see
    :data:`diagnosis_scope` for the exact address and deadline of paths that do not set it).
    ``undiagnosed`` says why a diagnosis that was wanted was not made (``"off"``, ``"time"``,
    ``"remembered time"``, ``"busy"``), for the explanation to say what it could not tell.
    """

    __slots__ = (
        "chain",
        "context",
        "deadline",
        "diagnose",
        "first_io",
        "op",
        "peer",
        "role",
        "server_hostname",
        "undiagnosed",
        "verified",
        "version",
    )

    def __init__(
        self,
        *,
        role: str,
        op: str = "handshake",
        server_hostname: str | None = None,
        peer: tuple[str, int] | None = None,
        context: ssl.SSLContext | None = None,
        chain: list[bytes] | None = None,
        verified: list[bytes] | None = None,
        version: str | None = None,
        first_io: bool = True,
        diagnose: bool = True,
        deadline: float | None = None,
    ) -> None:
        self.diagnose = diagnose
        self.deadline = deadline
        self.undiagnosed: str | None = None
        self.role = role
        self.op = op
        self.first_io = first_io
        self.server_hostname = server_hostname
        self.peer = peer
        self.context = context
        self.chain = chain or []
        self.verified = verified or []
        self.version = version


# --- alerts ----------------------------------------------------------------------------------

# OpenSSL reason -> the alert's name in words, for alerts received from the peer.
_ALERTS = {
    "SSLV3_ALERT_HANDSHAKE_FAILURE": "handshake failure",
    "SSLV3_ALERT_BAD_CERTIFICATE": "bad certificate",
    "SSLV3_ALERT_UNSUPPORTED_CERTIFICATE": "unsupported certificate",
    "SSLV3_ALERT_CERTIFICATE_REVOKED": "certificate revoked",
    "SSLV3_ALERT_CERTIFICATE_EXPIRED": "certificate expired",
    "SSLV3_ALERT_CERTIFICATE_UNKNOWN": "certificate unknown",
    "SSLV3_ALERT_ILLEGAL_PARAMETER": "illegal parameter",
    "SSLV3_ALERT_UNEXPECTED_MESSAGE": "unexpected message",
    "SSLV3_ALERT_BAD_RECORD_MAC": "bad record MAC",
    "SSLV3_ALERT_DECOMPRESSION_FAILURE": "decompression failure",
    "SSLV3_ALERT_NO_CERTIFICATE": "no certificate",
    "TLSV1_ALERT_UNKNOWN_CA": "unknown CA",
    "TLSV1_ALERT_ACCESS_DENIED": "access denied",
    "TLSV1_ALERT_DECODE_ERROR": "decode error",
    "TLSV1_ALERT_DECRYPT_ERROR": "decrypt error",
    "TLSV1_ALERT_PROTOCOL_VERSION": "protocol version",
    "TLSV1_ALERT_INSUFFICIENT_SECURITY": "insufficient security",
    "TLSV1_ALERT_INTERNAL_ERROR": "internal error",
    "TLSV1_ALERT_INAPPROPRIATE_FALLBACK": "inappropriate fallback",
    "TLSV1_ALERT_USER_CANCELLED": "user cancelled",
    "TLSV1_ALERT_NO_RENEGOTIATION": "no renegotiation",
    "TLSV1_ALERT_UNKNOWN_PSK_IDENTITY": "unknown PSK identity",
    "TLSV1_ALERT_NO_APPLICATION_PROTOCOL": "no application protocol",
    "TLSV1_UNRECOGNIZED_NAME": "unrecognized name",
    "TLSV1_ALERT_UNRECOGNIZED_NAME": "unrecognized name",
    "TLSV1_BAD_CERTIFICATE_STATUS_RESPONSE": "bad certificate status response",
    "TLSV13_ALERT_CERTIFICATE_REQUIRED": "certificate required",
    "TLSV13_ALERT_MISSING_EXTENSION": "missing extension",
}
# Alerts by which a peer says it does not accept the certificate this end sent.
_CERTIFICATE_ALERTS = frozenset(
    {
        "unknown CA",
        "bad certificate",
        "unsupported certificate",
        "certificate revoked",
        "certificate expired",
        "certificate unknown",
        "access denied",
    }
)
_NOT_TLS_CLIENT = frozenset(
    {"WRONG_VERSION_NUMBER", "UNKNOWN_PROTOCOL", "PACKET_LENGTH_TOO_LONG", "RECORD_LAYER_FAILURE"}
)
_NOT_TLS_SERVER = frozenset({"HTTP_REQUEST", "HTTPS_PROXY_REQUEST", *_NOT_TLS_CLIENT})
_VERSION_MISMATCH = frozenset(
    {
        "UNSUPPORTED_PROTOCOL",
        "NO_PROTOCOLS_AVAILABLE",
        "WRONG_SSL_VERSION",
        "TLSV1_ALERT_PROTOCOL_VERSION",
        "VERSION_TOO_LOW",
        "VERSION_TOO_HIGH",
    }
)
_CIPHER_MISMATCH = frozenset(
    {
        "NO_SHARED_CIPHER",
        "NO_CIPHERS_AVAILABLE",
        "NO_SHARED_SIGNATURE_ALGORITHMS",
        "NO_SUITABLE_SIGNATURE_ALGORITHM",
        "NO_SUITABLE_KEY_SHARE",
        "NO_SHARED_GROUPS",
    }
)


# --- helpers ---------------------------------------------------------------------------------


def _where(f: Failure) -> str:
    if f.role == "client":
        name = f.server_hostname or (f.peer[0] if f.peer else None)
        port = f" port {f.peer[1]}" if f.peer else ""
        return f"the server {name!r}{port}" if name else "the server"
    if f.peer:
        return f"the client {f.peer[0]} port {f.peer[1]}"
    return "the client"


def _common(f: Failure, exc: BaseException, side: str) -> dict[str, Any]:
    return {
        "side": side,
        "role": f.role,
        "server_hostname": f.server_hostname,
        "peer": f.peer,
        "library": getattr(exc, "library", None),
        "reason": getattr(exc, "reason", None),
    }


def _summaries(ders: list[bytes]) -> tuple[CertificateSummary, ...]:
    out = []
    for der in ders:
        try:
            out.append(CertificateSummary.from_der(der))
        except ValueError:
            # OpenSSL read it, but cryptography refuses it or one of its names or dates (from_der
            # turns every such parser error into ValueError): explain without it.
            continue
    return tuple(out)


def _trusted(f: Failure) -> str:
    facts = facts_for(f.context)
    if facts is not None:
        return facts.trusted
    if f.context is not None:
        try:
            cas = f.context.get_ca_certs()
        except (ssl.SSLError, ValueError):  # pragma: no cover
            cas = []
        many = "s" if len(cas) != 1 else ""
        return f"{len(cas)} CA certificate{many} loaded into the context"
    return "the CAs this end was configured with"


def _cert_label(f: Failure) -> str:
    return "client certificate" if f.role == "server" else "server certificate"


# --- verification failures -------------------------------------------------------------------

# OpenSSL 3.0's certificate verification codes (x509_vfy.h) that the explanations tell apart;
# the ssl module exports none of them (SSLCertVerificationError.verify_code is a bare int).
X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT = 2
X509_V_ERR_UNABLE_TO_GET_CRL = 3
X509_V_ERR_UNABLE_TO_DECRYPT_CERT_SIGNATURE = 4
X509_V_ERR_CERT_SIGNATURE_FAILURE = 7
X509_V_ERR_CERT_NOT_YET_VALID = 9
X509_V_ERR_CERT_HAS_EXPIRED = 10
X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT = 18
X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN = 19
X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY = 20
X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE = 21
X509_V_ERR_CERT_REVOKED = 23
X509_V_ERR_NO_ISSUER_PUBLIC_KEY = 24
X509_V_ERR_PATH_LENGTH_EXCEEDED = 25
X509_V_ERR_INVALID_PURPOSE = 26
X509_V_ERR_UNHANDLED_CRITICAL_EXTENSION = 34
X509_V_ERR_HOSTNAME_MISMATCH = 62
X509_V_ERR_IP_ADDRESS_MISMATCH = 64
X509_V_ERR_EE_KEY_TOO_SMALL = 66
X509_V_ERR_CA_KEY_TOO_SMALL = 67
X509_V_ERR_CA_MD_TOO_WEAK = 68
X509_V_ERR_INVALID_CA = 79
X509_V_ERR_PATHLEN_WITHOUT_KU_KEY_CERT_SIGN = 81
X509_V_ERR_KU_KEY_CERT_SIGN_INVALID_FOR_NON_CA = 82
X509_V_ERR_ISSUER_NAME_EMPTY = 83
X509_V_ERR_MISSING_AUTHORITY_KEY_IDENTIFIER = 85
X509_V_ERR_MISSING_SUBJECT_KEY_IDENTIFIER = 86
X509_V_ERR_EMPTY_SUBJECT_ALT_NAME = 87
X509_V_ERR_EMPTY_SUBJECT_SAN_NOT_CRITICAL = 88
X509_V_ERR_CA_BCONS_NOT_CRITICAL = 89
X509_V_ERR_CA_CERT_MISSING_KEY_USAGE = 92

# The verification codes without a subclass of their own, numbered as in OpenSSL 3.0's
# x509_vfy.h (X509_V_ERR_*; 1.1.1 numbered some of them differently).  Each names which
# certificate the code blames: the "leaf", a "ca" certificate in the chain, or "any" of them; the
# explanation names the first certificate of the chain that has the problem (see _at_fault).  In
# the texts, {it} is that certificate in the hint ("the certificate", "the CA certificate 'CN=x'").
# Codes 2, 18, 19, 20 and 21 are UnknownAuthorityError's, 9 and 10 the validity errors', 62 and
# 64 HostnameMismatchError's.
_VERIFY_TEXT: dict[int, tuple[str, str, str]] = {
    # code: (blame, what is wrong with the certificate, what to do)
    X509_V_ERR_UNABLE_TO_GET_CRL: (
        "any",
        "could not be checked for revocation (CRL checking is on, and no certificate revocation"
        " list from its issuer is loaded)",
        "Load the issuer's CRL into the context (load_verify_locations), or stop requiring CRL"
        " checks (verify_flags).",
    ),
    X509_V_ERR_UNABLE_TO_DECRYPT_CERT_SIGNATURE: (
        "any",
        "has a signature that cannot be decrypted with its issuer's public key (it is damaged)",
        "Replace {it} with an intact copy, or reissue it from its CA.",
    ),
    X509_V_ERR_CERT_SIGNATURE_FAILURE: (
        "any",
        "has a signature that does not verify (it was not signed by the key of the CA it names"
        " as its issuer, or it was altered after signing)",
        "Replace {it} with an intact copy; if its CA was recreated with a new key under the same"
        " name, reissue it from that CA.",
    ),
    X509_V_ERR_CERT_REVOKED: (
        "any",
        "has been revoked (its issuer's certificate revocation list lists it)",
        "The peer must replace the revoked certificate with a newly issued one.",
    ),
    X509_V_ERR_NO_ISSUER_PUBLIC_KEY: (
        "ca",
        "has no public key that OpenSSL can use, so the certificates it issued cannot be checked",
        "Reissue {it} with an ECDSA or RSA key.",
    ),
    X509_V_ERR_PATH_LENGTH_EXCEEDED: (
        "ca",
        "allows fewer intermediate CAs below it than the chain has{detail}",
        "Issue the certificate from a CA higher up, or reissue {it} with a larger path length.",
    ),
    X509_V_ERR_INVALID_PURPOSE: (
        "any",
        "is not allowed for this purpose{detail}",
        "Reissue {it} with {purpose} in its extended key usage.",
    ),
    X509_V_ERR_UNHANDLED_CRITICAL_EXTENSION: (
        "any",
        "has an extension marked critical that OpenSSL does not handle{detail}, and a"
        " certificate with a critical extension the verifier does not understand must be refused"
        " (RFC 5280)",
        "Reissue {it} without that extension, or with it not marked critical (RFC 5280 forbids"
        " marking the key identifiers critical).",
    ),
    X509_V_ERR_EE_KEY_TOO_SMALL: (
        "leaf",
        "has a key too small for OpenSSL's security level{detail}",
        "Reissue {it} with an ECDSA P-256 or RSA-2048 (or larger) key.",
    ),
    X509_V_ERR_CA_KEY_TOO_SMALL: (
        "ca",
        "has a key too small for OpenSSL's security level{detail}",
        "Replace {it} with a CA that has an ECDSA P-256 or RSA-2048 (or larger) key, and reissue"
        " the certificates below it.",
    ),
    X509_V_ERR_CA_MD_TOO_WEAK: (
        "any",
        "is signed with a digest too weak for OpenSSL's security level{detail}",
        "Reissue {it} with a SHA-256 signature.",
    ),
    X509_V_ERR_INVALID_CA: (
        "ca",
        "is not a valid CA certificate{detail}, yet it issued the certificate below it",
        "Issue certificates only from a CA certificate (basicConstraints CA:TRUE, keyUsage"
        " keyCertSign), such as one made by securelink.devca or minica: a leaf certificate cannot"
        " issue others.",
    ),
    X509_V_ERR_PATHLEN_WITHOUT_KU_KEY_CERT_SIGN: (
        "ca",
        "sets a path length (basicConstraints pathLenConstraint) without keyUsage"
        " keyCertSign{detail}, which strict mode (RFC 5280) refuses",
        "Reissue {it} with keyUsage keyCertSign and cRLSign, marked critical.",
    ),
    X509_V_ERR_KU_KEY_CERT_SIGN_INVALID_FOR_NON_CA: (
        "any",
        "is not a CA, yet its keyUsage includes keyCertSign, which strict mode (RFC 5280) refuses",
        "Reissue {it} without keyCertSign in its keyUsage (a leaf needs digitalSignature, and"
        " keyEncipherment for an RSA key).",
    ),
    X509_V_ERR_ISSUER_NAME_EMPTY: (
        "any",
        "has an empty issuer name (the CA that issued it has an empty subject), which strict"
        " mode (RFC 5280) refuses",
        "Reissue the CA with a subject name (at least a Common Name), then reissue the"
        " certificates below it.",
    ),
    X509_V_ERR_MISSING_AUTHORITY_KEY_IDENTIFIER: (
        "any",
        "has no Authority Key Identifier extension, which strict mode (RFC 5280) requires"
        " (Python 3.13 turns strict mode on by default)",
        "Reissue {it} with an authorityKeyIdentifier (every modern CA, and securelink.devca, adds"
        " one).",
    ),
    X509_V_ERR_MISSING_SUBJECT_KEY_IDENTIFIER: (
        "ca",
        "has no Subject Key Identifier extension, which strict mode (RFC 5280) requires of a CA",
        "Reissue {it} with a subjectKeyIdentifier.",
    ),
    X509_V_ERR_EMPTY_SUBJECT_ALT_NAME: (
        "any",
        "has a SubjectAltName extension with no names in it, which strict mode (RFC 5280) refuses",
        "Reissue {it} with the names it is for in its SubjectAltName.",
    ),
    X509_V_ERR_EMPTY_SUBJECT_SAN_NOT_CRITICAL: (
        "any",
        "has an empty subject and a SubjectAltName not marked critical, which strict mode"
        " (RFC 5280) refuses (without a subject, the SubjectAltName must be critical)",
        "Reissue {it} with a subject (a Common Name), or with its SubjectAltName marked critical.",
    ),
    X509_V_ERR_CA_BCONS_NOT_CRITICAL: (
        "ca",
        "has a basicConstraints extension not marked critical, which strict mode (RFC 5280)"
        " requires of a CA",
        "Reissue {it} with basicConstraints marked critical.",
    ),
    X509_V_ERR_CA_CERT_MISSING_KEY_USAGE: (
        "ca",
        "has no keyUsage extension, which strict mode (RFC 5280) requires of a CA",
        "Reissue {it} with keyUsage keyCertSign and cRLSign, marked critical.",
    ),
}

# The extensions OpenSSL 3.0 handles (X509_supported_extension); any other one marked critical
# fails verification with code 34.
_HANDLED_EXTENSIONS = frozenset(
    {
        "2.16.840.1.113730.1.1",  # netscape-cert-type
        "2.5.29.15",  # keyUsage
        "2.5.29.17",  # subjectAltName
        "2.5.29.19",  # basicConstraints
        "2.5.29.32",  # certificatePolicies
        "2.5.29.31",  # cRLDistributionPoints
        "2.5.29.37",  # extendedKeyUsage
        "1.3.6.1.5.5.7.1.7",  # sbgp-ipAddrBlock
        "1.3.6.1.5.5.7.1.8",  # sbgp-autonomousSysNum
        "1.3.6.1.5.5.7.48.1.5",  # OCSP noCheck
        "2.5.29.36",  # policyConstraints
        "1.3.6.1.5.5.7.1.14",  # proxyCertInfo
        "2.5.29.30",  # nameConstraints
        "2.5.29.33",  # policyMappings
        "2.5.29.54",  # inhibitAnyPolicy
    }
)


class _Cert:
    """One certificate of the chain, for finding the one at fault."""

    __slots__ = ("anchor", "cert", "der", "index")

    def __init__(self, cert: Any, der: bytes, index: int, anchor: bool) -> None:
        self.cert = cert  # a cryptography x509.Certificate
        self.der = der
        self.index = index  # 0: the leaf
        self.anchor = anchor  # the trust anchor that ends the chain: nothing checks its signature

    def ext(self, kind: Any) -> Any:
        from cryptography import x509

        try:
            return self.cert.extensions.get_extension_for_class(kind)
        except (x509.ExtensionNotFound, ValueError):  # absent, or malformed (also "absent")
            return None

    def is_ca(self) -> bool:
        from cryptography import x509

        bc = self.ext(x509.BasicConstraints)
        return bool(bc is not None and bc.value.ca)


def _parse_chain(ders: list[bytes], *, built: bool) -> list[_Cert]:
    from cryptography import x509

    out: list[_Cert] = []
    for i, der in enumerate(ders):
        try:
            cert = x509.load_der_x509_certificate(der)
        except ValueError:  # pragma: no cover - OpenSSL accepted it, so it parses
            return out
        # In the chain OpenSSL built, the last certificate is the trust anchor; in the chain the
        # peer sent, only a self-signed one can be.
        try:
            anchor = i == len(ders) - 1 if built else cert.issuer == cert.subject
        except ValueError:  # a name cryptography cannot read (it parses names lazily)
            anchor = False
        out.append(_Cert(cert, der, i, anchor))
    return out


def _key_text(c: _Cert) -> str:
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    try:
        key = c.cert.public_key()
    except (ValueError, TypeError, UnsupportedAlgorithm):  # a key cryptography cannot read
        return ""
    if isinstance(key, rsa.RSAPublicKey):
        return f"RSA, {key.key_size} bits"
    if isinstance(key, dsa_key_classes()[1]):
        return f"DSA, {key.key_size} bits"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"EC {key.curve.name}, {key.key_size} bits"
    return ""


def _small_key(c: _Cert) -> str | None:
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    try:
        key = c.cert.public_key()
    except (ValueError, TypeError, UnsupportedAlgorithm):
        return None
    # OpenSSL's own limits (security level 2), not securelink's advice: this explains what the
    # peer's OpenSSL refused, and a P-224 key passes there (see OPENSSL_MIN_EC_BITS).
    if isinstance(key, (rsa.RSAPublicKey, dsa_key_classes()[1])):
        small = key.key_size < MIN_RSA_BITS
    else:
        small = isinstance(key, ec.EllipticCurvePublicKey) and key.key_size < OPENSSL_MIN_EC_BITS
    return _key_text(c) if small else None


def _weak_digest(c: _Cert) -> str | None:
    if c.anchor:
        return None  # a trust anchor's own signature is not checked
    from cryptography.exceptions import UnsupportedAlgorithm

    try:
        algorithm = c.cert.signature_hash_algorithm
    except UnsupportedAlgorithm:  # not a digest this test knows of
        return None
    name = getattr(algorithm, "name", "")
    return {"sha1": "SHA-1", "md5": "MD5", "md4": "MD4", "md2": "MD2"}.get(name)


def _not_a_ca(c: _Cert) -> str | None:
    from cryptography import x509

    if c.index == 0:
        return None
    bc = c.ext(x509.BasicConstraints)
    if bc is None:
        if c.cert.version == x509.Version.v1 and c.cert.issuer == c.cert.subject:
            return None  # OpenSSL accepts a self-signed version 1 certificate as a CA
        return "it has no basicConstraints extension"
    if not bc.value.ca:
        return "its basicConstraints extension says CA:FALSE"
    ku = c.ext(x509.KeyUsage)
    if ku is not None and not ku.value.key_cert_sign:
        return "its keyUsage does not include keyCertSign"
    return None


def _path_too_long(c: _Cert) -> str | None:
    from cryptography import x509

    bc = c.ext(x509.BasicConstraints)
    if c.index < 2 or bc is None or not bc.value.ca or bc.value.path_length is None:
        return None
    below = c.index - 1  # the intermediate CAs between it and the leaf
    if below <= bc.value.path_length:
        return None
    many = "s follow" if below != 1 else " follows"
    limit = bc.value.path_length
    return f"its path length constraint is {limit}, and {below} intermediate CA{many} it"


def _wrong_purpose(c: _Cert, f: Failure) -> str | None:
    from cryptography import x509
    from cryptography.x509.oid import ExtendedKeyUsageOID

    purpose, oid, whose = (
        ("clientAuth", ExtendedKeyUsageOID.CLIENT_AUTH, "a client's")
        if f.role == "server"
        else ("serverAuth", ExtendedKeyUsageOID.SERVER_AUTH, "a server's")
    )
    eku = c.ext(x509.ExtendedKeyUsage)
    usages = list(eku.value) if eku is not None else None
    if (
        usages is not None
        and oid not in usages
        and ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE not in usages
    ):
        return f"its extended key usage does not include {purpose}, which {whose} certificate needs"
    ku = c.ext(x509.KeyUsage)
    if c.index == 0 and ku is not None:
        v = ku.value
        if not (v.digital_signature or v.key_encipherment or v.key_agreement):
            return (
                "its keyUsage allows none of digitalSignature, keyEncipherment and"
                " keyAgreement, which a TLS certificate needs"
            )
    return None


def _critical_unknown(c: _Cert) -> str | None:
    try:
        extensions = list(c.cert.extensions)
    except ValueError:
        return None
    names = []
    for ext in extensions:
        dotted = ext.oid.dotted_string
        if ext.critical and dotted not in _HANDLED_EXTENSIONS:
            name = getattr(ext.oid, "_name", "")
            names.append(name if name and name != "Unknown OID" else dotted)
    return ", ".join(names) if names else None


def _bad_signature(c: _Cert, chain: list[_Cert]) -> str | None:
    if c.anchor or c.index + 1 >= len(chain):
        return None
    from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm

    try:
        c.cert.verify_directly_issued_by(chain[c.index + 1].cert)
    except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm):
        return ""  # not signed by that issuer's key, or names or key types that do not match
    return None


def _no_issuer_key(c: _Cert) -> str | None:
    from cryptography.exceptions import UnsupportedAlgorithm

    try:
        c.cert.public_key()
    except (ValueError, TypeError, UnsupportedAlgorithm):
        return "" if c.index else None
    return None


def _pathlen_without_cert_sign(c: _Cert) -> str | None:
    from cryptography import x509

    ku = c.ext(x509.KeyUsage)
    bc = c.ext(x509.BasicConstraints)
    cert_sign = ku is not None and ku.value.key_cert_sign
    if bc is None or bc.value.path_length is None or cert_sign:
        return None
    return "it has no keyUsage extension at all" if ku is None else ""


def _cert_sign_on_non_ca(c: _Cert) -> bool:
    from cryptography import x509

    ku = c.ext(x509.KeyUsage)
    return not c.is_ca() and ku is not None and bool(ku.value.key_cert_sign)


def _no_authority_key_id(c: _Cert) -> bool:
    from cryptography import x509

    aki = c.ext(x509.AuthorityKeyIdentifier)
    return not c.anchor and aki is None and c.cert.version == x509.Version.v3


def _ca_without_subject_key_id(c: _Cert) -> bool:
    from cryptography import x509

    return c.is_ca() and c.ext(x509.SubjectKeyIdentifier) is None


def _empty_san(c: _Cert) -> bool:
    from cryptography import x509

    san = c.ext(x509.SubjectAlternativeName)
    return san is not None and len(san.value) == 0


def _empty_subject_san_not_critical(c: _Cert) -> bool:
    from cryptography import x509

    san = c.ext(x509.SubjectAlternativeName)
    return len(c.cert.subject) == 0 and san is not None and not san.critical


def _ca_constraints_not_critical(c: _Cert) -> bool:
    from cryptography import x509

    bc = c.ext(x509.BasicConstraints)
    return bc is not None and bc.value.ca and not bc.critical


def _ca_without_key_usage(c: _Cert) -> bool:
    from cryptography import x509

    return c.is_ca() and c.ext(x509.KeyUsage) is None


def _flag(check: Callable[[_Cert], bool]) -> _FaultTest:
    """A test that has no detail to add: "" when *check* finds the problem, else None."""
    return lambda c, chain, f: "" if check(c) else None


# Whether a certificate of the chain has the problem a verify code names: a detail ("" for
# none), or None.  Codes without an entry blame no certificate in particular.
_FaultTest: TypeAlias = "Callable[[_Cert, list[_Cert], Failure], str | None]"
_FAULT_TESTS: dict[int, _FaultTest] = {
    X509_V_ERR_UNABLE_TO_DECRYPT_CERT_SIGNATURE: lambda c, chain, f: _bad_signature(c, chain),
    X509_V_ERR_CERT_SIGNATURE_FAILURE: lambda c, chain, f: _bad_signature(c, chain),
    X509_V_ERR_NO_ISSUER_PUBLIC_KEY: lambda c, chain, f: _no_issuer_key(c),
    X509_V_ERR_PATH_LENGTH_EXCEEDED: lambda c, chain, f: _path_too_long(c),
    X509_V_ERR_INVALID_PURPOSE: lambda c, chain, f: _wrong_purpose(c, f),
    X509_V_ERR_UNHANDLED_CRITICAL_EXTENSION: lambda c, chain, f: _critical_unknown(c),
    X509_V_ERR_EE_KEY_TOO_SMALL: lambda c, chain, f: _small_key(c) if c.index == 0 else None,
    X509_V_ERR_CA_KEY_TOO_SMALL: lambda c, chain, f: _small_key(c) if c.index else None,
    X509_V_ERR_CA_MD_TOO_WEAK: lambda c, chain, f: _weak_digest(c),
    X509_V_ERR_INVALID_CA: lambda c, chain, f: _not_a_ca(c),
    X509_V_ERR_PATHLEN_WITHOUT_KU_KEY_CERT_SIGN: lambda c, chain, f: _pathlen_without_cert_sign(c),
    X509_V_ERR_KU_KEY_CERT_SIGN_INVALID_FOR_NON_CA: _flag(_cert_sign_on_non_ca),
    X509_V_ERR_ISSUER_NAME_EMPTY: _flag(lambda c: len(c.cert.issuer) == 0),
    X509_V_ERR_MISSING_AUTHORITY_KEY_IDENTIFIER: _flag(_no_authority_key_id),
    X509_V_ERR_MISSING_SUBJECT_KEY_IDENTIFIER: _flag(_ca_without_subject_key_id),
    X509_V_ERR_EMPTY_SUBJECT_ALT_NAME: _flag(_empty_san),
    X509_V_ERR_EMPTY_SUBJECT_SAN_NOT_CRITICAL: _flag(_empty_subject_san_not_critical),
    X509_V_ERR_CA_BCONS_NOT_CRITICAL: _flag(_ca_constraints_not_critical),
    X509_V_ERR_CA_CERT_MISSING_KEY_USAGE: _flag(_ca_without_key_usage),
}


def _at_fault_test(code: int, c: _Cert, chain: list[_Cert], f: Failure) -> str | None:
    """Whether *c* has the problem *code* names: a detail ("" for none), or None."""
    test = _FAULT_TESTS.get(code)
    return test(c, chain, f) if test is not None else None


def _at_fault(code: int, blame: str, f: Failure) -> tuple[_Cert | None, str]:
    """The first certificate of the chain that has the problem *code* names, and a detail.

    The chain OpenSSL built (leaf first, up to the trust anchor) is searched first, then the one
    the peer sent.  When no certificate shows the problem, the leaf is named for the codes that
    blame it, and the first CA for those that blame a CA.
    """
    chains = []
    if f.verified:
        chains.append(_parse_chain(f.verified, built=True))
    if f.chain:
        chains.append(_parse_chain(f.chain, built=False))
    for chain in chains:
        for c in chain:
            if blame == "ca" and c.index == 0:
                continue
            detail = _at_fault_test(code, c, chain, f)
            if detail is not None:
                return c, detail
    if blame == "ca":
        longer = next((chain for chain in chains if len(chain) > 1), None)
        return (longer[1] if longer else None), ""
    return (chains[0][0] if chains and chains[0] else None), ""


def _quoted(message: str) -> str | None:
    # Last resort, for explain() called without server_hostname: OpenSSL's verify message
    # ("Hostname mismatch, certificate is not valid for 'x'.") quotes the name.
    _, quote, rest = message.partition("'")
    name, quote2, _ = rest.partition("'")
    return name if quote and quote2 and name else None


def _verification(exc: ssl.SSLCertVerificationError, f: Failure) -> E.HandshakeError:
    code = exc.verify_code
    message = str(exc.verify_message or "")
    chain = _summaries(f.chain or f.verified)
    built = _summaries(f.verified) if f.verified else chain
    leaf = chain[0] if chain else (built[0] if built else None)
    base = dict(
        _common(f, exc, "local"),
        verify_code=code,
        verify_message=message,
        chain=chain,
    )
    if code in (X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH):
        return _hostname_mismatch(code, f, leaf, message, base)
    if code == X509_V_ERR_CERT_HAS_EXPIRED:
        return _expired(f, built or chain, leaf, base)
    if code == X509_V_ERR_CERT_NOT_YET_VALID:
        return _not_yet_valid(f, built or chain, leaf, base)
    if code in _UNTRUSTED_CODES:  # the chain does not reach a trusted CA
        return _unknown_authority(exc, f, chain, base)
    return _certificate_problem(code, f, leaf, message, base)


# The codes of a chain that does not reach a trusted CA: UnknownAuthorityError's.
_UNTRUSTED_CODES = frozenset(
    {
        X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT,
        X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT,
        X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN,
        X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY,
        X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE,
    }
)


def _hostname_mismatch(
    code: int, f: Failure, leaf: CertificateSummary | None, message: str, base: dict[str, Any]
) -> E.HostnameMismatchError:
    where = _where(f)
    which = _cert_label(f)
    expected = f.server_hostname or _quoted(message) or ""  # "": not known here
    presented = leaf.names if leaf else ()
    cn = leaf.common_name if leaf else None
    wanted = repr(expected) if expected else "the name this end asked for"
    if leaf is None:  # explain() without the connection: the names are unknown here
        text = f"the {which} of {where} is not valid for {wanted}."
    elif presented:
        text = f"the {which} of {where} is valid for {', '.join(presented)}, not {wanted}."
    elif cn:
        text = (
            f"the {which} of {where} has no SubjectAltName, only the Common Name {cn!r};"
            f" Common Names are not checked (RFC 6125, as in browsers and Go: they are"
            f" ambiguous and were deprecated in 2000), so it is not valid for {wanted}."
        )
    else:
        text = f"the {which} of {where} names no host at all, so it is not valid for {wanted}."
    hint = (
        "Connect with a name the certificate holds, or reissue it with"
        f" {wanted} as a SubjectAltName."
    )
    if not presented and cn:
        hint = f"Reissue the certificate with {cn!r} as a SubjectAltName (DNS or IP)."
    if presented and code == X509_V_ERR_IP_ADDRESS_MISMATCH:
        hint = (
            f"Connect by a name the certificate holds, or reissue it with the IP address"
            f" {expected or 'this end asked for'} as an IP SubjectAltName."
        )
    return E.HostnameMismatchError(
        text,
        expected=expected,
        presented=presented,
        common_name=cn,
        certificate=leaf,
        hint=hint,
        **base,
    )


def _expired(
    f: Failure,
    pool: tuple[CertificateSummary, ...],
    leaf: CertificateSummary | None,
    base: dict[str, Any],
) -> E.CertificateExpiredError:
    where = _where(f)
    now = utcnow()
    bad = next((c for c in pool if c.not_after < now), leaf)
    if bad is not None:
        ago = now - bad.not_after
        text = (
            f"{bad.describe()} (issued by {bad.issuer!r}), presented by {where}, expired"
            f" on {bad.not_after:%Y-%m-%d %H:%M:%S} UTC, {duration(ago)} ago."
        )
    else:
        ago = None
        text = f"a certificate presented by {where} has expired."
    return E.CertificateExpiredError(
        text,
        not_after=bad.not_after if bad else None,
        expired_for=ago,
        certificate=bad,
        hint="The peer must renew its certificate. If it was renewed already, it is still"
        " serving the old one: restart or reload it. If the date looks wrong, check this"
        " machine's clock.",
        **base,
    )


def _not_yet_valid(
    f: Failure,
    pool: tuple[CertificateSummary, ...],
    leaf: CertificateSummary | None,
    base: dict[str, Any],
) -> E.CertificateNotYetValidError:
    where = _where(f)
    now = utcnow()
    bad = next((c for c in pool if c.not_before > now), leaf)
    if bad is not None:
        until = bad.not_before - now
        text = (
            f"{bad.describe()}, presented by {where}, is not valid until"
            f" {bad.not_before:%Y-%m-%d %H:%M:%S} UTC, {duration(until)} from now."
        )
    else:
        until = None
        text = f"a certificate presented by {where} is not valid yet."
    return E.CertificateNotYetValidError(
        text,
        not_before=bad.not_before if bad else None,
        valid_in=until,
        certificate=bad,
        hint="Check the clocks: this machine's (and the issuer's) clock may be wrong, or the"
        " certificate was issued with a start date in the future. If the clock is right,"
        " wait, or reissue the certificate with an earlier start date.",
        **base,
    )


def _certificate_problem(
    code: int, f: Failure, leaf: CertificateSummary | None, message: str, base: dict[str, Any]
) -> E.CertificateVerificationError:
    """A verification code without a subclass of its own: the table's text, about the culprit."""
    where = _where(f)
    which = _cert_label(f)
    about = f" ({leaf.describe()})" if leaf else ""
    entry = _VERIFY_TEXT.get(code)
    if entry is None:
        return E.CertificateVerificationError(
            f"the {which} of {where}{about} failed verification: OpenSSL reported verification"
            f" error {code} ({message or 'without a text'}).",
            certificate=leaf,
            hint="Inspect the chain with `openssl s_client -showcerts` and fix the certificate.",
            **base,
        )
    blame, problem, fix = entry
    culprit, detail = _at_fault(code, blame, f)
    purpose = "clientAuth" if f.role == "server" else "serverAuth"
    if not detail and code == X509_V_ERR_INVALID_PURPOSE:
        whose = "a client's" if f.role == "server" else "a server's"
        detail = f"{whose} certificate needs {purpose} in its extended key usage, or none at all"
    problem = problem.replace("{detail}", f" ({detail})" if detail else "")
    # No summary when cryptography cannot read the certificate's fields (51 refuses an empty
    # SubjectAltName on access): the explanation then names it by position, not by its names.
    bad = next(iter(_summaries([culprit.der])), None) if culprit is not None else None
    if culprit is None or bad is None:
        subject = "a CA certificate in its chain" if blame == "ca" else "a certificate in its chain"
        it = "that CA certificate" if blame == "ca" else "the certificate"
    elif culprit.index == 0:
        subject, it = "it", "the certificate"
        about = f" ({bad.describe()})"
    else:
        kind = "CA certificate" if culprit.is_ca() else "certificate"
        origin = _origin(culprit.der, f)
        subject = f"the {kind} {bad.subject!r} in its chain{origin}"
        it = f"the {kind} {bad.subject!r}"
    if code == X509_V_ERR_INVALID_PURPOSE and culprit is not None and culprit.index:
        fix = (
            "Reissue {it} with {purpose} in its extended key usage, or with none at all (a CA's"
            " extended key usage limits every certificate below it)."
        )
    return E.CertificateVerificationError(
        f"the {which} of {where}{about} failed verification: {subject} {problem}.",
        certificate=bad,
        hint=fix.replace("{it}", it).replace("{purpose}", purpose),
        **base,
    )


def _origin(der: bytes, f: Failure) -> str:
    """Where a CA certificate of the chain came from, when that is known, in parentheses."""
    if der in f.chain:
        return f" (sent by the {'client' if f.role == 'server' else 'server'})"
    try:
        trusted = f.context.get_ca_certs(binary_form=True) if f.context is not None else []
    except (ssl.SSLError, ValueError):  # pragma: no cover - defensive
        trusted = []
    return " (one of the CAs this end trusts)" if der in trusted else ""


def _unknown_authority(
    exc: ssl.SSLCertVerificationError,
    f: Failure,
    chain: tuple[CertificateSummary, ...],
    base: dict[str, Any],
) -> E.UnknownAuthorityError:
    code = exc.verify_code
    where = _where(f)
    which = _cert_label(f)
    trusted = _trusted(f)
    leaf = chain[0] if chain else None
    last = chain[-1] if chain else None
    kind: AuthorityKind
    # Without the chain (explain() on a foreign exception) the issuer is not known: it is left
    # out of the text, and `issuer` is "".
    if code == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
        kind = "untrusted-root"
        issuer, text, hint = _partial_chain_verdict(f, which, where, trusted)
    elif code == X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT or (
        leaf is not None and leaf.self_signed and len(chain) == 1
    ):
        kind = "self-signed"
        issuer = leaf.subject if leaf else ""
        text = (
            f"{leaf.describe() if leaf else f'the {which}'} presented by {where} is"
            " self-signed: it vouches for itself, and it is not among the trusted CAs"
            f" ({trusted})."
        )
        hint = (
            "Issue the peer's certificate from a CA and trust that CA (ca= on a client,"
            " client_ca= on a server); for development, securelink.devca or minica makes one."
            " Do not turn verification off."
        )
    elif code == X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN or (last is not None and last.self_signed):
        kind = "untrusted-root"
        issuer = last.subject if last else ""
        root = f"the root {issuer!r}" if issuer else "a root CA"
        text = (
            f"the {which} chain presented by {where} ends at {root}, which is not among the"
            f" trusted CAs ({trusted})."
        )
        hint = (
            f"Trust that root CA{f' ({issuer})' if issuer else ''} if it is yours (ca= on a"
            " client, client_ca= on a server); never turn verification off."
        )
    elif last is not None and last.is_ca:
        kind = "untrusted-root"
        issuer = last.issuer
        text = (
            f"the {which} chain presented by {where} leads to {issuer!r}, which is not among"
            f" the trusted CAs ({trusted})."
        )
        hint = f"Trust the CA {issuer!r} if it is the one that should vouch for this peer."
    elif leaf is not None and len(chain) == 1 and leaf.names and _has_aia(f):
        kind = "incomplete-chain"
        issuer = leaf.issuer
        text = (
            f"{where} sent only its own certificate ({leaf.describe()}), not the intermediate"
            f" {issuer!r} that issued it, so the chain to a trusted CA ({trusted}) is"
            " incomplete."
        )
        hint = (
            "The peer must send its full chain (leaf first, then intermediates: on the server,"
            " cert= the chain file, not just the leaf)."
        )
    else:
        kind = "unknown-issuer"
        issuer, text, hint = _unknown_issuer_verdict(which, where, trusted, leaf)
    if (
        f.role == "server"
        and code != X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT
        and kind != "incomplete-chain"
    ):
        # The server's operator reads this about a client it refused: "trust its CA" would
        # admit whoever runs that CA.  The fix belongs to the client, if it should get in at all.
        hint = _server_unknown_ca_hint(kind, issuer)
    return E.UnknownAuthorityError(
        text, kind=kind, issuer=issuer, trusted=trusted, certificate=leaf, hint=hint, **base
    )


# (issuer, text, hint) of an UnknownAuthorityError.
_AuthorityVerdict = tuple[str, str, str]


def _partial_chain_verdict(f: Failure, which: str, where: str, trusted: str) -> _AuthorityVerdict:
    built = _summaries(f.verified)
    # Part of the chain came from this end's trusted CAs, but the issuer of the last of them
    # is nowhere: an intermediate trusted on its own, which needs VERIFY_X509_PARTIAL_CHAIN.
    top = built[-1] if built else None
    issuer = top.issuer if top is not None else ""
    flags = f.context.verify_flags if f.context is not None else None
    off = (
        " (VERIFY_X509_PARTIAL_CHAIN is off)"
        if flags is not None and not flags & ssl.VERIFY_X509_PARTIAL_CHAIN
        else ""
    )
    if top is not None:
        text = (
            f"the {which} chain presented by {where} reaches the CA {top.subject!r}, which"
            " this end trusts, but this end does not accept an intermediate CA as a trust"
            f" anchor on its own{off}, and the CA's issuer {issuer!r} is not among the trusted"
            " CAs."
        )
        hint = (
            f"Trust the root CA {issuer!r} as well, or set ssl.VERIFY_X509_PARTIAL_CHAIN in"
            " the context's verify_flags (securelink's contexts and Python 3.13's default"
            " context do) so that a trusted intermediate CA is enough."
        )
    else:
        text = (
            f"the {which} chain presented by {where} reaches a CA that this end trusts"
            f" ({trusted}), but this end does not accept an intermediate CA as a trust anchor"
            f" on its own{off}, and that CA's issuer is not among the trusted CAs."
        )
        hint = (
            "Trust the root CA above the intermediate as well, or set"
            " ssl.VERIFY_X509_PARTIAL_CHAIN in the context's verify_flags (securelink's"
            " contexts and Python 3.13's default context do) so that a trusted intermediate"
            " CA is enough."
        )
    return issuer, text, hint


def _unknown_issuer_verdict(
    which: str, where: str, trusted: str, leaf: CertificateSummary | None
) -> _AuthorityVerdict:
    issuer = leaf.issuer if leaf else ""
    if leaf is not None:
        text = (
            f"{leaf.describe()}, presented by {where}, was issued by {issuer!r}, which is not"
            f" among the trusted CAs ({trusted})."
        )
        hint = (
            f"If {issuer!r} is your own CA, add its certificate to ca= (a copy from your PKI,"
            " never one taken from this connection). If it is an intermediate, the peer must"
            " send it along with its certificate (an incomplete chain). Do not turn"
            " verification off."
        )
    else:
        text = (
            f"the {which} presented by {where} was issued by a CA that is not among the"
            f" trusted CAs ({trusted})."
        )
        hint = (
            "If its issuer is your own CA, add that CA's certificate to ca= (a copy from your"
            " PKI, never one taken from this connection). If it is an intermediate, the peer"
            " must send it along with its certificate (an incomplete chain). Do not turn"
            " verification off."
        )
    return issuer, text, hint


def _server_unknown_ca_hint(kind: str, issuer: str) -> str:
    why = (
        "The client's certificate is self-signed, so no CA this server trusts vouches for it."
        if kind == "self-signed"
        else "The client's certificate comes from a CA this server does not trust"
        + (f" ({issuer!r})." if issuer else ".")
    )
    return (
        f"{why} If that client should be admitted, it needs a certificate issued by a CA in"
        " this server's client_ca (and must send any intermediate CA along with it); any"
        " other client is rightly refused."
    )


def _has_aia(f: Failure) -> bool:
    # A leaf that names where its issuer can be fetched (AIA caIssuers) was issued by a public or
    # managed intermediate: a lone leaf with one is the classic incomplete chain.
    if not f.chain:
        return False
    from cryptography import x509
    from cryptography.x509.oid import AuthorityInformationAccessOID

    try:
        cert = x509.load_der_x509_certificate(f.chain[0])
        aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    except (ValueError, x509.ExtensionNotFound, x509.DuplicateExtension):
        return False  # none, or one cryptography cannot read: no evidence of an AIA
    return any(d.access_method == AuthorityInformationAccessOID.CA_ISSUERS for d in aia)


# --- everything else -------------------------------------------------------------------------


def translate(exc: BaseException, f: Failure) -> E.SecureLinkError | None:
    """Translate *exc* raised at the failure point described by *f*.

    Returns ``None`` when *exc* is not a failure to explain (a would-block condition, a clean
    shutdown, or an ordinary network error after the connection was established).
    """
    if isinstance(exc, E.SecureLinkError):
        return None
    if isinstance(exc, ssl.SSLWantReadError | ssl.SSLWantWriteError | ssl.SSLZeroReturnError):
        return None
    result: E.SecureLinkError | None = None
    waited = asyncio_timeout(exc)
    if isinstance(exc, ConnectionRefusedError) and f.op == "connect":
        result = _refused(f)
        if exc.errno is not None:
            result.errno = exc.errno  # the refusal's own errno, whatever the platform calls it
    elif waited is not None or (
        isinstance(exc, TimeoutError) and f.role == "server" and f.op == "handshake"
    ):
        # A client's own handshake timeout stays a TimeoutError: the caller chose it.
        result = timed_out(exc, f, timeout=waited)
    elif isinstance(exc, ssl.SSLError) and getattr(exc, "reason", None) == _CLOSED_BEFORE:
        # The peer reset the connection before the handshake began (its ClientHello unread):
        # a reset like any other, not an OpenSSL reason.
        result = _closed(ConnectionResetError(*exc.args), f)
    elif isinstance(exc, ssl.SSLCertVerificationError):
        result = _verification(exc, f)
    elif isinstance(exc, ssl.SSLError):
        result = _ssl_error(exc, f)
    elif isinstance(exc, ConnectionResetError | BrokenPipeError | ConnectionAbortedError):
        result = _closed(exc, f)
    if result is not None:
        _keep_errno(result, exc)
    return result


def _keep_errno(new: BaseException, exc: BaseException) -> None:
    # `except OSError as e: e.errno` code keeps seeing what it saw (for an ssl.SSLError, the
    # SSL_ERROR_* class: 1 for an SSL error, 8 for an EOF).
    errno = getattr(exc, "errno", None)
    if errno is not None and isinstance(new, OSError) and new.errno is None:
        new.errno = errno


def _refused(f: Failure) -> E.NothingListeningError:
    hint = (
        "Check the port number, and that the server is running and listening on that address (a"
        " server bound to 127.0.0.1 cannot be reached by another address)."
    )
    if f.peer is not None:
        host, port = f.peer
        return E.NothingListeningError(
            f"nothing is listening on {host} port {port}: the connection was refused before any"
            " TLS was spoken.",
            host=host,
            port=port,
            hint=hint,
        )
    # explain() without the address: say what is known, and no more.
    name = f" to {f.server_hostname!r}" if f.server_hostname else ""
    return E.NothingListeningError(
        f"the connection{name} was refused before any TLS was spoken: nothing is listening on the"
        " address and port it was made to.",
        host=None,
        port=None,
        hint=hint,
    )


def _facts_of(f: Failure) -> ContextFacts | None:
    return facts_for(f.context)


_VERSION_ORDER = ("TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")


def _versions(f: Failure) -> tuple[str, ...]:
    facts = _facts_of(f)
    if facts is not None and facts.versions:
        low, high = facts.versions[0], facts.versions[-1]
    elif f.context is not None:
        low = _version_name(f.context.minimum_version)
        high = _version_name(f.context.maximum_version)
    else:
        return ()
    if low in _VERSION_ORDER and high in _VERSION_ORDER:
        span = _VERSION_ORDER[_VERSION_ORDER.index(low) : _VERSION_ORDER.index(high) + 1]
        if span:
            return span
    return tuple(dict.fromkeys((low, high)))


def _version_name(v: ssl.TLSVersion) -> str:
    """Name a TLS version as ``SSLSocket.version()`` does; MAXIMUM_SUPPORTED is resolved."""
    if v == ssl.TLSVersion.MAXIMUM_SUPPORTED:
        return "TLSv1.3" if ssl.HAS_TLSv1_3 else "TLSv1.2"
    if v == ssl.TLSVersion.MINIMUM_SUPPORTED:
        return "the lowest version OpenSSL supports"
    # By name: looking up the deprecated members' values would warn on some versions.
    return v.name.replace("_", ".")


def _allowed(versions: tuple[str, ...]) -> str:
    if not versions:
        return "TLS 1.2 or newer"
    if len(versions) == 1:
        return f"only {versions[0]}"
    return f"{', '.join(versions[:-1])} and {versions[-1]}"


def _an_alert(alert: str) -> str:
    """``"an 'unknown CA' alert"``, ``"a 'decode error' alert"``: the article that is read."""
    # By sound, not spelling: "a 'user cancelled'" (a "you" sound), "an 'unknown CA'".
    vowel = alert[:1] in "aeio" or (alert.startswith("un") and not alert.startswith("uni"))
    return f"{'an' if vowel else 'a'} '{alert}' alert"


def _ssl_error(exc: ssl.SSLError, f: Failure) -> E.HandshakeError | None:
    reason = exc.reason or ""
    if isinstance(exc, ssl.SSLEOFError):
        return _closed(exc, f)
    # Each family answers None when the reason is not one of its own.
    explained = (
        _not_tls(exc, f, reason)
        or _mismatch(exc, f, reason)
        or _missing_client_cert(exc, f, reason)
    )
    if explained is not None:
        return explained
    alert = _ALERTS.get(reason)
    if alert is not None:
        return _alert(exc, f, alert)
    if f.op != "handshake":
        return None
    return E.HandshakeError(
        f"the TLS handshake with {_where(f)} failed: {reason or exc}.",
        hint="securelink does not recognise this failure; the original error is attached as"
        " __cause__. `openssl s_client -connect HOST:PORT` (or s_server) helps to see more.",
        **_common(f, exc, "local"),
    )


def _not_tls(exc: ssl.SSLError, f: Failure, reason: str) -> E.HandshakeError | None:
    where = _where(f)
    if f.role == "client" and reason in _NOT_TLS_CLIENT and f.op == "handshake":
        return E.NotTLSError(
            f"{where} did not answer in TLS: its first bytes were not a TLS record (it may be a"
            " plaintext HTTP server, another protocol, or the wrong port).",
            hint="Check the port: use the TLS port, or http:// for a plaintext server."
            " `openssl s_client -connect HOST:PORT` shows what answers there.",
            **_common(f, exc, "local"),
        )
    if f.role == "server" and reason in _NOT_TLS_SERVER and f.op == "handshake":
        what = "a plaintext HTTP request" if "HTTP" in reason else "something that is not TLS"
        return E.NotTLSError(
            f"{where} sent {what} to this TLS server.",
            hint="The client must connect with TLS (https://, or a TLS client context), or talk"
            " to the plaintext port instead.",
            **_common(f, exc, "local"),
        )
    return None


def _mismatch(exc: ssl.SSLError, f: Failure, reason: str) -> E.HandshakeError | None:
    where = _where(f)
    facts = _facts_of(f)
    if reason in _VERSION_MISMATCH:
        side = "peer" if reason.startswith("TLSV1_ALERT") else "local"
        one = len(_versions(f)) == 1
        if side == "peer":
            refused = "the peer refused it" if one else "the peer refused them"
        else:
            refused = "the peer did not offer it" if one else "the peer offered none of them"
        allowed = _allowed(_versions(f))
        return E.ProtocolMismatchError(
            f"{where} and this {f.role} have no TLS version in common (this end allows"
            f" {allowed}; {refused}).",
            mismatch="version",
            local_versions=_versions(f),
            hint="Upgrade the peer to TLS 1.2 or 1.3 (TLS 1.0 and 1.1 are deprecated and refused),"
            " or align min_version/max_version on both ends.",
            **_common(f, exc, side),
        )
    if reason in _CIPHER_MISMATCH:
        return E.ProtocolMismatchError(
            f"{where} and this {f.role} have no cipher suite (or signature algorithm) in common.",
            mismatch="cipher",
            local_versions=_versions(f),
            hint="securelink allows only AEAD suites with forward secrecy (ECDHE with"
            " AES-GCM or ChaCha20-Poly1305, and TLS 1.3): enable one of them on the peer."
            if reason != "NO_SHARED_CIPHER" or f.role != "server" or (facts and facts.has_identity)
            else "This server has no certificate loaded.",
            **_common(f, exc, "local"),
        )
    if reason == "DH_KEY_TOO_SMALL" and f.role == "client":
        # The server chose a DHE suite with a Diffie-Hellman group below this client's security
        # level (under 2048 bits at OpenSSL's default level 2): this end refused it.
        # securelink's own clients offer no DHE suites; clients on the stdlib's defaults do.
        return E.ProtocolMismatchError(
            f"{where} chose a finite-field Diffie-Hellman key exchange (a DHE cipher suite) with"
            " a group too small for this client's security level (OpenSSL's default level"
            " requires 2048 bits), and this client refused it.",
            mismatch="key_exchange",
            local_versions=_versions(f),
            hint="The server must fix its key exchange: prefer ECDHE suites, or use a DH group of"
            " at least 2048 bits (the RFC 7919 ffdhe2048 group or larger). Do not lower the"
            " client's security level.",
            **_common(f, exc, "local"),
        )
    return None


def _missing_client_cert(exc: ssl.SSLError, f: Failure, reason: str) -> E.HandshakeError | None:
    if reason != "PEER_DID_NOT_RETURN_A_CERTIFICATE":
        return None
    return E.ClientCertificateRequiredError(
        f"{_where(f)} sent no certificate, and this server requires one (mutual TLS).",
        alert=None,
        hint="Give the client a certificate issued by a CA in this server's client_ca (on a"
        " securelink client: ClientOptions(cert=..., key=...)).",
        **_common(f, exc, "local"),
    )


def _alert(exc: ssl.SSLError, f: Failure, alert: str) -> E.HandshakeError:
    facts = _facts_of(f)
    identity = facts.identity if facts is not None else None
    # None: a context securelink did not build, so whether it holds a certificate is unknown.
    has_identity = facts.has_identity if facts is not None else None
    common = _common(f, exc, "peer")
    required, diagnosis = _client_certificate_required(exc, f, alert, has_identity)
    if required is not None:
        return required
    if alert in _CERTIFICATE_ALERTS and (has_identity is not False or f.role == "server"):
        return _certificate_rejected(f, alert, identity, common)
    return _other_alert(exc, f, alert, diagnosis, common)


def _client_certificate_required(
    exc: ssl.SSLError, f: Failure, alert: str, has_identity: bool | None
) -> tuple[E.HandshakeError | None, _Diagnosis | None]:
    """Whether a client's alert means the server wanted a certificate it did not get.

    Returns the explanation if it does, and the diagnostic handshake's findings (if one was
    made) for the explanations that follow.
    """
    if f.role == "client" and alert == "certificate required":
        # TLS 1.3's own alert for exactly this: nothing else to find out.
        return (
            _certificate_required(
                f, exc, "with a 'certificate required' alert (TLS 1.3)", alert=alert
            ),
            None,
        )
    # A server that sent its certificate and then refused a client that had none to send: TLS
    # 1.2's way of saying "certificate required" (it asked for one in between).
    decisive = bool(f.chain) and has_identity is False
    diagnosis = None
    if (
        f.role == "client"
        and f.op == "handshake"
        and alert == "handshake failure"
        and not decisive
        and (not f.chain or has_identity is not True)
    ):
        # Otherwise the same generic alert as a cipher mismatch; one diagnostic handshake
        # tells them apart (and names what the server takes).
        diagnosis = _diagnose(f, any_cipher=not f.chain)
    if (
        f.role == "client"
        and has_identity is not True
        and alert in {"handshake failure", "bad certificate"}
        and (decisive or (diagnosis is not None and diagnosis.certificate_requested))
    ):
        return (
            _certificate_required(
                f, exc, f"with {_an_alert(alert)} after asking for one", alert=alert
            ),
            diagnosis,
        )
    if (
        f.role == "client"
        and f.op == "handshake"
        and has_identity is False
        and diagnosis is None
        and alert not in {"handshake failure", "bad certificate", "unrecognized name"}
    ):
        # Some stacks refuse a TLS 1.2 client that has no certificate with another alert
        # (GnuTLS: 'decode error', right after its CertificateRequest).  The alert alone proves
        # nothing; a diagnostic handshake (the same versions, no certificate) that is asked for
        # a certificate and then refused does.
        probe = _diagnose(f)
        if probe is not None and probe.certificate_requested and probe.refused:
            return (
                _certificate_required(
                    f, exc, f"with {_an_alert(alert)} after asking for one", alert=alert
                ),
                diagnosis,
            )
    return None, diagnosis


def _certificate_rejected(
    f: Failure, alert: str, identity: CertificateSummary | None, common: dict[str, Any]
) -> E.CertificateRejectedError:
    """The peer refused this end's certificate with one of the certificate alerts."""
    where = _where(f)
    ours = identity.describe() if identity else f"this {f.role}'s certificate"
    issuer = f" (issued by {identity.issuer!r})" if identity else ""
    verdicts = {
        "unknown CA": "does not trust its issuer",
        "certificate expired": "considers it expired",
        "unsupported certificate": "does not accept it for this use (key usage or extended"
        " key usage)",
        "certificate revoked": "considers it revoked",
    }
    verdicts["bad certificate"] = (
        "found it unacceptable ('bad certificate': often the name asked for is not in it, or"
        " its chain did not verify there)"
    )
    verdict = verdicts.get(alert, f"answered with {_an_alert(alert)}")
    return E.CertificateRejectedError(
        f"{where} rejected {ours}{issuer}: it {verdict}.",
        alert=alert,
        certificate=identity,
        hint=(
            f"The peer must trust the CA that issued this certificate"
            f"{' (' + identity.issuer + ')' if identity else ''}: add it to its CA list"
            " (client_ca= on a securelink server, ca= on a client)."
            if alert in {"unknown CA", "bad certificate", "certificate unknown"}
            else "The peer refused this certificate; its logs say why. Most often it does not"
            " trust the CA that issued it (add that CA to its client_ca= or ca=); otherwise"
            " check the certificate's dates and extended key usage (serverAuth for a server,"
            " clientAuth for a client)."
            if alert == "access denied"  # GnuTLS's alert for an untrusted issuer, too
            else "Check the certificate's dates and extended key usage (serverAuth for a"
            " server, clientAuth for a client), and reissue it if needed."
        ),
        **common,
    )


def _other_alert(
    exc: ssl.SSLError,
    f: Failure,
    alert: str,
    diagnosis: _Diagnosis | None,
    common: dict[str, Any],
) -> E.HandshakeError:
    """An alert that is neither about a missing client certificate nor about a rejected one."""
    where = _where(f)
    if f.role == "client" and alert == "handshake failure" and not f.chain:
        mismatch = _mismatch_found(exc, f, diagnosis, "('handshake failure' alert)")
        if mismatch is not None:
            return mismatch
        return E.ProtocolMismatchError(
            f"{where} refused the handshake before sending its certificate ('handshake failure'"
            " alert): most often the two ends have no cipher suite or signature algorithm in"
            f" common.{_undiagnosed(f)}",
            mismatch="unknown",
            local_versions=_versions(f),
            hint="Compare the cipher suites both ends allow (`openssl s_client -connect HOST:PORT"
            " -tls1_2` shows what the server accepts).",
            **_peer_facts(diagnosis),
            **common,
        )
    if alert == "unrecognized name":
        return E.RemoteError(
            f"{where} does not serve the name {f.server_hostname!r} (an 'unrecognized name'"
            " alert).",
            alert=alert,
            hint="Connect with a name the server is configured for.",
            **common,
        )
    return E.RemoteError(
        f"{where} refused the connection with {_an_alert(alert)}.",
        alert=alert,
        hint="The peer's logs say why it refused; the alert names the category.",
        **common,
    )


def _mismatch_found(
    exc: BaseException, f: Failure, diagnosis: _Diagnosis | None, how: str
) -> E.ProtocolMismatchError | None:
    """A version or cipher mismatch, if a diagnostic handshake offering everything shows one."""
    where = _where(f)
    versions = _versions(f)
    common = _common(f, exc, "peer")
    if diagnosis is None or not diagnosis.completed or diagnosis.version is None:
        # Nothing TLS 1.2 or 1.3 could agree on.  A server that speaks only a deprecated version
        # refuses such a handshake in ways that look like a cipher problem (GnuTLS: 'handshake
        # failure') or like nothing at all (OpenSSL closes): a handshake offering only the old
        # versions tells.
        old = _deprecated_version(f)
        if old is None:
            return None
        return E.ProtocolMismatchError(
            f"{where} speaks only {_VERSION_WORDS.get(old, old)}, which securelink refuses: it"
            f" refused this client's handshake {how}, and accepted a diagnostic handshake"
            f" offering only the deprecated versions ({old}). This end allows"
            f" {_allowed(versions)}.",
            mismatch="version",
            local_versions=versions,
            peer_version=old,
            hint="Upgrade the server to TLS 1.2 or 1.3: TLS 1.0 and 1.1 are deprecated (RFC"
            " 8996) and securelink does not allow them.",
            peer_cipher=None,
            **common,
        )
    if versions and diagnosis.version not in versions:
        return E.ProtocolMismatchError(
            f"{where} and this client have no TLS version in common: it refused this client's"
            f" handshake {how}, and speaks {diagnosis.version}, while this end allows"
            f" {_allowed(versions)}.",
            mismatch="version",
            local_versions=versions,
            hint="Align min_version/max_version on both ends (TLS 1.2 and 1.3 are the versions"
            " to use).",
            **_peer_facts(diagnosis),
            **common,
        )
    offered = set()
    if f.context is not None:
        offered = {c["name"] for c in f.context.get_ciphers()}
    if diagnosis.cipher is not None and offered and diagnosis.cipher not in offered:
        return E.ProtocolMismatchError(
            f"{where} and this client have no cipher suite in common: it refused this client's"
            f" handshake {how}, and accepts {diagnosis.cipher} ({diagnosis.version}), which"
            " this client does not allow.",
            mismatch="cipher",
            local_versions=versions,
            hint="Enable a modern suite on the server: securelink allows only AEAD suites with"
            " forward secrecy (ECDHE with AES-GCM or ChaCha20-Poly1305, and TLS 1.3). Do not"
            " weaken the client.",
            **_peer_facts(diagnosis),
            **common,
        )
    return None


def _peer_facts(diagnosis: _Diagnosis | None) -> dict[str, str | None]:
    """What the peer chose in a diagnostic handshake, for ProtocolMismatchError."""
    if diagnosis is None or not diagnosis.completed:
        return {"peer_version": None, "peer_cipher": None}
    return {"peer_version": diagnosis.version, "peer_cipher": diagnosis.cipher}


def _certificate_required(
    f: Failure, exc: BaseException, how: str, *, alert: str | None
) -> E.ClientCertificateRequiredError:
    return E.ClientCertificateRequiredError(
        f"{_where(f)} requires a client certificate (mutual TLS), and this client sent none: it"
        f" refused the connection {how}.",
        alert=alert,
        hint="Give the client its certificate and key: ClientOptions(cert=..., key=...), issued"
        " by a CA the server trusts (its client_ca).",
        **_common(f, exc, "peer"),
    )


#: The reason of the ssl.SSLError the stdlib raises when a socket it wraps was reset before the
#: handshake with data unread (a client that sent its ClientHello, then reset): see ssl.py.
_CLOSED_BEFORE = "Closed before TLS handshake with data in recv buffer."
#: asyncio's handshake timeout is a ConnectionAbortedError with this message (sslproto.py), and
#: nothing structured: the seconds are read back from it.  (asyncio's own text, not OpenSSL's.)
_ASYNCIO_TIMEOUT = "SSL handshake is taking longer than "


def asyncio_timeout(exc: BaseException) -> float | None:
    """The seconds of asyncio's handshake timeout, if *exc* is that timeout."""
    if not isinstance(exc, ConnectionAbortedError):
        return None
    text = str(exc)
    if not text.startswith(_ASYNCIO_TIMEOUT):
        return None
    seconds = text[len(_ASYNCIO_TIMEOUT) :].partition(" ")[0]
    try:
        return float(seconds)
    except ValueError:  # pragma: no cover - another Python's wording
        return None


def _seconds(timeout: float) -> str:
    return f"{timeout:g} second{'' if timeout == 1 else 's'}"


def timed_out(
    exc: BaseException, f: Failure, *, timeout: float | None, silent: bool | None = None
) -> E.HandshakeTimeoutError:
    """This end gave up on a handshake after *timeout* seconds; *silent*: the peer never started.

    Whether the peer started is known from the connection (see _sockets.peer_started): a server
    has read a ClientHello once it chose a cipher suite, a client has read a ServerHello.
    """
    where = _where(f)
    me = "this server" if f.role == "server" else "this client"
    after = f" after {_seconds(timeout)}" if timeout is not None else ""
    if f.role == "server":
        if silent:
            what = "the client connected but sent no ClientHello (it never started the handshake)"
            hint = (
                "A client that connects and says nothing is a port check, a stalled client, or a"
                " slow-connection attack; the timeout frees its connection. Raise"
                " handshake_timeout only if real clients are this slow (a very slow network)."
            )
        else:
            what = (
                "the client started the handshake but did not finish it"
                if silent is False
                else "the handshake did not finish"
            )
            hint = (
                "The client may be stalled, on a very slow network, or waiting for something"
                " (a smart card, a user); its logs say which. Raise handshake_timeout only if"
                " real clients are this slow."
            )
    else:
        if silent:
            what = "the server did not answer this client's ClientHello"
        elif silent is False:
            what = "the server answered but did not finish the handshake"
        else:
            what = "the handshake did not finish"
        hint = (
            "The server may be overloaded, or the port may belong to a service that does not"
            " speak TLS and waits for its client to speak first; `openssl s_client -connect"
            " HOST:PORT` shows what it does."
        )
    return E.HandshakeTimeoutError(
        f"{me} gave up on the TLS handshake with {where}{after}: {what}.",
        timeout=timeout,
        silent=silent,
        hint=hint,
        **_common(f, exc, "local"),
    )


def _closed(exc: BaseException, f: Failure) -> E.HandshakeError | None:
    """The peer closed or reset the connection, with no alert we could read."""
    where = _where(f)
    facts = _facts_of(f)
    common = _common(f, exc, "peer")
    if f.op == "handshake":
        text = (
            f"{where} closed the connection during the TLS handshake without saying why (no TLS"
            " alert)."
        )
        if f.role == "server":
            hint = (
                "The client may have rejected this server's certificate without an alert, may not"
                " speak TLS, or may have timed out; its logs say which."
            )
        else:
            hint = (
                "The server may not speak TLS on this port, may have rejected this client, or may"
                " be overloaded; `openssl s_client -connect HOST:PORT` shows what it does."
            )
            # Servers built on asyncio (and some proxies) close without sending their alert:
            # one diagnostic handshake finds out what they refused.
            diagnosis = _diagnose(f, any_cipher=True)
            has_identity = facts.has_identity if facts is not None else None
            if (
                diagnosis is not None
                and diagnosis.certificate_requested
                and has_identity is not True
            ):
                return _certificate_required(
                    f, exc, "by closing it, without an alert, after asking for one", alert=None
                )
            mismatch = _mismatch_found(exc, f, diagnosis, "(without an alert)")
            if mismatch is not None:
                return mismatch
            text += _undiagnosed(f)
        return E.RemoteError(text, alert=None, hint=hint, **common)
    # After a TLS 1.3 handshake the server's verdict on our certificate (or its absence) comes
    # later, and a server that closes at once often resets the connection before its alert can
    # be read.  Until the server has sent data, a reset or EOF may be that verdict; a
    # diagnostic handshake says whether the server refuses clients like this one.  Later
    # failures are ordinary network errors and stay what they are.
    if f.role != "client" or facts is None or not f.first_io or f.version != "TLSv1.3":
        return None
    diagnosis = _diagnose(f, tls13=True)
    if diagnosis is None or not (diagnosis.certificate_requested and diagnosis.refused):
        return None
    surfaced = (
        "(With TLS 1.3 the server's verdict arrives after the handshake, so it surfaced on this"
        f" {'write' if f.op == 'write' else 'read'}.)"
    )
    if not facts.has_identity:
        return E.ClientCertificateRequiredError(
            f"{where} closed the connection right after the handshake: it asked for a client"
            f" certificate (mutual TLS) and this client sent none. {surfaced}",
            alert=None,
            hint="Give the client its certificate and key: ClientOptions(cert=..., key=...),"
            " issued by a CA the server trusts (its client_ca).",
            **common,
        )
    identity = facts.identity
    ours = identity.describe() if identity else "this client's certificate"
    issuer = f" (issued by {identity.issuer!r})" if identity else ""
    return E.CertificateRejectedError(
        f"{where} closed the connection right after a handshake in which it asked for a client"
        f" certificate and got {ours}{issuer}: it rejected it, without an alert that reached"
        f" this client. {surfaced}",
        alert=None,
        certificate=identity,
        hint="The server must trust the CA that issued this certificate"
        f"{' (' + identity.issuer + ')' if identity else ''}; its logs say why it refused.",
        **common,
    )


class _Diagnosis:
    """What one diagnostic handshake found out about the peer (shared: never changed once made)."""

    __slots__ = (
        "answered",
        "certificate_requested",
        "cipher",
        "completed",
        "leaf",
        "refused",
        "version",
    )

    def __init__(self) -> None:
        self.answered = False  # the server answered with a ServerHello
        self.certificate_requested = False  # the server sent a CertificateRequest
        self.completed = False  # the handshake itself succeeded
        self.refused = False  # ...and the server then refused or closed without a word
        self.version: str | None = None
        self.cipher: str | None = None
        self.leaf: bytes | None = None  # the certificate it presented (DER), not verified


def _looking_context() -> ssl.SSLContext:
    """A client context for a diagnostic handshake: it only looks, so it verifies nothing.

    Nothing is trusted or sent over a connection it makes but the handshake itself.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


_VERSION_WORDS = {"TLSv1": "TLS 1.0", "TLSv1.1": "TLS 1.1", "SSLv3": "SSL 3.0"}

# --- diagnostic handshakes: where, how long, how often ----------------------------------------
#
# A diagnostic handshake goes to the exact address the failed connection was connected to (a
# name is never resolved again: it could lead elsewhere), ends by the caller's deadline, and is
# made at most once per server, server name and kind of diagnosis every DIAGNOSIS_TTL seconds,
# one at a time per server: an explanation must not add load to a server that is failing, nor
# connections a monitored server's owner never asked for.  See docs/explain.md.

#: How long (seconds) a diagnosis is remembered and reused instead of probing again, per server
#: address, port, server name and kind of diagnosis.
DIAGNOSIS_TTL = 30.0
#: The most time (seconds) the diagnosis of one failure may take; less when the caller's own
#: time limit (a socket's timeout, ``connect(timeout=...)``) runs out sooner.
DIAGNOSIS_SECONDS = 2.0
#: With less time than this left (seconds), no diagnostic connection is started.
_DIAGNOSIS_MIN = 0.02
#: At most this many diagnoses are remembered (the oldest go first).
_DIAGNOSES_KEPT = 256

#: The exact address and the deadline (``time.monotonic()``) of the call being explained, for
#: the paths whose failure does not carry them: ``connect()`` with a context securelink did not
#: build, and securelink.aio, whose explanation runs in a thread.
diagnosis_scope: contextvars.ContextVar[tuple[tuple[str, int] | None, float | None] | None] = (
    contextvars.ContextVar("securelink_diagnosis_scope", default=None)
)

_Found = _Diagnosis | str | None
# key -> (when it was made, what it found, why it found nothing)
_diagnoses: dict[tuple[object, ...], tuple[float, _Found, str | None]] = {}
# server -> a lock held while a diagnostic handshake to it is under way
_in_flight: dict[tuple[str, int], Any] = {}
_diagnoses_lock = _thread.allocate_lock()
#: Diagnostic connections opened since the module was loaded (the tests' and bench's count).
diagnostic_connections = 0


def _forget_diagnoses() -> None:
    """Forget every remembered diagnosis (the next failure probes afresh)."""
    with _diagnoses_lock:
        _diagnoses.clear()


def _diagnosis_plan(f: Failure) -> tuple[tuple[str, int], float] | None:
    """Where a diagnostic handshake for *f* goes, and by when it must be over; ``None``: none.

    Sets ``f.undiagnosed`` when a diagnosis is not allowed or there is no time left for one.
    """
    if f.role != "client" or not f.diagnose:
        return None
    facts = _facts_of(f)
    if facts is not None and not facts.diagnose:
        f.undiagnosed = "off"
        return None
    scope = diagnosis_scope.get()
    target = scope[0] if scope is not None else None
    if target is None and f.peer is not None:
        # Only explain(peer=(name, port)) gets here with a name: resolving it is the caller's
        # request (and an asyncio loop whose transport securelink cannot see, such as uvloop).
        target = (f.peer[0], f.peer[1])
    if target is None:
        return None
    now = time.monotonic()
    limits = [now + DIAGNOSIS_SECONDS]
    if f.deadline is not None:
        limits.append(f.deadline)
    if scope is not None and scope[1] is not None:
        limits.append(scope[1])
    # Kept on the failure, so that every diagnostic handshake of one explanation shares it.
    f.deadline = min(limits)
    if f.deadline - now < _DIAGNOSIS_MIN:
        f.undiagnosed = "time"
        return None
    return target, f.deadline


def _remembered(
    f: Failure,
    key: tuple[object, ...],
    server: tuple[str, int],
    deadline: float,
    probe: Callable[[], tuple[_Found, str | None]],
) -> _Found:
    """What *probe* finds, remembered under *key*, one probe at a time per *server*."""
    global diagnostic_connections
    while True:
        with _diagnoses_lock:
            hit = _diagnoses.get(key)
            if hit is not None and time.monotonic() - hit[0] < DIAGNOSIS_TTL:
                if hit[1] is None and hit[2] is not None:
                    # A stalled server is not probed again: say it is the remembered answer.
                    f.undiagnosed = "remembered " + hit[2]
                return hit[1]
            stalled = _diagnoses.get(("stalled", server))
            if stalled is not None and time.monotonic() - stalled[0] < DIAGNOSIS_TTL:
                # It did not answer a diagnostic handshake of another kind in time: no other
                # kind is tried on it either, for as long.
                f.undiagnosed = "remembered time"
                return None
            busy = _in_flight.get(server)
            if busy is None:
                mine = _thread.allocate_lock()
                mine.acquire()
                _in_flight[server] = mine
                diagnostic_connections += 1
                break
        # Another failure is diagnosing this server: wait for it (within this caller's time),
        # then look again; its finding may be the one wanted.
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not busy.acquire(timeout=remaining):
            f.undiagnosed = "busy"
            return None
        busy.release()
    found: _Found = None
    why: str | None = None
    try:
        found, why = probe()
    finally:
        with _diagnoses_lock:
            _diagnoses.pop(key, None)
            _diagnoses[key] = (time.monotonic(), found, why)
            if why == "time":
                _diagnoses.pop(("stalled", server), None)
                _diagnoses[("stalled", server)] = (time.monotonic(), None, why)
            while len(_diagnoses) > _DIAGNOSES_KEPT:
                del _diagnoses[next(iter(_diagnoses))]
            del _in_flight[server]
        mine.release()
    if found is None and why is not None:
        f.undiagnosed = why
    return found


def _open(target: tuple[str, int], deadline: float) -> socket.socket | None:
    """A TCP connection to *target* whose operations all end by *deadline*; ``None``: none."""
    try:
        raw = socket.create_connection(target, timeout=max(deadline - time.monotonic(), 0.001))
    except OSError:
        return None  # nobody answers any more, or not in time: no evidence either way
    left = deadline - time.monotonic()
    if left <= 0:
        raw.close()
        return None
    # CPython's handshake counts the socket's timeout once, for the whole handshake.
    raw.settimeout(left)
    return raw


def _deprecated_version(f: Failure) -> str | None:
    """The deprecated version (``"TLSv1.1"``, ``"TLSv1"``) the server takes, if any.

    One diagnostic handshake offering only TLS 1.0 and 1.1, made only after a handshake offering
    TLS 1.2 and 1.3 failed for no reason that can be read: it verifies nothing, sends no data,
    and is closed at once.  Its only use is to say "the server speaks only TLS 1.1".  Like
    :func:`_diagnose`, it goes to the failed connection's address, within the caller's time,
    and is remembered.
    """
    plan = _diagnosis_plan(f)
    if plan is None:
        return None
    target, deadline = plan
    import warnings

    ctx = _looking_context()
    with warnings.catch_warnings():
        # The stdlib warns that these versions are deprecated, which is the point.
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            ctx.minimum_version = ssl.TLSVersion.TLSv1
            ctx.maximum_version = ssl.TLSVersion.TLSv1_1
            # OpenSSL 3 allows the old versions only at security level 0.
            ctx.set_ciphers("ALL:@SECLEVEL=0")
        except (ValueError, ssl.SSLError):  # pragma: no cover - an OpenSSL built without them
            return None

    def probe() -> tuple[_Found, str | None]:
        raw = _open(target, deadline)
        if raw is None:
            return None, None
        with raw:
            try:
                with ctx.wrap_socket(raw, server_hostname=f.server_hostname) as tls:
                    version = tls.version()
            except TimeoutError:
                return None, "time"
            except (OSError, ValueError):
                return None, None  # it does not speak them either: no evidence
        return (version if version in _VERSION_WORDS else None), None

    key = (target, f.server_hostname, "deprecated")
    found = _remembered(f, key, target, deadline, probe)
    return found if isinstance(found, str) else None


def _diagnose(f: Failure, *, tls13: bool = False, any_cipher: bool = False) -> _Diagnosis | None:
    """Make one diagnostic handshake to the peer and report what it shows.

    Only used on the failure path, where the failed connection no longer says whether the
    server asked for a client certificate, or which cipher suites it accepts.  Nothing is
    verified, trusted or sent over it but a handshake; it is closed at once.  The server's
    ``CertificateRequest`` is seen through the context's (private, 3.10+) message callback, the
    only place the stdlib shows it.

    It goes to the exact address the failed connection had (:data:`diagnosis_scope`'s, or else
    ``f.peer``: a socket's peer address), sends ``f.server_hostname`` as SNI, ends by the
    caller's deadline, and its finding is remembered for :data:`DIAGNOSIS_TTL` seconds (see
    :func:`_remembered`).

    Args:
        f: The failure; its address is connected to, its ``server_hostname`` sent as SNI.
        tls13: Offer TLS 1.3 only (the failure happened after a TLS 1.3 handshake).
        any_cipher: Offer every cipher suite OpenSSL has (the NULL ones too: nothing is sent
            over it) and TLS 1.2 and 1.3, to learn which version and suite the server takes.

    Returns:
        The findings, or ``None`` when no diagnostic connection could be made (``f.undiagnosed``
        says why, when the reason is not the server's).
    """
    plan = _diagnosis_plan(f)
    if plan is None:
        return None
    target, deadline = plan
    ctx = _looking_context()
    modern = (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3)
    if tls13:
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    elif any_cipher:
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2  # every version securelink could allow
    elif f.context is not None:
        # The versions the failed connection offered (never a deprecated one: that would warn).
        if f.context.minimum_version in modern:
            ctx.minimum_version = f.context.minimum_version
        if f.context.maximum_version in modern:
            ctx.maximum_version = f.context.maximum_version
    if any_cipher:
        # "ALL" leaves out the NULL suites (no encryption), which a misconfigured server may be
        # the only one to take; this handshake carries no data, so offering them is harmless.
        ctx.set_ciphers("ALL:eNULL:@SECLEVEL=0")

    def probe() -> tuple[_Found, str | None]:
        found = _Diagnosis()

        def observe(
            conn: object,
            direction: str,
            version: object,
            content_type: object,
            msg_type: object,
            data: bytes,
        ) -> None:
            if direction != "read" or content_type != 22:  # 22: handshake messages
                return
            if msg_type == 2:  # ServerHello
                found.answered = True
            elif msg_type == 13:  # CertificateRequest
                found.certificate_requested = True

        ctx._msg_callback = observe  # type: ignore[attr-defined]
        raw = _open(target, deadline)
        if raw is None:
            return None, None
        with raw:
            try:
                tls = ctx.wrap_socket(raw, server_hostname=f.server_hostname)
            except TimeoutError:
                return None, "time"  # a slow server is no evidence
            except (OSError, ValueError):
                # Refused before it even answered (a server that has gone, or one that serves
                # one connection at a time) says nothing about what it asks of clients.
                found.refused = True
                return (found if found.answered else None), None
            with tls:
                found.completed = True
                found.version = tls.version()
                cipher = tls.cipher()
                found.cipher = cipher[0] if cipher else None
                found.leaf = tls.getpeercert(binary_form=True)
                if not found.certificate_requested:
                    return found, None  # no verdict on a client certificate to wait for
                left = deadline - time.monotonic()
                if left <= 0:
                    return found, None  # no time to wait for the verdict: not refused, then
                tls.settimeout(min(0.5, left))
                try:
                    # A TLS 1.3 server's verdict on the client arrives after the handshake.
                    found.refused = not tls.recv(1)
                except TimeoutError:
                    found.refused = False  # it waits for a request: it accepted this client
                except OSError:
                    found.refused = True  # an alert, or a reset
        return found, None

    key = (
        target,
        f.server_hostname,
        "handshake",
        tls13,
        any_cipher,
        ctx.minimum_version,
        ctx.maximum_version,
    )
    found = _remembered(f, key, target, deadline, probe)
    return found if isinstance(found, _Diagnosis) else None


_UNDIAGNOSED = {
    "off": "Diagnostic handshakes are off (ClientOptions(diagnose=False))",
    "time": "The diagnostic handshake did not finish within this call's time limit",
    "remembered time": "A diagnostic handshake to this server in the last 30 seconds got no"
    " answer in time, and it is not probed again so soon",
    "busy": "Another diagnosis of this server was still under way",
}


def _undiagnosed(f: Failure) -> str:
    """What the explanation could not tell, and why: a sentence, or ``""``."""
    why = _UNDIAGNOSED.get(f.undiagnosed or "")
    if why is None:
        return ""
    return (
        f" ({why}, so securelink cannot tell whether the server requires a client certificate,"
        " speaks only a deprecated TLS version, or has no cipher suite in common with this"
        " client.)"
    )


# --- public entry points ---------------------------------------------------------------------


def explain(
    exc: BaseException,
    *,
    server_hostname: str | None = None,
    context: ssl.SSLContext | None = None,
    peer: tuple[str, int] | None = None,
) -> E.SecureLinkError:
    """Explain an exception raised by code that did not use a securelink context.

    *exc* may be the ``ssl`` or socket error itself, or an exception of an HTTP library that
    wraps one: the chain is walked to the TLS or connection error inside (``__cause__``,
    ``__context__``, ``args``, and the attributes httpx, httpcore, requests, urllib3, aiohttp
    and urllib keep it in; see :doc:`explain`).  Exceptions that are already securelink errors,
    or hold one, give back that explanation unchanged.

    Without the connection itself the chain the peer presented is unknown, so the explanation
    names what the exception and the arguments say.  When *peer* is given, one diagnostic
    handshake to it (never from inside a running event loop) finds out what the error alone
    cannot: whether a TLS 1.2 ``handshake failure`` alert meant a missing client certificate or
    no common cipher suite, and which names the certificate of a name mismatch holds.  A TLS or
    connection error securelink does not recognise becomes :class:`~securelink.HandshakeError`
    (never dropped).

    Args:
        exc: The exception: an ``ssl.SSLError``, a ``ConnectionError`` or ``TimeoutError``, or
            one that wraps one, such as ``httpx.ConnectError``, ``requests.exceptions.SSLError``
            or ``urllib.error.URLError``.
        server_hostname: The name the client connected to, if known.
        context: The context that was used, for what it trusted.
        peer: The ``(host, port)`` connected to, if known.

    Returns:
        The explanation, with *exc* as its ``__cause__``.

    Raises:
        TypeError: *exc* neither is nor holds a TLS or connection error (a ``KeyError``, an
            HTTP status error): there is nothing to explain.
    """
    from ._unwrap import find_failure

    inner = find_failure(exc)
    if inner is None:
        raise TypeError(
            "securelink.explain() explains TLS and connection errors (an ssl.SSLError, a"
            " ConnectionError or TimeoutError, or an exception that wraps one), and"
            f" {exc!r} holds none"
        )
    if isinstance(inner, E.SecureLinkError):  # explained already, by a securelink context
        return inner
    reason = getattr(inner, "reason", None)
    role = (
        "server"
        if (context is not None and context.protocol == ssl.PROTOCOL_TLS_SERVER)
        or (isinstance(reason, str) and reason in _SERVER_ONLY_REASONS)
        else "client"
    )
    f = Failure(
        role=role,
        op="connect" if isinstance(inner, ConnectionRefusedError) else "handshake",
        server_hostname=server_hostname,
        peer=peer,
        context=context,
        diagnose=peer is not None and not _in_event_loop(),
    )
    result = translate(_complete(inner), f)
    if isinstance(result, E.HostnameMismatchError) and result.certificate is None:
        result = _with_presented_names(inner, f) or result
    if result is None:
        result = E.HandshakeError(
            f"the connection failed: {inner}.",
            side="local",
            role=role,
            server_hostname=server_hostname,
            peer=peer,
            library=getattr(inner, "library", None),
            reason=reason if isinstance(reason, str) else None,
            hint="securelink does not recognise this failure; the original error is attached as"
            " __cause__.",
        )
        _keep_errno(result, inner)
    result.__cause__ = exc
    return result


# OpenSSL reasons only a server's handshake gives: explain() speaks as the server for them even
# without the server's context (a plaintext HTTP request reached a TLS server).
_SERVER_ONLY_REASONS = frozenset(
    {"HTTP_REQUEST", "HTTPS_PROXY_REQUEST", "PEER_DID_NOT_RETURN_A_CERTIFICATE"}
)
# X509_V_ERR_UNSPECIFIED: the code given to a verification error that carried none.
_UNSPECIFIED = 1
# The layout of the message the ssl module gives a verification error (Modules/_ssl.c):
# "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: <verify_message> (_ssl.c:<line>)".
_VERIFY_PREFIX = "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: "
_VERIFY_SUFFIX = " (_ssl.c:"


def _complete(exc: BaseException) -> BaseException:
    """*exc*, or a stand-in with the fields the translation reads, when *exc* lacks them.

    The ssl module sets ``library`` and ``reason`` (and ``verify_code`` and ``verify_message``)
    on the errors it raises; an error of these classes made elsewhere (aiohttp makes
    ``ssl.SSLCertVerificationError`` subclasses, and copies made from ``args`` lose them) has
    none.  What the ssl module's own message layout holds is taken back from it; the rest is
    left unknown, and a verification error without a code is given X509_V_ERR_UNSPECIFIED.
    """
    if not isinstance(exc, ssl.SSLError):
        return exc
    verifying = isinstance(exc, ssl.SSLCertVerificationError)
    complete = hasattr(exc, "reason") and hasattr(exc, "library")
    if verifying:
        complete = complete and isinstance(getattr(exc, "verify_code", None), int)
        complete = complete and isinstance(getattr(exc, "verify_message", None), str)
    if complete:
        return exc
    library = getattr(exc, "library", None)
    reason = getattr(exc, "reason", None)
    if not verifying:
        plain = ssl.SSLError(*exc.args)
        plain.library, plain.reason = library, reason  # type: ignore[assignment]  # may be None
        return plain
    text = exc.args[1] if len(exc.args) == 2 and isinstance(exc.args[1], str) else str(exc)
    code = getattr(exc, "verify_code", None)
    message = getattr(exc, "verify_message", None)
    if not isinstance(message, str):
        message = _stdlib_verify_message(text)
    stand_in = ssl.SSLCertVerificationError(*exc.args)
    stand_in.library = library or "SSL"
    stand_in.reason = reason or "CERTIFICATE_VERIFY_FAILED"
    stand_in.verify_code = code if isinstance(code, int) else _UNSPECIFIED
    stand_in.verify_message = message or ""
    return stand_in


def _stdlib_verify_message(text: str) -> str | None:
    """The verify message in the ssl module's layout of a verification error's text, if any."""
    if not text.startswith(_VERIFY_PREFIX):
        return None
    message, suffix, line = text[len(_VERIFY_PREFIX) :].rpartition(_VERIFY_SUFFIX)
    if not suffix or not line.endswith(")") or not line[:-1].isdigit():
        return None
    return message or None


def _with_presented_names(inner: BaseException, f: Failure) -> E.HostnameMismatchError | None:
    """The name mismatch explained with the names the server's certificate holds.

    The error alone does not carry the certificate, so it cannot say which names it holds.
    With *f.peer* known, one diagnostic handshake (nothing verified, nothing sent) fetches the
    certificate the server presents for the same name.
    """
    if f.role != "client" or not f.diagnose:
        return None
    diagnosis = _diagnose(f)
    if diagnosis is None or diagnosis.leaf is None:
        return None
    f.chain = [diagnosis.leaf]
    found = translate(_complete(inner), f)
    return found if type(found) is E.HostnameMismatchError else None


def _in_event_loop() -> bool:
    # A diagnostic handshake blocks; never inside a running event loop.  asyncio is only
    # consulted when the program already imported it (it is too heavy to import for this).
    asyncio = sys.modules.get("asyncio")
    if asyncio is None:
        return False
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class translate_errors:
    """A context manager that raises the explanation of a TLS failure ``from`` the original.

    TLS and connection failures (an ``ssl.SSLError`` or a ``ConnectionError``, also inside the
    exceptions of urllib, httpx, requests, urllib3 and aiohttp, found as
    :func:`~securelink.explain` finds them) are explained; every other exception (a
    ``KeyError``, an HTTP 404, a DNS error, a timeout) is re-raised unchanged, as the same
    object.  A securelink error inside a library's exception (raised by a securelink context)
    is raised itself, with its own cause.

    For code that uses contexts securelink did not build, or helpers that hide the socket::

        with securelink.translate_errors(server_hostname="api.example"):
            urllib.request.urlopen("https://api.example/")

    Args:
        server_hostname: The name connected to, if known.
        context: The context used, if known.
        peer: The ``(host, port)`` connected to, if known.

    Raises:
        SecureLinkError: On leaving the block, the explanation of the TLS or connection
            failure raised in it (its ``__cause__`` is the original exception).
    """

    def __init__(
        self,
        *,
        server_hostname: str | None = None,
        context: ssl.SSLContext | None = None,
        peer: tuple[str, int] | None = None,
    ) -> None:
        self.server_hostname = server_hostname
        self.context = context
        self.peer = peer

    def __enter__(self) -> translate_errors:
        return self

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        # KeyboardInterrupt, a cancellation, and securelink's own errors go on as they are.
        if not isinstance(exc, Exception) or isinstance(exc, E.SecureLinkError):
            return
        from ._unwrap import find_failure

        inner = find_failure(exc)
        if isinstance(inner, E.SecureLinkError):
            # A library wrapped an explanation made by a securelink context: unwrap it, and
            # keep its own cause (the original ssl error).
            raise inner
        if not isinstance(inner, ssl.SSLError | ConnectionError):
            return  # not a TLS or connection failure (a KeyError, an HTTP 404): not ours
        raise explain(
            exc, server_hostname=self.server_hostname, context=self.context, peer=self.peer
        ) from exc
