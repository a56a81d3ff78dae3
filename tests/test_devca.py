"""Tests of securelink.devca: the certificates it issues, their files, real handshakes with them.

The extension checks follow trustme's ``assert_is_ca`` / ``assert_is_leaf``; "strict" means what
``VERIFY_X509_STRICT`` enforces, checked both by a real loopback handshake and by
``openssl verify -x509_strict``.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import re
import shutil
import ssl
import stat
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TypeVar

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from securelink import (
    PKCS12,
    CertificateVerificationError,
    ClientAuth,
    ClientOptions,
    ConfigurationError,
    HostnameMismatchError,
    KeyMismatchError,
    KeyPasswordError,
    MaterialError,
    ServerOptions,
    UnknownAuthorityError,
    client_context,
    devca,
    server_context,
)
from securelink.devca import (
    CertificateAuthority,
    IssuedCertificate,
    KeyType,
    MinicaFiles,
    Usage,
    minica,
)

from .helpers import Side, handshake

OPENSSL = shutil.which("openssl")
OPENSSL_TIMEOUT = 30.0
requires_openssl = pytest.mark.skipif(OPENSSL is None, reason="the openssl CLI is not installed")

LEAF_LIFETIME = datetime.timedelta(days=825)
CA_LIFETIME = datetime.timedelta(days=3650)
SECOND = datetime.timedelta(seconds=1)

EKUS = {
    Usage.SERVER: [ExtendedKeyUsageOID.SERVER_AUTH],
    Usage.CLIENT: [ExtendedKeyUsageOID.CLIENT_AUTH],
    Usage.BOTH: [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
}

CA_KEY_USAGE = x509.KeyUsage(
    digital_signature=True,
    content_commitment=False,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=True,
    crl_sign=True,
    encipher_only=False,
    decipher_only=False,
)

_E = TypeVar("_E", bound=x509.ExtensionType)


# ---------------------------------------------------------------------------------------------
# Helpers


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _extension(cert: x509.Certificate, kind: type[_E]) -> x509.Extension[_E]:
    return cert.extensions.get_extension_for_class(kind)


def _general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def _leaf_key_usage(*, rsa_key: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=rsa_key,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


def _assert_key_identifiers(cert: x509.Certificate, issuer: x509.Certificate) -> None:
    ski = _extension(cert, x509.SubjectKeyIdentifier)
    assert not ski.critical
    assert ski.value == x509.SubjectKeyIdentifier.from_public_key(cert.public_key())
    aki = _extension(cert, x509.AuthorityKeyIdentifier)
    assert not aki.critical
    assert aki.value.key_identifier == _extension(issuer, x509.SubjectKeyIdentifier).value.digest
    assert aki.value.authority_cert_issuer is None
    assert aki.value.authority_cert_serial_number is None


def assert_is_ca(
    cert: x509.Certificate, *, issuer: x509.Certificate, path_length: int | None
) -> None:
    """Check *cert* is a strict CA certificate signed by *issuer* (itself for a root)."""
    assert cert.version is x509.Version.v3
    bc = _extension(cert, x509.BasicConstraints)
    assert bc.critical
    assert bc.value.ca is True
    assert bc.value.path_length == path_length
    ku = _extension(cert, x509.KeyUsage)
    assert ku.critical
    assert ku.value == CA_KEY_USAGE
    with pytest.raises(x509.ExtensionNotFound):
        _extension(cert, x509.ExtendedKeyUsage)
    with pytest.raises(x509.ExtensionNotFound):
        _extension(cert, x509.SubjectAlternativeName)
    _assert_key_identifiers(cert, issuer)
    assert cert.issuer == issuer.subject
    cert.verify_directly_issued_by(issuer)


def assert_is_leaf(
    cert: x509.Certificate,
    *,
    issuer: x509.Certificate,
    names: Sequence[str],
    usage: Usage,
    common_name: str | None = None,
) -> None:
    """Check *cert* is a strict SAN-only leaf for *names* and *usage*, signed by *issuer*."""
    assert cert.version is x509.Version.v3
    bc = _extension(cert, x509.BasicConstraints)
    assert bc.critical
    assert bc.value.ca is False
    assert bc.value.path_length is None
    ku = _extension(cert, x509.KeyUsage)
    assert ku.critical
    assert ku.value == _leaf_key_usage(rsa_key=isinstance(cert.public_key(), rsa.RSAPublicKey))
    eku = _extension(cert, x509.ExtendedKeyUsage)
    assert not eku.critical
    assert list(eku.value) == EKUS[usage]
    san = _extension(cert, x509.SubjectAlternativeName)
    assert not san.critical
    assert san.value == x509.SubjectAlternativeName([_general_name(n) for n in names])
    common_names = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    assert common_names == ([common_name] if common_name else [])
    # A non-critical SAN is only allowed with a non-empty subject (RFC 5280 4.2.1.6).
    assert len(cert.subject) > 0
    _assert_key_identifiers(cert, issuer)
    assert cert.issuer == issuer.subject
    cert.verify_directly_issued_by(issuer)


def _assert_validity(
    cert: x509.Certificate,
    *,
    before: datetime.datetime,
    after: datetime.datetime,
    lifetime: datetime.timedelta,
) -> None:
    """Check *cert* starts a few minutes before it was made and lasts *lifetime* from then."""
    start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
    # Backdated a little for clock skew: more than a minute, less than an hour.
    assert before - datetime.timedelta(hours=1) <= start <= after - datetime.timedelta(minutes=1)
    # Certificate times have whole seconds, so allow the truncation.
    assert before + lifetime - SECOND <= end <= after + lifetime


def _pem(*certs: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def _openssl(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    assert OPENSSL is not None
    return subprocess.run(
        [OPENSSL, *args],
        capture_output=True,
        text=True,
        timeout=OPENSSL_TIMEOUT,
        check=False,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
    )


def _openssl_verify(
    tmp_path: Path,
    root: x509.Certificate,
    leaf: x509.Certificate,
    untrusted: Sequence[x509.Certificate] = (),
    *extra: str,
) -> subprocess.CompletedProcess[str]:
    """Run ``openssl verify -x509_strict -CAfile root [-untrusted chain] [extra] leaf``."""
    (tmp_path / "verify-root.pem").write_bytes(_pem(root))
    (tmp_path / "verify-leaf.pem").write_bytes(_pem(leaf))
    args = ["verify", "-x509_strict", "-CAfile", str(tmp_path / "verify-root.pem")]
    if untrusted:
        (tmp_path / "verify-untrusted.pem").write_bytes(_pem(*untrusted))
        args += ["-untrusted", str(tmp_path / "verify-untrusted.pem")]
    return _openssl(*args, *extra, str(tmp_path / "verify-leaf.pem"))


def _assert_verify_ok(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith(": OK"), result.stdout


def _assert_handshake_ok(
    server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext, *, server_hostname: str = "localhost"
) -> tuple[Side, Side]:
    server, client = handshake(server_ctx, client_ctx, server_hostname=server_hostname)
    assert client.error is None, client.error
    assert server.error is None, server.error
    assert client.received == b"pong"
    assert server.received == b"ping"
    return server, client


def _csr(
    names: Sequence[str],
    *,
    subject: x509.Name | None = None,
    key: ec.EllipticCurvePrivateKey | None = None,
) -> tuple[x509.CertificateSigningRequest, ec.EllipticCurvePrivateKey]:
    key = key or ec.generate_private_key(ec.SECP256R1())
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        subject
        if subject is not None
        else x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "csr.test")])
    )
    if names:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([_general_name(n) for n in names]), critical=False
        )
    return builder.sign(key, hashes.SHA256()), key


def _snapshot(directory: Path) -> dict[str, bytes]:
    """Every file under *directory*, by relative path, with its contents."""
    return {
        str(p.relative_to(directory)): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def _mode(path: str | Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


# ---------------------------------------------------------------------------------------------
# Fixtures


@pytest.fixture(scope="module")
def intermediate(ca: CertificateAuthority) -> CertificateAuthority:
    """An ECDSA intermediate under the session root."""
    return ca.intermediate()


@pytest.fixture(scope="module")
def rsa_leaf(rsa_ca: CertificateAuthority) -> IssuedCertificate:
    """An RSA server leaf issued by the RSA root (RSA keys are slow: make one per module)."""
    return rsa_ca.issue("rsa.test", "127.0.0.1", usage=Usage.SERVER, key_type=KeyType.RSA_2048)


@pytest.fixture
def umask022() -> Iterator[None]:
    """Run with umask 022 so that file modes are predictable."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


# ---------------------------------------------------------------------------------------------
# Root and intermediate CA certificates


