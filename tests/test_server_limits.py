"""Servers bounded against hostile clients: handshake timeouts, resets, shared builds, key logs.

A client that connects and says nothing must not hold a server forever, and the timeout is this
end's doing (a :class:`~securelink.HandshakeTimeoutError`), not the client's; a client that
resets the connection before the handshake is a securelink error like any other; equal options
asked for by many threads at once are built once; and the key log never follows a link nor
changes a file the caller did not name.  Real sockets and real handshakes on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import inspect
import logging
import os
import socket
import ssl
import stat
import struct
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

import securelink
import securelink.aio
from securelink import (
    ClientOptions,
    ConfigurationError,
    HandshakeTimeoutError,
    MaterialError,
    RemoteError,
    ServerOptions,
    _context,
    devca,
)

TIMEOUT = 10.0
LOOPBACK = "127.0.0.1"
#: The handshake timeout of these tests: short, so that they are quick.
SHORT = 0.3


@pytest.fixture(scope="module")
def options(
    ca: devca.CertificateAuthority, server_cert: devca.IssuedCertificate
) -> tuple[ServerOptions, ClientOptions]:
    """A server's options and a client's that trusts it."""
    return server_cert.server_options(), ca.client_options()


@pytest.fixture
def stdlib_server(server_cert: devca.IssuedCertificate, tmp_path: Path) -> ssl.SSLContext:
    """A server context securelink did not build (the stdlib's classes)."""
    cert, key = tmp_path / "server.pem", tmp_path / "server.key"
    cert.write_bytes(server_cert.cert_pem)
    key.write_bytes(server_cert.key_pem)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    return ctx


def client_hello() -> bytes:
    """A real ClientHello, as the first flight of a stdlib client (nothing else is sent)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    hello = outgoing.read()
    assert hello[:1] == b"\x16"  # a TLS handshake record
    return hello


def reset(sock: socket.socket) -> None:
    """Close *sock* with a TCP reset (SO_LINGER 0), as a client that aborts does."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


@contextmanager
def accepted() -> Iterator[tuple[socket.socket, socket.socket]]:
    """A raw TCP client connected to 127.0.0.1, and the server's accepted socket."""
    with socket.create_server((LOOPBACK, 0)) as listener:
        client = socket.create_connection(listener.getsockname(), timeout=TIMEOUT)
        conn, _ = listener.accept()
        try:
            yield client, conn
        finally:
            client.close()
            conn.close()


class Records(logging.Handler):
    """The records of the ``securelink`` logger."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def records() -> Iterator[list[logging.LogRecord]]:
    """What the ``securelink`` logger records during the test, from DEBUG up."""
    handler = Records()
    logger = logging.getLogger("securelink")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield handler.records
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def records_error(records: list[logging.LogRecord]) -> BaseException:
    """The error of the one record logged."""
    assert len(records) == 1
    error: BaseException = records[0].__dict__["securelink_error"]
    return error


def reported(records: list[logging.LogRecord], error: BaseException) -> logging.LogRecord:
    """The one record that reported *error*."""
    mine = [r for r in records if r.__dict__.get("securelink_error") is error]
    assert len(mine) == 1
    return mine[0]


# --- wrap_server: the handshake timeout -----------------------------------------------------


class TestWrapServerTimeout:
    """wrap_server bounds the whole handshake, says it gave up, and restores the timeout."""

    @pytest.mark.parametrize("kind", ["options", "stdlib context"])
    def test_silent_client(
        self,
        kind: str,
        options: tuple[ServerOptions, ClientOptions],
        stdlib_server: ssl.SSLContext,
        records: list[logging.LogRecord],
    ) -> None:
        """A client that connects and sends nothing: this server gave up, the client was silent."""
        server: ServerOptions | ssl.SSLContext = options[0] if kind == "options" else stdlib_server
        with accepted() as (client, conn):
            with pytest.raises(HandshakeTimeoutError) as info:
                securelink.wrap_server(conn, server, handshake_timeout=SHORT)
            e = info.value
            assert type(e) is HandshakeTimeoutError
            assert isinstance(e, TimeoutError) and isinstance(e, ssl.SSLError)
            assert (e.side, e.role, e.timeout, e.silent) == ("local", "server", SHORT, True)
            assert e.peer == client.getsockname()
            assert e.peer is not None and e.server_hostname is None
            assert type(e.__cause__) is TimeoutError
            assert e.message == (
                f"This server gave up on the TLS handshake with the client {LOOPBACK} port"
                f" {e.peer[1]} after 0.3 seconds: the client connected but sent no ClientHello"
                " (it never started the handshake)."
            )
            assert conn.fileno() == -1  # closed
            assert client.recv(1) == b""  # ...and so the client sees it closed
        assert reported(records, e).levelno == logging.WARNING

    def test_client_that_does_not_finish(
        self, options: tuple[ServerOptions, ClientOptions]
    ) -> None:
        """A client that sent its ClientHello and stopped: it started, and did not finish."""
        with accepted() as (client, conn):
            client.sendall(client_hello())
            with pytest.raises(HandshakeTimeoutError) as info:
                securelink.wrap_server(conn, options[0], handshake_timeout=SHORT)
            e = info.value
            assert type(e) is HandshakeTimeoutError
            assert (e.side, e.role, e.timeout, e.silent) == ("local", "server", SHORT, False)
            assert "the client started the handshake but did not finish it" in e.message

    def test_socket_timeout_without_handshake_timeout(
        self, options: tuple[ServerOptions, ClientOptions]
    ) -> None:
        """handshake_timeout=None leaves the socket's own timeout in charge, with the same words."""
        with accepted() as (_client, conn):
            conn.settimeout(0.2)
            with pytest.raises(HandshakeTimeoutError) as info:
                securelink.wrap_server(conn, options[0], handshake_timeout=None)
            assert (info.value.timeout, info.value.silent) == (0.2, True)

    @pytest.mark.parametrize("original", [None, 7.5, 0.0])
    def test_timeout_restored(
        self, original: float | None, options: tuple[ServerOptions, ClientOptions]
    ) -> None:
        """After the handshake the socket has the timeout (or blocking mode) it came with."""
        server, client_options = options
        result: list[Any] = []
        with socket.create_server((LOOPBACK, 0)) as listener:
            port = listener.getsockname()[1]

            def connect() -> None:
                try:
                    with securelink.connect(
                        LOOPBACK, port, client_options, server_hostname="localhost",
                        timeout=TIMEOUT,
                    ) as tls:  # fmt: skip
                        result.append(tls.recv(10))
                except Exception as exc:  # pragma: no cover - reported by the assert below
                    result.append(exc)

            thread = threading.Thread(target=connect)
            thread.start()
            try:
                conn, _ = listener.accept()
                conn.settimeout(original)
                with securelink.wrap_server(conn, server, handshake_timeout=SHORT) as tls:
                    assert tls.gettimeout() == original
                    tls.setblocking(True)
                    tls.sendall(b"hello")
            finally:
                thread.join(TIMEOUT)
        assert result == [b"hello"]

    @pytest.mark.parametrize("bad", [0, -1.0, float("inf"), float("nan"), True, "5"])
    def test_bad_timeout(self, bad: Any, options: tuple[ServerOptions, ClientOptions]) -> None:
        """A timeout that cannot bound anything is a ConfigurationError, before the handshake."""
        with accepted() as (_client, conn):
            with pytest.raises(ConfigurationError) as info:
                securelink.wrap_server(conn, options[0], handshake_timeout=bad)
            assert type(info.value) is ConfigurationError
            assert info.value.field == "handshake_timeout"
            assert conn.fileno() != -1  # nothing was done to it

    def test_bounded_defaults(self) -> None:
        """Both server helpers have a bounded default, and the same one."""
        wrap = inspect.signature(securelink.wrap_server).parameters["handshake_timeout"]
        aio = inspect.signature(securelink.aio.start_server).parameters["handshake_timeout"]
        assert wrap.default == aio.default == 10.0

    def test_single_threaded_loop_keeps_serving(
        self, options: tuple[ServerOptions, ClientOptions]
    ) -> None:
        """An idle client delays a one-at-a-time accept loop by the timeout, not forever."""
        server, client_options = options
        errors: list[BaseException] = []
        served: list[bytes] = []
        with socket.create_server((LOOPBACK, 0)) as listener:
            listener.settimeout(TIMEOUT)
            port = listener.getsockname()[1]

            def loop() -> None:
                for _ in range(2):  # the idle client first, then the real one
                    conn, _ = listener.accept()
                    try:
                        with securelink.wrap_server(conn, server, handshake_timeout=SHORT) as tls:
                            served.append(tls.recv(10))
                            tls.sendall(b"pong")
                    except securelink.HandshakeError as exc:
                        errors.append(exc)

            thread = threading.Thread(target=loop)
            thread.start()
            try:
                idle = socket.create_connection((LOOPBACK, port), timeout=TIMEOUT)
                with (
                    idle,
                    securelink.connect(
                        LOOPBACK, port, client_options, server_hostname="localhost", timeout=TIMEOUT
                    ) as tls,
                ):
                    tls.sendall(b"ping")
                    assert tls.recv(10) == b"pong"
            finally:
                thread.join(TIMEOUT)
        assert not thread.is_alive()
        assert served == [b"ping"]
        assert [type(e) for e in errors] == [HandshakeTimeoutError]


# --- wrap_server: clients that reset --------------------------------------------------------


class TestWrapServerResets:
    """A client that resets before the handshake is the peer going away: a securelink error."""

    @pytest.mark.parametrize("kind", ["options", "stdlib context"])
    def test_reset_after_client_hello(
        self,
        kind: str,
        options: tuple[ServerOptions, ClientOptions],
        stdlib_server: ssl.SSLContext,
        records: list[logging.LogRecord],
    ) -> None:
        """The ClientHello, then a reset: not the stdlib's 'Closed before TLS handshake'."""
        server: ServerOptions | ssl.SSLContext = options[0] if kind == "options" else stdlib_server
        with accepted() as (client, conn):
            client.sendall(client_hello())
            reset(client)
            _wait_reset(conn)
            with pytest.raises(RemoteError) as info:
                securelink.wrap_server(conn, server)
            e = info.value
            assert type(e) is RemoteError
            assert (e.side, e.role, e.alert, e.reason) == ("peer", "server", None, None)
            assert e.errno == 107  # ENOTCONN, as the stdlib's error had
            assert type(e.__cause__) is ssl.SSLError
            assert "closed the connection during the TLS handshake" in e.message
            assert conn.fileno() == -1
        assert reported(records, e).levelno == logging.WARNING

    @pytest.mark.parametrize("kind", ["options", "stdlib context"])
    def test_reset_without_data(
        self,
        kind: str,
        options: tuple[ServerOptions, ClientOptions],
        stdlib_server: ssl.SSLContext,
        records: list[logging.LogRecord],
    ) -> None:
        """A connection reset before any byte: a RemoteError, reported as a port check (DEBUG)."""
        server: ServerOptions | ssl.SSLContext = options[0] if kind == "options" else stdlib_server
        with accepted() as (client, conn):
            reset(client)
            _wait_reset(conn)
            with pytest.raises(RemoteError) as info:
                securelink.wrap_server(conn, server)
            e = info.value
            assert type(e) is RemoteError
            assert (e.side, e.role, e.alert) == ("peer", "server", None)
            assert type(e.__cause__) is ConnectionResetError
            assert conn.fileno() == -1
        del info, e
        # The stdlib leaves the SSLSocket it made unclosed (it holds the descriptor): securelink
        # closes it, or the collector would find it open here (a ResourceWarning: an error).
        gc.collect()
        assert reported(records, records_error(records)).levelno == logging.DEBUG


def _wait_reset(conn: socket.socket) -> None:
    """Wait until the kernel has processed the client's reset (the socket is disconnected)."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        try:
            conn.getpeername()
        except OSError:
            return
        time.sleep(0.01)
    raise AssertionError("the reset never arrived")  # pragma: no cover


# --- securelink.aio --------------------------------------------------------------------------


async def _start(
    server: ServerOptions, errors: list[BaseException], **kwargs: Any
) -> asyncio.Server:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    return await securelink.aio.start_server(
        handle, LOOPBACK, 0, server, on_handshake_error=errors.append, **kwargs
    )


async def _idle_client(port: int, send: bytes = b"") -> tuple[str, int]:
    """Connect, send *send*, and wait for the server to close; return this client's address."""
    reader, writer = await asyncio.open_connection(LOOPBACK, port)
    writer.write(send)
    # Until the server closes (asyncio aborts the connection: a reset, once the client spoke).
    with contextlib.suppress(ConnectionResetError):
        await asyncio.wait_for(reader.read(), TIMEOUT)
    address = writer.get_extra_info("sockname")
    writer.close()
    return (address[0], address[1])


class TestAsyncioTimeout:
    """An asyncio handshake timeout is this end giving up, on the server and on the client."""

    @pytest.mark.parametrize(("send", "silent"), [(b"", True), (None, False)])
    def test_server(
        self,
        send: bytes | None,
        silent: bool,
        options: tuple[ServerOptions, ClientOptions],
        records: list[logging.LogRecord],
    ) -> None:
        """Not 'the client closed the connection': this server gave up, and who was silent."""
        errors: list[BaseException] = []

        async def main() -> tuple[str, int]:
            server = await _start(options[0], errors, handshake_timeout=SHORT)
            async with server:
                port = server.sockets[0].getsockname()[1]
                return await _idle_client(port, client_hello() if send is None else send)

        client = asyncio.run(main())
        assert len(errors) == 1
        e = errors[0]
        assert type(e) is HandshakeTimeoutError
        assert (e.side, e.role, e.timeout, e.silent) == ("local", "server", SHORT, silent)
        assert e.peer == client
        assert type(e.__cause__) is ConnectionAbortedError
        assert e.message.startswith(
            f"This server gave up on the TLS handshake with the client {LOOPBACK} port"
            f" {client[1]} after 0.3 seconds: "
        )
        record = reported(records, e)
        assert record.levelno == logging.WARNING
        assert record.getMessage().startswith("TLS handshake failed: This server gave up")
        assert record.__dict__["securelink_peer"] == client

    def test_asyncio_name_of_the_timeout(
        self, options: tuple[ServerOptions, ClientOptions]
    ) -> None:
        """ssl_handshake_timeout, asyncio's name for it, is honoured too."""
        errors: list[BaseException] = []

        async def main() -> None:
            server = await _start(options[0], errors, ssl_handshake_timeout=0.2)
            async with server:
                await _idle_client(server.sockets[0].getsockname()[1])

        asyncio.run(main())
        assert [(type(e), getattr(e, "timeout", None)) for e in errors] == [
            (HandshakeTimeoutError, 0.2)
        ]

    def test_bad_timeout(self, options: tuple[ServerOptions, ClientOptions]) -> None:
        """A timeout that cannot bound anything is refused before the server starts."""

        async def main() -> None:
            await _start(options[0], [], handshake_timeout=0)

        with pytest.raises(ConfigurationError) as info:
            asyncio.run(main())
        assert info.value.field == "handshake_timeout"

    @pytest.mark.parametrize("answer", [False, True])
    def test_client(self, answer: bool, options: tuple[ServerOptions, ClientOptions]) -> None:
        """open_connection's timeout: this client gave up; was the server silent, or slow?"""
        server_ctx = securelink.server_context(options[0])

        async def stalled(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            # Reads the ClientHello; answers with its ServerHello only if *answer*, then stalls.
            hello = await reader.read(65536)
            if answer:
                incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
                obj = server_ctx.wrap_bio(incoming, outgoing, server_side=True)
                incoming.write(hello)
                with pytest.raises(ssl.SSLWantReadError):
                    obj.do_handshake()
                flight = outgoing.read()
                length = int.from_bytes(flight[3:5], "big")
                writer.write(flight[: 5 + length])  # the first record: the ServerHello
            await reader.read()  # until the client gives up
            writer.close()

        async def main() -> tuple[int, BaseException]:
            server = await asyncio.start_server(stalled, LOOPBACK, 0)
            async with server:
                port = server.sockets[0].getsockname()[1]
                with pytest.raises(HandshakeTimeoutError) as info:
                    await securelink.aio.open_connection(
                        LOOPBACK, port, options[1], server_hostname="localhost",
                        ssl_handshake_timeout=SHORT,
                    )  # fmt: skip
                return port, info.value

        port, e = asyncio.run(main())
        assert type(e) is HandshakeTimeoutError
        assert (e.side, e.role, e.timeout, e.silent) == ("local", "client", SHORT, not answer)
        assert (e.server_hostname, e.peer) == ("localhost", (LOOPBACK, port))
        assert type(e.__cause__) is ConnectionAbortedError
        what = (
            "the server answered but did not finish the handshake"
            if answer
            else "the server did not answer this client's ClientHello"
        )
        assert e.message == (
            f"This client gave up on the TLS handshake with the server 'localhost' port {port}"
            f" after 0.3 seconds: {what}."
        )

    def test_explain_plain_asyncio(self, options: tuple[ServerOptions, ClientOptions]) -> None:
        """explain() reads asyncio's own timeout too (plain asyncio.open_connection)."""
        client_ctx = securelink.client_context(options[1])

        async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.read()
            writer.close()

        async def main() -> tuple[int, BaseException]:
            server = await asyncio.start_server(silent, LOOPBACK, 0)
            async with server:
                port = server.sockets[0].getsockname()[1]
                with pytest.raises(ConnectionAbortedError) as info:
                    await asyncio.open_connection(
                        LOOPBACK, port, ssl=client_ctx, server_hostname="localhost",
                        ssl_handshake_timeout=SHORT,
                    )  # fmt: skip
                return port, info.value

        _port, raw = asyncio.run(main())
        e = securelink.explain(raw, server_hostname="localhost", context=client_ctx)
        assert type(e) is HandshakeTimeoutError
        assert (e.side, e.role, e.timeout, e.silent) == ("local", "client", SHORT, None)
        assert e.__cause__ is raw


# --- the shared-context cache ----------------------------------------------------------------


class TestSharedBuilds:
    """Equal options asked for by many threads on a cold cache are built once."""

    THREADS = 16

    def _race(self, ask: Callable[[], ssl.SSLContext]) -> list[Any]:
        """Call *ask* from THREADS threads released together; what each got or raised."""
        barrier = threading.Barrier(self.THREADS)
        results: list[Any] = [None] * self.THREADS

        def run(i: int) -> None:
            barrier.wait(TIMEOUT)
            try:
                results[i] = ask()
            except Exception as exc:
                results[i] = exc

        threads = [threading.Thread(target=run, args=(i,)) for i in range(self.THREADS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(TIMEOUT)
        assert not any(t.is_alive() for t in threads)
        return results

    @staticmethod
    def _counting(monkeypatch: pytest.MonkeyPatch, name: str) -> list[int]:
        """Count the calls of _context's build function *name*.

        Each call is made slow enough for all the threads to arrive while it runs, so that the
        race is not left to chance.
        """
        calls: list[int] = []
        real = getattr(_context, name)

        def build(options: Any) -> Any:
            calls.append(1)
            time.sleep(0.2)
            return real(options)

        monkeypatch.setattr(_context, name, build)
        return calls

    def test_one_build_serves_all(
        self, monkeypatch: pytest.MonkeyPatch, options: tuple[ServerOptions, ClientOptions]
    ) -> None:
        """16 threads, equal client options, shared=True: one build, one context for all."""
        calls = self._counting(monkeypatch, "_build_client")
        results = self._race(lambda: securelink.client_context(options[1], shared=True))
        assert len(calls) == 1
        assert all(type(r) is ssl.SSLContext for r in results)
        assert len({id(r) for r in results}) == 1
        assert securelink.client_context(options[1], shared=True) is results[0]  # cached
        assert len(calls) == 1

    def test_server_options_too(
        self, monkeypatch: pytest.MonkeyPatch, options: tuple[ServerOptions, ClientOptions]
    ) -> None:
        """The same for server contexts."""
        calls = self._counting(monkeypatch, "_build_server")
        results = self._race(lambda: securelink.server_context(options[0], shared=True))
        assert len(calls) == 1
        assert len({id(r) for r in results}) == 1

    def test_a_failed_build_fails_every_waiter(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        """The error reaches every thread that waited; the next call builds again."""
        calls = self._counting(monkeypatch, "_build_client")
        missing = ClientOptions(ca=tmp_path / "missing.pem")
        results = self._race(lambda: securelink.client_context(missing, shared=True))
        assert len(calls) == 1
        assert all(type(r) is MaterialError for r in results)
        assert _context._building == {}
        with pytest.raises(MaterialError):
            securelink.client_context(missing, shared=True)
        assert len(calls) == 2  # not cached, not stuck


# --- the key log -----------------------------------------------------------------------------


class TestKeylog:
    """keylog= never follows a link, opens only regular files, never changes another's file."""

    @staticmethod
    def _refused(path: Path) -> ConfigurationError:
        with pytest.raises(ConfigurationError) as info:
            securelink.client_context(ClientOptions(keylog=path))
        e = info.value
        assert type(e) is ConfigurationError
        assert e.field == "keylog"
        assert str(path) in e.message
        return e

    def test_symlink_to_a_file(self, tmp_path: Path) -> None:
        """A link to someone's file: refused, and the file keeps its mode and content."""
        target = tmp_path / "notes.txt"
        target.write_bytes(b"mine\n")
        target.chmod(0o644)
        link = tmp_path / "keys.log"
        link.symlink_to(target)
        e = self._refused(link)
        assert "is a symbolic link" in e.message
        assert stat.S_IMODE(target.stat().st_mode) == 0o644
        assert target.read_bytes() == b"mine\n"

    def test_dangling_symlink(self, tmp_path: Path) -> None:
        """A link to nothing: refused, and nothing is created where it points."""
        link = tmp_path / "keys.log"
        link.symlink_to(tmp_path / "elsewhere.log")
        self._refused(link)
        assert not (tmp_path / "elsewhere.log").exists()

    def test_fifo(self, tmp_path: Path) -> None:
        """A named pipe is refused, without blocking on its open."""
        fifo = tmp_path / "keys.log"
        os.mkfifo(fifo)
        e = self._refused(fifo)
        assert "is a named pipe (FIFO)" in e.message

    def test_directory(self, tmp_path: Path) -> None:
        """A directory is refused."""
        assert "is a directory" in self._refused(tmp_path).message

    def test_device(self) -> None:
        """A device is refused (/dev/null would swallow the secrets; others could be worse)."""
        assert "is a character device" in self._refused(Path(os.devnull)).message

    def test_new_file_is_0600(
        self, tmp_path: Path, options: tuple[ServerOptions, ClientOptions]
    ) -> None:
        """A new file is created 0600 whatever the umask, and receives the secrets."""
        path = tmp_path / "keys.log"
        old = os.umask(0)
        try:
            ctx = securelink.client_context(options[1].replace(keylog=path))
        finally:
            os.umask(old)
        assert ctx.keylog_filename == str(path)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600

    def test_existing_private_file_is_appended(
        self, tmp_path: Path, options: tuple[ServerOptions, ClientOptions]
    ) -> None:
        """An existing 0600 file of this user is used as it is: appended to, mode untouched."""
        path = tmp_path / "keys.log"
        path.write_bytes(b"# earlier session\n")
        path.chmod(0o600)
        client = securelink.client_context(options[1].replace(keylog=path))
        with socket.create_server((LOOPBACK, 0)) as listener:
            port = listener.getsockname()[1]
            done: list[bytes] = []

            def serve() -> None:
                conn, _ = listener.accept()
                with securelink.wrap_server(conn, options[0]) as tls:
                    done.append(tls.recv(4))

            thread = threading.Thread(target=serve)
            thread.start()
            try:
                with securelink.connect(
                    LOOPBACK, port, client, server_hostname="localhost", timeout=TIMEOUT
                ) as tls:
                    tls.sendall(b"ping")
            finally:
                thread.join(TIMEOUT)
        assert done == [b"ping"]
        data = path.read_bytes()
        assert data.startswith(b"# earlier session\n")
        assert b"CLIENT_TRAFFIC_SECRET_0" in data
        assert stat.S_IMODE(path.stat().st_mode) == 0o600

    @pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o602])
    def test_existing_file_open_to_others(self, tmp_path: Path, mode: int) -> None:
        """A file others may read or write is refused, and its mode is left as it was."""
        path = tmp_path / "keys.log"
        path.write_bytes(b"")
        path.chmod(mode)
        e = self._refused(path)
        assert f"(mode {mode:04o})" in e.message
        assert f"chmod 600 {path}" in e.hint
        assert stat.S_IMODE(path.stat().st_mode) == mode

    @pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root")
    def test_file_of_another_user(self, tmp_path: Path) -> None:
        """A file owned by another user (who could read the secrets) is refused."""
        path = tmp_path / "keys.log"
        path.write_bytes(b"")
        path.chmod(0o600)
        os.chown(path, 65534, 65534)
        e = self._refused(path)
        assert "belongs to another user (uid 65534)" in e.message
