"""Inputs that ask for an unbounded key derivation are refused before any password is tried.

A PKCS#12 bundle or an encrypted PKCS#8 key names its own iteration counts, in clear: a
kilobyte file asking for 2**23 iterations would hold ``inspect()`` or a context build for
seconds (2**31: minutes) before a password is even checked.  The bundles here are made with a
cheap count (65,536: the three-byte INTEGER ``02 03 01 00 00``) and then patched to 8,388,607
(``02 03 7f ff ff``): nothing is derived before the refusal, so the patch is never noticed.
"""

from __future__ import annotations

import base64
import shutil
import ssl
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import PrivateFormat, pkcs12
from cryptography.hazmat.primitives.serialization.pkcs12 import PBES

import securelink
from securelink import MaterialError, ServerOptions, devca

CHEAP = bytes.fromhex("0203010000")  # INTEGER 65536
COSTLY = bytes.fromhex("02037fffff")  # INTEGER 8388607
OPENSSL = shutil.which("openssl")


@pytest.fixture(scope="module")
def leaf(ca: devca.CertificateAuthority) -> devca.IssuedCertificate:
    return ca.issue("localhost", usage=devca.Usage.SERVER)


def _bundle(leaf: devca.IssuedCertificate) -> bytes:
    """A PKCS#12 bundle whose certificate and key are encrypted with 65,536 PBKDF2 rounds."""
    encryption = (
        PrivateFormat.PKCS12.encryption_builder()
        .kdf_rounds(65536)
        .key_cert_algorithm(PBES.PBESv2SHA256AndAES256CBC)
        .hmac_hash(hashes.SHA256())
        .build(b"pw")
    )
    key = leaf.private_key
    assert isinstance(key, ec.EllipticCurvePrivateKey)  # devca's default key type
    return pkcs12.serialize_key_and_certificates(b"server", key, leaf.certificate, None, encryption)


def _patch(data: bytes, which: int) -> bytes:
    """Make occurrence *which* of the cheap count costly (-1: the last)."""
    places = [i for i in range(len(data)) if data.startswith(CHEAP, i)]
    i = places[which]
    return data[:i] + COSTLY + data[i + len(COSTLY) :]


def _assert_refused(e: MaterialError, source: str, found: str, what: str) -> None:
    assert type(e) is MaterialError
    assert (e.source, e.found) == (source, found)
    assert f"asks for 8,388,607 {what}; securelink runs at most 2,000,000" in e.message
    assert "-iter 2048" in e.hint


class TestPKCS12:
    def test_usual_bundle_still_opens(self, leaf: devca.IssuedCertificate) -> None:
        ctx = securelink.server_context(
            ServerOptions(cert=securelink.PKCS12(_bundle(leaf)), password="pw")
        )
        assert type(ctx) is ssl.SSLContext
        assert ctx.protocol == ssl.PROTOCOL_TLS_SERVER

    @pytest.mark.parametrize("which", [0, 1], ids=["certificate-bag", "key-bag"])
    def test_costly_encryption_refused(
        self, leaf: devca.IssuedCertificate, tmp_path: Path, which: int
    ) -> None:
        path = tmp_path / "costly.p12"
        path.write_bytes(_patch(_bundle(leaf), which))
        options = ServerOptions(cert=securelink.PKCS12(path), password="pw")
        with pytest.raises(MaterialError) as caught:
            securelink.server_context(options)
        what = "iterations of its password's key derivation"
        _assert_refused(caught.value, str(path), "PKCS#12", what)
        with pytest.raises(MaterialError) as caught:
            securelink.inspect(path)
        _assert_refused(caught.value, str(path), "PKCS#12", what)

    @pytest.mark.skipif(OPENSSL is None, reason="the openssl command-line tool is missing")
    def test_costly_mac_refused(self, leaf: devca.IssuedCertificate, tmp_path: Path) -> None:
        """Openssl's -maciter: the MAC's own count, the last INTEGER of the bundle."""
        assert OPENSSL is not None
        (tmp_path / "leaf.pem").write_bytes(leaf.cert_pem)
        (tmp_path / "leaf.key").write_bytes(leaf.key_pem)
        made = tmp_path / "made.p12"
        subprocess.run(
            [OPENSSL, "pkcs12", "-export", "-in", "leaf.pem", "-inkey", "leaf.key",
             "-passout", "pass:pw", "-iter", "65536", "-maciter", "-out", str(made)],
            cwd=tmp_path, check=True, capture_output=True, timeout=30,
        )  # fmt: skip
        data = _patch(made.read_bytes(), -1)
        with pytest.raises(MaterialError) as caught:
            securelink.inspect(data, password="pw")
        what = "iterations of its integrity check (the PKCS#12 MAC)"
        _assert_refused(caught.value, "the in-memory input", "PKCS#12", what)


@pytest.mark.skipif(OPENSSL is None, reason="the openssl command-line tool is missing")
class TestEncryptedKey:
    @pytest.fixture
    def costly_key(self, leaf: devca.IssuedCertificate, tmp_path: Path) -> Path:
        assert OPENSSL is not None
        (tmp_path / "plain.key").write_bytes(leaf.key_pem)
        der = tmp_path / "key.der"
        subprocess.run(
            [OPENSSL, "pkcs8", "-topk8", "-v2", "aes-256-cbc", "-iter", "65536",
             "-in", "plain.key", "-passout", "pass:pw", "-outform", "DER", "-out", str(der)],
            cwd=tmp_path, check=True, capture_output=True, timeout=30,
        )  # fmt: skip
        data = der.read_bytes()
        assert data.count(CHEAP) == 1
        body = base64.encodebytes(data.replace(CHEAP, COSTLY))
        path = tmp_path / "costly.key"
        path.write_bytes(
            b"-----BEGIN ENCRYPTED PRIVATE KEY-----\n"
            + body
            + b"-----END ENCRYPTED PRIVATE KEY-----\n"
        )
        path.chmod(0o600)
        return path

    def test_costly_key_refused_as_key(
        self, leaf: devca.IssuedCertificate, costly_key: Path
    ) -> None:
        options = ServerOptions(cert=leaf.cert_pem, key=costly_key, password="pw")
        with pytest.raises(MaterialError) as caught:
            securelink.server_context(options)
        what = "iterations of its password's key derivation"
        _assert_refused(caught.value, str(costly_key), "ENCRYPTED PRIVATE KEY", what)

    def test_a_header_does_not_hide_the_cost(
        self, leaf: devca.IssuedCertificate, costly_key: Path
    ) -> None:
        """OpenSSL skips RFC 1421 headers before the base64 text: so does the bound."""
        lines = costly_key.read_bytes().splitlines(keepends=True)
        costly_key.write_bytes(lines[0] + b"Comment: hello\n\n" + b"".join(lines[1:]))
        options = ServerOptions(cert=leaf.cert_pem, key=costly_key, password="pw")
        with pytest.raises(MaterialError) as caught:
            securelink.server_context(options)
        what = "iterations of its password's key derivation"
        _assert_refused(caught.value, str(costly_key), "ENCRYPTED PRIVATE KEY", what)

    def test_costly_key_refused_by_inspect(self, costly_key: Path) -> None:
        with pytest.raises(MaterialError) as caught:
            securelink.inspect(costly_key, password="pw")
        what = "iterations of its password's key derivation"
        _assert_refused(caught.value, str(costly_key), "ENCRYPTED PRIVATE KEY", what)