class TestRootCertificate:
    """A new CertificateAuthority is a strict, self-signed root."""

    def test_ecdsa_root_extensions(self, ca: CertificateAuthority) -> None:
        """The default root is a critical CA:TRUE with no path length and keyCertSign."""
        assert_is_ca(ca.certificate, issuer=ca.certificate, path_length=None)
        assert isinstance(ca.private_key, ec.EllipticCurvePrivateKey)
        assert isinstance(ca.private_key.curve, ec.SECP256R1)
        assert ca.certificate.public_key() == ca.private_key.public_key()

    def test_rsa_root_extensions(self, rsa_ca: CertificateAuthority) -> None:
        """An RSA root has the same extensions, an RSA-2048 key and a SHA-256 signature."""
        assert_is_ca(rsa_ca.certificate, issuer=rsa_ca.certificate, path_length=None)
        assert isinstance(rsa_ca.private_key, rsa.RSAPrivateKey)
        assert rsa_ca.private_key.key_size == 2048
        algorithm = rsa_ca.certificate.signature_hash_algorithm
        assert isinstance(algorithm, hashes.SHA256)

    def test_p384_root_signs_with_sha384(self) -> None:
        """A P-384 root (key type given as a string) signs with SHA-384."""
        ca = CertificateAuthority(key_type="ecdsa-p384")
        assert isinstance(ca.private_key, ec.EllipticCurvePrivateKey)
        assert isinstance(ca.private_key.curve, ec.SECP384R1)
        assert isinstance(ca.certificate.signature_hash_algorithm, hashes.SHA384)
        assert_is_ca(ca.certificate, issuer=ca.certificate, path_length=None)

    def test_path_length_is_recorded(self) -> None:
        """path_length= ends up in basicConstraints."""
        ca = CertificateAuthority(path_length=1)
        assert_is_ca(ca.certificate, issuer=ca.certificate, path_length=1)

    def test_default_name(self, ca: CertificateAuthority) -> None:
        """The default subject names the development CA with a random suffix."""
        subject = ca.certificate.subject
        [cn] = subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        assert isinstance(cn.value, str)
        assert re.fullmatch(r"securelink development CA [0-9a-f]{6}", cn.value)
        [org] = subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
        assert org.value == "securelink development CA"
        assert ca.certificate.issuer == subject

    def test_common_name_is_used(self) -> None:
        """common_name= replaces the default Common Name."""
        ca = CertificateAuthority(common_name="Test Root")
        cns = ca.certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        assert [a.value for a in cns] == ["Test Root"]

    def test_validity(self) -> None:
        """A root is backdated a little and valid for ten years by default, or valid_for."""
        before = _now()
        default = CertificateAuthority()
        short = CertificateAuthority(valid_for=datetime.timedelta(days=30))
        after = _now()
        _assert_validity(default.certificate, before=before, after=after, lifetime=CA_LIFETIME)
        _assert_validity(
            short.certificate, before=before, after=after, lifetime=datetime.timedelta(days=30)
        )

    def test_root_has_no_chain(self, ca: CertificateAuthority) -> None:
        """A root is its own root, with an empty chain and no parent."""
        assert ca.root == ca.certificate
        assert ca.chain == ()
        assert ca.parent is None

    def test_serial_numbers_are_random(self) -> None:
        """Two roots get different positive serial numbers."""
        a, b = CertificateAuthority(), CertificateAuthority()
        assert a.certificate.serial_number > 0
        assert a.certificate.serial_number != b.certificate.serial_number


class TestIntermediate:
    """intermediate() creates strict CA certificates below their parent."""

    def test_extensions(self, ca: CertificateAuthority, intermediate: CertificateAuthority) -> None:
        """An intermediate is CA:TRUE with path length 0, identified by its parent's SKI."""
        assert_is_ca(intermediate.certificate, issuer=ca.certificate, path_length=0)
        assert intermediate.parent is ca
        assert intermediate.root == ca.certificate
        assert intermediate.chain == (intermediate.certificate,)

    def test_default_name(self, intermediate: CertificateAuthority) -> None:
        """The default Common Name says it is an intermediate."""
        [cn] = intermediate.certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        assert isinstance(cn.value, str)
        assert re.fullmatch(r"securelink development intermediate [0-9a-f]{6}", cn.value)

    def test_common_name_and_path_length(self, ca: CertificateAuthority) -> None:
        """common_name= and path_length= are honoured."""
        inter = ca.intermediate(common_name="Issuing CA", path_length=None)
        cns = inter.certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        assert [a.value for a in cns] == ["Issuing CA"]
        assert_is_ca(inter.certificate, issuer=ca.certificate, path_length=None)

    def test_key_type_follows_parent(self, rsa_ca: CertificateAuthority) -> None:
        """Without key_type an intermediate gets its parent's kind of key; key_type overrides."""
        same = rsa_ca.intermediate()
        assert isinstance(same.private_key, rsa.RSAPrivateKey)
        assert same.private_key.key_size == 2048
        assert_is_ca(same.certificate, issuer=rsa_ca.certificate, path_length=0)
        other = rsa_ca.intermediate(key_type=KeyType.ECDSA_P384)
        assert isinstance(other.private_key, ec.EllipticCurvePrivateKey)
        assert isinstance(other.private_key.curve, ec.SECP384R1)
        # Signed by the RSA parent, so with the parent's hash.
        assert isinstance(other.certificate.signature_hash_algorithm, hashes.SHA256)
        assert_is_ca(other.certificate, issuer=rsa_ca.certificate, path_length=0)

    def test_validity_is_capped_at_parent(self, ca: CertificateAuthority) -> None:
        """An intermediate never outlives its parent, and is backdated like a root."""
        before = _now()
        inter = ca.intermediate(valid_for=datetime.timedelta(days=365 * 30))
        assert inter.certificate.not_valid_after_utc == ca.certificate.not_valid_after_utc
        short = ca.intermediate(valid_for=datetime.timedelta(days=10))
        after = _now()
        _assert_validity(
            short.certificate, before=before, after=after, lifetime=datetime.timedelta(days=10)
        )

    def test_two_levels(self, ca: CertificateAuthority) -> None:
        """A second-level intermediate lists both intermediates in its chain, nearest first."""
        upper = ca.intermediate(path_length=1)
        lower = upper.intermediate()
        assert_is_ca(upper.certificate, issuer=ca.certificate, path_length=1)
        assert_is_ca(lower.certificate, issuer=upper.certificate, path_length=0)
        assert lower.chain == (lower.certificate, upper.certificate)
        assert lower.root == ca.certificate
        leaf = lower.issue("deep.test")
        assert leaf.chain == (lower.certificate, upper.certificate)
        assert leaf.root == ca.certificate

    def test_refuses_to_exceed_parent_path_length(self, intermediate: CertificateAuthority) -> None:
        """A CA below a path_length=0 intermediate is refused: nothing it issued would verify."""
        with pytest.raises(ConfigurationError) as excinfo:
            intermediate.intermediate()
        assert excinfo.value.field == "path_length"


# ---------------------------------------------------------------------------------------------
# Leaf certificates


