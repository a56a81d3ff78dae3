"""What TLS session resumption saves: resumed against full handshakes, through securelink.connect.

``securelink.connect`` keeps the TLS sessions of the contexts securelink built and resumes them on
the next connection to the same server (``resume=True``, the default).  This benchmark measures
what that saves: connections per second with ``resume=True`` (every connection after the first
resumes) against ``resume=False`` (every one is a full handshake), for TLS 1.2 and TLS 1.3, with
and without client certificates.  Beside them, the same pair done by hand with the standard library
alone (a stdlib twin context, ``wrap_socket(session=...)`` given the previous connection's
session), which is what the issue measured (about 1.8x on TLS 1.2 and 1.2x on TLS 1.3).

The method is that of ``bench_handshakes.py``, whose code this script uses: the variants are
interleaved in rounds (a shuffled order each round), each gives one sample per round, a sample
batches connections until it lasts about 25 ms (12 ms with ``--quick``), a ratio is the ratio of
the medians, and its 95% interval comes from resampling the rounds (bootstrap).

Each connection is a new TCP connection to a server thread on 127.0.0.1:0, the handshake, a
one-byte ping and pong (so the client processes TLS 1.3 tickets, which arrive after the
handshake), and a close with a reset (``SO_LINGER`` 0, so that no ``TIME_WAIT`` entries pile up).
Every connection's ``session_reused`` is checked against what its variant should do.

Run it from the repository root::

    python bench/bench_resumption.py            # full run, about 45 s
    python bench/bench_resumption.py --quick    # about 8 s, fewer rounds
    python bench/bench_resumption.py --json results.json

It exits 0 whatever it measures, unless ``--strict`` is given (then 1 on any miss or error).
Loopback only.  See bench/README.md for what each figure means.
"""

from __future__ import annotations

import argparse
import faulthandler
import importlib.metadata
import json
import os
import platform
import random
import socket
import ssl
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

import bench_handshakes as hs
from bench_handshakes import Figure, Variant

import securelink
import securelink._connect
import securelink._sockets

TLS12, TLS13 = ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3
#: The configurations: (key, label, mutual TLS, TLS version).
CONFIGS = (
    ("srv12", "server-only, TLS 1.2", False, TLS12),
    ("srv13", "server-only, TLS 1.3", False, TLS13),
    ("mtls12", "mutual TLS, TLS 1.2", True, TLS12),
    ("mtls13", "mutual TLS, TLS 1.3", True, TLS13),
)
#: Resumed / full through securelink.connect, at least.  What resumption saves is the
#: certificate exchange: the server's signature and the client's verification, and with mutual
#: TLS the client's signature and the server's verification too.  A server-only TLS 1.3
#: resumption saves about nothing here, so it has no target: it still runs an ECDHE exchange,
#: ECDSA P-256 signatures are cheap, and CPython copies a session through DER (certificates
#: included, about 150 us) both when it is read from a connection and when it is given to one,
#: which a single-use TLS 1.3 ticket pays on every connection.
TARGETS: dict[str, float | None] = {"srv12": 1.15, "srv13": None, "mtls12": 1.50, "mtls13": 1.20}


@dataclass(frozen=True)
class Profile:
    """How much to measure."""

    name: str
    rounds: int
    budget: float  # seconds for the whole section; rounds stop early past this
    sample: float  # seconds: a sample batches connections until it lasts this long
    min_rounds: int
    bootstrap: int


FULL = Profile("full", 400, 40.0, 0.025, 20, 1000)
QUICK = Profile("quick", 60, 6.0, 0.012, 8, 300)


