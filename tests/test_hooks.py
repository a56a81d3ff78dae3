"""Handshake hooks: verify_connection (both sides) and on_server_name, blocking and asyncio."""

from __future__ import annotations

import asyncio
import hashlib
import ssl
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from securelink import (
    ClientAuth,
    ConfigurationError,
    ConnectionInfo,
    ConnectionRejectedError,
    RemoteError,
    ServerOptions,
    client_context,
    server_context,
)
from securelink.devca import CertificateAuthority, IssuedCertificate, Usage

from .helpers import handshake


def spki_sha256(info: ConnectionInfo) -> str:
    """The SHA-256 of the peer's public key (SubjectPublicKeyInfo), as pinning uses it."""
    cert = info.peer_certificate
    assert cert is not None
    der = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()


class Refuse(Exception):
    """What the test hooks raise."""


@pytest.fixture(scope="module")
def workloads() -> tuple[CertificateAuthority, IssuedCertificate, IssuedCertificate]:
    """A CA, a server and a client that carry SPIFFE IDs as URI SANs."""
    ca = CertificateAuthority()
    server = ca.issue("localhost", "spiffe://example.test/api", usage=Usage.SERVER)
    client = ca.issue("spiffe://example.test/billing", usage=Usage.CLIENT)
    return ca, server, client


class TestClientVerifyConnection:
    """A client's verify_connection hook sees the verified server and can refuse it."""

    def test_info(self, ca: CertificateAuthority, server_cert: IssuedCertificate) -> None:
        """The hook gets the version, cipher, server name and the verified chain."""
        seen: list[ConnectionInfo] = []
        cctx = client_context(ca.client_options(verify_connection=seen.append, alpn=["h2"]))
        sctx = server_context(server_cert.server_options(alpn=["h2"]))
        _server, client = handshake(sctx, cctx)
        assert client.error is None
        (info,) = seen
        assert info.role == "client"
        assert info.version == "TLSv1.3"
        assert info.cipher == client.cipher
        assert info.alpn == "h2"
        assert info.server_name == "localhost"
        assert info.peer_names == ("localhost", "127.0.0.1")
        assert info.peer_chain[0] == server_cert.certificate
        assert info.peer_chain[-1] == ca.certificate  # verified up to the trust anchor
        assert info.peer_address is not None and info.peer_address[0] == "127.0.0.1"

    def test_pinning_rejects(
        self, ca: CertificateAuthority, server_cert: IssuedCertificate
    ) -> None:
        """A pin that does not match the server's key rejects the connection with the reason."""
        expected = "00" * 32

        def pin(info: ConnectionInfo) -> None:
            if spki_sha256(info) != expected:
                raise Refuse(f"public key {spki_sha256(info)[:16]}... is not pinned")

        cctx = client_context(ca.client_options(verify_connection=pin))
        server, client = handshake(server_context(server_cert.server_options()), cctx)
        error = client.error
        assert type(error) is ConnectionRejectedError
        assert error.hook == "verify_connection"
        assert error.hook_reason.endswith("is not pinned")
        assert type(error.__cause__) is Refuse
        assert (error.side, error.role) == ("local", "client")
        assert "This client's verify_connection hook rejected the server" in error.message
        assert isinstance(error, ssl.SSLError)
        # The server saw the client hang up (no data was ever exchanged).
        assert server.received == b""

    def test_pinning_accepts(
        self, ca: CertificateAuthority, server_cert: IssuedCertificate
    ) -> None:
        """The right pin lets the connection through."""
        pins: set[str] = set()

        def learn(info: ConnectionInfo) -> None:
            pins.add(spki_sha256(info))

        handshake(
            server_context(server_cert.server_options()),
            client_context(ca.client_options(verify_connection=learn)),
        )

        def pin(info: ConnectionInfo) -> None:
            if spki_sha256(info) not in pins:
                raise Refuse("not pinned")

        cctx = client_context(ca.client_options(verify_connection=pin))
        _server, client = handshake(server_context(server_cert.server_options()), cctx)
        assert client.error is None
        assert client.received == b"pong"

    def test_not_called_when_verification_fails(self, server_cert: IssuedCertificate) -> None:
        """The hook runs only after the chain verified; a failing chain never reaches it."""
        calls: list[ConnectionInfo] = []
        other = CertificateAuthority()
        cctx = client_context(other.client_options(verify_connection=calls.append))
        _server, client = handshake(server_context(server_cert.server_options()), cctx)
        assert client.error is not None
        assert calls == []

    def test_must_be_callable(self) -> None:
        """A non-callable hook is refused when the options are built."""
        bad: Any = "not callable"
        with pytest.raises(ConfigurationError) as info:
            ServerOptions(cert="c.pem", key="k.pem", verify_connection=bad)
        assert info.value.field == "verify_connection"


