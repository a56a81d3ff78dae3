"""Inspection: what a certificate, key, CSR, public key or CRL file holds, and what to fix in it.

:func:`inspect` reads a path or bytes (PEM with any number of blocks, DER, or PKCS#12) and returns
an :class:`Inspection`: one typed, frozen value per object found, whether the certificates form a
chain, and the :class:`Finding` objects a person should act on, each with a stable ``code``.
``str()`` of the result is a summary to read at a glance; :meth:`Inspection.to_dict` gives the same
facts to programs, ready for :func:`json.dumps`.

Nothing here connects anywhere or changes a file; ``cryptography`` is imported on first use.
"""

from __future__ import annotations

import itertools
import os
import re
import stat

from ._compat import dsa_key_classes
from ._frozen import Frozen
from ._material import (
    _CERT_LABELS,
    _KEY_LABELS,
    _Block,
    _decrypt,
    _friendly,
    _load_pem_certs,
    _not_pem_nor_der,
    _open_pkcs12,
    _order_chain,
    _password_bytes,
    _pem_blocks,
    _read,
    _reason,
    _signed_by,
    _sniff_der,
    check_size,
)
from ._summary import CertificateSummary
from ._x509 import (
    MIN_EC_BITS,
    MIN_RSA_BITS,
    certificate_sha256,
    duration,
    looks_like_pkcs12,
    public_key_sha256,
    unreadable_fields,
)
from .errors import KeyPasswordError, MaterialError

# typing and datetime are imported only for the type checker: `import securelink` stays cheap.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import datetime
    from collections.abc import Callable, Sequence
    from typing import Any, ClassVar, TypeAlias

    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes, PublicKeyTypes

    from ._options import Password
    from .errors import FindingCode

    #: One object found in the input.
    InspectedObject: TypeAlias = (
        "CertificateInfo | PrivateKeyInfo | CSRInfo | PublicKeyInfo | CRLInfo | OtherObject"
    )

__all__ = [
    "CRLInfo",
    "CSRInfo",
    "CertificateInfo",
    "ChainInfo",
    "Finding",
    "Inspection",
    "OtherObject",
    "PrivateKeyInfo",
    "PublicKeyInfo",
    "inspect",
]

#: Certificates that expire within this many days get an ``expires-soon`` finding.
EXPIRY_WARNING_DAYS = 30

_WHAT = "certificate or key"  # what the input is called in _material's messages
_CURVES = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}
_CSR_LABELS = frozenset({"CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST"})
_PUBLIC_KEY_LABELS = frozenset({"PUBLIC KEY", "RSA PUBLIC KEY"})
_KEY_FORMATS = {
    "PRIVATE KEY": "PKCS#8",
    "ENCRYPTED PRIVATE KEY": "encrypted PKCS#8",
    "RSA PRIVATE KEY": "PKCS#1",
    "EC PRIVATE KEY": "SEC1",
    "DSA PRIVATE KEY": "traditional DSA",
}
_LABEL_KEY_TYPES = {"RSA PRIVATE KEY": "RSA", "EC PRIVATE KEY": "EC", "DSA PRIVATE KEY": "DSA"}
_HARMLESS = {
    "EC PARAMETERS": "EC domain parameters (written by `openssl ecparam`; TLS does not use them)",
    "DH PARAMETERS": "Diffie-Hellman parameters (for a server's DHE cipher suites)",
}
_DEK_INFO = re.compile(rb"DEK-Info: *([A-Za-z0-9-]+)")


# ---------------------------------------------------------------------------------------------
# The values


class _Value(Frozen):
    """A frozen record whose fields are all given, by keyword, to ``__init__``."""

    __slots__ = ()

    def __init__(self, **fields: Any) -> None:
        unknown = set(fields) - set(self._fields)
        if unknown:
            raise TypeError(f"{type(self).__name__} has no field {sorted(unknown)[0]!r}")
        missing = [name for name in self._fields if name not in fields]
        if missing:
            raise TypeError(f"{type(self).__name__} needs the field {missing[0]!r}")
        for name in self._fields:
            value = fields[name]
            self._set(name, tuple(value) if isinstance(value, list) else value)

    def to_dict(self) -> dict[str, Any]:
        """Return the fields as a dictionary that :func:`json.dumps` accepts.

        Returns:
            Field names mapped to their values: tuples become lists, datetimes ISO 8601 strings,
            nested values dictionaries.  Objects of the input also carry their ``kind``.
        """
        result: dict[str, Any] = {}
        kind = getattr(self, "kind", None)
        if kind is not None:
            result["kind"] = kind
        for name in self._fields:
            result[name] = _jsonable(getattr(self, name))
        return result


def _jsonable(value: object) -> Any:
    if isinstance(value, _Value):
        return value.to_dict()
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    isoformat = getattr(value, "isoformat", None)  # datetime, imported lazily
    if isoformat is not None:
        return isoformat()
    return value


class Finding(_Value):
    """Something in the input a person should act on.

    Attributes:
        code: A stable key for programs, typed ``securelink.errors.FindingCode``; a problem that
            loading also refuses has the same code as its
            :attr:`CertificateProblemError.problem <securelink.CertificateProblemError>`.
            Errors (this will fail somewhere):
            ``"expired"``, ``"not-yet-valid"``, ``"no-san"`` (a server-capable leaf with no DNS
            or IP SubjectAltName: its Common Name is ignored), ``"weak-key"`` (RSA under 2048
            bits, EC under 256, DSA), ``"sha1-signature"``, ``"md5-signature"``,
            ``"ca-as-leaf"`` (a CA certificate first, with a private key, where a leaf belongs),
            ``"chain-out-of-order"``, ``"key-mismatch"`` (a private key that belongs to none of
            the certificates given with it), ``"invalid-signature"`` (a CSR or CRL whose
            signature does not verify), ``"stale-crl"`` (past its next update),
            ``"wrong-password"`` and ``"unreadable-field"`` (a certificate, CSR or CRL that
            parses, but one of whose fields cryptography cannot read: a malformed or duplicated
            extension, a malformed name, a public key of an unknown algorithm or an EC point
            off its curve; a certificate's other fields are shown as far as they can be read,
            with placeholders such as ``"(unreadable subject)"`` and ``key_type`` ``"unknown"``,
            and it is left out of the chain and of key matching; a CSR or CRL is shown as an
            :class:`OtherObject`).  Warnings (works, but fix it): ``"expires-soon"`` (within 30
            days), ``"missing-aki"`` and ``"missing-ski"`` (rejected by ``VERIFY_X509_STRICT``,
            which Python 3.13 turns on by default), ``"ca-missing-key-usage"`` (likewise),
            ``"legacy-key-encryption"`` (the weak ``Proc-Type: 4,ENCRYPTED`` PEM encryption) and
            ``"readable-key-file"``.  Information: ``"no-server-auth"`` (a leaf whose extended
            key usage rules out TLS servers, as client certificates' does),
            ``"password-required"`` and ``"not-inspected"``.
        severity: ``"error"``, ``"warning"`` or ``"info"``.
        message: What is wrong and what to do, in sentences.
        index: The position in :attr:`Inspection.objects` (from 0) of the object it is about, or
            ``None`` when it is about the input as a whole.
    """

    _fields = ("code", "severity", "message", "index")
    __slots__ = _fields

    code: FindingCode
    severity: str
    message: str
    index: int | None

    def __str__(self) -> str:
        return f"[{self.severity.upper()}] {self.code}: {self.message}"


