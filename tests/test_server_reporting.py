"""A refused client is reported wherever a securelink server context serves.

Each failed server-side handshake is one record on the ``securelink`` logger, naming the client's
address and what was wrong, whichever server runs the context: ``http.server`` and
``socketserver`` (which swallow the error), plain ``asyncio.start_server`` (which logs it only in
debug mode), and ``securelink.aio.start_server`` (which must not report it twice).  A flood of
failures is rate-limited.  Real servers and real handshakes on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import http.server
import logging
import socket
import socketserver
import ssl
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import securelink
import securelink.aio
from securelink import (
    ClientAuth,
    ClientCertificateRequiredError,
    ClientOptions,
    NotTLSError,
    ServerOptions,
    UnknownAuthorityError,
    _report,
    devca,
)

TIMEOUT = 10.0
LOOPBACK = "127.0.0.1"


def extra(record: logging.LogRecord, name: str) -> Any:
    """A field securelink's reporter adds to its records (``extra=``)."""
    return record.__dict__[name]


class Records(logging.Handler):
    """The records of the ``securelink`` logger, from DEBUG up."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.lock_ = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        with self.lock_:
            self.records.append(record)

    def at(self, level: int) -> list[logging.LogRecord]:
        with self.lock_:
            return [r for r in self.records if r.levelno == level]

    def failures(self) -> list[logging.LogRecord]:
        """The WARNING records of single failures (not the summaries)."""
        return [r for r in self.at(logging.WARNING) if hasattr(r, "securelink_error")]

    def summaries(self) -> list[logging.LogRecord]:
        return [r for r in self.at(logging.WARNING) if hasattr(r, "securelink_left_out")]

    def wait_for(self, predicate: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + TIMEOUT
        while not predicate():
            assert time.monotonic() < deadline, f"no {what} in {self.records}"
            time.sleep(0.01)


@pytest.fixture
def reporter(monkeypatch: pytest.MonkeyPatch) -> _report.HandshakeReporter:
    """A fresh reporter (the process-wide one keeps other tests' counts), one-hour intervals."""
    fresh = _report.HandshakeReporter(interval=3600.0)
    monkeypatch.setattr(_report, "reporter", fresh)
    return fresh


@pytest.fixture
def records(reporter: _report.HandshakeReporter) -> Iterator[Records]:
    handler = Records()
    logger = logging.getLogger("securelink")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


@dataclass(frozen=True)
class Pki:
    ca: devca.CertificateAuthority
    server: devca.IssuedCertificate
    client: devca.IssuedCertificate
    stranger: devca.IssuedCertificate  # a client certificate from a CA the server does not trust


@pytest.fixture(scope="module")
def pki() -> Pki:
    ca = devca.CertificateAuthority()
    stranger_ca = devca.CertificateAuthority(common_name="Rogue CA")
    return Pki(
        ca,
        ca.issue("localhost", LOOPBACK, usage=devca.Usage.SERVER),
        ca.issue("client.test", usage=devca.Usage.CLIENT),
        stranger_ca.issue("client.test", usage=devca.Usage.CLIENT),
    )


def mtls_server(pki: Pki) -> ssl.SSLContext:
    return securelink.server_context(
        ServerOptions(
            cert=(pki.server.certificate, *pki.server.chain),
            key=pki.server.private_key,
            client_auth=ClientAuth.REQUIRE_AND_VERIFY,
            client_ca=pki.ca.root,
        )
    )


def client(
    pki: Pki, identity: devca.IssuedCertificate | None = None, *, stdlib: bool = True
) -> ssl.SSLContext:
    """A client context trusting the server; a stdlib one unless *stdlib* is false.

    securelink's clients explain an ambiguous refusal with a diagnostic handshake, which the
    server would report too: the stdlib's keep the count of server-side failures exact.
    """
    if not stdlib:
        return securelink.client_context(ClientOptions(ca=pki.ca.root))
    ctx = ssl.create_default_context(cadata=pki.ca.cert_pem.decode())
    if identity is not None:
        with tempfile.TemporaryDirectory() as tmp:
            cert, key = Path(tmp, "cert.pem"), Path(tmp, "key.pem")
            cert.write_bytes(identity.chain_pem)
            key.write_bytes(identity.key_pem)
            ctx.load_cert_chain(cert, key)
    return ctx


def refused_client(ctx: ssl.SSLContext, port: int) -> tuple[tuple[str, int], BaseException]:
    """Connect with *ctx*, expect a refusal; return this client's address and its error."""
    with socket.create_connection((LOOPBACK, port), timeout=TIMEOUT) as raw:
        here = raw.getsockname()
        try:
            with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
                tls.sendall(b"GET / HTTP/1.0\r\n\r\n")
                tls.recv(1024)  # TLS 1.3: the server's verdict arrives here
        except OSError as exc:
            return (here[0], here[1]), exc
    raise AssertionError("the server accepted the client")


def plaintext_client(port: int) -> tuple[str, int]:
    """Send a plaintext HTTP request to the TLS port; read until the server closes."""
    with socket.create_connection((LOOPBACK, port), timeout=TIMEOUT) as raw:
        here = raw.getsockname()
        raw.sendall(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
        try:
            while raw.recv(4096):
                pass
        except ConnectionResetError:
            pass
    return (here[0], here[1])


@contextmanager
def http_server(
    ctx: ssl.SSLContext, kind: type[http.server.HTTPServer] = http.server.ThreadingHTTPServer
) -> Iterator[int]:
    """An http.server whose listening socket is wrapped by *ctx*, the stdlib recipe."""
    httpd = kind((LOOPBACK, 0), http.server.SimpleHTTPRequestHandler)
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield httpd.server_address[1]
    finally:
        httpd.shutdown()
        thread.join(TIMEOUT)
        httpd.server_close()
        assert not thread.is_alive()


def assert_one_report(
    records: Records, peer: tuple[str, int], kind: type[BaseException]
) -> logging.LogRecord:
    records.wait_for(lambda: bool(records.failures()), "report")
    time.sleep(0.1)  # a second report would come right after the first
    failures = records.failures()
    assert len(failures) == 1, [r.getMessage() for r in failures]
    record = failures[0]
    error = extra(record, "securelink_error")
    assert type(error) is kind
    assert isinstance(error, securelink.HandshakeError)
    assert extra(record, "securelink_peer") == peer
    assert error.peer == peer
    message = record.getMessage()
    assert f"{peer[0]} port {peer[1]}" in message
    assert str(error) in message
    assert record.name == "securelink"
    return record


class TestHttpServer:
    def test_no_client_certificate(self, pki: Pki, records: Records) -> None:
        with http_server(mtls_server(pki)) as port:
            here, _ = refused_client(client(pki), port)
            record = assert_one_report(records, here, ClientCertificateRequiredError)
        assert "sent no certificate" in record.getMessage()

    def test_unknown_ca_sequential_server(self, pki: Pki, records: Records) -> None:
        with http_server(mtls_server(pki), http.server.HTTPServer) as port:
            here, _ = refused_client(client(pki, pki.stranger), port)
            record = assert_one_report(records, here, UnknownAuthorityError)
        assert "Rogue CA" in record.getMessage()

    def test_plaintext_http(self, pki: Pki, records: Records) -> None:
        with http_server(mtls_server(pki)) as port:
            here = plaintext_client(port)
            assert_one_report(records, here, NotTLSError)

    def test_port_check_is_debug_only(self, pki: Pki, records: Records) -> None:
        """A connection closed before a ClientHello (a health check) is no WARNING."""
        with http_server(mtls_server(pki)) as port:
            with socket.create_connection((LOOPBACK, port), timeout=TIMEOUT) as raw:
                here = raw.getsockname()
            records.wait_for(lambda: bool(records.at(logging.DEBUG)), "DEBUG record")
            # A real refusal afterwards is still reported (the check used none of its budget).
            refused_client(client(pki), port)
            records.wait_for(lambda: bool(records.failures()), "report")
        (debug,) = records.at(logging.DEBUG)
        assert extra(debug, "securelink_peer") == (here[0], here[1])
        assert [type(extra(r, "securelink_error")) for r in records.failures()] == [
            ClientCertificateRequiredError
        ]

    def test_silenced(self, pki: Pki, records: Records) -> None:
        logging.getLogger("securelink").setLevel(logging.ERROR)
        with http_server(mtls_server(pki)) as port:
            _, error = refused_client(client(pki, stdlib=False), port)
        assert type(error) is ClientCertificateRequiredError  # the client is still told why
        assert records.records == []


class TestSocketServer:
    def test_threading_tcp_server(self, pki: Pki, records: Records) -> None:
        ctx = mtls_server(pki)

        class Echo(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                self.request.sendall(self.request.recv(1024))

        server = socketserver.ThreadingTCPServer((LOOPBACK, 0), Echo)
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
        thread.start()
        try:
            here, _ = refused_client(client(pki), server.server_address[1])
            assert_one_report(records, here, ClientCertificateRequiredError)
        finally:
            server.shutdown()
            thread.join(TIMEOUT)
            server.server_close()
        assert not thread.is_alive()


async def aio_refused(ctx: ssl.SSLContext, port: int) -> tuple[tuple[str, int], BaseException]:
    """An asyncio client refused by the server; its address and error."""
    return await asyncio.to_thread(refused_client, ctx, port)


class TestAsyncio:
    def test_plain_start_server(self, pki: Pki, records: Records) -> None:
        async def main() -> tuple[tuple[str, int], BaseException]:
            async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
                writer.close()

            server = await asyncio.start_server(handle, LOOPBACK, 0, ssl=mtls_server(pki))
            try:
                port = server.sockets[0].getsockname()[1]
                found = await aio_refused(client(pki, pki.stranger), port)
                await asyncio.to_thread(records.wait_for, lambda: bool(records.failures()), "")
                return found
            finally:
                server.close()
                await server.wait_closed()

        here, _ = asyncio.run(main())
        assert_one_report(records, here, UnknownAuthorityError)

    def test_securelink_aio_start_server_reports_once(self, pki: Pki, records: Records) -> None:
        told: list[securelink.SecureLinkError] = []

        async def main() -> tuple[tuple[str, int], BaseException]:
            async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
                writer.close()

            server = await securelink.aio.start_server(
                handle, LOOPBACK, 0, mtls_server(pki), on_handshake_error=told.append
            )
            try:
                port = server.sockets[0].getsockname()[1]
                found = await aio_refused(client(pki), port)
                await asyncio.to_thread(records.wait_for, lambda: bool(told), "callback")
                return found
            finally:
                server.close()
                await server.wait_closed()

        here, _ = asyncio.run(main())
        record = assert_one_report(records, here, ClientCertificateRequiredError)
        assert told == [extra(record, "securelink_error")]


class TestFlood:
    def test_flood_from_one_address(
        self, pki: Pki, reporter: _report.HandshakeReporter, records: Records
    ) -> None:
        """300 refusals from 127.0.0.1: five records, then one summary counting the rest."""
        total = 300
        with http_server(mtls_server(pki), http.server.HTTPServer) as port:
            for _ in range(total):
                plaintext_client(port)
            records.wait_for(
                lambda: len(records.failures()) + reporter.left_out() == total, "every report"
            )
        reporter.flush()
        failures = records.failures()
        (summary,) = records.summaries()
        assert len(failures) == reporter.per_address == 5
        assert {type(extra(r, "securelink_error")) for r in failures} == {NotTLSError}
        assert extra(summary, "securelink_left_out") == {LOOPBACK: total - 5}
        assert extra(summary, "securelink_left_out_count") + len(failures) == total
        assert f"{total - 5} more failed TLS handshakes were not logged" in summary.getMessage()

    def test_intervals(self, records: Records) -> None:
        """Each interval logs the first few per address, and its summary comes with the next."""
        now = [1000.0]
        reporter = _report.HandshakeReporter(
            interval=10.0, per_address=2, total=3, clock=lambda: now[0]
        )

        def fail(host: str, n: int) -> None:
            for port in range(n):
                reporter.report(ConnectionResetError("reset"), (host, 40000 + port))

        fail("192.0.2.1", 4)  # 2 logged, 2 left out
        fail("192.0.2.2", 3)  # 1 logged (3 in all), 2 left out
        assert len(records.failures()) == 3
        assert reporter.left_out() == 4
        assert records.summaries() == []
        now[0] += 10.0
        fail("192.0.2.3", 1)  # a new interval: the summary first, then this one
        (summary,) = records.summaries()
        assert extra(summary, "securelink_left_out") == {"192.0.2.1": 2, "192.0.2.2": 2}
        assert extra(summary, "securelink_left_out_count") == 4
        assert extra(records.records[-1], "securelink_peer") == ("192.0.2.3", 40000)
        assert len(records.failures()) == 4
        reporter.flush()  # nothing was left out in this interval: no summary
        assert len(records.summaries()) == 1

    def test_reported_once(self, records: Records) -> None:
        reporter = _report.HandshakeReporter()
        error = ConnectionResetError("reset")
        assert reporter.report(error, ("192.0.2.1", 1)) is True
        assert reporter.report(error, ("192.0.2.1", 1)) is False
        assert len(records.failures()) == 1
