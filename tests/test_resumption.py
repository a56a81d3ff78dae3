"""Session resumption in securelink.connect: when sessions are reused, and when they never are.

Servers are securelink's own (threads on 127.0.0.1:0, ended by each test) and ``openssl
s_server``, which each test terminates and reaps.  The client always reads the server's reply
before closing: a TLS 1.3 server's tickets arrive after the handshake and are processed on a read.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import socket
import ssl
import subprocess
import threading
import time
import types
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import securelink
from securelink import (
    ClientOptions,
    ConnectionInfo,
    UnknownAuthorityError,
    client_context,
    server_context,
)
from securelink import _connect as connect_module
from securelink._connect import _forget_sessions, _session_contexts, _sessions
from securelink.devca import CertificateAuthority, IssuedCertificate, Usage

TIMEOUT = 10.0
TLS12, TLS13 = ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3
VERSIONS = pytest.mark.parametrize("version", [TLS12, TLS13], ids=["TLSv1.2", "TLSv1.3"])
OPENSSL = shutil.which("openssl")


@pytest.fixture(autouse=True)
def _no_kept_sessions() -> Iterator[None]:
    """Each test starts with no kept session, and leaves none behind."""
    _forget_sessions()
    yield
    _forget_sessions()


@pytest.fixture(scope="module")
def pki() -> tuple[CertificateAuthority, IssuedCertificate, IssuedCertificate]:
    """A CA, a server certificate (localhost, 127.0.0.1) and a client certificate."""
    ca = CertificateAuthority()
    return (
        ca,
        ca.issue("localhost", "127.0.0.1", usage=Usage.SERVER),
        ca.issue("client.test", usage=Usage.CLIENT),
    )


Pki = tuple[CertificateAuthority, IssuedCertificate, IssuedCertificate]


@dataclass
class Server:
    """A TLS echo server that keeps accepting; ``context`` may be swapped between connections."""

    context: ssl.SSLContext
    port: int = 0
    reused: list[bool | None] = field(default_factory=list)  # what the server saw, in order
    errors: list[BaseException] = field(default_factory=list)


@contextlib.contextmanager
def serving(ctx: ssl.SSLContext) -> Iterator[Server]:
    """Serve TLS on 127.0.0.1:0 in a thread, one connection at a time, until the block ends."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=32)
    listener.settimeout(0.05)
    server = Server(ctx, listener.getsockname()[1])
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            conn.settimeout(TIMEOUT)
            try:
                with server.context.wrap_socket(conn, server_side=True) as tls:
                    server.reused.append(tls.session_reused)
                    tls.sendall(tls.recv(10))
            except (OSError, ssl.SSLError) as exc:
                server.errors.append(exc)
            finally:
                conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        stop.set()
        thread.join(TIMEOUT)
        listener.close()
        assert not thread.is_alive(), "the test server thread did not finish"


def talk(
    port: int, options: ClientOptions | ssl.SSLContext, *, name: str = "localhost", **kwargs: bool
) -> bool | None:
    """Connect with securelink.connect, exchange one message, close; return session_reused."""
    with securelink.connect(
        "127.0.0.1", port, options, server_hostname=name, timeout=TIMEOUT, **kwargs
    ) as tls:
        tls.sendall(b"ping")
        assert tls.recv(10) == b"ping"
        return tls.session_reused


def server_options(pki: Pki, version: ssl.TLSVersion, mtls: bool = False) -> ssl.SSLContext:
    ca, server, _ = pki
    if mtls:
        return server_context(
            server.server_options(
                max_version=version,
                client_auth=securelink.ClientAuth.REQUIRE_AND_VERIFY,
                client_ca=ca.root,
            )
        )
    return server_context(server.server_options(max_version=version))


