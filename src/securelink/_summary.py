"""CertificateSummary: the facts about one certificate that an error message needs."""

from __future__ import annotations

from ._frozen import Frozen
from ._x509 import certificate_sha256, unreadable_fields

TYPE_CHECKING = False
if TYPE_CHECKING:
    import datetime

    from cryptography import x509

__all__ = ["CertificateSummary"]


class CertificateSummary(Frozen):
    """What a person needs to know about a certificate, to tell which one it is and why it failed.

    Attached to verification errors (the certificate that failed, and the chain the peer sent) and
    to :class:`~securelink.CertificateRejectedError` (our own certificate).  Build one with
    :meth:`from_der` or :meth:`from_certificate`.

    Attributes:
        subject: The subject, in RFC 4514 form (``"CN=api.example,O=Example"``).
        issuer: The issuer, in RFC 4514 form.
        names: The DNS names, IP addresses and URIs (such as SPIFFE IDs) of its
            SubjectAltName: DNS names first, then addresses, then URIs.
        common_name: The subject's Common Name, if any (informational: never matched).
        not_before: Start of validity (timezone-aware UTC).
        not_after: End of validity (timezone-aware UTC).
        sha256: The SHA-256 fingerprint of the DER encoding, as colon-separated hex.
        is_ca: Whether it is a CA certificate (basicConstraints CA:TRUE).
        self_signed: Whether its issuer is its own subject.
    """

    __slots__ = (
        "common_name",
        "is_ca",
        "issuer",
        "names",
        "not_after",
        "not_before",
        "self_signed",
        "sha256",
        "subject",
    )
    _fields = (
        "subject",
        "issuer",
        "names",
        "common_name",
        "not_before",
        "not_after",
        "sha256",
        "is_ca",
        "self_signed",
    )

    subject: str
    issuer: str
    names: tuple[str, ...]
    common_name: str | None
    not_before: datetime.datetime
    not_after: datetime.datetime
    sha256: str
    is_ca: bool
    self_signed: bool

    def __init__(
        self,
        *,
        subject: str,
        issuer: str,
        names: tuple[str, ...],
        common_name: str | None,
        not_before: datetime.datetime,
        not_after: datetime.datetime,
        sha256: str,
        is_ca: bool,
        self_signed: bool,
    ) -> None:
        self._set("subject", subject)
        self._set("issuer", issuer)
        self._set("names", tuple(names))
        self._set("common_name", common_name)
        self._set("not_before", not_before)
        self._set("not_after", not_after)
        self._set("sha256", sha256)
        self._set("is_ca", is_ca)
        self._set("self_signed", self_signed)

    @classmethod
    def from_certificate(cls, cert: x509.Certificate) -> CertificateSummary:
        """Summarise a ``cryptography`` certificate.

        An extension that cannot be read (cryptography parses them on first access and refuses
        some that OpenSSL reads, such as an empty SubjectAltName) leaves the summary without
        names and with ``is_ca`` false: a peer's certificate can still be described.

        Raises:
            ValueError: its subject, issuer or validity dates cannot be read.
        """
        import contextlib

        from cryptography import x509
        from cryptography.x509.oid import NameOID

        bad = {field: (words, exc) for field, words, exc in unreadable_fields(cert)}
        for field in ("subject", "issuer", "validity"):
            if field in bad:
                words, exc = bad[field]
                raise ValueError(f"the certificate's {words} cannot be read: {exc}") from exc
        names: list[str] = []
        is_ca = False
        if "extensions" not in bad:
            try:
                san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            except x509.ExtensionNotFound:
                pass
            else:
                names = [*san.get_values_for_type(x509.DNSName)]
                names += [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
                names += san.get_values_for_type(x509.UniformResourceIdentifier)
            with contextlib.suppress(x509.ExtensionNotFound):
                is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        common_name = str(cns[0].value) if cns else None
        return cls(
            subject=cert.subject.rfc4514_string() or "(empty subject)",
            issuer=cert.issuer.rfc4514_string() or "(empty issuer)",
            names=tuple(names),
            common_name=common_name,
            not_before=cert.not_valid_before_utc,
            not_after=cert.not_valid_after_utc,
            sha256=certificate_sha256(cert),
            is_ca=bool(is_ca),
            self_signed=cert.issuer == cert.subject,
        )

    @classmethod
    def from_der(cls, der: bytes) -> CertificateSummary:
        """Summarise a DER-encoded certificate.

        Raises:
            ValueError: *der* is not a certificate, or one whose subject, issuer or validity
                dates cannot be read.
        """
        from cryptography import x509

        try:
            cert = x509.load_der_x509_certificate(der)
        except x509.InvalidVersion as exc:  # not a ValueError
            raise ValueError(f"not an X.509 certificate: {exc}") from exc
        return cls.from_certificate(cert)

    def describe(self) -> str:
        """Return a short phrase naming the certificate: its SANs, else its subject."""
        if self.names:
            return f"the certificate for {', '.join(self.names)}"
        return f"the certificate {self.subject!r}"

    def __str__(self) -> str:
        names = ", ".join(self.names) or "(no SAN)"
        return (
            f"{self.subject} [{names}] issued by {self.issuer}, valid"
            f" {self.not_before:%Y-%m-%d} to {self.not_after:%Y-%m-%d},"
            f" SHA-256 {self.sha256[:23]}..."
        )
