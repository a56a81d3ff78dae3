"""Servers under a flood of idle connections: service goes on, and the idle ones are let go.

Clients that connect and never send a ClientHello cost a TLS server a file descriptor and memory
for as long as it waits for them; without a bound on the handshake, they cost it forever (and a
single-threaded accept loop stops serving).  This script opens *N* idle connections (500 by
default) against each of two servers, each run in a process of its own so that its descriptors
and memory are its own:

- ``aio``: :func:`securelink.aio.start_server`;
- ``wrap``: an accept loop that hands each connection to a thread calling
  :func:`securelink.wrap_server`.

Meanwhile a real client (:func:`securelink.connect`) makes handshakes and one echo each, one
after the other, and counts its successes and failures.  The script reports, for each server:
the server's descriptors (``/proc/self/fd``) and resident memory (``VmRSS``) before the flood
(after one warm-up handshake), while the idle connections are pending, after the server has let
them go, and after a second flood (freed memory stays with the allocator: is it reused?); the
memory per pending handshake; when the idle connections were closed (from their connect); the
good client's handshakes during the floods; and how many log records the server's failure
reports made (they are rate-limited).

It also measures a single-threaded ``wrap_server`` loop (the simplest server there is) with a
few idle connections ahead of a real client: the client is served once each idle connection
has timed out, one after the other.

Run it from the repository root (Linux: it reads ``/proc``)::

    python bench/bench_idle.py                     # 500 idle connections, 2 s timeout
    python bench/bench_idle.py --idle 100 --timeout 1
    python bench/bench_idle.py --json results.json

It always exits 0 unless a server fails to start.  Loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import resource
import selectors
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import securelink
import securelink.aio
from securelink import HandshakeTimeoutError, SecureLinkError, devca

HOST = "127.0.0.1"


# --- the server side (a child process) -------------------------------------------------------


@dataclass
class Counters:
    """What a server saw (incremented by its threads or its event loop)."""

    served: int = 0
    timeouts: int = 0
    other_errors: int = 0
    records: int = 0


class _Counting(logging.Handler):
    def __init__(self, counters: Counters) -> None:
        super().__init__(logging.DEBUG)
        self.counters = counters

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.WARNING:
            self.counters.records += 1


def _rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")  # pragma: no cover


def _stats(counters: Counters) -> dict[str, int]:
    return {
        "fds": len(os.listdir("/proc/self/fd")),
        "rss_kib": _rss_kib(),
        "threads": threading.active_count(),
        "served": counters.served,
        "timeouts": counters.timeouts,
        "other_errors": counters.other_errors,
        "records": counters.records,
    }


def _answer(counters: Counters) -> None:
    """Answer each line on stdin with one line of JSON: the server's figures now."""
    for _ in sys.stdin:
        print(json.dumps(_stats(counters)), flush=True)
    os._exit(0)  # stdin closed: the parent is done with this server


def _raise_fd_limit(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        new = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))


def serve(kind: str, timeout: float, cert_dir: str) -> None:
    """Run one server (*kind*: aio, wrap or single) until stdin closes."""
    _raise_fd_limit(8192)
    counters = Counters()
    logging.getLogger("securelink").addHandler(_Counting(counters))
    logging.getLogger("securelink").propagate = False  # counted, not printed
    ca = devca.CertificateAuthority.from_pem(
        Path(cert_dir, "ca.pem").read_bytes(), Path(cert_dir, "ca.key").read_bytes()
    )
    options = ca.issue("localhost", HOST, usage=devca.Usage.SERVER).server_options()
    if kind == "aio":
        asyncio.run(_serve_aio(options, timeout, counters))
    else:
        _serve_wrap(options, timeout, counters, threaded=kind == "wrap")


async def _serve_aio(options: securelink.ServerOptions, timeout: float, counters: Counters) -> None:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(await reader.read(64))
        await writer.drain()
        writer.close()
        counters.served += 1

    def failed(error: SecureLinkError) -> None:
        if isinstance(error, HandshakeTimeoutError):
            counters.timeouts += 1
        else:
            counters.other_errors += 1

    server = await securelink.aio.start_server(
        echo, HOST, 0, options, handshake_timeout=timeout, on_handshake_error=failed, backlog=2048
    )
    print(server.sockets[0].getsockname()[1], flush=True)
    threading.Thread(target=_answer, args=(counters,), daemon=True).start()
    async with server:
        await server.serve_forever()


def _serve_wrap(
    options: securelink.ServerOptions, timeout: float, counters: Counters, *, threaded: bool
) -> None:
    listener = socket.create_server((HOST, 0), backlog=2048)
    print(listener.getsockname()[1], flush=True)
    threading.Thread(target=_answer, args=(counters,), daemon=True).start()

    def handle(conn: socket.socket) -> None:
        try:
            with securelink.wrap_server(conn, options, handshake_timeout=timeout) as tls:
                tls.sendall(tls.recv(64))
            counters.served += 1
        except HandshakeTimeoutError:
            counters.timeouts += 1
        except (SecureLinkError, OSError):
            counters.other_errors += 1

    while True:
        conn, _ = listener.accept()
        if threaded:
            threading.Thread(target=handle, args=(conn,), daemon=True).start()
        else:
            handle(conn)


