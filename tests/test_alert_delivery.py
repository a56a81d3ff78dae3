"""The alert that says why a handshake failed reaches the peer, and wrap_server() is not slowed.

- ``wrap_server()`` closes a refused client's connection only after reading what the client
  sent (bounded), so the kernel does not answer the unread data with a reset that reaches the
  client before it reads the alert.  curl shows it: it writes its request right after its TLS
  1.3 Finished, and without the drain most refusals reached it as ``getpeername() failed``
  instead of the alert.  (``openssl s_client`` and Python's client read the alert either way on
  Linux, which keeps data received before a reset readable: they cannot tell.)
- ``securelink.aio.open_connection`` sends the alert when it rejects the server's certificate,
  as ``securelink.connect`` does (asyncio drops what OpenSSL wrote), and so does a plain
  ``asyncio.start_server`` with a securelink context when it refuses a client.
- ``wrap_server()`` sets ``TCP_NODELAY``.

Real peers on 127.0.0.1: curl, ``openssl s_server``, and securelink's own server.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

import securelink
import securelink.aio
from securelink import (
    CertificateRejectedError,
    ClientAuth,
    ClientCertificateRequiredError,
    ClientOptions,
    ServerOptions,
    UnknownAuthorityError,
    devca,
)

from .helpers import stop_process

TIMEOUT = 10.0
LOOPBACK = "127.0.0.1"
RUNS = 30
CURL = shutil.which("curl")
OPENSSL = shutil.which("openssl")


@dataclass(frozen=True)
class Pki:
    ca: devca.CertificateAuthority
    server: devca.IssuedCertificate
    stranger_server: devca.IssuedCertificate  # from a CA the clients do not trust
    client: devca.IssuedCertificate
    stranger_client: devca.IssuedCertificate  # from a CA the server does not trust
    files: Path


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    ca = devca.CertificateAuthority()
    stranger = devca.CertificateAuthority(common_name="Rogue CA")
    files = tmp_path_factory.mktemp("alert-pki")
    found = Pki(
        ca,
        ca.issue("localhost", LOOPBACK, usage=devca.Usage.SERVER),
        stranger.issue("localhost", LOOPBACK, usage=devca.Usage.SERVER),
        ca.issue("client.test", usage=devca.Usage.CLIENT),
        stranger.issue("client.test", usage=devca.Usage.CLIENT),
        files,
    )
    (files / "ca.pem").write_bytes(ca.cert_pem)
    for name, issued in (
        ("stranger-server", found.stranger_server),
        ("stranger-client", found.stranger_client),
    ):
        (files / f"{name}.pem").write_bytes(issued.chain_pem)
        key = files / f"{name}-key.pem"
        key.write_bytes(issued.key_pem)
        key.chmod(0o600)
    return found


def server_options(pki: Pki) -> ServerOptions:
    return ServerOptions(
        cert=(pki.server.certificate, *pki.server.chain), key=pki.server.private_key
    )


def mtls(pki: Pki) -> ServerOptions:
    return server_options(pki).replace(
        client_auth=ClientAuth.REQUIRE_AND_VERIFY, client_ca=pki.ca.root
    )


@contextmanager
def wrap_server_loop(
    ctx: ssl.SSLContext | ServerOptions, connections: int
) -> Iterator[tuple[int, list[BaseException]]]:
    """Accept *connections* clients, each through wrap_server(); yield (port, their errors)."""
    listener = socket.create_server((LOOPBACK, 0))
    listener.settimeout(TIMEOUT)
    errors: list[BaseException] = []

    def serve() -> None:
        for _ in range(connections):
            try:
                conn, _ = listener.accept()
            except OSError as exc:  # the test failed before its clients came
                errors.append(exc)
                return
            conn.settimeout(TIMEOUT)
            try:
                securelink.wrap_server(conn, ctx).close()
            except OSError as exc:
                errors.append(exc)

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        yield listener.getsockname()[1], errors
    finally:
        thread.join(TIMEOUT + 1)
        listener.close()
        assert not thread.is_alive()


def curl(pki: Pki, port: int, *args: str) -> str:
    """One TLS 1.3 request with curl; its error message."""
    assert CURL is not None
    done = subprocess.run(
        [
            CURL, "-sS", "--tlsv1.3", "--max-time", str(TIMEOUT),
            "--cacert", str(pki.files / "ca.pem"),
            "--resolve", f"localhost:{port}:{LOOPBACK}", f"https://localhost:{port}/", *args,
        ],
        capture_output=True, timeout=TIMEOUT + 5, check=False,
    )  # fmt: skip
    assert done.returncode != 0, "curl was not refused"
    return done.stderr.decode(errors="replace")


@pytest.mark.skipif(CURL is None, reason="curl is missing")
class TestWrapServerAlertReachesCurl:
    """Every refusal reaches curl as its alert, never as a reset (was 33 resets in 40)."""

    def test_no_client_certificate(self, pki: Pki) -> None:
        with wrap_server_loop(mtls(pki), RUNS) as (port, errors):
            outputs = [curl(pki, port) for _ in range(RUNS)]
        assert [type(e) for e in errors] == [ClientCertificateRequiredError] * RUNS
        for output in outputs:
            assert "alert certificate required" in output, output
            assert "getpeername" not in output, output

    def test_untrusted_client_certificate(self, pki: Pki) -> None:
        cert = ("--cert", str(pki.files / "stranger-client.pem"))
        key = ("--key", str(pki.files / "stranger-client-key.pem"))
        with wrap_server_loop(mtls(pki), RUNS) as (port, errors):
            outputs = [curl(pki, port, *cert, *key) for _ in range(RUNS)]
        assert [type(e) for e in errors] == [UnknownAuthorityError] * RUNS
        for output in outputs:
            assert "alert unknown ca" in output, output
            assert "getpeername" not in output, output

    def test_stdlib_context(self, pki: Pki) -> None:
        """A context securelink did not build gets the same drain from wrap_server()."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(*server_files(pki))
        ctx.load_verify_locations(cadata=pki.ca.cert_pem.decode())
        ctx.verify_mode = ssl.CERT_REQUIRED
        with wrap_server_loop(ctx, RUNS) as (port, errors):
            outputs = [curl(pki, port) for _ in range(RUNS)]
        assert [type(e) for e in errors] == [ClientCertificateRequiredError] * RUNS
        for output in outputs:
            assert "alert certificate required" in output, output
            assert "getpeername" not in output, output


