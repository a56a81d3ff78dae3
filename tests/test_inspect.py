"""securelink.inspect on a corpus of real files.

The corpus is made once per session: by :mod:`securelink.devca`, by the ``openssl`` command-line
tool (keys in every format, encrypted ones, DER, PKCS#12, CSRs, public keys, a SHA-1 certificate),
by ``cryptography`` where neither will make the flaw (no AKI, a CA without SKI, CRLs), and damaged
on purpose.  Where a value can be had independently (``openssl x509 -serial -fingerprint``, the
public key from ``openssl pkey -pubout``), the test compares against that.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import pickle
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from securelink import CertificateSummary, KeyPasswordError, MaterialError, devca
from securelink._inspect import (
    CertificateInfo,
    ChainInfo,
    CRLInfo,
    CSRInfo,
    Finding,
    Inspection,
    OtherObject,
    PrivateKeyInfo,
    PublicKeyInfo,
    inspect,
)
from securelink.errors import FrozenInstanceError

OPENSSL = shutil.which("openssl")
TIMEOUT = 10.0
PASSWORD = "correct horse"
NOW = datetime.datetime.now(datetime.UTC)
HOUR = datetime.timedelta(hours=1)
DAY = datetime.timedelta(days=1)
#: The DER of the P-256 curve OID: what `openssl ecparam -name prime256v1` writes.
EC_PARAMETERS = b"-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n"

needs_openssl = [
    pytest.mark.openssl,
    pytest.mark.skipif(OPENSSL is None, reason="the openssl command-line tool is missing"),
]


def colon_hex(data: bytes) -> str:
    """Return *data* as colon-separated upper-case hex, the form inspect() uses."""
    return data.hex(":").upper()


def spki_sha256(public_key: Any) -> str:
    """Return the SHA-256 of a public key's SubjectPublicKeyInfo, computed here: lower-case hex."""
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()


def even_hex(number: int) -> str:
    """Return *number* as upper-case hex with an even number of digits, as openssl prints it."""
    text = f"{number:X}"
    return "0" * (len(text) % 2) + text


def write(path: Path, data: bytes, mode: int = 0o600) -> Path:
    """Write *data* to *path* with *mode* (0600: key files do not get a readable-file finding)."""
    path.write_bytes(data)
    path.chmod(mode)
    return path


def openssl(*args: str | Path) -> bytes:
    """Run the openssl command line tool, bounded in time; return its standard output."""
    assert OPENSSL is not None
    result = subprocess.run(
        [OPENSSL, *map(str, args)], capture_output=True, timeout=TIMEOUT, check=False
    )
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    return result.stdout


def codes(result: Inspection, index: int | None = None) -> tuple[str, ...]:
    """The finding codes of the whole input, or of one object."""
    return tuple(f.code for f in result.findings if index is None or f.index == index)


# ---------------------------------------------------------------------------------------------
# The corpus


@dataclass
class DevCorpus:
    """Files made by securelink.devca and cryptography, and the objects behind them."""

    root: devca.CertificateAuthority
    intermediate: devca.CertificateAuthority
    leaf: devca.IssuedCertificate
    client: devca.IssuedCertificate
    files: dict[str, Path] = field(default_factory=dict)
    objects: dict[str, Any] = field(default_factory=dict)


def _sign(
    ca: devca.CertificateAuthority,
    builder: x509.CertificateBuilder,
) -> x509.Certificate:
    return builder.sign(ca.private_key, hashes.SHA256())


@pytest.fixture(scope="session")
def dev(tmp_path_factory: pytest.TempPathFactory) -> DevCorpus:
    """The devca and cryptography corpus."""
    d = tmp_path_factory.mktemp("inspect-devca")
    root = devca.CertificateAuthority(common_name="Inspect Root")
    intermediate = root.intermediate(common_name="Inspect Intermediate")
    leaf = intermediate.issue("localhost", "127.0.0.1", usage=devca.Usage.SERVER)
    client = root.issue("client.test", usage=devca.Usage.CLIENT)
    corpus = DevCorpus(root, intermediate, leaf, client)
    f = corpus.files
    f["chain_key"] = write(d / "chain-key.pem", leaf.chain_pem + leaf.key_pem)
    f["full_chain"] = write(d / "full-chain.pem", leaf.chain_pem + root.cert_pem)
    f["reversed"] = write(
        d / "reversed.pem",
        intermediate.cert_pem + leaf.cert_pem + leaf.key_pem,
    )
    f["unrelated"] = write(d / "unrelated.pem", leaf.cert_pem + client.cert_pem)
    f["ca_with_key"] = write(d / "ca-with-key.pem", root.cert_pem + root.key_pem)
    f["mismatch"] = write(d / "mismatch.pem", leaf.cert_pem + client.key_pem)
    other_root = devca.CertificateAuthority(common_name="Other Root")
    f["roots"] = write(d / "roots.pem", root.cert_pem + other_root.cert_pem)
    f["leaf_der"] = write(d / "leaf.der", leaf.certificate.public_bytes(serialization.Encoding.DER))
    f["p12"] = write(d / "devca.p12", leaf.pkcs12(PASSWORD))
    f["client"] = write(d / "client.pem", client.cert_pem)
    f["readable_key"] = write(d / "readable.key", leaf.key_pem, mode=0o644)
    f["other"] = write(
        d / "other.pem",
        EC_PARAMETERS
        + b"-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjE=\n"
        + b"-----END OPENSSH PRIVATE KEY-----\n"
        + b"-----BEGIN PKCS7-----\nMAA=\n-----END PKCS7-----\n",
    )

    expired = root.issue("expired.test", not_before=NOW - 30 * DAY, not_after=NOW - 2 * DAY + HOUR)
    f["expired"] = write(d / "expired.pem", expired.cert_pem)
    expiring = root.issue("soon.test", not_after=NOW + 10 * DAY + HOUR)
    f["expiring"] = write(d / "expiring.pem", expiring.cert_pem)
    future = root.issue("future.test", not_before=NOW + 2 * DAY + HOUR)
    f["future"] = write(d / "future.pem", future.cert_pem)

    # A leaf without an authority key identifier: devca always adds one.
    key = ec.generate_private_key(ec.SECP256R1())
    no_aki = _sign(
        root,
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "no-aki.test")]))
        .issuer_name(root.certificate.subject)
        .public_key(key.public_key())
        .serial_number(0x0ABC)
        .not_valid_before(NOW - DAY)
        .not_valid_after(NOW + 100 * DAY + HOUR)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("no-aki.test")]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False),
    )
    f["no_aki"] = write(d / "no-aki.pem", no_aki.public_bytes(serialization.Encoding.PEM))
    corpus.objects["no_aki"] = no_aki

    # A self-signed CA with neither subject key identifier nor key usage.
    bare_key = ec.generate_private_key(ec.SECP256R1())
    bare_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Bare CA")])
    bare = (
        x509.CertificateBuilder()
        .subject_name(bare_name)
        .issuer_name(bare_name)
        .public_key(bare_key.public_key())
        .serial_number(1)
        .not_valid_before(NOW - DAY)
        .not_valid_after(NOW + 365 * DAY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
        .sign(bare_key, hashes.SHA256())
    )
    f["bare_ca"] = write(d / "bare-ca.pem", bare.public_bytes(serialization.Encoding.PEM))

    crl = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(root.certificate.subject)
        .last_update(NOW - DAY)
        .next_update(NOW + 7 * DAY)
        .add_extension(x509.CRLNumber(7), critical=False)
        .add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(10).revocation_date(NOW - DAY).build()
        )
        .add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(11).revocation_date(NOW - DAY).build()
        )
        .sign(root.private_key, hashes.SHA256())
    )
    corpus.objects["crl"] = crl
    f["crl_with_ca"] = write(
        d / "crl-with-ca.pem", root.cert_pem + crl.public_bytes(serialization.Encoding.PEM)
    )
    f["crl_der"] = write(d / "crl.der", crl.public_bytes(serialization.Encoding.DER))
    stale = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(root.certificate.subject)
        .last_update(NOW - 10 * DAY)
        .next_update(NOW - DAY)
        .sign(root.private_key, hashes.SHA256())
    )
    # Signed by another CA of the same name: it does not verify against the root given.
    impostor = devca.CertificateAuthority(common_name="Inspect Root")
    forged = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(root.certificate.subject)
        .last_update(NOW - DAY)
        .next_update(NOW + DAY)
        .sign(impostor.private_key, hashes.SHA256())
    )
    f["stale_crl"] = write(d / "stale.crl", stale.public_bytes(serialization.Encoding.PEM))
    f["forged_crl"] = write(
        d / "forged.pem", root.cert_pem + forged.public_bytes(serialization.Encoding.PEM)
    )
    return corpus


