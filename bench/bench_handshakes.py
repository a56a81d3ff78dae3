"""What securelink's socket classes cost on the happy path: handshakes and bulk transfer.

securelink's contexts are plain ``ssl.SSLContext`` objects with two differences from one built
with the standard library alone: their ``sslsocket_class`` and ``sslobject_class`` are securelink's
subclasses (``securelink._sockets``), which translate failures into explanatory exceptions.  This
benchmark measures what those classes cost when nothing fails.  Each securelink context is paired
with a *stdlib twin*: an ``ssl.SSLContext`` built from the same PEM files with the same protocol,
versions, cipher list, options and verify flags.  The script checks that the twins' settings, the
certificates they present and what they negotiate are equal, so the socket classes are the only
difference.

Every figure is a ratio of speeds (securelink / stdlib, higher is better) measured side by side in
one run, with the same method as ``bench_contexts.py``: the variants of a section are interleaved
in rounds (a shuffled order each round), each variant gives one sample per round, a ratio is the
ratio of the medians, and the 95% interval comes from resampling the rounds (bootstrap).

Run it from the repository root::

    python bench/bench_handshakes.py            # full run, about 75 s
    python bench/bench_handshakes.py --quick    # about 12 s, fewer rounds
    python bench/bench_handshakes.py --json results.json

It exits 0 whatever it measures, unless ``--strict`` is given (then 1 on any miss or error).
Loopback only.  See bench/README.md for what each figure means.
"""

from __future__ import annotations

import _ssl
import argparse
import asyncio
import contextlib
import faulthandler
import functools
import gc
import hashlib
import importlib.metadata
import json
import os
import platform
import random
import socket
import ssl
import statistics
import struct
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

import securelink
import securelink._sockets
from securelink import devca
from securelink._context import MOZILLA_INTERMEDIATE_CIPHERS

HOST = "127.0.0.1"
SERVER_NAME = "localhost"
CHUNK = 64 * 1024  # bytes per send/recv call in the bulk transfers
TARGET = 0.97  # securelink's speed / the stdlib twin's, at least
#: An SO_LINGER of zero: close() resets the connection, so thousands of short connections leave
#: no TIME_WAIT entries behind to exhaust the ephemeral ports.
LINGER_RESET = struct.pack("ii", 1, 0)
#: A hung run dumps every thread's traceback and exits after this many seconds.
WATCHDOG_S = 600


@dataclass(frozen=True)
class Profile:
    """How much to measure."""

    name: str
    hs_rounds: int  # rounds of the handshake sections (each round: 8 samples)
    hs_budget: float  # seconds per handshake section; rounds stop early past this
    hs_sample: float  # seconds: a handshake sample batches handshakes until it lasts this long
    bulk_rounds: int  # rounds of the bulk sections (each round: 2 samples)
    bulk_budget: float
    bulk_bytes: int  # bytes per bulk sample
    min_rounds: int
    bootstrap: int  # resamples for the 95% intervals


FULL = Profile("full", 400, 24.0, 0.025, 200, 12.0, 64 * 1024 * 1024, 20, 1000)
QUICK = Profile("quick", 60, 3.2, 0.012, 40, 2.4, 32 * 1024 * 1024, 8, 300)

#: The handshake configurations: (key, label, mutual TLS, TLS version).
CONFIGS = (
    ("mtls13", "mutual TLS, TLS 1.3", True, ssl.TLSVersion.TLSv1_3),
    ("srv13", "server-only, TLS 1.3", False, ssl.TLSVersion.TLSv1_3),
    ("mtls12", "mutual TLS, TLS 1.2", True, ssl.TLSVersion.TLSv1_2),
    ("srv12", "server-only, TLS 1.2", False, ssl.TLSVersion.TLSv1_2),
)
#: The bulk transfers use this one (the handshake is not timed there).
BULK_CONFIG = ("mtls13", "mutual TLS, TLS 1.3", True, ssl.TLSVersion.TLSv1_3)
KINDS = ("securelink", "stdlib")


# ---------------------------------------------------------------------------------------------
# Measurement (the method of bench_contexts.py)


@dataclass
class Variant:
    """One thing to time: ``run(n)`` performs *n* operations (handshakes, or bulk transfers)."""

    key: str
    label: str
    run: Callable[[int], None]
    unit_bytes: int = 0  # bytes per operation (bulk), or 0 (handshakes)
    batch: int = 1
    samples: list[float] = field(default_factory=list)  # seconds per operation, one per round
    cpu: list[float] = field(default_factory=list)  # process CPU seconds per operation

    def rate(self, seconds: float) -> float:
        """Operations per second, or MiB/s for a bulk variant."""
        if seconds <= 0:
            return float("inf")
        return self.unit_bytes / seconds / 2**20 if self.unit_bytes else 1 / seconds

    def summary(self) -> dict[str, Any]:
        """Median and quartiles, for the table and the JSON."""
        q1, med, q3 = _quartiles(self.samples)
        return {
            "label": self.label,
            "median_s": med,
            "q1_s": q1,
            "q3_s": q3,
            "min_s": min(self.samples),
            "rate": self.rate(med),
            "rate_unit": "MiB/s" if self.unit_bytes else "handshakes/s",
            "cpu_median_s": statistics.median(self.cpu) if self.cpu else None,
            "rounds": len(self.samples),
            "ops_per_sample": self.batch,
            "bytes_per_op": self.unit_bytes or None,
        }


def _quartiles(xs: Sequence[float]) -> tuple[float, float, float]:
    if len(xs) < 2:
        return xs[0], xs[0], xs[0]
    q = statistics.quantiles(xs, n=4, method="inclusive")
    return q[0], q[1], q[2]