class TestLeafCertificate:
    """issue() creates strict SAN-only leaves."""

    @pytest.mark.parametrize("usage", list(Usage))
    def test_usage_sets_extended_key_usage(self, ca: CertificateAuthority, usage: Usage) -> None:
        """SERVER, CLIENT and BOTH give serverAuth, clientAuth and both."""
        leaf = ca.issue("localhost", "127.0.0.1", usage=usage)
        assert_is_leaf(
            leaf.certificate, issuer=ca.certificate, names=["localhost", "127.0.0.1"], usage=usage
        )

    @pytest.mark.parametrize("usage", ["server", "client", "both"])
    def test_usage_as_string(self, ca: CertificateAuthority, usage: str) -> None:
        """Usage may be given by its string value."""
        leaf = ca.issue("localhost", usage=usage)
        assert_is_leaf(
            leaf.certificate, issuer=ca.certificate, names=["localhost"], usage=Usage(usage)
        )

    def test_default_usage_is_both(self, ca: CertificateAuthority) -> None:
        """Without usage= a leaf is good for server and client, as minica's are."""
        leaf = ca.issue("both.test")
        assert_is_leaf(
            leaf.certificate, issuer=ca.certificate, names=["both.test"], usage=Usage.BOTH
        )

    def test_ecdsa_leaf_key(self, ca: CertificateAuthority) -> None:
        """The default leaf key is P-256 and its key usage has no keyEncipherment."""
        leaf = ca.issue("ec.test")
        assert isinstance(leaf.private_key, ec.EllipticCurvePrivateKey)
        assert isinstance(leaf.private_key.curve, ec.SECP256R1)
        assert leaf.certificate.public_key() == leaf.private_key.public_key()
        ku = _extension(leaf.certificate, x509.KeyUsage).value
        assert ku.digital_signature and not ku.key_encipherment

    def test_p384_leaf_key(self, ca: CertificateAuthority) -> None:
        """key_type=ECDSA_P384 gives a P-384 leaf, still signed with the P-256 issuer's SHA-256."""
        leaf = ca.issue("p384.test", key_type=KeyType.ECDSA_P384)
        assert isinstance(leaf.private_key, ec.EllipticCurvePrivateKey)
        assert isinstance(leaf.private_key.curve, ec.SECP384R1)
        assert isinstance(leaf.certificate.signature_hash_algorithm, hashes.SHA256)
        assert_is_leaf(
            leaf.certificate, issuer=ca.certificate, names=["p384.test"], usage=Usage.BOTH
        )

    def test_rsa_leaf(self, rsa_ca: CertificateAuthority, rsa_leaf: IssuedCertificate) -> None:
        """An RSA leaf from an RSA root allows keyEncipherment and is signed with SHA-256."""
        assert isinstance(rsa_leaf.private_key, rsa.RSAPrivateKey)
        assert rsa_leaf.private_key.key_size == 2048
        assert isinstance(rsa_leaf.certificate.signature_hash_algorithm, hashes.SHA256)
        assert _extension(rsa_leaf.certificate, x509.KeyUsage).value.key_encipherment
        assert_is_leaf(
            rsa_leaf.certificate,
            issuer=rsa_ca.certificate,
            names=["rsa.test", "127.0.0.1"],
            usage=Usage.SERVER,
        )

    def test_rsa_3072_leaf(self, ca: CertificateAuthority) -> None:
        """key_type="rsa-3072" gives a 3072-bit RSA leaf under an ECDSA root."""
        leaf = ca.issue("rsa3072.test", key_type="rsa-3072")
        assert isinstance(leaf.private_key, rsa.RSAPrivateKey)
        assert leaf.private_key.key_size == 3072
        assert_is_leaf(
            leaf.certificate, issuer=ca.certificate, names=["rsa3072.test"], usage=Usage.BOTH
        )

    def test_names_exactly_as_given(self, ca: CertificateAuthority) -> None:
        """DNS names, wildcards, IPv4 and IPv6 addresses appear in order, IPs as IPAddress."""
        names = ["b.example.test", "*.example.test", "10.1.2.3", "::1", "2001:db8::7", "a.test"]
        leaf = ca.issue(*names)
        assert_is_leaf(leaf.certificate, issuer=ca.certificate, names=names, usage=Usage.BOTH)
        san = _extension(leaf.certificate, x509.SubjectAlternativeName).value
        assert san.get_values_for_type(x509.DNSName) == [
            "b.example.test",
            "*.example.test",
            "a.test",
        ]
        assert san.get_values_for_type(x509.IPAddress) == [
            ipaddress.IPv4Address("10.1.2.3"),
            ipaddress.IPv6Address("::1"),
            ipaddress.IPv6Address("2001:db8::7"),
        ]

    def test_ip_only_leaf(self, ca: CertificateAuthority) -> None:
        """A leaf may carry IP addresses only."""
        leaf = ca.issue("::1")
        assert_is_leaf(leaf.certificate, issuer=ca.certificate, names=["::1"], usage=Usage.BOTH)

    def test_no_common_name_by_default(self, ca: CertificateAuthority) -> None:
        """The subject carries no Common Name unless one is asked for, yet is not empty."""
        subject = ca.issue("nocn.test").certificate.subject
        assert subject.get_attributes_for_oid(NameOID.COMMON_NAME) == []
        assert len(subject) > 0

    def test_common_name_when_asked(self, ca: CertificateAuthority) -> None:
        """common_name= adds exactly that Common Name; the SAN is unchanged."""
        leaf = ca.issue("cn.test", common_name="Friendly Name")
        assert_is_leaf(
            leaf.certificate,
            issuer=ca.certificate,
            names=["cn.test"],
            usage=Usage.BOTH,
            common_name="Friendly Name",
        )

    def test_default_validity(self, ca: CertificateAuthority) -> None:
        """A leaf is backdated a little and valid for 825 days."""
        before = _now()
        leaf = ca.issue("time.test")
        after = _now()
        _assert_validity(leaf.certificate, before=before, after=after, lifetime=LEAF_LIFETIME)

    def test_valid_for(self, ca: CertificateAuthority) -> None:
        """valid_for= sets the lifetime from now."""
        before = _now()
        leaf = ca.issue("short.test", valid_for=datetime.timedelta(hours=1))
        after = _now()
        _assert_validity(
            leaf.certificate, before=before, after=after, lifetime=datetime.timedelta(hours=1)
        )

    def test_explicit_not_before_and_not_after(self, ca: CertificateAuthority) -> None:
        """not_before= and not_after= are used exactly."""
        start = datetime.datetime(2020, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
        end = datetime.datetime(2021, 6, 7, 8, 9, 10, tzinfo=datetime.UTC)
        leaf = ca.issue("clock.test", not_before=start, not_after=end)
        assert leaf.certificate.not_valid_before_utc == start
        assert leaf.certificate.not_valid_after_utc == end

    def test_not_after_overrides_valid_for(self, ca: CertificateAuthority) -> None:
        """not_after= wins over valid_for=."""
        end = (_now() + datetime.timedelta(days=2)).replace(microsecond=0)
        leaf = ca.issue("end.test", not_after=end, valid_for=datetime.timedelta(days=900))
        assert leaf.certificate.not_valid_after_utc == end

    def test_root_issued_leaf_has_no_chain(self, ca: CertificateAuthority) -> None:
        """A leaf issued by a root has an empty chain and that root."""
        leaf = ca.issue("root.test")
        assert leaf.chain == ()
        assert leaf.root == ca.certificate

    def test_intermediate_issued_leaf(
        self, ca: CertificateAuthority, intermediate: CertificateAuthority
    ) -> None:
        """A leaf from an intermediate is identified by its SKI and carries it as the chain."""
        leaf = intermediate.issue("inter.test", "127.0.0.1", usage=Usage.SERVER)
        assert_is_leaf(
            leaf.certificate,
            issuer=intermediate.certificate,
            names=["inter.test", "127.0.0.1"],
            usage=Usage.SERVER,
        )
        assert leaf.chain == (intermediate.certificate,)
        assert leaf.root == ca.certificate

    def test_each_leaf_has_its_own_key_and_serial(self, ca: CertificateAuthority) -> None:
        """Two leaves for the same name have different keys and serial numbers."""
        a, b = ca.issue("same.test"), ca.issue("same.test")
        assert a.certificate.serial_number != b.certificate.serial_number
        assert a.certificate.public_key() != b.certificate.public_key()


class TestNameValidation:
    """issue() refuses names it cannot put in a SAN, with field="names"."""

    def test_no_names(self, ca: CertificateAuthority) -> None:
        """A certificate needs at least one name."""
        with pytest.raises(ConfigurationError) as excinfo:
            ca.issue()
        assert excinfo.value.field == "names"

    @pytest.mark.parametrize(
        "name",
        ["", "local host", "localhost example.test", " localhost", "bad_name.test", "a/b", "a:b"],
    )
    def test_malformed_name(self, ca: CertificateAuthority, name: str) -> None:
        """Empty strings, spaces and characters outside a DNS name are refused."""
        with pytest.raises(ConfigurationError) as excinfo:
            ca.issue("good.test", name)
        assert excinfo.value.field == "names"
        assert repr(name) in excinfo.value.message

    def test_non_string_name(self, ca: CertificateAuthority) -> None:
        """A name that is not a str is refused."""
        with pytest.raises(ConfigurationError) as excinfo:
            ca.issue(b"localhost")  # type: ignore[arg-type]
        assert excinfo.value.field == "names"

    def test_trailing_newline(self, ca: CertificateAuthority) -> None:
        """A name with a trailing newline is refused."""
        with pytest.raises(ConfigurationError) as excinfo:
            ca.issue("localhost\n")
        assert excinfo.value.field == "names"

    @pytest.mark.parametrize("name", ["fe80::1%eth0", "a..b.test", ".example.test"])
    def test_zone_and_empty_labels(self, ca: CertificateAuthority, name: str) -> None:
        """IPv6 zones and empty DNS labels are refused rather than silently altered."""
        with pytest.raises(ConfigurationError) as excinfo:
            ca.issue(name)
        assert excinfo.value.field == "names"


class TestIssueArguments:
    """issue() refuses bad key types, usages and validity periods with ConfigurationError."""

    def test_unknown_key_type(self, ca: CertificateAuthority) -> None:
        """An unknown key_type string names the allowed values."""
        with pytest.raises(ConfigurationError) as excinfo:
            ca.issue("localhost", key_type="dsa")
        assert excinfo.value.field == "key_type"
        assert "'ecdsa'" in excinfo.value.message

    def test_unknown_usage(self, ca: CertificateAuthority) -> None:
        """An unknown usage string names the allowed values."""
        with pytest.raises(ConfigurationError) as excinfo:
            ca.issue("localhost", usage="email")
        assert excinfo.value.field == "usage"

    def test_empty_validity(self, ca: CertificateAuthority) -> None:
        """not_after before not_before is refused."""
        now = datetime.datetime.now(datetime.UTC)
        with pytest.raises(ConfigurationError) as excinfo:
            ca.issue("localhost", not_before=now, not_after=now - datetime.timedelta(days=1))
        assert excinfo.value.field == "not_after"

    def test_leaf_capped_at_issuer_expiry(self) -> None:
        """By default a leaf expires no later than the CA that issued it."""
        short = CertificateAuthority(valid_for=datetime.timedelta(days=10))
        leaf = short.issue("localhost")
        assert leaf.certificate.not_valid_after_utc == short.certificate.not_valid_after_utc


class TestValidNames:
    """issue() accepts every legitimate spelling of a name."""

    @pytest.mark.parametrize(
        "name", ["LOCALHOST", "*.example.test", "xn--bcher-kva.example", "a-b.test", "127.0.0.1"]
    )
    def test_valid_names(self, ca: CertificateAuthority, name: str) -> None:
        """Upper case, wildcards, punycode and IP literals are accepted unchanged."""
        leaf = ca.issue(name)
        san = _extension(leaf.certificate, x509.SubjectAlternativeName).value
        assert list(san) == [_general_name(name)]


# ---------------------------------------------------------------------------------------------
# Strict verification, for real


@pytest.mark.openssl
@requires_openssl
class TestOpenSSLVerifyStrict:
    """``openssl verify -x509_strict`` accepts everything devca issues."""

    @pytest.mark.parametrize("usage", list(Usage))
    def test_root_issued_leaf(self, tmp_path: Path, ca: CertificateAuthority, usage: Usage) -> None:
        """A root-issued leaf verifies for every usage, with its IP address."""
        leaf = ca.issue("localhost", "127.0.0.1", usage=usage)
        _assert_verify_ok(
            _openssl_verify(
                tmp_path, ca.certificate, leaf.certificate, (), "-verify_ip", "127.0.0.1"
            )
        )

    def test_rsa_leaf(
        self, tmp_path: Path, rsa_ca: CertificateAuthority, rsa_leaf: IssuedCertificate
    ) -> None:
        """An RSA leaf from an RSA root verifies as a TLS server certificate."""
        result = _openssl_verify(
            tmp_path, rsa_ca.certificate, rsa_leaf.certificate, (), "-purpose", "sslserver"
        )
        _assert_verify_ok(result)

    def test_ipv6_and_wildcard(self, tmp_path: Path, ca: CertificateAuthority) -> None:
        """IPv6 and wildcard SANs verify and match."""
        leaf = ca.issue("*.example.test", "::1")
        _assert_verify_ok(
            _openssl_verify(tmp_path, ca.certificate, leaf.certificate, (), "-verify_ip", "::1")
        )
        _assert_verify_ok(
            _openssl_verify(
                tmp_path,
                ca.certificate,
                leaf.certificate,
                (),
                "-verify_hostname",
                "www.example.test",
            )
        )

    def test_intermediate_issued_leaf(
        self, tmp_path: Path, ca: CertificateAuthority, intermediate: CertificateAuthority
    ) -> None:
        """A leaf verifies through its intermediate, which alone is not trusted."""
        leaf = intermediate.issue("inter.test")
        _assert_verify_ok(_openssl_verify(tmp_path, ca.certificate, leaf.certificate, leaf.chain))
        missing = _openssl_verify(tmp_path, ca.certificate, leaf.certificate)
        assert missing.returncode != 0

    def test_two_level_chain(self, tmp_path: Path, ca: CertificateAuthority) -> None:
        """A leaf two intermediates down verifies with both sent as untrusted."""
        lower = ca.intermediate(path_length=1).intermediate()
        leaf = lower.issue("deep.test", "10.0.0.1")
        _assert_verify_ok(_openssl_verify(tmp_path, ca.certificate, leaf.certificate, leaf.chain))

    def test_rsa_intermediate(self, tmp_path: Path, rsa_ca: CertificateAuthority) -> None:
        """An ECDSA leaf under an ECDSA intermediate under an RSA root verifies."""
        inter = rsa_ca.intermediate(key_type=KeyType.ECDSA_P256)
        leaf = inter.issue("mixed.test")
        _assert_verify_ok(
            _openssl_verify(tmp_path, rsa_ca.certificate, leaf.certificate, leaf.chain)
        )

    @pytest.mark.parametrize(
        ("usage", "purpose", "ok"),
        [
            (Usage.SERVER, "sslserver", True),
            (Usage.SERVER, "sslclient", False),
            (Usage.CLIENT, "sslclient", True),
            (Usage.CLIENT, "sslserver", False),
            (Usage.BOTH, "sslserver", True),
            (Usage.BOTH, "sslclient", True),
        ],
    )
    def test_purpose_follows_usage(
        self, tmp_path: Path, ca: CertificateAuthority, usage: Usage, purpose: str, ok: bool
    ) -> None:
        """OpenSSL's purpose check agrees with the extended key usage."""
        leaf = ca.issue("purpose.test", usage=usage)
        result = _openssl_verify(
            tmp_path, ca.certificate, leaf.certificate, (), "-purpose", purpose
        )
        if ok:
            _assert_verify_ok(result)
        else:
            assert result.returncode != 0
            assert "unsuitable certificate purpose" in result.stderr


class TestHandshake:
    """Leaves complete real handshakes under VERIFY_X509_STRICT."""

    def test_root_issued_leaf(self, ca: CertificateAuthority) -> None:
        """A root-issued server leaf is accepted by a client trusting the root."""
        leaf = ca.issue("localhost", usage=Usage.SERVER)
        server_ctx = server_context(leaf.server_options())
        client_ctx = client_context(ca.client_options())
        assert client_ctx.verify_flags & ssl.VERIFY_X509_STRICT
        _, client = _assert_handshake_ok(server_ctx, client_ctx)
        assert client.peer_der == leaf.certificate.public_bytes(serialization.Encoding.DER)

    def test_intermediate_issued_leaf(
        self, ca: CertificateAuthority, intermediate: CertificateAuthority
    ) -> None:
        """The server sends the intermediate, so a client trusting only the root accepts it."""
        leaf = intermediate.issue("localhost", usage=Usage.SERVER)
        _assert_handshake_ok(
            server_context(leaf.server_options()), client_context(ca.client_options())
        )

    def test_intermediate_is_needed(
        self, ca: CertificateAuthority, intermediate: CertificateAuthority
    ) -> None:
        """Without the intermediate the client cannot build a path (so the chain matters)."""
        leaf = intermediate.issue("localhost", usage=Usage.SERVER)
        server_ctx = server_context(leaf.server_options(cert=leaf.certificate))
        _, client = handshake(server_ctx, client_context(ca.client_options()))
        e = client.error
        assert type(e) is UnknownAuthorityError
        assert isinstance(e, ssl.SSLCertVerificationError)
        assert e.verify_message == "unable to get local issuer certificate"
        assert e.kind == "unknown-issuer"
        assert e.issuer == intermediate.certificate.subject.rfc4514_string()

    def test_two_level_chain(self, ca: CertificateAuthority) -> None:
        """A leaf two intermediates down is accepted with the whole chain sent."""
        leaf = ca.intermediate(path_length=1).intermediate().issue("localhost")
        _assert_handshake_ok(
            server_context(leaf.server_options()), client_context(ca.client_options())
        )

    def test_rsa_leaf(self, rsa_ca: CertificateAuthority, rsa_leaf: IssuedCertificate) -> None:
        """An RSA leaf from an RSA root is accepted, over TLS 1.2 as well as 1.3."""
        for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
            server_ctx = server_context(rsa_leaf.server_options(max_version=version))
            _, client = _assert_handshake_ok(
                server_ctx, client_context(rsa_ca.client_options()), server_hostname="rsa.test"
            )
            assert client.version == ("TLSv1.2" if version is ssl.TLSVersion.TLSv1_2 else "TLSv1.3")

    @pytest.mark.parametrize("address", ["127.0.0.1", "::1"])
    def test_ip_address_names(self, ca: CertificateAuthority, address: str) -> None:
        """IPv4 and IPv6 SANs match the address the client asked for."""
        leaf = ca.issue(address, usage=Usage.SERVER)
        _assert_handshake_ok(
            server_context(leaf.server_options()),
            client_context(ca.client_options()),
            server_hostname=address,
        )

    def test_wrong_name_is_refused(self, ca: CertificateAuthority) -> None:
        """A leaf for another name fails hostname verification."""
        leaf = ca.issue("other.test", usage=Usage.SERVER)
        _, client = handshake(
            server_context(leaf.server_options()), client_context(ca.client_options())
        )
        e = client.error
        assert type(e) is HostnameMismatchError
        assert isinstance(e, ssl.SSLCertVerificationError)
        assert "Hostname mismatch" in str(e.verify_message)
        assert (e.expected, e.presented) == ("localhost", ("other.test",))

    def test_common_name_is_not_matched(self, ca: CertificateAuthority) -> None:
        """A Common Name given with common_name= is never used for hostname matching."""
        leaf = ca.issue("san.test", common_name="localhost", usage=Usage.SERVER)
        _, client = handshake(
            server_context(leaf.server_options()), client_context(ca.client_options())
        )
        e = client.error
        assert type(e) is HostnameMismatchError
        assert isinstance(e, ssl.SSLCertVerificationError)
        assert (e.expected, e.presented, e.common_name) == ("localhost", ("san.test",), "localhost")

    def test_mutual_tls_through_intermediate(
        self, ca: CertificateAuthority, intermediate: CertificateAuthority
    ) -> None:
        """Client and server leaves from an intermediate complete mutual TLS trusting the root."""
        server_leaf = intermediate.issue("localhost", usage=Usage.SERVER)
        client_leaf = intermediate.issue("client.test", usage=Usage.CLIENT)
        server_ctx = server_context(
            server_leaf.server_options(client_auth=ClientAuth.REQUIRE_AND_VERIFY)
        )
        server, client = _assert_handshake_ok(
            server_ctx, client_context(client_leaf.client_options())
        )
        assert server.peer_der == client_leaf.certificate.public_bytes(serialization.Encoding.DER)
        assert client.peer_der == server_leaf.certificate.public_bytes(serialization.Encoding.DER)

    def test_client_only_leaf_cannot_serve(self, ca: CertificateAuthority) -> None:
        """A Usage.CLIENT leaf is refused by clients as a server certificate."""
        leaf = ca.issue("localhost", usage=Usage.CLIENT)
        _, client = handshake(
            server_context(leaf.server_options()), client_context(ca.client_options())
        )
        e = client.error
        assert type(e) is CertificateVerificationError
        assert isinstance(e, ssl.SSLCertVerificationError)
        assert (e.verify_code, e.verify_message) == (26, "unsuitable certificate purpose")
        assert (e.side, e.role) == ("local", "client")

    def test_server_only_leaf_cannot_be_a_client(
        self, ca: CertificateAuthority, server_cert: IssuedCertificate
    ) -> None:
        """A Usage.SERVER leaf is refused by servers as a client certificate."""
        intruder = ca.issue("client.test", usage=Usage.SERVER)
        server, client = handshake(
            server_context(server_cert.server_options(client_auth=ClientAuth.REQUIRE_AND_VERIFY)),
            client_context(intruder.client_options()),
        )
        e = server.error
        assert type(e) is CertificateVerificationError
        assert isinstance(e, ssl.SSLCertVerificationError)
        assert (e.verify_code, e.verify_message) == (26, "unsuitable certificate purpose")
        assert (e.side, e.role) == ("local", "server")
        assert e.certificate is not None and e.certificate.names == ("client.test",)
        assert client.received != b"pong"


# ---------------------------------------------------------------------------------------------
# IssuedCertificate serialisation and options


class TestIssuedCertificateSerialisation:
    """The PEM and PKCS#12 forms of an IssuedCertificate load back with cryptography."""

    def test_cert_pem(self, ca: CertificateAuthority) -> None:
        """cert_pem holds the leaf alone."""
        leaf = ca.issue("pem.test")
        assert leaf.cert_pem.startswith(b"-----BEGIN CERTIFICATE-----")
        assert x509.load_pem_x509_certificates(leaf.cert_pem) == [leaf.certificate]

    def test_chain_pem_root_issued(self, ca: CertificateAuthority) -> None:
        """chain_pem of a root-issued leaf is the leaf alone (the root is never sent)."""
        leaf = ca.issue("pem.test")
        assert x509.load_pem_x509_certificates(leaf.chain_pem) == [leaf.certificate]

    def test_chain_pem_intermediate_issued(self, intermediate: CertificateAuthority) -> None:
        """chain_pem is the leaf followed by its intermediates, without the root."""
        leaf = intermediate.issue("pem.test")
        certs = x509.load_pem_x509_certificates(leaf.chain_pem)
        assert certs == [leaf.certificate, intermediate.certificate]
        assert leaf.root not in certs

    def test_root_pem(self, ca: CertificateAuthority, intermediate: CertificateAuthority) -> None:
        """root_pem is the top of the hierarchy, also for intermediate-issued leaves."""
        for issuer in (ca, intermediate):
            leaf = issuer.issue("root.test")
            assert x509.load_pem_x509_certificates(leaf.root_pem) == [ca.certificate]
        assert leaf.root_pem == ca.cert_pem

    def test_key_pem(self, ca: CertificateAuthority) -> None:
        """key_pem is unencrypted PKCS#8 for the leaf's key."""
        leaf = ca.issue("key.test")
        assert leaf.key_pem.startswith(b"-----BEGIN PRIVATE KEY-----")
        key = serialization.load_pem_private_key(leaf.key_pem, password=None)
        assert key.public_key() == leaf.certificate.public_key()

    @pytest.mark.parametrize("password", ["s3cret", b"s3cret"])
    def test_encrypted_key_pem(self, ca: CertificateAuthority, password: str | bytes) -> None:
        """encrypted_key_pem() gives encrypted PKCS#8 that the password (str or bytes) opens."""
        leaf = ca.issue("enc.test")
        pem = leaf.encrypted_key_pem(password)
        assert pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
        key = serialization.load_pem_private_key(pem, password=b"s3cret")
        assert key.public_key() == leaf.certificate.public_key()
        with pytest.raises(TypeError):
            serialization.load_pem_private_key(pem, password=None)
        with pytest.raises(ValueError):  # noqa: PT011 - the wording is cryptography's
            serialization.load_pem_private_key(pem, password=b"wrong")

    def test_encrypted_key_pem_refuses_empty_password(self, ca: CertificateAuthority) -> None:
        """An empty password is refused rather than yielding an unencrypted key."""
        leaf = ca.issue("enc.test")
        with pytest.raises(ConfigurationError) as excinfo:
            leaf.encrypted_key_pem("")
        assert excinfo.value.field == "password"

    def test_encrypted_key_in_server_options(self, ca: CertificateAuthority) -> None:
        """The PEM forms work as ServerOptions bytes, with the encrypted key and its password."""
        leaf = ca.issue("localhost", usage=Usage.SERVER)
        options = ServerOptions(
            cert=leaf.chain_pem, key=leaf.encrypted_key_pem("pw"), password="pw"
        )
        _assert_handshake_ok(
            server_context(options), client_context(ClientOptions(ca=leaf.root_pem))
        )

    def test_pkcs12_with_password(self, ca: CertificateAuthority) -> None:
        """pkcs12(password, name=) holds the key, the leaf under that friendly name, no chain."""
        leaf = ca.issue("p12.test")
        bundle = pkcs12.load_pkcs12(leaf.pkcs12("pw", name="my leaf"), b"pw")
        assert bundle.key is not None
        assert bundle.key.public_key() == leaf.certificate.public_key()
        assert bundle.cert is not None
        assert bundle.cert.certificate == leaf.certificate
        assert bundle.cert.friendly_name == b"my leaf"
        assert bundle.additional_certs == []
        with pytest.raises(ValueError, match="Invalid password"):
            pkcs12.load_key_and_certificates(leaf.pkcs12("pw"), b"wrong")

    def test_pkcs12_with_chain(self, intermediate: CertificateAuthority) -> None:
        """An intermediate-issued bundle carries the intermediate; bytes passwords work too."""
        leaf = intermediate.issue("p12.test")
        key, cert, extra = pkcs12.load_key_and_certificates(leaf.pkcs12(b"pw"), b"pw")
        assert key is not None
        assert key.public_key() == leaf.certificate.public_key()
        assert cert == leaf.certificate
        assert extra == [intermediate.certificate]

    def test_pkcs12_without_password(self, ca: CertificateAuthority) -> None:
        """pkcs12() with no password writes a bundle that opens without one."""
        leaf = ca.issue("p12.test")
        key, cert, _ = pkcs12.load_key_and_certificates(leaf.pkcs12(), None)
        assert key is not None
        assert key.public_key() == leaf.certificate.public_key()
        assert cert == leaf.certificate

    def test_pkcs12_in_server_options(
        self, ca: CertificateAuthority, intermediate: CertificateAuthority
    ) -> None:
        """The bundle, chain included, serves a real handshake through securelink.PKCS12."""
        leaf = intermediate.issue("localhost", usage=Usage.SERVER)
        options = ServerOptions(cert=PKCS12(leaf.pkcs12("pw")), password="pw")
        _assert_handshake_ok(server_context(options), client_context(ca.client_options()))


class TestOptionsFromIssued:
    """server_options() and client_options() fill in the issued material."""

    def test_server_options_defaults(self, intermediate: CertificateAuthority) -> None:
        """The chain and key are set, and no client certificates are asked for."""
        leaf = intermediate.issue("localhost")
        options = leaf.server_options()
        assert isinstance(options, ServerOptions)
        assert options.cert == (leaf.certificate, intermediate.certificate)
        assert options.key is leaf.private_key
        assert options.client_auth is ClientAuth.NONE
        assert options.client_ca is None

    @pytest.mark.parametrize(
        "client_auth", [ClientAuth.VERIFY_IF_GIVEN, ClientAuth.REQUIRE_AND_VERIFY]
    )
    def test_client_ca_defaults_to_root(
        self,
        ca: CertificateAuthority,
        intermediate: CertificateAuthority,
        client_auth: ClientAuth,
    ) -> None:
        """When client certificates are asked for, client_ca defaults to the root."""
        options = intermediate.issue("localhost").server_options(client_auth=client_auth)
        assert options.client_auth is client_auth
        assert options.client_ca == ca.certificate

    def test_explicit_values_win(
        self, ca: CertificateAuthority, rsa_ca: CertificateAuthority
    ) -> None:
        """Explicit keyword arguments are kept and passed on."""
        leaf = ca.issue("localhost")
        other = ca.issue("other.test")
        options = leaf.server_options(
            cert=other.certificate,
            key=other.private_key,
            client_auth=ClientAuth.REQUIRE_AND_VERIFY,
            client_ca=rsa_ca.certificate,
            alpn=("h2",),
        )
        assert options.cert == other.certificate
        assert options.key is other.private_key
        assert options.client_ca == rsa_ca.certificate
        assert options.alpn == ("h2",)

    def test_client_options(
        self, ca: CertificateAuthority, intermediate: CertificateAuthority
    ) -> None:
        """client_options() presents the chain and key and trusts the root."""
        leaf = intermediate.issue("client.test", usage=Usage.CLIENT)
        options = leaf.client_options(alpn=("h2",))
        assert isinstance(options, ClientOptions)
        assert options.cert == (leaf.certificate, intermediate.certificate)
        assert options.key is leaf.private_key
        assert options.ca == ca.certificate
        assert options.alpn == ("h2",)

    def test_client_options_explicit_ca(
        self, ca: CertificateAuthority, rsa_ca: CertificateAuthority
    ) -> None:
        """An explicit ca= replaces the default root."""
        options = ca.issue("client.test").client_options(ca=rsa_ca.certificate)
        assert options.ca == rsa_ca.certificate

    def test_ca_client_options(
        self, ca: CertificateAuthority, intermediate: CertificateAuthority
    ) -> None:
        """A CA's client_options() trusts its root (also from an intermediate) and has no cert."""
        for issuer in (ca, intermediate):
            options = issuer.client_options(alpn=("http/1.1",))
            assert isinstance(options, ClientOptions)
            assert options.ca == ca.certificate
            assert options.cert is None
            assert options.key is None
            assert options.alpn == ("http/1.1",)


# ---------------------------------------------------------------------------------------------
# Certificate signing requests


class TestSignCSR:
    """sign_csr() issues strict leaves for CSRs and refuses bad ones."""

    def test_cryptography_csr(self, ca: CertificateAuthority) -> None:
        """Names come from the CSR's SAN, the subject and key from the CSR."""
        csr, key = _csr(["csr.test", "192.0.2.1", "::1"])
        cert = ca.sign_csr(csr)
        assert_is_leaf(
            cert,
            issuer=ca.certificate,
            names=["csr.test", "192.0.2.1", "::1"],
            usage=Usage.BOTH,
            common_name="csr.test",
        )
        assert cert.subject == csr.subject
        assert cert.public_key() == key.public_key()

    def test_pem_and_der_bytes(self, ca: CertificateAuthority) -> None:
        """The CSR may be given as PEM or DER bytes."""
        csr, _ = _csr(["bytes.test"])
        for encoding in (serialization.Encoding.PEM, serialization.Encoding.DER):
            cert = ca.sign_csr(csr.public_bytes(encoding))
            assert_is_leaf(
                cert,
                issuer=ca.certificate,
                names=["bytes.test"],
                usage=Usage.BOTH,
                common_name="csr.test",
            )

    @pytest.mark.parametrize("usage", list(Usage))
    def test_usage(self, ca: CertificateAuthority, usage: Usage) -> None:
        """usage= sets the extended key usage."""
        csr, _ = _csr(["usage.test"])
        cert = ca.sign_csr(csr, usage=usage)
        assert list(_extension(cert, x509.ExtendedKeyUsage).value) == EKUS[usage]

    def test_valid_for(self, ca: CertificateAuthority) -> None:
        """The default lifetime is 825 days; valid_for= changes it."""
        csr, _ = _csr(["time.test"])
        before = _now()
        default = ca.sign_csr(csr)
        short = ca.sign_csr(csr, valid_for=datetime.timedelta(days=7))
        after = _now()
        _assert_validity(default, before=before, after=after, lifetime=LEAF_LIFETIME)
        _assert_validity(short, before=before, after=after, lifetime=datetime.timedelta(days=7))

    def test_requested_extensions_are_ignored(self, ca: CertificateAuthority) -> None:
        """A CSR asking to be a CA gets a leaf: the CA decides constraints and key usage."""
        key = ec.generate_private_key(ec.SECP256R1())
        csr = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "greedy.test")]))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("greedy.test")]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(CA_KEY_USAGE, critical=True)
            .sign(key, hashes.SHA256())
        )
        cert = ca.sign_csr(csr, usage=Usage.SERVER)
        assert_is_leaf(
            cert,
            issuer=ca.certificate,
            names=["greedy.test"],
            usage=Usage.SERVER,
            common_name="greedy.test",
        )

    def test_intermediate_signs(
        self, ca: CertificateAuthority, intermediate: CertificateAuthority
    ) -> None:
        """An intermediate signs CSRs with its own key identifier."""
        csr, _ = _csr(["inter-csr.test"])
        cert = intermediate.sign_csr(csr)
        assert_is_leaf(
            cert,
            issuer=intermediate.certificate,
            names=["inter-csr.test"],
            usage=Usage.BOTH,
            common_name="csr.test",
        )

    def test_signed_certificate_serves(self, ca: CertificateAuthority) -> None:
        """The certificate and the CSR's key complete a real handshake."""
        csr, key = _csr(["localhost"])
        cert = ca.sign_csr(csr, usage=Usage.SERVER)
        _assert_handshake_ok(
            server_context(ServerOptions(cert=cert, key=key)), client_context(ca.client_options())
        )

    @pytest.mark.openssl
    @requires_openssl
    def test_openssl_csr(
        self, tmp_path: Path, ca: CertificateAuthority, intermediate: CertificateAuthority
    ) -> None:
        """An ``openssl req -new`` CSR with SANs (and a CA:TRUE wish) becomes a strict leaf."""
        made = _openssl(
            "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", "key.pem", "-out", "csr.pem", "-subj", "/CN=openssl.test",
            "-addext", "subjectAltName=DNS:openssl.test,DNS:localhost,IP:127.0.0.1,IP:::1",
            "-addext", "basicConstraints=critical,CA:TRUE",
            cwd=tmp_path,
        )  # fmt: skip
        assert made.returncode == 0, made.stderr
        cert = intermediate.sign_csr((tmp_path / "csr.pem").read_bytes(), usage=Usage.SERVER)
        assert_is_leaf(
            cert,
            issuer=intermediate.certificate,
            names=["openssl.test", "localhost", "127.0.0.1", "::1"],
            usage=Usage.SERVER,
            common_name="openssl.test",
        )
        _assert_verify_ok(
            _openssl_verify(tmp_path, ca.certificate, cert, intermediate.chain, "-verify_ip", "::1")
        )
        key_pem = (tmp_path / "key.pem").read_bytes()
        options = ServerOptions(cert=(cert, *intermediate.chain), key=key_pem)
        _assert_handshake_ok(server_context(options), client_context(ca.client_options()))

    @pytest.mark.openssl
    @requires_openssl
    def test_openssl_csr_without_san(self, tmp_path: Path, ca: CertificateAuthority) -> None:
        """An ``openssl req`` CSR with only a Common Name is refused with field="csr"."""
        made = _openssl(
            "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", "key.pem", "-out", "csr.pem", "-subj", "/CN=nosan.test",
            cwd=tmp_path,
        )  # fmt: skip
        assert made.returncode == 0, made.stderr
        with pytest.raises(ConfigurationError) as excinfo:
            ca.sign_csr((tmp_path / "csr.pem").read_bytes())
        assert excinfo.value.field == "csr"

    def test_csr_without_san(self, ca: CertificateAuthority) -> None:
        """A CSR without a SubjectAltName is refused with field="csr"."""
        csr, _ = _csr([])
        with pytest.raises(ConfigurationError) as excinfo:
            ca.sign_csr(csr)
        assert excinfo.value.field == "csr"
        assert "SubjectAltName" in excinfo.value.message

    @pytest.mark.parametrize("as_bytes", [False, True])
    def test_bad_signature(self, ca: CertificateAuthority, as_bytes: bool) -> None:
        """A CSR whose signature does not verify is refused, as object or as bytes."""
        csr, _ = _csr(["forged.test"])
        der = csr.public_bytes(serialization.Encoding.DER)
        forged_der = der[:-1] + bytes([der[-1] ^ 0x01])  # the last byte of the ECDSA signature
        forged = x509.load_der_x509_csr(forged_der)
        assert not forged.is_signature_valid
        with pytest.raises(MaterialError) as excinfo:
            ca.sign_csr(forged_der if as_bytes else forged)
        assert type(excinfo.value) is MaterialError
        assert excinfo.value.source == "the in-memory CSR"
        assert excinfo.value.found == "CERTIFICATE REQUEST"

    @pytest.mark.parametrize(
        "data",
        [
            b"this is not a CSR",
            b"\x30\x03\x02\x01\x00",
            b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
        ],
        ids=["text", "der-garbage", "pem-garbage"],
    )
    def test_garbage_bytes(self, ca: CertificateAuthority, data: bytes) -> None:
        """Bytes that are not a CSR are refused."""
        with pytest.raises(MaterialError) as excinfo:
            ca.sign_csr(data)
        assert type(excinfo.value) is MaterialError
        assert excinfo.value.source == "the in-memory CSR"
        assert isinstance(excinfo.value.__cause__, ValueError)

    def test_certificate_is_not_a_csr(self, ca: CertificateAuthority) -> None:
        """A certificate PEM given as a CSR is refused."""
        with pytest.raises(MaterialError) as excinfo:
            ca.sign_csr(ca.cert_pem)
        assert excinfo.value.source == "the in-memory CSR"

    @pytest.mark.openssl
    @requires_openssl
    def test_empty_subject_csr_is_strict(self, tmp_path: Path, ca: CertificateAuthority) -> None:
        """A SAN-only CSR with an empty subject still yields a certificate that passes strict."""
        csr, _ = _csr(["empty-subject.test"], subject=x509.Name([]))
        cert = ca.sign_csr(csr)
        _assert_verify_ok(_openssl_verify(tmp_path, ca.certificate, cert))


