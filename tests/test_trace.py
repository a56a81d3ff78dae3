"""Tracing: every handshake message, in order, with its direction and version, on both sides."""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

import pytest

from securelink import ClientAuth, HandshakeMessage, client_context, server_context
from securelink.devca import IssuedCertificate

from .helpers import handshake

VERSIONS = {"TLSv1.2": ssl.TLSVersion.TLSv1_2, "TLSv1.3": ssl.TLSVersion.TLSv1_3}


def names(events: list[HandshakeMessage], role: str) -> list[str]:
    """The messages one side saw, as 'sent X' / 'received X'."""
    return [f"{e.direction} {e.name}" for e in events if e.role == role and e.kind != "alert"]


def run(
    server_cert: IssuedCertificate,
    client_cert: IssuedCertificate,
    *,
    version: str,
    mutual: bool,
) -> list[HandshakeMessage]:
    events: list[HandshakeMessage] = []
    mode = ClientAuth.REQUIRE_AND_VERIFY if mutual else ClientAuth.NONE
    sctx = server_context(
        server_cert.server_options(
            client_auth=mode, max_version=VERSIONS[version], trace=events.append
        )
    )
    options = client_cert.client_options(trace=events.append)
    if not mutual:
        options = options.replace(cert=None, key=None)
    server, client = handshake(sctx, client_context(options))
    assert server.error is None and client.error is None
    assert client.version == version
    return events


TLS13_CLIENT = [
    "sent ClientHello",
    "received ServerHello",
    "received EncryptedExtensions",
    "received Certificate",
    "received CertificateVerify",
    "received Finished",
    "sent Finished",
]
TLS13_SERVER = [
    "received ClientHello",
    "sent ServerHello",
    "sent EncryptedExtensions",
    "sent Certificate",
    "sent CertificateVerify",
    "sent Finished",
    "received Finished",
]


class TestMessageOrder:
    """The trace lists the handshake messages in the order each side sent and received them."""

    def test_tls13(self, server_cert: IssuedCertificate, client_cert: IssuedCertificate) -> None:
        """TLS 1.3 without client certificates: the RFC 8446 flight, then session tickets."""
        events = run(server_cert, client_cert, version="TLSv1.3", mutual=False)
        client = [n for n in names(events, "client") if "ChangeCipherSpec" not in n]
        server = [n for n in names(events, "server") if "ChangeCipherSpec" not in n]
        assert client[: len(TLS13_CLIENT)] == TLS13_CLIENT
        assert server[: len(TLS13_SERVER)] == TLS13_SERVER
        assert "sent NewSessionTicket" in server[len(TLS13_SERVER) :]
        assert {e.version for e in events if e.name == "ServerHello"} == {"TLSv1.3"}

    def test_tls13_mutual(
        self, server_cert: IssuedCertificate, client_cert: IssuedCertificate
    ) -> None:
        """TLS 1.3 with a client certificate: CertificateRequest, then the client's proof."""
        events = run(server_cert, client_cert, version="TLSv1.3", mutual=True)
        client = [n for n in names(events, "client") if "ChangeCipherSpec" not in n]
        assert client[:10] == [
            "sent ClientHello",
            "received ServerHello",
            "received EncryptedExtensions",
            "received CertificateRequest",
            "received Certificate",
            "received CertificateVerify",
            "received Finished",
            "sent Certificate",
            "sent CertificateVerify",
            "sent Finished",
        ]

    def test_tls12(self, server_cert: IssuedCertificate, client_cert: IssuedCertificate) -> None:
        """TLS 1.2: the server's flight ends with ServerHelloDone, then key exchange and CCS."""
        events = run(server_cert, client_cert, version="TLSv1.2", mutual=False)
        client = names(events, "client")
        assert client[:9] == [
            "sent ClientHello",
            "received ServerHello",
            "received Certificate",
            "received ServerKeyExchange",
            "received ServerHelloDone",
            "sent ClientKeyExchange",
            "sent ChangeCipherSpec",
            "sent Finished",
            "received NewSessionTicket",
        ]
        # The sender knows the negotiated version; a received ServerHello is reported before the
        # client has processed it, with the client's highest version.
        sent = [e.version for e in events if e.name == "ServerHello" and e.direction == "sent"]
        assert sent == ["TLSv1.2"]
        later = {e.version for e in events if e.name in {"Certificate", "Finished"}}
        assert later == {"TLSv1.2"}

    def test_tls12_mutual(
        self, server_cert: IssuedCertificate, client_cert: IssuedCertificate
    ) -> None:
        """TLS 1.2 with a client certificate: CertificateRequest before ServerHelloDone."""
        events = run(server_cert, client_cert, version="TLSv1.2", mutual=True)
        server = names(events, "server")
        assert server[:10] == [
            "received ClientHello",
            "sent ServerHello",
            "sent Certificate",
            "sent ServerKeyExchange",
            "sent CertificateRequest",
            "sent ServerHelloDone",
            "received Certificate",
            "received ClientKeyExchange",
            "received CertificateVerify",
            "received Finished",
        ]
        # OpenSSL reports the ChangeCipherSpec it sends, not the one it receives.
        assert "received ChangeCipherSpec" not in server


