"""The diagnostic handshake: where it goes, how long it takes, how often it is made.

And what it finds about NULL-cipher servers and servers with a weak Diffie-Hellman group.

Real loopback peers only: a raw TCP server that refuses TLS clients the way a struggling server
does (it reads the ClientHello and closes, with no alert) and counts what it accepts, and
``openssl s_server``.  Where a name must resolve to another address by the time of the
diagnosis (DNS changed, round robin), ``socket.getaddrinfo`` answers for one made-up name.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

import securelink
import securelink.aio
from securelink import ClientOptions, ProtocolMismatchError, RemoteError, _translate, devca

from .helpers import stop_process

LOOPBACK = "127.0.0.1"
#: The time the tests allow beyond a caller's timeout: the documented margin (the local work
#: of building the explanation, milliseconds) with room for a loaded test machine.
MARGIN = 0.5


class CountingServer:
    """A TCP server on *host*:*port* that counts the connections it accepts.

    Each connection is handled by *behaviour* (called with its index from 0): ``"close"`` reads
    the ClientHello and closes without a word (no TLS alert); ``"stall"`` keeps the connection
    open and never answers.
    """

    def __init__(
        self, behaviour: Callable[[int], str], *, host: str = LOOPBACK, port: int = 0
    ) -> None:
        self.listener = socket.create_server((host, port))
        self.listener.settimeout(0.05)
        self.port: int = self.listener.getsockname()[1]
        self.behaviour = behaviour
        self.accepted = 0
        self.held: list[socket.socket] = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:  # pragma: no cover - the listener was closed
                return
            what = self.behaviour(self.accepted)
            self.accepted += 1
            if what == "stall":
                self.held.append(conn)
                continue
            conn.settimeout(2.0)
            with contextlib.suppress(OSError):
                conn.recv(65536)  # the ClientHello: closing after it sends FIN, not a reset
            conn.close()

    def stop(self) -> None:
        """Stop accepting, close every connection, and wait for the thread."""
        self.stopping.set()
        self.thread.join(10)
        self.listener.close()
        for conn in self.held:
            conn.close()


@contextmanager
def counting_server(
    behaviour: Callable[[int], str], *, host: str = LOOPBACK, port: int = 0
) -> Iterator[CountingServer]:
    server = CountingServer(behaviour, host=host, port=port)
    try:
        yield server
    finally:
        server.stop()


def always_close(_: int) -> str:
    return "close"


def close_then_stall(index: int) -> str:
    # The client's connection is refused without an alert; the diagnosis is never answered.
    return "close" if index == 0 else "stall"


@pytest.fixture
def options(ca: devca.CertificateAuthority) -> ClientOptions:
    """Options that trust the test CA (no certificate is ever reached here)."""
    return ca.client_options()


def failing_connect(
    host: str, port: int, options: ClientOptions | ssl.SSLContext, **kw: Any
) -> Any:
    with pytest.raises(securelink.HandshakeError) as info:
        securelink.connect(host, port, options, **kw)
    return info.value


# --- the exact address -----------------------------------------------------------------------


@pytest.fixture
def rebinding(monkeypatch: pytest.MonkeyPatch) -> Callable[[str, str], list[str]]:
    """Make the name ``diag.test`` resolve to *first* once, then to *later* (DNS rebinding)."""

    def install(first: str, later: str) -> list[str]:
        real = socket.getaddrinfo
        answers: list[str] = []

        def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
            if host != "diag.test":
                return real(host, port, *args, **kwargs)
            answer = first if not answers else later
            answers.append(answer)
            return real(answer, port, *args, **kwargs)

        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
        return answers

    return install


def test_diagnosis_goes_to_the_address_connected_to(
    options: ClientOptions, rebinding: Callable[[str, str], list[str]]
) -> None:
    """connect(): the name resolves elsewhere now; the diagnosis goes where the client went."""
    with (
        counting_server(always_close) as there,
        counting_server(always_close, host="127.0.0.2", port=there.port) as elsewhere,
    ):
        answers = rebinding(LOOPBACK, "127.0.0.2")
        error = failing_connect("diag.test", there.port, options, timeout=5.0)
    assert type(error) is RemoteError
    assert error.alert is None
    assert error.server_hostname == "diag.test"
    assert error.peer == (LOOPBACK, there.port)  # the socket's address, not the name
    assert answers == [LOOPBACK]  # resolved once, by the connection itself
    assert elsewhere.accepted == 0
    # The connection, and the two diagnostic handshakes (every version and suite; then the
    # deprecated versions), all to the same address.
    assert there.accepted == 3


def test_foreign_context_diagnosis_goes_to_the_address_connected_to(
    ca: devca.CertificateAuthority, rebinding: Callable[[str, str], list[str]]
) -> None:
    """connect() with a stdlib context: explained from outside, diagnosed at the same address."""
    ctx = ssl.create_default_context(cadata=ca.cert_pem.decode())
    with (
        counting_server(always_close) as there,
        counting_server(always_close, host="127.0.0.2", port=there.port) as elsewhere,
    ):
        answers = rebinding(LOOPBACK, "127.0.0.2")
        error = failing_connect("diag.test", there.port, ctx, timeout=5.0)
    assert type(error) is RemoteError
    assert error.peer == ("diag.test", there.port)  # what the caller named
    assert answers == [LOOPBACK]
    assert elsewhere.accepted == 0
    assert there.accepted == 3


def test_aio_diagnosis_goes_to_the_address_connected_to(
    options: ClientOptions, rebinding: Callable[[str, str], list[str]]
) -> None:
    """securelink.aio: the thread that diagnoses knows the address the transport had."""

    async def attempt() -> BaseException:
        with pytest.raises(securelink.HandshakeError) as info:
            await securelink.aio.open_connection("diag.test", there.port, options)
        return info.value

    with (
        counting_server(always_close) as there,
        counting_server(always_close, host="127.0.0.2", port=there.port) as elsewhere,
    ):
        answers = rebinding(LOOPBACK, "127.0.0.2")
        error = asyncio.run(attempt())
    assert type(error) is RemoteError
    assert error.alert is None
    assert answers == [LOOPBACK]
    assert elsewhere.accepted == 0
    assert there.accepted == 3


# --- the caller's time limit -----------------------------------------------------------------


def test_connect_timeout_bounds_the_diagnosis(options: ClientOptions) -> None:
    """connect(timeout=1.0) against a server that closes, then stalls the diagnosis.

    The diagnosis used to take its own 2 s; now the whole call ends within the timeout plus
    MARGIN (a behavioural bound, not a speed measure), and says what it could not tell.
    """
    with counting_server(close_then_stall) as server:
        started = time.monotonic()
        error = failing_connect(LOOPBACK, server.port, options, timeout=1.0)
        elapsed = time.monotonic() - started
    assert elapsed < 1.0 + MARGIN, elapsed
    assert type(error) is RemoteError
    assert error.alert is None
    assert error.side == "peer"
    assert "did not finish within this call's time limit" in error.message
    assert server.accepted == 2  # no second diagnostic handshake once the time is up


def test_a_stalled_diagnosis_is_not_repeated(options: ClientOptions) -> None:
    """A server that stalled the diagnosis is not probed again within DIAGNOSIS_TTL."""
    with counting_server(lambda index: "stall" if index == 1 else "close") as server:
        first = failing_connect(LOOPBACK, server.port, options, timeout=1.0)
        second = failing_connect(LOOPBACK, server.port, options, timeout=1.0)
        accepted = server.accepted
    assert type(first) is RemoteError and type(second) is RemoteError
    assert "did not finish within this call's time limit" in first.message
    assert "got no answer in time, and it is not probed again so soon" in second.message
    assert accepted == 3  # two connections, one diagnostic handshake


def test_socket_timeout_bounds_the_diagnosis(options: ClientOptions) -> None:
    """A socket wrapped by the caller, with its own timeout: the same bound."""
    ctx = securelink.client_context(options)
    with counting_server(close_then_stall) as server:
        raw = socket.create_connection((LOOPBACK, server.port), timeout=1.0)
        started = time.monotonic()
        with pytest.raises(securelink.HandshakeError) as info:
            ctx.wrap_socket(raw, server_hostname="localhost")
        elapsed = time.monotonic() - started
        raw.close()
    assert elapsed < 1.0 + MARGIN, elapsed
    assert type(info.value) is RemoteError
    assert "did not finish within this call's time limit" in info.value.message


def test_no_timeout_keeps_a_bounded_diagnosis(
    options: ClientOptions, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a timeout the diagnosis keeps its own bound (DIAGNOSIS_SECONDS, shortened here)."""
    monkeypatch.setattr(_translate, "DIAGNOSIS_SECONDS", 0.5)
    with counting_server(close_then_stall) as server:
        started = time.monotonic()
        error = failing_connect(LOOPBACK, server.port, options)
        elapsed = time.monotonic() - started
    assert elapsed < 0.5 + MARGIN, elapsed
    assert type(error) is RemoteError
    assert "did not finish within this call's time limit" in error.message


