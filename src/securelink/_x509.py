"""Facts about one certificate, each computed once and in one format, and the thresholds.

Loading, :func:`securelink.inspect`, :class:`securelink.PeerIdentity`, the handshake explanations
and the probe all read the same certificate facts; each fact has its one definition here, so the
same certificate gives the same value through every one of them.  This module imports nothing
from securelink (it sits below every other module), and ``cryptography`` only inside functions.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    import datetime
    from collections.abc import Callable
    from typing import TypeAlias

    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

    #: What :func:`unreadable_fields` reads.
    ParsedObject: TypeAlias = (
        "x509.Certificate | x509.CertificateSigningRequest | x509.CertificateRevocationList"
    )

__all__ = [
    "MIN_EC_BITS",
    "MIN_RSA_BITS",
    "OPENSSL_MIN_EC_BITS",
    "FileStamp",
    "certificate_sha256",
    "duration",
    "looks_like_pkcs12",
    "public_key_sha256",
    "unreadable_fields",
    "utcnow",
]

#: RSA keys under this many bits are refused on loading and flagged by ``inspect``; OpenSSL's
#: default security level (2, 112-bit security) refuses them in a handshake too.
MIN_RSA_BITS = 2048

#: EC keys under this many bits get a ``weak-key`` finding from ``inspect``: securelink
#: recommends at least P-256, the smallest curve every current client offers.
MIN_EC_BITS = 256

#: The smallest EC key OpenSSL accepts at its default security level 2 (112-bit security, so
#: 224-bit curves).  Deliberately not :data:`MIN_EC_BITS`: the handshake explanation says why the
#: *peer's OpenSSL* refused a key, and a P-224 key passes there even though securelink advises
#: P-256; blaming the key size for a P-224 failure would point at the wrong cause.
OPENSSL_MIN_EC_BITS = 224

#: (path, st_dev, st_ino, st_size, st_mtime_ns): enough to notice a file was replaced or rewritten.
FileStamp = tuple[str, int, int, int, int]


def utcnow() -> datetime.datetime:
    """The current time, timezone-aware UTC: the one clock certificate dates are compared to."""
    import datetime

    return datetime.datetime.now(datetime.UTC)


def certificate_sha256(cert: x509.Certificate) -> str:
    """A certificate's SHA-256 fingerprint as colon-separated upper-case hex.

    The one format of every ``sha256`` field, the form ``openssl x509 -fingerprint -sha256``
    prints; it identifies this exact certificate, where :func:`public_key_sha256` survives renewals.

    Args:
        cert: The certificate.

    Returns:
        For example ``"75:EF:97:..."`` (32 bytes).
    """
    from cryptography.hazmat.primitives import hashes

    return cert.fingerprint(hashes.SHA256()).hex(":").upper()


def public_key_sha256(subject: x509.Certificate | PublicKeyTypes) -> str:
    """The SHA-256 of a SubjectPublicKeyInfo as 64 lower-case hex digits, without colons.

    This is the one format of every ``public_key_sha256`` field and the form
    ``ClientOptions.pin_public_keys`` stores, so a value read anywhere can be pinned as is.

    Args:
        subject: A certificate (its public key is hashed) or a public key.

    Returns:
        The hex digest.
    """
    import hashlib

    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    key = subject.public_key() if isinstance(subject, x509.Certificate) else subject
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()


def duration(delta: datetime.timedelta) -> str:
    """How long *delta* lasts, in words: the one phrasing of "N days ago" and "N days left".

    The rule, the same for every message: the sign is ignored (the caller says "ago" or "from
    now"), and the length is given in whole units **rounded down**, in days from two days up, in
    hours from two hours up, else in minutes.  So 4 days 23 hours is "4 days", 47 hours is "47
    hours", and 30 seconds is "less than a minute".

    Args:
        delta: The length of time.

    Returns:
        For example ``"4 days"``, ``"47 hours"``, ``"1 minute"``.
    """
    seconds = int(abs(delta.total_seconds()))
    for unit, size, floor in (("day", 86400, 2), ("hour", 3600, 2), ("minute", 60, 1)):
        if seconds >= floor * size:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return "less than a minute"


# cryptography parses a certificate's fields only when they are first read, so a certificate that
# loads can still raise on `.subject`, `.extensions` or `.public_key()`, with whatever exception
# its parser uses (ValueError for ASN.1 and key errors, DuplicateExtension, UnsupportedAlgorithm,
# TypeError...).  The loaders read every field once, here, and turn a failure into a
# MaterialError; the parse is deterministic, so a certificate that passes can be read anywhere
# afterwards.
_WORDS = {
    "subject": "subject",
    "issuer": "issuer",
    "validity": "validity dates",
    "extensions": "extensions",
    "public-key": "public key",
    "signature-algorithm": "signature algorithm",
    "signature": "signature",
}


def _readers(obj: ParsedObject, signature: bool) -> list[tuple[str, Callable[[], object]]]:
    """The lazily parsed fields of a certificate, CSR or CRL, each with how to read it."""
    from cryptography import x509

    def extensions() -> object:
        # A SubjectAltName's values become Python objects (IP addresses) only when used.
        for ext in obj.extensions:
            if isinstance(ext.value, x509.SubjectAlternativeName):
                list(ext.value)
        return None

    if isinstance(obj, x509.CertificateRevocationList):
        return [
            ("issuer", lambda: obj.issuer),
            ("validity", lambda: (obj.last_update_utc, obj.next_update_utc)),
            ("extensions", extensions),
            ("signature-algorithm", lambda: obj.signature_hash_algorithm),
        ]
    if isinstance(obj, x509.CertificateSigningRequest):
        return [
            ("subject", lambda: obj.subject),
            ("extensions", extensions),
            ("public-key", obj.public_key),
            ("signature-algorithm", lambda: obj.signature_hash_algorithm),
            ("signature", lambda: obj.is_signature_valid),
        ]
    cert = obj
    # Reading a name parses it (rfc4514_string() only formats it, at several times the cost);
    # the serial number is parsed at load (and warns on each read when it is negative).
    readers: list[tuple[str, Callable[[], object]]] = [
        ("subject", lambda: cert.subject),
        ("issuer", lambda: cert.issuer),
        ("validity", lambda: (cert.not_valid_before_utc, cert.not_valid_after_utc)),
        ("extensions", extensions),
        ("public-key", cert.public_key),
    ]
    if signature:
        readers.append(("signature-algorithm", lambda: cert.signature_hash_algorithm))
    return readers


def unreadable_fields(
    obj: ParsedObject, *, signature: bool = False
) -> list[tuple[str, str, Exception]]:
    """Return the fields of *obj* that cannot be read: (key, words, the exception), in order.

    Args:
        obj: A loaded certificate, CSR or CRL.
        signature: Also read a certificate's signature algorithm (which only one's own chain
            needs: nothing checks a trust anchor's own signature).  CSRs' and CRLs' are always
            read.
    """
    bad = []
    for field, read in _readers(obj, signature):
        try:
            read()
        except Warning:
            raise  # a warning turned into an error (-W error) is not a field that cannot be read
        except Exception as exc:  # any parser error: the types differ by field and version
            bad.append((field, _WORDS[field], exc))
    return bad


def looks_like_pkcs12(data: bytes) -> bool:
    """Return whether *data* starts like a DER PKCS#12 bundle (a PFX of version 3)."""
    # PFX ::= SEQUENCE { version INTEGER (3), authSafe ContentInfo, ... } (RFC 7292 section 4).
    if len(data) < 8 or data[0] != 0x30:
        return False
    i = 1
    if data[i] & 0x80:
        i += 1 + (data[i] & 0x7F)
    else:
        i += 1
    return data[i : i + 3] == b"\x02\x01\x03"