# ---------------------------------------------------------------------------------------------
# Loading a CA


class TestFromPem:
    """CertificateAuthority.from_pem() loads a CA and checks it."""

    def test_round_trip(self, ca: CertificateAuthority) -> None:
        """A CA reloaded from its PEM forms issues leaves that its original certificate signed."""
        loaded = CertificateAuthority.from_pem(ca.cert_pem, ca.key_pem)
        assert loaded.certificate == ca.certificate
        assert loaded.private_key.public_key() == ca.private_key.public_key()
        assert loaded.parent is None
        assert loaded.root == ca.certificate
        assert loaded.chain == ()
        assert loaded.cert_pem == ca.cert_pem
        leaf = loaded.issue("reloaded.test")
        assert_is_leaf(
            leaf.certificate, issuer=ca.certificate, names=["reloaded.test"], usage=Usage.BOTH
        )

    def test_rsa_round_trip(self, rsa_ca: CertificateAuthority) -> None:
        """An RSA CA reloads with its RSA key."""
        loaded = CertificateAuthority.from_pem(rsa_ca.cert_pem, rsa_ca.key_pem)
        assert isinstance(loaded.private_key, rsa.RSAPrivateKey)
        assert loaded.certificate == rsa_ca.certificate

    @pytest.mark.parametrize("password", ["pw", b"pw"])
    def test_encrypted_key(self, ca: CertificateAuthority, password: str | bytes) -> None:
        """An encrypted CA key is opened with password= (str or bytes)."""
        encrypted = ca.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"pw"),
        )
        loaded = CertificateAuthority.from_pem(ca.cert_pem, encrypted, password=password)
        assert loaded.private_key.public_key() == ca.private_key.public_key()

    def test_encrypted_key_without_password(self, ca: CertificateAuthority) -> None:
        """An encrypted CA key without a password raises KeyPasswordError, never prompts."""
        encrypted = ca.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"pw"),
        )
        with pytest.raises(KeyPasswordError) as excinfo:
            CertificateAuthority.from_pem(ca.cert_pem, encrypted)
        assert excinfo.value.reason == "missing"

    def test_leaf_as_ca(self, server_cert: IssuedCertificate) -> None:
        """A leaf certificate cannot be loaded as a CA."""
        with pytest.raises(MaterialError) as excinfo:
            CertificateAuthority.from_pem(server_cert.cert_pem, server_cert.key_pem)
        assert type(excinfo.value) is MaterialError
        assert excinfo.value.source == "the in-memory CA certificate"
        assert excinfo.value.found == "CERTIFICATE"
        assert "not a CA certificate" in excinfo.value.message

    def test_certificate_without_basic_constraints(self) -> None:
        """A self-signed certificate without basicConstraints is not a CA."""
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "no constraints")])
        now = _now()
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256())
        )
        key_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        with pytest.raises(MaterialError) as excinfo:
            CertificateAuthority.from_pem(_pem(cert), key_pem)
        assert type(excinfo.value) is MaterialError
        assert excinfo.value.source == "the in-memory CA certificate"

    @pytest.mark.parametrize("other", ["ecdsa", "rsa"])
    def test_mismatched_key(
        self,
        ca: CertificateAuthority,
        rsa_ca: CertificateAuthority,
        intermediate: CertificateAuthority,
        other: str,
    ) -> None:
        """A key of another CA (same or other key type) raises KeyMismatchError."""
        key_pem = intermediate.key_pem if other == "ecdsa" else rsa_ca.key_pem
        with pytest.raises(KeyMismatchError) as excinfo:
            CertificateAuthority.from_pem(ca.cert_pem, key_pem)
        assert excinfo.value.source == "the in-memory key"
        assert excinfo.value.cert_source == "the in-memory CA certificate"
        assert excinfo.value.found == "PRIVATE KEY"

    def test_garbage_key(self, ca: CertificateAuthority) -> None:
        """Bytes that are not a key raise MaterialError naming the key."""
        with pytest.raises(MaterialError) as excinfo:
            CertificateAuthority.from_pem(ca.cert_pem, b"not a key")
        assert type(excinfo.value) is MaterialError
        assert excinfo.value.source == "the in-memory key"

    def test_garbage_certificate(self, ca: CertificateAuthority) -> None:
        """Bytes that are not a certificate raise MaterialError naming the certificate."""
        with pytest.raises(MaterialError) as excinfo:
            CertificateAuthority.from_pem(b"not a certificate", ca.key_pem)
        assert type(excinfo.value) is MaterialError
        assert excinfo.value.source == "the in-memory CA certificate"


