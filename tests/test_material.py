"""Loading certificates, keys and CAs: every bad input gets a specific error naming the input."""

from __future__ import annotations

import datetime
import os
import subprocess
import warnings
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from securelink import (
    PKCS12,
    CertificateProblemError,
    ClientAuth,
    ClientOptions,
    ConfigurationError,
    KeyMismatchError,
    KeyPasswordError,
    MaterialError,
    SecurityWarning,
    ServerOptions,
    client_context,
    server_context,
)
from securelink.devca import CertificateAuthority, IssuedCertificate

from . import pki


def write(path: Path, data: bytes, mode: int = 0o600) -> str:
    path.write_bytes(data)
    path.chmod(mode)
    return str(path)


@pytest.fixture
def files(tmp_path: Path, server_cert: IssuedCertificate) -> dict[str, str]:
    """The server identity and assorted other objects, as files."""
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([]))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("x.test")]), critical=False)
        .sign(server_cert.private_key, hashes.SHA256())
    )
    public_key = server_cert.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return {
        "cert": write(tmp_path / "server.pem", server_cert.chain_pem, 0o644),
        "key": write(tmp_path / "server.key", server_cert.key_pem),
        "cert_der": write(tmp_path / "server.der", pki.der(server_cert.certificate), 0o644),
        "key_der": write(tmp_path / "server-key.der", pki.key_der(server_cert.private_key)),
        "csr": write(tmp_path / "server.csr", csr.public_bytes(serialization.Encoding.PEM)),
        "csr_der": write(tmp_path / "server-csr.der", csr.public_bytes(serialization.Encoding.DER)),
        "pub": write(tmp_path / "server.pub", public_key),
        "p12": write(tmp_path / "server.p12", server_cert.pkcs12("changeit")),
        "empty": write(tmp_path / "empty.pem", b""),
        "blank": write(tmp_path / "blank.pem", b"\n  \n"),
        "garbage": write(tmp_path / "garbage.pem", b"hello, this is not a certificate\n"),
        "binary": write(tmp_path / "garbage.bin", bytes(range(200, 256)) * 4),
    }


def build_server(**kwargs: Any) -> None:
    server_context(ServerOptions(**kwargs), shared=False)


class TestReadingFiles:
    """Paths that cannot be read are named in the error."""

    def test_missing_cert(self, files: dict[str, str], tmp_path: Path) -> None:
        """A missing certificate path is named, with the working directory as a hint."""
        missing = str(tmp_path / "nope.pem")
        with pytest.raises(MaterialError) as info:
            build_server(cert=missing, key=files["key"])
        assert type(info.value) is MaterialError
        assert info.value.source == missing
        assert info.value.message == f"{missing}: no such file; it was given as the certificate."
        assert os.getcwd() in info.value.hint

    def test_missing_key(self, files: dict[str, str], tmp_path: Path) -> None:
        """A missing key path is named as the private key."""
        missing = str(tmp_path / "nope.key")
        with pytest.raises(MaterialError) as info:
            build_server(cert=files["cert"], key=missing)
        assert info.value.source == missing
        assert "given as the private key" in info.value.message

    def test_missing_directory(self, files: dict[str, str], tmp_path: Path) -> None:
        """A path in a directory that does not exist says so."""
        missing = str(tmp_path / "nodir" / "server.pem")
        with pytest.raises(MaterialError) as info:
            build_server(cert=missing, key=files["key"])
        assert "does not exist either" in info.value.message

    def test_directory_as_file(self, files: dict[str, str], tmp_path: Path) -> None:
        """A directory where a file belongs is named and pointed to minica's layout."""
        with pytest.raises(MaterialError) as info:
            build_server(cert=str(tmp_path), key=files["key"])
        assert info.value.source == str(tmp_path)
        assert info.value.found == "directory"
        assert "cert.pem" in info.value.hint

    @pytest.mark.parametrize("name", ["empty", "blank"])
    def test_empty(self, files: dict[str, str], name: str) -> None:
        """An empty (or whitespace-only) file says it is empty."""
        with pytest.raises(MaterialError) as info:
            build_server(cert=files[name], key=files["key"])
        assert info.value.message == f"{files[name]} is empty; it was given as the certificate."
        assert info.value.found == "nothing"

    def test_empty_key(self, files: dict[str, str]) -> None:
        """An empty key file is reported as an empty private key."""
        with pytest.raises(MaterialError) as info:
            build_server(cert=files["cert"], key=files["empty"])
        assert info.value.source == files["empty"]
        assert "given as the private key" in info.value.message


