"""A development certificate authority, for tests, demos and local development.

.. warning::
   This module is for development and tests, **not production**.  Its CA key lives in memory or in
   a plain 0600 file next to the certificates, nothing is revoked, and nothing is audited.  Use a
   real PKI (a private CA service, ACME, or your platform's certificate manager) in production.

It does what `minica <https://github.com/jsha/minica>`_ and trustme do, with certificates that pass
``VERIFY_X509_STRICT``: every leaf carries its names as SubjectAltNames only (no Common Name), the
right basic constraints, key usage and extended key usage, and subject/authority key identifiers.

Example::

    from securelink import devca, client_context, server_context

    ca = devca.CertificateAuthority()
    server = ca.issue("localhost", "127.0.0.1")
    server_ctx = server_context(server.server_options())
    client_ctx = client_context(ca.client_options())

:func:`minica` writes files in minica's layout (``minica.pem``, ``minica-key.pem``,
``<first-name>/cert.pem``, ``<first-name>/key.pem``).
"""

from __future__ import annotations

import contextlib
import datetime
import enum
import ipaddress
import os
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._material import load_certificates, load_private_key
from ._options import ClientAuth, ClientOptions, ServerOptions
from .errors import ConfigurationError, KeyMismatchError, MaterialError

if TYPE_CHECKING:
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes

__all__ = [
    "CertificateAuthority",
    "CertificateRequest",
    "IssuedCertificate",
    "KeyType",
    "MinicaFiles",
    "Usage",
    "create_csr",
    "minica",
]

_NAME_RE = re.compile(r"[A-Za-z0-9.*-]+")  # minica's rule; used with fullmatch
_LEAF_LIFETIME = datetime.timedelta(days=825)  # Apple's limit for TLS server certificates
_CA_LIFETIME = datetime.timedelta(days=3650)
_BACKDATE = datetime.timedelta(minutes=5)  # tolerate small clock differences between peers


class KeyType(enum.Enum):
    """The kind of key to generate."""

    #: ECDSA on NIST P-256 (the default; small, fast, universally supported).
    ECDSA_P256 = "ecdsa"
    #: ECDSA on NIST P-384 (minica's default since 2024).
    ECDSA_P384 = "ecdsa-p384"
    #: RSA, 2048 bits.
    RSA_2048 = "rsa"
    #: RSA, 3072 bits.
    RSA_3072 = "rsa-3072"


class Usage(enum.Enum):
    """What a leaf certificate may be used for (its extended key usage)."""

    #: TLS server authentication only (``serverAuth``).
    SERVER = "server"
    #: TLS client authentication only (``clientAuth``).
    CLIENT = "client"
    #: Both, as minica issues every leaf.
    BOTH = "both"


def _enum(kind: type[Any], value: object, field: str) -> Any:
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(repr(member.value) for member in kind)
        raise ConfigurationError(
            f"{field}={value!r} is not one of {allowed}.",
            field=field,
            hint=f"Use a {kind.__name__} member or one of its values.",
        ) from None


def _generate_key(key_type: KeyType | str) -> CertificateIssuerPrivateKeyTypes:
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    kind = _enum(KeyType, key_type, "key_type")
    if kind is KeyType.ECDSA_P256:
        return ec.generate_private_key(ec.SECP256R1())
    if kind is KeyType.ECDSA_P384:
        return ec.generate_private_key(ec.SECP384R1())
    size = 2048 if kind is KeyType.RSA_2048 else 3072
    return rsa.generate_private_key(public_exponent=65537, key_size=size)


def _hash_for(key: CertificateIssuerPrivateKeyTypes) -> Any:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.key_size >= 384:
        return hashes.SHA384()
    return hashes.SHA256()


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


_URI_RE = re.compile(r"[a-z][a-z0-9+.-]*://[^\s]+")  # spiffe://trust.domain/path and the like