class Client:
    """One variant's client: a context, a server port, resume or not, and a tally of reuse."""

    def __init__(
        self, ctx: ssl.SSLContext, port: int, *, securelink_connect: bool, resume: bool
    ) -> None:
        self.ctx = ctx
        self.port = port
        self.securelink_connect = securelink_connect
        self.resume = resume
        self.session: ssl.SSLSession | None = None  # the stdlib variant's last session
        self.expected = 0
        self.unexpected = 0

    def one(self) -> None:
        """Connect, handshake, ping-pong, reset; count whether it resumed as it should."""
        if self.securelink_connect:
            tls = securelink.connect(
                hs.HOST, self.port, self.ctx, server_hostname=hs.SERVER_NAME, resume=self.resume
            )
        else:
            raw = hs._new_client_socket()
            try:
                raw.connect((hs.HOST, self.port))
                tls = self.ctx.wrap_socket(
                    raw, server_hostname=hs.SERVER_NAME, session=self.session
                )
            except BaseException:
                raw.close()
                raise
        try:
            tls.sendall(b"x")
            if tls.recv(1) != b"y":
                raise ConnectionError("the server did not answer the ping")
            if self.resume and not self.securelink_connect:
                self.session = tls.session  # read after the ping: TLS 1.3 tickets are in
            if bool(tls.session_reused) == self.resume:
                self.expected += 1
            else:
                self.unexpected += 1
            tls.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, hs.LINGER_RESET)
        finally:
            tls.close()

    def run(self, n: int) -> None:
        """Make *n* connections."""
        for _ in range(n):
            self.one()


def section(
    m: hs.Material,
    profile: Profile,
    rng: random.Random,
    clients: dict[str, Client],
    cleanup: list[Callable[[], None]],
) -> dict[str, Variant]:
    variants: dict[str, Variant] = {}
    for short, label, mtls, version in CONFIGS:
        group = []
        for kind, make in (("securelink", hs.securelink_pair), ("stdlib", hs.stdlib_pair)):
            server_ctx, client_ctx = make(m, mtls, version)
            server = hs.BlockingServer(server_ctx, f"{short}-{kind}", bulk=False)
            cleanup.append(server.close)
            for resume in (False, True):
                client = Client(
                    client_ctx, server.port, securelink_connect=kind == "securelink", resume=resume
                )
                client.run(3)  # warm up: the first connection of a resumed variant is full
                client.expected = client.unexpected = 0
                how = "resumed" if resume else "full"
                key = f"{short}_{kind}_{how}"
                clients[key] = client
                variant = Variant(key, f"{kind:<10}  {how:<7}  {label}", client.run)
                group.append(variant)
                variants[key] = variant
            if server.errors:
                raise RuntimeError(f"{label} ({kind}): server: {server.errors[0]}")
        hs.calibrate(group, profile.sample)
    hs.run_rounds(list(variants.values()), profile.rounds, profile.budget, profile.min_rounds, rng)
    return variants


def build_figures() -> list[Figure]:
    figures = []
    for short, label, _, _ in CONFIGS:
        figures.append(
            Figure(
                "R",
                f"securelink.connect resumed / full, {label}",
                (f"{short}_securelink_resumed", f"{short}_securelink_full"),
                target=TARGETS[short],
                gating=TARGETS[short] is not None,
            )
        )
    for short, label, _, _ in CONFIGS:
        figures.append(
            Figure(
                "S",
                f"stdlib by hand resumed / full, {label}",
                (f"{short}_stdlib_resumed", f"{short}_stdlib_full"),
                target=None,
                gating=False,
            )
        )
    for short, label, _, _ in CONFIGS:
        figures.append(
            Figure(
                "C",
                f"securelink.connect resumed / stdlib resumed, {label}",
                (f"{short}_securelink_resumed", f"{short}_stdlib_resumed"),
                target=None,
                gating=False,
            )
        )
    # The same ratios in CPU time (user + system of the whole process: client and server).
    cpu = [
        Figure(f.id, f"{f.label} [CPU time]", f.keys, cpu=True, target=None, gating=False)
        for f in figures
    ]
    return figures + cpu


