"""Input an attacker controls: every input has a size limit, and parsing it is linear.

The size limit (``MAX_INPUT_SIZE``) is checked for every loading path, before anything is
parsed.  Floods of PEM BEGIN lines without END lines and long out-of-order chains used to take
quadratic time; here they are given at sizes the old code still finished, and the outcome is
checked (how long they take is measured in bench/bench_parsing.py, not asserted here).
"""

from __future__ import annotations

import datetime
import os
import random
import re
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

import securelink
from securelink import (
    MAX_INPUT_SIZE,
    PKCS12,
    ClientAuth,
    ClientOptions,
    InputTooLargeError,
    MaterialError,
    ServerOptions,
    client_context,
    inspect,
    server_context,
)
from securelink._material import _order_chain, _pem_blocks
from securelink.devca import CertificateAuthority, IssuedCertificate

NOW = datetime.datetime.now(datetime.UTC)
LIMIT_TEXT = f"{MAX_INPUT_SIZE:,} bytes (16 MiB) that securelink reads from one input"


def write(path: Path, data: bytes, mode: int = 0o600) -> str:
    path.write_bytes(data)
    path.chmod(mode)
    return str(path)


def sparse(path: Path, size: int) -> str:
    """A file of *size* bytes that takes no disk space (and must never be read)."""
    with open(path, "wb") as f:
        f.truncate(size)
    path.chmod(0o600)
    return str(path)


def name(text: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])