@dataclass
class OpenSSLCorpus:
    """Files made by the openssl command-line tool."""

    files: dict[str, Path]
    #: (serial, SHA-256 fingerprint) as `openssl x509 -noout -serial -fingerprint -sha256` says.
    x509: dict[str, tuple[str, str]]
    #: The SHA-256 of each key's public key, from `openssl pkey -pubout -outform DER`.
    spki: dict[str, str]


@pytest.fixture(scope="session")
def ossl(tmp_path_factory: pytest.TempPathFactory, dev: DevCorpus) -> OpenSSLCorpus:
    """The openssl corpus; its CA is the devca root, written in minica's layout."""
    if OPENSSL is None:
        pytest.skip("the openssl command-line tool is missing")
    d = tmp_path_factory.mktemp("inspect-openssl")
    f: dict[str, Path] = {}
    ca, ca_key = (
        write(d / "minica.pem", dev.root.cert_pem),
        write(d / "minica-key.pem", dev.root.key_pem),
    )

    f["rsa"] = d / "rsa.key"
    openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", f["rsa"])
    f["ec"] = d / "ec.key"
    openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", f["ec"])
    f["rsa1024"] = d / "rsa1024.key"
    openssl(
        "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024", "-out", f["rsa1024"]
    )
    pw = f"pass:{PASSWORD}"
    steps: list[tuple[str, tuple[str | Path, ...]]] = [
        ("rsa_enc8", ("pkey", "-in", f["rsa"], "-aes256", "-passout", pw)),
        ("rsa_legacy", ("rsa", "-in", f["rsa"], "-aes256", "-traditional", "-passout", pw)),
        ("ec_legacy", ("ec", "-in", f["ec"], "-aes256", "-passout", pw)),
        ("rsa_pkcs1", ("rsa", "-in", f["rsa"], "-traditional")),
        ("ec_sec1", ("ec", "-in", f["ec"])),
        ("rsa_der", ("pkcs8", "-topk8", "-nocrypt", "-in", f["rsa"], "-outform", "DER")),
        ("rsa_pkcs1_der", ("rsa", "-in", f["rsa"], "-traditional", "-outform", "DER")),
        ("ec_sec1_der", ("ec", "-in", f["ec"], "-outform", "DER")),
        (
            "ec_enc8_der",
            ("pkcs8", "-topk8", "-in", f["ec"], "-v2", "aes256", "-outform", "DER", "-passout", pw),
        ),
        ("ec_pub", ("pkey", "-in", f["ec"], "-pubout")),
        ("ec_pub_der", ("pkey", "-in", f["ec"], "-pubout", "-outform", "DER")),
        ("rsa1024_pub", ("pkey", "-in", f["rsa1024"], "-pubout")),
        (
            "ec_csr",
            (
                "req", "-new", "-key", f["ec"], "-subj", "/CN=csr.test", "-addext",
                "subjectAltName=DNS:csr.test,IP:10.0.0.1,URI:spiffe://example.test/web,"
                "email:ops@example.test",
            ),
        ),
        ("cn_csr", ("req", "-new", "-key", f["ec"], "-subj", "/CN=cn-only.test")),
        (
            "rsa1024_csr",
            ("req", "-new", "-key", f["rsa1024"], "-subj", "/CN=weak.test", "-addext",
             "subjectAltName=DNS:weak.test"),
        ),
    ]  # fmt: skip
    for name, args in steps:
        f[name] = write(d / f"{name}.out", openssl(*args))
    f["ec_csr_der"] = write(d / "ec.csr.der", openssl("req", "-in", f["ec_csr"], "-outform", "DER"))

    leaf_ext = write(
        d / "leaf.ext",
        b"basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
        b"extendedKeyUsage=serverAuth\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n"
        b"subjectAltName=DNS:csr.test,IP:10.0.0.1\n",
    )
    cn_ext = write(
        d / "cn.ext",
        b"basicConstraints=critical,CA:FALSE\nsubjectKeyIdentifier=hash\n"
        b"authorityKeyIdentifier=keyid\n",
    )
    weak_ext = write(
        d / "weak.ext",
        b"basicConstraints=critical,CA:FALSE\nsubjectKeyIdentifier=hash\n"
        b"authorityKeyIdentifier=keyid\nsubjectAltName=DNS:weak.test\n",
    )
    sign = ("x509", "-req", "-CA", ca, "-CAkey", ca_key, "-days", "90")
    certs: list[tuple[str, tuple[str | Path, ...]]] = [
        ("leaf", ("-in", f["ec_csr"], "-set_serial", "0x1234ABCD", "-extfile", leaf_ext)),
        ("sha1", ("-in", f["ec_csr"], "-set_serial", "0x51", "-sha1", "-extfile", leaf_ext)),
        ("cn_only", ("-in", f["cn_csr"], "-set_serial", "0x0C", "-extfile", cn_ext)),
        ("rsa1024_cert", ("-in", f["rsa1024_csr"], "-set_serial", "0x1024", "-extfile", weak_ext)),
    ]
    x509_facts = {}
    for name, args in certs:
        f[name] = write(d / f"{name}.pem", openssl(*sign, *args))
        out = openssl("x509", "-in", f[name], "-noout", "-serial", "-fingerprint", "-sha256")
        lines = dict(line.split("=", 1) for line in out.decode().splitlines())
        x509_facts[name] = (lines["serial"], lines["sha256 Fingerprint"])
    f["leaf_der"] = write(d / "leaf.der", openssl("x509", "-in", f["leaf"], "-outform", "DER"))
    f["trusted"] = write(
        d / "trusted.pem",
        openssl("x509", "-in", f["leaf"], "-trustout", "-addtrust", "serverAuth"),
    )
    f["leaf_pub"] = write(d / "leaf-pub.pem", f["leaf"].read_bytes() + f["ec_pub"].read_bytes())
    f["leaf_key"] = write(
        d / "leaf-key.pem", f["ec"].read_bytes() + f["leaf"].read_bytes() + ca.read_bytes()
    )
    f["leaf_enc_key"] = write(
        d / "leaf-enc-key.pem", f["leaf"].read_bytes() + f["rsa_enc8"].read_bytes()
    )

    export = ("pkcs12", "-export", "-in", f["leaf"], "-inkey", f["ec"], "-certfile", ca)
    f["p12"] = write(d / "pw.p12", openssl(*export, "-passout", pw))
    f["p12_empty"] = write(d / "empty.p12", openssl(*export, "-passout", "pass:"))
    f["p12_plain"] = write(
        d / "plain.p12",
        openssl(*export, "-passout", "pass:", "-keypbe", "NONE", "-certpbe", "NONE", "-nomac"),
    )

    spki = {}
    for name in ("rsa", "ec", "rsa1024"):
        der = openssl("pkey", "-in", f[name], "-pubout", "-outform", "DER")
        spki[name] = hashlib.sha256(der).hexdigest()  # the form pin_public_keys takes
    for path in f.values():
        path.chmod(0o600)
    return OpenSSLCorpus(f, x509_facts, spki)