def _general_names(
    names: Sequence[str], field: str = "names", *, uris: bool = True
) -> list[x509.GeneralName]:
    from cryptography import x509

    if isinstance(names, str):
        raise ConfigurationError(
            f"{field} must be a sequence of names, not the single string {names!r}.",
            field=field,
            hint=f'Write {field}=["{names}"]; a bare string would be read letter by letter.',
        )
    if not names:
        raise ConfigurationError(
            "a certificate needs at least one DNS name or IP address.",
            field=field,
            hint='Pass the names it is for, for example issue("localhost", "127.0.0.1").',
        )
    result: list[x509.GeneralName] = []
    for name in names:
        if not isinstance(name, str) or not name:
            raise ConfigurationError(
                f"{name!r} is not a DNS name or IP address.",
                field=field,
                hint="Pass names as non-empty strings.",
            )
        if uris and "://" in name:
            if not _URI_RE.fullmatch(name):
                raise ConfigurationError(
                    f"{name!r} is not a valid URI for a SubjectAltName.",
                    field=field,
                    hint="Write it as scheme://authority/path, for example"
                    " spiffe://example.org/payments.",
                )
            result.append(x509.UniformResourceIdentifier(name))
            continue
        if "%" in name:
            raise ConfigurationError(
                f"{name!r} has an IPv6 zone (scope) suffix, which a certificate cannot hold.",
                field=field,
                hint="Drop the %zone part of the address.",
            )
        try:
            result.append(x509.IPAddress(ipaddress.ip_address(name)))
            continue
        except ValueError:
            pass
        labels = name.removesuffix(".").split(".")
        if not _NAME_RE.fullmatch(name) or "" in labels:
            raise ConfigurationError(
                f"{name!r} is not a valid DNS name (allowed: letters, digits, '-', '*', and"
                " '.' between non-empty labels).",
                field=field,
                hint="Maybe there are spaces in your name list? Pass each name separately;"
                " write internationalised names in their xn-- (punycode) form.",
            )
        result.append(x509.DNSName(name))
    return result


def _pem(cert: x509.Certificate) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: CertificateIssuerPrivateKeyTypes, password: bytes | None = None) -> bytes:
    from cryptography.hazmat.primitives import serialization

    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


def _nonempty_password(password: str | bytes) -> bytes:
    pw = password.encode() if isinstance(password, str) else password
    if not pw:
        raise ConfigurationError(
            "the password is empty, which would leave the key unencrypted.",
            field="password",
            hint="Pass a non-empty password, or use the unencrypted form on purpose"
            " (key_pem, or pkcs12() without a password).",
        )
    return pw