# ---------------------------------------------------------------------------------------------
# minica's file layout


@pytest.mark.usefixtures("umask022")
class TestMinicaLayout:
    """minica() writes minica's files with private modes."""

    def test_files_and_modes(self, tmp_path: Path) -> None:
        """The CA, key, leaf and leaf key are written; keys 0600, the leaf directory 0700."""
        files = minica(tmp_path, domains=["example.test", "www.example.test"])
        base = str(tmp_path)
        assert files == MinicaFiles(
            ca_cert=os.path.join(base, "minica.pem"),
            ca_key=os.path.join(base, "minica-key.pem"),
            cert=os.path.join(base, "example.test", "cert.pem"),
            key=os.path.join(base, "example.test", "key.pem"),
            ca_created=True,
        )
        assert sorted(_snapshot(tmp_path)) == [
            "example.test/cert.pem",
            "example.test/key.pem",
            "minica-key.pem",
            "minica.pem",
        ]
        assert _mode(files.ca_key) == 0o600
        assert _mode(files.key) == 0o600
        assert _mode(tmp_path / "example.test") == 0o700
        assert _mode(files.ca_cert) == 0o644
        assert _mode(files.cert) == 0o644

    def test_contents(self, tmp_path: Path) -> None:
        """The files hold a strict root, its key, and a BOTH leaf for all names with its key."""
        files = minica(tmp_path, domains=["example.test", "*.example.test"], ip_addresses=["::1"])
        [root] = x509.load_pem_x509_certificates(Path(files.ca_cert).read_bytes())
        assert_is_ca(root, issuer=root, path_length=None)
        ca_key = serialization.load_pem_private_key(Path(files.ca_key).read_bytes(), None)
        assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
        assert ca_key.public_key() == root.public_key()
        [leaf] = x509.load_pem_x509_certificates(Path(files.cert).read_bytes())
        assert_is_leaf(
            leaf, issuer=root, names=["example.test", "*.example.test", "::1"], usage=Usage.BOTH
        )
        key = serialization.load_pem_private_key(Path(files.key).read_bytes(), None)
        assert key.public_key() == leaf.public_key()

    def test_wildcard_directory(self, tmp_path: Path) -> None:
        """A '*' in the first name becomes '_' in the directory name, not in the SAN."""
        files = minica(tmp_path, domains=["*.example.test"])
        assert files.cert == os.path.join(str(tmp_path), "_.example.test", "cert.pem")
        assert _mode(tmp_path / "_.example.test") == 0o700
        [leaf] = x509.load_pem_x509_certificates(Path(files.cert).read_bytes())
        san = _extension(leaf, x509.SubjectAlternativeName).value
        assert san.get_values_for_type(x509.DNSName) == ["*.example.test"]

    def test_ip_only(self, tmp_path: Path) -> None:
        """With IP addresses only, the first address names the directory."""
        files = minica(tmp_path, ip_addresses=["127.0.0.1", "::1"])
        assert files.cert == os.path.join(str(tmp_path), "127.0.0.1", "cert.pem")
        [leaf] = x509.load_pem_x509_certificates(Path(files.cert).read_bytes())
        san = _extension(leaf, x509.SubjectAlternativeName).value
        assert san.get_values_for_type(x509.IPAddress) == [
            ipaddress.IPv4Address("127.0.0.1"),
            ipaddress.IPv6Address("::1"),
        ]

    def test_domains_come_before_addresses(self, tmp_path: Path) -> None:
        """Domains name the directory even when IP addresses are given too."""
        files = minica(str(tmp_path), domains=["name.test"], ip_addresses=["127.0.0.1"])
        assert files.cert == os.path.join(str(tmp_path), "name.test", "cert.pem")

    def test_current_directory_by_default(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Without a directory, minica() works in the current directory."""
        monkeypatch.chdir(tmp_path)
        files = minica(domains=["cwd.test"])
        assert files.ca_cert == os.path.join(".", "minica.pem")
        assert (tmp_path / "cwd.test" / "cert.pem").is_file()

    def test_custom_ca_file_names(self, tmp_path: Path) -> None:
        """ca_cert= and ca_key= name the CA files."""
        files = minica(tmp_path, domains=["x.test"], ca_cert="root.pem", ca_key="root-key.pem")
        assert files.ca_cert == os.path.join(str(tmp_path), "root.pem")
        assert files.ca_key == os.path.join(str(tmp_path), "root-key.pem")
        assert sorted(_snapshot(tmp_path)) == [
            "root-key.pem",
            "root.pem",
            "x.test/cert.pem",
            "x.test/key.pem",
        ]
        assert _mode(files.ca_key) == 0o600

    @pytest.mark.parametrize(
        ("alg", "kind", "size"),
        [
            ("rsa", rsa.RSAPrivateKey, 2048),
            ("ecdsa", ec.EllipticCurvePrivateKey, 256),
            (KeyType.ECDSA_P384, ec.EllipticCurvePrivateKey, 384),
        ],
    )
    def test_ca_alg(self, tmp_path: Path, alg: str | KeyType, kind: type, size: int) -> None:
        """ca_alg= chooses the new CA's key type."""
        files = minica(tmp_path, domains=["alg.test"], ca_alg=alg)
        key = serialization.load_pem_private_key(Path(files.ca_key).read_bytes(), None)
        assert isinstance(key, kind)
        assert isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey)
        assert key.key_size == size
        [root] = x509.load_pem_x509_certificates(Path(files.ca_cert).read_bytes())
        [leaf] = x509.load_pem_x509_certificates(Path(files.cert).read_bytes())
        leaf.verify_directly_issued_by(root)


