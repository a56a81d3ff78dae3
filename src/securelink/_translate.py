"""Raw ``ssl`` and socket errors -> securelink errors that name the facts and the fix.

Translation is keyed on stable fields (``verify_code``, OpenSSL's ``reason``, the exception
class), never on message text, which differs between builds.  What OpenSSL's exception lacks (the
certificate, the names, the dates) comes from the connection itself at the failure point: the
chain the peer presented, the context's trust anchors, and what securelink recorded when it built
the context.  See ``../shared/reference/tls-error-catalog.md`` for the raw behaviour this relies
on.
"""

from __future__ import annotations

import socket
import ssl
import sys
import weakref

from . import errors as E

TYPE_CHECKING = False
if TYPE_CHECKING:
    import datetime
    from typing import Any

    from ._summary import CertificateSummary

__all__ = ["ContextFacts", "Failure", "explain", "register", "translate", "translate_errors"]


class ContextFacts:
    """What securelink knows about a context it built, for explanations."""

    __slots__ = ("__weakref__", "has_identity", "identity", "role", "trusted", "versions")

    def __init__(
        self,
        *,
        role: str,
        trusted: str,
        versions: tuple[str, ...],
        identity: CertificateSummary | None,
    ) -> None:
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
    """

    __slots__ = (
        "chain",
        "context",
        "diagnose",
        "first_io",
        "op",
        "peer",
        "role",
        "server_hostname",
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
    ) -> None:
        self.diagnose = diagnose
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
    from ._summary import CertificateSummary

    out = []
    for der in ders:
        try:
            out.append(CertificateSummary.from_der(der))
        except ValueError:  # pragma: no cover - OpenSSL accepted it, so it parses
            continue
    return tuple(out)


def _utcnow() -> datetime.datetime:
    import datetime

    return datetime.datetime.now(datetime.UTC)


def _days(delta: datetime.timedelta) -> str:
    seconds = abs(delta.total_seconds())
    if seconds < 2 * 86400:
        hours = int(seconds // 3600)
        return (
            f"{hours} hour{'s' if hours != 1 else ''}" if hours else f"{int(seconds // 60)} minutes"
        )
    return f"{round(seconds / 86400)} days"  # to the nearest day: 4 days 23 hours is "5 days"


def _trusted(f: Failure) -> str:
    facts = facts_for(f.context)
    if facts is not None:
        return facts.trusted
    if f.context is not None:
        try:
            cas = f.context.get_ca_certs()
        except (ssl.SSLError, ValueError):  # pragma: no cover
            cas = []
        return f"{len(cas)} CA certificates loaded into the context"
    return "the CAs this end was configured with"


def _cert_label(f: Failure) -> str:
    return "client certificate" if f.role == "server" else "server certificate"


# --- verification failures -------------------------------------------------------------------

_VERIFY_TEXT: dict[int, tuple[str, str]] = {
    # code: (what it means, what to do)
    2: (
        "the issuer of a certificate in the chain could not be found",
        "Trust the root CA of the chain, or have the peer send its complete chain.",
    ),
    3: (
        "a certificate revocation list (CRL) was required but none is available",
        "Provide the CRL, or do not require CRL checks.",
    ),
    4: (
        "a certificate's signature could not be decrypted",
        "The certificate is damaged; reissue it.",
    ),
    7: (
        "a certificate's signature does not verify: it was not signed by the issuer it names",
        "The certificate or chain is corrupt or forged; reissue it from the right CA.",
    ),
    23: ("a certificate in the chain has been revoked", "Reissue the revoked certificate."),
    24: (
        "a certificate in the chain acts as a CA but is not a valid CA certificate",
        "The issuing certificate needs basicConstraints CA:TRUE; issue leaves from a real CA.",
    ),
    25: (
        "the chain is longer than a CA's path length constraint allows",
        "Issue the certificate from a CA higher up, or reissue the intermediate with a larger"
        " path length.",
    ),
    26: (
        "a certificate is not allowed for this purpose (its extended key usage lacks"
        " serverAuth for a server, or clientAuth for a client)",
        "Reissue the certificate with the right extended key usage (serverAuth for servers,"
        " clientAuth for clients).",
    ),
    66: (
        "a certificate's key is too small for OpenSSL's security level (RSA under 2048 bits)",
        "Reissue it with an ECDSA P-256 or RSA-2048 (or larger) key.",
    ),
    67: (
        "a CA certificate's key is too small for OpenSSL's security level",
        "Replace the CA with one that uses an ECDSA P-256 or RSA-2048 (or larger) key.",
    ),
    68: (
        "a certificate is signed with a digest that is too weak (SHA-1 or MD5)",
        "Reissue it with a SHA-256 signature.",
    ),
    79: (
        "a CA certificate is not marked critical or lacks required fields (RFC 5280 strict mode)",
        "Reissue the CA with basicConstraints marked critical and keyUsage set.",
    ),
    83: (
        "a certificate has a missing or malformed extension required in strict mode",
        "Reissue it with standard extensions (subject and authority key identifiers, key usage).",
    ),
    85: (
        "a certificate lacks the Authority Key Identifier extension, which strict mode requires"
        " (Python 3.13 turns strict mode on by default)",
        "Reissue it with an authorityKeyIdentifier (every modern CA, and securelink.devca, adds"
        " one).",
    ),
    86: (
        "a CA certificate lacks the Subject Key Identifier extension, which strict mode requires",
        "Reissue the CA with a subjectKeyIdentifier.",
    ),
    89: (
        "a CA certificate's basicConstraints extension is not marked critical, which strict mode"
        " requires",
        "Reissue the CA with basicConstraints marked critical.",
    ),
    92: (
        "a CA certificate lacks the keyUsage extension, which strict mode requires",
        "Reissue the CA with keyUsage keyCertSign (and cRLSign).",
    ),
}


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
    where = _where(f)
    which = _cert_label(f)
    if code in (62, 64):
        expected = f.server_hostname or _quoted(message) or "?"
        presented = leaf.names if leaf else ()
        cn = leaf.common_name if leaf else None
        if leaf is None:  # explain() without the connection: the names are unknown here
            text = f"the {which} of {where} is not valid for {expected!r}."
        elif presented:
            text = f"the {which} of {where} is valid for {', '.join(presented)}, not {expected!r}."
        elif cn:
            text = (
                f"the {which} of {where} has no SubjectAltName, only the Common Name {cn!r};"
                f" Common Names are not checked (RFC 6125, as in browsers and Go: they are"
                f" ambiguous and were deprecated in 2000), so it is not valid for {expected!r}."
            )
        else:
            text = (
                f"the {which} of {where} names no host at all, so it is not valid for {expected!r}."
            )
        hint = (
            "Connect with a name the certificate holds, or reissue it with"
            f" {expected!r} as a SubjectAltName."
        )
        if not presented and cn:
            hint = f"Reissue the certificate with {cn!r} as a SubjectAltName (DNS or IP)."
        if presented and code == 64:
            hint = (
                f"Connect by a name the certificate holds, or reissue it with the IP address"
                f" {expected} as an IP SubjectAltName."
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
    if code in (9, 10):
        now = _utcnow()
        pool = built or chain
        if code == 10:
            bad = next((c for c in pool if c.not_after < now), leaf)
            if bad is not None:
                ago = now - bad.not_after
                text = (
                    f"{bad.describe()} (issued by {bad.issuer!r}), presented by {where}, expired"
                    f" on {bad.not_after:%Y-%m-%d %H:%M:%S} UTC, {_days(ago)} ago."
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
        bad = next((c for c in pool if c.not_before > now), leaf)
        if bad is not None:
            until = bad.not_before - now
            text = (
                f"{bad.describe()}, presented by {where}, is not valid until"
                f" {bad.not_before:%Y-%m-%d %H:%M:%S} UTC, {_days(until)} from now."
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
    if code in (2, 18, 19, 20, 21):  # the chain does not reach a trusted CA
        return _unknown_authority(exc, f, chain, base)
    meaning, fix = _VERIFY_TEXT.get(
        code,
        (
            f"OpenSSL reported verification error {code} ({message})",
            "Inspect the chain with `openssl s_client -showcerts` and fix the certificate.",
        ),
    )
    subject = f" ({leaf.describe()})" if leaf else ""
    return E.CertificateVerificationError(
        f"the {which} of {where}{subject} failed verification: {meaning}.",
        certificate=leaf,
        hint=fix,
        **base,
    )


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
    if code == 18 or (leaf is not None and leaf.self_signed and len(chain) == 1):
        kind = "self-signed"
        issuer = leaf.subject if leaf else "(unknown)"
        text = (
            f"{leaf.describe() if leaf else 'the certificate'} presented by {where} is"
            " self-signed: it vouches for itself, and it is not among the trusted CAs"
            f" ({trusted})."
        )
        hint = (
            "Issue the peer's certificate from a CA and trust that CA (ca= on a client,"
            " client_ca= on a server); for development, securelink.devca or minica makes one."
            " Do not turn verification off."
        )
    elif code == 19 or (last is not None and last.self_signed):
        kind = "untrusted-root"
        issuer = last.subject if last else "(unknown)"
        text = (
            f"the {which} chain presented by {where} ends at the root {issuer!r}, which is not"
            f" among the trusted CAs ({trusted})."
        )
        hint = f"Trust that root CA ({issuer}) if it is yours; never turn verification off."
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
        issuer = leaf.issuer if leaf else "(unknown)"
        subject = leaf.describe() if leaf else f"the {which}"
        text = (
            f"{subject}, presented by {where}, was issued by {issuer!r}, which is not among"
            f" the trusted CAs ({trusted})."
        )
        hint = (
            f"If {issuer!r} is your CA, trust it (ca= on a client, client_ca= on a server). If it"
            " is an intermediate, the peer must send it along with its certificate (an"
            " incomplete chain). Do not turn verification off."
        )
    return E.UnknownAuthorityError(
        text, kind=kind, issuer=issuer, trusted=trusted, certificate=leaf, hint=hint, **base
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
    except (ValueError, x509.ExtensionNotFound):
        return False
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
    if isinstance(exc, ConnectionRefusedError) and f.op == "connect" and f.peer:
        host, port = f.peer
        return E.NothingListeningError(
            f"nothing is listening on {host} port {port}: the connection was refused before any"
            " TLS was spoken.",
            host=host,
            port=port,
            hint="Check the port number, and that the server is running and listening on that"
            " address (a server bound to 127.0.0.1 cannot be reached by another address).",
        )
    if isinstance(exc, ssl.SSLCertVerificationError):
        return _verification(exc, f)
    if isinstance(exc, ssl.SSLError):
        return _ssl_error(exc, f)
    if isinstance(exc, ConnectionResetError | BrokenPipeError | ConnectionAbortedError):
        return _closed(exc, f)
    return None


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


def _ssl_error(exc: ssl.SSLError, f: Failure) -> E.HandshakeError | None:
    reason = exc.reason or ""
    where = _where(f)
    alert = _ALERTS.get(reason)
    facts = _facts_of(f)
    if isinstance(exc, ssl.SSLEOFError):
        return _closed(exc, f)
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
    if reason in _VERSION_MISMATCH:
        side = "peer" if reason.startswith("TLSV1_ALERT") else "local"
        refused = "the peer refused them" if side == "peer" else "the peer offered others"
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
            hint="securelink allows only AEAD suites with forward secrecy (ECDHE/DHE with"
            " AES-GCM or ChaCha20-Poly1305, and TLS 1.3): enable one of them on the peer."
            if reason != "NO_SHARED_CIPHER" or f.role != "server" or (facts and facts.has_identity)
            else "This server has no certificate loaded.",
            **_common(f, exc, "local"),
        )
    if reason == "PEER_DID_NOT_RETURN_A_CERTIFICATE":
        return E.ClientCertificateRequiredError(
            f"{where} sent no certificate, and this server requires one (mutual TLS).",
            alert=None,
            hint="Give the client a certificate issued by a CA in this server's client_ca (on a"
            " securelink client: ClientOptions(cert=..., key=...)).",
            **_common(f, exc, "local"),
        )
    if alert is not None:
        return _alert(exc, f, alert)
    if f.op != "handshake":
        return None
    return E.HandshakeError(
        f"the TLS handshake with {where} failed: {reason or exc}.",
        hint="securelink does not recognise this failure; the original error is attached as"
        " __cause__. `openssl s_client -connect HOST:PORT` (or s_server) helps to see more.",
        **_common(f, exc, "local"),
    )


def _alert(exc: ssl.SSLError, f: Failure, alert: str) -> E.HandshakeError:
    where = _where(f)
    facts = _facts_of(f)
    identity = facts.identity if facts is not None else None
    # None: a context securelink did not build, so whether it holds a certificate is unknown.
    has_identity = facts.has_identity if facts is not None else None
    common = _common(f, exc, "peer")
    if f.role == "client" and alert == "certificate required":
        # TLS 1.3's own alert for exactly this: nothing else to find out.
        return _certificate_required(
            f, exc, "with a 'certificate required' alert (TLS 1.3)", alert=alert
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
        return _certificate_required(
            f, exc, f"with a '{alert}' alert after asking for one", alert=alert
        )
    if alert in _CERTIFICATE_ALERTS and (has_identity is not False or f.role == "server"):
        ours = identity.describe() if identity else f"this {f.role}'s certificate"
        issuer = f" (issued by {identity.issuer!r})" if identity else ""
        verdicts = {
            "unknown CA": "does not trust its issuer",
            "certificate expired": "considers it expired",
            "unsupported certificate": "does not accept it for this use (key usage or extended"
            " key usage)",
            "certificate revoked": "considers it revoked",
        }
        verdict = verdicts.get(alert, f"rejected it ('{alert}')")
        return E.CertificateRejectedError(
            f"{where} rejected {ours}{issuer}: it {verdict}.",
            alert=alert,
            certificate=identity,
            hint=(
                f"The peer must trust the CA that issued this certificate"
                f"{' (' + identity.issuer + ')' if identity else ''}: add it to its CA list"
                " (client_ca= on a securelink server, ca= on a client)."
                if alert in {"unknown CA", "bad certificate", "certificate unknown"}
                else "Check the certificate's dates and extended key usage (serverAuth for a"
                " server, clientAuth for a client), and reissue it if needed."
            ),
            **common,
        )
    if f.role == "client" and alert == "handshake failure" and not f.chain:
        mismatch = _mismatch_found(exc, f, diagnosis, "('handshake failure' alert)")
        if mismatch is not None:
            return mismatch
        return E.ProtocolMismatchError(
            f"{where} refused the handshake before sending its certificate ('handshake failure'"
            " alert): most often the two ends have no cipher suite or signature algorithm in"
            " common.",
            mismatch="unknown",
            local_versions=_versions(f),
            hint="Compare the cipher suites both ends allow (`openssl s_client -connect HOST:PORT"
            " -tls1_2` shows what the server accepts).",
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
        f"{where} refused the connection with a '{alert}' alert.",
        alert=alert,
        hint="The peer's logs say why it refused; the alert names the category.",
        **common,
    )


def _mismatch_found(
    exc: BaseException, f: Failure, diagnosis: _Diagnosis | None, how: str
) -> E.ProtocolMismatchError | None:
    """A version or cipher mismatch, if a diagnostic handshake offering everything shows one."""
    if diagnosis is None or not diagnosis.completed or diagnosis.version is None:
        return None
    where = _where(f)
    versions = _versions(f)
    common = _common(f, exc, "peer")
    if versions and diagnosis.version not in versions:
        return E.ProtocolMismatchError(
            f"{where} and this client have no TLS version in common: it refused this client's"
            f" handshake {how}, and speaks {diagnosis.version}, while this end allows"
            f" {_allowed(versions)}.",
            mismatch="version",
            local_versions=versions,
            hint="Align min_version/max_version on both ends (TLS 1.2 and 1.3 are the versions"
            " to use).",
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
            **common,
        )
    return None


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
            if diagnosis is not None:
                if diagnosis.certificate_requested and has_identity is not True:
                    return _certificate_required(
                        f, exc, "by closing it, without an alert, after asking for one", alert=None
                    )
                mismatch = _mismatch_found(exc, f, diagnosis, "(without an alert)")
                if mismatch is not None:
                    return mismatch
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
    """What one diagnostic handshake found out about the peer."""

    __slots__ = (
        "answered",
        "certificate_requested",
        "cipher",
        "completed",
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


def _diagnose(f: Failure, *, tls13: bool = False, any_cipher: bool = False) -> _Diagnosis | None:
    """Make one diagnostic handshake to the peer and report what it shows.

    Only used on the failure path, where the failed connection no longer says whether the
    server asked for a client certificate, or which cipher suites it accepts.  Nothing is
    verified, trusted or sent over it but a handshake; it is closed at once.  The server's
    ``CertificateRequest`` is seen through the context's (private, 3.10+) message callback, the
    only place the stdlib shows it.

    Args:
        f: The failure; its ``peer`` is connected to, its ``server_hostname`` sent as SNI.
        tls13: Offer TLS 1.3 only (the failure happened after a TLS 1.3 handshake).
        any_cipher: Offer every cipher suite OpenSSL has and TLS 1.2 and 1.3, to learn which
            version and suite the server takes.

    Returns:
        The findings, or ``None`` when no diagnostic connection could be made.
    """
    if f.peer is None or f.role != "client" or not f.diagnose:
        return None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # diagnosis only: nothing is trusted or sent over it
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
        ctx.set_ciphers("ALL:@SECLEVEL=0")
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
    try:
        raw = socket.create_connection(f.peer[:2], timeout=2.0)
    except OSError:
        return None  # nobody answers any more: no evidence either way
    with raw:
        try:
            tls = ctx.wrap_socket(raw, server_hostname=f.server_hostname)
        except TimeoutError:
            return None  # a slow server is no evidence
        except (OSError, ValueError):
            # Refused before it even answered (a server that has gone, or one that serves one
            # connection at a time) says nothing about what it asks of clients.
            found.refused = True
            return found if found.answered else None
        with tls:
            found.completed = True
            found.version = tls.version()
            cipher = tls.cipher()
            found.cipher = cipher[0] if cipher else None
            if not found.certificate_requested:
                return found  # nothing to wait for: no verdict on a client certificate comes
            tls.settimeout(0.5)
            try:
                # A TLS 1.3 server's verdict on the client arrives after the handshake.
                found.refused = not tls.recv(1)
            except TimeoutError:
                found.refused = False  # it waits for a request: it accepted this client
            except OSError:
                found.refused = True  # an alert, or a reset
    return found


# --- public entry points ---------------------------------------------------------------------


def explain(
    exc: BaseException,
    *,
    server_hostname: str | None = None,
    context: ssl.SSLContext | None = None,
    peer: tuple[str, int] | None = None,
) -> E.SecureLinkError:
    """Explain an exception raised by code that did not use a securelink context.

    Without the connection itself the chain the peer presented is unknown, so the explanation
    names what the exception and the arguments say.  When *peer* is given and the failure alone
    is ambiguous (a TLS 1.2 ``handshake failure`` alert: a missing client certificate, or no
    common cipher suite?), one diagnostic handshake to *peer* tells them apart; never from
    inside a running event loop.  Exceptions that are already securelink errors (also inside a
    ``URLError``) are returned unchanged; unrecognised ones become
    :class:`~securelink.HandshakeError` (never dropped).

    Args:
        exc: The exception (an ``ssl.SSLError``, ``ConnectionRefusedError``, or one that wraps
            one, such as ``urllib.error.URLError``).
        server_hostname: The name the client connected to, if known.
        context: The context that was used, for what it trusted.
        peer: The ``(host, port)`` connected to, if known.

    Returns:
        The explanation, with *exc* as its ``__cause__``.
    """
    if isinstance(exc, E.SecureLinkError):
        return exc
    inner = exc
    reason = getattr(exc, "reason", None)
    if isinstance(reason, BaseException):  # urllib.error.URLError wraps the real error
        inner = reason
        if isinstance(inner, E.SecureLinkError):  # explained already, by a securelink context
            return inner
    role = (
        "server"
        if context is not None and context.protocol == ssl.PROTOCOL_TLS_SERVER
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
    result = translate(inner, f)
    if result is None:
        result = E.HandshakeError(
            f"the connection failed: {inner}.",
            side="local",
            role=role,
            server_hostname=server_hostname,
            peer=peer,
            library=getattr(inner, "library", None),
            reason=getattr(inner, "reason", None)
            if isinstance(getattr(inner, "reason", None), str)
            else None,
            hint="securelink does not recognise this failure; the original error is attached as"
            " __cause__.",
        )
    result.__cause__ = exc
    return result


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

    TLS and connection failures (``ssl.SSLError``, ``ConnectionError``, also inside urllib's
    ``URLError``) are explained; other exceptions pass through unchanged.

    For code that uses contexts securelink did not build, or helpers that hide the socket::

        with securelink.translate_errors(server_hostname="api.example"):
            urllib.request.urlopen("https://api.example/")

    Args:
        server_hostname: The name connected to, if known.
        context: The context used, if known.
        peer: The ``(host, port)`` connected to, if known.
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
        if exc is None or isinstance(exc, E.SecureLinkError):
            return
        reason = getattr(exc, "reason", None)
        inner = reason if isinstance(reason, BaseException) else exc
        if isinstance(inner, E.SecureLinkError):
            # urllib wrapped an explanation made by a securelink context: unwrap it, and keep
            # its own cause (the original ssl error).
            raise inner
        if not isinstance(inner, ssl.SSLError | ConnectionError):
            return  # not a TLS or connection failure (an HTTP 404, a DNS error): not ours
        raise explain(
            exc, server_hostname=self.server_hostname, context=self.context, peer=self.peer
        ) from exc
