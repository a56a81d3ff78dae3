"""Real loopback handshakes between client_context and server_context, in every configuration."""

from __future__ import annotations

import asyncio
import http.client
import http.server
import ssl
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from securelink import (
    PKCS12,
    CertificateSummary,
    ClientAuth,
    ClientCertificateRequiredError,
    ClientOptions,
    HostnameMismatchError,
    SecureLinkError,
    ServerOptions,
    UnknownAuthorityError,
    client_context,
    connect,
    server_context,
)
from securelink.devca import CertificateAuthority, IssuedCertificate, KeyType, Usage

from . import pki
from .explain_peers import serve, tls_handler
from .helpers import handshake

VERSIONS = {
    "TLSv1.2": ssl.TLSVersion.TLSv1_2,
    "TLSv1.3": ssl.TLSVersion.TLSv1_3,
}


@pytest.fixture(scope="module")
def pkis() -> dict[str, tuple[CertificateAuthority, IssuedCertificate, IssuedCertificate]]:
    """An ECDSA and an RSA hierarchy, each with a server and a client certificate."""
    result = {}
    for name, key_type in (("ecdsa", KeyType.ECDSA_P256), ("rsa", KeyType.RSA_2048)):
        ca = CertificateAuthority(key_type=key_type)
        result[name] = (
            ca,
            ca.issue("localhost", "127.0.0.1", "::1", usage=Usage.SERVER, key_type=key_type),
            ca.issue("client.test", usage=Usage.CLIENT, key_type=key_type),
        )
    return result


class TestClientAuthMatrix:
    """Every ClientAuth mode works on TLS 1.2 and 1.3 with ECDSA and RSA."""

    @pytest.mark.parametrize("version", VERSIONS)
    @pytest.mark.parametrize("algorithm", ["ecdsa", "rsa"])
    @pytest.mark.parametrize("mode", list(ClientAuth))
    @pytest.mark.parametrize("present", [True, False], ids=["with-cert", "without-cert"])
    def test_matrix(
        self,
        pkis: dict[str, Any],
        version: str,
        algorithm: str,
        mode: ClientAuth,
        present: bool,
    ) -> None:
        """The handshake succeeds unless a required client certificate is missing."""
        ca, server_cert, client_cert = pkis[algorithm]
        sctx = server_context(
            server_cert.server_options(client_auth=mode, max_version=VERSIONS[version])
        )
        options = client_cert.client_options() if present else ca.client_options()
        if mode is ClientAuth.REQUIRE_AND_VERIFY and not present:
            self._refused(sctx, client_context(options), version)
            return
        server, client = handshake(sctx, client_context(options))
        assert server.error is None and client.error is None
        assert client.version == version == server.version
        assert client.received == b"pong"
        sent = present and mode is not ClientAuth.NONE
        assert bool(server.peer_cert) is sent
        if sent:
            assert server.peer_cert is not None
            assert server.peer_cert["subjectAltName"] == (("DNS", "client.test"),)

    @staticmethod
    def _refused(sctx: ssl.SSLContext, cctx: ssl.SSLContext, version: str) -> None:
        """Both ends explain the refusal of a client without a certificate.

        With TLS 1.3 the client learns it after the handshake, by an alert or (when the server's
        reset wins the race) a diagnostic handshake, so the server must accept a second
        connection, as real servers do: explain_peers.serve does.
        """
        with serve(tls_handler(sctx)) as (port, served):
            with (  # noqa: PT012 - the handshake, the write or the read may fail
                pytest.raises(ClientCertificateRequiredError) as info,
                connect("127.0.0.1", port, cctx, server_hostname="localhost") as tls,
            ):
                tls.sendall(b"ping")
                tls.recv(1024)
            server_error = served.first_error()
        client_error = info.value
        assert type(client_error) is ClientCertificateRequiredError
        assert isinstance(client_error, ssl.SSLError)
        assert (client_error.side, client_error.role) == ("peer", "client")
        assert isinstance(client_error.__cause__, OSError)
        assert not isinstance(client_error.__cause__, SecureLinkError)
        if version == "TLSv1.2":
            assert client_error.reason == "SSLV3_ALERT_HANDSHAKE_FAILURE"
            assert client_error.alert == "handshake failure"
        assert type(server_error) is ClientCertificateRequiredError
        assert isinstance(server_error, ssl.SSLError)
        assert type(server_error.__cause__) is ssl.SSLError
        assert server_error.reason == "PEER_DID_NOT_RETURN_A_CERTIFICATE"
        assert (server_error.side, server_error.role) == ("local", "server")


