"""The built contexts: plain SSLContext objects with the secure settings, new or shared."""

from __future__ import annotations

import os
import ssl
import stat
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from securelink import (
    PKCS12,
    ClientAuth,
    ClientOptions,
    ConfigurationError,
    ServerOptions,
    Trust,
    _material,
    client_context,
    server_context,
)
from securelink._context import MOZILLA_INTERMEDIATE_CIPHERS
from securelink.devca import CertificateAuthority, IssuedCertificate

from .helpers import handshake


class TestSecureDefaults:
    """Client and server contexts carry the documented hardening."""

    def test_plain_sslcontext(self, server_cert: IssuedCertificate) -> None:
        """Both builders return exactly ssl.SSLContext, not a subclass or proxy."""
        assert type(client_context()) is ssl.SSLContext
        assert type(server_context(server_cert.server_options())) is ssl.SSLContext

    def test_client_attributes(self) -> None:
        """The client verifies, checks SAN-only hostnames, and is strict."""
        ctx = client_context()
        assert ctx.protocol is ssl.PROTOCOL_TLS_CLIENT
        assert ctx.verify_mode is ssl.CERT_REQUIRED
        assert ctx.check_hostname is True
        assert ctx.hostname_checks_common_name is False
        assert ctx.minimum_version is ssl.TLSVersion.TLSv1_2
        assert ctx.maximum_version is ssl.TLSVersion.MAXIMUM_SUPPORTED
        assert ctx.verify_flags & ssl.VERIFY_X509_STRICT
        assert ctx.verify_flags & ssl.VERIFY_X509_PARTIAL_CHAIN
        assert ctx.verify_flags & ssl.VERIFY_X509_TRUSTED_FIRST
        assert ctx.options & ssl.OP_NO_COMPRESSION
        assert ctx.options & ssl.OP_NO_RENEGOTIATION
        assert ctx.keylog_filename is None

    def test_server_attributes(self, server_cert: IssuedCertificate) -> None:
        """The server context uses the server method and the same hardening."""
        ctx = server_context(server_cert.server_options())
        assert ctx.protocol is ssl.PROTOCOL_TLS_SERVER
        assert ctx.verify_mode is ssl.CERT_NONE
        assert ctx.minimum_version is ssl.TLSVersion.TLSv1_2
        assert ctx.verify_flags & ssl.VERIFY_X509_STRICT
        assert ctx.options & ssl.OP_NO_COMPRESSION
        assert ctx.options & ssl.OP_NO_RENEGOTIATION

    @pytest.mark.parametrize(
        ("mode", "expected"),
        [
            (ClientAuth.NONE, ssl.CERT_NONE),
            (ClientAuth.VERIFY_IF_GIVEN, ssl.CERT_OPTIONAL),
            (ClientAuth.REQUIRE_AND_VERIFY, ssl.CERT_REQUIRED),
        ],
    )
    def test_client_auth_modes(
        self, server_cert: IssuedCertificate, mode: ClientAuth, expected: ssl.VerifyMode
    ) -> None:
        """Each ClientAuth member maps to its verify_mode."""
        assert server_context(server_cert.server_options(client_auth=mode)).verify_mode is expected

    def test_tls12_ciphers_are_aead_with_forward_secrecy(self) -> None:
        """Only ECDHE with GCM or ChaCha20-Poly1305 is enabled for TLS 1.2."""
        names = [c["name"] for c in client_context().get_ciphers() if c["protocol"] == "TLSv1.2"]
        assert names
        assert set(names) <= set(MOZILLA_INTERMEDIATE_CIPHERS.split(":"))
        for cipher in client_context().get_ciphers():
            assert cipher["aead"] is True

    def test_tls12_suites_are_mozilla_intermediate_5_8(
        self, server_cert: IssuedCertificate
    ) -> None:
        """Mozilla's intermediate 5.8 list, in its order: no DHE-RSA suites on either side."""
        mozilla_5_8 = [
            "ECDHE-ECDSA-AES128-GCM-SHA256",
            "ECDHE-RSA-AES128-GCM-SHA256",
            "ECDHE-ECDSA-AES256-GCM-SHA384",
            "ECDHE-RSA-AES256-GCM-SHA384",
            "ECDHE-ECDSA-CHACHA20-POLY1305",
            "ECDHE-RSA-CHACHA20-POLY1305",
        ]
        assert MOZILLA_INTERMEDIATE_CIPHERS.split(":") == mozilla_5_8
        for ctx in (client_context(), server_context(server_cert.server_options())):
            tls12 = [c for c in ctx.get_ciphers() if c["protocol"] == "TLSv1.2"]
            assert [c["name"] for c in tls12] == mozilla_5_8
            assert {c["kea"] for c in tls12} == {"kx-ecdhe"}

    def test_versions(self) -> None:
        """min_version and max_version reach the context."""
        ctx = client_context(
            ClientOptions(min_version=ssl.TLSVersion.TLSv1_3, max_version=ssl.TLSVersion.TLSv1_3)
        )
        assert ctx.minimum_version is ssl.TLSVersion.TLSv1_3
        assert ctx.maximum_version is ssl.TLSVersion.TLSv1_3

    def test_sslkeylogfile_ignored(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, server_cert: IssuedCertificate
    ) -> None:
        """The SSLKEYLOGFILE environment variable is never honoured."""
        monkeypatch.setenv("SSLKEYLOGFILE", str(tmp_path / "keys.log"))
        assert client_context(shared=False).keylog_filename is None
        assert server_context(server_cert.server_options(), shared=False).keylog_filename is None
        assert not (tmp_path / "keys.log").exists()

    def test_keylog_when_asked(
        self, tmp_path: Path, ca: CertificateAuthority, server_cert: IssuedCertificate
    ) -> None:
        """An explicit keylog is created 0600 and receives the session secrets."""
        path = tmp_path / "keys.log"
        client = client_context(ca.client_options(keylog=str(path)))
        assert client.keylog_filename == str(path)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        _server, result = handshake(server_context(server_cert.server_options()), client)
        assert result.error is None
        assert b"CLIENT_TRAFFIC_SECRET_0" in path.read_bytes()

    def test_keylog_unwritable(self, tmp_path: Path) -> None:
        """A key log that cannot be created is a ConfigurationError naming the field."""
        with pytest.raises(ConfigurationError) as info:
            client_context(ClientOptions(keylog=str(tmp_path / "no" / "such" / "keys.log")))
        assert info.value.field == "keylog"