class TestServerVerifyConnection:
    """A server's verify_connection hook sees the verified client (mTLS) and can refuse it."""

    def test_spiffe_allow_list(
        self, workloads: tuple[CertificateAuthority, IssuedCertificate, IssuedCertificate]
    ) -> None:
        """Only listed SPIFFE IDs are accepted; others are refused by name."""
        _ca, server_cert, client_cert = workloads
        allowed = {"spiffe://example.test/frontend"}

        def allow(info: ConnectionInfo) -> None:
            ids = [n for n in info.peer_names if n.startswith("spiffe://")]
            if not set(ids) & allowed:
                raise Refuse(f"{ids} not allowed")

        sctx = server_context(
            server_cert.server_options(
                client_auth=ClientAuth.REQUIRE_AND_VERIFY, verify_connection=allow
            )
        )
        server, client = handshake(sctx, client_context(client_cert.client_options()))
        error = server.error
        assert type(error) is ConnectionRejectedError
        assert (error.side, error.role, error.hook) == ("local", "server", "verify_connection")
        assert "(spiffe://example.test/billing)" in error.message
        assert "['spiffe://example.test/billing'] not allowed" in error.message
        # The client, whose handshake had completed, sees the connection closed on it.
        assert client.error is not None or client.received == b""

    def test_logging_who_connected(
        self, workloads: tuple[CertificateAuthority, IssuedCertificate, IssuedCertificate]
    ) -> None:
        """A recording hook sees the client's URI SAN and the SNI the client sent."""
        _ca, server_cert, client_cert = workloads
        seen: list[ConnectionInfo] = []
        sctx = server_context(
            server_cert.server_options(
                client_auth=ClientAuth.REQUIRE_AND_VERIFY, verify_connection=seen.append
            )
        )
        _server, client = handshake(sctx, client_context(client_cert.client_options()))
        assert client.error is None
        (info,) = seen
        assert info.role == "server"
        assert info.server_name == "localhost"
        assert info.peer_names == ("spiffe://example.test/billing",)
        assert info.peer_chain[0] == client_cert.certificate


class TestOnServerName:
    """The on_server_name hook sees the requested name before the certificate is chosen."""

    def test_called_with_sni(
        self, ca: CertificateAuthority, server_cert: IssuedCertificate
    ) -> None:
        """The hook is called with the name the client asked for."""
        names: list[str | None] = []
        sctx = server_context(server_cert.server_options(on_server_name=names.append))
        _server, client = handshake(sctx, client_context(ca.client_options()))
        assert client.error is None
        assert names == ["localhost"]

    def test_no_sni_for_ip_addresses(
        self, ca: CertificateAuthority, server_cert: IssuedCertificate
    ) -> None:
        """A client connecting by IP address sends no SNI, so the hook gets None."""
        names: list[str | None] = []
        sctx = server_context(server_cert.server_options(on_server_name=names.append))
        _server, client = handshake(
            sctx, client_context(ca.client_options()), server_hostname="127.0.0.1"
        )
        assert client.error is None
        assert names == [None]

    def test_refusing(self, ca: CertificateAuthority, server_cert: IssuedCertificate) -> None:
        """Raising refuses the name: the client gets 'unrecognized name', the server says why."""

        def only_api(name: str | None) -> None:
            if name != "api.test":
                raise Refuse(f"this server does not serve {name}")

        sctx = server_context(server_cert.server_options(on_server_name=only_api))
        server, client = handshake(sctx, client_context(ca.client_options()))
        assert type(server.error) is ConnectionRejectedError
        assert server.error.hook == "on_server_name"
        assert server.error.hook_reason == "this server does not serve localhost"
        assert type(server.error.__cause__) is Refuse
        assert type(client.error) is RemoteError
        assert client.error.alert == "unrecognized name"


