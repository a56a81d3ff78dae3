"""Raw ``ssl`` and socket errors -> securelink errors that name the facts and the fix.

Translation is keyed on stable fields (``verify_code``, OpenSSL's ``reason``, the exception
class), never on message text, which differs between builds.  What OpenSSL's exception lacks (the
certificate, the names, the dates) comes from the connection itself at the failure point: the
chain the peer presented, the context's trust anchors, and what securelink recorded when it built
the context.  See ``../shared/reference/tls-error-catalog.md`` for the raw behaviour this relies
on.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
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
    """Everything known at the point of failure."""

    __slots__ = (
        "chain",
        "context",
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
    ) -> None:
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
    return f"{int(seconds // 86400)} days"


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
        expected = f.server_hostname or "?"
        presented = leaf.names if leaf else ()
        cn = leaf.common_name if leaf else None
        if presented:
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


def _versions(f: Failure) -> tuple[str, ...]:
    facts = _facts_of(f)
    if facts is not None:
        return facts.versions
    if f.context is not None:
        low = f.context.minimum_version
        high = f.context.maximum_version
        return (_version_name(low), _version_name(high))
    return ()


def _version_name(v: ssl.TLSVersion) -> str:
    return {
        ssl.TLSVersion.TLSv1_2: "TLSv1.2",
        ssl.TLSVersion.TLSv1_3: "TLSv1.3",
        ssl.TLSVersion.MINIMUM_SUPPORTED: "lowest supported",
        ssl.TLSVersion.MAXIMUM_SUPPORTED: "highest supported",
    }.get(v, v.name)


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
        allowed = " to ".join(dict.fromkeys(_versions(f))) or "TLS 1.2 or newer"
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
    has_identity = facts.has_identity if facts is not None else None
    common = _common(f, exc, "peer")
    if (
        f.role == "client"
        and has_identity is False
        and (
            alert == "certificate required"
            or (alert in {"handshake failure", "bad certificate"} and f.chain)
        )
    ):
        how = (
            "with a 'certificate required' alert (TLS 1.3)"
            if alert == "certificate required"
            else f"with a '{alert}' alert after asking for one"
        )
        return E.ClientCertificateRequiredError(
            f"{where} requires a client certificate (mutual TLS), and this client sent none: it"
            f" refused the connection {how}.",
            alert=alert,
            hint="Give the client its certificate and key: ClientOptions(cert=..., key=...), issued"
            " by a CA the server trusts (its client_ca).",
            **common,
        )
    if alert in _CERTIFICATE_ALERTS and (has_identity or f.role == "server"):
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
        return E.RemoteError(text, alert=None, hint=hint, **common)
    # After the handshake, only the first read or write can carry the peer's verdict; later
    # resets are ordinary network errors and stay what they are.
    if f.role != "client" or facts is None or not f.first_io:
        return None
    if f.version == "TLSv1.3" and not facts.has_identity:
        requested = _diagnose_certificate_request(f)
        if requested:
            return E.ClientCertificateRequiredError(
                f"{where} closed the connection right after the handshake: it asked for a client"
                " certificate (mutual TLS) and this client sent none. (With TLS 1.3 the server's"
                " verdict arrives after the handshake, so it surfaced on this"
                f" {'write' if f.op == 'write' else 'read'}.)",
                alert=None,
                hint="Give the client its certificate and key: ClientOptions(cert=..., key=...),"
                " issued by a CA the server trusts (its client_ca).",
                **common,
            )
        return None
    if f.version == "TLSv1.3" and facts.has_identity and _diagnose_certificate_request(f):
        identity = facts.identity
        ours = identity.describe() if identity else "this client's certificate"
        return E.CertificateRejectedError(
            f"{where} closed the connection right after a handshake in which it asked for a"
            f" client certificate and got {ours}: it most likely rejected it.",
            alert=None,
            certificate=identity,
            hint="The server must trust the CA that issued this certificate"
            f"{' (' + identity.issuer + ')' if identity else ''}; its logs say why it refused.",
            **common,
        )
    return None


def _diagnose_certificate_request(f: Failure) -> bool:
    """Report whether the peer asks for a client certificate, from one diagnostic handshake.

    Only used on the failure path (a TLS 1.3 server closing right after the handshake), where the
    first connection no longer says whether a certificate was requested.  Nothing is sent but a
    handshake; the connection is closed at once.
    """
    if f.peer is None:
        return False
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # diagnosis only: nothing is trusted or sent over it
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    seen: list[bool] = []

    def observe(
        conn: object,
        direction: str,
        version: object,
        content_type: object,
        msg_type: object,
        data: bytes,
    ) -> None:
        if direction == "read" and content_type == 22 and msg_type == 13:  # CertificateRequest
            seen.append(True)

    ctx._msg_callback = observe  # type: ignore[attr-defined]
    try:
        with (
            socket.create_connection(f.peer[:2], timeout=2.0) as raw,
            ctx.wrap_socket(raw, server_hostname=f.server_hostname) as tls,
        ):
            tls.settimeout(0.5)
            with contextlib.suppress(OSError):
                tls.recv(1)  # lets a TLS 1.3 server's verdict or tickets arrive
    except (OSError, ValueError):
        pass  # the diagnosis is best effort: no answer means no evidence
    return bool(seen)


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
    names what the exception and the arguments say.  Exceptions that are already securelink
    errors are returned unchanged; unrecognised ones become :class:`~securelink.HandshakeError`
    (never dropped).

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


class translate_errors:
    """A context manager that raises the explanation of a TLS failure ``from`` the original.

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
        if not isinstance(exc, OSError) and not isinstance(getattr(exc, "reason", None), OSError):
            return
        raise explain(
            exc, server_hostname=self.server_hostname, context=self.context, peer=self.peer
        ) from exc
