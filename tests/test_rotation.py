"""RotatingServerContext: material replaced while serving, on demand, by polling, on a signal."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import os
import signal
import socket
import ssl
import threading
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any, TypeVar

import pytest
from cryptography.hazmat.primitives import serialization

import securelink
import securelink.aio
from securelink import (
    ClientAuth,
    ConfigurationError,
    ConnectionInfo,
    ConnectionRejectedError,
    KeyMismatchError,
    MaterialError,
    SecureLinkError,
    ServerOptions,
    _rotation,
    client_context,
    server_context,
)
from securelink._rotation import RotatingServerContext
from securelink._sockets import SecureLinkSSLObject, SecureLinkSSLSocket
from securelink.devca import CertificateAuthority, IssuedCertificate, Usage

from .helpers import handshake, tls_client, tls_server

_T = TypeVar("_T")
TIMEOUT = 10.0
POLL = 0.02  # seconds between polls in these tests


def run(main: Coroutine[Any, Any, _T]) -> _T:
    """Run a coroutine in a new event loop, with a time limit."""
    return asyncio.run(asyncio.wait_for(main, TIMEOUT))


def wait_until(predicate: Callable[[], bool], what: str, timeout: float = TIMEOUT) -> None:
    """Wait until *predicate* holds, or fail naming *what* was awaited."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.005)


def der(issued: IssuedCertificate) -> bytes:
    return issued.certificate.public_bytes(serialization.Encoding.DER)


def summary(issued: IssuedCertificate) -> securelink.CertificateSummary:
    return securelink.CertificateSummary.from_certificate(issued.certificate)


class Pki:
    """One CA, two server identities (a and b) from it, clients from it and from another CA."""

    def __init__(self) -> None:
        self.ca = CertificateAuthority()
        self.other_ca = CertificateAuthority()
        self.a = self.ca.issue("localhost", "127.0.0.1", usage=Usage.SERVER)
        self.b = self.ca.issue("localhost", "127.0.0.1", usage=Usage.SERVER)
        self.client = self.ca.issue("client.test", usage=Usage.CLIENT)
        self.other_client = self.other_ca.issue("other.test", usage=Usage.CLIENT)

    def client_ctx(self, issued: IssuedCertificate | None = None) -> ssl.SSLContext:
        """A client context trusting the CA, presenting *issued* if given."""
        if issued is None:
            return client_context(securelink.ClientOptions(ca=self.ca.cert_pem))
        return client_context(
            securelink.ClientOptions(ca=self.ca.cert_pem, cert=issued.chain_pem, key=issued.key_pem)
        )


@pytest.fixture(scope="module")
def pki() -> Pki:
    return Pki()


@pytest.fixture(autouse=True)
def _no_threads_left() -> Iterator[None]:
    """Every test stops the threads it started."""
    yield
    names = {"securelink-rotation", "securelink-reload"}
    assert [t for t in threading.enumerate() if t.name in names] == []


#: Makes a client context built with the standard library alone, for connections the server
#: refuses: a securelink client would explain the refusal with a diagnostic handshake, which
#: the one-connection test server leaves unanswered for seconds.
StdlibClient = Callable[[IssuedCertificate | None], ssl.SSLContext]


@pytest.fixture(scope="module")
def stdlib_client(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> StdlibClient:
    directory = tmp_path_factory.mktemp("stdlib-clients")

    def make(issued: IssuedCertificate | None) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(cadata=pki.ca.cert_pem.decode())
        if issued is not None:
            path = directory / f"{issued.certificate.serial_number}.pem"
            write(path, issued.chain_pem + issued.key_pem)
            ctx.load_cert_chain(path)
        return ctx

    return make


def write(path: Path, data: bytes, *, atomic: bool = False) -> None:
    """Write *data* to *path* (mode 0600), in place or by renaming a new file over it."""
    if atomic:
        tmp = path.with_name(path.name + ".new")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    else:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)


class Files:
    """A server's certificate and key files, which a test rewrites."""

    def __init__(self, directory: Path, issued: IssuedCertificate) -> None:
        self.cert = directory / "server.pem"
        self.key = directory / "server-key.pem"
        self.put(issued)

    def put(self, issued: IssuedCertificate, *, atomic: bool = False) -> None:
        write(self.key, issued.key_pem, atomic=atomic)
        write(self.cert, issued.chain_pem, atomic=atomic)

    def options(self, **kwargs: Any) -> ServerOptions:
        return ServerOptions(cert=str(self.cert), key=str(self.key), **kwargs)


@pytest.fixture
def files(tmp_path: Path, pki: Pki) -> Files:
    return Files(tmp_path, pki.a)


@contextmanager
def rotating(options: ServerOptions, **kwargs: Any) -> Iterator[RotatingServerContext]:
    """A RotatingServerContext whose threads are stopped when the test ends."""
    rot = RotatingServerContext(options, **kwargs)
    try:
        yield rot
    finally:
        rot.stop(TIMEOUT)
        assert not rot.polling


def served(rot: RotatingServerContext, pki: Pki, *, server_hostname: str = "localhost") -> bytes:
    """The certificate a new client connection is given (DER)."""
    server, client = handshake(rot.context, pki.client_ctx(), server_hostname=server_hostname)
    assert client.error is None, client.error
    assert server.error is None, server.error
    assert client.peer_der is not None
    return client.peer_der


def last_error(rot: RotatingServerContext) -> SecureLinkError | None:
    """rot.last_error, read afresh (a call, so type checkers do not carry narrowing over)."""
    return rot.last_error