@dataclass(frozen=True, slots=True)
class IssuedCertificate:
    """A leaf certificate issued by a :class:`CertificateAuthority`, with its key.

    Attributes:
        certificate: The leaf.
        private_key: Its private key.
        chain: The intermediates between the leaf and the root, nearest first (empty when issued by
            a root).
        root: The root certificate of the issuing hierarchy: what peers must trust.
    """

    certificate: x509.Certificate
    private_key: CertificateIssuerPrivateKeyTypes
    chain: tuple[x509.Certificate, ...]
    root: x509.Certificate

    @property
    def cert_pem(self) -> bytes:
        """The leaf certificate alone, as PEM."""
        return _pem(self.certificate)

    @property
    def chain_pem(self) -> bytes:
        """The leaf followed by its intermediates, as PEM; what a peer should be sent."""
        return b"".join(_pem(c) for c in (self.certificate, *self.chain))

    @property
    def key_pem(self) -> bytes:
        """The private key as unencrypted PKCS#8 PEM.  Keep it secret."""
        return _key_pem(self.private_key)

    @property
    def root_pem(self) -> bytes:
        """The root certificate as PEM; what peers must trust."""
        return _pem(self.root)

    def encrypted_key_pem(self, password: str | bytes) -> bytes:
        """Return the private key as encrypted PKCS#8 PEM, protected by *password*.

        Raises:
            ConfigurationError: the password is empty (which would silently mean "unencrypted").
        """
        return _key_pem(self.private_key, _nonempty_password(password))

    def pkcs12(self, password: str | bytes | None = None, *, name: str | None = None) -> bytes:
        """Return the leaf, its chain and its key as a PKCS#12 (``.p12``) bundle.

        Args:
            password: Encrypts the bundle; ``None`` writes an unencrypted one.
            name: The bundle's friendly name.
        """
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.serialization import pkcs12

        pw = None if password is None else _nonempty_password(password)
        encryption: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(pw) if pw else serialization.NoEncryption()
        )
        # Keys issued here are always of a kind PKCS#12 can hold; the annotation is wider.
        key: Any = self.private_key
        return pkcs12.serialize_key_and_certificates(
            name.encode() if name else None,
            key,
            self.certificate,
            list(self.chain) or None,
            encryption,
        )

    def server_options(self, **kwargs: Any) -> ServerOptions:
        """Return :class:`~securelink.ServerOptions` presenting this certificate.

        Keyword arguments are passed on.  When ``client_auth`` asks for client certificates and
        ``client_ca`` is not given, clients must chain to this certificate's own root.
        """
        kwargs.setdefault("cert", (self.certificate, *self.chain))
        kwargs.setdefault("key", self.private_key)
        if kwargs.get("client_auth", ClientAuth.NONE) is not ClientAuth.NONE:
            kwargs.setdefault("client_ca", self.root)
        return ServerOptions(**kwargs)

    def client_options(self, **kwargs: Any) -> ClientOptions:
        """Return :class:`~securelink.ClientOptions` presenting this certificate (mutual TLS).

        Keyword arguments are passed on; ``ca`` defaults to this certificate's own root.
        """
        kwargs.setdefault("cert", (self.certificate, *self.chain))
        kwargs.setdefault("key", self.private_key)
        kwargs.setdefault("ca", self.root)
        return ClientOptions(**kwargs)