class TestDrainedNotReset:
    """Without curl: a refused client whose data the server never read gets an end, no reset."""

    def test_plaintext_request(self, pki: Pki) -> None:
        """OpenSSL reads a few bytes of a plaintext request, then refuses it: the rest is read."""
        outcomes: list[str] = []
        with wrap_server_loop(mtls(pki), RUNS) as (port, errors):
            for _ in range(RUNS):
                with socket.create_connection((LOOPBACK, port), timeout=TIMEOUT) as raw:
                    raw.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n" * 8)
                    try:
                        if raw.recv(4096) != b"":
                            outcomes.append("data")
                            continue
                        # A reset right behind the end of the stream (the server closed with
                        # the request unread) disconnects the socket, as curl found out.
                        time.sleep(0.02)
                        raw.getpeername()
                        outcomes.append("end")
                    except OSError:  # ConnectionResetError, or ENOTCONN from getpeername()
                        outcomes.append("reset")
        assert [type(e) for e in errors] == [securelink.NotTLSError] * RUNS
        assert outcomes == ["end"] * RUNS


@pytest.mark.skipif(CURL is None, reason="curl is missing")
class TestPlainAsyncioServerAlertReachesCurl:
    """asyncio drops the alert OpenSSL wrote; securelink's SSLObject sends it (was 0 in 30)."""

    def test_no_client_certificate(self, pki: Pki) -> None:
        ctx = securelink.server_context(mtls(pki))

        async def main() -> list[str]:
            async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
                writer.close()

            server = await asyncio.start_server(handle, LOOPBACK, 0, ssl=ctx)
            try:
                port = server.sockets[0].getsockname()[1]
                return [await asyncio.to_thread(curl, pki, port) for _ in range(RUNS)]
            finally:
                server.close()
                await server.wait_closed()

        for output in asyncio.run(main()):
            assert "alert certificate required" in output, output