class CertificateInfo(_Value):
    """What an X.509 certificate says, and what is wrong with it.

    Attributes:
        index: Its position in :attr:`Inspection.objects`, from 0.
        label: The PEM label it had (``"CERTIFICATE"``), or ``"CERTIFICATE"`` for DER and PKCS#12.
        subject: The subject in RFC 4514 form, or ``"(empty subject)"``.
        common_name: The subject's Common Name, if any (clients never match names against it).
        issuer: The issuer in RFC 4514 form.
        dns_names: The DNS names of its SubjectAltName.
        ip_addresses: The IP addresses of its SubjectAltName, as text.
        uris: The URIs of its SubjectAltName (SPIFFE IDs, for example).
        emails: The email addresses (rfc822Name) of its SubjectAltName.
        not_before: Start of validity (timezone-aware UTC).
        not_after: End of validity (timezone-aware UTC).
        days_left: Whole days from the inspection to ``not_after``, rounded down: negative once
            expired, 0 on its last day.
        serial: The serial number as upper-case hex (as ``openssl x509 -serial`` prints it).
        key_type: ``"RSA"``, ``"EC"``, ``"Ed25519"``, ``"Ed448"`` or ``"DSA"``.
        key_size: The key size in bits (for EC, the curve's).
        curve: The EC curve (``"P-256"``, or OpenSSL's name for other curves); ``None`` if not EC.
        signature_algorithm: The signature algorithm (``"ecdsa-with-SHA256"``).
        signature_hash: The hash it signs with (``"sha256"``), ``None`` for Ed25519 and Ed448.
        is_ca: Whether it is a CA certificate (basicConstraints CA:TRUE).
        path_length: A CA's path length constraint; ``None`` when unlimited or not a CA.
        key_usage: The key usage bits set, by their RFC 5280 names (``"digitalSignature"``,
            ``"keyCertSign"``); ``None`` if it has no key usage extension.
        extended_key_usage: The extended key usages (``"serverAuth"``, ``"clientAuth"``, or the
            dotted OID of others); ``None`` if it has no extended key usage extension (which
            allows every use).
        sha256: The SHA-256 fingerprint of the certificate, colon-separated upper-case hex.
        public_key_sha256: The SHA-256 of its SubjectPublicKeyInfo as 64 lower-case hex digits
            without colons: the form ``ClientOptions.pin_public_keys`` stores and
            :attr:`PeerIdentity.public_key_sha256 <securelink.PeerIdentity>` gives.  Equal for a
            certificate, its private key, its CSR and its renewals with the same key.
        self_signed: Whether it is signed by its own key (issuer equal to subject).
        subject_key_id: The subject key identifier, hex; ``None`` if absent.
        authority_key_id: The authority key identifier's key ID, hex; ``None`` if the extension
            is absent, ``""`` if it names the issuer only by name and serial number.
        findings: What to act on, about this certificate.
    """

    kind: ClassVar[str] = "certificate"
    _fields = (
        "index",
        "label",
        "subject",
        "common_name",
        "issuer",
        "dns_names",
        "ip_addresses",
        "uris",
        "emails",
        "not_before",
        "not_after",
        "days_left",
        "serial",
        "key_type",
        "key_size",
        "curve",
        "signature_algorithm",
        "signature_hash",
        "is_ca",
        "path_length",
        "key_usage",
        "extended_key_usage",
        "sha256",
        "public_key_sha256",
        "self_signed",
        "subject_key_id",
        "authority_key_id",
        "findings",
    )
    __slots__ = _fields

    index: int
    label: str
    subject: str
    common_name: str | None
    issuer: str
    dns_names: tuple[str, ...]
    ip_addresses: tuple[str, ...]
    uris: tuple[str, ...]
    emails: tuple[str, ...]
    not_before: datetime.datetime
    not_after: datetime.datetime
    days_left: int
    serial: str
    key_type: str
    key_size: int | None
    curve: str | None
    signature_algorithm: str
    signature_hash: str | None
    is_ca: bool
    path_length: int | None
    key_usage: tuple[str, ...] | None
    extended_key_usage: tuple[str, ...] | None
    sha256: str
    public_key_sha256: str
    self_signed: bool
    subject_key_id: str | None
    authority_key_id: str | None
    findings: tuple[Finding, ...]

    @property
    def names(self) -> tuple[str, ...]:
        """Every SAN as text: DNS names, then IP addresses, then URIs.

        The same tuple, in the same order, as :attr:`CertificateSummary.names
        <securelink.CertificateSummary>` and :attr:`PeerIdentity.names
        <securelink.PeerIdentity>` for the same certificate.  Host names are matched against
        :attr:`dns_names` and :attr:`ip_addresses` only.
        """
        return self.dns_names + self.ip_addresses + self.uris

    @property
    def title(self) -> str:
        """A short name for it: its first SAN, else its Common Name, else its subject."""
        sans = self.names or self.uris or self.emails
        return sans[0] if sans else self.common_name or self.subject

    def summary(self) -> CertificateSummary:
        """Return the :class:`~securelink.CertificateSummary` that error messages use.

        Returns:
            The summary of this certificate.
        """
        return CertificateSummary(
            subject=self.subject,
            issuer=self.issuer,
            names=self.names,
            common_name=self.common_name,
            not_before=self.not_before,
            not_after=self.not_after,
            sha256=self.sha256,
            is_ca=self.is_ca,
            self_signed=self.self_signed,
        )

    def _lines(self) -> list[tuple[str, str]]:
        if self.is_ca:
            role = "CA" + (
                f" (path length {self.path_length})" if self.path_length is not None else ""
            )
        else:
            role = "leaf"
        if self.self_signed:
            role += ", self-signed"
        if self.key_usage is not None:
            role += "; key usage " + ", ".join(self.key_usage)
        if self.extended_key_usage is not None:
            role += "; extended " + ", ".join(self.extended_key_usage)
        ids = ", ".join(
            f"{name} {'yes' if value is not None else 'MISSING'}"
            for name, value in (("SKI", self.subject_key_id), ("AKI", self.authority_key_id))
        )
        return [
            ("names", _san_text(self) or "(no SubjectAltName)"),
            ("subject", self.subject),
            ("issuer", "itself" if self.self_signed else self.issuer),
            ("valid", f"{self.not_before:%Y-%m-%d} to {self.not_after:%Y-%m-%d}" + _left(self)),
            ("key", f"{_key_text(self)}, signed with {self.signature_algorithm}"),
            ("role", role),
            ("serial", self.serial),
            ("SHA-256", self.sha256),
            ("key ids", ids),
        ]


class PrivateKeyInfo(_Value):
    """What a private key is, and which certificate in the same input it belongs to.

    Attributes:
        index: Its position in :attr:`Inspection.objects`, from 0.
        label: The PEM label (``"PRIVATE KEY"``, ``"ENCRYPTED PRIVATE KEY"``,
            ``"RSA PRIVATE KEY"``, ``"EC PRIVATE KEY"``), or ``"PRIVATE KEY"`` for DER and PKCS#12.
        format: ``"PKCS#8"``, ``"encrypted PKCS#8"``, ``"PKCS#1"`` (RSA), ``"SEC1"`` (EC),
            ``"traditional DSA"`` or ``"PKCS#12"``.
        encrypted: Whether it is protected by a password.
        encryption: How: ``"PKCS#8"``, ``"PKCS#12"``, or ``"legacy PEM AES-256-CBC"`` (the
            cipher named by the ``DEK-Info`` header); ``None`` when not encrypted.
        decrypted: Whether its contents could be read (not encrypted, or the password worked).
        key_type: ``"RSA"``, ``"EC"``, ``"Ed25519"``, ``"Ed448"`` or ``"DSA"``; ``None`` when it
            is encrypted PKCS#8 and could not be decrypted (legacy PEM names the type).
        key_size: Its size in bits; ``None`` when it could not be decrypted.
        curve: The EC curve (``"P-256"``); ``None`` if not EC or not known.
        public_key_sha256: The SHA-256 of its public key (see
            :attr:`CertificateInfo.public_key_sha256`); ``None`` when it could not be decrypted.
        certificate: The index of the certificate in the same input that holds its public key.
        match: ``"matched"`` (see ``certificate``), ``"mismatch"`` (the input has certificates
            and none is this key's), ``"no-certificate"`` (the input has none) or ``"unknown"``
            (it could not be decrypted).
        findings: What to act on, about this key.
    """

    kind: ClassVar[str] = "private-key"
    _fields = (
        "index",
        "label",
        "format",
        "encrypted",
        "encryption",
        "decrypted",
        "key_type",
        "key_size",
        "curve",
        "public_key_sha256",
        "certificate",
        "match",
        "findings",
    )
    __slots__ = _fields

    index: int
    label: str
    format: str
    encrypted: bool
    encryption: str | None
    decrypted: bool
    key_type: str | None
    key_size: int | None
    curve: str | None
    public_key_sha256: str | None
    certificate: int | None
    match: str
    findings: tuple[Finding, ...]

    @property
    def title(self) -> str:
        """A short description: type and size, or that it is encrypted."""
        if self.key_type is None:
            return f"{self.format} (type unknown without the password)"
        return _key_text(self)

    def _lines(self) -> list[tuple[str, str]]:
        if self.encrypted:
            how = "" if self.encryption == self.format else f" ({self.encryption})"
            state = f"encrypted{how}" + (
                ", decrypted with the password given" if self.decrypted else ""
            )
        else:
            state = "not encrypted"
        belongs = {
            "matched": f"certificate #{(self.certificate or 0) + 1}",
            "mismatch": "NONE of the certificates given with it",
            "no-certificate": "(no certificate in this input)",
            "unknown": "unknown until it is decrypted",
        }[self.match]
        return [("format", f"{self.format}, {state}"), ("belongs to", belongs)]