class CertificateAuthority:
    """A certificate authority that issues SAN-only certificates for development and tests.

    Args:
        common_name: The CA's name; by default ``securelink development CA <6 hex digits>``.
        key_type: The CA key's type (default ECDSA P-256).
        valid_for: How long the CA certificate is valid (default 10 years).
        path_length: How many intermediates may follow this CA (``None``: no limit).

    Not for production: see the module documentation.
    """

    certificate: x509.Certificate
    private_key: CertificateIssuerPrivateKeyTypes
    parent: CertificateAuthority | None

    def __init__(
        self,
        *,
        common_name: str | None = None,
        key_type: KeyType | str = KeyType.ECDSA_P256,
        valid_for: datetime.timedelta = _CA_LIFETIME,
        path_length: int | None = None,
    ) -> None:
        from cryptography import x509
        from cryptography.x509.oid import NameOID

        key = _generate_key(key_type)
        name = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "securelink development CA"),
                x509.NameAttribute(
                    NameOID.COMMON_NAME,
                    common_name or f"securelink development CA {secrets.token_hex(3)}",
                ),
            ]
        )
        now = _now()
        builder = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _BACKDATE)
            .not_valid_after(now + valid_for)
        )
        ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
        builder = _ca_extensions(builder, ski, ski, path_length)
        self.certificate = builder.sign(key, _hash_for(key))
        self.private_key = key
        self.parent = None

    @classmethod
    def from_pem(
        cls, cert_pem: bytes, key_pem: bytes, *, password: str | bytes | None = None
    ) -> CertificateAuthority:
        """Load an existing CA from its certificate and key.

        Raises:
            MaterialError: the certificate is not a CA certificate, or the key cannot be read.
            KeyMismatchError: the key does not belong to the certificate.
        """
        from cryptography import x509

        certs, cert_label = load_certificates(cert_pem, what="CA certificate", stamps=[])
        key, key_label = load_private_key(key_pem, password, stamps=[])
        return cls._adopt(certs[0], key, cert_label, key_label, x509)

    @classmethod
    def _adopt(
        cls, cert: x509.Certificate, key: Any, cert_label: str, key_label: str, x509: Any
    ) -> CertificateAuthority:
        try:
            is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        except x509.ExtensionNotFound:
            is_ca = False
        if not is_ca:
            raise MaterialError(
                f"{cert_label} is not a CA certificate (no basicConstraints CA:TRUE).",
                source=cert_label,
                found="CERTIFICATE",
                hint="Pass the CA's own certificate (minica.pem), not a leaf.",
            )
        if cert.public_key() != key.public_key():
            raise KeyMismatchError(
                f"the CA key from {key_label} does not belong to the CA certificate from"
                f" {cert_label}.",
                source=key_label,
                cert_source=cert_label,
                hint="Keep minica.pem and minica-key.pem together; they are a pair.",
            )
        self = cls.__new__(cls)
        self.certificate = cert
        self.private_key = key
        self.parent = None
        return self

    @property
    def cert_pem(self) -> bytes:
        """The CA certificate as PEM; what peers must trust."""
        return _pem(self.certificate)

    @property
    def key_pem(self) -> bytes:
        """The CA's private key as unencrypted PKCS#8 PEM.  Keep it secret."""
        return _key_pem(self.private_key)

    @property
    def root(self) -> x509.Certificate:
        """The root certificate at the top of this CA's hierarchy."""
        ca = self
        while ca.parent is not None:
            ca = ca.parent
        return ca.certificate

    @property
    def chain(self) -> tuple[x509.Certificate, ...]:
        """This CA's certificate and its parents' up to but excluding the root, nearest first."""
        chain = []
        ca: CertificateAuthority | None = self
        while ca is not None and ca.parent is not None:
            chain.append(ca.certificate)
            ca = ca.parent
        return tuple(chain)

    def _sign(self, builder: Any) -> x509.Certificate:
        result: x509.Certificate = builder.sign(self.private_key, _hash_for(self.private_key))
        return result

    def _aki(self) -> Any:
        from cryptography import x509

        return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(
            self.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        )

    def intermediate(
        self,
        *,
        common_name: str | None = None,
        key_type: KeyType | str | None = None,
        valid_for: datetime.timedelta = _CA_LIFETIME,
        path_length: int | None = 0,
    ) -> CertificateAuthority:
        """Create an intermediate CA signed by this one.

        Args:
            common_name: Its name; by default ``securelink development intermediate <hex>``.
            key_type: Its key type; by default the same kind as this CA's.
            valid_for: How long it is valid (capped at this CA's own expiry).
            path_length: How many further intermediates may follow it (default 0: none).
        """
        from cryptography import x509
        from cryptography.x509.oid import NameOID

        limit = self.certificate.extensions.get_extension_for_class(
            x509.BasicConstraints
        ).value.path_length
        if limit == 0:
            raise ConfigurationError(
                "this CA has path length 0: it may issue leaves but no further intermediates"
                " (leaves below one would fail verification).",
                field="path_length",
                hint="Create the intermediate from a CA higher up, or give this CA a larger"
                " path_length when creating it.",
            )
        if limit is not None and (path_length is None or path_length > limit - 1):
            raise ConfigurationError(
                f"path_length={path_length} exceeds what this CA allows below it ({limit - 1}).",
                field="path_length",
                hint=f"Use path_length={limit - 1} or less.",
            )
        key = _generate_key(key_type or _key_type_of(self.private_key))
        name = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "securelink development CA"),
                x509.NameAttribute(
                    NameOID.COMMON_NAME,
                    common_name or f"securelink development intermediate {secrets.token_hex(3)}",
                ),
            ]
        )
        now = _now()
        builder = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _BACKDATE)
            .not_valid_after(min(now + valid_for, self.certificate.not_valid_after_utc))
        )
        ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
        builder = _ca_extensions(builder, ski, self._aki(), path_length)
        child = CertificateAuthority.__new__(CertificateAuthority)
        child.certificate = self._sign(builder)
        child.private_key = key
        child.parent = self
        return child

    def issue(
        self,
        *names: str,
        usage: Usage | str = Usage.BOTH,
        key_type: KeyType | str = KeyType.ECDSA_P256,
        valid_for: datetime.timedelta = _LEAF_LIFETIME,
        not_before: datetime.datetime | None = None,
        not_after: datetime.datetime | None = None,
        common_name: str | None = None,
    ) -> IssuedCertificate:
        """Issue a leaf certificate for DNS names and IP addresses.

        Args:
            names: DNS names (``"localhost"``, ``"*.example.test"``), IP addresses
                (``"127.0.0.1"``, ``"::1"``) and URIs (``"spiffe://example.org/web"``, the
                workload identities of SPIFFE), all written as SubjectAltNames.
            usage: Server, client or both (default, as minica).
            key_type: The leaf key's type (default ECDSA P-256).
            valid_for: Lifetime from now (default 825 days).
            not_before: Explicit start of validity (for testing clocks); overrides the default.
            not_after: Explicit end of validity (for testing expiry); overrides ``valid_for``.
            common_name: Put a Common Name in the subject as well.  It is informational only:
                securelink, browsers and Go match names against the SAN alone.

        Returns:
            The certificate, its key, and the chain up to the root.
        """
        from cryptography import x509

        general_names = _general_names(names)
        key = _generate_key(key_type)
        now = _now()
        start = not_before if not_before is not None else now - _BACKDATE
        # By default a leaf never outlives its issuer; explicit dates are taken as given (tests).
        end = (
            not_after
            if not_after is not None
            else min(now + valid_for, self.certificate.not_valid_after_utc)
        )
        if end <= start:
            raise ConfigurationError(
                f"the validity period is empty: not_after ({end:%Y-%m-%d %H:%M}) is not after"
                f" not_before ({start:%Y-%m-%d %H:%M}).",
                field="not_after",
                hint="Give a not_after later than not_before.",
            )
        builder = (
            x509.CertificateBuilder()
            .subject_name(_leaf_subject(common_name, names[0]))
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
        )
        builder = _leaf_extensions(builder, key.public_key(), self._aki(), general_names, usage)
        return IssuedCertificate(self._sign(builder), key, self.chain, self.root)

    def sign_csr(
        self,
        csr: x509.CertificateSigningRequest | bytes,
        *,
        usage: Usage | str = Usage.BOTH,
        valid_for: datetime.timedelta = _LEAF_LIFETIME,
    ) -> x509.Certificate:
        """Issue a certificate for a certificate signing request.

        The names come from the CSR's SubjectAltName extension; its other requested extensions are
        ignored (the CA decides key usage and constraints).  A CSR whose signature does not verify
        is refused.

        Args:
            csr: The CSR, as a ``cryptography`` object or PEM/DER bytes.
            usage: Server, client or both.
            valid_for: Lifetime from now.

        Raises:
            MaterialError: the bytes are not a CSR, or its signature does not verify.
            ConfigurationError: the CSR requests no SubjectAltName.
        """
        from cryptography import x509

        if isinstance(csr, bytes):
            csr = _load_csr(csr)
        if not csr.is_signature_valid:
            raise MaterialError(
                "the CSR's signature does not verify: it was not made with the key it carries.",
                source="the in-memory CSR",
                found="CERTIFICATE REQUEST",
                hint="Create the CSR again with the private key it should certify.",
            )
        try:
            san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            general_names = list(san)
        except x509.ExtensionNotFound:
            general_names = []
        if not general_names:
            raise ConfigurationError(
                "the CSR requests no SubjectAltName; securelink issues SAN-only certificates.",
                field="csr",
                hint="Create the CSR with the names as SANs, for example openssl req"
                " -addext subjectAltName=DNS:example.test.",
            )
        now = _now()
        public_key = csr.public_key()
        builder = (
            x509.CertificateBuilder()
            .subject_name(csr.subject)
            .issuer_name(self.certificate.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _BACKDATE)
            .not_valid_after(now + valid_for)
        )
        # RFC 5280 4.2.1.6: with an empty subject the SAN must be critical (strict mode checks).
        builder = _leaf_extensions(
            builder,
            public_key,
            self._aki(),
            general_names,
            usage,
            san_critical=len(csr.subject) == 0,
        )
        return self._sign(builder)

    def client_options(self, **kwargs: Any) -> ClientOptions:
        """Return :class:`~securelink.ClientOptions` that trust this CA's root.

        A CA is not a client, so these present no certificate (as
        :meth:`MinicaFiles.trusting_client_options`); an :class:`IssuedCertificate`'s
        ``client_options()`` presents the certificate.  Keyword arguments are passed on (for
        example ``alpn``, or ``cert``/``key`` for mTLS).
        """
        kwargs.setdefault("ca", self.root)
        return ClientOptions(**kwargs)