def polling(rot: RotatingServerContext) -> bool:
    """rot.polling, read afresh."""
    return rot.polling


def securelink_records(caplog: pytest.LogCaptureFixture, level: int) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "securelink" and r.levelno == level]


class TestServing:
    """The stable context serves the current material through securelink's classes."""

    def test_plain_context_serving_the_initial_certificate(self, pki: Pki) -> None:
        """.context is a plain ssl.SSLContext that serves the certificate it was built with."""
        with rotating(pki.a.server_options()) as rot:
            assert type(rot.context) is ssl.SSLContext
            assert rot.context.sslsocket_class is SecureLinkSSLSocket
            assert rot.context.sslobject_class is SecureLinkSSLObject
            assert der(pki.a) == served(rot, pki)
            assert rot.generation == 1
            assert rot.last_error is None
            assert pki.a.certificate.not_valid_after_utc == rot.not_after

    def test_client_without_server_name(self, pki: Pki) -> None:
        """A client that sends no SNI (it connects by IP address) gets the current material."""
        with rotating(pki.a.server_options()) as rot:
            assert der(pki.a) == served(rot, pki, server_hostname="127.0.0.1")
            rot.reload(pki.b.server_options())
            assert der(pki.b) == served(rot, pki, server_hostname="127.0.0.1")

    def test_server_side_socket_class(self, pki: Pki) -> None:
        """Connections accepted through .context are securelink's socket class."""
        with rotating(pki.a.server_options()) as rot:
            listener = socket.create_server(("127.0.0.1", 0))
            with listener:
                classes: list[type] = []

                def serve() -> None:
                    conn, _ = listener.accept()
                    with rot.context.wrap_socket(conn, server_side=True) as tls:
                        classes.append(type(tls))
                        tls.sendall(tls.recv(4))

                thread = threading.Thread(target=serve)
                thread.start()
                client = tls_client(pki.client_ctx(), listener.getsockname()[1])
                thread.join(TIMEOUT)
            assert client.error is None
            assert [SecureLinkSSLSocket] == classes

    def test_failures_explained_as_with_a_plain_context(
        self, pki: Pki, stdlib_client: StdlibClient
    ) -> None:
        """A refused handshake is explained with the same securelink class as without rotation."""
        options = pki.a.server_options(
            client_auth=ClientAuth.REQUIRE_AND_VERIFY, client_ca=pki.ca.cert_pem
        )
        errors = []
        for ctx in (server_context(options), RotatingServerContext(options).context):
            server, client = handshake(ctx, stdlib_client(None))  # no client certificate
            # The server's side only: how the client learns of a TLS 1.3 refusal is a race
            # (the alert, or an EOF before it) that rotation has no part in.
            assert client.error is not None
            assert isinstance(server.error, SecureLinkError)
            errors.append(type(server.error))
        assert errors == [securelink.ClientCertificateRequiredError] * 2

    def test_not_tls_explained(self, pki: Pki) -> None:
        """A client that does not speak TLS is explained as with a plain context."""
        errors = []
        plain = server_context(pki.a.server_options())
        for ctx in (plain, RotatingServerContext(pki.a.server_options()).context):
            with (
                tls_server(ctx) as (port, side),
                socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as raw,
                contextlib.suppress(OSError),
            ):
                raw.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                raw.recv(1024)
            errors.append(type(side.error))
        assert errors[0] == errors[1]
        assert issubclass(errors[0], securelink.NotTLSError)

    def test_established_connection_keeps_its_material(self, pki: Pki) -> None:
        """A reload does not touch connections already made; new ones get the new material."""
        with rotating(pki.a.server_options()) as rot:
            listener = socket.create_server(("127.0.0.1", 0))
            port = listener.getsockname()[1]
            results: list[bytes] = []

            def serve() -> None:
                conn, _ = listener.accept()
                with rot.context.wrap_socket(conn, server_side=True) as tls:
                    while data := tls.recv(100):
                        tls.sendall(data.upper())
                        results.append(data)

            thread = threading.Thread(target=serve)
            thread.start()
            try:
                raw = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
                with pki.client_ctx().wrap_socket(raw, server_hostname="localhost") as tls:
                    tls.sendall(b"before")
                    assert tls.recv(100) == b"BEFORE"
                    rot.reload(pki.b.server_options())
                    assert der(pki.b) == served(rot, pki)
                    tls.sendall(b"after")
                    assert tls.recv(100) == b"AFTER"
                    assert der(pki.a) == tls.getpeercert(binary_form=True)
            finally:
                thread.join(TIMEOUT)
                listener.close()
            assert results == [b"before", b"after"]

    @pytest.mark.parametrize("shrink", [False, True], ids=["same-client-CA", "CA-removed"])
    def test_sessions_and_reloads(
        self, pki: Pki, shrink: bool, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Sessions survive a reload that keeps the client CAs; removing a CA ends resumption.

        Tickets belong to .context, which outlives reloads, and a resumed session is not
        verified again: after a client CA is removed, an old ticket would let its clients back
        in, so the server stops resuming sessions altogether.
        """
        options = pki.a.server_options(
            client_auth=ClientAuth.REQUIRE_AND_VERIFY, client_ca=pki.ca.cert_pem
        )
        client_ctx = client_context(
            securelink.ClientOptions(
                ca=pki.ca.cert_pem, cert=pki.client.chain_pem, key=pki.client.key_pem
            ),
            shared=False,
        )
        server_errors: list[BaseException] = []
        with rotating(options) as rot, socket.create_server(("127.0.0.1", 0)) as listener:
            port = listener.getsockname()[1]

            def serve() -> None:
                for _ in range(2):
                    conn, _ = listener.accept()
                    try:
                        with rot.context.wrap_socket(conn, server_side=True) as tls:
                            tls.sendall(b"hello")
                            tls.recv(1)
                    except OSError as exc:
                        server_errors.append(exc)
                    finally:
                        conn.close()

            thread = threading.Thread(target=serve)
            thread.start()
            try:
                with (
                    socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as raw,
                    client_ctx.wrap_socket(raw, server_hostname="localhost") as tls,
                ):
                    tls.recv(5)  # the TLS 1.3 tickets arrive with the first data
                    session = tls.session
                    tls.sendall(b"x")
                trusted = pki.other_ca.cert_pem if shrink else pki.ca.cert_pem
                with caplog.at_level("WARNING", logger="securelink"):
                    rot.reload(options.replace(client_ca=trusted))
                outcome: object
                try:
                    with (
                        socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as raw,
                        client_ctx.wrap_socket(
                            raw, server_hostname="localhost", session=session
                        ) as tls,
                    ):
                        tls.recv(5)
                        outcome = tls.session_reused
                        tls.sendall(b"x")
                except OSError as exc:
                    outcome = exc
            finally:
                thread.join(TIMEOUT)
        if shrink:
            assert isinstance(outcome, OSError)  # a full handshake, and the client is refused
            assert [type(e) for e in server_errors] == [securelink.UnknownAuthorityError]
            assert "a client CA was removed: this server no longer resumes TLS sessions" in (
                caplog.text
            )
        else:
            assert outcome is True
            assert server_errors == []
            assert "no longer resumes" not in caplog.text


class TestReload:
    """reload() re-reads the files, or takes new options; bad material changes nothing."""

    def test_rereads_files(self, pki: Pki, files: Files) -> None:
        """After the files are rewritten, reload() serves them and returns their summary."""
        with rotating(files.options()) as rot:
            assert der(pki.a) == served(rot, pki)
            files.put(pki.b)
            assert der(pki.a) == served(rot, pki)  # nothing happens without a reload
            summary = rot.reload()
            assert der(pki.b) == served(rot, pki)
            assert summary == rot.certificate
            assert pki.b.certificate.not_valid_after_utc == summary.not_after
            assert rot.generation == 2
            assert rot.last_error is None

    def test_new_options_in_memory(self, pki: Pki) -> None:
        """reload(options) replaces material held in memory."""
        with rotating(pki.a.server_options()) as rot:
            rot.reload(ServerOptions(cert=pki.b.chain_pem, key=pki.b.key_pem))
            assert der(pki.b) == served(rot, pki)
            assert pki.b.chain_pem == rot.options.cert

    def test_bad_file_keeps_serving(self, pki: Pki, files: Files) -> None:
        """A file that is not a certificate raises MaterialError; the old one is still served."""
        with rotating(files.options()) as rot:
            write(files.cert, b"not a certificate\n")
            with pytest.raises(MaterialError) as info:
                rot.reload()
            assert str(files.cert) == info.value.source
            assert info.value.found == "unknown"
            assert info.value is rot.last_error
            assert rot.generation == 1
            assert der(pki.a) == served(rot, pki)
            files.put(pki.b)
            rot.reload()
            assert last_error(rot) is None
            assert der(pki.b) == served(rot, pki)

    def test_key_mismatch_keeps_serving(self, pki: Pki, files: Files) -> None:
        """A certificate whose key is not the one in the key file is refused."""
        with rotating(files.options()) as rot:
            write(files.cert, pki.b.chain_pem)  # b's certificate, a's key
            with pytest.raises(KeyMismatchError) as info:
                rot.reload()
            assert str(files.key) == info.value.source
            assert der(pki.a) == served(rot, pki)

    def test_missing_file_keeps_serving(self, pki: Pki, files: Files) -> None:
        """A file that disappeared is refused, naming it."""
        with rotating(files.options()) as rot:
            files.key.unlink()
            with pytest.raises(MaterialError) as info:
                rot.reload()
            assert str(files.key) == info.value.source
            assert der(pki.a) == served(rot, pki)

    def test_expired_certificate_refused(self, pki: Pki) -> None:
        """An expired certificate is refused with the reason, and not served."""
        now = datetime.datetime.now(datetime.UTC)
        expired = pki.ca.issue(
            "localhost",
            usage=Usage.SERVER,
            not_before=now - datetime.timedelta(days=10),
            not_after=now - datetime.timedelta(days=1),
        )
        with rotating(pki.a.server_options()) as rot:
            with pytest.raises(securelink.CertificateProblemError) as info:
                rot.reload(expired.server_options())
            assert info.value.problem == "expired"
            assert der(pki.a) == served(rot, pki)

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("min_version", ssl.TLSVersion.TLSv1_3),
            ("max_version", ssl.TLSVersion.TLSv1_2),
            ("client_auth", ClientAuth.VERIFY_IF_GIVEN),
        ],
    )
    def test_fixed_fields_refused(self, pki: Pki, field: str, value: object) -> None:
        """Options that OpenSSL takes from the stable context cannot change on a reload."""
        assert field in RotatingServerContext.FIXED_FIELDS
        changes: dict[str, Any] = {field: value}
        if field == "client_auth":
            changes["client_ca"] = pki.ca.cert_pem
        with rotating(pki.a.server_options()) as rot:
            with pytest.raises(ConfigurationError) as info:
                rot.reload(rot.options.replace(**changes))
            assert field == info.value.field
            assert info.value is rot.last_error
            assert rot.generation == 1

    def test_not_options(self, pki: Pki) -> None:
        """reload() takes ServerOptions only."""
        with rotating(pki.a.server_options()) as rot, pytest.raises(TypeError):
            rot.reload(pki.client_ctx())  # type: ignore[arg-type]

    def test_alpn_can_change(self, pki: Pki) -> None:
        """ALPN comes from the current material's context."""
        with rotating(pki.a.server_options(alpn=["http/1.1"])) as rot:
            rot.reload(pki.b.server_options(alpn=["h2"]))
            client_ctx = client_context(securelink.ClientOptions(ca=pki.ca.cert_pem, alpn=["h2"]))
            _server, client = handshake(rot.context, client_ctx)
            assert client.error is None
            assert client.alpn == "h2"


class TestPolling:
    """The polling thread reloads when the files change, and reports what it cannot use."""

    @pytest.mark.parametrize("atomic", [True, False], ids=["atomic-rename", "in-place"])
    def test_file_change(self, pki: Pki, files: Files, atomic: bool) -> None:
        """A rewritten certificate and key are served without any call."""
        with rotating(files.options(), poll_interval=POLL) as rot:
            rot.start()
            assert rot.polling
            assert der(pki.a) == served(rot, pki)
            files.put(pki.b, atomic=atomic)
            wait_until(lambda: rot.generation == 2, "the reload")
            assert der(pki.b) == served(rot, pki)
            assert rot.last_error is None

    def test_context_manager(self, pki: Pki, files: Files) -> None:
        """`with` starts and stops the polling thread."""
        rot = RotatingServerContext(files.options(), poll_interval=POLL)
        with rot as entered:
            assert entered is rot
            assert rot.polling
            files.put(pki.b, atomic=True)
            wait_until(lambda: rot.generation == 2, "the reload")
        assert not polling(rot)
        assert not any(t.name == "securelink-rotation" for t in threading.enumerate())

    def test_start_stop_idempotent(self, pki: Pki) -> None:
        """start() twice runs one thread; stop() twice is harmless; it can start again."""
        with rotating(pki.a.server_options(), poll_interval=POLL) as rot:
            rot.start()
            rot.start()
            assert sum(t.name == "securelink-rotation" for t in threading.enumerate()) == 1
            rot.stop()
            rot.stop()
            assert not rot.polling
            rot.start()
            assert rot.polling

    def test_unchanged_files_not_reloaded(self, pki: Pki, files: Files) -> None:
        """Polling reads nothing while nothing changes."""
        with rotating(files.options(), poll_interval=POLL) as rot:
            rot.start()
            time.sleep(10 * POLL)
            assert rot.generation == 1

    def test_bad_file_reported_once(
        self, pki: Pki, files: Files, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A bad file: one WARNING, last_error, on_error; serving goes on; a fix is picked up."""
        reported: list[SecureLinkError] = []
        caplog.set_level(logging.INFO, logger="securelink")
        with rotating(files.options(), poll_interval=POLL, on_error=reported.append) as rot:
            rot.start()
            write(files.cert, b"-----BEGIN CERTIFICATE-----\ntruncated\n", atomic=True)
            wait_until(lambda: bool(reported), "the error report")
            time.sleep(10 * POLL)  # more polls of the same bad file: no more reports
            assert len(reported) == 1
            error = reported[0]
            assert isinstance(error, MaterialError)
            assert str(files.cert) == error.source
            assert error is rot.last_error
            assert rot.generation == 1
            assert der(pki.a) == served(rot, pki)
            warnings = securelink_records(caplog, logging.WARNING)
            assert len(warnings) == 1
            message = warnings[0].getMessage()
            assert "\n" not in message
            assert str(files.cert) in message
            assert "still serving" in message
            files.put(pki.b, atomic=True)
            wait_until(lambda: rot.generation == 2, "the reload after the fix")
            assert last_error(rot) is None
            assert der(pki.b) == served(rot, pki)
            assert len(reported) == 1
            infos = securelink_records(caplog, logging.INFO)
            assert any("generation 2" in r.getMessage() for r in infos)

    def test_on_error_that_raises(
        self, pki: Pki, files: Files, caplog: pytest.LogCaptureFixture
    ) -> None:
        """An on_error callback that raises is logged; the polling thread keeps going."""

        def on_error(error: SecureLinkError) -> None:
            raise RuntimeError("callback bug")

        with rotating(files.options(), poll_interval=POLL, on_error=on_error) as rot:
            rot.start()
            write(files.cert, b"junk\n", atomic=True)
            wait_until(
                lambda: any("callback bug" in r.getMessage() for r in caplog.records),
                "the callback's failure to be logged",
            )
            files.put(pki.b, atomic=True)
            wait_until(lambda: rot.generation == 2, "the reload after the fix")
            assert rot.polling

    def test_certificate_and_key_written_one_after_the_other(self, pki: Pki, files: Files) -> None:
        """A key, then its certificate written a little later, end up served together."""
        with rotating(files.options(), poll_interval=POLL, on_error=lambda e: None) as rot:
            rot.start()
            write(files.key, pki.b.key_pem)
            time.sleep(3 * POLL)  # a slow writer: a mismatch may be seen (and reported) here
            write(files.cert, pki.b.chain_pem)
            wait_until(lambda: rot.certificate.sha256 == summary(pki.b).sha256, "the reload")
            assert rot.last_error is None
            assert der(pki.b) == served(rot, pki)

    def test_client_ca_directory(
        self, pki: Pki, tmp_path: Path, stdlib_client: StdlibClient
    ) -> None:
        """A CA added to a client CA directory is trusted after the next poll."""
        cas = tmp_path / "cas"
        cas.mkdir()
        write(cas / "a.pem", pki.ca.cert_pem)
        options = pki.a.server_options(
            client_auth=ClientAuth.REQUIRE_AND_VERIFY, client_ca=str(cas)
        )
        with rotating(options, poll_interval=POLL) as rot:
            rot.start()
            server, client = handshake(rot.context, stdlib_client(pki.other_client))
            assert isinstance(server.error, securelink.UnknownAuthorityError)
            assert client.error is not None
            write(cas / "other.pem", pki.other_ca.cert_pem)
            wait_until(lambda: rot.generation == 2, "the reload")
            server, client = handshake(rot.context, pki.client_ctx(pki.other_client))
            assert client.error is None
            assert server.peer_cert is not None

    def test_poll_interval_validated(self, pki: Pki) -> None:
        """poll_interval must be a positive number."""
        for bad in (0, -1, True, "5", float("inf"), float("nan")):
            with pytest.raises(ConfigurationError) as info:
                RotatingServerContext(pki.a.server_options(), poll_interval=bad)  # type: ignore[arg-type]
            assert info.value.field == "poll_interval"


class TestClientCARotation:
    """The client CAs rotate with the rest (mutual TLS)."""

    def options(self, pki: Pki, ca: CertificateAuthority) -> ServerOptions:
        return pki.a.server_options(
            client_auth=ClientAuth.REQUIRE_AND_VERIFY, client_ca=ca.cert_pem
        )

    def test_blocking(self, pki: Pki, stdlib_client: StdlibClient) -> None:
        """After a reload, clients of the new CA are accepted and those of the old refused."""
        with rotating(self.options(pki, pki.ca)) as rot:
            server, client = handshake(rot.context, pki.client_ctx(pki.client))
            assert client.error is None and server.error is None
            server, client = handshake(rot.context, stdlib_client(pki.other_client))
            assert isinstance(server.error, securelink.UnknownAuthorityError)
            rot.reload(self.options(pki, pki.other_ca))
            server, client = handshake(rot.context, pki.client_ctx(pki.other_client))
            assert client.error is None and server.error is None
            assert server.peer_cert is not None
            assert server.peer_cert["subjectAltName"] == (("DNS", "other.test"),)
            server, client = handshake(rot.context, stdlib_client(pki.client))
            assert isinstance(server.error, securelink.UnknownAuthorityError)

    def test_asyncio(self, pki: Pki) -> None:
        """The same with securelink.aio.start_server."""
        with rotating(self.options(pki, pki.ca)) as rot:

            async def main() -> list[str]:
                outcomes = []
                errors: list[SecureLinkError] = []
                async with aio_server(rot.context, on_handshake_error=errors.append) as port:
                    for step in ("old", "reload", "new", "old-refused"):
                        if step == "reload":
                            rot.reload(self.options(pki, pki.other_ca))
                            continue
                        issued = pki.other_client if step == "new" else pki.client
                        try:
                            outcomes.append(await aio_exchange(port, pki.client_ctx(issued)))
                        except OSError:  # SecureLinkError, or the EOF that may come first
                            outcomes.append("refused")
                await asyncio.sleep(0)
                assert len(errors) == 1
                assert isinstance(errors[0], securelink.UnknownAuthorityError)
                return outcomes

            outcomes = run(main())
        assert outcomes == ["client.test", "other.test", "refused"]


@asynccontextmanager
async def aio_server(ctx: ssl.SSLContext, **kwargs: Any) -> AsyncIterator[int]:
    """A securelink.aio server answering each client with its certificate's first name."""
    classes: list[type] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        obj = writer.get_extra_info("ssl_object")
        classes.append(type(obj))
        cert = obj.getpeercert()
        name = cert["subjectAltName"][0][1] if cert else "-"
        try:
            await reader.readexactly(4)
            writer.write(f"{name}\n".encode())
            await writer.drain()
        finally:
            writer.close()

    server = await securelink.aio.start_server(handle, "127.0.0.1", 0, ctx, **kwargs)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()
    assert all(c is SecureLinkSSLObject for c in classes)


async def close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()


async def aio_exchange(port: int, client_ctx: ssl.SSLContext) -> str:
    """Connect, send a ping, return the server's answer (the client's name)."""
    reader, writer = await securelink.aio.open_connection(
        "127.0.0.1", port, client_ctx, server_hostname="localhost"
    )
    try:
        writer.write(b"ping")
        await writer.drain()
        answer = (await reader.readline()).decode().strip()
    finally:
        await close(writer)
    if not answer:
        raise ConnectionResetError("the server closed the connection without an answer")
    return answer


async def aio_served(port: int, client_ctx: ssl.SSLContext) -> bytes:
    """The certificate (DER) a new asyncio client connection is given."""
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=client_ctx, server_hostname="localhost"
    )
    try:
        peer = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        writer.write(b"ping")
        await reader.readline()
        assert isinstance(peer, bytes)
        return peer
    finally:
        await close(writer)


class TestAsyncio:
    """asyncio servers started once with .context serve each reload's material."""

    def test_securelink_aio_server(self, pki: Pki, files: Files) -> None:
        """securelink.aio.start_server: rotation by polling, without a restart."""
        with rotating(files.options(), poll_interval=POLL) as rot:
            rot.start()

            async def main() -> tuple[bytes, bytes]:
                async with aio_server(rot.context) as port:
                    before = await aio_served(port, pki.client_ctx())
                    files.put(pki.b, atomic=True)
                    while rot.generation < 2:
                        await asyncio.sleep(0.005)
                    after = await aio_served(port, pki.client_ctx())
                return before, after

            assert (der(pki.a), der(pki.b)) == run(main())

    def test_plain_asyncio_server(self, pki: Pki) -> None:
        """asyncio.start_server(ssl=rot.context): securelink's SSLObject class, new material."""
        with rotating(pki.a.server_options()) as rot:
            classes: list[type] = []

            async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
                classes.append(type(writer.get_extra_info("ssl_object")))
                await reader.readexactly(4)
                writer.write(b"ok\n")
                await writer.drain()
                await close(writer)

            async def main() -> list[bytes]:
                server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=rot.context)
                port = server.sockets[0].getsockname()[1]
                try:
                    seen = [await aio_served(port, pki.client_ctx())]
                    rot.reload(pki.b.server_options())
                    seen.append(await aio_served(port, pki.client_ctx()))
                finally:
                    server.close()
                    await server.wait_closed()
                return seen

            assert [der(pki.a), der(pki.b)] == run(main())
            assert [SecureLinkSSLObject, SecureLinkSSLObject] == classes