class TestWhatIsInside:
    """Data that is not what was asked for says what it actually holds."""

    def test_garbage(self, files: dict[str, str]) -> None:
        """Text that is neither PEM nor DER is quoted."""
        with pytest.raises(MaterialError) as info:
            build_server(cert=files["garbage"], key=files["key"])
        assert info.value.found == "unknown"
        assert "neither PEM nor DER (it starts with 'hello, this is not a cer')" in str(info.value)

    def test_binary_garbage(self, files: dict[str, str]) -> None:
        """Binary data that is not DER is named as neither PEM nor DER."""
        with pytest.raises(MaterialError) as info:
            build_server(cert=files["cert"], key=files["binary"])
        assert info.value.message == (
            f"{files['binary']} holds data that is neither PEM nor DER; it was given as the"
            " private key."
        )

    def test_key_as_cert(self, files: dict[str, str]) -> None:
        """A private key given as the certificate is recognised and the fix suggested."""
        with pytest.raises(MaterialError) as info:
            build_server(cert=files["key"], key=files["key"])
        assert info.value.message == f"{files['key']} holds a PRIVATE KEY, not a certificate."
        assert info.value.found == "PRIVATE KEY"
        assert "pass it as key=" in info.value.hint

    def test_cert_as_key(self, files: dict[str, str]) -> None:
        """A certificate given as the key is recognised."""
        with pytest.raises(MaterialError) as info:
            build_server(cert=files["cert"], key=files["cert"])
        assert info.value.message == f"{files['cert']} holds a CERTIFICATE, not a private key."
        assert "pass it as cert=" in info.value.hint

    def test_der_key_as_cert(self, files: dict[str, str]) -> None:
        """A DER key given as the certificate is recognised as DER."""
        with pytest.raises(MaterialError) as info:
            build_server(cert=files["key_der"], key=files["key"])
        assert info.value.found == "PRIVATE KEY"
        assert "a PRIVATE KEY in DER form" in info.value.message

    def test_der_cert_as_key(self, files: dict[str, str]) -> None:
        """A DER certificate given as the key is recognised as DER."""
        with pytest.raises(MaterialError) as info:
            build_server(cert=files["cert"], key=files["cert_der"])
        assert info.value.found == "CERTIFICATE"
        assert "a CERTIFICATE in DER form" in info.value.message

    @pytest.mark.parametrize("name", ["csr", "csr_der"])
    def test_csr_as_cert(self, files: dict[str, str], name: str) -> None:
        """A CSR is not a certificate, and the hint says to have it signed."""
        with pytest.raises(MaterialError) as info:
            build_server(cert=files[name], key=files["key"])
        assert "CERTIFICATE REQUEST (CSR)" in info.value.message
        assert "sign_csr" in info.value.hint

    def test_csr_as_key(self, files: dict[str, str]) -> None:
        """A CSR given as the key points at the key it was made from."""
        with pytest.raises(MaterialError) as info:
            build_server(cert=files["cert"], key=files["csr"])
        assert info.value.found == "CERTIFICATE REQUEST"
        assert "the private key that the CSR was made from" in info.value.hint

    def test_public_key_as_key(self, files: dict[str, str]) -> None:
        """A public key given as the private key is recognised."""
        with pytest.raises(MaterialError) as info:
            build_server(cert=files["cert"], key=files["pub"])
        assert info.value.message == f"{files['pub']} holds a PUBLIC KEY, not a private key."

    def test_public_key_as_cert(self, files: dict[str, str]) -> None:
        """A public key given as the certificate is recognised."""
        with pytest.raises(MaterialError) as info:
            build_server(cert=files["pub"], key=files["key"])
        assert info.value.found == "PUBLIC KEY"

    def test_crl_as_cert(
        self, tmp_path: Path, files: dict[str, str], ca: CertificateAuthority
    ) -> None:
        """A CRL given as the certificate is recognised."""
        now = datetime.datetime.now(datetime.UTC)
        crl = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(ca.certificate.subject)
            .last_update(now)
            .next_update(now + datetime.timedelta(days=1))
            .sign(ca.private_key, hashes.SHA256())
        )
        path = write(tmp_path / "ca.crl", crl.public_bytes(serialization.Encoding.PEM))
        with pytest.raises(MaterialError) as info:
            build_server(cert=path, key=files["key"])
        assert info.value.found == "X509 CRL"
        assert "a certificate revocation list (X509 CRL)" in info.value.message

    def test_pkcs12_as_cert(self, files: dict[str, str]) -> None:
        """A PKCS#12 bundle passed as a plain cert points to the PKCS12 spelling."""
        with pytest.raises(MaterialError) as info:
            build_server(cert=files["p12"], key=files["key"])
        assert info.value.found == "PKCS#12"
        assert "a PKCS#12 bundle in DER form" in info.value.message
        assert "securelink.PKCS12(path)" in info.value.hint

    @pytest.mark.parametrize("side", ["server", "client"])
    def test_pkcs12_as_cert_without_key(
        self, files: dict[str, str], server_cert: IssuedCertificate, side: str
    ) -> None:
        """A .p12 file as plain cert= (and no key=, as a bundle is used) is named as one.

        The options cannot tell without reading the file; the context build reads it and says
        what it holds and how to pass it, as docs/options.md promises.
        """
        build: Callable[[], object] = (
            partial(server_context, ServerOptions(cert=files["p12"]), shared=False)
            if side == "server"
            else partial(
                client_context,
                ClientOptions(ca=server_cert.root, cert=files["p12"]),
                shared=False,
            )
        )
        with pytest.raises(MaterialError) as info:
            build()
        error = info.value
        assert type(error) is MaterialError
        assert (error.source, error.found) == (files["p12"], "PKCS#12")
        assert error.message == (
            f"{files['p12']} holds a PKCS#12 bundle in DER form, not a certificate."
        )
        assert error.hint == (
            "A PKCS#12 bundle holds a whole identity: pass cert=securelink.PKCS12(path) with"
            " password=, and leave key unset."
        )

    def test_pem_named_p12_without_key(
        self, tmp_path: Path, server_cert: IssuedCertificate
    ) -> None:
        """A file named .p12 that holds a PEM certificate still needs its key, as any cert."""
        path = write(tmp_path / "misnamed.p12", server_cert.chain_pem, 0o644)
        with pytest.raises(ConfigurationError) as info:
            build_server(cert=path)
        error = info.value
        assert type(error) is ConfigurationError
        assert error.field == "key"
        assert f"{path} holds a certificate, not a PKCS#12 bundle" in error.message

    def test_pkcs12_bytes_as_cert(self, server_cert: IssuedCertificate) -> None:
        """PKCS#12 bytes as plain cert= are recognised at construction, before any build."""
        with pytest.raises(MaterialError) as info:
            ServerOptions(cert=server_cert.pkcs12("changeit"))
        assert type(info.value) is MaterialError
        assert info.value.found == "PKCS#12"
        assert "cert=securelink.PKCS12(data) with password=" in info.value.hint

    def test_pkcs12_as_cert_then_passed_right(self, files: dict[str, str]) -> None:
        """Following the hint works: the same file as cert=PKCS12(path) with password=."""
        build_server(cert=PKCS12(files["p12"]), password="changeit")

    def test_pkcs12_wrapper_on_pem(self, files: dict[str, str]) -> None:
        """PKCS12() around a PEM file says what the file really holds."""
        with pytest.raises(MaterialError) as info:
            build_server(cert=PKCS12(files["cert"]))
        assert info.value.message == (f"{files['cert']} holds a CERTIFICATE, not a PKCS#12 bundle.")

    def test_openssh_key(self, tmp_path: Path, files: dict[str, str]) -> None:
        """An OpenSSH private key gets the ssh-keygen conversion hint."""
        key = ec.generate_private_key(ec.SECP256R1())
        data = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        )
        path = write(tmp_path / "id_ecdsa", data)
        with pytest.raises(MaterialError) as info:
            build_server(cert=files["cert"], key=path)
        assert info.value.found == "OPENSSH PRIVATE KEY"
        assert "ssh-keygen -p -m PKCS8" in info.value.hint

    def test_two_keys(self, tmp_path: Path, files: dict[str, str], server_cert: Any) -> None:
        """A file with two private keys is refused rather than guessed at."""
        other = ec.generate_private_key(ec.SECP256R1())
        path = write(tmp_path / "two.key", server_cert.key_pem + pki.key_pem(other))
        with pytest.raises(MaterialError) as info:
            build_server(cert=files["cert"], key=path)
        assert "holds 2 private keys" in info.value.message