def _key_type_of(key: Any) -> KeyType:
    from cryptography.hazmat.primitives.asymmetric import ec

    if isinstance(key, ec.EllipticCurvePrivateKey):
        return KeyType.ECDSA_P384 if key.curve.key_size >= 384 else KeyType.ECDSA_P256
    return KeyType.RSA_2048 if key.key_size <= 2048 else KeyType.RSA_3072


def _load_csr(data: bytes) -> x509.CertificateSigningRequest:
    from cryptography import x509

    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_csr(data)
        return x509.load_der_x509_csr(data)
    except ValueError as exc:
        raise MaterialError(
            "the in-memory CSR does not decode as a certificate signing request.",
            source="the in-memory CSR",
            hint="Pass a PEM '-----BEGIN CERTIFICATE REQUEST-----' block or DER bytes.",
        ) from exc


def _leaf_subject(common_name: str | None, first: str) -> x509.Name:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    attributes = [
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "securelink development certificate"),
        # ub-organizational-unit-name (RFC 5280) is 64 characters; long URIs are cut to fit.
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, f"issued for {first}"[:64]),
    ]
    if common_name:
        attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attributes)


def _ca_extensions(builder: Any, ski: Any, aki: Any, path_length: int | None) -> Any:
    from cryptography import x509

    if not isinstance(aki, x509.AuthorityKeyIdentifier):
        aki = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(aki)
    return (
        builder.add_extension(
            x509.BasicConstraints(ca=True, path_length=path_length), critical=True
        )
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ski, critical=False)
        .add_extension(aki, critical=False)
    )