# ---------------------------------------------------------------------------------------------
# devca files


class TestDevcaChain:
    """A leaf, its intermediate and its key, as devca writes them."""

    def test_objects(self, dev: DevCorpus) -> None:
        """Two certificates and a key, in file order, with their kinds."""
        result = inspect(dev.files["chain_key"])
        assert str(dev.files["chain_key"]) == result.source
        assert result.format == "PEM"
        assert [CertificateInfo, CertificateInfo, PrivateKeyInfo] == [
            type(o) for o in result.objects
        ]
        assert [o.index for o in result.objects] == [0, 1, 2]
        assert result.objects[:2] == result.certificates
        assert result.objects[2:] == result.private_keys
        assert () == result.csrs == result.public_keys == result.crls

    def test_leaf_fields(self, dev: DevCorpus) -> None:
        """Every field of the leaf, against the certificate devca made."""
        cert = dev.leaf.certificate
        leaf = inspect(dev.files["chain_key"]).certificates[0]
        aki = dev.intermediate.certificate.extensions.get_extension_for_class(
            x509.SubjectKeyIdentifier
        ).value.digest
        expected = CertificateInfo(
            index=0,
            label="CERTIFICATE",
            subject=cert.subject.rfc4514_string(),
            common_name=None,
            issuer=dev.intermediate.certificate.subject.rfc4514_string(),
            dns_names=("localhost",),
            ip_addresses=("127.0.0.1",),
            uris=(),
            emails=(),
            not_before=cert.not_valid_before_utc,
            not_after=cert.not_valid_after_utc,
            days_left=leaf.days_left,
            serial=even_hex(cert.serial_number),
            key_type="EC",
            key_size=256,
            curve="P-256",
            signature_algorithm="ecdsa-with-SHA256",
            signature_hash="sha256",
            is_ca=False,
            path_length=None,
            key_usage=("digitalSignature",),
            extended_key_usage=("serverAuth",),
            sha256=colon_hex(cert.fingerprint(hashes.SHA256())),
            public_key_sha256=spki_sha256(cert.public_key()),
            self_signed=False,
            subject_key_id=colon_hex(
                x509.SubjectKeyIdentifier.from_public_key(cert.public_key()).digest
            ),
            authority_key_id=colon_hex(aki),
            findings=(),
        )
        assert expected == leaf
        # Rounded down, and the inspection was earlier than now: the same whole day.
        assert (cert.not_valid_after_utc - datetime.datetime.now(datetime.UTC)).days == (
            leaf.days_left
        )
        assert leaf.title == "localhost"
        assert leaf.names == ("localhost", "127.0.0.1")

    def test_intermediate_fields(self, dev: DevCorpus) -> None:
        """The intermediate is a CA with path length 0, issued by the root."""
        inter = inspect(dev.files["chain_key"]).certificates[1]
        assert inter.is_ca
        assert inter.path_length == 0
        assert "Inspect Intermediate" == inter.common_name == inter.title
        assert inter.issuer == "CN=Inspect Root,O=securelink development CA"
        assert inter.key_usage == ("digitalSignature", "keyCertSign", "cRLSign")
        assert inter.extended_key_usage is None
        assert not inter.self_signed
        assert inter.findings == ()

    def test_key_matches_leaf(self, dev: DevCorpus) -> None:
        """The key is unencrypted PKCS#8 and belongs to certificate 0."""
        key = inspect(dev.files["chain_key"]).private_keys[0]
        expected = PrivateKeyInfo(
            index=2,
            label="PRIVATE KEY",
            format="PKCS#8",
            encrypted=False,
            encryption=None,
            decrypted=True,
            key_type="EC",
            key_size=256,
            curve="P-256",
            public_key_sha256=spki_sha256(dev.leaf.private_key.public_key()),
            certificate=0,
            match="matched",
            findings=(),
        )
        assert expected == key

    def test_chain_in_order(self, dev: DevCorpus) -> None:
        """Leaf then intermediate is a chain in order, and there is nothing to fix."""
        result = inspect(dev.files["chain_key"])
        assert ChainInfo(
            certificates=(0, 1), in_order=True, broken_at=None, suggested_order=None
        ) == (result.chain)
        assert result.findings == ()

    def test_full_chain_with_root(self, dev: DevCorpus) -> None:
        """Leaf, intermediate and root: in order, the root self-signed."""
        result = inspect(dev.files["full_chain"])
        assert result.chain is not None and result.chain.in_order
        assert result.chain.certificates == (0, 1, 2)
        assert [c.self_signed for c in result.certificates] == [False, False, True]
        assert "itself" in str(result).split("#3 certificate")[1]
        assert codes(result) == ()

    def test_same_from_bytes(self, dev: DevCorpus) -> None:
        """Bytes are described like the file, under an in-memory label."""
        from_file = inspect(dev.files["chain_key"])
        from_bytes = inspect(dev.files["chain_key"].read_bytes())
        assert from_bytes.source == "the in-memory input"
        assert from_file.replace(source="the in-memory input") == from_bytes

    def test_der_certificate(self, dev: DevCorpus) -> None:
        """A DER certificate is one object, described as its PEM form would be."""
        result = inspect(dev.files["leaf_der"])
        assert result.format == "DER"
        assert inspect(dev.leaf.cert_pem).certificates == result.certificates
        assert result.chain is None

    def test_pkcs12(self, dev: DevCorpus) -> None:
        """Devca's PKCS#12 bundle opens with its password: leaf, intermediate, key."""
        result = inspect(dev.files["p12"], password=PASSWORD)
        assert result.format == "PKCS#12"
        assert [c.title for c in result.certificates] == ["localhost", "Inspect Intermediate"]
        key = result.private_keys[0]
        assert (
            key.format,
            key.encrypted,
            key.encryption,
            key.decrypted,
            key.match,
            key.certificate,
        ) == ("PKCS#12", True, "PKCS#12", True, "matched", 0)
        assert result.chain is not None and result.chain.in_order
        assert codes(result) == ()