def run_rounds(
    variants: Sequence[Variant],
    max_rounds: int,
    budget: float,
    min_rounds: int,
    rng: random.Random,
) -> None:
    """Time *variants* in interleaved rounds: each round takes one sample of each, in random order.

    Stops after *max_rounds* rounds, or earlier once *budget* seconds have passed and at least
    *min_rounds* are done.  The garbage collector runs between samples, never inside one.
    """
    order = list(variants)
    started = time.perf_counter()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        for done in range(max_rounds):
            if done >= min_rounds and time.perf_counter() - started > budget:
                break
            rng.shuffle(order)
            for variant in order:
                gc.collect()
                n = variant.batch
                c0 = time.process_time()
                t0 = time.perf_counter_ns()
                variant.run(n)
                t1 = time.perf_counter_ns()
                c1 = time.process_time()
                variant.samples.append((t1 - t0) / n / 1e9)
                variant.cpu.append((c1 - c0) / n)
    finally:
        if was_enabled:
            gc.enable()


def calibrate(pair: Sequence[Variant], min_sample: float) -> None:
    """Give both twins the same batch: enough operations for a sample of *min_sample* seconds."""
    times = []
    for _ in range(3):
        for v in pair:
            t0 = time.perf_counter()
            v.run(2)
            times.append((time.perf_counter() - t0) / 2)
    one = max(statistics.median(times), 1e-6)
    batch = max(1, min(10_000, round(min_sample / one)))
    for v in pair:
        v.batch = batch


@dataclass
class Figure:
    """A speed ratio, securelink / stdlib twin (higher is better), with its target."""

    id: str
    label: str
    keys: tuple[str, str]  # (securelink variant, stdlib variant)
    cpu: bool = False  # compare CPU time per operation instead of wall time
    target: float | None = TARGET
    gating: bool = True  # counted for PASS/MISS and --strict; otherwise informational
    ratio: float = float("nan")
    low: float = float("nan")
    high: float = float("nan")
    error: str | None = None

    def compute(self, samples: Mapping[str, Sequence[float]]) -> float:
        """The speed ratio: the stdlib twin's median time per operation over securelink's."""
        ours = statistics.median(samples[self.keys[0]])
        theirs = statistics.median(samples[self.keys[1]])
        return theirs / ours if ours > 0 else float("inf")

    @property
    def result(self) -> str:
        """PASS, MISS, ERROR, or '' when there is no target."""
        if self.error is not None:
            return "ERROR"
        if self.target is None:
            return ""
        return "PASS" if self.ratio >= self.target else "MISS"

    def as_json(self) -> dict[str, Any]:
        """The figure for --json."""
        return {
            "id": self.id,
            "label": self.label,
            "variants": list(self.keys),
            "measure": "cpu" if self.cpu else "wall",
            "ratio": None if self.error else self.ratio,
            "ci95": None if self.error else [self.low, self.high],
            "target_at_least": self.target,
            "gating": self.gating,
            "result": self.result or None,
            "error": self.error,
        }


def evaluate(
    figure: Figure, variants: Mapping[str, Variant], resamples: int, rng: random.Random
) -> None:
    """Fill in the figure's ratio and its bootstrap 95% interval (rounds resampled in pairs)."""
    data = {k: (variants[k].cpu if figure.cpu else variants[k].samples) for k in figure.keys}
    figure.ratio = figure.compute(data)
    rounds = min(len(v) for v in data.values())
    indices = range(rounds)
    values = []
    for _ in range(resamples):
        pick = rng.choices(indices, k=rounds)
        values.append(figure.compute({k: [v[i] for i in pick] for k, v in data.items()}))
    values.sort()
    figure.low = values[int(0.025 * resamples)]
    figure.high = values[max(0, int(0.975 * resamples) - 1)]


# ---------------------------------------------------------------------------------------------
# The certificates and the twin contexts


@dataclass(frozen=True)
class Material:
    """PEM files from one devca CA (ECDSA P-256): a server leaf, a client leaf, the CA."""

    ca: str
    server_cert: str
    server_key: str
    client_cert: str
    client_key: str


def make_material(tmp: str) -> Material:
    ca = devca.CertificateAuthority()
    server = ca.issue(SERVER_NAME, HOST, usage=devca.Usage.SERVER)
    client = ca.issue("client.test", usage=devca.Usage.CLIENT)
    files = {
        "ca": ("ca.pem", ca.cert_pem),
        "server_cert": ("server.pem", server.chain_pem),
        "server_key": ("server-key.pem", server.key_pem),
        "client_cert": ("client.pem", client.chain_pem),
        "client_key": ("client-key.pem", client.key_pem),
    }
    paths = {}
    for name, (filename, data) in files.items():
        path = os.path.join(tmp, filename)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        paths[name] = path
    return Material(**paths)


