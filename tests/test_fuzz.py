"""No exception from below reaches the user: hostile certificates, keys and bundles.

cryptography parses a certificate's fields only when they are read, so a certificate that loads can
still raise ``DuplicateExtension``, ``UnsupportedAlgorithm``, ``TypeError`` or ``ValueError`` later.
The certificates here are devca certificates patched byte for byte (an OID swapped for another of
the same length, an EC point moved off its curve), so that they load and fail only on access.
Then a deterministic fuzz run (``tests/fuzzing.py``; the long one is ``fuzz/fuzz_material.py``).
"""

from __future__ import annotations

import base64
import datetime
import json
import socket
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509 import DuplicateExtension
from cryptography.x509.oid import ExtensionOID, NameOID

import securelink
from securelink import (
    PKCS12,
    CertificateProblemError,
    CertificateSummary,
    ClientAuth,
    ClientOptions,
    IdentityUnavailableError,
    OtherObject,
    PeerIdentity,
    ServerOptions,
    UnknownAuthorityError,
    devca,
)
from securelink._translate import _summaries
from tests import fuzzing
from tests.helpers import TIMEOUT, tls_client, tls_server
from tests.pki import der, key_pem, pem

# DER encodings (tag, length, contents) of the OIDs the patches swap.
AKI = bytes.fromhex("0603551d23")  # authorityKeyIdentifier 2.5.29.35
SKI = bytes.fromhex("0603551d0e")  # subjectKeyIdentifier 2.5.29.14
EC_PUBLIC_KEY = bytes.fromhex("06072a8648ce3d0201")  # id-ecPublicKey
UNKNOWN_KEY = bytes.fromhex("06072a8648ce3d0202")  # the next OID in its arc: no algorithm
ECDSA_SHA256 = bytes.fromhex("06082a8648ce3d040302")
UNKNOWN_SIGNATURE = bytes.fromhex("06082a8648ce3d04037f")
CN = "fuzz-subject-name"


def patch(data: bytes, old: bytes, new: bytes) -> bytes:
    """Replace every *old* in *data* with *new* (of the same length: no re-encoding needed)."""
    assert len(old) == len(new) and old in data
    return data.replace(old, new)


def off_curve(cert: x509.Certificate) -> bytes:
    """*cert* as DER with one bit of its EC public point flipped: no longer on its curve."""
    point = cert.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    data = bytearray(der(cert))
    data[data.index(point) + 40] ^= 0x01
    return bytes(data)


def bad_subject(cert: x509.Certificate) -> bytes:
    """*cert* as DER with its Common Name retagged from UTF8String to INTEGER."""
    value = CN.encode()
    return patch(der(cert), bytes([0x0C, len(value)]) + value, bytes([0x02, len(value)]) + value)


@pytest.fixture(scope="module")
def root() -> devca.CertificateAuthority:
    return devca.CertificateAuthority(common_name="fuzz test root")


@pytest.fixture(scope="module")
def leaf(root: devca.CertificateAuthority) -> devca.IssuedCertificate:
    return root.issue("localhost", "127.0.0.1", common_name=CN)


@pytest.fixture(scope="module")
def duplicated(leaf: devca.IssuedCertificate) -> bytes:
    """The issue's repro: the leaf with its AKI extension's OID patched into the SKI's."""
    data = patch(der(leaf.certificate), AKI, SKI)
    with pytest.raises(DuplicateExtension):  # it loads, and fails only when read
        _ = x509.load_der_x509_certificate(data).extensions
    return data


def subject_of(cert: x509.Certificate) -> str:
    return cert.subject.rfc4514_string()


def as_pem(data: bytes) -> bytes:
    """DER certificate bytes as a PEM block."""
    return (
        b"-----BEGIN CERTIFICATE-----\n" + base64.encodebytes(data) + b"-----END CERTIFICATE-----\n"
    )