class TestResumed:
    """Against a securelink server, the second and later connections resume."""

    @VERSIONS
    @pytest.mark.parametrize("mtls", [False, True], ids=["server-only", "mutual"])
    def test_second_connection_resumes(self, pki: Pki, version: ssl.TLSVersion, mtls: bool) -> None:
        """Full, then resumed, on both ends; with and without client certificates."""
        ca, _, client = pki
        options = client.client_options(max_version=version) if mtls else ca.client_options()
        with serving(server_options(pki, version, mtls)) as server:
            seen = [talk(server.port, options) for _ in range(4)]
        assert seen == [False, True, True, True]
        assert server.reused == seen
        assert server.errors == []

    @VERSIONS
    def test_equal_options_share_sessions(self, pki: Pki, version: ssl.TLSVersion) -> None:
        """ClientOptions built twice equal share one context, and so its sessions."""
        ca, _, _ = pki
        with serving(server_options(pki, version)) as server:
            first = talk(server.port, ca.client_options())
            second = talk(server.port, ClientOptions(ca=ca.root))
        assert (first, second) == (False, True)

    def test_hooks_still_run_when_resumed(self, pki: Pki) -> None:
        """A resumed connection runs verify_connection (and so pins) with the remembered leaf."""
        ca, _, _ = pki
        infos: list[ConnectionInfo] = []
        options = ca.client_options(verify_connection=infos.append)
        with serving(server_options(pki, TLS13)) as server:
            assert [talk(server.port, options) for _ in range(2)] == [False, True]
        full, resumed = infos
        assert len(full.peer_chain) == 2
        assert resumed.peer_chain == (full.peer_chain[0],)
        assert resumed.peer_names == full.peer_names == ("localhost", "127.0.0.1")

    def test_no_delay(self, pki: Pki) -> None:
        """TCP_NODELAY is set: else a request after a resumed TLS 1.2 handshake waits 40 ms."""
        ca, _, _ = pki
        options = ca.client_options()
        with serving(server_options(pki, TLS12)) as server:
            talk(server.port, options)
            with securelink.connect(
                "127.0.0.1", server.port, options, server_hostname="localhost"
            ) as tls:
                assert tls.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
                tls.sendall(b"ping")
                assert tls.recv(10) == b"ping"
                assert tls.session_reused is True

    def test_pins_hold_when_resumed(self, pki: Pki) -> None:
        """A client with a public-key pin resumes; the pin is checked on every connection."""
        ca, server_cert, _ = pki
        pin = securelink._x509.public_key_sha256(server_cert.certificate)
        options = ca.client_options(pin_public_keys=(pin,))
        with serving(server_options(pki, TLS12)) as server:
            assert [talk(server.port, options) for _ in range(3)] == [False, True, True]