class TestChainProblems:
    """Certificates out of order, unrelated ones, and a CA where the leaf belongs."""

    def test_reversed(self, dev: DevCorpus) -> None:
        """Intermediate before leaf: out of order, broken at 0, with the right order suggested."""
        result = inspect(dev.files["reversed"])
        assert ChainInfo(
            certificates=(0, 1), in_order=False, broken_at=0, suggested_order=(1, 0)
        ) == (result.chain)
        assert codes(result) == ("chain-out-of-order",)
        finding = result.findings[0]
        assert (
            Finding(
                code="chain-out-of-order",
                severity="error",
                message="The certificates are not in chain order: #1 (Inspect Intermediate) is"
                " followed by #2 (localhost), which did not issue it. Put them in the order #2, #1:"
                " the leaf first, then each one's issuer.",
                index=None,
            )
            == finding
        )
        assert result.private_keys[0].certificate == 1

    def test_unrelated(self, dev: DevCorpus) -> None:
        """Two leaves from different issuers form no chain, and no order is suggested."""
        result = inspect(dev.files["unrelated"])
        assert result.chain is not None
        assert (
            result.chain.in_order,
            result.chain.broken_at,
            result.chain.suggested_order,
        ) == (False, 0, None)
        assert codes(result) == ("no-server-auth", "chain-out-of-order")
        assert result.findings[0].index == 1
        assert "do not form one chain" in result.findings[1].message

    def test_ca_as_leaf(self, dev: DevCorpus) -> None:
        """A CA certificate first, with its own key: used as a leaf."""
        result = inspect(dev.files["ca_with_key"])
        assert codes(result) == ("ca-as-leaf",)
        assert result.findings[0].severity == "error"
        assert result.findings[0].index == 0
        assert result.chain is None  # one certificate: nothing to order
        assert result.private_keys[0].match == "matched"

    def test_ca_first_with_encrypted_key(self, dev: DevCorpus) -> None:
        """A CA certificate first with a key that cannot be opened is still taken as a leaf."""
        result = inspect(dev.root.cert_pem + dev.leaf.encrypted_key_pem(PASSWORD))
        assert codes(result) == ("ca-as-leaf", "password-required")

    def test_ca_first_with_unrelated_key(self, dev: DevCorpus) -> None:
        """A CA certificate first with a key for none of the certificates: a mismatch only."""
        result = inspect(dev.root.cert_pem + dev.client.key_pem)
        assert codes(result) == ("key-mismatch",)

    def test_roots_bundle_is_not_a_chain(self, dev: DevCorpus) -> None:
        """A bundle of self-signed roots is not checked as a chain."""
        result = inspect(dev.files["roots"])
        assert result.chain is None
        assert codes(result) == ()
        assert [c.is_ca and c.self_signed for c in result.certificates] == [True, True]

    def test_key_mismatch(self, dev: DevCorpus) -> None:
        """A key that belongs to none of the certificates given with it."""
        result = inspect(dev.files["mismatch"])
        key = result.private_keys[0]
        assert (key.match, key.certificate) == ("mismatch", None)
        assert codes(result) == ("key-mismatch",)
        assert (result.findings[0].index, result.findings[0].severity) == (1, "error")


class TestCertificateFindings:
    """Each flaw a certificate can have, alone in its file, gives exactly its finding."""

    def test_expired(self, dev: DevCorpus) -> None:
        """Expired 47 hours ago: days_left is -2 and the finding says when."""
        cert = inspect(dev.files["expired"]).certificates[0]
        assert cert.days_left == -2
        assert tuple(f.code for f in cert.findings) == ("expired",)
        assert "(47 hours ago)" in cert.findings[0].message

    def test_expiring_in_ten_days(self, dev: DevCorpus) -> None:
        """Ten days left is within the 30-day warning."""
        cert = inspect(dev.files["expiring"]).certificates[0]
        assert cert.days_left == 10
        assert tuple((f.code, f.severity) for f in cert.findings) == (("expires-soon", "warning"),)
        assert "in 10 days" in cert.findings[0].message

    def test_not_yet_valid(self, dev: DevCorpus) -> None:
        """A certificate that starts in two days."""
        result = inspect(dev.files["future"])
        assert codes(result) == ("not-yet-valid",)
        assert "(NOT YET VALID)" in str(result)

    def test_missing_aki(self, dev: DevCorpus) -> None:
        """A leaf without an authority key identifier (strict mode rejects it)."""
        cert = inspect(dev.files["no_aki"]).certificates[0]
        assert cert.authority_key_id is None
        assert cert.subject_key_id is not None
        assert cert.serial == "0ABC"
        assert tuple(f.code for f in cert.findings) == ("missing-aki",)
        assert "key ids     SKI yes, AKI MISSING" in str(inspect(dev.files["no_aki"]))

    def test_ca_without_ski_or_key_usage(self, dev: DevCorpus) -> None:
        """A self-signed CA without SKI and key usage: two strict-mode findings, no AKI one."""
        cert = inspect(dev.files["bare_ca"]).certificates[0]
        assert (
            cert.is_ca,
            cert.path_length,
            cert.self_signed,
            cert.subject_key_id,
            cert.key_usage,
        ) == (True, 1, True, None, None)
        assert tuple(f.code for f in cert.findings) == ("missing-ski", "ca-missing-key-usage")
        assert {"warning"} == {f.severity for f in cert.findings}

    def test_client_certificate(self, dev: DevCorpus) -> None:
        """A clientAuth-only leaf: a note that servers cannot use it, and no SAN demand."""
        cert = inspect(dev.files["client"]).certificates[0]
        assert cert.extended_key_usage == ("clientAuth",)
        assert tuple((f.code, f.severity) for f in cert.findings) == (("no-server-auth", "info"),)