class TestTrustStores:
    """The ca option resolves to the right trust anchors."""

    def test_certifi_default(self) -> None:
        """The default loads the certifi bundle."""
        import certifi

        with open(certifi.where(), "rb") as f:
            expected = f.read().count(b"-----BEGIN CERTIFICATE-----")
        assert client_context().cert_store_stats()["x509_ca"] == expected

    def test_explicit_ca_replaces_default(self, ca: CertificateAuthority) -> None:
        """An explicit CA is the only trust anchor."""
        ctx = client_context(ca.client_options())
        assert [c["subject"] for c in ctx.get_ca_certs()] == [
            (
                (("organizationName", "securelink development CA"),),
                (
                    (
                        "commonName",
                        ca.certificate.subject.rfc4514_string().split("CN=")[1].split(",")[0],
                    ),
                ),
            )
        ]

    def test_combined_with_certifi(self, ca: CertificateAuthority) -> None:
        """Trust.CERTIFI plus a private CA trusts both."""
        alone = client_context().cert_store_stats()["x509_ca"]
        both = client_context(ClientOptions(ca=(Trust.CERTIFI, ca.certificate)))
        assert both.cert_store_stats()["x509_ca"] == alone + 1

    def test_system_store(
        self, monkeypatch: pytest.MonkeyPatch, ca: CertificateAuthority, tmp_path: Path
    ) -> None:
        """Trust.SYSTEM loads what OpenSSL's default paths point at (SSL_CERT_FILE here)."""
        bundle = tmp_path / "system.pem"
        bundle.write_bytes(ca.cert_pem)
        monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
        monkeypatch.setenv("SSL_CERT_DIR", str(tmp_path / "none"))
        ctx = client_context(ClientOptions(ca=Trust.SYSTEM), shared=False)
        assert ctx.cert_store_stats()["x509_ca"] == 1

    def test_directory_and_der(self, tmp_path: Path, ca: CertificateAuthority) -> None:
        """A directory of PEM and DER files trusts every CA in it."""
        other = CertificateAuthority()
        (tmp_path / "one.pem").write_bytes(ca.cert_pem)
        from cryptography.hazmat.primitives.serialization import Encoding

        (tmp_path / "two.der").write_bytes(other.certificate.public_bytes(Encoding.DER))
        ctx = client_context(ClientOptions(ca=str(tmp_path)))
        assert ctx.cert_store_stats()["x509_ca"] == 2