class CSRInfo(_Value):
    """What a certificate signing request asks for.

    Attributes:
        index: Its position in :attr:`Inspection.objects`, from 0.
        label: The PEM label (``"CERTIFICATE REQUEST"``), or that name for DER.
        subject: The requested subject, in RFC 4514 form.
        common_name: The requested Common Name, if any.
        dns_names: The requested DNS names (from its SubjectAltName extension request).
        ip_addresses: The requested IP addresses.
        uris: The requested URIs.
        emails: The requested email addresses.
        key_type: The type of its key (see :attr:`CertificateInfo.key_type`).
        key_size: Its key size in bits.
        curve: The EC curve, if EC.
        signature_algorithm: The algorithm of its self-signature.
        signature_hash: The hash of its self-signature (``None`` for Ed25519 and Ed448).
        signature_valid: Whether its signature verifies (proving the requester holds the key).
        public_key_sha256: The SHA-256 of its public key (see
            :attr:`CertificateInfo.public_key_sha256`).
        findings: What to act on, about this request.
    """

    kind: ClassVar[str] = "csr"
    _fields = (
        "index",
        "label",
        "subject",
        "common_name",
        "dns_names",
        "ip_addresses",
        "uris",
        "emails",
        "key_type",
        "key_size",
        "curve",
        "signature_algorithm",
        "signature_hash",
        "signature_valid",
        "public_key_sha256",
        "findings",
    )
    __slots__ = _fields

    index: int
    label: str
    subject: str
    common_name: str | None
    dns_names: tuple[str, ...]
    ip_addresses: tuple[str, ...]
    uris: tuple[str, ...]
    emails: tuple[str, ...]
    key_type: str
    key_size: int | None
    curve: str | None
    signature_algorithm: str
    signature_hash: str | None
    signature_valid: bool
    public_key_sha256: str
    findings: tuple[Finding, ...]

    @property
    def title(self) -> str:
        """A short name: the first requested name, else the Common Name, else the subject."""
        sans = self.dns_names + self.ip_addresses + self.uris + self.emails
        return sans[0] if sans else self.common_name or self.subject

    def _lines(self) -> list[tuple[str, str]]:
        return [
            ("names", _san_text(self) or "(no SubjectAltName requested)"),
            ("subject", self.subject),
            ("key", _key_text(self)),
            (
                "signature",
                f"{self.signature_algorithm}, "
                + ("valid" if self.signature_valid else "DOES NOT VERIFY"),
            ),
        ]


class PublicKeyInfo(_Value):
    """A bare public key, and the certificate in the same input that holds it.

    Attributes:
        index: Its position in :attr:`Inspection.objects`, from 0.
        label: ``"PUBLIC KEY"`` (SubjectPublicKeyInfo) or ``"RSA PUBLIC KEY"`` (PKCS#1).
        key_type: Its type (see :attr:`CertificateInfo.key_type`).
        key_size: Its size in bits.
        curve: The EC curve, if EC.
        public_key_sha256: The SHA-256 of its SubjectPublicKeyInfo (see
            :attr:`CertificateInfo.public_key_sha256`); the value to pin.
        certificate: The index of the certificate in the same input with this public key.
        findings: What to act on, about this key.
    """

    kind: ClassVar[str] = "public-key"
    _fields = (
        "index",
        "label",
        "key_type",
        "key_size",
        "curve",
        "public_key_sha256",
        "certificate",
        "findings",
    )
    __slots__ = _fields

    index: int
    label: str
    key_type: str
    key_size: int | None
    curve: str | None
    public_key_sha256: str
    certificate: int | None
    findings: tuple[Finding, ...]

    @property
    def title(self) -> str:
        """A short description: type and size."""
        return _key_text(self)

    def _lines(self) -> list[tuple[str, str]]:
        belongs = "(no certificate in this input has it)"
        if self.certificate is not None:
            belongs = f"certificate #{self.certificate + 1}"
        return [("SHA-256", self.public_key_sha256), ("belongs to", belongs)]


class CRLInfo(_Value):
    """A certificate revocation list.

    Attributes:
        index: Its position in :attr:`Inspection.objects`, from 0.
        label: ``"X509 CRL"``.
        issuer: The CA that issued it, in RFC 4514 form.
        last_update: When it was issued (timezone-aware UTC).
        next_update: When the next one is due (timezone-aware UTC), if it says.
        revoked_count: How many certificates it revokes.
        crl_number: Its CRL number, if it has one.
        signature_algorithm: The algorithm it is signed with.
        signature_hash: The hash it is signed with (``None`` for Ed25519 and Ed448).
        issuer_certificate: The index of the certificate in the same input whose key signed it.
        signature_valid: Whether its signature verifies against that certificate; ``None`` when
            the input holds no certificate named as its issuer.
        findings: What to act on, about this list.
    """

    kind: ClassVar[str] = "crl"
    _fields = (
        "index",
        "label",
        "issuer",
        "last_update",
        "next_update",
        "revoked_count",
        "crl_number",
        "signature_algorithm",
        "signature_hash",
        "issuer_certificate",
        "signature_valid",
        "findings",
    )
    __slots__ = _fields

    index: int
    label: str
    issuer: str
    last_update: datetime.datetime
    next_update: datetime.datetime | None
    revoked_count: int
    crl_number: int | None
    signature_algorithm: str
    signature_hash: str | None
    issuer_certificate: int | None
    signature_valid: bool | None
    findings: tuple[Finding, ...]

    @property
    def title(self) -> str:
        """A short description: who issued it."""
        return f"issued by {self.issuer}"

    def _lines(self) -> list[tuple[str, str]]:
        due = f"{self.next_update:%Y-%m-%d}" if self.next_update else "(not stated)"
        if self.signature_valid is None:
            signed = "issuer's certificate not in this input"
        elif self.signature_valid:
            signed = f"valid, by certificate #{(self.issuer_certificate or 0) + 1}"
        else:
            signed = f"DOES NOT VERIFY against certificate #{(self.issuer_certificate or 0) + 1}"
        number = f", CRL number {self.crl_number}" if self.crl_number is not None else ""
        return [
            ("updated", f"{self.last_update:%Y-%m-%d}, next due {due}"),
            ("revoked", f"{self.revoked_count} certificate(s){number}"),
            ("signature", f"{self.signature_algorithm}, {signed}"),
        ]


class OtherObject(_Value):
    """A PEM block that securelink recognises but does not look inside (PKCS#7, OpenSSH keys...).

    Attributes:
        index: Its position in :attr:`Inspection.objects`, from 0.
        label: Its PEM label (``"PKCS7"``, ``"OPENSSH PRIVATE KEY"``, ``"EC PARAMETERS"``).
        description: What it is, in words.
        findings: What to act on, about it.
    """

    kind: ClassVar[str] = "other"
    _fields = ("index", "label", "description", "findings")
    __slots__ = _fields

    index: int
    label: str
    description: str
    findings: tuple[Finding, ...]

    @property
    def title(self) -> str:
        """What it is, in words."""
        return self.description

    def _lines(self) -> list[tuple[str, str]]:
        return []


class ChainInfo(_Value):
    """Whether the certificates of an input form a chain in order, each signed by the next.

    Attributes:
        certificates: The indices of the certificates, in the order they appear.
        in_order: Whether each certificate is issued (named and signed) by the one after it.
        broken_at: The index of the first certificate that is not followed by its issuer;
            ``None`` when in order.
        suggested_order: When they are not in order but could be, the indices in chain order
            (leaf first); ``None`` otherwise.
    """

    _fields = ("certificates", "in_order", "broken_at", "suggested_order")
    __slots__ = _fields

    certificates: tuple[int, ...]
    in_order: bool
    broken_at: int | None
    suggested_order: tuple[int, ...] | None

    def __str__(self) -> str:
        path = " -> ".join(f"#{i + 1}" for i in self.certificates)
        if self.in_order:
            return f"{path}, in order: each certificate is signed by the next"
        assert self.broken_at is not None
        return f"{path}, OUT OF ORDER: #{self.broken_at + 1} is not followed by its issuer"


