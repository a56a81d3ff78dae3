"""What certificate rotation costs a serving server: handshakes/s while rotating every 50 ms.

A :class:`securelink.RotatingServerContext` hands a server one stable context whose certificate can
be replaced while it serves.  This benchmark measures full mutual-TLS handshakes per second of a
server given such a context while its certificate is rotated every 50 ms (the certificate and key
file is replaced atomically and ``reload()`` called, alternating two identities from one CA),
against the same server whose context is not rotated.  For information it also compares the
context that is not rotated with a plain ``securelink.server_context`` one: the price of the
switch to the current material that every handshake makes.  (securelink against a context built
with the standard library alone is ``bench_handshakes.py``'s subject.)

The method and the handshake itself are those of ``bench_handshakes.py``, imported from it: the
variants of a section are interleaved in rounds (a shuffled order each round), each variant gives
one sample per round, a ratio is the ratio of the medians, and its 95% interval comes from
resampling the rounds (bootstrap).  A handshake is a new TCP connection, a full handshake (no
session resumption), a one-byte ping and pong, and a reset.

The rotations run in a thread, as a polling thread would, only while a sample of the rotating
variant is being taken (and that sample waits for a rotation in progress to finish), so their
cost is charged to that variant alone.  A sample lasts about 200 ms (150 ms with ``--quick``):
three or four rotations.

Run it from the repository root::

    python bench/bench_rotation.py            # full run, about 60 s
    python bench/bench_rotation.py --quick    # about 12 s, fewer rounds
    python bench/bench_rotation.py --json results.json

It exits 0 whatever it measures, unless ``--strict`` is given (then 1 on any miss or error).
Loopback only.  See bench/README.md for what each figure means.
"""

from __future__ import annotations

import argparse
import asyncio
import faulthandler
import functools
import importlib.metadata
import json
import os
import platform
import random
import ssl
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from bench_handshakes import (
    WATCHDOG_S,
    AioServer,
    BlockingServer,
    Figure,
    Variant,
    _complete,
    _load,
    _load_high,
    _reset,
    aio_handshake,
    blocking_handshake,
    calibrate,
    evaluate,
    event_loop,
    fmt_rate,
    fmt_time,
    run_rounds,
    write_ratios,
)

import securelink
from securelink import devca
from securelink._rotation import RotatingServerContext

SERVER_NAME = "localhost"
HOST = "127.0.0.1"
TARGET = 0.95  # handshakes/s while rotating / handshakes/s without, at least
PERIOD = 0.05  # seconds between rotations


@dataclass(frozen=True)
class Profile:
    """How much to measure."""

    name: str
    rounds: int  # rounds per section (each round: one sample of each of the three variants)
    budget: float  # seconds per section; rounds stop early past this
    sample: float  # seconds: a sample batches handshakes until it lasts about this long
    min_rounds: int
    bootstrap: int  # resamples for the 95% intervals


FULL = Profile("full", 200, 25.0, 0.2, 15, 1000)
QUICK = Profile("quick", 40, 5.0, 0.15, 6, 300)

#: (key, label): the server contexts compared in each section.
KINDS = (
    ("rotating", "RotatingServerContext, rotated every 50 ms"),
    ("steady", "RotatingServerContext, not rotated"),
    ("plain", "securelink.server_context()"),
)


# ---------------------------------------------------------------------------------------------
# Material and rotation


@dataclass(frozen=True)
class Material:
    """Two server identities from one CA (ECDSA P-256), as PEM files; a client identity."""

    ca_pem: bytes
    identities: tuple[bytes, bytes]  # chain + key, one PEM each
    client: securelink.ClientOptions


def make_material() -> Material:
    ca = devca.CertificateAuthority()
    a = ca.issue(SERVER_NAME, HOST, usage=devca.Usage.SERVER)
    b = ca.issue(SERVER_NAME, HOST, usage=devca.Usage.SERVER)
    client = ca.issue("client.test", usage=devca.Usage.CLIENT)
    return Material(
        ca_pem=ca.cert_pem,
        identities=(a.chain_pem + a.key_pem, b.chain_pem + b.key_pem),
        client=securelink.ClientOptions(ca=ca.cert_pem, cert=client.chain_pem, key=client.key_pem),
    )


def write_atomically(path: str, data: bytes) -> None:
    """Replace *path* as a certificate deployment should: a new file renamed over the old."""
    tmp = f"{path}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def server_options(path: str, m: Material) -> securelink.ServerOptions:
    return securelink.ServerOptions(
        cert=path,
        key=path,
        client_auth=securelink.ClientAuth.REQUIRE_AND_VERIFY,
        client_ca=m.ca_pem,
    )