class TestCRLs:
    """Certificate revocation lists made with cryptography."""

    def test_crl_with_its_ca(self, dev: DevCorpus) -> None:
        """Issuer, dates, number and revoked count; its signature checked against the CA."""
        crl = dev.objects["crl"]
        result = inspect(dev.files["crl_with_ca"])
        expected = CRLInfo(
            index=1,
            label="X509 CRL",
            issuer=dev.root.certificate.subject.rfc4514_string(),
            last_update=crl.last_update_utc,
            next_update=crl.next_update_utc,
            revoked_count=2,
            crl_number=7,
            signature_algorithm="ecdsa-with-SHA256",
            signature_hash="sha256",
            issuer_certificate=0,
            signature_valid=True,
            findings=(),
        )
        assert (expected,) == result.crls
        assert codes(result) == ()

    def test_der(self, dev: DevCorpus) -> None:
        """A DER CRL alone: its issuer's certificate is not there to check it."""
        result = inspect(dev.files["crl_der"])
        assert result.format == "DER"
        crl = result.crls[0]
        assert (crl.issuer_certificate, crl.signature_valid, crl.revoked_count) == (None, None, 2)

    def test_stale(self, dev: DevCorpus) -> None:
        """A CRL past its next update."""
        assert codes(inspect(dev.files["stale_crl"])) == ("stale-crl",)

    def test_forged(self, dev: DevCorpus) -> None:
        """A CRL signed by another key under its issuer's name does not verify."""
        result = inspect(dev.files["forged_crl"])
        crl = result.crls[0]
        assert (crl.issuer_certificate, crl.signature_valid) == (0, False)
        assert codes(result) == ("invalid-signature",)


class TestOtherBlocks:
    """PEM blocks that are not inspected are listed, not fatal."""

    def test_ec_parameters_and_openssh_key(self, dev: DevCorpus) -> None:
        """EC parameters pass silently; an OpenSSH key and a PKCS#7 bundle get a note."""
        result = inspect(dev.files["other"])
        assert [(o.label, tuple(f.code for f in o.findings)) for o in result.objects] == [
            ("EC PARAMETERS", ()),
            ("OPENSSH PRIVATE KEY", ("not-inspected",)),
            ("PKCS7", ("not-inspected",)),
        ]
        assert all(isinstance(o, OtherObject) for o in result.objects)
        assert "ssh-keygen -p -m PKCS8" in result.findings[0].message
        assert (
            result.findings[1].message
            == "Block #3 is a PKCS#7 bundle, which securelink does not look inside."
        )

    def test_readable_key_file(self, dev: DevCorpus) -> None:
        """A key file that group or others can read."""
        result = inspect(dev.files["readable_key"])
        assert codes(result) == ("readable-key-file",)
        assert "mode 0644" in result.findings[0].message
        assert codes(inspect(dev.files["readable_key"].read_bytes())) == ()


# ---------------------------------------------------------------------------------------------
# openssl files


class TestOpenSSLKeys:
    """Private keys written by openssl, in each format, encrypted and not."""

    pytestmark = needs_openssl

    @pytest.mark.parametrize(
        ("name", "label", "fmt", "source"),
        [
            ("rsa", "PRIVATE KEY", "PKCS#8", "rsa"),
            ("rsa_pkcs1", "RSA PRIVATE KEY", "PKCS#1", "rsa"),
            ("rsa_der", "PRIVATE KEY", "PKCS#8", "rsa"),
            ("rsa_pkcs1_der", "PRIVATE KEY", "PKCS#1", "rsa"),
            ("ec", "PRIVATE KEY", "PKCS#8", "ec"),
            ("ec_sec1", "EC PRIVATE KEY", "SEC1", "ec"),
            ("ec_sec1_der", "PRIVATE KEY", "SEC1", "ec"),
        ],
    )
    def test_plain(self, ossl: OpenSSLCorpus, name: str, label: str, fmt: str, source: str) -> None:
        """Unencrypted keys: type, size, format, and the public key openssl derives."""
        result = inspect(ossl.files[name])
        assert ("DER" if name.endswith("_der") else "PEM") == result.format
        kind, size, curve = ("RSA", 2048, None) if source == "rsa" else ("EC", 256, "P-256")
        assert (
            PrivateKeyInfo(
                index=0,
                label=label,
                format=fmt,
                encrypted=False,
                encryption=None,
                decrypted=True,
                key_type=kind,
                key_size=size,
                curve=curve,
                public_key_sha256=ossl.spki[source],
                certificate=None,
                match="no-certificate",
                findings=(),
            ),
        ) == result.objects

    def test_encrypted_pkcs8_without_password(self, ossl: OpenSSLCorpus) -> None:
        """Encrypted PKCS#8: listed, type unknown, match unknown, a password asked for."""
        key = inspect(ossl.files["rsa_enc8"]).private_keys[0]
        assert (
            key.label,
            key.format,
            key.encrypted,
            key.encryption,
            key.decrypted,
            key.key_type,
            key.key_size,
            key.public_key_sha256,
            key.match,
        ) == (
            "ENCRYPTED PRIVATE KEY",
            "encrypted PKCS#8",
            True,
            "PKCS#8",
            False,
            None,
            None,
            None,
            "unknown",
        )
        assert tuple((f.code, f.severity) for f in key.findings) == (("password-required", "info"),)
        assert key.title == "encrypted PKCS#8 (type unknown without the password)"

    def test_encrypted_pkcs8_with_password(self, ossl: OpenSSLCorpus) -> None:
        """With the password: decrypted, typed, no findings."""
        key = inspect(ossl.files["rsa_enc8"], password=PASSWORD).private_keys[0]
        assert (True, True, "RSA", 2048, ossl.spki["rsa"], ()) == (
            key.encrypted,
            key.decrypted,
            key.key_type,
            key.key_size,
            key.public_key_sha256,
            key.findings,
        )

    def test_encrypted_pkcs8_wrong_password(self, ossl: OpenSSLCorpus) -> None:
        """A wrong password is a finding, not an exception."""
        result = inspect(ossl.files["rsa_enc8"], password=b"wrong")
        assert tuple((f.code, f.severity) for f in result.findings) == (
            ("wrong-password", "error"),
        )
        assert "the password given does not decrypt it" in result.findings[0].message

    def test_encrypted_der(self, ossl: OpenSSLCorpus) -> None:
        """Encrypted PKCS#8 in DER, with a password callable."""
        key = inspect(ossl.files["ec_enc8_der"], password=lambda: PASSWORD).private_keys[0]
        assert ("ENCRYPTED PRIVATE KEY", "encrypted PKCS#8", "EC", ossl.spki["ec"]) == (
            key.label,
            key.format,
            key.key_type,
            key.public_key_sha256,
        )

    @pytest.mark.parametrize(("name", "kind"), [("rsa_legacy", "RSA"), ("ec_legacy", "EC")])
    def test_legacy_encryption(self, ossl: OpenSSLCorpus, name: str, kind: str) -> None:
        """Proc-Type: 4,ENCRYPTED: the type shows without the password; the scheme is weak."""
        key = inspect(ossl.files[name]).private_keys[0]
        assert (kind, None, "legacy PEM AES-256-CBC", "unknown") == (
            key.key_type,
            key.key_size,
            key.encryption,
            key.match,
        )
        assert tuple(f.code for f in key.findings) == ("password-required", "legacy-key-encryption")
        opened = inspect(ossl.files[name], password=PASSWORD).private_keys[0]
        assert (
            opened.decrypted,
            tuple(f.code for f in opened.findings),
        ) == (True, ("legacy-key-encryption",))

    def test_weak_rsa_key(self, ossl: OpenSSLCorpus) -> None:
        """RSA-1024."""
        key = inspect(ossl.files["rsa1024"]).private_keys[0]
        assert (
            key.key_type,
            key.key_size,
            tuple(f.code for f in key.findings),
        ) == ("RSA", 1024, ("weak-key",))