class TestHooks:
    """securelink's server hooks keep working through the switch, and change with a reload."""

    def test_verify_connection(self, pki: Pki, stdlib_client: StdlibClient) -> None:
        """verify_connection sees the client; a refusal is a ConnectionRejectedError."""
        seen: list[ConnectionInfo] = []
        options = pki.a.server_options(
            client_auth=ClientAuth.REQUIRE_AND_VERIFY,
            client_ca=pki.ca.cert_pem,
            verify_connection=seen.append,
        )
        with rotating(options) as rot:
            server, client = handshake(rot.context, pki.client_ctx(pki.client))
            assert client.error is None and server.error is None
            assert seen[0].peer_names == ("client.test",)
            assert seen[0].server_name == "localhost"

            def refuse(info: ConnectionInfo) -> None:
                raise PermissionError("not today")

            rot.reload(
                options.replace(cert=pki.b.chain_pem, key=pki.b.key_pem, verify_connection=refuse)
            )
            server, client = handshake(rot.context, stdlib_client(pki.client))
            assert isinstance(server.error, ConnectionRejectedError)
            assert server.error.hook == "verify_connection"
            assert len(seen) == 1

    def test_verify_connection_asyncio(self, pki: Pki) -> None:
        """The same hook, on an asyncio server."""
        seen: list[ConnectionInfo] = []
        options = pki.a.server_options(
            client_auth=ClientAuth.REQUIRE_AND_VERIFY,
            client_ca=pki.ca.cert_pem,
            verify_connection=seen.append,
        )
        with rotating(options) as rot:

            async def main() -> str:
                async with aio_server(rot.context) as port:
                    rot.reload(options.replace(cert=pki.b.chain_pem, key=pki.b.key_pem))
                    return await aio_exchange(port, pki.client_ctx(pki.client))

            assert run(main()) == "client.test"
        assert len(seen) == 1
        assert seen[0].peer_names == ("client.test",)

    def test_on_server_name(self, pki: Pki) -> None:
        """on_server_name is called with the requested name; a refusal still refuses."""
        names: list[str | None] = []

        def on_server_name(name: str | None) -> None:
            names.append(name)
            if name == "refused.test":
                raise LookupError("unknown name")

        with rotating(pki.a.server_options(on_server_name=on_server_name)) as rot:
            assert der(pki.a) == served(rot, pki)
            assert der(pki.a) == served(rot, pki, server_hostname="127.0.0.1")
            server, client = handshake(
                rot.context, pki.client_ctx(), server_hostname="refused.test"
            )
            assert isinstance(server.error, ConnectionRejectedError)
            assert server.error.hook == "on_server_name"
            assert isinstance(client.error, SecureLinkError)
        assert names == ["localhost", None, "refused.test"]

    def test_certificates_by_name(self, pki: Pki) -> None:
        """Certificates chosen by server name are rotated with the rest."""
        if "certificates_by_name" not in ServerOptions._fields:
            pytest.skip("this version has no certificates_by_name")
        identity = securelink.Identity
        api = pki.ca.issue("api.test", usage=Usage.SERVER)
        api2 = pki.ca.issue("api.test", usage=Usage.SERVER)
        options = pki.a.server_options(
            certificates_by_name={"api.test": identity(cert=api.chain_pem, key=api.key_pem)}
        )
        with rotating(options) as rot:
            assert der(api) == served(rot, pki, server_hostname="api.test")
            assert der(pki.a) == served(rot, pki)
            rot.reload(
                options.replace(
                    certificates_by_name={
                        "api.test": identity(cert=api2.chain_pem, key=api2.key_pem)
                    }
                )
            )
            assert der(api2) == served(rot, pki, server_hostname="api.test")