# --- the client side (this process) ----------------------------------------------------------


class Server:
    """A server in a child process, asked for its figures over a pipe."""

    def __init__(self, kind: str, timeout: float, cert_dir: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--serve", kind, "--timeout", str(timeout), cert_dir],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None and self.process.stdin is not None
        self.port = int(self.process.stdout.readline())

    def stats(self) -> dict[str, int]:
        """The server's descriptors, memory and counters, now."""
        assert self.process.stdout is not None and self.process.stdin is not None
        self.process.stdin.write("stats\n")
        self.process.stdin.flush()
        figures: dict[str, int] = json.loads(self.process.stdout.readline())
        return figures

    def stop(self) -> None:
        """Let the server process go, and wait for it."""
        assert self.process.stdin is not None
        self.process.stdin.close()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:  # pragma: no cover
            self.process.kill()
            self.process.wait()


@dataclass
class GoodClient:
    """A real client making one handshake and one echo after another, in a thread."""

    port: int
    options: securelink.ClientOptions
    ok: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        """Connect until stopped."""
        while not self.stop.is_set():
            started = time.perf_counter()
            try:
                with securelink.connect(
                    HOST, self.port, self.options, server_hostname="localhost", timeout=30.0,
                    resume=False,
                ) as tls:  # fmt: skip
                    tls.sendall(b"ping")
                    if tls.recv(64) != b"ping":
                        raise RuntimeError("wrong echo")
                self.ok += 1
                self.latencies.append(time.perf_counter() - started)
            except Exception as exc:
                self.failed += 1
                self.errors.append(f"{type(exc).__name__}: {exc}"[:200])
            time.sleep(0.01)


def _watch_closes(socks: list[socket.socket], opened: list[float], deadline: float) -> list[float]:
    """Seconds from each connection's connect to the server closing it (inf: still open)."""
    closed = [float("inf")] * len(socks)
    with selectors.DefaultSelector() as selector:
        for i, sock in enumerate(socks):
            sock.setblocking(False)
            selector.register(sock, selectors.EVENT_READ, i)
        left = len(socks)
        while left and time.monotonic() < deadline:
            for key, _ in selector.select(timeout=max(0.0, deadline - time.monotonic())):
                i = key.data
                try:
                    data = socks[i].recv(4096)
                except (ConnectionResetError, BlockingIOError):
                    data = b""
                if not data:
                    closed[i] = time.monotonic() - opened[i]
                    selector.unregister(socks[i])
                    left -= 1
    return closed


def flood(
    kind: str, idle: int, timeout: float, cert_dir: str, client: securelink.ClientOptions
) -> dict[str, Any]:
    """*idle* idle connections against one server, with a good client alongside; then again.

    The second flood shows whether what the first one left (the allocator keeps freed memory)
    is reused or grows.
    """
    server = Server(kind, timeout, cert_dir)
    try:
        with securelink.connect(
            HOST, server.port, client, server_hostname="localhost", timeout=10.0
        ) as tls:  # the warm-up: lazy imports and first allocations happen before "before"
            tls.sendall(b"ping")
            tls.recv(64)
        time.sleep(0.2)
        before = server.stats()
        first = _one_flood(server, idle, timeout, client)
        second = _one_flood(server, idle, timeout, client)
    finally:
        server.stop()
    during, closed, good = first["during"], first["closed"], first["good"]
    done = [c for c in closed if c != float("inf")]
    return {
        "server": kind,
        "idle": idle,
        "timeout": timeout,
        "connect_seconds": first["connect_seconds"],
        "flood_seconds": first["flood_seconds"],
        "before": before,
        "during": during,
        "after": first["after"],
        "after_second_flood": second["after"],
        "rss_per_pending_kib": round((during["rss_kib"] - before["rss_kib"]) / idle, 1),
        "fds_per_pending": round((during["fds"] - before["fds"]) / idle, 2),
        "closed": len(done),
        "closed_after_min": round(min(done), 3) if done else None,
        "closed_after_median": round(statistics.median(done), 3) if done else None,
        "closed_after_max": round(max(done), 3) if done else None,
        "good_ok": good.ok + second["good"].ok,
        "good_failed": good.failed + second["good"].failed,
        "good_errors": sorted(set(good.errors + second["good"].errors))[:5],
        "good_latency_median_ms": (
            round(statistics.median(good.latencies) * 1000, 1) if good.latencies else None
        ),
        "good_latency_max_ms": round(max(good.latencies) * 1000, 1) if good.latencies else None,
    }


def _one_flood(
    server: Server, idle: int, timeout: float, client: securelink.ClientOptions
) -> dict[str, Any]:
    good = GoodClient(server.port, client)
    worker = threading.Thread(target=good.run)
    worker.start()
    started = time.monotonic()
    socks: list[socket.socket] = []
    opened: list[float] = []
    try:
        for _ in range(idle):
            socks.append(socket.create_connection((HOST, server.port), timeout=10.0))
            opened.append(time.monotonic())
        connect_seconds = time.monotonic() - started
        # Past half the timeout: a thread-per-connection server has accepted them all by then.
        time.sleep(timeout * 0.6)
        during = server.stats()
        closed = _watch_closes(socks, opened, time.monotonic() + timeout + 10.0)
        flood_seconds = time.monotonic() - started
    finally:
        good.stop.set()
        worker.join(60)
        for sock in socks:
            sock.close()
    time.sleep(1.0)  # the server's threads and transports wind down
    return {
        "connect_seconds": round(connect_seconds, 3),
        "flood_seconds": round(flood_seconds, 3),
        "during": during,
        "closed": closed,
        "after": server.stats(),
        "good": good,
    }


def single_threaded(
    idle: int, timeout: float, cert_dir: str, client: securelink.ClientOptions
) -> dict[str, Any]:
    """A one-at-a-time wrap_server loop: a real client behind *idle* idle connections."""
    server = Server("single", timeout, cert_dir)
    try:
        socks = [socket.create_connection((HOST, server.port), timeout=10.0) for _ in range(idle)]
        started = time.monotonic()
        with securelink.connect(
            HOST, server.port, client, server_hostname="localhost", timeout=idle * timeout + 30
        ) as tls:
            tls.sendall(b"ping")
            echoed = tls.recv(64)
        waited = time.monotonic() - started
        for sock in socks:
            sock.close()
        stats = server.stats()
    finally:
        server.stop()
    return {
        "server": "single",
        "idle": idle,
        "timeout": timeout,
        "served": echoed == b"ping",
        "waited_seconds": round(waited, 2),
        "timeouts": stats["timeouts"],
    }


def _print(results: list[dict[str, Any]], single: dict[str, Any]) -> None:
    print(f"Python {platform.python_version()}, {securelink.__version__}, {platform.machine()}")
    for r in results:
        b, d, a = r["before"], r["during"], r["after"]
        print(
            f"\n{r['server']}: {r['idle']} idle connections (opened in {r['connect_seconds']} s),"
            f" handshake_timeout={r['timeout']:g} s"
        )
        print(f"  {'':8} {'fds':>6} {'RSS MiB':>8} {'threads':>8}")
        rows = (("before", b), ("during", d), ("after", a), ("again", r["after_second_flood"]))
        for name, s in rows:
            print(f"  {name:8} {s['fds']:>6} {s['rss_kib'] / 1024:>8.1f} {s['threads']:>8}")
        print(
            f"  per pending handshake: {r['rss_per_pending_kib']} KiB, {r['fds_per_pending']} fds"
        )
        print(
            f"  idle connections closed by the server: {r['closed']}/{r['idle']}, after"
            f" {r['closed_after_min']} / {r['closed_after_median']} / {r['closed_after_max']} s"
            " (min / median / max from connect)"
        )
        print(
            f"  server counted: {d['timeouts']} timeouts during, {a['timeouts']} after the first"
            " flood;"
            f" {a['other_errors']} other failures; {a['records']} WARNING records logged"
        )
        print(
            f"  good client during the two floods: {r['good_ok']} handshakes ok,"
            f" {r['good_failed']} failed; during the first ({r['flood_seconds']} s): median"
            f" {r['good_latency_median_ms']} ms, max {r['good_latency_max_ms']} ms"
        )
        for error in r["good_errors"]:
            print(f"    failure: {error}")
    print(
        f"\nsingle-threaded wrap_server loop, {single['idle']} idle connections ahead of a real"
        f" client: served={single['served']} after {single['waited_seconds']} s"
        f" ({single['timeouts']} timeouts of {single['timeout']:g} s)"
    )


def main() -> None:
    """Run the benchmark (or, with --serve, one server)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--idle", type=int, default=500, help="idle connections (500)")
    parser.add_argument("--timeout", type=float, default=2.0, help="handshake_timeout (2 s)")
    parser.add_argument("--single-idle", type=int, default=3, help="ahead in the single loop")
    parser.add_argument("--json", help="also write the figures as JSON to this file")
    parser.add_argument("--serve", choices=["aio", "wrap", "single"], help=argparse.SUPPRESS)
    parser.add_argument("cert_dir", nargs="?", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.timeout, args.cert_dir)
        return
    _raise_fd_limit(args.idle + 1024)
    with tempfile.TemporaryDirectory() as cert_dir:
        ca = devca.CertificateAuthority()
        Path(cert_dir, "ca.pem").write_bytes(ca.cert_pem)
        Path(cert_dir, "ca.key").write_bytes(ca.key_pem)
        client = ca.client_options()
        results = [
            flood(kind, args.idle, args.timeout, cert_dir, client) for kind in ("aio", "wrap")
        ]
        single = single_threaded(args.single_idle, args.timeout, cert_dir, client)
    _print(results, single)
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"flood": results, "single": single}, out, indent=2)


if __name__ == "__main__":
    main()