class TestUnreadableOwnCertificate:
    """cert= whose fields cannot be read is a CertificateProblemError naming source and field."""

    def test_duplicate_extension(self, leaf: devca.IssuedCertificate, duplicated: bytes) -> None:
        with pytest.raises(CertificateProblemError) as info:
            securelink.server_context(ServerOptions(cert=duplicated, key=leaf.key_pem))
        e = info.value
        assert type(e) is CertificateProblemError
        assert e.problem == "unreadable-field"
        assert e.source == "the in-memory certificate"
        assert e.found == "CERTIFICATE"
        assert e.subject == subject_of(leaf.certificate)
        assert "its extensions cannot be read: Duplicate 2.5.29.14 extension found" in e.message
        assert type(e.__cause__) is DuplicateExtension

    def test_from_a_file(
        self, leaf: devca.IssuedCertificate, duplicated: bytes, tmp_path: Path
    ) -> None:
        path = tmp_path / "server.der"
        path.write_bytes(duplicated)
        with pytest.raises(CertificateProblemError) as info:
            securelink.server_context(ServerOptions(cert=str(path), key=leaf.key_pem))
        assert type(info.value) is CertificateProblemError
        assert info.value.source == str(path)
        assert str(path) in info.value.message

    def test_unreadable_subject(self, leaf: devca.IssuedCertificate) -> None:
        data = bad_subject(leaf.certificate)
        with pytest.raises(CertificateProblemError) as info:
            securelink.server_context(ServerOptions(cert=data, key=leaf.key_pem))
        e = info.value
        assert type(e) is CertificateProblemError
        assert e.problem == "unreadable-field"
        assert e.subject == "(unreadable subject)"
        assert "its subject cannot be read" in e.message

    def test_unknown_signature_algorithm(self, leaf: devca.IssuedCertificate) -> None:
        data = patch(der(leaf.certificate), ECDSA_SHA256, UNKNOWN_SIGNATURE)
        with pytest.raises(CertificateProblemError) as info:
            securelink.server_context(ServerOptions(cert=data, key=leaf.key_pem))
        e = info.value
        assert type(e) is CertificateProblemError
        assert e.problem == "unreadable-field"
        assert e.subject == subject_of(leaf.certificate)
        assert "its signature algorithm cannot be read: its algorithm is not supported" in (
            e.message
        )
        assert type(e.__cause__) is UnsupportedAlgorithm

    def test_intermediate_in_chain(self, root: devca.CertificateAuthority, tmp_path: Path) -> None:
        inter = root.intermediate(common_name="fuzz test intermediate")
        issued = inter.issue("localhost")
        chain = pem(issued.certificate) + as_pem(patch(der(inter.certificate), AKI, SKI))
        with pytest.raises(CertificateProblemError) as info:
            securelink.server_context(ServerOptions(cert=chain, key=issued.key_pem))
        e = info.value
        assert type(e) is CertificateProblemError
        assert e.subject == subject_of(inter.certificate)
        assert "certificate #2 'CN=fuzz test intermediate" in e.message

    def test_pkcs12(self, leaf: devca.IssuedCertificate, duplicated: bytes) -> None:
        bundle = pkcs12.serialize_key_and_certificates(
            None,
            leaf.private_key,  # type: ignore[arg-type]
            x509.load_der_x509_certificate(duplicated),
            None,
            serialization.NoEncryption(),
        )
        with pytest.raises(CertificateProblemError) as info:
            securelink.server_context(ServerOptions(cert=PKCS12(bundle)))
        e = info.value
        assert type(e) is CertificateProblemError
        assert e.problem == "unreadable-field"
        assert e.source == "the in-memory PKCS#12 bundle"