class TestAsyncio:
    """Hooks work the same through asyncio streams."""

    def test_client_hook_rejects(
        self, ca: CertificateAuthority, server_cert: IssuedCertificate
    ) -> None:
        """asyncio.open_connection raises ConnectionRejectedError when the hook refuses."""

        def refuse(info: ConnectionInfo) -> None:
            raise Refuse(f"no thanks, {info.server_name}")

        sctx = server_context(server_cert.server_options())
        cctx = client_context(ca.client_options(verify_connection=refuse))

        async def main() -> BaseException | None:
            async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
                writer.close()

            server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=sctx)
            async with server:
                port = server.sockets[0].getsockname()[1]
                try:
                    await asyncio.open_connection(
                        "127.0.0.1", port, ssl=cctx, server_hostname="localhost"
                    )
                except ConnectionRejectedError as exc:
                    return exc
            return None

        error = asyncio.run(asyncio.wait_for(main(), 10))
        assert type(error) is ConnectionRejectedError
        assert error.hook_reason == "no thanks, localhost"

    def test_server_hook_sees_client(
        self, workloads: tuple[CertificateAuthority, IssuedCertificate, IssuedCertificate]
    ) -> None:
        """A server hook runs for asyncio servers too, with the client's identity."""
        _ca, server_cert, client_cert = workloads
        seen: list[ConnectionInfo] = []
        sctx = server_context(
            server_cert.server_options(
                client_auth=ClientAuth.REQUIRE_AND_VERIFY, verify_connection=seen.append
            )
        )
        cctx = client_context(client_cert.client_options())

        async def main() -> bytes:
            async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
                writer.write(await reader.readexactly(2))
                await writer.drain()
                writer.close()

            server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=sctx)
            async with server:
                port = server.sockets[0].getsockname()[1]
                reader, writer = await asyncio.open_connection(
                    "127.0.0.1", port, ssl=cctx, server_hostname="localhost"
                )
                writer.write(b"ok")
                data = await reader.readexactly(2)
                writer.close()
                await writer.wait_closed()
                return data

        assert asyncio.run(asyncio.wait_for(main(), 10)) == b"ok"
        (info,) = seen
        assert info.peer_names == ("spiffe://example.test/billing",)
        assert info.peer_address is None or info.peer_address[0] == "127.0.0.1"


class TestUnixSockets:
    """Contexts work over socket pairs (AF_UNIX), where there is no (host, port) peer."""

    def test_socketpair(self, ca: CertificateAuthority, server_cert: IssuedCertificate) -> None:
        """A handshake over socket.socketpair() completes, hooks and all."""
        import socket
        import threading

        seen: list[ConnectionInfo] = []
        sctx = server_context(server_cert.server_options())
        cctx = client_context(ca.client_options(verify_connection=seen.append))
        left, right = socket.socketpair()
        errors: list[BaseException] = []

        def serve() -> None:
            try:
                with sctx.wrap_socket(right, server_side=True) as tls:
                    tls.sendall(tls.recv(2))
            except (OSError, ssl.SSLError) as exc:  # pragma: no cover - reported below
                errors.append(exc)

        thread = threading.Thread(target=serve)
        thread.start()
        with cctx.wrap_socket(left, server_hostname="localhost") as tls:
            tls.sendall(b"ok")
            assert tls.recv(2) == b"ok"
        thread.join(10)
        assert errors == []
        assert seen[0].peer_address is None