def test_aio_handshake_timeout_bounds_the_diagnosis(options: ClientOptions) -> None:
    """securelink.aio: ssl_handshake_timeout bounds the diagnosis made in a thread."""

    async def attempt() -> BaseException:
        with pytest.raises(securelink.HandshakeError) as info:
            await securelink.aio.open_connection(
                LOOPBACK, server.port, options, ssl_handshake_timeout=1.0
            )
        return info.value

    with counting_server(close_then_stall) as server:
        started = time.monotonic()
        error = asyncio.run(attempt())
        elapsed = time.monotonic() - started
    assert elapsed < 1.0 + MARGIN, elapsed
    assert type(error) is RemoteError
    assert "did not finish within this call's time limit" in error.message


# --- no outage amplification -----------------------------------------------------------------

FAILURES = 100
#: "A handful": the extra connections 100 failing connections may open.  One diagnosis makes
#: two (every version and suite; then the deprecated versions), remembered afterwards.
HANDFUL = 5


def test_failures_in_a_row_reuse_one_diagnosis(options: ClientOptions) -> None:
    """100 failing connect() calls in a row open at most a handful of extra connections."""
    errors = []
    before = _translate.diagnostic_connections
    with counting_server(always_close) as server:
        for _ in range(FAILURES):
            errors.append(failing_connect(LOOPBACK, server.port, options, timeout=5.0))
        accepted = server.accepted
    assert all(type(e) is RemoteError and e.alert is None for e in errors)
    # The same explanation every time: the remembered diagnosis says what the first did.
    assert len({e.message for e in errors}) == 1
    assert FAILURES < accepted <= FAILURES + HANDFUL, accepted
    assert _translate.diagnostic_connections - before == accepted - FAILURES
    print(f"{FAILURES} sequential failures: {accepted - FAILURES} extra connections")


