"""Deliberately flawed certificates that the development CA refuses to make."""

from __future__ import annotations

import datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from securelink import devca

NOW = datetime.datetime.now(datetime.UTC)


def pem(cert: x509.Certificate) -> bytes:
    """Return *cert* as PEM."""
    return cert.public_bytes(serialization.Encoding.PEM)


def der(cert: x509.Certificate) -> bytes:
    """Return *cert* as DER."""
    return cert.public_bytes(serialization.Encoding.DER)


def key_pem(key: Any, password: bytes | None = None, fmt: str = "pkcs8") -> bytes:
    """Return *key* as PEM in PKCS#8 or the traditional (PKCS#1 / SEC1) form."""
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    private_format = (
        serialization.PrivateFormat.PKCS8
        if fmt == "pkcs8"
        else serialization.PrivateFormat.TraditionalOpenSSL
    )
    return bytes(key.private_bytes(serialization.Encoding.PEM, private_format, encryption))


def key_der(key: Any, fmt: str = "pkcs8") -> bytes:
    """Return *key* as unencrypted DER."""
    private_format = (
        serialization.PrivateFormat.PKCS8
        if fmt == "pkcs8"
        else serialization.PrivateFormat.TraditionalOpenSSL
    )
    return bytes(
        key.private_bytes(serialization.Encoding.DER, private_format, serialization.NoEncryption())
    )


def leaf(
    ca: devca.CertificateAuthority,
    *,
    names: tuple[str, ...] = ("localhost",),
    common_name: str | None = None,
    key: Any = None,
    hash_algorithm: Any = None,
) -> tuple[x509.Certificate, Any]:
    """Issue a leaf from *ca* with the given flaws: no SAN (names=()), a chosen key or hash."""
    key = key or ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, common_name)] if common_name else []
    )
    ski = ca.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - datetime.timedelta(days=1))
        .not_valid_after(NOW + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if names:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False
        )
    cert = builder.sign(ca.private_key, hash_algorithm or hashes.SHA256())
    return cert, key


def weak_rsa_key() -> rsa.RSAPrivateKey:
    """A 1024-bit RSA key, which OpenSSL refuses at its default security level."""
    return rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505