def securelink_pair(
    m: Material, mtls: bool, version: ssl.TLSVersion
) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server, client) contexts built by securelink, from the PEM files."""
    server = securelink.server_context(
        securelink.ServerOptions(
            cert=m.server_cert,
            key=m.server_key,
            client_auth=securelink.ClientAuth.REQUIRE_AND_VERIFY
            if mtls
            else securelink.ClientAuth.NONE,
            client_ca=m.ca if mtls else None,
            min_version=version,
            max_version=version,
        ),
        shared=False,
    )
    client = securelink.client_context(
        securelink.ClientOptions(
            ca=m.ca,
            cert=m.client_cert if mtls else None,
            key=m.client_key if mtls else None,
            min_version=version,
            max_version=version,
        ),
        shared=False,
    )
    return server, client


def _stdlib_settings(ctx: ssl.SSLContext, version: ssl.TLSVersion) -> None:
    # What securelink sets on every context (securelink._context._harden), with the stdlib alone.
    ctx.minimum_version = version
    ctx.maximum_version = version
    ctx.set_ciphers(MOZILLA_INTERMEDIATE_CIPHERS)
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION | ssl.OP_SINGLE_ECDH_USE
    ctx.verify_flags |= ssl.VERIFY_X509_STRICT | ssl.VERIFY_X509_PARTIAL_CHAIN


def stdlib_pair(
    m: Material, mtls: bool, version: ssl.TLSVersion
) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server, client) twins built with the standard library alone, from the same PEM files."""
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    _stdlib_settings(server, version)
    server.load_cert_chain(m.server_cert, m.server_key)
    if mtls:
        server.load_verify_locations(cafile=m.ca)
        server.verify_mode = ssl.CERT_REQUIRED
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.verify_mode = ssl.CERT_REQUIRED
    client.check_hostname = True
    client.hostname_checks_common_name = False
    _stdlib_settings(client, version)
    client.load_verify_locations(cafile=m.ca)
    if mtls:
        client.load_cert_chain(m.client_cert, m.client_key)
    return server, client


def settings(ctx: ssl.SSLContext) -> dict[str, Any]:
    """Everything an ``ssl.SSLContext`` shows of its configuration, except the socket classes."""
    return {
        "type": type(ctx).__qualname__,
        "protocol": ctx.protocol,
        "verify_mode": ctx.verify_mode,
        "verify_flags": ctx.verify_flags,
        "check_hostname": ctx.check_hostname,
        "hostname_checks_common_name": ctx.hostname_checks_common_name,
        "minimum_version": ctx.minimum_version,
        "maximum_version": ctx.maximum_version,
        "options": ctx.options,
        "ciphers": [c["name"] for c in ctx.get_ciphers()],
        "ca_certs": ctx.get_ca_certs(binary_form=True),
        "cert_store_stats": ctx.cert_store_stats(),
        "post_handshake_auth": ctx.post_handshake_auth,
        "keylog_filename": ctx.keylog_filename,
        "sni_callback": ctx.sni_callback,
        "num_tickets": ctx.num_tickets if ctx.protocol == ssl.PROTOCOL_TLS_SERVER else None,
        "security_level": getattr(ctx, "security_level", None),
    }


def compare_contexts(what: str, ours: ssl.SSLContext, twin: ssl.SSLContext) -> list[str]:
    """The differences between a securelink context and its twin, besides the socket classes."""
    a, b = settings(ours), settings(twin)
    problems = [
        f"{what}: {name} differs: securelink {a[name]!r}, stdlib {b[name]!r}"
        for name in a
        if a[name] != b[name]
    ]
    if ours.sslsocket_class is ssl.SSLSocket or ours.sslobject_class is ssl.SSLObject:
        problems.append(f"{what}: the securelink context has the stdlib's socket classes")
    if twin.sslsocket_class is not ssl.SSLSocket or twin.sslobject_class is not ssl.SSLObject:
        problems.append(f"{what}: the stdlib twin does not have the stdlib's socket classes")
    return problems


def _chain_der(obj: Any) -> list[bytes] | None:
    # The chain the peer sent; the public accessor arrived in 3.13, the private one before.
    sslobj = getattr(obj, "_sslobj", None)
    getter = getattr(obj, "get_unverified_chain", None) or getattr(
        sslobj, "get_unverified_chain", None
    )
    if getter is None:
        return None
    return [
        c if isinstance(c, bytes) else c.public_bytes(_ssl.ENCODING_DER) for c in getter() or []
    ]


def connection_facts(obj: Any) -> dict[str, Any]:
    """What one side of a finished handshake negotiated and saw (an SSLSocket or SSLObject)."""
    cipher = obj.cipher()
    return {
        "class": f"{type(obj).__module__}.{type(obj).__qualname__}",
        "version": obj.version(),
        "cipher": cipher[0] if cipher else None,
        "peer_cert": obj.getpeercert(binary_form=True),
        "peer_chain": _chain_der(obj),
        "session_reused": obj.session_reused,
    }


def compare_facts(what: str, ours: Mapping[str, Any], twin: Mapping[str, Any]) -> list[str]:
    """The differences between what two twin connections negotiated, besides their classes."""
    problems = [
        f"{what}: {name} differs: securelink {ours[name]!r}, stdlib {twin[name]!r}"
        for name in ours
        if name != "class" and ours[name] != twin[name]
    ]
    for side, facts in (("securelink", ours), ("stdlib", twin)):
        if facts["session_reused"]:
            problems.append(f"{what}: the {side} connection resumed a session")
        if facts["peer_cert"] is None and "client sees" in what:
            problems.append(f"{what}: the {side} client saw no server certificate")
    if not ours["class"].startswith("securelink."):
        problems.append(f"{what}: securelink's connection is a {ours['class']}")
    if twin["class"].startswith("securelink."):
        problems.append(f"{what}: the stdlib twin's connection is a {twin['class']}")
    return problems


# ---------------------------------------------------------------------------------------------
# Blocking sockets: one accepting thread per server context


def _new_client_socket() -> socket.socket:
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RESET)
    return raw