def server_files(pki: Pki) -> tuple[str, str]:
    """The server's certificate chain and key as PEM files, for stdlib contexts."""
    cert, key = pki.files / "server.pem", pki.files / "server-key.pem"
    if not cert.exists():
        cert.write_bytes(pki.server.chain_pem)
        key.write_bytes(pki.server.key_pem)
        key.chmod(0o600)
    return str(cert), str(key)


class TestNoDelay:
    @pytest.mark.parametrize("kind", ["securelink", "stdlib"])
    def test_wrap_server_sets_tcp_nodelay(self, pki: Pki, kind: str) -> None:
        if kind == "securelink":
            ctx = securelink.server_context(server_options(pki))
        else:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*server_files(pki))
        client = securelink.client_context(ClientOptions(ca=pki.ca.root))
        with socket.create_server((LOOPBACK, 0)) as listener:
            port = listener.getsockname()[1]
            seen: list[int] = []

            def serve() -> None:
                conn, _ = listener.accept()
                assert conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 0
                with securelink.wrap_server(conn, ctx) as tls:
                    seen.append(tls.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
                    tls.sendall(b"ok")

            thread = threading.Thread(target=serve)
            thread.start()
            try:
                with securelink.connect(LOOPBACK, port, client, server_hostname="localhost") as c:
                    assert c.recv(2) == b"ok"
            finally:
                thread.join(TIMEOUT)
        assert not thread.is_alive()
        assert len(seen) == 1
        assert seen[0] != 0


@contextmanager
def s_server(pki: Pki) -> Iterator[tuple[int, subprocess.Popen[bytes], Path]]:
    """``openssl s_server`` with a certificate from a CA the client does not trust."""
    assert OPENSSL is not None
    out, err = pki.files / "s_server.out", pki.files / "s_server.err"
    command = [
        OPENSSL, "s_server", "-accept", f"{LOOPBACK}:0", "-naccept", "1", "-rev",
        "-cert", str(pki.files / "stranger-server.pem"),
        "-key", str(pki.files / "stranger-server-key.pem"),
    ]  # fmt: skip
    with out.open("wb") as stdout, err.open("wb") as stderr:
        proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr)
    try:
        deadline = time.monotonic() + TIMEOUT
        while True:
            found = re.search(r"^ACCEPT 127\.0\.0\.1:(\d+)$", out.read_text(), re.MULTILINE)
            if found:
                break
            assert proc.poll() is None and time.monotonic() < deadline, err.read_text()
            time.sleep(0.01)
        yield int(found.group(1)), proc, err
    finally:
        stop_process(proc)


class TestAioClientSendsItsAlert:
    @pytest.mark.skipif(OPENSSL is None, reason="openssl is missing")
    def test_openssl_s_server_hears_unknown_ca(self, pki: Pki) -> None:
        options = ClientOptions(ca=pki.ca.root)

        async def main() -> BaseException:
            try:
                await securelink.aio.open_connection(
                    LOOPBACK, port, options, server_hostname="localhost"
                )
            except OSError as exc:
                return exc
            raise AssertionError("the client accepted an untrusted server")

        with s_server(pki) as (port, proc, log):
            error = asyncio.run(main())
            proc.wait(TIMEOUT)  # -naccept 1: it exits after this connection
        assert type(error) is UnknownAuthorityError
        assert "alert unknown ca" in log.read_text()

    def test_securelink_server_hears_the_verdict(self, pki: Pki) -> None:
        """Our own server explains the rejection (the client's alert), not an EOF."""
        options = ServerOptions(
            cert=(pki.stranger_server.certificate, *pki.stranger_server.chain),
            key=pki.stranger_server.private_key,
        )

        async def main(port: int) -> BaseException:
            try:
                await securelink.aio.open_connection(
                    LOOPBACK, port, ClientOptions(ca=pki.ca.root), server_hostname="localhost"
                )
            except OSError as exc:
                return exc
            raise AssertionError("the client accepted an untrusted server")

        with wrap_server_loop(options, 1) as (port, errors):
            client_error = asyncio.run(main(port))
        assert type(client_error) is UnknownAuthorityError
        (server_error,) = errors
        assert type(server_error) is CertificateRejectedError
        assert server_error.alert == "unknown CA"
        assert server_error.side == "peer"