def _leaf_extensions(
    builder: Any,
    public_key: Any,
    aki: Any,
    names: list[Any],
    usage: Usage | str,
    *,
    san_critical: bool = False,
) -> Any:
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID

    kind = _enum(Usage, usage, "usage")
    ekus = {
        Usage.SERVER: [ExtendedKeyUsageOID.SERVER_AUTH],
        Usage.CLIENT: [ExtendedKeyUsageOID.CLIENT_AUTH],
        Usage.BOTH: [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
    }[kind]
    return (
        builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                # RSA key exchange (TLS 1.2 without ECDHE) encrypts to the key; harmless to allow.
                key_encipherment=isinstance(public_key, rsa.RSAPublicKey),
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage(ekus), critical=False)
        .add_extension(x509.SubjectAlternativeName(names), critical=san_critical)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(aki, critical=False)
    )


# ---------------------------------------------------------------------------------------------
# Certificate signing requests


@dataclass(frozen=True, slots=True)
class CertificateRequest:
    """A certificate signing request and the private key it was made with.

    Attributes:
        csr: The request.
        private_key: Its key; keep it secret, and use it with the certificate the CA returns.
    """

    csr: x509.CertificateSigningRequest
    private_key: CertificateIssuerPrivateKeyTypes

    @property
    def csr_pem(self) -> bytes:
        """The request as PEM (``-----BEGIN CERTIFICATE REQUEST-----``), to send to a CA."""
        from cryptography.hazmat.primitives import serialization

        return self.csr.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        """The private key as unencrypted PKCS#8 PEM.  Keep it secret."""
        return _key_pem(self.private_key)