class BlockingServer:
    """Accepts on 127.0.0.1:0 in a thread and serves each connection with *handler*."""

    def __init__(
        self,
        ctx: ssl.SSLContext,
        name: str,
        bulk: bool,
        accept_with: Callable[[socket.socket], ssl.SSLSocket] | None = None,
        server_first: bool = False,
    ) -> None:
        self.ctx = ctx
        self.bulk = bulk
        #: How an accepted socket becomes TLS (section 5); by default TCP_NODELAY, then
        #: ctx.wrap_socket().
        self.accept_with = accept_with
        #: The server writes its byte first, then reads the client's (section 5).
        self.server_first = server_first
        self.listener = socket.create_server((HOST, 0), backlog=64)
        self.port: int = self.listener.getsockname()[1]
        self.errors: list[str] = []
        self.record = False
        self.facts: dict[str, Any] | None = None
        self._stopping = False
        self._thread = threading.Thread(target=self._serve, name=f"server-{name}", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            if self._stopping:
                conn.close()
                return
            try:
                if self.accept_with is not None:
                    accepted = self.accept_with(conn)
                else:
                    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    accepted = self.ctx.wrap_socket(conn, server_side=True)
                with accepted as tls:
                    if self.record:
                        self.facts = connection_facts(tls)
                    if self.bulk:
                        _serve_bulk(tls)
                    elif self.server_first:
                        tls.sendall(b"y")
                        tls.recv(1)
                    elif tls.recv(1) == b"x":
                        tls.sendall(b"y")
            except Exception as exc:
                self.errors.append(f"{type(exc).__name__}: {exc}")
            finally:
                conn.close()

    def close(self) -> None:
        self._stopping = True
        try:  # wake accept() up
            with socket.create_connection((HOST, self.port), timeout=5):
                pass
        except OSError:
            pass
        self._thread.join(timeout=10)
        self.listener.close()


def _recv_exactly(tls: ssl.SSLSocket, view: memoryview) -> None:
    got = 0
    while got < len(view):
        n = tls.recv_into(view[got:])
        if not n:
            raise ConnectionError("the peer closed the connection mid-transfer")
        got += n


def _serve_bulk(tls: ssl.SSLSocket) -> None:
    """Per request: an 8-byte length, then that many bytes; answer one byte.  Length 0 ends."""
    header = bytearray(8)
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    while True:
        _recv_exactly(tls, memoryview(header))
        left = int.from_bytes(header, "big")
        if left == 0:
            return
        while left:
            n = tls.recv_into(view, min(CHUNK, left))
            if not n:
                raise ConnectionError("the client closed the connection mid-transfer")
            left -= n
        tls.sendall(b"k")


def blocking_handshake(
    ctx: ssl.SSLContext, port: int, *, server_first: bool = False
) -> ssl.SSLSocket:
    """Connect, do a full handshake, exchange one byte each way (so both sides are done).

    The client writes first, unless *server_first* (a server that speaks first: a banner, or
    any answer written right after the handshake).
    """
    raw = _new_client_socket()
    try:
        raw.connect((HOST, port))
        tls = ctx.wrap_socket(raw, server_hostname=SERVER_NAME)
    except BaseException:
        raw.close()
        raise
    try:
        if not server_first:
            tls.sendall(b"x")
        if tls.recv(1) != b"y":
            raise ConnectionError("the server did not answer the handshake's ping")
        if server_first:
            tls.sendall(b"x")
    except BaseException:
        tls.close()
        raise
    return tls


def blocking_handshake_section(
    m: Material,
    profile: Profile,
    rng: random.Random,
    problems: list[str],
    cleanup: list[Callable[[], None]],
) -> dict[str, Variant]:
    variants: dict[str, Variant] = {}
    for short, label, mtls, version in CONFIGS:
        contexts = {
            "securelink": securelink_pair(m, mtls, version),
            "stdlib": stdlib_pair(m, mtls, version),
        }
        problems += compare_contexts(
            f"1 {label}, server", contexts["securelink"][0], contexts["stdlib"][0]
        )
        problems += compare_contexts(
            f"1 {label}, client", contexts["securelink"][1], contexts["stdlib"][1]
        )
        facts: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
        pair = []
        for kind in KINDS:
            server_ctx, client_ctx = contexts[kind]
            server = BlockingServer(server_ctx, f"{short}-{kind}", bulk=False)
            cleanup.append(server.close)

            def run(n: int, c: ssl.SSLContext = client_ctx, port: int = server.port) -> None:
                for _ in range(n):
                    blocking_handshake(c, port).close()

            # Check what one connection negotiates (and warm up) before timing anything.
            server.record = True
            with blocking_handshake(client_ctx, server.port) as tls:
                client_side = connection_facts(tls)
            server.record = False
            if server.facts is None:
                raise RuntimeError(f"{label} ({kind}): the server recorded no connection")
            facts[kind] = (client_side, server.facts)
            variant = Variant(f"hs_{short}_{kind}", f"{kind:<10}  {label}", run)
            variant.run(5)
            pair.append(variant)
            variants[variant.key] = variant
            server_errors = server.errors
            if server_errors:
                raise RuntimeError(f"{label} ({kind}): server: {server_errors[0]}")
        problems += compare_facts(
            f"1 {label}, what the client sees", facts["securelink"][0], facts["stdlib"][0]
        )
        problems += compare_facts(
            f"1 {label}, what the server sees", facts["securelink"][1], facts["stdlib"][1]
        )
        calibrate(pair, profile.hs_sample)
    run_rounds(
        list(variants.values()), profile.hs_rounds, profile.hs_budget, profile.min_rounds, rng
    )
    return variants


def wrap_server_section(
    m: Material,
    profile: Profile,
    rng: random.Random,
    cleanup: list[Callable[[], None]],
) -> dict[str, Variant]:
    """wrap_server() as it is (TCP_NODELAY set) and as it was (the accepted socket as it came).

    Before the fix, wrap_server() was ``ctx.wrap_socket(sock, server_side=True)`` on the socket
    accept() returned, so that is what "without" runs.  The client sets TCP_NODELAY, as Go's and
    securelink.connect() do; server-only TLS 1.3.  Two exchanges after the handshake: the client
    writes first (the other sections' ping), or the server does.  In the second, the server's
    byte follows its session tickets, and with Nagle's algorithm waits for the client's delayed
    ACK of them.
    """
    server_ctx, client_ctx = securelink_pair(m, False, ssl.TLSVersion.TLSv1_3)
    ways: dict[str, tuple[str, Callable[[socket.socket], ssl.SSLSocket]]] = {
        "nodelay": (
            "wrap_server()",
            lambda conn: securelink.wrap_server(conn, server_ctx),
        ),
        "nagle": (
            "before the fix (Nagle on)",
            lambda conn: server_ctx.wrap_socket(conn, server_side=True),
        ),
    }
    variants: dict[str, Variant] = {}
    for exchange, server_first in (("client", False), ("server", True)):
        pair = []
        for way, (label, accept_with) in ways.items():
            key = f"ws_{exchange}_{way}"
            server = BlockingServer(
                server_ctx, key, bulk=False, accept_with=accept_with, server_first=server_first
            )
            cleanup.append(server.close)

            def run(n: int, port: int = server.port, first: bool = server_first) -> None:
                for _ in range(n):
                    blocking_handshake(client_ctx, port, server_first=first).close()

            variant = Variant(key, f"{label}, the {exchange} writes first", run)
            variant.run(3)  # warm up
            if server.errors:
                raise RuntimeError(f"{label}: server: {server.errors[0]}")
            variants[key] = variant
            pair.append(variant)
        calibrate(pair, profile.hs_sample)
    run_rounds(
        list(variants.values()), profile.hs_rounds, profile.hs_budget, profile.min_rounds, rng
    )
    return variants


def blocking_bulk_section(
    m: Material,
    profile: Profile,
    rng: random.Random,
    cleanup: list[Callable[[], None]],
) -> dict[str, Variant]:
    _, label, mtls, version = BULK_CONFIG
    payload = os.urandom(CHUNK)
    nbytes = profile.bulk_bytes
    chunks = nbytes // CHUNK
    header = nbytes.to_bytes(8, "big")
    variants: dict[str, Variant] = {}
    for kind in KINDS:
        server_ctx, client_ctx = (securelink_pair if kind == "securelink" else stdlib_pair)(
            m, mtls, version
        )
        server = BlockingServer(server_ctx, f"bulk-{kind}", bulk=True)
        cleanup.append(server.close)
        tls = blocking_handshake_for_bulk(client_ctx, server.port)
        cleanup.append(tls.close)
        cleanup.append(functools.partial(tls.sendall, bytes(8)))  # length 0: the server ends

        def run(n: int, t: ssl.SSLSocket = tls) -> None:
            for _ in range(n):
                t.sendall(header)
                for _ in range(chunks):
                    t.sendall(payload)
                if t.recv(1) != b"k":
                    raise ConnectionError("the server did not acknowledge the transfer")

        variant = Variant(f"bulk_{kind}", f"{kind:<10}  {label}, {_mib(nbytes)} per sample", run)
        variant.unit_bytes = nbytes
        variant.run(1)  # warm up: TCP windows, buffers
        if server.errors:
            raise RuntimeError(f"bulk ({kind}): server: {server.errors[0]}")
        variants[variant.key] = variant
    run_rounds(
        list(variants.values()), profile.bulk_rounds, profile.bulk_budget, profile.min_rounds, rng
    )
    return variants


def blocking_handshake_for_bulk(ctx: ssl.SSLContext, port: int) -> ssl.SSLSocket:
    """A long-lived connection for bulk transfers (closes normally, no reset)."""
    raw = socket.create_connection((HOST, port))
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        return ctx.wrap_socket(raw, server_hostname=SERVER_NAME)
    except BaseException:
        raw.close()
        raise


def _mib(n: int) -> str:
    return f"{n / 2**20:g} MiB"


# ---------------------------------------------------------------------------------------------
# asyncio: one event loop runs the servers (asyncio.start_server) and the clients


class AioServer:
    """An ``asyncio.start_server(ssl=ctx)`` server: a ping-pong per connection, or bulk."""

    def __init__(self, ctx: ssl.SSLContext, bulk: bool) -> None:
        self.ctx = ctx
        self.bulk = bulk
        self.server: asyncio.Server | None = None
        self.port = 0
        self.errors: list[str] = []
        self.record = False
        self.facts: dict[str, Any] | None = None

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._handle, HOST, 0, ssl=self.ctx)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            if self.record:
                self.facts = connection_facts(writer.get_extra_info("ssl_object"))
            if self.bulk:
                await _aio_serve_bulk(reader, writer)
            else:
                if await reader.readexactly(1) == b"x":
                    writer.write(b"y")
                    await writer.drain()
                await reader.read()  # until the client resets the connection
        except (ConnectionResetError, asyncio.IncompleteReadError):
            pass  # the clients end each connection with a reset
        except Exception as exc:
            self.errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            writer.transport.abort()

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