def near_expiry(pki: Pki, days: float) -> IssuedCertificate:
    now = datetime.datetime.now(datetime.UTC)
    return pki.ca.issue(
        "localhost",
        "127.0.0.1",
        usage=Usage.SERVER,
        not_after=now + datetime.timedelta(days=days),
    )


class Clock:
    """A clock for securelink._rotation that tests move forward."""

    def __init__(self) -> None:
        self.offset = datetime.timedelta()

    def __call__(self) -> datetime.datetime:
        return datetime.datetime.now(datetime.UTC) + self.offset


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(_rotation, "_utcnow", fake)
    return fake


class TestExpiry:
    """Days left on the certificate in use, and a WARNING before it expires."""

    def test_days_left(self, pki: Pki) -> None:
        """days_left counts down to not_after, in fractional days."""
        issued = near_expiry(pki, 100)
        with rotating(issued.server_options()) as rot:
            assert 99.9 < rot.days_left <= 100
            assert issued.certificate.not_valid_after_utc == rot.not_after

    def test_warning_at_load(self, pki: Pki, caplog: pytest.LogCaptureFixture) -> None:
        """A certificate with fewer than 30 days left is reported when it is loaded."""
        issued = near_expiry(pki, 10)
        with (
            caplog.at_level(logging.WARNING, logger="securelink"),
            rotating(issued.server_options()) as rot,
        ):
            assert 9.9 < rot.days_left < 10
        records = securelink_records(caplog, logging.WARNING)
        assert len(records) == 1
        message = records[0].getMessage()
        assert "expires on" in message
        assert "in 9 days" in message
        assert rot.certificate.sha256 in message
        assert "localhost" in message

    def test_no_warning_far_from_expiry(self, pki: Pki, caplog: pytest.LogCaptureFixture) -> None:
        """Nothing is logged for a certificate with more days left than the threshold."""
        with caplog.at_level(logging.WARNING, logger="securelink"):
            with rotating(near_expiry(pki, 31).server_options()):
                pass
            with rotating(near_expiry(pki, 10).server_options(), expiry_warning_days=5):
                pass
            with rotating(near_expiry(pki, 1).server_options(), expiry_warning_days=None):
                pass
        assert securelink_records(caplog, logging.WARNING) == []

    def test_custom_threshold(self, pki: Pki, caplog: pytest.LogCaptureFixture) -> None:
        """expiry_warning_days sets the threshold."""
        with (
            caplog.at_level(logging.WARNING, logger="securelink"),
            rotating(near_expiry(pki, 50).server_options(), expiry_warning_days=60),
        ):
            pass
        assert len(securelink_records(caplog, logging.WARNING)) == 1

    def test_once_a_day_per_certificate(
        self, pki: Pki, clock: Clock, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Polls repeat the warning once a day; a new certificate is reported at once."""
        issued = near_expiry(pki, 20)
        caplog.set_level(logging.WARNING, logger="securelink")
        with rotating(issued.server_options(), poll_interval=POLL) as rot:
            rot.start()
            time.sleep(10 * POLL)
            assert len(securelink_records(caplog, logging.WARNING)) == 1
            clock.offset = datetime.timedelta(hours=23)
            time.sleep(10 * POLL)
            assert len(securelink_records(caplog, logging.WARNING)) == 1
            clock.offset = datetime.timedelta(days=1, hours=1)
            wait_until(
                lambda: len(securelink_records(caplog, logging.WARNING)) == 2, "a second warning"
            )
            assert "in 18 days" in securelink_records(caplog, logging.WARNING)[1].getMessage()
            rot.reload(near_expiry(pki, 20).server_options())
            assert len(securelink_records(caplog, logging.WARNING)) == 3

    def test_expired_while_serving(
        self, pki: Pki, clock: Clock, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A certificate that expires while it is served is reported as expired."""
        issued = near_expiry(pki, 40)
        caplog.set_level(logging.WARNING, logger="securelink")
        with rotating(issued.server_options(), poll_interval=POLL) as rot:
            clock.offset = datetime.timedelta(days=43.5)
            assert -3.6 < rot.days_left < -3.4
            rot.start()
            wait_until(lambda: bool(securelink_records(caplog, logging.WARNING)), "the warning")
        message = securelink_records(caplog, logging.WARNING)[0].getMessage()
        assert "expired on" in message
        assert "3 days ago" in message

    @pytest.mark.parametrize(
        ("left", "said"),
        [
            (datetime.timedelta(days=3, hours=1), "in 3 days"),
            (datetime.timedelta(hours=5, minutes=30), "in 5 hours"),
            (datetime.timedelta(minutes=50, seconds=30), "in 50 minutes"),
        ],
    )
    def test_time_left_in_words(
        self, pki: Pki, caplog: pytest.LogCaptureFixture, left: datetime.timedelta, said: str
    ) -> None:
        """The warning says how long is left in days, hours or minutes."""
        now = datetime.datetime.now(datetime.UTC)
        issued = pki.ca.issue("localhost", usage=Usage.SERVER, not_after=now + left)
        with (
            caplog.at_level(logging.WARNING, logger="securelink"),
            rotating(issued.server_options()),
        ):
            pass
        assert said in securelink_records(caplog, logging.WARNING)[0].getMessage()

    def test_threshold_validated(self, pki: Pki) -> None:
        """expiry_warning_days must be a number of days, or None."""
        for bad in (-1, "30", True, float("nan"), float("inf")):
            with pytest.raises(ConfigurationError) as info:
                RotatingServerContext(pki.a.server_options(), expiry_warning_days=bad)  # type: ignore[arg-type]
            assert info.value.field == "expiry_warning_days"


class TestSignals:
    """install_signal_handler() and request_reload(): reloads whose failures are reported."""

    def test_sighup(self, pki: Pki, files: Files) -> None:
        """SIGHUP (the default) reloads the files."""
        with rotating(files.options()) as rot:
            previous = rot.install_signal_handler()
            try:
                files.put(pki.b)
                signal.raise_signal(signal.SIGHUP)
                wait_until(lambda: rot.generation == 2, "the reload")
            finally:
                signal.signal(signal.SIGHUP, previous)
            assert der(pki.b) == served(rot, pki)

    def test_previous_handler_called(self, pki: Pki) -> None:
        """A Python handler installed before is still called."""
        calls: list[int] = []
        old = signal.signal(signal.SIGUSR1, lambda number, frame: calls.append(number))
        try:
            with rotating(pki.a.server_options()) as rot:
                previous = rot.install_signal_handler(signal.SIGUSR1)
                assert callable(previous)
                signal.raise_signal(signal.SIGUSR1)
                wait_until(lambda: rot.generation == 2, "the reload")
        finally:
            signal.signal(signal.SIGUSR1, old)
        assert calls == [signal.SIGUSR1]

    def test_main_thread_only(self, pki: Pki) -> None:
        """Elsewhere than in the main thread the standard library refuses."""
        errors: list[BaseException] = []
        with rotating(pki.a.server_options()) as rot:

            def install() -> None:
                try:
                    rot.install_signal_handler(signal.SIGUSR2)
                except ValueError as exc:
                    errors.append(exc)

            thread = threading.Thread(target=install)
            thread.start()
            thread.join(TIMEOUT)
        assert len(errors) == 1

    def test_request_reload_failure_reported(
        self, pki: Pki, files: Files, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A failed requested reload is logged and passed to on_error, not raised."""
        reported: list[SecureLinkError] = []
        caplog.set_level(logging.WARNING, logger="securelink")
        with rotating(files.options(), on_error=reported.append) as rot:
            write(files.key, b"")
            rot.request_reload()
            wait_until(lambda: bool(reported), "the report")
            rot.stop()
            assert isinstance(reported[0], MaterialError)
            assert reported[0].found == "nothing"
            assert reported[0] is rot.last_error
            warnings = securelink_records(caplog, logging.WARNING)
            assert len(warnings) == 1
            assert "reload requested" in warnings[0].getMessage()
        assert not any(t.name == "securelink-reload" for t in threading.enumerate())

    def test_unexpected_error_wrapped(
        self, pki: Pki, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
    ) -> None:
        """An exception securelink does not know is reported as SecureLinkError, cause kept."""
        reported: list[SecureLinkError] = []
        caplog.set_level(logging.WARNING, logger="securelink")
        with rotating(pki.a.server_options(), on_error=reported.append) as rot:

            def broken(options: ServerOptions, /, *, shared: bool = True) -> ssl.SSLContext:
                raise RuntimeError("out of file descriptors")

            monkeypatch.setattr(_rotation, "server_context", broken)
            rot.request_reload()
            wait_until(lambda: bool(reported), "the report")
        error = reported[0]
        assert type(error) is SecureLinkError
        assert isinstance(error.__cause__, RuntimeError)
        assert "out of file descriptors" in error.message
        assert error is rot.last_error
        assert der(pki.a) == served(rot, pki)


class TestThreadSafety:
    """Reloads from several threads, during handshakes, lose nothing and fail nothing."""

    def test_concurrent_reloads_and_handshakes(self, pki: Pki) -> None:
        """Four threads reload 25 times each while a client connects: all succeed."""
        identities = [pki.a.server_options(), pki.b.server_options()]
        failures: list[BaseException] = []
        with rotating(identities[0]) as rot:
            stop = threading.Event()
            seen: set[bytes] = set()  # what the client was served

            def reloader(index: int) -> None:
                try:
                    for i in range(25):
                        rot.reload(identities[(index + i) % 2])
                except BaseException as exc:  # pragma: no cover - reported below
                    failures.append(exc)

            def connector() -> None:
                while not stop.is_set():
                    server, client = handshake(rot.context, pki.client_ctx())
                    if client.error or server.error:  # pragma: no cover - reported below
                        failures.append(client.error or server.error)  # type: ignore[arg-type]
                    elif client.peer_der is not None:
                        seen.add(client.peer_der)

            client_thread = threading.Thread(target=connector)
            client_thread.start()
            threads = [threading.Thread(target=reloader, args=(i,)) for i in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
            stop.set()
            client_thread.join(TIMEOUT)
            assert failures == []
            assert rot.generation == 101


class TestValidation:
    """Bad construction arguments fail with the field named."""

    def test_bad_initial_material(self, tmp_path: Path) -> None:
        """Unusable initial material raises, as server_context would."""
        missing = tmp_path / "missing.pem"
        with pytest.raises(MaterialError) as info:
            RotatingServerContext(ServerOptions(cert=str(missing), key=str(missing)))
        assert str(missing) == info.value.source

    def test_not_options(self) -> None:
        """Only ServerOptions are accepted."""
        with pytest.raises(TypeError):
            RotatingServerContext(securelink.ClientOptions())  # type: ignore[arg-type]

    def test_on_error_validated(self, pki: Pki) -> None:
        """on_error must be callable."""
        with pytest.raises(ConfigurationError) as info:
            RotatingServerContext(pki.a.server_options(), on_error=42)  # type: ignore[arg-type]
        assert info.value.field == "on_error"

    def test_repr(self, pki: Pki) -> None:
        """The repr names the certificate, its end and the generation."""
        with rotating(pki.a.server_options(), poll_interval=1) as rot:
            rot.start()
            text = repr(rot)
        assert text.startswith("<RotatingServerContext serving the certificate for localhost")
        assert "generation 1" in text
        assert "polling every 1 s" in text