class TestUnusableCA:
    """A CA whose fields or key cannot be read is refused at load, naming source and subject."""

    def test_duplicate_extension(self, root: devca.CertificateAuthority) -> None:
        data = patch(der(root.certificate), AKI, SKI)
        with pytest.raises(CertificateProblemError) as info:
            securelink.client_context(ClientOptions(ca=data))
        e = info.value
        assert type(e) is CertificateProblemError
        assert e.problem == "unreadable-field"
        assert e.source == "the in-memory CA"
        assert e.subject == subject_of(root.certificate)
        assert "The CA certificate 'CN=fuzz test root" in e.message
        assert "its extensions cannot be read" in e.message

    def test_ec_point_off_its_curve(self, root: devca.CertificateAuthority) -> None:
        data = off_curve(root.certificate)
        with pytest.raises(ValueError, match="Invalid key"):  # loads, fails on use
            x509.load_der_x509_certificate(data).public_key()
        with pytest.raises(CertificateProblemError) as info:
            securelink.client_context(ClientOptions(ca=data))
        e = info.value
        assert type(e) is CertificateProblemError
        assert e.problem == "unreadable-field"
        assert e.subject == subject_of(root.certificate)
        assert (
            "has a public key securelink cannot use: the key is invalid (for an EC key, its point"
            " is not on its curve)" in e.message
        )
        assert "refused rather than trusted" in e.message

    def test_unknown_key_algorithm(self, root: devca.CertificateAuthority) -> None:
        data = patch(der(root.certificate), EC_PUBLIC_KEY, UNKNOWN_KEY)
        with pytest.raises(UnsupportedAlgorithm):
            x509.load_der_x509_certificate(data).public_key()
        with pytest.raises(CertificateProblemError) as info:
            securelink.client_context(ClientOptions(ca=data))
        e = info.value
        assert type(e) is CertificateProblemError
        assert e.problem == "unreadable-field"
        assert e.subject == subject_of(root.certificate)
        assert "its algorithm is not supported (Unknown key type: 1.2.840.10045.2.2)" in e.message
        assert type(e.__cause__) is UnsupportedAlgorithm

    def test_client_ca(
        self, root: devca.CertificateAuthority, leaf: devca.IssuedCertificate
    ) -> None:
        options = ServerOptions(
            cert=leaf.chain_pem,
            key=leaf.key_pem,
            client_ca=off_curve(root.certificate),
            client_auth=ClientAuth.REQUIRE_AND_VERIFY,
        )
        with pytest.raises(CertificateProblemError) as info:
            securelink.server_context(options)
        e = info.value
        assert type(e) is CertificateProblemError
        assert e.source == "the in-memory client CA"
        assert "The client CA certificate 'CN=fuzz test root" in e.message

    def test_one_bad_ca_in_a_bundle(
        self, root: devca.CertificateAuthority, rsa_ca: devca.CertificateAuthority
    ) -> None:
        bundle = pem(rsa_ca.certificate) + as_pem(off_curve(root.certificate))
        with pytest.raises(CertificateProblemError) as info:
            securelink.client_context(ClientOptions(ca=bundle))
        e = info.value
        assert type(e) is CertificateProblemError
        assert "The CA certificate #2 'CN=fuzz test root" in e.message

    def test_certificate_object(self, root: devca.CertificateAuthority) -> None:
        cert = x509.load_der_x509_certificate(off_curve(root.certificate))
        with pytest.raises(CertificateProblemError) as info:
            securelink.client_context(ClientOptions(ca=cert))
        e = info.value
        assert type(e) is CertificateProblemError
        assert e.source == f"the x509.Certificate for {subject_of(root.certificate)!r}"

    def test_signature_of_a_trust_anchor_is_not_read(
        self, root: devca.CertificateAuthority
    ) -> None:
        """Nothing checks a root's own signature, so an unknown signature algorithm is fine."""
        data = patch(der(root.certificate), ECDSA_SHA256, UNKNOWN_SIGNATURE)
        ctx = securelink.client_context(ClientOptions(ca=data))
        assert len(ctx.get_ca_certs()) == 1