async def _aio_serve_bulk(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while True:
        left = int.from_bytes(await reader.readexactly(8), "big")
        if left == 0:
            return
        while left:
            data = await reader.read(min(CHUNK, left))
            if not data:
                raise ConnectionError("the client closed the connection mid-transfer")
            left -= len(data)
        writer.write(b"k")
        await writer.drain()


def _reset(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RESET)
    writer.transport.abort()


async def aio_handshake(ctx: ssl.SSLContext, port: int) -> asyncio.StreamWriter:
    """Connect, do a full handshake, exchange one byte each way; return the open writer."""
    reader, writer = await asyncio.open_connection(HOST, port, ssl=ctx, server_hostname=SERVER_NAME)
    try:
        writer.write(b"x")
        if await reader.readexactly(1) != b"y":
            raise ConnectionError("the server did not answer the handshake's ping")
    except BaseException:
        _reset(writer)
        raise
    return writer


def aio_handshake_section(
    loop: asyncio.AbstractEventLoop,
    m: Material,
    profile: Profile,
    rng: random.Random,
    problems: list[str],
    cleanup: list[Callable[[], None]],
) -> dict[str, Variant]:
    variants: dict[str, Variant] = {}
    for short, label, mtls, version in CONFIGS:
        facts: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
        pair = []
        for kind in KINDS:
            server_ctx, client_ctx = (securelink_pair if kind == "securelink" else stdlib_pair)(
                m, mtls, version
            )
            server = AioServer(server_ctx, bulk=False)
            loop.run_until_complete(server.start())
            cleanup.append(functools.partial(_complete, loop, server.close))

            async def batch(
                n: int, c: ssl.SSLContext = client_ctx, port: int = server.port
            ) -> None:
                for _ in range(n):
                    _reset(await aio_handshake(c, port))

            def run(n: int, b: Callable[[int], Any] = batch) -> None:
                loop.run_until_complete(b(n))

            async def check(c: ssl.SSLContext = client_ctx, port: int = server.port) -> Any:
                writer = await aio_handshake(c, port)
                result = connection_facts(writer.get_extra_info("ssl_object"))
                _reset(writer)
                return result

            server.record = True
            client_side = loop.run_until_complete(check())
            loop.run_until_complete(asyncio.sleep(0.01))  # let the server's handler finish
            server.record = False
            if server.facts is None:
                raise RuntimeError(f"asyncio {label} ({kind}): the server recorded no connection")
            facts[kind] = (client_side, server.facts)
            variant = Variant(f"aio_hs_{short}_{kind}", f"{kind:<10}  {label}", run)
            variant.run(5)
            if server.errors:
                raise RuntimeError(f"asyncio {label} ({kind}): server: {server.errors[0]}")
            pair.append(variant)
            variants[variant.key] = variant
        problems += compare_facts(
            f"3 {label}, what the client sees", facts["securelink"][0], facts["stdlib"][0]
        )
        problems += compare_facts(
            f"3 {label}, what the server sees", facts["securelink"][1], facts["stdlib"][1]
        )
        calibrate(pair, profile.hs_sample)
    run_rounds(
        list(variants.values()), profile.hs_rounds, profile.hs_budget, profile.min_rounds, rng
    )
    return variants


def aio_bulk_section(
    loop: asyncio.AbstractEventLoop,
    m: Material,
    profile: Profile,
    rng: random.Random,
    cleanup: list[Callable[[], None]],
) -> dict[str, Variant]:
    _, label, mtls, version = BULK_CONFIG
    payload = os.urandom(CHUNK)
    nbytes = profile.bulk_bytes
    chunks = nbytes // CHUNK
    header = nbytes.to_bytes(8, "big")
    variants: dict[str, Variant] = {}
    for kind in KINDS:
        server_ctx, client_ctx = (securelink_pair if kind == "securelink" else stdlib_pair)(
            m, mtls, version
        )
        server = AioServer(server_ctx, bulk=True)
        loop.run_until_complete(server.start())
        cleanup.append(functools.partial(_complete, loop, server.close))
        reader, writer = loop.run_until_complete(
            asyncio.open_connection(HOST, server.port, ssl=client_ctx, server_hostname=SERVER_NAME)
        )

        async def finish(w: asyncio.StreamWriter = writer) -> None:
            w.write(bytes(8))  # length 0: the server's handler ends
            await w.drain()
            w.close()
            with contextlib.suppress(OSError, TimeoutError):
                await asyncio.wait_for(w.wait_closed(), 5)

        cleanup.append(functools.partial(_complete, loop, finish))

        async def batch(
            n: int, r: asyncio.StreamReader = reader, w: asyncio.StreamWriter = writer
        ) -> None:
            for _ in range(n):
                w.write(header)
                for _ in range(chunks):
                    w.write(payload)
                    await w.drain()
                if await r.readexactly(1) != b"k":
                    raise ConnectionError("the server did not acknowledge the transfer")

        def run(n: int, b: Callable[[int], Any] = batch) -> None:
            loop.run_until_complete(b(n))

        variant = Variant(
            f"aio_bulk_{kind}", f"{kind:<10}  {label}, {_mib(nbytes)} per sample", run
        )
        variant.unit_bytes = nbytes
        variant.run(1)
        if server.errors:
            raise RuntimeError(f"asyncio bulk ({kind}): server: {server.errors[0]}")
        variants[variant.key] = variant
    run_rounds(
        list(variants.values()), profile.bulk_rounds, profile.bulk_budget, profile.min_rounds, rng
    )
    return variants


def _complete(loop: asyncio.AbstractEventLoop, fn: Callable[[], Awaitable[Any]]) -> None:
    async def call() -> None:
        await fn()

    loop.run_until_complete(call())


@contextlib.contextmanager
def event_loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    try:
        yield loop
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


# ---------------------------------------------------------------------------------------------
# Report


def fmt_time(seconds: float) -> str:
    """A duration in s, ms, us or ns, three significant figures or so."""
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            value = seconds / scale
            return f"{value:.3g} {unit}" if value < 100 else f"{value:.0f} {unit}"
    return f"{seconds * 1e9:.0f} ns"


def fmt_rate(v: Variant, seconds: float) -> str:
    rate = v.rate(seconds)
    return f"{rate:.0f}" if rate >= 100 else f"{rate:.3g}"


def fmt_ratio(r: float) -> str:
    """A ratio with three decimals."""
    return "-" if r != r else f"{r:.3f}x"


SECTIONS = (
    ("1", "1. Blocking sockets: full handshakes (connect, handshake, 1-byte ping-pong, reset)"),
    ("2", "2. Blocking sockets: bulk transfer, client to server, 64 KiB send/recv calls"),
    ("3", "3. asyncio: full handshakes (open_connection / start_server with ssl=ctx)"),
    ("4", "4. asyncio: bulk transfer, client to server, 64 KiB writes, drain after each"),
    ("5", "5. wrap_server(): full handshakes with TCP_NODELAY (the fix) and without"),
)


def write_ratios(
    w: Callable[[str], object],
    title: str,
    figures: Sequence[Figure],
    checks: Sequence[Mapping[str, Any]],
    notes: Sequence[str],
    *,
    id_width: int = 4,
    label_width: int = 56,
    legend: str = "Results in parentheses are informational; --strict counts the others.",
) -> None:
    """Write the ratio table that every benchmark here ends with (shared by the scripts)."""
    w(f"\n{title}\n")
    w(
        f"  {'':<{id_width}}{'figure':<{label_width}} {'ratio':>7} {'95% interval':>15}"
        f" {'target':>8} {'result':>7}\n"
    )
    shown: set[str] = set()
    for f in figures:
        target = f">={f.target:.2f}x" if f.target is not None else ""
        result = f.result if f.gating or not f.result else f"({f.result})"
        head = f"  {f.id:<{id_width}}{f.label:<{label_width}}"
        if f.error is not None:
            w(f"{head} {'-':>7} {'':>15} {target:>8} {result:>7}\n")
            if f.error not in shown:
                w(f"      {f.error}\n")
                shown.add(f.error)
            continue
        interval = f"{fmt_ratio(f.low)}..{fmt_ratio(f.high)}"
        w(f"{head} {fmt_ratio(f.ratio):>7} {interval:>15} {target:>8} {result:>7}\n")
    for c in checks:
        w(
            f"  {c['id']:<{id_width}}{c['label']:<{label_width}} {c['value']:>7} {'':>15}"
            f" {'':>8} {c['result']:>7}\n"
        )
    w(f"  {legend}\n")
    for note in notes:
        w(f"NOTE: {note}\n")


def render(
    meta: Mapping[str, Any],
    sections: Sequence[tuple[str, Sequence[Variant]]],
    figures: Sequence[Figure],
    checks: Sequence[Mapping[str, Any]],
    notes: Sequence[str],
    out: TextIO,
) -> None:
    """Print the human-readable report."""
    w = out.write
    w(
        f"securelink {meta['securelink']} handshake and throughput benchmark ({meta['profile']}"
        f" run, {meta['elapsed_s']:.1f} s)\n"
    )
    w(
        f"  Python {meta['python']} | {meta['openssl']} | {meta['cpus']} CPUs"
        f" | load {meta['load_before']} -> {meta['load_after']} | ECDSA P-256 certificates\n"
    )
    for title, variants in sections:
        if not variants:
            continue
        unit = "MiB/s" if variants[0].unit_bytes else "hs/s"
        w(f"\n{title}\n")
        w(
            f"  {'variant':<58} {'median':>9} {unit:>7} {'q1..q3 ' + unit:>17}"
            f" {'CPU':>9} {'rounds':>6} {'ops':>4}\n"
        )
        for v in variants:
            s = v.summary()
            spread = f"{fmt_rate(v, s['q3_s'])}..{fmt_rate(v, s['q1_s'])}"
            w(
                f"  {v.label:<58} {fmt_time(s['median_s']):>9} {fmt_rate(v, s['median_s']):>7}"
                f" {spread:>17} {fmt_time(s['cpu_median_s']):>9} {s['rounds']:>6}"
                f" {s['ops_per_sample']:>4}\n"
            )
    write_ratios(
        w,
        "Ratios: securelink speed / stdlib twin speed (ratio of medians; 95% interval from"
        " resampling the rounds)",
        figures,
        checks,
        notes,
    )


def build_figures() -> list[Figure]:
    figures: list[Figure] = []
    for section, prefix in (("1", "hs"), ("3", "aio_hs")):
        api = "blocking" if section == "1" else "asyncio"
        for short, label, _, _ in CONFIGS:
            keys = (f"{prefix}_{short}_securelink", f"{prefix}_{short}_stdlib")
            figures.append(Figure(section, f"{api} handshakes/s, {label}", keys))
    figures.append(Figure("2", "blocking bulk MiB/s", ("bulk_securelink", "bulk_stdlib")))
    figures.append(Figure("4", "asyncio bulk MiB/s", ("aio_bulk_securelink", "aio_bulk_stdlib")))
    figures.sort(key=lambda f: f.id)
    # The same ratios in CPU time (user + system of the whole process: client and server).
    cpu = [Figure(f.id, f"{f.label} [CPU time]", f.keys, cpu=True, gating=False) for f in figures]
    # Not securelink against a twin: the fix against what it fixed (the handshakes/s of each
    # are in section 5's table).  Informational: the delayed ACK it removes is the kernel's.
    speedups = [
        Figure(
            "5",
            f"wrap_server() hs/s, TCP_NODELAY / Nagle, {who} writes first",
            (f"ws_{who}_nodelay", f"ws_{who}_nagle"),
            target=None,
            gating=False,
        )
        for who in ("client", "server")
    ]
    return [*figures, *speedups, *cpu]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Measure full TLS handshakes and bulk throughput through securelink's"
        " contexts against stdlib twins, as ratios of medians of interleaved runs."
    )
    parser.add_argument("--quick", action="store_true", help="fewer rounds (about 12 s, not 75)")
    parser.add_argument(
        "--json",
        metavar="FILE",
        help="also write the results as JSON to FILE ('-': JSON on stdout, the table on stderr)",
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help="exit 1 if any target is missed or a measurement fails",
    )
    parser.add_argument("--seed", type=int, default=20240601, help="seed for the round order")
    parser.add_argument(
        "--only",
        action="append",
        choices=[section for section, _ in SECTIONS],
        help="measure only this section (may be repeated; default: all)",
    )
    args = parser.parse_args(argv)
    wanted = set(args.only or [section for section, _ in SECTIONS])

    faulthandler.dump_traceback_later(WATCHDOG_S, exit=True)
    profile = QUICK if args.quick else FULL
    rng = random.Random(args.seed)
    notes: list[str] = []
    problems: list[str] = []
    started = time.perf_counter()
    load_before = _load()
    progress = sys.stderr
    measured: dict[str, dict[str, Variant]] = {}
    errors: dict[str, str] = {}

    with tempfile.TemporaryDirectory(prefix="securelink-bench-") as tmp:
        material = make_material(tmp)

        def attempt(section: str, what: str, fn: Callable[[list[Callable[[], None]]], Any]) -> None:
            if section not in wanted:
                errors[section] = "not measured (--only)"
                return
            progress.write(f"measuring {section}: {what} ...\n")
            cleanup: list[Callable[[], None]] = []
            try:
                measured[section] = fn(cleanup)
            except (OSError, EOFError, RuntimeError, securelink.SecureLinkError) as exc:
                errors[section] = f"section {section} failed: {type(exc).__name__}: {exc}"
            finally:
                for undo in reversed(cleanup):
                    try:
                        undo()
                    except Exception as exc:  # cleanup must go on
                        notes.append(f"{section}: cleanup: {type(exc).__name__}: {exc}")

        attempt(
            "1",
            "blocking handshakes",
            lambda c: blocking_handshake_section(material, profile, rng, problems, c),
        )
        attempt(
            "2",
            "blocking bulk transfer",
            lambda c: blocking_bulk_section(material, profile, rng, c),
        )
        attempt(
            "5",
            "wrap_server() handshakes, with and without TCP_NODELAY",
            lambda c: wrap_server_section(material, profile, rng, c),
        )
        with event_loop() as loop:
            attempt(
                "3",
                "asyncio handshakes",
                lambda c: aio_handshake_section(loop, material, profile, rng, problems, c),
            )
            attempt(
                "4",
                "asyncio bulk transfer",
                lambda c: aio_bulk_section(loop, material, profile, rng, c),
            )

    progress.write("computing the intervals ...\n")
    all_variants = {k: v for section in measured.values() for k, v in section.items()}
    figures = build_figures()
    for f in figures:
        if f.id in errors:
            f.error = errors[f.id]
        elif all(k in all_variants for k in f.keys):
            evaluate(f, all_variants, profile.bootstrap, rng)
        else:
            f.error = "not measured"

    checks = [
        {
            "id": "all",
            "label": "stdlib twins equal securelink's contexts (but classes)",
            "value": str(len(problems)) if problems else "equal",
            "result": "MISS" if problems else "PASS",
            "differences": problems,
        }
    ]
    notes += [f"twin mismatch: {p}" for p in problems]
    notes += errors.values()
    if _load_high(load_before):
        notes.append(
            f"the load average was {load_before} on {os.cpu_count()} CPUs before the run:"
            " the machine is busy, so the intervals are wide. Run it again when it is quieter."
        )

    meta = {
        "securelink": securelink.__version__,
        "profile": profile.name,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "openssl": ssl.OPENSSL_VERSION,
        "cryptography": importlib.metadata.version("cryptography"),
        "cpus": os.cpu_count(),
        "load_before": load_before,
        "load_after": _load(),
        "seed": args.seed,
        # The classes measured: their source changes as the project does.
        "sockets_py_sha256": _sha256(securelink._sockets.__file__),
        "bulk_bytes_per_sample": profile.bulk_bytes,
        "chunk_bytes": CHUNK,
        "elapsed_s": time.perf_counter() - started,
    }
    sections = [(title, list(measured.get(section, {}).values())) for section, title in SECTIONS]
    table_out = sys.stderr if args.json == "-" else sys.stdout
    render(meta, sections, figures, checks, notes, table_out)

    if args.json:
        doc = {
            "meta": meta,
            "variants": {k: v.summary() for k, v in all_variants.items()},
            "samples_s": {k: v.samples for k, v in all_variants.items()},
            "cpu_samples_s": {k: v.cpu for k, v in all_variants.items()},
            "figures": [f.as_json() for f in figures],
            "checks": checks,
            "notes": notes,
        }
        text = json.dumps(doc, indent=2, sort_keys=False) + "\n"
        if args.json == "-":
            sys.stdout.write(text)
        else:
            with open(args.json, "w", encoding="utf-8") as fh:
                fh.write(text)

    faulthandler.cancel_dump_traceback_later()
    failed = [f for f in figures if f.gating and f.result in {"MISS", "ERROR"}]
    failed_checks = [c for c in checks if c["result"] != "PASS"]
    if args.strict and (failed or failed_checks):
        return 1
    return 0


def _load() -> str:
    try:
        return f"{os.getloadavg()[0]:.2f}"
    except OSError:  # pragma: no cover - not on every platform
        return "?"


def _sha256(path: str | None) -> str | None:
    if path is None:
        return None
    try:
        with open(path, "rb") as fh:
            return hashlib.sha256(fh.read()).hexdigest()
    except OSError:
        return None


def _load_high(load: str) -> bool:
    try:
        return float(load) > 0.75 * (os.cpu_count() or 1)
    except ValueError:
        return False


if __name__ == "__main__":
    sys.exit(main())