class TestOpenSSLCertificates:
    """Certificates that openssl signed with the devca root."""

    pytestmark = needs_openssl

    def test_leaf(self, ossl: OpenSSLCorpus) -> None:
        """Serial and fingerprint as openssl prints them; the CSR's key; no findings."""
        cert = inspect(ossl.files["leaf"]).certificates[0]
        assert ossl.x509["leaf"] == (cert.serial, cert.sha256)
        assert cert.serial == "1234ABCD"
        assert (
            "CN=csr.test",
            "csr.test",
            ("csr.test",),
            ("10.0.0.1",),
            ("serverAuth",),
            ossl.spki["ec"],
            (),
        ) == (
            cert.subject,
            cert.common_name,
            cert.dns_names,
            cert.ip_addresses,
            cert.extended_key_usage,
            cert.public_key_sha256,
            cert.findings,
        )
        assert cert.days_left == 89

    def test_der(self, ossl: OpenSSLCorpus) -> None:
        """Openssl's DER form reads as its PEM form."""
        assert inspect(ossl.files["leaf"]).objects == inspect(ossl.files["leaf_der"]).objects

    def test_trusted_certificate(self, ossl: OpenSSLCorpus) -> None:
        """`openssl x509 -trustout`: the certificate inside, its trust settings ignored."""
        [cert] = inspect(ossl.files["trusted"]).objects
        assert cert == inspect(ossl.files["leaf"]).objects[0].replace(label="TRUSTED CERTIFICATE")

    def test_sha1(self, ossl: OpenSSLCorpus) -> None:
        """`openssl x509 -req -sha1`: the signature is the only finding."""
        result = inspect(ossl.files["sha1"])
        cert = result.certificates[0]
        assert (
            cert.signature_algorithm,
            cert.signature_hash,
            cert.serial,
        ) == ("ecdsa-with-SHA1", "sha1", "51")
        assert ossl.x509["sha1"][1] == cert.sha256
        assert codes(result) == ("sha1-signature",)
        assert "signed with SHA-1" in result.findings[0].message

    def test_cn_only(self, ossl: OpenSSLCorpus) -> None:
        """A certificate with a Common Name and no SAN."""
        result = inspect(ossl.files["cn_only"])
        cert = result.certificates[0]
        assert (
            cert.common_name,
            cert.names,
            cert.uris,
            cert.serial,
        ) == ("cn-only.test", (), (), "0C")
        assert codes(result) == ("no-san",)
        assert "Common Name 'cn-only.test' is ignored" in result.findings[0].message
        assert "names       (no SubjectAltName)" in str(result)

    def test_rsa_1024(self, ossl: OpenSSLCorpus) -> None:
        """A certificate for an RSA-1024 key."""
        result = inspect(ossl.files["rsa1024_cert"])
        cert = result.certificates[0]
        assert ("RSA", 1024, None, ossl.spki["rsa1024"]) == (
            cert.key_type,
            cert.key_size,
            cert.curve,
            cert.public_key_sha256,
        )
        assert codes(result) == ("weak-key",)
        assert "1024-bit RSA key" in result.findings[0].message

    def test_key_then_chain(self, ossl: OpenSSLCorpus) -> None:
        """Key first, then leaf and root: the key belongs to object 1; the chain is in order."""
        result = inspect(ossl.files["leaf_key"])
        assert [o.kind for o in result.objects] == ["private-key", "certificate", "certificate"]
        key = result.private_keys[0]
        assert (key.match, key.certificate) == ("matched", 1)
        assert result.chain is not None and result.chain.certificates == (1, 2)
        assert result.chain.in_order
        assert codes(result) == ()

    def test_encrypted_key_with_certificate(self, ossl: OpenSSLCorpus) -> None:
        """An encrypted key next to a certificate: no mismatch is claimed until it is opened."""
        result = inspect(ossl.files["leaf_enc_key"])
        assert (
            result.private_keys[0].match,
            codes(result),
        ) == ("unknown", ("password-required",))
        opened = inspect(ossl.files["leaf_enc_key"], password=PASSWORD)
        assert (opened.private_keys[0].match, codes(opened)) == ("mismatch", ("key-mismatch",))

    def test_public_key_with_its_certificate(self, ossl: OpenSSLCorpus) -> None:
        """`openssl pkey -pubout` after the certificate: matched by public key."""
        result = inspect(ossl.files["leaf_pub"])
        assert (
            PublicKeyInfo(
                index=1,
                label="PUBLIC KEY",
                key_type="EC",
                key_size=256,
                curve="P-256",
                public_key_sha256=ossl.spki["ec"],
                certificate=0,
                findings=(),
            ),
        ) == result.public_keys