class TestSharing:
    """A new context per call by default; with shared=True, one per options, rebuilt on change."""

    def test_new_context_by_default(self, server_cert: IssuedCertificate) -> None:
        """Without shared=True, every call builds a context of its own, client and server."""
        assert client_context(ClientOptions()) is not client_context(ClientOptions())
        assert client_context() is not client_context()
        options = server_cert.server_options()
        assert server_context(options) is not server_context(options)

    def test_default_is_not_the_shared_one(self, server_cert: IssuedCertificate) -> None:
        """A default context is never the one handed out with shared=True."""
        assert client_context(shared=True) is not client_context()
        options = server_cert.server_options()
        assert server_context(options, shared=True) is not server_context(options)

    def test_equal_options_share(self, server_cert: IssuedCertificate) -> None:
        """With shared=True, two equal options objects give the very same context."""
        assert client_context(ClientOptions(), shared=True) is client_context(
            ClientOptions(), shared=True
        )
        assert client_context(shared=True) is client_context(ClientOptions(), shared=True)
        first = server_context(server_cert.server_options(), shared=True)
        assert server_context(server_cert.server_options(), shared=True) is first

    def test_different_options_differ(self, ca: CertificateAuthority) -> None:
        """Different options give different shared contexts."""
        assert client_context(ca.client_options(), shared=True) is not client_context(shared=True)

    def test_rebuilt_when_file_changes(self, tmp_path: Path) -> None:
        """Rewriting a CA file rebuilds the shared context with the new contents."""
        path = tmp_path / "ca.pem"
        first_ca, second_ca = CertificateAuthority(), CertificateAuthority()
        path.write_bytes(first_ca.cert_pem)
        options = ClientOptions(ca=str(path))
        first = client_context(options, shared=True)
        assert client_context(options, shared=True) is first
        path.write_bytes(second_ca.cert_pem + first_ca.cert_pem)
        os.utime(path, ns=(time.time_ns(), time.time_ns() + 1_000_000))
        second = client_context(options, shared=True)
        assert second is not first
        assert second.cert_store_stats()["x509_ca"] == 2
        assert first.cert_store_stats()["x509_ca"] == 1  # handed out earlier: left as it was
        assert client_context(options, shared=True) is second

    def test_server_rebuilt_when_key_replaced(
        self, tmp_path: Path, ca: CertificateAuthority
    ) -> None:
        """Replacing the certificate and key files (a renewal) gives a new shared server context."""
        cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
        first = ca.issue("localhost")
        cert.write_bytes(first.chain_pem)
        key.write_bytes(first.key_pem)
        key.chmod(0o600)
        options = ServerOptions(cert=str(cert), key=str(key))
        old = server_context(options, shared=True)
        assert server_context(options, shared=True) is old
        renewed = ca.issue("localhost")
        for path, data in ((cert, renewed.chain_pem), (key, renewed.key_pem)):
            tmp = path.with_suffix(".new")
            tmp.write_bytes(data)
            tmp.chmod(0o600)
            tmp.replace(path)  # atomic rename: a new inode
        assert server_context(options, shared=True) is not old

    def test_unhashable_options_still_work(self, server_cert: IssuedCertificate) -> None:
        """Options holding an unhashable password object are built, just not shared."""

        class Secret(bytes):
            __hash__ = None  # type: ignore[assignment]

        options = ServerOptions(
            cert=server_cert.chain_pem,
            key=server_cert.encrypted_key_pem("pw"),
            password=Secret(b"pw"),
        )
        assert server_context(options, shared=True) is not server_context(options, shared=True)


