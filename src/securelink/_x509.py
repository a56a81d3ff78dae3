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

    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

__all__ = [
    "MIN_EC_BITS",
    "MIN_RSA_BITS",
    "OPENSSL_MIN_EC_BITS",
    "FileStamp",
    "certificate_sha256",
    "duration",
    "public_key_sha256",
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
