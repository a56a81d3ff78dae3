"""Load and faults: thousands of mutual-TLS handshakes against an asyncio server, with rotation.

Loopback only, bounded in time (each test well under a minute on two cores).  Every connection is
new and makes a full handshake (no session is ever offered for resumption, and each one is
checked), with a one-byte exchange each way so that both ends have finished, and then a reset,
so thousands of connections leave no TIME_WAIT entries behind.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import ssl
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

import securelink
import securelink.aio
from securelink import ClientAuth, MaterialError, SecureLinkError, ServerOptions
from securelink._rotation import RotatingServerContext
from securelink.devca import CertificateAuthority, IssuedCertificate, Usage

pytestmark = pytest.mark.slow

CLIENTS = 16
HANDSHAKES = 3000
ROTATE_EVERY = 0.05  # seconds
LIMIT = 50.0  # seconds: a load that takes longer fails (each test must stay under a minute)
LINGER_RESET = struct.pack("ii", 1, 0)


@dataclass
class Pki:
    ca: CertificateAuthority
    a: IssuedCertificate
    b: IssuedCertificate
    client: IssuedCertificate


@pytest.fixture(scope="module")
def pki() -> Pki:
    ca = CertificateAuthority()
    return Pki(
        ca=ca,
        a=ca.issue("localhost", "127.0.0.1", usage=Usage.SERVER),
        b=ca.issue("localhost", "127.0.0.1", usage=Usage.SERVER),
        client=ca.issue("load-client.test", usage=Usage.CLIENT),
    )


def der(issued: IssuedCertificate) -> bytes:
    return issued.certificate.public_bytes(serialization.Encoding.DER)


def write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


class Identity:
    """One file holding a server's chain and key, replaced atomically by each rotation."""

    def __init__(self, directory: Path, issued: IssuedCertificate) -> None:
        self.path = directory / "server.pem"
        self.put(issued)

    def put(self, issued: IssuedCertificate) -> None:
        write_atomically(self.path, issued.chain_pem + issued.key_pem)

    def options(self, pki: Pki) -> ServerOptions:
        return ServerOptions(
            cert=str(self.path),
            key=str(self.path),
            client_auth=ClientAuth.REQUIRE_AND_VERIFY,
            client_ca=pki.ca.cert_pem,
        )


@dataclass
class Result:
    """What a load run saw."""

    handshakes: int = 0
    served: Counter[bytes] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    server_failures: list[str] = field(default_factory=list)
    server_handshakes: int = 0
    seconds: float = 0.0