class TestNoPlaintextKeyOnDisk:
    """Private keys given in memory never reach the disk unencrypted."""

    @pytest.fixture
    def writes(self) -> Iterator[list[tuple[str, Any]]]:
        """Record every open() for writing made in this process while the test runs."""
        events: list[tuple[str, Any]] = []
        active = [True]

        def hook(event: str, args: tuple[Any, ...]) -> None:
            if not active[0]:
                return
            if event == "open":
                path, mode, flags = args
                writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                    isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR)
                )
                if writing:
                    events.append(("open", path))
            elif event in {"os.rename", "shutil.copyfile", "os.truncate"}:
                events.append((event, args))

        sys.addaudithook(hook)
        try:
            yield events
        finally:
            active[0] = False  # audit hooks cannot be removed; switch this one off

    @pytest.mark.parametrize("form", ["object", "pem", "der", "encrypted", "pkcs12"])
    def test_memfd_path(
        self, writes: list[tuple[str, Any]], server_cert: IssuedCertificate, form: str
    ) -> None:
        """Loading from memory in any form opens no file for writing at all."""
        from . import pki

        identities: dict[str, dict[str, Any]] = {
            "object": {"cert": server_cert.certificate, "key": server_cert.private_key},
            "pem": {"cert": server_cert.chain_pem, "key": server_cert.key_pem},
            "der": {
                "cert": pki.der(server_cert.certificate),
                "key": pki.key_der(server_cert.private_key),
            },
            "encrypted": {
                "cert": server_cert.chain_pem,
                "key": server_cert.encrypted_key_pem("pw"),
                "password": "pw",
            },
            "pkcs12": {"cert": PKCS12(server_cert.pkcs12("pw")), "password": "pw"},
        }
        identity = identities[form]
        ctx = server_context(ServerOptions(**identity), shared=False)
        assert writes == []
        client = client_context(ClientOptions(ca=server_cert.root))
        _server, result = handshake(ctx, client)
        assert result.error is None

    def test_fallback_writes_only_encrypted(
        self,
        monkeypatch: pytest.MonkeyPatch,
        writes: list[tuple[str, Any]],
        server_cert: IssuedCertificate,
    ) -> None:
        """Without memfd, the one temporary file holds only an encrypted key and is removed."""
        monkeypatch.setattr(_material, "_memfd_supported", lambda: False)
        seen: dict[str, Any] = {}
        real_unlink = os.unlink

        def inspecting_unlink(path: str) -> None:
            with open(path, "rb") as f:
                seen["data"] = f.read()
            seen["mode"] = stat.S_IMODE(os.stat(path).st_mode)
            seen["path"] = path
            real_unlink(path)

        monkeypatch.setattr(os, "unlink", inspecting_unlink)
        ctx = server_context(
            ServerOptions(cert=server_cert.certificate, key=server_cert.private_key), shared=False
        )
        # mkstemp opens the path; fdopen then re-opens the same descriptor (an int).
        assert [p for _event, p in writes if not isinstance(p, int)] == [seen["path"]]
        assert seen["mode"] == 0o600
        assert b"-----BEGIN ENCRYPTED PRIVATE KEY-----" in seen["data"]
        assert b"-----BEGIN PRIVATE KEY-----" not in seen["data"]
        assert not os.path.exists(seen["path"])
        __server, result = handshake(ctx, client_context(ClientOptions(ca=server_cert.root)))
        assert result.error is None