class TestOpenSSLRequestsAndPublicKeys:
    """CSRs from `openssl req -new` and public keys from `openssl pkey -pubout`."""

    pytestmark = needs_openssl

    @pytest.mark.parametrize("name", ["ec_csr", "ec_csr_der"])
    def test_csr_with_sans(self, ossl: OpenSSLCorpus, name: str) -> None:
        """Every requested SAN kind, the key, a valid signature."""
        result = inspect(ossl.files[name])
        assert (
            CSRInfo(
                index=0,
                label="CERTIFICATE REQUEST",
                subject="CN=csr.test",
                common_name="csr.test",
                dns_names=("csr.test",),
                ip_addresses=("10.0.0.1",),
                uris=("spiffe://example.test/web",),
                emails=("ops@example.test",),
                key_type="EC",
                key_size=256,
                curve="P-256",
                signature_algorithm="ecdsa-with-SHA256",
                signature_hash="sha256",
                signature_valid=True,
                public_key_sha256=ossl.spki["ec"],
                findings=(),
            ),
        ) == result.objects

    def test_csr_cn_only(self, ossl: OpenSSLCorpus) -> None:
        """A CSR asking for no SAN."""
        result = inspect(ossl.files["cn_csr"])
        assert (result.csrs[0].title, codes(result)) == ("cn-only.test", ("no-san",))

    def test_csr_weak_key(self, ossl: OpenSSLCorpus) -> None:
        """A CSR for an RSA-1024 key."""
        result = inspect(ossl.files["rsa1024_csr"])
        assert (result.csrs[0].key_size, codes(result)) == (1024, ("weak-key",))

    def test_csr_bad_signature(self, ossl: OpenSSLCorpus) -> None:
        """A CSR whose signature was damaged (its last byte changed)."""
        der = bytearray(ossl.files["ec_csr_der"].read_bytes())
        der[-1] ^= 0x01
        result = inspect(bytes(der))
        assert (result.csrs[0].signature_valid, codes(result)) == (False, ("invalid-signature",))

    @pytest.mark.parametrize("name", ["ec_pub", "ec_pub_der"])
    def test_public_key(self, ossl: OpenSSLCorpus, name: str) -> None:
        """A bare public key: type, size, hash, no certificate to match."""
        key = inspect(ossl.files[name]).public_keys[0]
        assert ("PUBLIC KEY", "EC", 256, ossl.spki["ec"], None, ()) == (
            key.label,
            key.key_type,
            key.key_size,
            key.public_key_sha256,
            key.certificate,
            key.findings,
        )

    def test_weak_public_key(self, ossl: OpenSSLCorpus) -> None:
        """An RSA-1024 public key."""
        assert codes(inspect(ossl.files["rsa1024_pub"])) == ("weak-key",)


class TestOpenSSLPKCS12:
    """PKCS#12 bundles from `openssl pkcs12 -export` (OpenSSL 3 defaults: AES-256, PBKDF2)."""

    pytestmark = needs_openssl

    def test_with_password(self, ossl: OpenSSLCorpus, dev: DevCorpus) -> None:
        """Leaf, its CA, and the key, which belongs to the leaf."""
        result = inspect(ossl.files["p12"], password=PASSWORD)
        assert result.format == "PKCS#12"
        assert [
            ossl.x509["leaf"][1],
            colon_hex(dev.root.certificate.fingerprint(hashes.SHA256())),
        ] == [c.sha256 for c in result.certificates]
        key = result.private_keys[0]
        assert (2, "PKCS#12", True, "matched", 0, ossl.spki["ec"]) == (
            key.index,
            key.format,
            key.encrypted,
            key.match,
            key.certificate,
            key.public_key_sha256,
        )
        assert result.chain is not None and result.chain.in_order
        assert codes(result) == ()

    def test_password_needed(self, ossl: OpenSSLCorpus) -> None:
        """No password: nothing listed, one note on the input as a whole."""
        result = inspect(ossl.files["p12"])
        assert (result.objects, result.chain) == ((), None)
        assert (
            Finding(
                code="password-required",
                severity="info",
                message=f"{ossl.files['p12']} is a PKCS#12 bundle that is protected by a password,"
                " and none was given. Give it to see inside the bundle.",
                index=None,
            ),
        ) == result.findings

    def test_wrong_password(self, ossl: OpenSSLCorpus) -> None:
        """A wrong password: an error finding, no exception."""
        result = inspect(ossl.files["p12"], password="wrong")
        assert (result.objects, codes(result)) == ((), ("wrong-password",))

    @pytest.mark.parametrize("name", ["p12_empty", "p12_plain"])
    def test_without_password(self, ossl: OpenSSLCorpus, name: str) -> None:
        """An empty password or none at all: opens without one, and with an unneeded one."""
        for password in (None, PASSWORD):
            result = inspect(ossl.files[name], password=password)
            key = result.private_keys[0]
            assert (
                len(result.objects),
                key.encrypted,
                key.encryption,
                key.match,
            ) == (3, False, None, "matched")
            assert codes(result) == ()


# ---------------------------------------------------------------------------------------------
# Malformed input