class TestAlertsAndShape:
    """Alerts are traced too, and each message reads well."""

    def test_alert_traced(self, server_cert: IssuedCertificate) -> None:
        """A client that does not trust the server sends a fatal 'unknown CA' alert."""
        from securelink.devca import CertificateAuthority

        events: list[HandshakeMessage] = []
        sctx = server_context(server_cert.server_options(trace=events.append))
        cctx = client_context(CertificateAuthority().client_options(trace=events.append))
        handshake(sctx, cctx)
        alerts = [(e.role, e.direction, e.name, e.alert_level) for e in events if e.kind == "alert"]
        assert ("client", "sent", "unknown CA", "fatal") in alerts
        assert ("server", "received", "unknown CA", "fatal") in alerts

    def test_str(self, server_cert: IssuedCertificate, client_cert: IssuedCertificate) -> None:
        """str() gives one line: side, arrow, message, version and size."""
        events = run(server_cert, client_cert, version="TLSv1.3", mutual=False)
        first = str(events[0])
        assert first.startswith("client -> ClientHello [TLSv1.3, ")
        assert first.endswith(" bytes]")

    def test_connection_tells_connections_apart(
        self, server_cert: IssuedCertificate, client_cert: IssuedCertificate
    ) -> None:
        """Each event carries its connection object, so concurrent traces can be split."""
        events = run(server_cert, client_cert, version="TLSv1.3", mutual=False)
        assert len({id(e.connection) for e in events}) == 2

    def test_asyncio(self, server_cert: IssuedCertificate, client_cert: IssuedCertificate) -> None:
        """Tracing works for asyncio connections (SSLObject) as well."""
        events: list[HandshakeMessage] = []
        sctx = server_context(server_cert.server_options(trace=events.append))
        cctx = client_context(
            client_cert.client_options(trace=events.append).replace(cert=None, key=None)
        )

        async def main() -> None:
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
                writer.write(b"hi")
                assert await reader.readexactly(2) == b"hi"
                writer.close()
                await writer.wait_closed()

        asyncio.run(asyncio.wait_for(main(), 10))
        client = [n for n in names(events, "client") if "ChangeCipherSpec" not in n]
        assert client[: len(TLS13_CLIENT)] == TLS13_CLIENT

    def test_not_a_callable(self) -> None:
        """The trace option must be a callable."""
        from securelink import ClientOptions, ConfigurationError

        bad: Any = "print"
        with pytest.raises(ConfigurationError) as info:
            ClientOptions(trace=bad)
        assert info.value.field == "trace"

    def test_off_by_default(self) -> None:
        """Contexts without trace= have no message callback (it would slow every record)."""
        assert client_context()._msg_callback is None  # type: ignore[attr-defined]


class TestFaultyCallback:
    """A trace callback that raises cannot break or hang the connection."""

    def test_exception_is_logged(
        self,
        server_cert: IssuedCertificate,
        client_cert: IssuedCertificate,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """The handshake completes and the callback's error is logged on 'securelink'."""

        def broken(message: HandshakeMessage) -> None:
            raise RuntimeError("trace sink is full")

        sctx = server_context(server_cert.server_options())
        cctx = client_context(client_cert.client_options(trace=broken).replace(cert=None, key=None))
        with caplog.at_level("ERROR", logger="securelink"):
            server, client = handshake(sctx, cctx)
        assert client.error is None and server.error is None
        assert client.received == b"pong"
        assert "the trace callback failed on client -> ClientHello" in caplog.text
        assert "trace sink is full" in caplog.text