def _write(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    path.chmod(0o600)
    return str(path)


class TestMaterialForms:
    """Identities and CAs load from paths, PEM, DER, objects and PKCS#12 alike."""

    @pytest.fixture
    def forms(self, tmp_path: Path, server_cert: IssuedCertificate) -> dict[str, dict[str, Any]]:
        """The server identity spelled in each accepted form."""
        c, k = server_cert.certificate, server_cert.private_key
        p12 = server_cert.pkcs12("changeit")
        return {
            "pem-paths": {
                "cert": _write(tmp_path / "c.pem", server_cert.chain_pem),
                "key": _write(tmp_path / "k.pem", server_cert.key_pem),
            },
            "der-paths": {
                "cert": _write(tmp_path / "c.der", pki.der(c)),
                "key": _write(tmp_path / "k.der", pki.key_der(k)),
            },
            "combined-file": {
                "cert": _write(tmp_path / "both.pem", server_cert.key_pem + server_cert.chain_pem),
                "key": str(tmp_path / "both.pem"),
            },
            "pem-bytes": {"cert": server_cert.chain_pem, "key": server_cert.key_pem},
            "der-bytes": {"cert": pki.der(c), "key": pki.key_der(k)},
            "sec1-key": {"cert": c, "key": pki.key_pem(k, fmt="traditional")},
            "sec1-der": {"cert": c, "key": pki.key_der(k, fmt="traditional")},
            "objects": {"cert": c, "key": k},
            "sequence": {"cert": [pki.pem(c)], "key": k},
            "encrypted-str": {
                "cert": c,
                "key": server_cert.encrypted_key_pem("pw"),
                "password": "pw",
            },
            "encrypted-bytes": {
                "cert": c,
                "key": server_cert.encrypted_key_pem("pw"),
                "password": b"pw",
            },
            "encrypted-callable": {
                "cert": c,
                "key": server_cert.encrypted_key_pem("pw"),
                "password": lambda: "pw",
            },
            "pkcs12-path": {
                "cert": PKCS12(_write(tmp_path / "s.p12", p12)),
                "password": "changeit",
            },
            "pkcs12-bytes": {"cert": PKCS12(p12), "password": "changeit"},
            "pkcs12-no-password": {"cert": PKCS12(server_cert.pkcs12())},
        }

    @pytest.mark.parametrize(
        "form",
        [
            "pem-paths",
            "der-paths",
            "combined-file",
            "pem-bytes",
            "der-bytes",
            "sec1-key",
            "sec1-der",
            "objects",
            "sequence",
            "encrypted-str",
            "encrypted-bytes",
            "encrypted-callable",
            "pkcs12-path",
            "pkcs12-bytes",
            "pkcs12-no-password",
        ],
    )
    def test_server_identity(
        self, forms: dict[str, dict[str, Any]], form: str, ca: CertificateAuthority
    ) -> None:
        """A server identity in this form completes a verified handshake."""
        sctx = server_context(ServerOptions(**forms[form]))
        _server, client = handshake(sctx, client_context(ca.client_options()))
        assert client.error is None
        assert client.received == b"pong"

    @pytest.mark.parametrize("form", ["pem-paths", "der-bytes", "objects", "pkcs12-bytes"])
    def test_client_identity(
        self,
        form: str,
        tmp_path: Path,
        ca: CertificateAuthority,
        server_cert: IssuedCertificate,
        client_cert: IssuedCertificate,
    ) -> None:
        """A client identity in this form is accepted by a mutual-TLS server."""
        c, k = client_cert.certificate, client_cert.private_key
        identities: dict[str, dict[str, Any]] = {
            "pem-paths": {
                "cert": _write(tmp_path / "c.pem", client_cert.chain_pem),
                "key": _write(tmp_path / "k.pem", client_cert.key_pem),
            },
            "der-bytes": {"cert": pki.der(c), "key": pki.key_der(k)},
            "objects": {"cert": c, "key": k},
            "pkcs12-bytes": {"cert": PKCS12(client_cert.pkcs12("pw")), "password": "pw"},
        }
        identity = identities[form]
        sctx = server_context(server_cert.server_options(client_auth=ClientAuth.REQUIRE_AND_VERIFY))
        server, client = handshake(
            sctx, client_context(ClientOptions(ca=ca.certificate, **identity))
        )
        assert client.error is None and server.error is None
        assert server.peer_cert is not None
        assert server.peer_cert["subjectAltName"] == (("DNS", "client.test"),)

    @pytest.mark.parametrize("form", ["path", "pem", "der", "object", "directory", "sequence"])
    def test_ca_forms(
        self, form: str, tmp_path: Path, ca: CertificateAuthority, server_cert: IssuedCertificate
    ) -> None:
        """The client trusts the CA given in this form."""
        other = CertificateAuthority()
        (tmp_path / "dir").mkdir()
        _write(tmp_path / "dir" / "ca.pem", ca.cert_pem)
        source: Any = {
            "path": _write(tmp_path / "ca.pem", ca.cert_pem),
            "pem": ca.cert_pem,
            "der": pki.der(ca.certificate),
            "object": ca.certificate,
            "directory": str(tmp_path / "dir"),
            "sequence": [other.certificate, ca.cert_pem],
        }[form]
        _server, client = handshake(
            server_context(server_cert.server_options()), client_context(ClientOptions(ca=source))
        )
        assert client.error is None


class TestNames:
    """Host names are checked against the SubjectAltName only."""

    def test_ip_san_matches(self, ca: CertificateAuthority, server_cert: IssuedCertificate) -> None:
        """Connecting to 127.0.0.1 matches an IP SAN."""
        _server, client = handshake(
            server_context(server_cert.server_options()),
            client_context(ca.client_options()),
            server_hostname="127.0.0.1",
        )
        assert client.error is None

    def test_ipv6_san(self, pkis: dict[str, Any]) -> None:
        """An IPv6 SAN is present and matches ::1 as a name check."""
        _ca, server_cert, _client = pkis["ecdsa"]
        names = server_cert.certificate.extensions.get_extension_for_oid(
            x509.oid.ExtensionOID.SUBJECT_ALTERNATIVE_NAME
        ).value
        assert "::1" in [str(ip) for ip in names.get_values_for_type(x509.IPAddress)]

    def test_hostname_mismatch(
        self, ca: CertificateAuthority, server_cert: IssuedCertificate
    ) -> None:
        """A name the certificate does not hold fails verification with code 62."""
        _server, client = handshake(
            server_context(server_cert.server_options()),
            client_context(ca.client_options()),
            server_hostname="api.example.test",
        )
        e = client.error
        assert type(e) is HostnameMismatchError
        assert isinstance(e, ssl.SSLCertVerificationError)
        assert type(e.__cause__) is ssl.SSLCertVerificationError
        assert e.verify_code == 62
        assert "Hostname mismatch" in e.verify_message
        assert e.expected == "api.example.test"
        assert e.presented == ("localhost", "127.0.0.1")

    def test_ip_mismatch(self, ca: CertificateAuthority) -> None:
        """An IP address the certificate does not hold fails with code 64."""
        dns_only = ca.issue("localhost")
        _server, client = handshake(
            server_context(dns_only.server_options()),
            client_context(ca.client_options()),
            server_hostname="127.0.0.1",
        )
        e = client.error
        assert type(e) is HostnameMismatchError
        assert isinstance(e, ssl.SSLCertVerificationError)
        assert e.verify_code == 64
        assert (e.expected, e.presented) == ("127.0.0.1", ("localhost",))

    def test_common_name_only_rejected(self, ca: CertificateAuthority, tmp_path: Path) -> None:
        """A certificate with CN=localhost but no SAN never matches localhost."""
        cert, key = pki.leaf(ca, names=(), common_name="localhost")
        # securelink refuses to serve it, so serve it with a bare stdlib context.
        certfile = _write(tmp_path / "cn.pem", pki.pem(cert))
        keyfile = _write(tmp_path / "cn.key", pki.key_pem(key))
        stdlib_server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        stdlib_server.load_cert_chain(certfile, keyfile)
        _server, client = handshake(stdlib_server, client_context(ca.client_options()))
        e = client.error
        assert type(e) is HostnameMismatchError
        assert isinstance(e, ssl.SSLCertVerificationError)
        assert e.verify_code == 62
        assert (e.presented, e.common_name) == ((), "localhost")
        assert "Common Names are not checked" in e.message
        # The stdlib default would have accepted it: that is what SAN-only changes.
        lenient = ssl.create_default_context(cafile=None, cadata=ca.cert_pem.decode())
        assert lenient.hostname_checks_common_name is True
        _server, accepted = handshake(stdlib_server, lenient)
        assert accepted.error is None


class TestChains:
    """Intermediates are sent by the server and verified by the client."""

    def test_intermediate(self, ca: CertificateAuthority) -> None:
        """A leaf from an intermediate verifies against the root when the server sends the chain."""
        inter = ca.intermediate()
        leaf = inter.issue("localhost")
        assert leaf.chain == (inter.certificate,)
        _server, client = handshake(
            server_context(leaf.server_options()), client_context(ca.client_options())
        )
        assert client.error is None

    def test_missing_intermediate_fails(self, ca: CertificateAuthority) -> None:
        """Without the intermediate the chain is incomplete (code 20)."""
        inter = ca.intermediate()
        leaf = inter.issue("localhost")
        sctx = server_context(ServerOptions(cert=leaf.certificate, key=leaf.private_key))
        _server, client = handshake(sctx, client_context(ca.client_options()))
        e = client.error
        assert type(e) is UnknownAuthorityError
        assert isinstance(e, ssl.SSLCertVerificationError)
        assert e.verify_code == 20
        # A lone leaf without AIA: a missing intermediate or a foreign CA, the error says both.
        assert e.kind == "unknown-issuer"
        assert e.issuer == inter.certificate.subject.rfc4514_string()
        assert e.chain == (CertificateSummary.from_certificate(leaf.certificate),)

    def test_trusting_the_intermediate(self, ca: CertificateAuthority) -> None:
        """Trusting only the intermediate works on every Python version (partial chains)."""
        inter = ca.intermediate()
        leaf = inter.issue("localhost")
        _server, client = handshake(
            server_context(leaf.server_options()),
            client_context(ClientOptions(ca=inter.certificate)),
        )
        assert client.error is None

    def test_other_ca_rejected(self, server_cert: IssuedCertificate) -> None:
        """A server from another CA fails with unknown issuer (code 20)."""
        _server, client = handshake(
            server_context(server_cert.server_options()),
            client_context(CertificateAuthority().client_options()),
        )
        e = client.error
        assert type(e) is UnknownAuthorityError
        assert isinstance(e, ssl.SSLCertVerificationError)
        assert e.verify_code == 20
        assert e.issuer == server_cert.root.subject.rfc4514_string()


class TestALPN:
    """ALPN protocols are negotiated."""

    def test_alpn(self, ca: CertificateAuthority, server_cert: IssuedCertificate) -> None:
        """The server picks the first protocol both sides list."""
        sctx = server_context(server_cert.server_options(alpn=("h2", "http/1.1")))
        server, client = handshake(sctx, client_context(ca.client_options(alpn=["http/1.1"])))
        assert client.alpn == server.alpn == "http/1.1"


class TestStdlibConsumers:
    """The contexts plug into asyncio, http.client and urllib unchanged."""

    def test_asyncio(
        self,
        ca: CertificateAuthority,
        server_cert: IssuedCertificate,
        client_cert: IssuedCertificate,
    ) -> None:
        """asyncio.start_server and open_connection complete mutual TLS."""
        sctx = server_context(server_cert.server_options(client_auth=ClientAuth.REQUIRE_AND_VERIFY))
        cctx = client_context(client_cert.client_options())

        async def main() -> tuple[bytes, Any]:
            peers: list[Any] = []

            async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
                peers.append(writer.get_extra_info("peercert"))
                writer.write(await reader.readexactly(4))
                await writer.drain()
                writer.close()
                await writer.wait_closed()

            server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=sctx)
            port = server.sockets[0].getsockname()[1]
            async with server:
                reader, writer = await asyncio.open_connection(
                    "127.0.0.1", port, ssl=cctx, server_hostname="localhost"
                )
                writer.write(b"ping")
                data = await reader.read(4)
                writer.close()
                await writer.wait_closed()
            return data, peers[0]

        data, peer = asyncio.run(asyncio.wait_for(main(), 10))
        assert data == b"ping"
        assert peer["subjectAltName"] == (("DNS", "client.test"),)

    @pytest.fixture
    def https(self, server_cert: IssuedCertificate) -> Iterator[int]:
        """An HTTPS server on 127.0.0.1:0 using a securelink server context."""

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = b"hello over TLS"
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        httpd = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        httpd.socket = server_context(server_cert.server_options()).wrap_socket(
            httpd.socket, server_side=True
        )
        thread = threading.Thread(target=httpd.serve_forever, daemon=True)
        thread.start()
        try:
            yield httpd.server_address[1]
        finally:
            httpd.shutdown()
            httpd.server_close()
            thread.join(10)

    def test_http_client(self, https: int, ca: CertificateAuthority) -> None:
        """http.client.HTTPSConnection accepts the context."""
        conn = http.client.HTTPSConnection(
            "localhost", https, context=client_context(ca.client_options()), timeout=10
        )
        try:
            conn.request("GET", "/")
            assert conn.getresponse().read() == b"hello over TLS"
        finally:
            conn.close()

    def test_urllib(self, https: int, ca: CertificateAuthority) -> None:
        """urllib.request.urlopen accepts the context."""
        with urllib.request.urlopen(
            f"https://localhost:{https}/", context=client_context(ca.client_options()), timeout=10
        ) as response:
            assert response.read() == b"hello over TLS"