class Inspection(_Value):
    """Everything :func:`inspect` found in one input.

    ``str()`` gives a summary to read at a glance, a few aligned lines per object with the
    findings marked; :meth:`to_dict` gives the same facts to programs.

    Attributes:
        source: The path inspected, or ``"the in-memory input"``.
        format: ``"PEM"``, ``"DER"`` or ``"PKCS#12"``.
        objects: What it holds, in order: :class:`CertificateInfo`, :class:`PrivateKeyInfo`,
            :class:`CSRInfo`, :class:`PublicKeyInfo`, :class:`CRLInfo` and :class:`OtherObject`
            values.  A PKCS#12 bundle lists its certificate, then its other certificates in
            chain order, then its key; one that cannot be opened lists nothing.
        chain: Whether the certificates form a chain; ``None`` unless there are two or more
            certificates and they are not all self-signed (a bundle of roots is not a chain).
        findings: Every finding, those about objects in object order, then those about the
            input as a whole.
    """

    _fields = ("source", "format", "objects", "chain", "findings")
    __slots__ = _fields

    source: str
    format: str
    objects: tuple[InspectedObject, ...]
    chain: ChainInfo | None
    findings: tuple[Finding, ...]

    @property
    def certificates(self) -> tuple[CertificateInfo, ...]:
        """The certificates, in order."""
        return tuple(o for o in self.objects if isinstance(o, CertificateInfo))

    @property
    def private_keys(self) -> tuple[PrivateKeyInfo, ...]:
        """The private keys, in order."""
        return tuple(o for o in self.objects if isinstance(o, PrivateKeyInfo))

    @property
    def csrs(self) -> tuple[CSRInfo, ...]:
        """The certificate signing requests, in order."""
        return tuple(o for o in self.objects if isinstance(o, CSRInfo))

    @property
    def public_keys(self) -> tuple[PublicKeyInfo, ...]:
        """The bare public keys, in order."""
        return tuple(o for o in self.objects if isinstance(o, PublicKeyInfo))

    @property
    def crls(self) -> tuple[CRLInfo, ...]:
        """The certificate revocation lists, in order."""
        return tuple(o for o in self.objects if isinstance(o, CRLInfo))

    def codes(self) -> tuple[FindingCode, ...]:
        """Return the codes of all findings, in order (handy in tests and scripts).

        Returns:
            ``tuple(f.code for f in self.findings)``.
        """
        return tuple(f.code for f in self.findings)

    def __str__(self) -> str:
        counts: dict[str, int] = {}
        for obj in self.objects:
            counts[obj.kind] = counts.get(obj.kind, 0) + 1
        held = ", ".join(_plural(n, _KIND_NAMES[kind]) for kind, n in counts.items())
        lines = [f"{self.source}: {self.format}, {held or 'nothing readable'}"]
        for obj in self.objects:
            lines.append("")
            lines.append(f"#{obj.index + 1} {_KIND_NAMES[obj.kind]}: {obj.title}")
            lines.extend(f"   {name:<11} {value}" for name, value in obj._lines())
            lines.extend(f"   {finding}" for finding in obj.findings)
        if self.chain is not None:
            lines += ["", f"chain: {self.chain}"]
        lines.extend(f"{finding}" for finding in self.findings if finding.index is None)
        lines.append("")
        if not self.findings:
            lines.append("No findings.")
        else:
            by_severity = [
                _plural(n, severity)
                for severity in ("error", "warning", "info")
                if (n := sum(f.severity == severity for f in self.findings))
            ]
            lines.append(f"{_plural(len(self.findings), 'finding')}: {', '.join(by_severity)}.")
        return "\n".join(lines)


_KIND_NAMES = {
    "certificate": "certificate",
    "private-key": "private key",
    "csr": "certificate request",
    "public-key": "public key",
    "crl": "CRL",
    "other": "other block",
}


def _plural(n: int, noun: str) -> str:
    if n == 1:
        return f"1 {noun}"
    if noun == "info":
        return f"{n} info"
    return f"{n} {noun}s"


def _san_text(info: CertificateInfo | CSRInfo) -> str:
    parts = [f"DNS:{n}" for n in info.dns_names]
    parts += [f"IP:{n}" for n in info.ip_addresses]
    parts += [f"URI:{n}" for n in info.uris]
    parts += [f"email:{n}" for n in info.emails]
    return ", ".join(parts)


def _key_text(info: CertificateInfo | CSRInfo | PrivateKeyInfo | PublicKeyInfo) -> str:
    if info.curve is not None:
        return f"{info.key_type} {info.curve}"
    if info.key_type in {"RSA", "DSA"} and info.key_size is not None:
        return f"{info.key_type} {info.key_size} bits"
    return str(info.key_type)


def _left(cert: CertificateInfo) -> str:
    days = cert.days_left
    if days < 0:
        return " (EXPIRED)"
    if any(f.code == "not-yet-valid" for f in cert.findings):
        return " (NOT YET VALID)"
    if days == 0:
        return " (expires within a day)"
    return f" ({_plural(days, 'day')} left)"


# ---------------------------------------------------------------------------------------------
# Reading the input into cryptography objects


class _Item:
    """One object of the input, parsed, before it is described."""

    __slots__ = ("encryption", "format", "key_type", "kind", "label", "obj", "password_error")

    def __init__(
        self,
        kind: str,
        label: str,
        obj: Any,
        *,
        format: str = "",
        encryption: str | None = None,
        key_type: str | None = None,
        password_error: KeyPasswordError | None = None,
    ) -> None:
        self.kind = kind
        self.label = label
        self.obj = obj
        self.format = format
        self.encryption = encryption
        self.key_type = key_type
        self.password_error = password_error


def inspect(
    source: str | os.PathLike[str] | bytes, *, password: Password | None = None
) -> Inspection:
    """Describe every certificate, key, CSR, public key and CRL in a file or in bytes.

    Reads PEM with any number of blocks (text around them is ignored), a DER object, or a PKCS#12
    bundle.  Encrypted private keys and bundles are opened with *password*; without it (or with
    the wrong one) they are still listed, with a ``"password-required"`` or ``"wrong-password"``
    finding, rather than raising.  Nothing is checked against a trust store or the network: the
    findings are about the input alone.

    Args:
        source: A path (``str`` or path-like) or the contents of a file as ``bytes``.
        password: The password of encrypted keys and PKCS#12 bundles in the input: ``str``
            (sent as UTF-8), ``bytes``, or a callable that returns one (called once).

    Returns:
        What the input holds, whether its certificates form a chain, and the findings.

    Raises:
        MaterialError: the path cannot be read, or the input is empty, neither PEM nor DER,
            truncated or corrupt PEM, a PEM block whose contents do not decode, or a bundle or
            key whose password's key derivation asks for more work than securelink runs.
        TypeError: the password callable returned something other than str or bytes.
    """
    import datetime

    if isinstance(source, bytes | bytearray):
        label = "the in-memory input"
        check_size(source, label, _WHAT)
        data = bytes(source)
        if not data.strip():
            raise MaterialError(
                f"{label} is empty.",
                source=label,
                found="nothing",
                hint="Pass the contents of a certificate, key, CSR or CRL file.",
            )
    elif isinstance(source, str | os.PathLike):
        label = os.fspath(source)
        data = _read(source, _WHAT, [])
    else:
        raise MaterialError(
            f"the input was given as {type(source).__name__}, which securelink cannot inspect.",
            source=repr(source),
            hint="Pass a path, or the contents of a file as bytes.",
        )
    pw = _password_bytes(password)
    now = datetime.datetime.now(datetime.UTC)
    blocks = _pem_blocks(data, label)
    general: list[Finding] = []
    if blocks is not None:
        fmt = "PEM"
        items = [_pem_item(block.label, block.pem, pw, label) for block in blocks]
    elif looks_like_pkcs12(data):
        fmt = "PKCS#12"
        items = _pkcs12_items(data, pw, label, general)
    else:
        fmt = "DER"
        items = [_der_item(data, pw, label)]
    key_file_mode = None
    if not isinstance(source, bytes | bytearray):
        key_file_mode = stat.S_IMODE(os.stat(label).st_mode)
    return _describe_all(label, fmt, items, general, now, key_file_mode)


def _pem_item(found: str, pem: bytes, pw: bytes | None, label: str) -> _Item:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    if found == "TRUSTED CERTIFICATE":
        trusted = _trusted_certificate(pem)
        if trusted is not None:
            return _Item("certificate", found, trusted)
    if found in _CERT_LABELS:
        return _Item("certificate", found, _load_pem_certs([_Block(found, pem)], label)[0])
    if found in _KEY_LABELS:
        legacy = b"Proc-Type: 4,ENCRYPTED" in pem
        encryption = None
        if legacy:
            cipher = _DEK_INFO.search(pem)
            encryption = "legacy PEM " + (cipher.group(1).decode() if cipher else "encryption")
        elif found == "ENCRYPTED PRIVATE KEY":
            encryption = "PKCS#8"
        return _key_item(
            serialization.load_pem_private_key,
            pem,
            pw,
            label,
            found,
            format=_KEY_FORMATS[found],
            encryption=encryption,
            key_type=_LABEL_KEY_TYPES.get(found),
        )
    loaders: dict[str, tuple[str, Callable[[bytes], Any], str]] = {
        **{lab: ("csr", x509.load_pem_x509_csr, "a certificate request") for lab in _CSR_LABELS},
        **{
            lab: ("public-key", serialization.load_pem_public_key, "a public key")
            for lab in _PUBLIC_KEY_LABELS
        },
        "X509 CRL": ("crl", x509.load_pem_x509_crl, "a certificate revocation list"),
    }
    if found in loaders:
        kind, loader, what = loaders[found]
        try:
            return _Item(kind, found, loader(pem))
        except (ValueError, x509.InvalidVersion) as exc:  # InvalidVersion is not a ValueError
            raise MaterialError(
                f"{label} holds a corrupt {found} block: its contents do not decode as {what}.",
                source=label,
                found=found,
                hint="The base64 text was damaged (edited, re-wrapped or cut); copy the file"
                " again from its origin.",
            ) from exc
    return _Item("other", found, None)