def ca_cert(
    subject: str, issuer: str, key: ec.EllipticCurvePrivateKey, signer: Any = None
) -> x509.Certificate:
    """A CA certificate that inspect finds nothing wrong with.

    Certificates that share one *key* make long chains cheap to build.
    """
    signer = signer or key
    usage = x509.KeyUsage(
        digital_signature=False,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key())
    return (
        x509.CertificateBuilder()
        .subject_name(name(subject))
        .issuer_name(name(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - datetime.timedelta(days=1))
        .not_valid_after(NOW + datetime.timedelta(days=400))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(ski, critical=False)
        .add_extension(aki, critical=False)
        .sign(signer, hashes.SHA256())
    )


def pem(*certs: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


@pytest.fixture(scope="module")
def chain_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def long_chain(key: ec.EllipticCurvePrivateKey, n: int) -> list[x509.Certificate]:
    """Root first: certificate i is issued by certificate i - 1 (all with one key)."""
    return [ca_cert("Chain 0", "Chain 0", key)] + [
        ca_cert(f"Chain {i}", f"Chain {i - 1}", key) for i in range(1, n)
    ]


# ---------------------------------------------------------------------------------------------
# The size limit


def too_large_message(label: str, size: int | None, what: str) -> str:
    length = f"{size:,} bytes long, larger" if size is not None else "longer"
    return f"{label} is {length} than the {LIMIT_TEXT}; it was given as the {what}."


class TestSizeLimit:
    """One input larger than MAX_INPUT_SIZE is refused before it is parsed, on every path."""

    def test_limit(self) -> None:
        """The documented limit: 16 MiB, exported from securelink."""
        assert securelink.MAX_INPUT_SIZE == 16 * 1024 * 1024
        assert issubclass(InputTooLargeError, MaterialError)
        assert securelink.errors.InputTooLargeError is InputTooLargeError

    def check(self, exc: BaseException, source: str, size: int | None, what: str) -> None:
        assert type(exc) is InputTooLargeError
        assert (exc.source, exc.size, exc.limit, exc.found) == (
            source,
            size,
            MAX_INPUT_SIZE,
            None,
        )
        label = source[0].upper() + source[1:] if source.startswith("the ") else source
        assert exc.message == too_large_message(label, size, what)
        assert "real certificate bundles are far smaller" in exc.hint

    def test_cert_bytes(self, server_cert: IssuedCertificate) -> None:
        """cert= as bytes one byte over the limit."""
        with pytest.raises(InputTooLargeError) as info:
            server_context(
                ServerOptions(cert=b"x" * (MAX_INPUT_SIZE + 1), key=server_cert.key_pem),
                shared=False,
            )
        self.check(info.value, "the in-memory certificate", MAX_INPUT_SIZE + 1, "certificate")

    def test_exactly_the_limit_is_read(self, server_cert: IssuedCertificate) -> None:
        """An input of exactly MAX_INPUT_SIZE bytes is read (and refused for what it holds)."""
        with pytest.raises(MaterialError) as info:
            server_context(
                ServerOptions(cert=b"x" * MAX_INPUT_SIZE, key=server_cert.key_pem), shared=False
            )
        assert type(info.value) is MaterialError
        assert (info.value.source, info.value.found) == ("the in-memory certificate", "unknown")

    def test_cert_path(self, tmp_path: Path, server_cert: IssuedCertificate) -> None:
        """cert= as a path: refused from the file's size (a sparse 4x-limit file is not read)."""
        path = sparse(tmp_path / "huge.pem", 4 * MAX_INPUT_SIZE)
        with pytest.raises(InputTooLargeError) as info:
            server_context(ServerOptions(cert=path, key=server_cert.key_pem), shared=False)
        self.check(info.value, path, 4 * MAX_INPUT_SIZE, "certificate")

    def test_key_bytes(self, server_cert: IssuedCertificate) -> None:
        """key= as bytes."""
        with pytest.raises(InputTooLargeError) as info:
            server_context(
                ServerOptions(cert=server_cert.chain_pem, key=b"\n" * (MAX_INPUT_SIZE + 7)),
                shared=False,
            )
        self.check(info.value, "the in-memory key", MAX_INPUT_SIZE + 7, "private key")

    def test_key_path(self, tmp_path: Path, server_cert: IssuedCertificate) -> None:
        """key= as a path."""
        path = sparse(tmp_path / "huge.key", MAX_INPUT_SIZE + 1)
        with pytest.raises(InputTooLargeError) as info:
            server_context(ServerOptions(cert=server_cert.chain_pem, key=path), shared=False)
        self.check(info.value, path, MAX_INPUT_SIZE + 1, "private key")

    def test_ca_bytes(self) -> None:
        """ca= as bytes."""
        with pytest.raises(InputTooLargeError) as info:
            client_context(ClientOptions(ca=b"-" * (MAX_INPUT_SIZE + 1)), shared=False)
        self.check(info.value, "the in-memory CA", MAX_INPUT_SIZE + 1, "CA")

    def test_ca_path(self, tmp_path: Path) -> None:
        """ca= as a path."""
        path = sparse(tmp_path / "huge-ca.pem", 2 * MAX_INPUT_SIZE)
        with pytest.raises(InputTooLargeError) as info:
            client_context(ClientOptions(ca=path), shared=False)
        self.check(info.value, path, 2 * MAX_INPUT_SIZE, "CA")

    def test_ca_directory_entry(self, tmp_path: Path, ca: CertificateAuthority) -> None:
        """A file in a CA directory is one input, and is limited like any other."""
        write(tmp_path / "a-good.pem", ca.cert_pem)
        path = sparse(tmp_path / "b-huge.pem", MAX_INPUT_SIZE + 1)
        with pytest.raises(InputTooLargeError) as info:
            client_context(ClientOptions(ca=str(tmp_path)), shared=False)
        self.check(info.value, path, MAX_INPUT_SIZE + 1, "CA")

    def test_client_ca(self, tmp_path: Path, server_cert: IssuedCertificate) -> None:
        """client_ca= as a path and as bytes."""
        path = sparse(tmp_path / "huge-client-ca.pem", MAX_INPUT_SIZE + 1)
        for source, label in (
            (path, path),
            (b"\0" * (MAX_INPUT_SIZE + 1), "the in-memory client CA"),
        ):
            with pytest.raises(InputTooLargeError) as info:
                server_context(
                    ServerOptions(
                        cert=server_cert.chain_pem,
                        key=server_cert.key_pem,
                        client_auth=ClientAuth.REQUIRE_AND_VERIFY,
                        client_ca=source,
                    ),
                    shared=False,
                )
            self.check(info.value, label, MAX_INPUT_SIZE + 1, "client CA")

    def test_pkcs12(self, tmp_path: Path) -> None:
        """A PKCS#12 bundle as a path and as bytes."""
        path = sparse(tmp_path / "huge.p12", MAX_INPUT_SIZE + 1)
        big = b"0" * (MAX_INPUT_SIZE + 1)
        for source, label in ((path, path), (big, "the in-memory PKCS#12 bundle")):
            with pytest.raises(InputTooLargeError) as info:
                server_context(ServerOptions(cert=PKCS12(source), password="x"), shared=False)
            self.check(info.value, label, MAX_INPUT_SIZE + 1, "PKCS#12 bundle")

    def test_inspect(self, tmp_path: Path) -> None:
        """inspect() raises it like its other unreadable-input errors (path, bytes, bytearray)."""
        path = sparse(tmp_path / "huge.pem", MAX_INPUT_SIZE + 1)
        big = b"-----BEGIN CERTIFICATE-----\n" * (MAX_INPUT_SIZE // 28 + 1)
        cases: list[tuple[str | bytes, str, int]] = [
            (path, path, MAX_INPUT_SIZE + 1),
            (big, "the in-memory input", len(big)),
        ]
        for source, label, size in cases:
            with pytest.raises(InputTooLargeError) as info:
                inspect(source)
            self.check(info.value, label, size, "certificate or key")

    @pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
    def test_endless_stream(self) -> None:
        """A file that is not a regular file is read only up to the limit: size unknown."""
        with pytest.raises(InputTooLargeError) as info:
            inspect("/dev/zero")
        self.check(info.value, "/dev/zero", None, "certificate or key")


# ---------------------------------------------------------------------------------------------
# PEM floods


FLOOD = b"-----BEGIN CERTIFICATE-----\n" * 2000


def truncated(label: str, missing: str = "CERTIFICATE") -> str:
    return f"{label} is truncated PEM: a '-----BEGIN {missing}-----' line has no matching END line."


class TestPEMFloods:
    """BEGIN lines without END lines are reported as truncated PEM, on every path."""

    def check(self, exc: BaseException, label: str, missing: str = "CERTIFICATE") -> None:
        assert type(exc) is MaterialError
        assert (exc.source, exc.found) == (label, missing)
        assert exc.message == truncated(label[0].upper() + label[1:], missing)

    def test_inspect(self) -> None:
        """The issue's repro, at 2,000 lines."""
        with pytest.raises(MaterialError) as info:
            inspect(FLOOD)
        self.check(info.value, "the in-memory input")

    def test_inspect_path(self, tmp_path: Path) -> None:
        """The same from a file."""
        path = write(tmp_path / "flood.pem", FLOOD)
        with pytest.raises(MaterialError) as info:
            inspect(path)
        self.check(info.value, path)

    def test_cert_key_ca(self, server_cert: IssuedCertificate) -> None:
        """cert=, key=, ca= and client_ca= all report the first BEGIN line left without END."""
        flood = b"-----BEGIN PRIVATE KEY-----\n" * 2000
        with pytest.raises(MaterialError) as info:
            server_context(ServerOptions(cert=FLOOD, key=server_cert.key_pem), shared=False)
        self.check(info.value, "the in-memory certificate")
        with pytest.raises(MaterialError) as info:
            server_context(ServerOptions(cert=server_cert.chain_pem, key=flood), shared=False)
        self.check(info.value, "the in-memory key", "PRIVATE KEY")
        with pytest.raises(MaterialError) as info:
            client_context(ClientOptions(ca=FLOOD), shared=False)
        self.check(info.value, "the in-memory CA")
        with pytest.raises(MaterialError) as info:
            server_context(
                ServerOptions(
                    cert=server_cert.chain_pem,
                    key=server_cert.key_pem,
                    client_auth=ClientAuth.REQUIRE_AND_VERIFY,
                    client_ca=FLOOD,
                ),
                shared=False,
            )
        self.check(info.value, "the in-memory client CA")

    def test_after_valid_blocks(self, ca: CertificateAuthority) -> None:
        """Valid blocks first, then the flood: the first BEGIN line without END is named."""
        data = ca.cert_pem * 3 + b"-----BEGIN X509 CRL-----\n" + FLOOD
        with pytest.raises(MaterialError) as info:
            inspect(data)
        self.check(info.value, "the in-memory input", "X509 CRL")

    def test_flood_before_a_valid_block(self, ca: CertificateAuthority) -> None:
        """The flood swallows the block after it, as before: 2,001 BEGIN lines, one END."""
        with pytest.raises(MaterialError) as info:
            inspect(FLOOD + ca.cert_pem)
        self.check(info.value, "the in-memory input")

    def test_mixed_labels(self, ca: CertificateAuthority) -> None:
        """A BEGIN line of another kind before an END line is corrupt PEM, as before."""
        with pytest.raises(MaterialError) as info:
            inspect(b"-----BEGIN PRIVATE KEY-----\n" * 2000 + ca.cert_pem)
        assert type(info.value) is MaterialError
        assert info.value.found == "PRIVATE KEY"
        assert info.value.message == (
            "The in-memory input is corrupt PEM: a 'PRIVATE KEY' block ends with an"
            " 'CERTIFICATE' line."
        )

    def test_large_valid_bundle(self, chain_key: ec.EllipticCurvePrivateKey) -> None:
        """2,000 self-signed CA certificates load as ca= and inspect in full."""
        roots = [ca_cert(f"Root {i}", f"Root {i}", chain_key) for i in range(2000)]
        data = pem(*roots)
        client_context(ClientOptions(ca=data), shared=False)
        result = inspect(data)
        assert [c.subject for c in result.certificates] == [f"CN=Root {i}" for i in range(2000)]
        assert result.chain is None
        assert result.findings == ()


# The splitter before it was made linear, kept as the reference for what it must return.
_OLD_BLOCK = re.compile(
    rb"-----BEGIN ([A-Z0-9 ]+)-----\r?\n(.*?)-----END ([A-Z0-9 ]+)-----", re.DOTALL
)
_OLD_BEGIN = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----")


def old_split(data: bytes) -> object:
    begins = _OLD_BEGIN.findall(data)
    if not begins:
        return None
    blocks = []
    for match in _OLD_BLOCK.finditer(data):
        if match.group(1) != match.group(3):
            return ("corrupt", match.group(1).decode(), match.group(3).decode())
        blocks.append((match.group(1).decode(), match.group(0)))
    if len(blocks) < len(begins):
        return ("truncated", begins[len(blocks)].decode())
    return blocks


def new_split(data: bytes) -> object:
    try:
        blocks = _pem_blocks(data, "x")
    except MaterialError as exc:
        if "truncated" in exc.message:
            return ("truncated", exc.found)
        end = re.search(r"ends with an '(.*)' line", exc.message)
        assert end is not None
        return ("corrupt", exc.found, end.group(1))
    return None if blocks is None else [(b.label, b.pem) for b in blocks]


def test_splitter_agrees_with_the_old_one() -> None:
    """The linear splitter returns what the quadratic regex did, on 20,000 tricky inputs."""
    pieces = [
        b"-----BEGIN A-----\n",
        b"-----BEGIN B-----\r\n",
        b"-----BEGIN A-----",
        b"-----END A-----",
        b"-----END B-----",
        b"-----END A-----END B-----",
        b"-----BEGIN A-----END A-----\n",
        b"MIIB\n",
        b"\n",
        b"-----",
        b"BEGIN ",
        b"END ",
        b"A",
    ]
    rng = random.Random(9)  # noqa: S311 - reproducible inputs, not secrets
    outcomes = set()
    for _ in range(20_000):
        data = b"".join(rng.choice(pieces) for _ in range(rng.randint(0, 9)))
        old = old_split(data)
        assert new_split(data) == old, data
        outcomes.add(type(old).__name__ if not isinstance(old, tuple) else old[0])
    assert outcomes == {"NoneType", "list", "truncated", "corrupt"}


# ---------------------------------------------------------------------------------------------
# Chain ordering


class TestChainOrdering:
    """Long out-of-order chains are put in order (inspect) or walked (PKCS#12) in full."""

    def test_inspect_suggests_the_order(self, chain_key: ec.EllipticCurvePrivateKey) -> None:
        """1,000 certificates, shuffled: the suggested order is leaf first, then each issuer."""
        chain = long_chain(chain_key, 1000)
        shuffled = chain[:]
        random.Random(4).shuffle(shuffled)  # noqa: S311 - a reproducible order
        result = inspect(pem(*shuffled))
        assert result.chain is not None
        position = {cert: i for i, cert in enumerate(shuffled)}
        expected = tuple(position[c] for c in reversed(chain))
        assert (result.chain.in_order, result.chain.suggested_order) == (False, expected)
        assert result.codes() == ("chain-out-of-order",)

    def test_inspect_in_order(self, chain_key: ec.EllipticCurvePrivateKey) -> None:
        """The same 1,000 in order (leaf first): no finding."""
        chain = long_chain(chain_key, 1000)
        result = inspect(pem(*reversed(chain)))
        assert result.chain is not None
        assert (result.chain.in_order, result.chain.broken_at) == (True, None)
        assert result.findings == ()

    def test_pkcs12_chain_is_walked(
        self, chain_key: ec.EllipticCurvePrivateKey, ca: CertificateAuthority
    ) -> None:
        """A bundle with 500 intermediates in random order: the leaf's chain, in order."""
        chain = long_chain(chain_key, 500)
        leaf_key = ec.generate_private_key(ec.SECP256R1())
        leaf = (
            x509.CertificateBuilder()
            .subject_name(name("leaf.test"))
            .issuer_name(chain[-1].subject)
            .public_key(leaf_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(NOW - datetime.timedelta(days=1))
            .not_valid_after(NOW + datetime.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("leaf.test")]), critical=False)
            .sign(chain_key, hashes.SHA256())
        )
        others = chain[:]
        random.Random(7).shuffle(others)  # noqa: S311 - a reproducible order
        bundle = pkcs12.serialize_key_and_certificates(
            b"leaf", leaf_key, leaf, others, serialization.NoEncryption()
        )
        result = inspect(bundle)
        subjects = [c.subject for c in result.certificates]
        # The root is not sent, so it comes after the walked chain, with the rest as given.
        assert subjects[:500] == ["CN=leaf.test"] + [f"CN=Chain {i}" for i in range(499, 0, -1)]
        assert subjects[500:] == ["CN=Chain 0"]
        server_context(ServerOptions(cert=PKCS12(bundle)), shared=False)


class TestKeyAndCRLMatching:
    """Keys, public keys and CRLs are matched to certificates through indexes."""

    def test_key_finds_its_certificate(self) -> None:
        """A key is matched to its certificate among 40; a stranger's lists at most ten."""
        keys = [ec.generate_private_key(ec.SECP256R1()) for _ in range(40)]
        certs = [ca_cert(f"Root {i}", f"Root {i}", k) for i, k in enumerate(keys)]
        key_pem = keys[37].private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        public_pem = (
            keys[12]
            .public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        result = inspect(pem(*certs) + key_pem + public_pem)
        assert (result.private_keys[0].match, result.private_keys[0].certificate) == (
            "matched",
            37,
        )
        assert result.public_keys[0].certificate == 12
        stranger = ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        mismatch = inspect(pem(*certs) + stranger)
        (finding,) = [f for f in mismatch.findings if f.code == "key-mismatch"]
        assert (
            "belongs to none of the certificates given with it (#1, #2, #3, #4, #5, #6, #7, #8,"
            " #9, #10 and 30 more)." in finding.message
        )

    def test_crl_finds_its_issuer(self) -> None:
        """A CRL is matched to its issuer among 40 certificates."""
        keys = [ec.generate_private_key(ec.SECP256R1()) for _ in range(40)]
        certs = [ca_cert(f"Root {i}", f"Root {i}", k) for i, k in enumerate(keys)]
        crl = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(name("Root 25"))
            .last_update(NOW - datetime.timedelta(hours=1))
            .next_update(NOW + datetime.timedelta(days=1))
            .sign(keys[25], hashes.SHA256())
        )
        result = inspect(pem(*certs) + crl.public_bytes(serialization.Encoding.PEM))
        assert (result.crls[0].issuer_certificate, result.crls[0].signature_valid) == (25, True)

    def test_issuers_of_one_name_are_bounded(self, chain_key: ec.EllipticCurvePrivateKey) -> None:
        """Only the first 8 certificates of the issuer's name are tried for a CRL (or chain).

        A crafted input of thousands of certificates sharing one name would otherwise cost a
        signature check per pair; a real input has one, or a few for a renewed CA.
        """
        impostors = [
            ca_cert("Shared", "Shared", ec.generate_private_key(ec.SECP256R1())) for _ in range(8)
        ]
        real = ca_cert("Shared", "Shared", chain_key)
        crl = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(name("Shared"))
            .last_update(NOW - datetime.timedelta(hours=1))
            .next_update(NOW + datetime.timedelta(days=1))
            .sign(chain_key, hashes.SHA256())
            .public_bytes(serialization.Encoding.PEM)
        )
        found = inspect(pem(*impostors[:7], real) + crl).crls[0]
        assert (found.issuer_certificate, found.signature_valid) == (7, True)
        hidden = inspect(pem(*impostors, real) + crl)
        assert (hidden.crls[0].issuer_certificate, hidden.crls[0].signature_valid) == (7, False)
        assert "invalid-signature" in hidden.codes()


def old_order_chain(
    leaf: x509.Certificate, others: list[x509.Certificate]
) -> list[x509.Certificate]:
    """The PKCS#12 chain walk before it used an index (quadratic), as the reference."""
    ordered: list[x509.Certificate] = []
    current = leaf
    remaining = list(others)
    while remaining:
        parent = next((c for c in remaining if c.subject == current.issuer), None)
        if parent is None or parent.subject == parent.issuer:
            break
        ordered.append(parent)
        remaining.remove(parent)
        current = parent
    return ordered


def test_chain_walk_agrees_with_the_old_one(chain_key: ec.EllipticCurvePrivateKey) -> None:
    """The indexed walk returns what the old one did: duplicates, loops, roots, strangers."""
    pool = [ca_cert(f"N{s}", f"N{i}", chain_key) for s in range(5) for i in range(5)]
    rng = random.Random(3)  # noqa: S311 - reproducible inputs, not secrets
    lengths = set()
    for _ in range(3000):
        leaf = rng.choice(pool)
        others = [rng.choice(pool) for _ in range(rng.randint(0, 8))]
        expected = old_order_chain(leaf, others)
        assert _order_chain(leaf, others) == expected
        lengths.add(len(expected))
    assert max(lengths) >= 4  # long walks were exercised, not only trivial ones