class TestDamagedPEM:
    """Truncated or corrupt PEM is told apart from the wrong kind of file."""

    def test_truncated(self, tmp_path: Path, files: dict[str, str], server_cert: Any) -> None:
        """A PEM block without its END line is reported as truncated."""
        data = server_cert.cert_pem
        path = write(tmp_path / "cut.pem", data[: len(data) // 2])
        with pytest.raises(MaterialError) as info:
            build_server(cert=path, key=files["key"])
        assert info.value.message == (
            f"{path} is truncated PEM: a '-----BEGIN CERTIFICATE-----' line has no matching"
            " END line."
        )

    def test_corrupt_base64(self, tmp_path: Path, files: dict[str, str], server_cert: Any) -> None:
        """Damaged base64 inside a certificate block is reported as corrupt."""
        lines = server_cert.cert_pem.splitlines(keepends=True)
        lines[3] = b"!!!!" + lines[3][4:]
        path = write(tmp_path / "corrupt.pem", b"".join(lines))
        with pytest.raises(MaterialError) as info:
            build_server(cert=path, key=files["key"])
        assert info.value.message.startswith(f"{path} holds a corrupt CERTIFICATE block")

    def test_corrupt_key(self, tmp_path: Path, files: dict[str, str], server_cert: Any) -> None:
        """Damaged base64 inside a key block is reported as a corrupt key."""
        lines = server_cert.key_pem.splitlines(keepends=True)
        lines[1] = b"AAAA" + lines[1][4:]
        path = write(tmp_path / "corrupt.key", b"".join(lines))
        with pytest.raises(MaterialError) as info:
            build_server(cert=files["cert"], key=path)
        assert type(info.value) is MaterialError
        assert "corrupt PRIVATE KEY block" in info.value.message

    def test_mismatched_armour(self, tmp_path: Path, files: dict[str, str]) -> None:
        """BEGIN and END lines of different kinds are reported."""
        data = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END PRIVATE KEY-----\n"
        path = write(tmp_path / "mixed.pem", data)
        with pytest.raises(MaterialError, match="ends with an 'PRIVATE KEY' line"):
            build_server(cert=path, key=files["key"])

    def test_in_memory_garbage_is_labelled(self, files: dict[str, str]) -> None:
        """Bytes are described as the in-memory certificate, not as a path."""
        with pytest.raises(MaterialError) as info:
            build_server(cert=b"not a certificate", key=files["key"])
        assert info.value.source == "the in-memory certificate"


class TestKeys:
    """Keys that do not fit, or cannot be opened, are named with both inputs."""

    def test_mismatch(self, files: dict[str, str], tmp_path: Path) -> None:
        """A key from another certificate raises KeyMismatchError naming both files."""
        other = write(tmp_path / "other.key", pki.key_pem(ec.generate_private_key(ec.SECP256R1())))
        with pytest.raises(KeyMismatchError) as info:
            build_server(cert=files["cert"], key=other)
        assert info.value.source == other
        assert info.value.cert_source == files["cert"]
        assert isinstance(info.value, MaterialError)
        assert info.value.message.startswith(f"The private key ({other}) does not belong to the")
        assert info.value.message.endswith(f"({files['cert']}).")

    def test_encrypted_without_password(self, tmp_path: Path, server_cert: Any) -> None:
        """An encrypted key without a password raises at once: no prompt, no hang."""
        path = write(tmp_path / "enc.key", server_cert.encrypted_key_pem("s3cret"))
        with pytest.raises(KeyPasswordError) as info:
            build_server(cert=server_cert.chain_pem, key=path)
        assert info.value.reason == "missing"
        assert info.value.source == path
        assert "never prompts" in info.value.hint

    def test_wrong_password(self, tmp_path: Path, server_cert: Any) -> None:
        """A wrong password is told apart from a missing one."""
        path = write(tmp_path / "enc.key", server_cert.encrypted_key_pem("s3cret"))
        with pytest.raises(KeyPasswordError) as info:
            build_server(cert=server_cert.chain_pem, key=path, password="wrong")
        assert info.value.reason == "wrong"

    def test_wrong_password_traditional(self, server_cert: Any) -> None:
        """Legacy OpenSSL-encrypted PEM (Proc-Type header) gets the same treatment."""
        data = pki.key_pem(server_cert.private_key, password=b"s3cret", fmt="traditional")
        assert b"Proc-Type: 4,ENCRYPTED" in data
        with pytest.raises(KeyPasswordError) as info:
            build_server(cert=server_cert.chain_pem, key=data, password=b"nope")
        assert (info.value.reason, info.value.source) == ("wrong", "the in-memory key")

    def test_password_callable_error_propagates(self, server_cert: Any) -> None:
        """A password callable that raises propagates its own exception unchanged."""

        class NoPassword(Exception):
            pass

        def password() -> str:
            raise NoPassword("vault is sealed")

        with pytest.raises(NoPassword, match="vault is sealed"):
            build_server(
                cert=server_cert.chain_pem,
                key=server_cert.encrypted_key_pem("s3cret"),
                password=password,
            )

    def test_pkcs12_without_password(self, files: dict[str, str]) -> None:
        """A password-protected PKCS#12 bundle without password says the password is missing."""
        with pytest.raises(KeyPasswordError) as info:
            build_server(cert=PKCS12(files["p12"]))
        assert (info.value.reason, info.value.found) == ("missing", "PKCS#12")

    def test_pkcs12_wrong_password(self, files: dict[str, str]) -> None:
        """A wrong PKCS#12 password is reported as wrong."""
        with pytest.raises(KeyPasswordError) as info:
            build_server(cert=PKCS12(files["p12"]), password="nope")
        assert info.value.reason == "wrong"

    def test_key_file_readable_by_others_warns(
        self, tmp_path: Path, files: dict[str, str], server_cert: Any
    ) -> None:
        """A key file readable by group or others gives a SecurityWarning, not an error."""
        path = write(tmp_path / "open.key", server_cert.key_pem, 0o644)
        with pytest.warns(SecurityWarning, match=r"mode 0644.*chmod 600") as record:
            build_server(cert=files["cert"], key=path)
        # Attributed to the caller's line, not to securelink's internals.
        assert record[0].filename == __file__

    def test_private_key_file_does_not_warn(self, files: dict[str, str]) -> None:
        """A 0600 key file loads without warnings."""
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            build_server(cert=files["cert"], key=files["key"])


class TestOwnCertificate:
    """Problems with our own certificate are found before any connection."""

    def test_no_san(self, ca: CertificateAuthority) -> None:
        """A server certificate with only a Common Name is refused, with SAN-only explained."""
        cert, key = pki.leaf(ca, names=(), common_name="localhost")
        with pytest.raises(CertificateProblemError) as info:
            build_server(cert=cert, key=key)
        error = info.value
        assert error.problem == "no-san"
        assert error.subject == "CN=localhost"
        assert "Common Name is ignored" in error.message
        assert "subjectAltName" in error.hint

    def test_no_san_client_is_fine(self, ca: CertificateAuthority) -> None:
        """Client certificates may identify themselves by Common Name alone."""
        cert, key = pki.leaf(ca, names=(), common_name="alice")
        client_context(ClientOptions(ca=ca.certificate, cert=cert, key=key), shared=False)

    def test_expired(self, ca: CertificateAuthority) -> None:
        """An expired certificate gives both dates and how long ago it expired."""
        now = datetime.datetime.now(datetime.UTC)
        issued = ca.issue(
            "localhost",
            not_before=now - datetime.timedelta(days=40),
            not_after=now - datetime.timedelta(days=10),
        )
        with pytest.raises(CertificateProblemError) as info:
            build_server(cert=issued.certificate, key=issued.private_key)
        error = info.value
        assert error.problem == "expired"
        assert error.not_after == issued.certificate.not_valid_after_utc
        assert error.not_before == issued.certificate.not_valid_before_utc
        assert f"expired on {error.not_after:%Y-%m-%d %H:%M:%S} UTC, 10 days ago" in error.message

    def test_expired_client_cert(self, ca: CertificateAuthority) -> None:
        """An expired client certificate is found when the client context is built."""
        now = datetime.datetime.now(datetime.UTC)
        issued = ca.issue(
            "client.test",
            not_before=now - datetime.timedelta(days=1),
            not_after=now - datetime.timedelta(hours=5),
        )
        with pytest.raises(CertificateProblemError) as info:
            client_context(issued.client_options(), shared=False)
        assert info.value.problem == "expired"
        assert "client certificate" in info.value.message

    def test_not_yet_valid(self, ca: CertificateAuthority) -> None:
        """A certificate from the future suggests checking the clock."""
        now = datetime.datetime.now(datetime.UTC)
        issued = ca.issue("localhost", not_before=now + datetime.timedelta(days=3))
        with pytest.raises(CertificateProblemError) as info:
            build_server(cert=issued.certificate, key=issued.private_key)
        assert info.value.problem == "not-yet-valid"
        assert "clock" in info.value.hint
        assert "days from now" in info.value.message

    def test_ca_as_leaf(self, ca: CertificateAuthority) -> None:
        """Serving with the CA certificate itself is refused."""
        with pytest.raises(CertificateProblemError) as info:
            build_server(cert=ca.certificate, key=ca.private_key)
        assert info.value.problem == "ca-as-leaf"
        assert info.value.subject == ca.certificate.subject.rfc4514_string()

    def test_chain_out_of_order(self, ca: CertificateAuthority) -> None:
        """A chain given root-side first is reported with the order it was given in."""
        inter = ca.intermediate()
        issued = inter.issue("localhost")
        with pytest.raises(CertificateProblemError) as info:
            build_server(
                cert=(issued.certificate, ca.certificate, inter.certificate), key=issued.private_key
            )
        assert info.value.problem == "chain-out-of-order"
        assert "out of order" in info.value.message

    def test_weak_rsa(self, ca: CertificateAuthority) -> None:
        """A 1024-bit RSA key is refused with the size named."""
        cert, key = pki.leaf(ca, key=pki.weak_rsa_key())
        with pytest.raises(CertificateProblemError) as info:
            build_server(cert=cert, key=key)
        assert info.value.problem == "weak-key"
        assert "1024-bit RSA key" in info.value.message

    def test_sha1_signature(self, ca: CertificateAuthority, tmp_path: Path) -> None:
        """A SHA-1 signed certificate (made with the openssl CLI) is refused."""
        key = ec.generate_private_key(ec.SECP256R1())
        write(tmp_path / "ca.pem", ca.cert_pem)
        write(tmp_path / "ca.key", ca.key_pem)
        write(tmp_path / "leaf.key", pki.key_pem(key))
        (tmp_path / "ext.cnf").write_text("subjectAltName=DNS:localhost\n")
        for args in (
            ["req", "-new", "-key", "leaf.key", "-subj", "/CN=localhost", "-out", "leaf.csr"],
            [
                "x509",
                "-req",
                "-in",
                "leaf.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-sha1",
                "-days",
                "30",
                "-extfile",
                "ext.cnf",
                "-out",
                "leaf.pem",
            ],
        ):
            subprocess.run(
                ["openssl", *args], cwd=tmp_path, check=True, capture_output=True, timeout=30
            )
        with pytest.raises(CertificateProblemError) as info:
            build_server(cert=str(tmp_path / "leaf.pem"), key=key)
        assert info.value.problem == "sha1-signature"
        assert "signed with SHA1" in info.value.message
        # cryptography will not verify SHA-1 itself; the chain check still recognises its issuer.
        from cryptography import x509 as x509_module

        from securelink._material import _signed_by

        leaf_cert = x509_module.load_pem_x509_certificate((tmp_path / "leaf.pem").read_bytes())
        assert _signed_by(leaf_cert, ca.certificate)
        assert not _signed_by(leaf_cert, CertificateAuthority().certificate)


class TestTrustSources:
    """CA sources that cannot anchor anything are refused or warned about."""

    def test_leaf_as_ca(self, server_cert: IssuedCertificate) -> None:
        """Trusting a leaf instead of its CA is refused with the issuer named."""
        with pytest.raises(CertificateProblemError) as info:
            client_context(ClientOptions(ca=server_cert.cert_pem), shared=False)
        assert info.value.problem == "no-ca-certificate"
        assert info.value.source == "the in-memory CA"
        assert "minica.pem" in info.value.hint

    def test_key_as_ca(self, files: dict[str, str]) -> None:
        """A key file given as the CA is recognised."""
        with pytest.raises(MaterialError) as info:
            client_context(ClientOptions(ca=files["key"]), shared=False)
        assert info.value.message == f"{files['key']} holds a PRIVATE KEY, not a certificate."
        assert "ca=/client_ca=" in info.value.hint

    def test_missing_client_ca(self, server_cert: IssuedCertificate, tmp_path: Path) -> None:
        """A missing client_ca file is named as the client CA."""
        missing = str(tmp_path / "clients-ca.pem")
        with pytest.raises(MaterialError) as info:
            server_context(
                server_cert.server_options(
                    client_auth=ClientAuth.REQUIRE_AND_VERIFY, client_ca=missing
                ),
                shared=False,
            )
        assert info.value.message == f"{missing}: no such file; it was given as the client CA."

    def test_all_expired(self) -> None:
        """A CA set in which every certificate has expired is refused."""
        old = CertificateAuthority(valid_for=datetime.timedelta(seconds=-1))
        with pytest.raises(CertificateProblemError) as info:
            client_context(ClientOptions(ca=old.certificate), shared=False)
        assert info.value.problem == "all-cas-expired"
        assert info.value.not_after == old.certificate.not_valid_after_utc

    def test_some_expired_warns(self, ca: CertificateAuthority) -> None:
        """An expired CA beside a valid one is a SecurityWarning."""
        old = CertificateAuthority(valid_for=datetime.timedelta(seconds=-1))
        with pytest.warns(SecurityWarning, match="have expired") as record:
            client_context(ClientOptions(ca=(ca.certificate, old.certificate)), shared=False)
        text = str(record[0].message)
        assert text.startswith("Some CA certificates have expired and will not verify anything: ")
        assert text.endswith(".")

    def test_empty_directory(self, tmp_path: Path) -> None:
        """An empty CA directory is refused."""
        with pytest.raises(MaterialError) as info:
            client_context(ClientOptions(ca=str(tmp_path)), shared=False)
        assert info.value.found == "empty directory"

    def test_directory_with_a_bad_file(self, tmp_path: Path, ca: CertificateAuthority) -> None:
        """A CA directory with a non-certificate names that file."""
        write(tmp_path / "a.pem", ca.cert_pem)
        bad = write(tmp_path / "b.txt", b"notes")
        with pytest.raises(MaterialError) as info:
            client_context(ClientOptions(ca=str(tmp_path)), shared=False)
        assert info.value.source == bad

    def test_unsupported_type(self) -> None:
        """An object securelink cannot read is refused when the options are made, by type."""
        with pytest.raises(ConfigurationError, match=r"not int \(42\)") as info:
            ClientOptions(ca=42)  # type: ignore[arg-type]
        assert info.value.field == "ca"


class TestNoPromptEver:
    """An encrypted key never makes OpenSSL prompt on a terminal."""

    def test_child_process_with_tty_does_not_block(self, tmp_path: Path, server_cert: Any) -> None:
        """Loading an encrypted key without password in a process with a tty fails at once."""
        key = write(tmp_path / "enc.key", server_cert.encrypted_key_pem("s3cret"))
        cert = write(tmp_path / "cert.pem", server_cert.chain_pem, 0o644)
        code = (
            "import securelink\n"
            "try:\n"
            f"    securelink.server_context(securelink.ServerOptions(cert={cert!r}, key={key!r}))\n"
            "except securelink.KeyPasswordError as e:\n"
            "    print('refused', e.reason)\n"
        )
        script = write(tmp_path / "load.py", code.encode(), 0o644)
        import sys

        # `script` gives the child a controlling pseudo-terminal, where OpenSSL would prompt.
        run: Callable[..., subprocess.CompletedProcess[str]] = subprocess.run
        result = run(
            ["script", "-qec", f"{sys.executable} {script}", "/dev/null"],
            capture_output=True,
            text=True,
            timeout=30,
            stdin=subprocess.DEVNULL,
        )
        assert "refused missing" in result.stdout
        assert "pass phrase" not in result.stdout