def _trusted_certificate(pem: bytes) -> x509.Certificate | None:
    """Read the certificate of an OpenSSL ``TRUSTED CERTIFICATE`` block (``x509 -trustout``).

    Its DER is the certificate followed by OpenSSL's trust settings, which cryptography does not
    read: the certificate is the first DER element.  ``None`` if it cannot be had.
    """
    import base64
    import binascii

    from cryptography import x509

    body = b"".join(pem.splitlines()[1:-1])
    try:
        der = base64.b64decode(body, validate=True)
    except binascii.Error:
        return None
    if len(der) < 4 or der[0] != 0x30:
        return None
    size = der[1]
    start = 2
    if size & 0x80:
        start = 2 + (size & 0x7F)
        size = int.from_bytes(der[2:start], "big")
    try:
        return x509.load_der_x509_certificate(der[: start + size])
    except (ValueError, x509.InvalidVersion):
        return None


def _key_item(
    load: Any,
    data: bytes,
    pw: bytes | None,
    label: str,
    found: str,
    *,
    format: str,
    encryption: str | None,
    key_type: str | None = None,
) -> _Item:
    try:
        key = _decrypt(load, data, pw, label, found)
    except KeyPasswordError as exc:
        return _Item(
            "private-key",
            found,
            None,
            format=format,
            encryption=encryption or "PKCS#8",
            key_type=key_type,
            password_error=exc,
        )
    return _Item("private-key", found, key, format=format, encryption=encryption)


def _der_item(data: bytes, pw: bytes | None, label: str) -> _Item:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    found = _sniff_der(data)
    if found is None:
        raise _not_pem_nor_der(label, data, _WHAT)
    if found == "CERTIFICATE":
        return _Item("certificate", found, x509.load_der_x509_certificate(data))
    if found == "ENCRYPTED PRIVATE KEY":
        return _key_item(
            serialization.load_der_private_key,
            data,
            pw,
            label,
            found,
            format="encrypted PKCS#8",
            encryption="PKCS#8",
        )
    if found == "PRIVATE KEY":
        item = _key_item(
            serialization.load_der_private_key, data, None, label, found, format="", encryption=None
        )
        item.format = _der_key_format(data, item.obj)
        return item
    if found == "CERTIFICATE REQUEST":
        return _Item("csr", found, x509.load_der_x509_csr(data))
    if found == "X509 CRL":
        return _Item("crl", found, x509.load_der_x509_crl(data))
    assert found == "PUBLIC KEY", found  # PKCS#12 is recognised before DER is sniffed
    return _Item("public-key", found, serialization.load_der_public_key(data))


def _der_key_format(data: bytes, key: object) -> str:
    # PrivateKeyInfo (PKCS#8) is SEQUENCE { INTEGER, SEQUENCE algorithm, ... }; RSAPrivateKey
    # (PKCS#1) and OpenSSL's DSA form are SEQUENCE { INTEGER 0, INTEGER, ... }; ECPrivateKey
    # (SEC1) is SEQUENCE { INTEGER 1, OCTET STRING, ... }.
    i = 2 + (data[1] & 0x7F if data[1] & 0x80 else 0)
    if data[i : i + 2] != b"\x02\x01":  # pragma: no cover - cryptography parsed it as a key
        return "PKCS#8"
    tag = data[i + 3 : i + 4]
    if tag == b"\x02":
        return "traditional DSA" if isinstance(key, dsa_key_classes()[0]) else "PKCS#1"
    return "SEC1" if tag == b"\x04" else "PKCS#8"


def _pkcs12_items(data: bytes, pw: bytes | None, label: str, general: list[Finding]) -> list[_Item]:
    # Unprotected first, so that `encrypted` tells whether the bundle needs a password at all.
    attempts = [None, b""] if pw is None else [None, b"", pw]
    try:
        key, cert, extra, used = _open_pkcs12(data, pw, attempts, label)
    except KeyPasswordError as exc:
        found = _Findings(None)
        if exc.reason == "missing":
            found.add("password-required", f"{exc.message} Give it to see inside the bundle.")
        else:
            found.add("wrong-password", exc.message)
        general.extend(found.items)
        return []
    certs: list[x509.Certificate] = []
    if cert is not None and any(unreadable_fields(c) for c in [cert, *extra]):
        certs = [cert, *extra]  # as given: ordering reads names that cannot all be read
    elif cert is not None:
        ordered = _order_chain(cert, extra)
        in_chain = set(ordered)  # a set: a list made this quadratic in the bundle's size
        certs = [cert, *ordered, *(c for c in extra if c not in in_chain)]
    else:
        certs = extra
    items = [_Item("certificate", "CERTIFICATE", c) for c in certs]
    if key is not None:
        encryption = "PKCS#12" if used else None
        items.append(
            _Item("private-key", "PRIVATE KEY", key, format="PKCS#12", encryption=encryption)
        )
    return items


# ---------------------------------------------------------------------------------------------
# Describing the objects and finding what to fix

_SEVERITY: dict[FindingCode, str] = {
    "expired": "error",
    "not-yet-valid": "error",
    "no-san": "error",
    "weak-key": "error",
    "sha1-signature": "error",
    "md5-signature": "error",
    "ca-as-leaf": "error",
    "chain-out-of-order": "error",
    "key-mismatch": "error",
    "invalid-signature": "error",
    "stale-crl": "error",
    "wrong-password": "error",
    "unreadable-field": "error",
    "expires-soon": "warning",
    "missing-aki": "warning",
    "missing-ski": "warning",
    "ca-missing-key-usage": "warning",
    "legacy-key-encryption": "warning",
    "readable-key-file": "warning",
    "no-server-auth": "info",
    "password-required": "info",
    "not-inspected": "info",
}


#: How many certificates of one subject name are tried as the issuer of a certificate or CRL.  A
#: real chain has one, or a few when a CA was renewed or cross-signed; a crafted input of
#: thousands of certificates sharing a name would otherwise cost a signature check per pair.
_MAX_SAME_NAME = 8
#: How many certificate numbers a finding lists before it says "and N more".
_LISTED = 10


class _Findings:
    """Collects the findings about one object."""

    __slots__ = ("index", "items")

    def __init__(self, index: int | None) -> None:
        self.index = index
        self.items: list[Finding] = []

    def add(self, code: FindingCode, message: str) -> None:
        self.items.append(
            Finding(code=code, severity=_SEVERITY[code], message=message, index=self.index)
        )


def _describe_all(
    label: str,
    fmt: str,
    items: list[_Item],
    general: list[Finding],
    now: datetime.datetime,
    key_file_mode: int | None,
) -> Inspection:
    all_certs = [(i, item.obj) for i, item in enumerate(items) if item.kind == "certificate"]
    # A certificate with a field cryptography cannot read is described as far as it can be, with
    # an "unreadable-field" finding, and left out of everything that compares certificates.
    unreadable = {i: bad for i, cert in all_certs if (bad := unreadable_fields(cert))}
    certs = [(i, cert) for i, cert in all_certs if i not in unreadable]
    cert_spki = {i: public_key_sha256(cert.public_key()) for i, cert in certs}
    # Indexes, so that matching keys to certificates and CRLs to issuers is linear in the input.
    spki_owner: dict[str, int] = {}
    for i, spki in cert_spki.items():
        spki_owner.setdefault(spki, i)
    by_subject = _by_subject(certs)
    has_key = any(item.kind == "private-key" for item in items)
    objects: list[InspectedObject] = []
    for index, item in enumerate(items):
        found = _Findings(index)
        if item.kind == "certificate" and index in unreadable:
            objects.append(_unreadable_info(index, item, unreadable[index], now, found))
        elif item.kind == "certificate":
            objects.append(_certificate_info(index, item, cert_spki[index], now, found))
        elif item.kind == "private-key":
            objects.append(
                _private_key_info(index, item, cert_spki, spki_owner, key_file_mode, found)
            )
        else:
            objects.append(_describe_other(index, item, spki_owner, by_subject, now, found))
    if all_certs and has_key and len(items) > 1:
        _check_ca_as_leaf(objects, all_certs[0][0])
    chain = _chain_info(certs, by_subject)
    if chain is not None and not chain.in_order:
        general.append(_chain_finding(chain, objects))
    findings = [f for obj in objects for f in obj.findings] + general
    return Inspection(
        source=label, format=fmt, objects=tuple(objects), chain=chain, findings=tuple(findings)
    )


def _describe_other(
    index: int,
    item: _Item,
    spki_owner: dict[str, int],
    by_subject: dict[x509.Name, list[tuple[int, x509.Certificate]]],
    now: datetime.datetime,
    found: _Findings,
) -> InspectedObject:
    """Describe an object that is neither a certificate nor a private key."""
    if item.kind in {"csr", "crl"} and (bad := unreadable_fields(item.obj)):
        return _unreadable_object(index, item, bad, found)
    if item.kind == "csr":
        return _csr_info(index, item, found)
    if item.kind == "public-key":
        return _public_key_info(index, item, spki_owner, found)
    if item.kind == "crl":
        return _crl_info(index, item, by_subject, now, found)
    return _other_object(index, item, found)