def create_csr(
    *names: str,
    private_key: CertificateIssuerPrivateKeyTypes | None = None,
    key_type: KeyType | str = KeyType.ECDSA_P256,
    common_name: str | None = None,
) -> CertificateRequest:
    """Create a certificate signing request (CSR) for DNS names and IP addresses.

    The names go into the SubjectAltName extension, which is what clients check.  The subject
    carries a Common Name (by default the first name), because many CAs still expect one; it is
    informational only.

    Args:
        names: DNS names and IP addresses, first one first.
        private_key: The key to certify; a new one of *key_type* is generated if omitted.
        key_type: The kind of key to generate when *private_key* is omitted.
        common_name: The subject's Common Name (default: the first name).

    Returns:
        The CSR and its private key.

    Raises:
        ConfigurationError: no names, or a malformed one.
    """
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    general_names = _general_names(names)
    key = private_key if private_key is not None else _generate_key(key_type)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name or names[0])])
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(subject)
        .add_extension(x509.SubjectAlternativeName(general_names), critical=False)
        .sign(key, _hash_for(key))
    )
    return CertificateRequest(csr, key)


# ---------------------------------------------------------------------------------------------
# minica's file layout


@dataclass(frozen=True, slots=True)
class MinicaFiles:
    """The files :func:`minica` wrote or reused.

    Attributes:
        ca_cert: Path of the CA certificate (``minica.pem``).
        ca_key: Path of the CA key (``minica-key.pem``).
        cert: Path of the leaf certificate (``<first-name>/cert.pem``).
        key: Path of the leaf key (``<first-name>/key.pem``).
        ca_created: Whether the CA was created by this call (``False``: an existing one was reused).
    """

    ca_cert: str
    ca_key: str
    cert: str
    key: str
    ca_created: bool

    def server_options(self, **kwargs: Any) -> ServerOptions:
        """Return :class:`~securelink.ServerOptions` for the leaf files."""
        return ServerOptions(cert=self.cert, key=self.key, **kwargs)

    def trusting_client_options(self, **kwargs: Any) -> ClientOptions:
        """Return :class:`~securelink.ClientOptions` that trust the CA file and present nothing.

        The client of a server that uses :meth:`server_options`.  It does *not* present this
        leaf (unlike :meth:`IssuedCertificate.client_options`): for mutual TLS, pass
        ``cert``/``key`` as well, usually the files of another :func:`minica` call.  Keyword
        arguments are passed on; ``ca`` defaults to :attr:`ca_cert`.
        """
        kwargs.setdefault("ca", self.ca_cert)
        return ClientOptions(**kwargs)