class Rotator:
    """Rotates a RotatingServerContext every PERIOD seconds in a thread, between begin and end."""

    def __init__(self, rot: RotatingServerContext, path: str, identities: tuple[bytes, bytes]):
        self.rot = rot
        self.path = path
        self.identities = identities
        self.count = 0
        self.reload_s: list[float] = []  # how long each file replacement + reload() took
        self.active_s = 0.0  # seconds spent between begin and end
        self.errors: list[str] = []
        self._begin = threading.Event()
        self._end = threading.Event()
        self._idle = threading.Event()
        self._closing = False
        self._started = 0.0
        self._thread = threading.Thread(target=self._loop, name="bench-rotator", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        # Rotations keep a 50 ms grid across samples: the time to the next rotation left at the
        # end of one sample is waited at the start of the next, as if the samples were one run.
        left = PERIOD
        while True:
            self._begin.wait()
            self._begin.clear()
            if self._closing:
                return
            due = time.perf_counter() + left
            while not self._end.wait(max(0.0, due - time.perf_counter())):
                t0 = time.perf_counter()
                try:
                    write_atomically(self.path, self.identities[(self.count + 1) % 2])
                    self.rot.reload()
                except Exception as exc:
                    self.errors.append(f"{type(exc).__name__}: {exc}")
                self.reload_s.append(time.perf_counter() - t0)
                self.count += 1
                due = max(due + PERIOD, time.perf_counter())  # a late rotation is not repeated
            left = max(0.0, due - time.perf_counter())
            self._end.clear()
            self._idle.set()

    def begin(self) -> None:
        self._started = time.perf_counter()
        self._begin.set()

    def end(self) -> None:
        """Stop rotating, and wait for a rotation in progress (charged to the caller)."""
        self._end.set()
        self._idle.wait()
        self._idle.clear()
        self.active_s += time.perf_counter() - self._started

    def close(self) -> None:
        self._closing = True
        self._begin.set()
        self._thread.join(timeout=10)


@dataclass
class Contexts:
    """The three server contexts of a section and the client context."""

    servers: dict[str, ssl.SSLContext]
    client: ssl.SSLContext
    rotator: Rotator
    served: dict[str, set[bytes]] = field(default_factory=dict)


def make_contexts(
    m: Material, tmp: str, section: str, cleanup: list[Callable[[], None]]
) -> Contexts:
    files = {}
    for kind, _ in KINDS:
        path = os.path.join(tmp, f"{section}-{kind}.pem")
        write_atomically(path, m.identities[0])
        files[kind] = path
    rotating = RotatingServerContext(server_options(files["rotating"], m))
    steady = RotatingServerContext(server_options(files["steady"], m))
    plain = securelink.server_context(server_options(files["plain"], m), shared=False)
    rotator = Rotator(rotating, files["rotating"], m.identities)
    cleanup.append(rotator.close)
    return Contexts(
        servers={"rotating": rotating.context, "steady": steady.context, "plain": plain},
        client=securelink.client_context(m.client, shared=False),
        rotator=rotator,
        served={kind: set() for kind, _ in KINDS},
    )


def _rotating(kind: str, contexts: Contexts, run: Callable[[int], None]) -> Callable[[int], None]:
    if kind != "rotating":
        return run

    def rotating_run(n: int) -> None:
        contexts.rotator.begin()
        try:
            run(n)
        finally:
            contexts.rotator.end()

    return rotating_run


# ---------------------------------------------------------------------------------------------
# The sections


def blocking_section(
    m: Material,
    tmp: str,
    profile: Profile,
    rng: random.Random,
    cleanup: list[Callable[[], None]],
) -> tuple[dict[str, Variant], Contexts]:
    contexts = make_contexts(m, tmp, "blocking", cleanup)
    variants: dict[str, Variant] = {}
    for kind, label in KINDS:
        server = BlockingServer(contexts.servers[kind], f"rot-{kind}", bulk=False)
        cleanup.append(server.close)
        seen = contexts.served[kind]

        def run(
            n: int, c: ssl.SSLContext = contexts.client, port: int = server.port, seen: Any = seen
        ) -> None:
            for _ in range(n):
                with blocking_handshake(c, port) as tls:
                    seen.add(tls.getpeercert(binary_form=True))

        variant = Variant(f"block_{kind}", f"{kind:<9} {label}", _rotating(kind, contexts, run))
        variant.run(5)
        if server.errors:
            raise RuntimeError(f"blocking ({kind}): server: {server.errors[0]}")
        variants[variant.key] = variant
        cleanup.append(functools.partial(_server_errors, server.errors, f"blocking {kind}"))
    calibrate(list(variants.values()), profile.sample)
    run_rounds(list(variants.values()), profile.rounds, profile.budget, profile.min_rounds, rng)
    return variants, contexts


def aio_section(
    loop: asyncio.AbstractEventLoop,
    m: Material,
    tmp: str,
    profile: Profile,
    rng: random.Random,
    cleanup: list[Callable[[], None]],
) -> tuple[dict[str, Variant], Contexts]:
    contexts = make_contexts(m, tmp, "asyncio", cleanup)
    variants: dict[str, Variant] = {}
    for kind, label in KINDS:
        server = AioServer(contexts.servers[kind], bulk=False)
        loop.run_until_complete(server.start())
        cleanup.append(functools.partial(_complete, loop, server.close))
        seen = contexts.served[kind]

        async def batch(
            n: int, c: ssl.SSLContext = contexts.client, port: int = server.port, seen: Any = seen
        ) -> None:
            for _ in range(n):
                writer = await aio_handshake(c, port)
                seen.add(writer.get_extra_info("ssl_object").getpeercert(binary_form=True))
                _reset(writer)

        def run(n: int, b: Callable[[int], Any] = batch) -> None:
            loop.run_until_complete(b(n))

        variant = Variant(f"aio_{kind}", f"{kind:<9} {label}", _rotating(kind, contexts, run))
        variant.run(5)
        if server.errors:
            raise RuntimeError(f"asyncio ({kind}): server: {server.errors[0]}")
        variants[variant.key] = variant
        cleanup.append(functools.partial(_server_errors, server.errors, f"asyncio {kind}"))
    calibrate(list(variants.values()), profile.sample)
    run_rounds(list(variants.values()), profile.rounds, profile.budget, profile.min_rounds, rng)
    return variants, contexts


_FAILED: list[str] = []  # server-side handshake failures found at cleanup


def _server_errors(errors: Sequence[str], what: str) -> None:
    _FAILED.extend(f"{what}: {e}" for e in errors)


# ---------------------------------------------------------------------------------------------
# Report


SECTIONS = (
    ("1", "1. asyncio: full mutual-TLS handshakes (open_connection / start_server(ssl=ctx))"),
    ("2", "2. Blocking sockets: full mutual-TLS handshakes (wrap_socket, server thread)"),
)
PREFIX = {"1": "aio", "2": "block"}


def build_figures() -> list[Figure]:
    figures: list[Figure] = []
    for section, api in (("1", "asyncio"), ("2", "blocking")):
        p = PREFIX[section]
        figures.append(
            Figure(
                section,
                f"{api} hs/s: rotating every 50 ms / not rotating",
                (f"{p}_rotating", f"{p}_steady"),
                target=TARGET,
            )
        )
        figures.append(
            Figure(
                section,
                f"{api} hs/s: not rotating / plain server_context()",
                (f"{p}_steady", f"{p}_plain"),
                target=None,
                gating=False,
            )
        )
    cpu = [
        Figure(f.id, f"{f.label} [CPU]", f.keys, cpu=True, target=None, gating=False)
        for f in figures
    ]
    return figures + cpu


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
    w(f"securelink {meta['securelink']} rotation benchmark ({meta['profile']} run,")
    w(f" {meta['elapsed_s']:.1f} s)\n")
    w(
        f"  Python {meta['python']} | {meta['openssl']} | {meta['cpus']} CPUs"
        f" | load {meta['load_before']} -> {meta['load_after']} | ECDSA P-256, mutual TLS\n"
    )
    for title, variants in sections:
        if not variants:
            continue
        w(f"\n{title}\n")
        w(
            f"  {'variant':<54} {'median':>9} {'hs/s':>7} {'q1..q3 hs/s':>17}"
            f" {'CPU':>9} {'rounds':>6} {'ops':>4}\n"
        )
        for v in variants:
            s = v.summary()
            spread = f"{fmt_rate(v, s['q3_s'])}..{fmt_rate(v, s['q1_s'])}"
            w(
                f"  {v.label:<54} {fmt_time(s['median_s']):>9} {fmt_rate(v, s['median_s']):>7}"
                f" {spread:>17} {fmt_time(s['cpu_median_s']):>9} {s['rounds']:>6}"
                f" {s['ops_per_sample']:>4}\n"
            )
    write_ratios(
        w,
        "Ratios of speeds (ratio of medians; 95% interval from resampling the rounds)",
        figures,
        checks,
        notes,
    )


def rotation_checks(
    section: str, api: str, contexts: Contexts | None, failed: Sequence[str]
) -> list[dict[str, Any]]:
    """What the rotating variant really did: rotations, certificates served, failures."""
    if contexts is None:
        return [
            {"id": section, "label": f"{api}: rotation checks", "value": "-", "result": "ERROR"}
        ]
    r = contexts.rotator
    per_s = r.count / r.active_s if r.active_s else 0.0
    served = len(contexts.served["rotating"])
    reload_ms = statistics.median(r.reload_s) * 1e3 if r.reload_s else float("nan")
    return [
        {
            "id": section,
            "label": f"{api}: failed handshakes and rotations",
            "value": str(len(failed) + len(r.errors)),
            "result": "MISS" if failed or r.errors else "PASS",
            "failures": [*failed, *r.errors],
        },
        {
            "id": section,
            "label": f"{api}: certificates served while rotating (of 2)",
            "value": str(served),
            "result": "PASS" if served == 2 else "MISS",
        },
        {
            "id": section,
            "label": f"{api}: rotations per second while rotating (1/50 ms = 20)",
            "value": f"{per_s:.1f}",
            "result": "(info)",
            "rotations": r.count,
        },
        {
            "id": section,
            "label": f"{api}: one rotation (file replaced + reload()), median",
            "value": f"{reload_ms:.2f}ms",
            "result": "(info)",
        },
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Measure full mutual-TLS handshakes per second of a server whose"
        " RotatingServerContext is rotated every 50 ms, against the same not rotated."
    )
    parser.add_argument("--quick", action="store_true", help="fewer rounds (about 12 s, not 60)")
    parser.add_argument(
        "--json",
        metavar="FILE",
        help="also write the results as JSON to FILE ('-': JSON on stdout, the table on stderr)",
    )
    parser.add_argument(
        "--strict", action="store_true", help="exit 1 if any target is missed or a check fails"
    )
    parser.add_argument("--seed", type=int, default=20240601, help="seed for the round order")
    args = parser.parse_args(argv)

    faulthandler.dump_traceback_later(WATCHDOG_S, exit=True)
    profile = QUICK if args.quick else FULL
    rng = random.Random(args.seed)
    notes: list[str] = []
    started = time.perf_counter()
    load_before = _load()
    progress = sys.stderr
    measured: dict[str, dict[str, Variant]] = {}
    contexts: dict[str, Contexts] = {}
    errors: dict[str, str] = {}
    failed: dict[str, list[str]] = {}

    with tempfile.TemporaryDirectory(prefix="securelink-bench-") as tmp:
        material = make_material()

        def attempt(
            section: str,
            what: str,
            fn: Callable[[list[Callable[[], None]]], tuple[dict[str, Variant], Contexts]],
        ) -> None:
            progress.write(f"measuring {section}: {what} ...\n")
            cleanup: list[Callable[[], None]] = []
            try:
                measured[section], contexts[section] = fn(cleanup)
            except (OSError, EOFError, RuntimeError, securelink.SecureLinkError) as exc:
                errors[section] = f"section {section} failed: {type(exc).__name__}: {exc}"
            finally:
                for undo in reversed(cleanup):
                    try:
                        undo()
                    except Exception as exc:  # cleanup must go on
                        notes.append(f"{section}: cleanup: {type(exc).__name__}: {exc}")
                failed[section] = list(_FAILED)
                _FAILED.clear()

        with event_loop() as loop:
            attempt(
                "1",
                "asyncio handshakes",
                lambda c: aio_section(loop, material, tmp, profile, rng, c),
            )
        attempt(
            "2",
            "blocking handshakes",
            lambda c: blocking_section(material, tmp, profile, rng, c),
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
        *rotation_checks("1", "asyncio", contexts.get("1"), failed.get("1", [])),
        *rotation_checks("2", "blocking", contexts.get("2"), failed.get("2", [])),
    ]
    for c in checks:
        notes += [f"{c['label']}: {f}" for f in c.get("failures", [])[:5]]
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
        "rotation_period_s": PERIOD,
        "sample_s": profile.sample,
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
            "reload_s": {s: c.rotator.reload_s for s, c in contexts.items()},
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
    missed = [f for f in figures if f.gating and f.result in {"MISS", "ERROR"}]
    failed_checks = [c for c in checks if c["result"] in {"MISS", "ERROR"}]
    if args.strict and (missed or failed_checks):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