def _certificate_info(
    index: int, item: _Item, spki: str, now: datetime.datetime, found: _Findings
) -> CertificateInfo:
    import datetime

    from cryptography import x509

    cert: x509.Certificate = item.obj
    summary = CertificateSummary.from_certificate(cert)
    extensions = cert.extensions  # readable: _describe_all sent the others to _unreadable_info
    dns, ips, uris, emails = _sans(extensions)
    key_type, key_size, curve = _key_facts(cert.public_key())
    constraints = _extension(extensions, x509.BasicConstraints)
    is_ca = bool(constraints is not None and constraints.ca)
    path_length = constraints.path_length if constraints is not None and is_ca else None
    key_usage = _key_usage(extensions)
    eku = _extended_key_usage(extensions)
    ski = _extension(extensions, x509.SubjectKeyIdentifier)
    aki = _extension(extensions, x509.AuthorityKeyIdentifier)
    aki_text = None
    if aki is not None:
        aki_text = aki.key_identifier.hex(":").upper() if aki.key_identifier else ""
    self_signed = cert.issuer == cert.subject and _signed_by(cert, cert)
    algorithm, digest = _signature_facts(cert)
    days_left = (summary.not_after - now) // datetime.timedelta(days=1)
    info = CertificateInfo(
        index=index,
        label=item.label,
        subject=summary.subject,
        common_name=summary.common_name,
        issuer=summary.issuer,
        dns_names=dns,
        ip_addresses=ips,
        uris=uris,
        emails=emails,
        not_before=summary.not_before,
        not_after=summary.not_after,
        days_left=days_left,
        serial=_serial(cert.serial_number),
        key_type=key_type,
        key_size=key_size,
        curve=curve,
        signature_algorithm=algorithm,
        signature_hash=digest,
        is_ca=is_ca,
        path_length=path_length,
        key_usage=key_usage,
        extended_key_usage=eku,
        sha256=certificate_sha256(cert),
        public_key_sha256=spki,
        self_signed=self_signed,
        subject_key_id=ski.digest.hex(":").upper() if ski is not None else None,
        authority_key_id=aki_text,
        findings=(),
    )
    _certificate_findings(info, cert, now, found)
    return info.replace(findings=tuple(found.items))


def _unreadable_info(
    index: int,
    item: _Item,
    bad: list[tuple[str, str, Exception]],
    now: datetime.datetime,
    found: _Findings,
) -> CertificateInfo:
    """Describe a certificate some of whose fields cannot be read, with what can be."""
    import datetime

    from cryptography import x509
    from cryptography.x509.oid import NameOID

    cert: x509.Certificate = item.obj
    missing = {field for field, _, _ in bad}
    epoch = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)  # stands for unreadable dates

    def name(field: str, read: Callable[[], str]) -> str:
        return f"(unreadable {field})" if field in missing else read() or f"(empty {field})"

    common_name = None
    if "subject" not in missing:
        cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        common_name = str(cns[0].value) if cns else None
    extensions = x509.Extensions([]) if "extensions" in missing else cert.extensions
    dns, ips, uris, emails = _sans(extensions)
    key_type: str = "unknown"
    key_size = curve = None
    spki = ""
    if "public-key" not in missing:
        key_type, key_size, curve = _key_facts(cert.public_key())
        spki = public_key_sha256(cert.public_key())
    not_before = not_after = epoch
    if "validity" not in missing:
        not_before, not_after = cert.not_valid_before_utc, cert.not_valid_after_utc
    algorithm, digest = _signature_facts(cert)
    ski = _extension(extensions, x509.SubjectKeyIdentifier)
    constraints = _extension(extensions, x509.BasicConstraints)
    info = CertificateInfo(
        index=index,
        label=item.label,
        subject=name("subject", lambda: cert.subject.rfc4514_string()),
        common_name=common_name,
        issuer=name("issuer", lambda: cert.issuer.rfc4514_string()),
        dns_names=dns,
        ip_addresses=ips,
        uris=uris,
        emails=emails,
        not_before=not_before,
        not_after=not_after,
        days_left=(not_after - now) // datetime.timedelta(days=1),
        serial=_serial(cert.serial_number),
        key_type=key_type,
        key_size=key_size,
        curve=curve,
        signature_algorithm=algorithm,
        signature_hash=digest,
        is_ca=bool(constraints is not None and constraints.ca),
        path_length=None,
        key_usage=_key_usage(extensions),
        extended_key_usage=_extended_key_usage(extensions),
        sha256=certificate_sha256(cert),
        public_key_sha256=spki,
        self_signed=False,
        subject_key_id=ski.digest.hex(":").upper() if ski is not None else None,
        authority_key_id=None,
        findings=(),
    )
    listing = "; ".join(f"its {words}: {_reason(exc)}" for _, words, exc in bad)
    found.add(
        "unreadable-field",
        f"Certificate #{index + 1} ({info.title}) has fields that cannot be read: {listing}."
        " securelink refuses it wherever it is given (cert=, ca=, client_ca=), and the other"
        " findings and the chain leave it out. It is malformed or uses an algorithm this"
        " cryptography library does not support: get a well-formed copy, or have it reissued.",
    )
    return info.replace(findings=tuple(found.items))


def _unreadable_object(
    index: int, item: _Item, bad: list[tuple[str, str, Exception]], found: _Findings
) -> OtherObject:
    """Describe a CSR or CRL some of whose fields cannot be read: by its kind, and the finding."""
    what = "certificate request" if item.kind == "csr" else "certificate revocation list"
    listing = "; ".join(f"its {words}: {_reason(exc)}" for _, words, exc in bad)
    found.add(
        "unreadable-field",
        f"Block #{index + 1} is a {what} with fields that cannot be read: {listing}. It is"
        " malformed or uses an algorithm this cryptography library does not support: make it"
        " again, or get a well-formed copy.",
    )
    return OtherObject(
        index=index,
        label=item.label,
        description=f"a {what} whose fields cannot be read",
        findings=tuple(found.items),
    )


def _certificate_findings(
    info: CertificateInfo, cert: x509.Certificate, now: datetime.datetime, found: _Findings
) -> None:
    import datetime

    what = f"#{info.index + 1} ({info.title})"
    if now > info.not_after:
        found.add(
            "expired",
            f"Certificate {what} expired on {info.not_after:%Y-%m-%d %H:%M} UTC"
            f" ({duration(now - info.not_after)} ago); every client rejects it."
            " Renew it: issue a new certificate for the same names.",
        )
    elif now < info.not_before:
        found.add(
            "not-yet-valid",
            f"Certificate {what} is not valid until {info.not_before:%Y-%m-%d %H:%M} UTC,"
            f" {duration(info.not_before - now)} from now."
            " Check this machine's clock; if it is right, wait or reissue the certificate with an"
            " earlier start date.",
        )
    elif info.not_after - now <= datetime.timedelta(days=EXPIRY_WARNING_DAYS):
        found.add(
            "expires-soon",
            f"Certificate {what} expires on {info.not_after:%Y-%m-%d %H:%M} UTC, in"
            f" {duration(info.not_after - now)}. Renew it before then.",
        )
    server_capable = info.extended_key_usage is None or bool(
        {"serverAuth", "anyExtendedKeyUsage"} & set(info.extended_key_usage)
    )
    # Only DNS names and IP addresses can match a host name: a URI SAN alone does not help.
    if not info.is_ca and server_capable and not (info.dns_names or info.ip_addresses):
        cn = f" (its Common Name {info.common_name!r} is ignored)" if info.common_name else ""
        found.add(
            "no-san",
            f"Certificate {what} has no DNS name or IP address in a SubjectAltName{cn}. Clients"
            " (browsers, Go, Python, securelink) match host names against the SubjectAltName"
            " only, so none can verify it as a server certificate. Reissue it with the server's"
            " names as SANs (`openssl req -addext subjectAltName=DNS:example.internal`,"
            " `securelink minica --domains example.internal`).",
        )
    if not info.is_ca and info.extended_key_usage is not None and not server_capable:
        found.add(
            "no-server-auth",
            f"Certificate {what} is for {', '.join(info.extended_key_usage) or 'no purpose'}"
            " (extended key usage), not serverAuth: fine for a client certificate, but clients"
            " reject it from a TLS server.",
        )
    _weak_key(found, f"certificate {what}", info.key_type, info.key_size)
    _weak_signature(found, f"certificate {what}", info.signature_hash)
    if info.authority_key_id is None and not info.self_signed:
        found.add(
            "missing-aki",
            f"Certificate {what} has no authority key identifier. VERIFY_X509_STRICT (on by"
            " default from Python 3.13) rejects such a chain. Reissue it from a CA that adds the"
            " extension (OpenSSL: authorityKeyIdentifier=keyid,issuer).",
        )
    if info.is_ca and info.subject_key_id is None:
        found.add(
            "missing-ski",
            f"CA certificate {what} has no subject key identifier. VERIFY_X509_STRICT (on by"
            " default from Python 3.13) rejects chains through it. Reissue it with the extension"
            " (OpenSSL: subjectKeyIdentifier=hash).",
        )
    if info.is_ca and info.key_usage is None:
        found.add(
            "ca-missing-key-usage",
            f"CA certificate {what} has no key usage extension. VERIFY_X509_STRICT (on by"
            " default from Python 3.13) rejects chains through it. Reissue it with"
            " keyUsage=critical,keyCertSign,cRLSign.",
        )