def test_concurrent_failures_diagnose_once(options: ClientOptions) -> None:
    """100 failing connect() calls from 10 threads at once: one diagnosis in flight, reused."""
    errors: list[BaseException] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(FAILURES // 10):
            try:
                securelink.connect(LOOPBACK, server.port, options, timeout=5.0)
            except Exception as exc:  # collected and checked below
                with lock:
                    errors.append(exc)

    with counting_server(always_close) as server:
        threads = [threading.Thread(target=worker) for _ in range(10)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        accepted = server.accepted
    assert len(errors) == FAILURES
    assert all(type(e) is RemoteError for e in errors)
    assert FAILURES < accepted <= FAILURES + HANDFUL, accepted
    print(f"{FAILURES} concurrent failures: {accepted - FAILURES} extra connections")


def test_a_remembered_diagnosis_expires(
    options: ClientOptions, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After DIAGNOSIS_TTL (zero here) the next failure diagnoses again."""
    monkeypatch.setattr(_translate, "DIAGNOSIS_TTL", 0.0)
    with counting_server(always_close) as server:
        for _ in range(3):
            failing_connect(LOOPBACK, server.port, options, timeout=5.0)
        accepted = server.accepted
    assert accepted == 3 * 3


def test_diagnosis_can_be_turned_off(options: ClientOptions) -> None:
    """ClientOptions(diagnose=False): no connection the application did not ask for."""
    off = options.replace(diagnose=False)
    assert off.diagnose is False and options.diagnose is True
    assert off != options
    with counting_server(always_close) as server:
        errors = [failing_connect(LOOPBACK, server.port, off, timeout=5.0) for _ in range(10)]
        accepted = server.accepted
    assert accepted == 10
    error = errors[0]
    assert type(error) is RemoteError
    assert error.alert is None
    assert "Diagnostic handshakes are off (ClientOptions(diagnose=False))" in error.message
    assert "cannot tell whether the server requires a client certificate" in error.message


def test_diagnose_must_be_a_bool() -> None:
    with pytest.raises(securelink.ConfigurationError) as info:
        ClientOptions(diagnose="no")  # type: ignore[arg-type]
    assert type(info.value) is securelink.ConfigurationError
    assert info.value.field == "diagnose"


# --- openssl s_server: NULL ciphers and a 1024-bit DH group -----------------------------------


def _openssl() -> str:
    path = shutil.which("openssl")
    if path is None:  # pragma: no cover - the CI machine has it
        pytest.skip("the openssl command is not installed")
    return path


@pytest.fixture(scope="module")
def rsa_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """An RSA CA and server certificate (NULL-SHA256 and DHE-RSA need an RSA key) as files."""
    ca = devca.CertificateAuthority(key_type=devca.KeyType.RSA_2048)
    issued = ca.issue(
        "localhost", LOOPBACK, usage=devca.Usage.SERVER, key_type=devca.KeyType.RSA_2048
    )
    directory = tmp_path_factory.mktemp("rsa")
    cert, key, root = directory / "cert.pem", directory / "key.pem", directory / "ca.pem"
    cert.write_bytes(issued.chain_pem)
    key.write_bytes(issued.key_pem)
    root.write_bytes(ca.cert_pem)
    return cert, key, root


@contextmanager
def s_server(tmp_path: Path, cert: Path, key: Path, *args: str) -> Iterator[int]:
    """Run ``openssl s_server`` on 127.0.0.1:0 (any number of connections); yield its port."""
    out = tmp_path / "s_server.out"
    with out.open("wb") as stdout:
        proc = subprocess.Popen(
            [
                _openssl(),
                "s_server",
                "-accept",
                f"{LOOPBACK}:0",
                "-rev",
                "-cert",
                str(cert),
                "-key",
                str(key),
                *args,
            ],
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 10
        port = None
        while port is None and time.monotonic() < deadline and proc.poll() is None:
            for line in out.read_text(errors="replace").splitlines():
                if line.startswith(f"ACCEPT {LOOPBACK}:"):
                    port = int(line.rpartition(":")[2])
            time.sleep(0.01)
        assert port is not None, out.read_text(errors="replace")
        yield port
    finally:
        stop_process(proc)


def test_null_cipher_server_is_a_cipher_mismatch(
    tmp_path: Path, rsa_files: tuple[Path, Path, Path]
) -> None:
    """A server that takes only NULL suites: the diagnosis offers them, and names the one taken."""
    cert, key, root = rsa_files
    options = ClientOptions(ca=root)
    with s_server(tmp_path, cert, key, "-tls1_2", "-cipher", "NULL-SHA256:@SECLEVEL=0") as port:
        error = failing_connect(LOOPBACK, port, options, server_hostname="localhost")
    assert type(error) is ProtocolMismatchError
    assert error.mismatch == "cipher"
    assert error.peer_cipher == "NULL-SHA256"
    assert error.peer_version == "TLSv1.2"
    assert error.side == "peer"
    assert "Do not weaken the client" in error.hint


@pytest.fixture(scope="module")
def dh1024(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 1024-bit DH group: RFC 5114's, so nothing is generated.

    (``openssl dhparam 1024`` takes seconds, and s_server cannot load ``-dsaparam``'s X9.42
    output.)
    """
    path = tmp_path_factory.mktemp("dh") / "dh1024.pem"
    subprocess.run(
        [
            _openssl(),
            "genpkey",
            "-genparam",
            "-algorithm",
            "DH",
            "-pkeyopt",
            "dh_rfc5114:1",
            "-out",
            str(path),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return path


DHE_ONLY = ("-tls1_2", "-cipher", "DHE-RSA-AES128-GCM-SHA256:@SECLEVEL=0")


def test_stdlib_client_weak_dh_group_explained(
    tmp_path: Path, rsa_files: tuple[Path, Path, Path], dh1024: Path
) -> None:
    """A stdlib client refuses a 1024-bit DH group (DH_KEY_TOO_SMALL): explain() names it."""
    cert, key, root = rsa_files
    ctx = ssl.create_default_context(cafile=str(root))
    with s_server(tmp_path, cert, key, *DHE_ONLY, "-dhparam", str(dh1024)) as port:
        with (
            socket.create_connection((LOOPBACK, port), timeout=10) as raw,
            pytest.raises(ssl.SSLError) as info,
        ):
            ctx.wrap_socket(raw, server_hostname="localhost")
        assert info.value.reason == "DH_KEY_TOO_SMALL"
        error = securelink.explain(info.value, server_hostname="localhost", peer=(LOOPBACK, port))
    assert type(error) is ProtocolMismatchError
    assert error.mismatch == "key_exchange"
    assert error.side == "local"
    assert error.role == "client"
    assert error.reason == "DH_KEY_TOO_SMALL"
    assert error.peer_cipher is None
    assert "2048 bits" in error.hint
    assert error.__cause__ is info.value


def test_stdlib_context_through_connect_weak_dh_group(
    tmp_path: Path, rsa_files: tuple[Path, Path, Path], dh1024: Path
) -> None:
    """securelink.connect() with a stdlib context explains the same failure the same way."""
    cert, key, root = rsa_files
    ctx = ssl.create_default_context(cafile=str(root))
    with s_server(tmp_path, cert, key, *DHE_ONLY, "-dhparam", str(dh1024)) as port:
        error = failing_connect(LOOPBACK, port, ctx, server_hostname="localhost", timeout=10)
    assert type(error) is ProtocolMismatchError
    assert error.mismatch == "key_exchange"
    assert error.side == "local"


def test_securelink_client_weak_dh_server_is_a_cipher_mismatch(
    tmp_path: Path, rsa_files: tuple[Path, Path, Path], dh1024: Path
) -> None:
    """A securelink client against the weak-DH server: a cipher mismatch, not DH_KEY_TOO_SMALL.

    securelink offers no DHE suite, so the server has nothing in common with it; the diagnosis
    names the DHE suite the server takes.
    """
    cert, key, root = rsa_files
    with s_server(tmp_path, cert, key, *DHE_ONLY, "-dhparam", str(dh1024)) as port:
        error = failing_connect(
            LOOPBACK, port, ClientOptions(ca=root), server_hostname="localhost", timeout=10
        )
    assert type(error) is ProtocolMismatchError
    assert error.mismatch == "cipher"
    assert error.peer_cipher == "DHE-RSA-AES128-GCM-SHA256"
    assert error.peer_version == "TLSv1.2"