class TestMalformed:
    """Input that cannot be read raises MaterialError with the facts, reusing _material's words."""

    def test_empty_file(self, tmp_path: Path) -> None:
        """An empty file."""
        path = write(tmp_path / "empty.pem", b"")
        with pytest.raises(MaterialError) as info:
            inspect(path)
        assert (str(path), "nothing") == (info.value.source, info.value.found)
        assert info.value.message.startswith(f"{path} is empty;")

    @pytest.mark.parametrize("data", [b"", b" \n\t\n"])
    def test_empty_bytes(self, data: bytes) -> None:
        """Empty or blank bytes."""
        with pytest.raises(MaterialError) as info:
            inspect(data)
        assert (
            info.value.source,
            info.value.found,
            info.value.message,
        ) == ("the in-memory input", "nothing", "The in-memory input is empty.")

    def test_garbage_text(self) -> None:
        """Text that is neither PEM nor DER."""
        with pytest.raises(MaterialError) as info:
            inspect(b"hello, I am not a certificate\n")
        assert info.value.found == "unknown"
        assert info.value.message.startswith(
            "The in-memory input holds data that is neither PEM nor DER (it starts with"
            " 'hello, I am not a certif')"
        )

    def test_garbage_binary(self, tmp_path: Path) -> None:
        """A binary blob that looks like ASN.1 but is no object we know."""
        path = write(tmp_path / "blob.bin", b"\x30\x06\x02\x01\x05\x02\x01\x07")
        with pytest.raises(MaterialError) as info:
            inspect(path)
        assert (str(path), "unknown") == (info.value.source, info.value.found)

    def test_truncated(self, dev: DevCorpus) -> None:
        """A certificate cut in half."""
        pem = dev.leaf.cert_pem
        with pytest.raises(MaterialError) as info:
            inspect(pem[: len(pem) // 2])
        assert info.value.found == "CERTIFICATE"
        assert "is truncated PEM" in info.value.message

    def test_truncated_der(self, dev: DevCorpus) -> None:
        """A DER certificate cut short is no longer recognisable."""
        der = dev.files["leaf_der"].read_bytes()
        with pytest.raises(MaterialError) as info:
            inspect(der[:-20])
        assert info.value.found == "unknown"

    def test_corrupt_base64(self, dev: DevCorpus) -> None:
        """A certificate whose base64 was damaged, after a good one."""
        lines = dev.client.cert_pem.splitlines(keepends=True)
        lines[3] = b"!!!!" + lines[3][4:]
        with pytest.raises(MaterialError) as info:
            inspect(dev.leaf.cert_pem + b"".join(lines))
        assert info.value.found == "CERTIFICATE"
        assert info.value.message.startswith(
            "The in-memory input holds a corrupt CERTIFICATE block"
        )

    @pytest.mark.parametrize(
        ("label", "what"),
        [
            ("CERTIFICATE REQUEST", "a certificate request"),
            ("PUBLIC KEY", "a public key"),
            ("X509 CRL", "a certificate revocation list"),
        ],
    )
    def test_corrupt_other_blocks(self, label: str, what: str) -> None:
        """Corrupt CSR, public key and CRL blocks."""
        pem = f"-----BEGIN {label}-----\nMIIBAAAA\n-----END {label}-----\n".encode()
        with pytest.raises(MaterialError) as info:
            inspect(pem)
        assert label == info.value.found
        assert (
            f"The in-memory input holds a corrupt {label} block: its contents do not decode as"
            f" {what}."
        ) == info.value.message

    def test_corrupt_key(self) -> None:
        """A corrupt private key block: _material's message."""
        with pytest.raises(MaterialError) as info:
            inspect(b"-----BEGIN PRIVATE KEY-----\nMIIBAAAA\n-----END PRIVATE KEY-----\n")
        assert info.value.found == "PRIVATE KEY"
        assert not isinstance(info.value, KeyPasswordError)
        assert "does not decode as a private key" in info.value.message

    def test_mismatched_armour(self) -> None:
        """BEGIN and END lines that disagree."""
        with pytest.raises(MaterialError) as info:
            inspect(b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END PRIVATE KEY-----\n")
        assert info.value.found == "CERTIFICATE"
        assert "ends with an 'PRIVATE KEY' line" in info.value.message

    def test_missing_file(self, tmp_path: Path) -> None:
        """A path that does not exist."""
        with pytest.raises(MaterialError) as info:
            inspect(tmp_path / "nope.pem")
        assert info.value.message.startswith(f"{tmp_path / 'nope.pem'}: no such file")

    def test_directory(self, tmp_path: Path) -> None:
        """A directory."""
        with pytest.raises(MaterialError) as info:
            inspect(tmp_path)
        assert info.value.found == "directory"

    def test_wrong_type(self) -> None:
        """Something that is neither a path nor bytes."""
        with pytest.raises(MaterialError) as info:
            inspect(42)  # type: ignore[arg-type]
        assert (
            info.value.message
        ) == "The input was given as int, which securelink cannot inspect."


# ---------------------------------------------------------------------------------------------
# The result as a value, as text and as JSON


class TestResult:
    """The result is a frozen value, reads at a glance, and converts to JSON."""

    def test_str_of_a_chain_with_key(self, dev: DevCorpus) -> None:
        """A few aligned lines per object, the chain, and a closing count."""
        result = inspect(dev.files["chain_key"])
        leaf, inter = result.certificates
        text = str(result).splitlines()
        assert f"{dev.files['chain_key']}: PEM, 2 certificates, 1 private key" == text[0]
        first = text.index("#1 certificate: localhost")
        assert [
            "#1 certificate: localhost",
            "   names       DNS:localhost, IP:127.0.0.1",
            f"   subject     {leaf.subject}",
            f"   issuer      {leaf.issuer}",
            f"   valid       {leaf.not_before:%Y-%m-%d} to {leaf.not_after:%Y-%m-%d}"
            f" ({leaf.days_left} days left)",
            "   key         EC P-256, signed with ecdsa-with-SHA256",
            "   role        leaf; key usage digitalSignature; extended serverAuth",
            f"   serial      {leaf.serial}",
            f"   SHA-256     {leaf.sha256}",
            "   key ids     SKI yes, AKI yes",
        ] == text[first : first + 10]
        assert "   role        CA (path length 0); key usage digitalSignature, keyCertSign," in (
            "\n".join(text)
        )
        assert text[-7:] == [
            "#3 private key: EC P-256",
            "   format      PKCS#8, not encrypted",
            "   belongs to  certificate #1",
            "",
            "chain: #1 -> #2, in order: each certificate is signed by the next",
            "",
            "No findings.",
        ]
        assert inter.title in str(result)

    def test_str_marks_findings(self, dev: DevCorpus) -> None:
        """Findings appear under their object, marked with their severity, and are counted."""
        text = str(inspect(dev.files["expired"]))
        assert "(EXPIRED)" in text
        assert "\n   [ERROR] expired: Certificate #1 (expired.test) expired on " in text
        assert text.endswith("\n1 finding: 1 error.")

    def test_str_of_input_findings(self, dev: DevCorpus) -> None:
        """Findings about the input as a whole follow the chain line."""
        text = str(inspect(dev.files["reversed"]))
        assert (
            "chain: #1 -> #2, OUT OF ORDER: #1 is not followed by its issuer\n"
            "[ERROR] chain-out-of-order: The certificates are not in chain order:"
        ) in text

    def test_to_dict_is_json(self, dev: DevCorpus) -> None:
        """to_dict() survives json.dumps; datetimes are ISO 8601, objects carry their kind."""
        result = inspect(dev.files["reversed"])
        data = result.to_dict()
        assert data == json.loads(json.dumps(data))
        assert list(data) == ["source", "format", "objects", "chain", "findings"]
        assert [o["kind"] for o in data["objects"]] == ["certificate", "certificate", "private-key"]
        leaf = data["objects"][1]
        assert result.certificates[1].not_after.isoformat() == leaf["not_after"]
        assert leaf["dns_names"] == ["localhost"]
        assert (data["chain"]) == {
            "certificates": [0, 1],
            "in_order": False,
            "broken_at": 0,
            "suggested_order": [1, 0],
        }
        assert [
            {
                "code": "chain-out-of-order",
                "severity": "error",
                "message": result.findings[0].message,
                "index": None,
            }
        ] == data["findings"]

    def test_frozen_and_picklable(self, dev: DevCorpus) -> None:
        """Values cannot be changed, compare by value, hash, and survive pickle."""
        result = inspect(dev.files["chain_key"])
        with pytest.raises(FrozenInstanceError):
            result.source = "elsewhere"  # type: ignore[misc]
        with pytest.raises(FrozenInstanceError):
            result.certificates[0].subject = "CN=x"  # type: ignore[misc]
        assert result == pickle.loads(pickle.dumps(result))  # noqa: S301 - our own data
        assert hash(result) == hash(inspect(dev.files["chain_key"]))

    def test_construction_checks_fields(self) -> None:
        """Values are built by keyword, with every field and no others."""
        with pytest.raises(TypeError, match="needs the field 'index'"):
            Finding(code="expired", severity="info", message="m")  # type: ignore[call-arg]
        with pytest.raises(TypeError, match="has no field 'colour'"):
            Finding(code="expired", severity="info", message="m", index=None, colour=1)  # type: ignore[call-arg]

    def test_summary(self, dev: DevCorpus) -> None:
        """A certificate's CertificateSummary is the one error messages would carry."""
        info = inspect(dev.files["chain_key"]).certificates[0]
        assert CertificateSummary.from_certificate(dev.leaf.certificate) == info.summary()

    def test_import_is_cheap(self) -> None:
        """Importing the module does not import cryptography."""
        code = (
            "import sys; import securelink._inspect;"
            " print(any(m.split('.')[0] == 'cryptography' for m in sys.modules))"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
        )
        assert out.stdout.strip() == "False"