def _weak_key(found: _Findings, what: str, key_type: str | None, key_size: int | None) -> None:
    if key_size is None:
        return
    if key_type == "RSA" and key_size < MIN_RSA_BITS:
        problem = (
            f"a {key_size}-bit RSA key; OpenSSL and current clients refuse RSA under 2048 bits"
        )
    elif key_type == "EC" and key_size < MIN_EC_BITS:
        problem = f"a {key_size}-bit EC key; use at least P-256"
    elif key_type == "DSA":
        problem = "a DSA key, which TLS 1.3 does not support and current clients refuse"
    else:
        return
    found.add(
        "weak-key",
        f"The {what} has {problem}. Replace it with an ECDSA P-256 or RSA-2048 (or larger) key.",
    )


def _weak_signature(found: _Findings, what: str, digest: str | None) -> None:
    if digest in {"sha1", "md5"}:
        found.add(
            "sha1-signature" if digest == "sha1" else "md5-signature",
            f"The {what} is signed with {'SHA-1' if digest == 'sha1' else 'MD5'}, which OpenSSL"
            " and every current client reject. Reissue it with a SHA-256 signature.",
        )


def _private_key_info(
    index: int,
    item: _Item,
    cert_spki: dict[int, str],
    spki_owner: dict[str, int],
    key_file_mode: int | None,
    found: _Findings,
) -> PrivateKeyInfo:
    key: PrivateKeyTypes | None = item.obj
    what = f"#{index + 1}"
    if key is None:
        error = item.password_error
        assert error is not None
        if error.reason == "missing":
            found.add("password-required", f"{error.message} Give its password to see inside it.")
        else:
            found.add("wrong-password", error.message)
        key_type, key_size, curve, spki = item.key_type, None, None, None
        certificate, match = None, "unknown"
    else:
        key_type, key_size, curve = _key_facts(key.public_key())
        spki = public_key_sha256(key.public_key())
        certificate = spki_owner.get(spki)
        match = (
            "matched" if certificate is not None else "mismatch" if cert_spki else "no-certificate"
        )
        if match == "mismatch":
            # At most a few numbers: a list of every certificate in every message would grow
            # with the square of the input.
            listed = ", ".join(f"#{i + 1}" for i in itertools.islice(cert_spki, _LISTED))
            if len(cert_spki) > _LISTED:
                listed += f" and {len(cert_spki) - _LISTED} more"
            found.add(
                "key-mismatch",
                f"Private key {what} belongs to none of the certificates given with it"
                f" ({listed}). Pair each certificate with the key it was issued for (compare"
                " `openssl x509 -noout -pubkey` with `openssl pkey -pubout`); a renewal often"
                " comes with a new key.",
            )
        _weak_key(found, f"private key {what}", key_type, key_size)
    if item.encryption is not None and item.encryption.startswith("legacy PEM"):
        found.add(
            "legacy-key-encryption",
            f"Private key {what} uses the legacy PEM encryption (Proc-Type: 4,ENCRYPTED), which"
            " derives the key from the password with a single MD5 round. Convert it to encrypted"
            " PKCS#8: `openssl pkey -in KEY -aes256 -out NEW`.",
        )
    if key_file_mode is not None and key_file_mode & 0o077:
        found.add(
            "readable-key-file",
            f"The file holds private key {what} and can be read by group or others (mode"
            f" {key_file_mode:04o}). Restrict it with `chmod 600`.",
        )
    return PrivateKeyInfo(
        index=index,
        label=item.label,
        format=item.format,
        encrypted=item.encryption is not None,
        encryption=item.encryption,
        decrypted=key is not None,
        key_type=key_type,
        key_size=key_size,
        curve=curve,
        public_key_sha256=spki,
        certificate=certificate,
        match=match,
        findings=tuple(found.items),
    )


def _csr_info(index: int, item: _Item, found: _Findings) -> CSRInfo:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    csr: x509.CertificateSigningRequest = item.obj
    try:
        extensions = csr.extensions
    except ValueError:  # pragma: no cover - malformed extension requests
        extensions = x509.Extensions([])
    dns, ips, uris, emails = _sans(extensions)
    key_type, key_size, curve = _key_facts(csr.public_key())
    algorithm, digest = _signature_facts(csr)
    cns = csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    info = CSRInfo(
        index=index,
        label=item.label,
        subject=csr.subject.rfc4514_string() or "(empty subject)",
        common_name=str(cns[0].value) if cns else None,
        dns_names=dns,
        ip_addresses=ips,
        uris=uris,
        emails=emails,
        key_type=key_type,
        key_size=key_size,
        curve=curve,
        signature_algorithm=algorithm,
        signature_hash=digest,
        signature_valid=csr.is_signature_valid,
        public_key_sha256=public_key_sha256(csr.public_key()),
        findings=(),
    )
    what = f"#{index + 1} ({info.title})"
    if not info.signature_valid:
        found.add(
            "invalid-signature",
            f"The signature of certificate request {what} does not verify, so it does not prove"
            " its maker holds the key; CAs refuse it. Make the request again from the key.",
        )
    if not (dns or ips or uris or emails):
        found.add(
            "no-san",
            f"Certificate request {what} asks for no SubjectAltName, so the certificate issued"
            " from it may have none, and clients would ignore its Common Name. Make it with the"
            " names as SANs (`openssl req -new -addext subjectAltName=DNS:example.internal`,"
            " `securelink csr --domains example.internal`).",
        )
    _weak_key(found, f"certificate request {what}", key_type, key_size)
    _weak_signature(found, f"certificate request {what}", digest)
    return info.replace(findings=tuple(found.items))


def _public_key_info(
    index: int, item: _Item, spki_owner: dict[str, int], found: _Findings
) -> PublicKeyInfo:
    key_type, key_size, curve = _key_facts(item.obj)
    spki = public_key_sha256(item.obj)
    _weak_key(found, f"public key #{index + 1}", key_type, key_size)
    return PublicKeyInfo(
        index=index,
        label=item.label,
        key_type=key_type,
        key_size=key_size,
        curve=curve,
        public_key_sha256=spki,
        certificate=spki_owner.get(spki),
        findings=tuple(found.items),
    )


def _crl_info(
    index: int,
    item: _Item,
    by_subject: dict[x509.Name, list[tuple[int, x509.Certificate]]],
    now: datetime.datetime,
    found: _Findings,
) -> CRLInfo:
    from cryptography import x509

    crl: x509.CertificateRevocationList = item.obj
    number = _extension(crl.extensions, x509.CRLNumber)
    issuer_index, valid = None, None
    for i, cert in by_subject.get(crl.issuer, [])[:_MAX_SAME_NAME]:
        if cert.subject == crl.issuer:
            issuer_index = i
            try:
                valid = crl.is_signature_valid(cert.public_key())  # type: ignore[arg-type]
            except (TypeError, ValueError):  # pragma: no cover - a key type CRLs cannot use
                valid = False
            if valid:
                break
    algorithm, digest = _signature_facts(crl)
    info = CRLInfo(
        index=index,
        label=item.label,
        issuer=crl.issuer.rfc4514_string() or "(empty issuer)",
        last_update=crl.last_update_utc,
        next_update=crl.next_update_utc,
        revoked_count=len(crl),
        crl_number=number.crl_number if number is not None else None,
        signature_algorithm=algorithm,
        signature_hash=digest,
        issuer_certificate=issuer_index,
        signature_valid=valid,
        findings=(),
    )
    what = f"#{index + 1}"
    if info.next_update is not None and now > info.next_update:
        found.add(
            "stale-crl",
            f"CRL {what} was due to be replaced on {info.next_update:%Y-%m-%d %H:%M} UTC;"
            " OpenSSL rejects a CRL past its next update when it checks revocation. Fetch or"
            " issue a current one.",
        )
    if valid is False:
        found.add(
            "invalid-signature",
            f"The signature of CRL {what} does not verify against certificate"
            f" #{(issuer_index or 0) + 1}, which has its issuer's name; it is damaged or from"
            " another CA of the same name.",
        )
    _weak_signature(found, f"CRL {what}", digest)
    return info.replace(findings=tuple(found.items))