def _write_new(path: str, data: bytes, mode: int) -> None:
    # O_EXCL: like minica, never overwrite an existing file.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError as exc:
        raise MaterialError(
            f"{path} already exists; securelink never overwrites certificates or keys.",
            source=path,
            hint="Remove it first if you really want a new one, or use another name.",
        ) from exc
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def minica(
    directory: str | os.PathLike[str] = ".",
    *,
    domains: Sequence[str] = (),
    ip_addresses: Sequence[str] = (),
    ca_cert: str = "minica.pem",
    ca_key: str = "minica-key.pem",
    ca_alg: KeyType | str = KeyType.ECDSA_P256,
) -> MinicaFiles:
    """Issue a certificate into *directory* exactly as minica lays it out.

    *directory* is created if it does not exist.  The CA is read from ``ca_cert``/``ca_key``
    (relative to *directory*) if both exist, and created there otherwise (the key with mode
    0600).  The leaf goes into ``<first-name>/cert.pem`` and ``<first-name>/key.pem`` (directory
    mode 0700, key 0600, any ``*`` in the name written as ``_``).  No existing file is ever
    overwritten.  Like minica, each leaf is valid for both server and client authentication.

    Args:
        directory: Where to work (default: the current directory).
        domains: DNS names for the leaf.
        ip_addresses: IP addresses for the leaf.
        ca_cert: The CA certificate's file name.
        ca_key: The CA key's file name.
        ca_alg: The key type of a newly created CA (``"ecdsa"`` or ``"rsa"``).

    Returns:
        The paths written or reused.

    Raises:
        ConfigurationError: no names, or a malformed one.
        MaterialError: only one of the CA files exists, they do not match, or a leaf file exists.
    """
    base = os.fspath(directory)
    for field, values in (("domains", domains), ("ip_addresses", ip_addresses)):
        if isinstance(values, str):
            raise ConfigurationError(
                f"{field} must be a sequence, not the single string {values!r}.",
                field=field,
                hint=f'Write {field}=["{values}"]; a bare string would be read letter by letter.',
            )
    for ip in ip_addresses:
        try:
            ipaddress.ip_address(ip)
        except ValueError as exc:
            raise ConfigurationError(
                f"{ip!r} is not an IP address.",
                field="ip_addresses",
                hint="Pass IPv4 or IPv6 literals such as 127.0.0.1 or ::1.",
            ) from exc
    names = [*domains, *ip_addresses]
    _general_names(names, field="domains", uris=False)  # validates before anything is written
    os.makedirs(base, exist_ok=True)  # like `mkdir -p`: the usual intent is "put them here"
    cert_path = os.path.join(base, ca_cert)
    key_path = os.path.join(base, ca_key)
    have_cert, have_key = os.path.exists(cert_path), os.path.exists(key_path)
    if have_cert != have_key:
        present, absent = (cert_path, key_path) if have_cert else (key_path, cert_path)
        raise MaterialError(
            f"{present} exists but {absent} does not; a CA needs both.",
            source=absent,
            hint="Restore the missing file, or move the other one away to create a new CA.",
        )
    created = not have_cert
    if created:
        ca = CertificateAuthority(key_type=ca_alg)
        _write_new(key_path, ca.key_pem, 0o600)
        _write_new(cert_path, ca.cert_pem, 0o644)
    else:
        from cryptography import x509

        certs, cert_label = load_certificates(cert_path, what="CA certificate", stamps=[])
        key, key_label = load_private_key(key_path, None, stamps=[])
        ca = CertificateAuthority._adopt(certs[0], key, cert_label, key_label, x509)
    leaf_dir = os.path.join(base, names[0].replace("*", "_"))
    with contextlib.suppress(FileExistsError):  # several names may share one directory
        os.mkdir(leaf_dir, 0o700)
    if not os.path.isdir(leaf_dir):
        raise MaterialError(
            f"{leaf_dir} exists and is not a directory, so the certificate cannot be written"
            " there.",
            source=leaf_dir,
            hint="Move that file away, or issue the certificate in another directory.",
        )
    leaf = ca.issue(*names, usage=Usage.BOTH)
    leaf_cert = os.path.join(leaf_dir, "cert.pem")
    leaf_key = os.path.join(leaf_dir, "key.pem")
    if os.path.exists(leaf_cert) or os.path.exists(leaf_key):
        existing = leaf_cert if os.path.exists(leaf_cert) else leaf_key
        raise MaterialError(
            f"{existing} already exists; securelink never overwrites certificates or keys.",
            source=existing,
            hint="Remove the directory first if you really want a new certificate.",
        )
    _write_new(leaf_key, leaf.key_pem, 0o600)
    _write_new(leaf_cert, leaf.chain_pem, 0o644)
    return MinicaFiles(cert_path, key_path, leaf_cert, leaf_key, created)