class TestInspect:
    """inspect() reports an unreadable field as a finding, and describes what it can."""

    def test_duplicate_extension(self, leaf: devca.IssuedCertificate, duplicated: bytes) -> None:
        result = securelink.inspect(duplicated)
        assert result.codes() == ("unreadable-field",)
        (cert,) = result.certificates
        assert cert.subject == subject_of(leaf.certificate)
        assert cert.common_name == CN
        assert cert.key_type == "EC"
        assert cert.dns_names == ()  # the extensions could not be read
        (finding,) = result.findings
        assert finding.severity == "error"
        assert finding.index == 0
        assert "its extensions: Duplicate 2.5.29.14 extension found" in finding.message
        assert "[ERROR] unreadable-field" in str(result)
        json.dumps(result.to_dict())

    def test_unreadable_subject(self, leaf: devca.IssuedCertificate) -> None:
        result = securelink.inspect(bad_subject(leaf.certificate))
        assert result.codes() == ("unreadable-field",)
        (cert,) = result.certificates
        assert cert.subject == "(unreadable subject)"
        assert cert.common_name is None
        assert cert.dns_names == ("localhost",)
        assert cert.title == "localhost"

    def test_ca_key_off_its_curve(self, root: devca.CertificateAuthority) -> None:
        result = securelink.inspect(off_curve(root.certificate))
        assert result.codes() == ("unreadable-field",)
        (cert,) = result.certificates
        assert (cert.key_type, cert.key_size, cert.public_key_sha256) == ("unknown", None, "")
        assert cert.is_ca
        assert "its public key: the key is invalid" in result.findings[0].message

    def test_left_out_of_the_chain(self, root: devca.CertificateAuthority) -> None:
        inter = root.intermediate(common_name="fuzz test intermediate 2")
        issued = inter.issue("localhost")
        data = pem(issued.certificate) + as_pem(patch(der(inter.certificate), AKI, SKI))
        data += key_pem(issued.private_key)
        result = securelink.inspect(data)
        # One readable certificate is no chain, and the key still finds its certificate.
        assert result.chain is None
        assert result.codes() == ("unreadable-field",)
        assert result.findings[0].index == 1
        assert result.private_keys[0].certificate == 0

    def test_csr_with_unknown_key_algorithm(self) -> None:
        request = devca.create_csr("csr.test")
        data = patch(
            base64.b64decode(b"".join(request.csr_pem.splitlines()[1:-1])),
            EC_PUBLIC_KEY,
            UNKNOWN_KEY,
        )
        result = securelink.inspect(data)
        (obj,) = result.objects
        assert type(obj) is OtherObject
        assert obj.description == "a certificate request whose fields cannot be read"
        assert result.codes() == ("unreadable-field",)
        assert "its public key: its algorithm is not supported" in result.findings[0].message