def _other_object(index: int, item: _Item, found: _Findings) -> OtherObject:
    if item.label in _HARMLESS:
        description = _HARMLESS[item.label]
    elif item.label == "OPENSSH PRIVATE KEY":
        description = "an OpenSSH private key"
        found.add(
            "not-inspected",
            f"Block #{index + 1} is an OpenSSH private key, which TLS cannot use; convert it"
            " with `ssh-keygen -p -m PKCS8 -f FILE` to see it here.",
        )
    else:
        description = _friendly(item.label)
        found.add(
            "not-inspected",
            f"Block #{index + 1} is {description}, which securelink does not look inside.",
        )
    return OtherObject(
        index=index, label=item.label, description=description, findings=tuple(found.items)
    )


def _check_ca_as_leaf(objects: list[InspectedObject], first: int) -> None:
    cert = objects[first]
    assert isinstance(cert, CertificateInfo)
    if not cert.is_ca:
        return
    keys = [o for o in objects if isinstance(o, PrivateKeyInfo)]
    # A key for another certificate makes it an ordering problem, and a key for none a
    # mismatch: both are reported as such.  Its own key, or one still encrypted, makes it a leaf.
    if not any(k.certificate == first or k.match == "unknown" for k in keys):
        return
    found = _Findings(first)
    found.add(
        "ca-as-leaf",
        f"Certificate #{first + 1} ({cert.title}) is a CA certificate (basicConstraints CA:TRUE),"
        " and comes first with a private key, where a server or client certificate belongs;"
        " securelink, like careful TLS peers, refuses a CA certificate as a leaf. Use the CA to"
        " issue a leaf certificate and use that (keep the CA's key apart).",
    )
    objects[first] = cert.replace(findings=(*cert.findings, *found.items))


def _by_subject(
    certs: list[tuple[int, x509.Certificate]],
) -> dict[x509.Name, list[tuple[int, x509.Certificate]]]:
    """Index certificates by subject name, each name's certificates in input order."""
    index: dict[x509.Name, list[tuple[int, x509.Certificate]]] = {}
    for i, cert in certs:
        index.setdefault(cert.subject, []).append((i, cert))
    return index


def _chain_info(
    certs: list[tuple[int, x509.Certificate]],
    by_subject: dict[x509.Name, list[tuple[int, x509.Certificate]]],
) -> ChainInfo | None:
    if len(certs) < 2 or all(c.issuer == c.subject for _, c in certs):
        return None
    broken_at = None
    for (i, child), (_, parent) in itertools.pairwise(certs):
        if not _issued_by(child, parent):
            broken_at = i
            break
    if broken_at is None:
        return ChainInfo(
            certificates=tuple(i for i, _ in certs),
            in_order=True,
            broken_at=None,
            suggested_order=None,
        )
    return ChainInfo(
        certificates=tuple(i for i, _ in certs),
        in_order=False,
        broken_at=broken_at,
        suggested_order=_suggest_order(certs, by_subject),
    )


def _issued_by(child: x509.Certificate, parent: x509.Certificate) -> bool:
    return child.issuer == parent.subject and _signed_by(child, parent)


def _suggest_order(
    certs: list[tuple[int, x509.Certificate]],
    by_subject: dict[x509.Name, list[tuple[int, x509.Certificate]]],
) -> tuple[int, ...] | None:
    # Each certificate's issuer is looked up by name, and signatures are checked only against
    # the few certificates of that name: linear in the number of certificates, where trying
    # every pair took a minute for 6,922 of them.
    parents: dict[int, int] = {}
    for i, child in certs:
        if child.issuer == child.subject:
            continue
        for j, parent in by_subject.get(child.issuer, [])[:_MAX_SAME_NAME]:
            if i != j and _signed_by(child, parent):
                parents[i] = j
                break
    has_child = set(parents.values())
    leaves = [i for i, _ in certs if i not in has_child]
    if len(leaves) != 1:
        return None
    order = [leaves[0]]
    while order[-1] in parents and len(order) <= len(certs):
        order.append(parents[order[-1]])
    return tuple(order) if len(order) == len(certs) else None


def _chain_finding(chain: ChainInfo, objects: Sequence[InspectedObject]) -> Finding:
    assert chain.broken_at is not None
    position = chain.certificates.index(chain.broken_at)
    child = objects[chain.broken_at]
    parent = objects[chain.certificates[position + 1]]
    assert isinstance(child, CertificateInfo) and isinstance(parent, CertificateInfo)
    message = (
        f"The certificates are not in chain order: #{child.index + 1} ({child.title}) is followed"
        f" by #{parent.index + 1} ({parent.title}), which did not issue it."
    )
    if chain.suggested_order is not None:
        order = ", ".join(f"#{i + 1}" for i in chain.suggested_order)
        message += f" Put them in the order {order}: the leaf first, then each one's issuer."
    else:
        message += (
            " They do not form one chain: put the leaf first, then each one's issuer, and leave"
            " out certificates that belong elsewhere."
        )
    return Finding(
        code="chain-out-of-order",
        severity=_SEVERITY["chain-out-of-order"],
        message=message,
        index=None,
    )


# ---------------------------------------------------------------------------------------------
# Small facts


def _extension(extensions: x509.Extensions, kind: Any) -> Any:
    from cryptography import x509

    try:
        return extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


def _sans(
    extensions: x509.Extensions,
) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    from cryptography import x509

    san = _extension(extensions, x509.SubjectAlternativeName)
    if san is None:
        return (), (), (), ()
    return (
        tuple(san.get_values_for_type(x509.DNSName)),
        tuple(str(ip) for ip in san.get_values_for_type(x509.IPAddress)),
        tuple(san.get_values_for_type(x509.UniformResourceIdentifier)),
        tuple(san.get_values_for_type(x509.RFC822Name)),
    )


def _key_usage(extensions: x509.Extensions) -> tuple[str, ...] | None:
    from cryptography import x509

    usage = _extension(extensions, x509.KeyUsage)
    if usage is None:
        return None
    bits = [
        ("digital_signature", "digitalSignature"),
        ("content_commitment", "contentCommitment"),
        ("key_encipherment", "keyEncipherment"),
        ("data_encipherment", "dataEncipherment"),
        ("key_agreement", "keyAgreement"),
        ("key_cert_sign", "keyCertSign"),
        ("crl_sign", "cRLSign"),
    ]
    if usage.key_agreement:  # the other two are defined only with keyAgreement
        bits += [("encipher_only", "encipherOnly"), ("decipher_only", "decipherOnly")]
    return tuple(name for attr, name in bits if getattr(usage, attr))


def _extended_key_usage(extensions: x509.Extensions) -> tuple[str, ...] | None:
    from cryptography import x509
    from cryptography.x509.oid import ExtendedKeyUsageOID as Oid

    usage = _extension(extensions, x509.ExtendedKeyUsage)
    if usage is None:
        return None
    names = {
        Oid.SERVER_AUTH: "serverAuth",
        Oid.CLIENT_AUTH: "clientAuth",
        Oid.CODE_SIGNING: "codeSigning",
        Oid.EMAIL_PROTECTION: "emailProtection",
        Oid.TIME_STAMPING: "timeStamping",
        Oid.OCSP_SIGNING: "OCSPSigning",
        Oid.ANY_EXTENDED_KEY_USAGE: "anyExtendedKeyUsage",
    }
    return tuple(names.get(oid, oid.dotted_string) for oid in usage)


def _key_facts(key: PublicKeyTypes) -> tuple[str, int | None, str | None]:
    from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa, x448, x25519

    if isinstance(key, rsa.RSAPublicKey):
        return "RSA", key.key_size, None
    if isinstance(key, ec.EllipticCurvePublicKey):
        return "EC", key.curve.key_size, _CURVES.get(key.curve.name, key.curve.name)
    if isinstance(key, dsa_key_classes()[1]):
        return "DSA", key.key_size, None
    for kind, name, size in (
        (ed25519.Ed25519PublicKey, "Ed25519", 256),
        (ed448.Ed448PublicKey, "Ed448", 448),
        (x25519.X25519PublicKey, "X25519", 256),
        (x448.X448PublicKey, "X448", 448),
    ):
        if isinstance(key, kind):
            return name, size, None
    return type(key).__name__, None, None  # pragma: no cover - newer key types


def _signature_facts(
    obj: x509.Certificate | x509.CertificateSigningRequest | x509.CertificateRevocationList,
) -> tuple[str, str | None]:
    from cryptography.exceptions import UnsupportedAlgorithm

    oid = obj.signature_algorithm_oid
    name = oid._name  # cryptography's only way to name an OID
    if name == "Unknown OID":  # pragma: no cover - exotic algorithms
        name = oid.dotted_string
    try:
        digest = obj.signature_hash_algorithm
    except UnsupportedAlgorithm:  # pragma: no cover - exotic algorithms
        return name, None
    return name, digest.name if digest is not None else None


def _serial(number: int) -> str:
    text = f"{abs(number):X}"
    if len(text) % 2:
        text = "0" + text
    return ("-" if number < 0 else "") + text