@pytest.mark.usefixtures("umask022")
class TestMinicaReuse:
    """A second minica() call reuses the CA and never overwrites anything."""

    def test_second_domain_reuses_ca(self, tmp_path: Path) -> None:
        """Another name is issued by the same CA, whose files stay byte-identical."""
        first = minica(tmp_path, domains=["one.test"])
        ca_files = {k: v for k, v in _snapshot(tmp_path).items() if k.startswith("minica")}
        second = minica(tmp_path, domains=["two.test"])
        assert first.ca_created is True
        assert second.ca_created is False
        assert (second.ca_cert, second.ca_key) == (first.ca_cert, first.ca_key)
        after = _snapshot(tmp_path)
        assert {k: v for k, v in after.items() if k.startswith("minica")} == ca_files
        [root] = x509.load_pem_x509_certificates(ca_files["minica.pem"])
        [leaf] = x509.load_pem_x509_certificates(after["two.test/cert.pem"])
        assert_is_leaf(leaf, issuer=root, names=["two.test"], usage=Usage.BOTH)
        assert _mode(second.key) == 0o600

    def test_same_name_twice(self, tmp_path: Path) -> None:
        """Issuing the same first name again raises MaterialError and changes no file."""
        files = minica(tmp_path, domains=["same.test"])
        before = _snapshot(tmp_path)
        with pytest.raises(MaterialError) as excinfo:
            minica(tmp_path, domains=["same.test", "extra.test"])
        assert type(excinfo.value) is MaterialError
        assert excinfo.value.source == files.cert
        assert "already exists" in excinfo.value.message
        assert _snapshot(tmp_path) == before

    def test_leftover_leaf_key(self, tmp_path: Path) -> None:
        """A leaf key left without its certificate is not overwritten either."""
        files = minica(tmp_path, domains=["left.test"])
        os.remove(files.cert)
        before = _snapshot(tmp_path)
        with pytest.raises(MaterialError) as excinfo:
            minica(tmp_path, domains=["left.test"])
        assert excinfo.value.source == files.key
        assert _snapshot(tmp_path) == before

    def test_ca_files_with_one_name(self, tmp_path: Path) -> None:
        """ca_cert and ca_key naming one file raise MaterialError instead of overwriting the key."""
        with pytest.raises(MaterialError) as excinfo:
            minica(tmp_path, domains=["one.test"], ca_cert="ca.pem", ca_key="ca.pem")
        assert type(excinfo.value) is MaterialError
        assert excinfo.value.source == os.path.join(str(tmp_path), "ca.pem")
        assert (tmp_path / "ca.pem").read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
        assert _mode(tmp_path / "ca.pem") == 0o600

    def test_file_in_place_of_leaf_directory(self, tmp_path: Path) -> None:
        """A regular file where the leaf directory belongs raises MaterialError naming it."""
        (tmp_path / "blocked.test").write_bytes(b"not a directory")
        with pytest.raises(MaterialError) as excinfo:
            minica(tmp_path, domains=["blocked.test"])
        assert excinfo.value.source == os.path.join(str(tmp_path), "blocked.test")

    @pytest.mark.parametrize("present", ["minica.pem", "minica-key.pem"])
    def test_only_one_ca_file(self, tmp_path: Path, present: str) -> None:
        """One CA file without the other raises MaterialError naming the missing one."""
        minica(tmp_path, domains=["first.test"])
        absent = "minica-key.pem" if present == "minica.pem" else "minica.pem"
        os.remove(tmp_path / absent)
        before = _snapshot(tmp_path)
        with pytest.raises(MaterialError) as excinfo:
            minica(tmp_path, domains=["second.test"])
        assert type(excinfo.value) is MaterialError
        assert excinfo.value.source == os.path.join(str(tmp_path), absent)
        assert _snapshot(tmp_path) == before
        assert not (tmp_path / "second.test").exists()

    def test_mismatched_ca_files(self, tmp_path: Path, ca: CertificateAuthority) -> None:
        """A CA key that belongs to another CA raises KeyMismatchError with both paths."""
        files = minica(tmp_path, domains=["first.test"])
        os.remove(files.ca_key)
        fd = os.open(files.ca_key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(ca.key_pem)
        with pytest.raises(KeyMismatchError) as excinfo:
            minica(tmp_path, domains=["second.test"])
        assert excinfo.value.source == files.ca_key
        assert excinfo.value.cert_source == files.ca_cert
        assert not (tmp_path / "second.test").exists()

    def test_leaf_as_ca_file(self, tmp_path: Path) -> None:
        """A leaf certificate in minica.pem is refused as a CA."""
        files = minica(tmp_path, domains=["first.test"])
        leaf_dir = tmp_path / "first.test"
        os.replace(leaf_dir / "cert.pem", files.ca_cert)
        os.replace(leaf_dir / "key.pem", files.ca_key)
        with pytest.raises(MaterialError) as excinfo:
            minica(tmp_path, domains=["second.test"])
        assert type(excinfo.value) is MaterialError
        assert excinfo.value.source == files.ca_cert
        assert excinfo.value.found == "CERTIFICATE"


@pytest.mark.usefixtures("umask022")
class TestMinicaValidation:
    """minica() validates its names before writing anything."""

    @pytest.mark.parametrize("bad", ["300.1.2.3", "localhost", "::g", ""])
    def test_invalid_ip_address(self, tmp_path: Path, bad: str) -> None:
        """Something that is not an IP address in ip_addresses is refused with that field."""
        with pytest.raises(ConfigurationError) as excinfo:
            minica(tmp_path, domains=["ok.test"], ip_addresses=["127.0.0.1", bad])
        assert excinfo.value.field == "ip_addresses"
        assert list(tmp_path.iterdir()) == []

    def test_no_names(self, tmp_path: Path) -> None:
        """No domains and no addresses is refused with field="domains"."""
        with pytest.raises(ConfigurationError) as excinfo:
            minica(tmp_path)
        assert excinfo.value.field == "domains"
        assert list(tmp_path.iterdir()) == []

    @pytest.mark.parametrize("bad", ["bad name.test", "", "a/b"])
    def test_malformed_domain(self, tmp_path: Path, bad: str) -> None:
        """A malformed domain is refused with field="domains" and nothing is written."""
        with pytest.raises(ConfigurationError) as excinfo:
            minica(tmp_path, domains=["ok.test", bad])
        assert excinfo.value.field == "domains"
        assert list(tmp_path.iterdir()) == []

    @pytest.mark.parametrize("name", [".", ".."])
    def test_dot_names_stay_inside(self, tmp_path: Path, name: str) -> None:
        """'.' and '..' are not DNS names and never make minica write outside a leaf directory."""
        work = tmp_path / "work"
        work.mkdir()
        with pytest.raises(ConfigurationError) as excinfo:
            minica(work, domains=[name])
        assert excinfo.value.field == "domains"
        assert _snapshot(tmp_path) == {}

    def test_domains_as_bare_string(self, tmp_path: Path) -> None:
        """A single str for domains is refused rather than read letter by letter."""
        with pytest.raises(ConfigurationError) as excinfo:
            minica(tmp_path, domains="localhost")
        assert excinfo.value.field == "domains"
        assert list(tmp_path.iterdir()) == []


@pytest.mark.usefixtures("umask022")
class TestMinicaInUse:
    """The files minica() writes pass strict verification and serve real connections."""

    @pytest.mark.openssl
    @requires_openssl
    def test_openssl_verify_strict(self, tmp_path: Path) -> None:
        """``openssl verify -x509_strict -CAfile minica.pem name/cert.pem`` accepts the leaf."""
        files = minica(tmp_path, domains=["localhost"], ip_addresses=["127.0.0.1", "::1"])
        for purpose in ("sslserver", "sslclient"):
            result = _openssl(
                "verify", "-x509_strict", "-purpose", purpose, "-CAfile", "minica.pem",
                "localhost/cert.pem",
                cwd=tmp_path,
            )  # fmt: skip
            _assert_verify_ok(result)
        assert files.cert.endswith("localhost/cert.pem")

    @pytest.mark.openssl
    @requires_openssl
    def test_openssl_verify_strict_rsa_ca(self, tmp_path: Path) -> None:
        """A leaf from an RSA minica CA passes ``openssl verify -x509_strict`` too."""
        minica(tmp_path, domains=["rsa.test"], ca_alg="rsa")
        result = _openssl(
            "verify", "-x509_strict", "-CAfile", "minica.pem", "rsa.test/cert.pem", cwd=tmp_path
        )
        _assert_verify_ok(result)

    def test_options(self, tmp_path: Path) -> None:
        """server_options() presents the files; trusting_client_options() only trusts the CA."""
        files = minica(tmp_path, domains=["localhost"])
        server = files.server_options(alpn=("h2",))
        assert (server.cert, server.key, server.alpn) == (files.cert, files.key, ("h2",))
        client = files.trusting_client_options()
        assert client.ca == files.ca_cert
        assert (client.cert, client.key) == (None, None)
        assert files.trusting_client_options(ca=files.cert).ca == files.cert
        # One name, one meaning: client_options() presents a certificate (IssuedCertificate),
        # so the files' trust-only options no longer go by that name.
        assert not hasattr(files, "client_options")

    def test_handshake(self, tmp_path: Path) -> None:
        """Contexts built from the files complete a real handshake, by name and by address."""
        files = minica(tmp_path, domains=["localhost"], ip_addresses=["127.0.0.1"])
        for hostname in ("localhost", "127.0.0.1"):
            _assert_handshake_ok(
                server_context(files.server_options()),
                client_context(files.trusting_client_options()),
                server_hostname=hostname,
            )

    def test_mutual_tls(self, tmp_path: Path) -> None:
        """Two minica leaves from one CA complete mutual TLS through the file-based options."""
        server_files = minica(tmp_path, domains=["localhost"])
        client_files = minica(tmp_path, domains=["client.test"])
        server_ctx = server_context(
            server_files.server_options(
                client_auth=ClientAuth.REQUIRE_AND_VERIFY, client_ca=server_files.ca_cert
            )
        )
        client_ctx = client_context(
            client_files.trusting_client_options(cert=client_files.cert, key=client_files.key)
        )
        server, _ = _assert_handshake_ok(server_ctx, client_ctx)
        [client_leaf] = x509.load_pem_x509_certificates(Path(client_files.cert).read_bytes())
        assert server.peer_der == client_leaf.public_bytes(serialization.Encoding.DER)


def test_public_names() -> None:
    """securelink.devca exports exactly its documented names."""
    assert sorted(devca.__all__) == [
        "CertificateAuthority",
        "CertificateRequest",
        "IssuedCertificate",
        "KeyType",
        "MinicaFiles",
        "Usage",
        "create_csr",
        "minica",
    ]