class TestPeerCertificates:
    """Certificates a peer sent are described, or left out, never raised from."""

    def test_summary_without_names(self, leaf: devca.IssuedCertificate, duplicated: bytes) -> None:
        summary = CertificateSummary.from_der(duplicated)
        assert summary.subject == subject_of(leaf.certificate)
        assert summary.names == ()
        assert summary.is_ca is False

    def test_summary_of_unreadable_subject(self, leaf: devca.IssuedCertificate) -> None:
        with pytest.raises(ValueError, match="the certificate's subject cannot be read") as info:
            CertificateSummary.from_der(bad_subject(leaf.certificate))
        assert type(info.value) is ValueError

    def test_summaries_skip_what_cannot_be_read(self, leaf: devca.IssuedCertificate) -> None:
        good = der(leaf.certificate)
        summaries = _summaries([bad_subject(leaf.certificate), good, b"not a certificate"])
        assert [s.sha256 for s in summaries] == [CertificateSummary.from_der(good).sha256]

    def test_peer_identity(self, duplicated: bytes) -> None:
        with pytest.raises(ValueError, match="the leaf certificate's extensions cannot be read"):
            PeerIdentity.from_chain([duplicated])

    def test_explained_over_a_real_handshake(
        self, root: devca.CertificateAuthority, tmp_path: Path
    ) -> None:
        """A server sends an intermediate whose extensions cryptography cannot read.

        OpenSSL loads it as a chain certificate (it refuses such a leaf), so the stdlib's server
        serves it; the client's explanation summarises the chain without raising from it.
        """
        inter = root.intermediate(common_name="fuzz duplicated intermediate")
        issued = inter.issue("localhost")
        duplicated = patch(der(inter.certificate), AKI, SKI)
        chain_file = tmp_path / "chain.pem"
        chain_file.write_bytes(pem(issued.certificate) + as_pem(duplicated) + issued.key_pem)
        server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server.load_cert_chain(chain_file)
        client = securelink.client_context(ClientOptions(ca=root.cert_pem))
        with tls_server(server) as (port, _served):
            side = tls_client(client, port)
        e = side.error
        assert type(e) is UnknownAuthorityError, repr(e)
        assert [c.subject for c in e.chain] == [
            subject_of(issued.certificate),
            subject_of(inter.certificate),
        ]
        assert e.chain[1].names == ()
        assert e.chain[1].is_ca is False  # its basicConstraints could not be read

    def test_peer_identity_over_a_real_handshake(
        self, root: devca.CertificateAuthority, tmp_path: Path
    ) -> None:
        """A verified server certificate whose AIA extension cryptography cannot parse.

        OpenSSL does not read the extension to verify, so the handshake succeeds; the identity
        cannot be told, and peer_identity() says so with its own error.
        """
        key = ec.generate_private_key(ec.SECP256R1())
        ski = root.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "aia.test")]))
            .issuer_name(root.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski.value),
                critical=False,
            )
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
            .add_extension(  # authorityInfoAccess holding a NULL instead of a SEQUENCE
                x509.UnrecognizedExtension(ExtensionOID.AUTHORITY_INFORMATION_ACCESS, b"\x05\x00"),
                critical=False,
            )
            .sign(root.private_key, hashes.SHA256())
        )
        chain_file = tmp_path / "aia.pem"
        chain_file.write_bytes(pem(cert) + key_pem(key))
        server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server.load_cert_chain(chain_file)
        client = securelink.client_context(ClientOptions(ca=root.cert_pem))
        with (
            tls_server(server) as (port, served),
            socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as raw,
            client.wrap_socket(raw, server_hostname="localhost") as tls,
        ):
            with pytest.raises(IdentityUnavailableError) as info:
                securelink.peer_identity(tls)
            tls.sendall(b"ping")
            assert tls.recv(4) == b"pong"
        assert served.error is None
        e = info.value
        assert type(e) is IdentityUnavailableError
        assert e.problem == "unreadable-certificate"
        assert "the leaf certificate's extensions cannot be read" in e.message
        # Our own loaders refuse the same certificate before any connection.
        with pytest.raises(CertificateProblemError) as refused:
            securelink.server_context(ServerOptions(cert=pem(cert), key=key_pem(key)))
        assert refused.value.problem == "unreadable-field"


SEED = 20261207
COUNT = 500


def test_fuzz_only_documented_exceptions() -> None:
    """Mutated PEM, DER and PKCS#12 through the options, the contexts and inspect."""
    corpus = fuzzing.corpus()
    foreign = []
    errors: dict[str | None, int] = {}
    for n, seed, data in fuzzing.inputs(corpus, SEED, COUNT):
        for outcome in fuzzing.run_one(seed, data, corpus):
            errors[outcome.error] = errors.get(outcome.error, 0) + 1
            if outcome.foreign:
                foreign.append(
                    f"input {n} ({seed.name} -> {outcome.target}): {outcome.detail}\n"
                    f"    replay: fuzzing.run_one(<seed {seed.name}>, base64.b64decode("
                    f"{fuzzing.encode(data)!r}), corpus)"
                )
    assert not foreign, "\n".join(foreign)
    # The run reached past the first checks: some inputs still worked, and some were refused
    # for a field that could not be read.
    assert errors.get(None, 0) > 0
    assert errors.get("CertificateProblemError", 0) > 0
    assert errors.get("MaterialError", 0) > 0