def render(
    meta: Mapping[str, Any],
    variants: Sequence[Variant],
    figures: Sequence[Figure],
    checks: Sequence[Mapping[str, Any]],
    notes: Sequence[str],
    out: TextIO,
) -> None:
    """Print the human-readable report."""
    w = out.write
    w(
        f"securelink {meta['securelink']} session resumption benchmark ({meta['profile']} run,"
        f" {meta['elapsed_s']:.1f} s)\n"
    )
    w(
        f"  Python {meta['python']} | {meta['openssl']} | {meta['cpus']} CPUs"
        f" | load {meta['load_before']} -> {meta['load_after']} | ECDSA P-256 certificates\n"
    )
    if variants:
        w("\nConnections (connect, handshake, 1-byte ping-pong, reset)\n")
        w(
            f"  {'variant':<50} {'median':>9} {'conn/s':>7} {'q1..q3 conn/s':>15}"
            f" {'CPU':>9} {'rounds':>6} {'ops':>4}\n"
        )
        for v in variants:
            s = v.summary()
            spread = f"{hs.fmt_rate(v, s['q3_s'])}..{hs.fmt_rate(v, s['q1_s'])}"
            w(
                f"  {v.label:<50} {hs.fmt_time(s['median_s']):>9}"
                f" {hs.fmt_rate(v, s['median_s']):>7} {spread:>15}"
                f" {hs.fmt_time(s['cpu_median_s']):>9} {s['rounds']:>6} {s['ops_per_sample']:>4}\n"
            )
    hs.write_ratios(
        w,
        "Ratios of speeds (ratio of medians; 95% interval from resampling the rounds)",
        figures,
        checks,
        notes,
        id_width=3,
        label_width=80,
        legend="R with a target: gating (--strict counts them); the others are informational.",
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Measure resumed against full TLS handshakes through securelink.connect,"
        " as ratios of medians of interleaved runs."
    )
    parser.add_argument("--quick", action="store_true", help="fewer rounds (about 8 s, not 45)")
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
    args = parser.parse_args(argv)

    faulthandler.dump_traceback_later(hs.WATCHDOG_S, exit=True)
    profile = QUICK if args.quick else FULL
    rng = random.Random(args.seed)
    notes: list[str] = []
    started = time.perf_counter()
    load_before = hs._load()
    clients: dict[str, Client] = {}
    variants: dict[str, Variant] = {}
    error: str | None = None

    with tempfile.TemporaryDirectory(prefix="securelink-bench-") as tmp:
        material = hs.make_material(tmp)
        sys.stderr.write("measuring: resumed and full connections ...\n")
        cleanup: list[Callable[[], None]] = []
        try:
            variants = section(material, profile, rng, clients, cleanup)
        except (OSError, EOFError, RuntimeError, securelink.SecureLinkError) as exc:
            error = f"the measurement failed: {type(exc).__name__}: {exc}"
        finally:
            for undo in reversed(cleanup):
                try:
                    undo()
                except Exception as exc:  # cleanup must go on
                    notes.append(f"cleanup: {type(exc).__name__}: {exc}")

    sys.stderr.write("computing the intervals ...\n")
    figures = build_figures()
    for f in figures:
        if error is not None:
            f.error = error
        elif all(k in variants for k in f.keys):
            hs.evaluate(f, variants, profile.bootstrap, rng)
        else:
            f.error = "not measured"

    wrong = {k: c.unexpected for k, c in clients.items() if c.unexpected}
    counted = sum(c.expected + c.unexpected for c in clients.values())
    checks = [
        {
            "id": "R",
            "label": "every connection resumed, or not, as its variant should",
            "value": f"{sum(wrong.values())} off" if wrong else "all",
            "result": "MISS" if wrong or error else "PASS",
            "connections": counted,
            "unexpected": wrong,
        }
    ]
    if wrong:
        notes.append(f"connections that did not resume as expected: {wrong}")
    if error is not None:
        notes.append(error)
    if hs._load_high(load_before):
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
        "load_after": hs._load(),
        "seed": args.seed,
        "sockets_py_sha256": hs._sha256(securelink._sockets.__file__),
        # The session cache that connect() resumes from lives in _connect.py.
        "connect_py_sha256": hs._sha256(securelink._connect.__file__),
        "connections_checked": counted,
        "elapsed_s": time.perf_counter() - started,
    }
    table_out = sys.stderr if args.json == "-" else sys.stdout
    render(meta, list(variants.values()), figures, checks, notes, table_out)

    if args.json:
        doc = {
            "meta": meta,
            "variants": {k: v.summary() for k, v in variants.items()},
            "samples_s": {k: v.samples for k, v in variants.items()},
            "cpu_samples_s": {k: v.cpu for k, v in variants.items()},
            "figures": [f.as_json() for f in figures],
            "checks": checks,
            "notes": notes,
        }
        text = json.dumps(doc, indent=2) + "\n"
        if args.json == "-":
            sys.stdout.write(text)
        else:
            with open(args.json, "w", encoding="utf-8") as fh:
                fh.write(text)

    faulthandler.cancel_dump_traceback_later()
    failed = [f for f in figures if f.gating and f.result in {"MISS", "ERROR"}]
    if args.strict and (failed or any(c["result"] != "PASS" for c in checks)):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