class TestTicketsAndLifetimes:
    """How TLS 1.3 tickets are collected and used, and when sessions expire."""

    def test_tls13_ticket_used_once_and_open_sockets_left_alone(self, pki: Pki) -> None:
        """A TLS 1.3 ticket resumes one connection; a socket still open is not read from."""
        ca, _, _ = pki
        options = ca.client_options()
        with serving(server_options(pki, TLS13)) as server:
            assert talk(server.port, options) is False  # its ticket is kept once it is closed
            with securelink.connect(
                "127.0.0.1", server.port, options, server_hostname="localhost"
            ) as held:
                held.sendall(b"ping")
                assert held.recv(10) == b"ping"  # its own tickets have arrived: it is open
                assert held.session_reused is True  # took the first connection's ticket
                assert talk(server.port, options) is False  # nothing else to take
            assert talk(server.port, options) is True  # the held one is closed: its ticket

    def test_tls13_many_open_connections(self, pki: Pki) -> None:
        """Only the last few open TLS 1.3 connections are watched; their tickets all serve."""
        ca, _, _ = pki
        options = ca.client_options()
        with serving(server_options(pki, TLS13)) as server, contextlib.ExitStack() as stack:
            for _ in range(6):
                tls = stack.enter_context(
                    securelink.connect(
                        "127.0.0.1", server.port, options, server_hostname="localhost"
                    )
                )
                tls.sendall(b"ping")
                assert tls.recv(10) == b"ping"
            (slot,) = _sessions.values()
            assert len(slot.pending) == connect_module._PER_KEY
            stack.close()
            assert [talk(server.port, options) for _ in range(4)] == [True] * 4
            assert len(slot.sessions) <= connect_module._PER_KEY

    def test_tls12_session_reused_again_and_again(self, pki: Pki) -> None:
        """A TLS 1.2 session serves several connections, open at the same time too."""
        ca, _, _ = pki
        options = ca.client_options()
        with serving(server_options(pki, TLS12)) as server:
            assert talk(server.port, options) is False
            with securelink.connect(
                "127.0.0.1", server.port, options, server_hostname="localhost"
            ) as held:
                held.sendall(b"ping")
                assert held.recv(10) == b"ping"
                assert held.session_reused is True
                assert talk(server.port, options) is True

    def test_tls13_ticket_not_read_is_not_kept(self, pki: Pki) -> None:
        """A TLS 1.3 client that closes without reading never processes its tickets."""
        ca, _, _ = pki
        options = ca.client_options()
        with serving(server_options(pki, TLS13)) as server:
            with securelink.connect(
                "127.0.0.1", server.port, options, server_hostname="localhost"
            ) as tls:
                tls.sendall(b"ping")
            assert talk(server.port, options) is False

    @VERSIONS
    def test_expired_sessions_are_dropped(
        self, pki: Pki, version: ssl.TLSVersion, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Past its lifetime (the server's ticket lifetime) a session is no longer offered."""
        ca, _, _ = pki
        options = ca.client_options()
        with serving(server_options(pki, version)) as server:
            assert talk(server.port, options) is False
            later = time.time() + 7201  # Python servers give sessions 7200 s
            monkeypatch.setattr(connect_module, "time", types.SimpleNamespace(time=lambda: later))
            assert talk(server.port, options) is False


class TestNeverShared:
    """Sessions are kept per context, host, port and name, and only where asked for."""

    @VERSIONS
    def test_resume_false(self, pki: Pki, version: ssl.TLSVersion) -> None:
        """resume=False neither offers nor keeps a session."""
        ca, _, _ = pki
        options = ca.client_options()
        with serving(server_options(pki, version)) as server:
            assert talk(server.port, options) is False
            assert talk(server.port, options, resume=False) is False
            assert talk(server.port, options) is True  # the first one's session is still there
            _forget_sessions()
            assert talk(server.port, options, resume=False) is False
            assert talk(server.port, options) is False  # nothing was kept

    @VERSIONS
    def test_other_context(self, pki: Pki, version: ssl.TLSVersion) -> None:
        """Another context, even with equal options, never gets this context's sessions."""
        ca, _, _ = pki
        mine = client_context(ca.client_options(), shared=False)
        other = client_context(ca.client_options(), shared=False)
        with serving(server_options(pki, version)) as server:
            assert talk(server.port, mine) is False
            assert talk(server.port, other) is False
            assert talk(server.port, mine) is True
            assert talk(server.port, other) is True

    def test_other_name_or_port(self, pki: Pki) -> None:
        """A session for one name or port is not offered for another."""
        ca, _, _ = pki
        options = ca.client_options()
        ctx = server_options(pki, TLS12)
        with serving(ctx) as first, serving(ctx) as second:
            assert talk(first.port, options) is False
            assert talk(first.port, options, name="127.0.0.1") is False
            assert talk(second.port, options) is False
            assert talk(first.port, options) is True

    def test_changed_private_context(self, pki: Pki) -> None:
        """Changing a private context's verification settings drops its sessions."""
        ca, _, _ = pki
        ctx = client_context(ca.client_options(), shared=False)
        with serving(server_options(pki, TLS12)) as server:
            assert talk(server.port, ctx) is False
            ctx.verify_flags |= ssl.VERIFY_X509_TRUSTED_FIRST ^ ssl.VERIFY_ALLOW_PROXY_CERTS
            assert talk(server.port, ctx) is False
            assert talk(server.port, ctx) is True

    @VERSIONS
    def test_foreign_context_never_resumes(self, pki: Pki, version: ssl.TLSVersion) -> None:
        """A context securelink did not build gets full handshakes, as from the stdlib."""
        ca, _, _ = pki
        stdlib = ssl.create_default_context(cadata=ca.cert_pem.decode())
        with serving(server_options(pki, version)) as server:
            assert [talk(server.port, stdlib) for _ in range(3)] == [False, False, False]
        assert len(_sessions) == 0

    def test_failure_forgets_the_sessions(self, pki: Pki) -> None:
        """After a failed handshake, the next connection to that server starts afresh."""
        ca, _, _ = pki
        options = ca.client_options()
        good = server_options(pki, TLS12)
        stranger = CertificateAuthority().issue("localhost", "127.0.0.1", usage=Usage.SERVER)
        with serving(good) as server:
            assert talk(server.port, options) is False
            server.context = server_context(stranger.server_options(max_version=TLS12))
            with pytest.raises(UnknownAuthorityError):
                talk(server.port, options)
            server.context = good
            assert talk(server.port, options) is False  # the good server would have resumed
            assert talk(server.port, options) is True

    def test_bounded(self, pki: Pki, monkeypatch: pytest.MonkeyPatch) -> None:
        """Only the most recently used keys keep sessions."""
        ca, _, _ = pki
        options = ca.client_options()
        monkeypatch.setattr(connect_module, "_SESSION_KEYS", 2)
        ctx = server_options(pki, TLS12)
        with serving(ctx) as a, serving(ctx) as b, serving(ctx) as c:
            for server in (a, b, c):
                assert talk(server.port, options) is False
            assert len(_sessions) == 2
            assert talk(a.port, options) is False  # the oldest was dropped
            assert talk(c.port, options) is True

    def test_bounded_by_contexts(self, pki: Pki, monkeypatch: pytest.MonkeyPatch) -> None:
        """A new context per connection pins only the most recent few contexts."""
        ca, _, _ = pki
        monkeypatch.setattr(connect_module, "_SESSION_CONTEXTS", 2)
        contexts = [client_context(ca.client_options(), shared=False) for _ in range(3)]
        with serving(server_options(pki, TLS12)) as server:
            for ctx in contexts:
                assert talk(server.port, ctx) is False
                assert talk(server.port, ctx, name="127.0.0.1") is False
            assert len(_sessions) == 4
            assert sorted(_session_contexts.values()) == [2, 2]
            assert talk(server.port, contexts[0]) is False  # its sessions were dropped
            assert talk(server.port, contexts[2]) is True


class TestThreads:
    """connect() from many threads at once: no errors, and sessions are shared."""

    @VERSIONS
    def test_concurrent_connects(self, pki: Pki, version: ssl.TLSVersion) -> None:
        """Eight threads connect six times each to one server."""
        ca, _, _ = pki
        options = ca.client_options()
        results: list[bool | None] = []
        errors: list[BaseException] = []
        lock = threading.Lock()

        def client() -> None:
            for _ in range(6):
                try:
                    reused = talk(server.port, options)
                except Exception as exc:  # recorded for the assertion below
                    with lock:
                        errors.append(exc)
                else:
                    with lock:
                        results.append(reused)

        with serving(server_options(pki, version)) as server:
            threads = [threading.Thread(target=client) for _ in range(8)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(TIMEOUT)
            assert not any(thread.is_alive() for thread in threads)
        assert errors == []
        assert len(results) == 48
        assert results.count(True) >= 24  # most of them resume
        assert server.errors == []


class TestServerSide:
    """What the server needs: session tickets (Python's servers issue them by default)."""

    @VERSIONS
    def test_without_tickets_nothing_resumes(self, pki: Pki, version: ssl.TLSVersion) -> None:
        """OP_NO_TICKET on a Python server: Python clients then never resume."""
        ca, server_cert, _ = pki
        ctx = server_context(server_cert.server_options(max_version=version), shared=False)
        ctx.options |= ssl.OP_NO_TICKET
        with serving(ctx) as server:
            assert [talk(server.port, ca.client_options()) for _ in range(3)] == [False] * 3

    def test_tls13_without_tickets_nothing_resumes(self, pki: Pki) -> None:
        """num_tickets = 0 on a TLS 1.3 server: nothing to resume with."""
        ca, server_cert, _ = pki
        ctx = server_context(server_cert.server_options(max_version=TLS13), shared=False)
        ctx.num_tickets = 0
        with serving(ctx) as server:
            assert [talk(server.port, ca.client_options()) for _ in range(3)] == [False] * 3


# ---------------------------------------------------------------------------------------------
# openssl s_server as the server


@contextlib.contextmanager
def s_server(tmp_path: Path, pki: Pki, *args: str) -> Iterator[int]:
    """Run ``openssl s_server -rev`` on 127.0.0.1:0 with the server certificate; end it after."""
    assert OPENSSL is not None
    _, server_cert, _ = pki
    cert, key = tmp_path / "server.pem", tmp_path / "server-key.pem"
    cert.write_bytes(server_cert.chain_pem)
    key.write_bytes(server_cert.key_pem)
    key.chmod(0o600)
    out, err = tmp_path / "s_server.out", tmp_path / "s_server.err"
    command = [
        OPENSSL, "s_server", "-accept", "127.0.0.1:0", "-rev", "-cert", str(cert),
        "-key", str(key), *args,
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
            time.sleep(0.005)
        yield int(found.group(1))
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(TIMEOUT)
            except subprocess.TimeoutExpired:  # pragma: no cover - terminate is enough
                proc.kill()
                proc.wait(TIMEOUT)


def talk_rev(port: int, options: ClientOptions) -> bool | None:
    """One line to ``s_server -rev``, its reversed answer read; return session_reused."""
    with securelink.connect("127.0.0.1", port, options, server_hostname="localhost") as tls:
        tls.sendall(b"resume\n")
        assert tls.recv(100) == b"emuser\n"
        return tls.session_reused


@pytest.mark.openssl
@pytest.mark.skipif(OPENSSL is None, reason="the openssl command-line tool is missing")
class TestOpenSSLServer:
    """An independent server: openssl s_server, with its default tickets or without any."""

    @pytest.mark.parametrize(
        ("args", "expected"),
        [
            (("-tls1_2",), [False, True, True]),
            (("-tls1_3",), [False, True, True]),
            (("-tls1_3", "-num_tickets", "1"), [False, True, True]),
            (("-tls1_2", "-no_ticket"), [False, False, False]),
            (("-tls1_3", "-no_ticket"), [False, False, False]),
        ],
        ids=["TLSv1.2", "TLSv1.3", "TLSv1.3-one-ticket", "TLSv1.2-no-ticket", "TLSv1.3-no-ticket"],
    )
    def test_resumption(
        self, pki: Pki, tmp_path: Path, args: tuple[str, ...], expected: list[bool]
    ) -> None:
        """Tickets resume on both versions; without tickets (session IDs only) nothing does."""
        ca, _, _ = pki
        with s_server(tmp_path, pki, *args) as port:
            seen = [talk_rev(port, ca.client_options()) for _ in range(3)]
        assert seen == expected


class TestAsyncio:
    """securelink.aio.open_connection resumes sessions too, from the same cache as connect()."""

    @VERSIONS
    def test_resumed(self, pki: Pki, version: ssl.TLSVersion) -> None:
        """The second and third asyncio connections to a server resume the session."""
        import asyncio

        from securelink import aio

        ca = pki[0]
        sctx = server_options(pki, version)
        options = ClientOptions(ca=ca.root)

        async def main() -> list[bool]:
            async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
                writer.write(await reader.readexactly(2))
                await writer.drain()
                writer.close()

            reused: list[bool] = []
            server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=sctx)
            async with server:
                port = server.sockets[0].getsockname()[1]
                for _ in range(3):
                    reader, writer = await aio.open_connection(
                        "127.0.0.1", port, options, server_hostname="localhost"
                    )
                    reused.append(writer.get_extra_info("ssl_object").session_reused)
                    writer.write(b"hi")
                    assert await reader.readexactly(2) == b"hi"
                    await reader.read()  # to the end: a TLS 1.3 server's tickets come first
                    writer.close()
                    await writer.wait_closed()
                    del reader, writer
            return reused

        assert asyncio.run(asyncio.wait_for(main(), TIMEOUT)) == [False, True, True]

    def test_resume_false(self, pki: Pki) -> None:
        """resume=False makes every asyncio handshake a full one."""
        import asyncio

        from securelink import aio

        ca = pki[0]
        sctx = server_options(pki, TLS12)
        options = ClientOptions(ca=ca.root)

        async def main() -> list[bool]:
            async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
                writer.close()

            reused: list[bool] = []
            server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=sctx)
            async with server:
                port = server.sockets[0].getsockname()[1]
                for _ in range(2):
                    _reader, writer = await aio.open_connection(
                        "127.0.0.1", port, options, server_hostname="localhost", resume=False
                    )
                    reused.append(writer.get_extra_info("ssl_object").session_reused)
                    writer.close()
                    await writer.wait_closed()
            return reused

        assert asyncio.run(asyncio.wait_for(main(), TIMEOUT)) == [False, False]
