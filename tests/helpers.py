"""Real loopback peers for the tests: a one-connection TLS server in a thread, and a client."""

from __future__ import annotations

import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

TIMEOUT = 10.0


def stop_process(proc: subprocess.Popen[bytes], timeout: float = TIMEOUT) -> None:
    """End a peer a test started: terminate it if still running, kill it if that fails, reap it."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:  # pragma: no cover - terminate is enough
            proc.kill()
    proc.wait(timeout)


@dataclass
class Side:
    """What one end saw: the negotiated parameters, the peer's certificate, or the error."""

    version: str | None = None
    cipher: str | None = None
    alpn: str | None = None
    peer_cert: dict[str, Any] | None = None
    peer_der: bytes | None = None
    received: bytes = b""
    error: BaseException | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _record(s: ssl.SSLSocket, side: Side) -> None:
    side.version = s.version()
    cipher = s.cipher()
    side.cipher = cipher[0] if cipher else None
    side.alpn = s.selected_alpn_protocol()
    side.peer_cert = s.getpeercert()
    side.peer_der = s.getpeercert(binary_form=True)


@contextmanager
def tls_server(ctx: ssl.SSLContext, *, reply: bytes = b"pong") -> Iterator[tuple[int, Side]]:
    """Serve one TLS connection on 127.0.0.1:0 in a thread; yield (port, what the server saw)."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(TIMEOUT)
    port = listener.getsockname()[1]
    side = Side()

    def serve() -> None:
        try:
            conn, _ = listener.accept()
        except OSError as exc:  # pragma: no cover - the client never came
            side.error = exc
            return
        conn.settimeout(TIMEOUT)
        try:
            with ctx.wrap_socket(conn, server_side=True) as s:
                _record(s, side)
                side.received = s.recv(1024)
                s.sendall(reply)
        except (OSError, ssl.SSLError) as exc:
            side.error = exc
        finally:
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield port, side
    finally:
        thread.join(TIMEOUT)
        listener.close()
        assert not thread.is_alive(), "the test server thread did not finish"


def tls_client(
    ctx: ssl.SSLContext, port: int, *, server_hostname: str = "localhost", send: bytes = b"ping"
) -> Side:
    """Connect to 127.0.0.1:port, send *send*, read the reply; return what the client saw."""
    side = Side()
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as raw,
            ctx.wrap_socket(raw, server_hostname=server_hostname) as s,
        ):
            _record(s, side)
            s.sendall(send)
            side.received = s.recv(1024)
    except (OSError, ssl.SSLError) as exc:
        side.error = exc
    return side


def handshake(
    server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext, *, server_hostname: str = "localhost"
) -> tuple[Side, Side]:
    """Run one real exchange over loopback; return (server side, client side)."""
    with tls_server(server_ctx) as (port, server):
        client = tls_client(client_ctx, port, server_hostname=server_hostname)
    return server, client