async def load(
    server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext, total: int, result: Result
) -> None:
    """*total* new connections from CLIENTS concurrent tasks to a securelink.aio server."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        obj = writer.get_extra_info("ssl_object")
        try:
            if not obj.getpeercert():
                result.server_failures.append("a client got in without a certificate")
            result.server_handshakes += 1
            if await reader.readexactly(1) == b"x":
                writer.write(b"y")
                await writer.drain()
            await reader.read()  # until the client resets the connection
        except (ConnectionResetError, asyncio.IncompleteReadError):
            pass
        except Exception as exc:
            result.server_failures.append(f"{type(exc).__name__}: {exc}")
        finally:
            writer.transport.abort()

    def on_handshake_error(error: SecureLinkError) -> None:
        result.server_failures.append(f"{type(error).__name__}: {error}")

    server = await securelink.aio.start_server(
        handle, "127.0.0.1", 0, server_ctx, on_handshake_error=on_handshake_error
    )
    port = server.sockets[0].getsockname()[1]
    started = 0

    async def client() -> None:
        nonlocal started
        while started < total:
            started += 1
            try:
                reader, writer = await asyncio.open_connection(
                    "127.0.0.1",
                    port,
                    ssl=client_ctx,
                    server_hostname="localhost",
                    ssl_handshake_timeout=LIMIT,
                )
            except Exception as exc:
                result.failures.append(f"{type(exc).__name__}: {exc}")
                continue
            try:
                obj = writer.get_extra_info("ssl_object")
                if obj.session_reused:
                    result.failures.append("a session was resumed")
                peer = obj.getpeercert(binary_form=True)
                writer.write(b"x")
                if await reader.readexactly(1) != b"y":
                    raise ConnectionError("no answer")
                result.served[peer] += 1
                result.handshakes += 1
            except Exception as exc:
                result.failures.append(f"{type(exc).__name__}: {exc}")
            finally:
                sock = writer.get_extra_info("socket")
                if sock is not None:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RESET)
                writer.transport.abort()

    t0 = time.perf_counter()
    try:
        await asyncio.wait_for(asyncio.gather(*(client() for _ in range(CLIENTS))), LIMIT)
    finally:
        result.seconds = time.perf_counter() - t0
        server.close()
        await server.wait_closed()
        await asyncio.sleep(0.05)  # let the last handlers see their resets


def run_load(server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext, total: int) -> Result:
    result = Result()
    asyncio.run(load(server_ctx, client_ctx, total, result))
    return result


@contextmanager
def every(interval: float, action: Callable[[int], None]) -> Iterator[list[BaseException]]:
    """Run action(0), action(1)... every *interval* seconds in a thread, until the block ends."""
    stop = threading.Event()
    errors: list[BaseException] = []

    def loop() -> None:
        i = 0
        while not stop.wait(interval):
            try:
                action(i)
            except BaseException as exc:
                errors.append(exc)
            i += 1

    thread = threading.Thread(target=loop, name="test-rotator")
    thread.start()
    try:
        yield errors
    finally:
        stop.set()
        thread.join(LIMIT)
        assert not thread.is_alive()


def wait_for(predicate: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + LIMIT
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.002)


@contextmanager
def in_thread(action: Callable[[], None]) -> Iterator[list[BaseException]]:
    """Run *action* in a thread during the block; collect what it raised."""
    errors: list[BaseException] = []

    def target() -> None:
        try:
            action()
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=target, name="test-plan")
    thread.start()
    try:
        yield errors
    finally:
        thread.join(LIMIT + 5)
        assert not thread.is_alive()


def client_ctx(pki: Pki) -> ssl.SSLContext:
    return securelink.client_context(
        securelink.ClientOptions(
            ca=pki.ca.cert_pem, cert=pki.client.chain_pem, key=pki.client.key_pem
        )
    )


def check(result: Result, total: int) -> None:
    assert result.failures == []
    assert result.server_failures == []
    assert result.handshakes == total
    assert result.server_handshakes == total


class TestLoad:
    """Thousands of full mutual-TLS handshakes from 16 concurrent clients: none fails."""

    def test_steady(self, pki: Pki, tmp_path: Path) -> None:
        """3,000 handshakes against a server using the rotating context, not rotating."""
        identity = Identity(tmp_path, pki.a)
        rot = RotatingServerContext(identity.options(pki))
        result = run_load(rot.context, client_ctx(pki), HANDSHAKES)
        check(result, HANDSHAKES)
        assert {der(pki.a): HANDSHAKES} == dict(result.served)

    def test_rotating_every_50ms(self, pki: Pki, tmp_path: Path) -> None:
        """The same load while the certificate file is replaced and reloaded every 50 ms."""
        identity = Identity(tmp_path, pki.a)
        rot = RotatingServerContext(identity.options(pki))

        def rotate(i: int) -> None:
            identity.put(pki.b if i % 2 == 0 else pki.a)
            rot.reload()

        with every(ROTATE_EVERY, rotate) as errors:
            result = run_load(rot.context, client_ctx(pki), HANDSHAKES)
        assert errors == []
        check(result, HANDSHAKES)
        assert {der(pki.a), der(pki.b)} == set(result.served)
        rotations = rot.generation - 1
        assert rotations >= 0.5 * result.seconds / ROTATE_EVERY
        assert rot.last_error is None

    def test_bad_file_in_the_middle(
        self, pki: Pki, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A rotation to a bad file, found by polling: serving goes on, the error is reported."""
        identity = Identity(tmp_path, pki.a)
        reported: list[SecureLinkError] = []
        caplog.set_level(logging.WARNING, logger="securelink")
        total = HANDSHAKES // 2
        result = Result()
        with RotatingServerContext(
            identity.options(pki), poll_interval=0.02, on_error=reported.append
        ) as rot:
            sha_a = rot.certificate.sha256

            def when(fraction: float) -> None:
                wait_for(lambda: result.handshakes >= fraction * total, f"{fraction:.0%} done")

            def plan() -> None:
                when(0.2)
                identity.put(pki.b)
                wait_for(lambda: rot.certificate.sha256 != sha_a, "b to be loaded")
                when(0.4)
                write_atomically(identity.path, pki.b.chain_pem[:300])  # truncated
                wait_for(lambda: bool(reported), "the error to be reported")
                when(0.6)
                identity.put(pki.a)
                wait_for(lambda: rot.certificate.sha256 == sha_a, "a to be loaded again")

            with in_thread(plan) as errors:
                asyncio.run(load(rot.context, client_ctx(pki), total, result))
        assert errors == []
        check(result, total)
        assert {der(pki.a), der(pki.b)} == set(result.served)
        assert len(reported) == 1
        assert isinstance(reported[0], MaterialError)
        assert str(identity.path) == reported[0].source
        warnings = [r for r in caplog.records if r.name == "securelink"]
        assert len(warnings) == 1
        assert "still serving" in warnings[0].getMessage()
        assert rot.last_error is None  # the good file after it was loaded
        assert rot.generation == 3
