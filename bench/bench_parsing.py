"""Parsing untrusted input costs linear time, up to the size limit.

Each series doubles its input from 64 KiB (or a few hundred certificates) up to
``securelink.MAX_INPUT_SIZE`` (16 MiB) and reports the ratio of consecutive medians: linear time
gives 2x per doubling, quadratic time 4x.  The target is at most 2.2x for every doubling.

- ``flood``: ``-----BEGIN CERTIFICATE-----`` lines without END lines, given to ``inspect`` and
  as ``ca=`` (quadratic before: 8,000 lines took 7.5 s).
- ``bundle``: a valid PEM bundle of distinct CA certificates, loaded as ``ca=`` is (reading,
  splitting, parsing and checking each certificate) and given to ``inspect``.  Two informational
  series show the whole ``client_context(ca=...)`` and the standard library's
  ``load_verify_locations`` alone: OpenSSL 3.0's certificate store costs more than linear time
  (it sorts itself again for every certificate added), so they stop at a quarter of the limit.
- ``chain``: n certificates of one chain in shuffled order, to ``inspect``, which checks the order
  and suggests the right one (quadratic before: 4,000 took 3.9 s).

The sizes of a series are interleaved in rounds (in a shuffled order each round), each size gives
one sample per round, a sample batches calls until it lasts at least a few milliseconds, and the
garbage collector runs between samples, never inside one.  A ratio is the ratio of the medians;
its 95% interval comes from resampling the rounds (bootstrap).

Run it from the repository root::

    python bench/bench_parsing.py            # full run, up to 16 MiB: about 6 minutes
    python bench/bench_parsing.py --quick    # up to 2 MiB: about 40 s
    python bench/bench_parsing.py --json results.json

It exits 0 whatever it measures, unless ``--strict`` is given (then 1 on any miss or error).
See bench/README.md for what each figure means.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import math
import os
import platform
import random
import ssl
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from _common import run_rounds
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

import securelink
from securelink import _material

KIB = 1024
MIB = 1024 * KIB
TARGET = 2.2  # at most this much more time per doubling of the input


@dataclass(frozen=True)
class Profile:
    """How much to measure."""

    name: str
    max_size: int  # bytes: the largest input of the byte series
    rounds: int  # rounds per series
    min_rounds: int
    budget: float  # seconds per series; rounds stop early past this (after min_rounds)
    min_sample: float  # seconds: a sample batches calls until it takes at least this long
    bootstrap: int  # resamples for the 95% intervals


FULL = Profile("full", securelink.MAX_INPUT_SIZE, 7, 3, 50.0, 0.005, 1000)
QUICK = Profile("quick", 2 * MIB, 3, 3, 5.0, 0.003, 300)


# ---------------------------------------------------------------------------------------------
# Inputs


def _name(text: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])


class Certificates:
    """CA certificates made on demand, all with one key (signing is the cost of making them)."""

    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.now = datetime.datetime.now(datetime.UTC)
        self.roots: list[bytes] = []
        self.chain: list[bytes] = []  # chain[i] is issued by chain[i - 1]; chain[0] is the root

    def _make(self, subject: str, issuer: str) -> bytes:
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(subject))
            .issuer_name(_name(issuer))
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(self.now - datetime.timedelta(days=1))
            .not_valid_after(self.now + datetime.timedelta(days=400))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        return cert.public_bytes(serialization.Encoding.PEM)

    def bundle(self, size: int) -> bytes:
        """Distinct self-signed CA certificates, as many as fit in *size* bytes."""
        out: list[bytes] = []
        total = 0
        while True:
            i = len(out)
            if i == len(self.roots):
                self.roots.append(self._make(f"Bench Root {i}", f"Bench Root {i}"))
            if total + len(self.roots[i]) > size:
                return b"".join(out)
            out.append(self.roots[i])
            total += len(self.roots[i])

    def shuffled_chain(self, n: int, rng: random.Random) -> bytes:
        """The first *n* certificates of one chain (a root, then each one's child), shuffled."""
        while len(self.chain) < n:
            i = len(self.chain)
            self.chain.append(self._make(f"Bench CA {i}", f"Bench CA {max(i - 1, 0)}"))
        certs = self.chain[:n]
        rng.shuffle(certs)
        return b"".join(certs)


def flood(size: int) -> bytes:
    """BEGIN lines without END lines, as many as fit in *size* bytes."""
    line = b"-----BEGIN CERTIFICATE-----\n"
    return line * (size // len(line))


# ---------------------------------------------------------------------------------------------
# Measurement


@dataclass
class Point:
    """One input size of a series."""

    label: str  # "64 KiB", "1,024 certs"
    size: int  # bytes
    fn: Callable[[], object]
    batch: int = 1
    samples: list[float] = field(default_factory=list)  # seconds per call, one per round

    def summary(self) -> dict[str, Any]:
        """Median and quartiles, for the table and the JSON."""
        xs = self.samples
        q1, q3 = (
            (xs[0], xs[0])
            if len(xs) < 2
            else (statistics.quantiles(xs, n=4, method="inclusive")[i] for i in (0, 2))
        )
        return {
            "label": self.label,
            "bytes": self.size,
            "median_s": statistics.median(xs),
            "q1_s": q1,
            "q3_s": q3,
            "min_s": min(xs),
            "rounds": len(xs),
            "calls_per_sample": self.batch,
        }


@dataclass
class Series:
    """Inputs of doubling size through one entry point."""

    key: str
    title: str
    points: list[Point]
    gating: bool = True  # counted for PASS/MISS and --strict; otherwise informational
    ratios: list[dict[str, Any]] = field(default_factory=list)
    per_doubling: float = float("nan")  # over the whole range: (last / first) ** (1 / doublings)
    error: str | None = None


def _calibrate(point: Point, min_sample: float) -> None:
    """Choose how many calls one sample makes; the fastest of three calls, the first is cold."""
    times = []
    for _ in range(3):
        start = time.perf_counter()
        point.fn()
        times.append(time.perf_counter() - start)
        if times[-1] > 1.0:  # a big input: one call is sample enough
            break
    one = max(min(times), 1e-7)
    point.batch = max(1, min(10_000, int(min_sample / one) + 1))


def run_series(series: Series, profile: Profile, rng: random.Random) -> None:
    """Time the points of *series* in interleaved rounds."""
    for point in series.points:
        _calibrate(point, profile.min_sample)
    run_rounds(series.points, profile.rounds, profile.budget, profile.min_rounds, rng)


def evaluate(series: Series, resamples: int, rng: random.Random) -> None:
    """The ratio of consecutive medians, with a bootstrap 95% interval (rounds resampled)."""
    first, last = series.points[0], series.points[-1]
    doublings = math.log2(last.size / first.size)
    growth = statistics.median(last.samples) / statistics.median(first.samples)
    series.per_doubling = growth ** (1 / doublings)
    for small, big in zip(series.points, series.points[1:], strict=False):
        ratio = statistics.median(big.samples) / statistics.median(small.samples)
        rounds = min(len(small.samples), len(big.samples))
        boot = []
        for _ in range(resamples):
            picks = [rng.randrange(rounds) for _ in range(rounds)]
            num = statistics.median(big.samples[i] for i in picks)
            den = statistics.median(small.samples[i] for i in picks)
            boot.append(num / den)
        boot.sort()
        series.ratios.append(
            {
                "from": small.label,
                "to": big.label,
                "size_ratio": big.size / small.size,
                "ratio": ratio,
                "ci95": [boot[int(0.025 * len(boot))], boot[int(0.975 * len(boot)) - 1]],
                "target": TARGET,
                "result": "PASS" if ratio <= TARGET else "MISS",
                "gating": series.gating,
            }
        )


def _refused(fn: Callable[[bytes], object]) -> Callable[[bytes], object]:
    """Wrap a call that must raise MaterialError (a flood is truncated PEM)."""

    def run(data: bytes) -> object:
        try:
            fn(data)
        except securelink.MaterialError as exc:
            return exc
        raise AssertionError("the flood was accepted")

    return run


def _size_label(size: int) -> str:
    return f"{size // MIB} MiB" if size >= MIB else f"{size // KIB} KiB"


def build_series(profile: Profile, certs: Certificates, rng: random.Random) -> list[Series]:
    """Make the inputs of every series (the certificates are made once and reused)."""
    sizes = []
    size = 64 * KIB
    while size <= profile.max_size:
        sizes.append(size)
        size *= 2

    def point(label: str, data: bytes, fn: Callable[[bytes], object]) -> Point:
        return Point(label, len(data), lambda: fn(data))

    def ca(data: bytes) -> object:
        return securelink.client_context(securelink.ClientOptions(ca=data), shared=False)

    def load_ca(data: bytes) -> object:
        # securelink's own part of ca=: read, split, parse and check every certificate.
        return _material.load_cas((data,), what="CA", stamps=[])

    def stdlib_ca(data: bytes) -> object:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(cadata=data.decode("ascii"))
        return ctx

    # OpenSSL 3.0 sorts its whole certificate store again for every certificate added, so the
    # store's own cost grows faster than linearly: those series stop at a quarter of the limit.
    store_sizes = [s for s in sizes if s <= profile.max_size // 4]

    floods = {s: flood(s) for s in sizes}
    bundles = {s: certs.bundle(s) for s in sizes}
    per_cert = len(certs.roots[0])
    counts = []
    n = 128
    while n * per_cert <= profile.max_size:
        counts.append(n)
        n *= 2
    chains = {n: certs.shuffled_chain(n, rng) for n in counts}
    for data in chains.values():  # every chain input must be out of order, and within the limit
        result = securelink.inspect(data)
        assert result.chain is not None and result.chain.suggested_order is not None
    return [
        Series(
            "flood_inspect",
            "unmatched BEGIN lines, inspect(bytes)",
            [point(_size_label(s), floods[s], _refused(securelink.inspect)) for s in sizes],
        ),
        Series(
            "flood_ca",
            "unmatched BEGIN lines, client_context(ca=bytes)",
            [point(_size_label(s), floods[s], _refused(ca)) for s in sizes],
        ),
        Series(
            "bundle_load",
            "valid bundle of CA certificates, loaded for ca= (securelink's part, before OpenSSL)",
            [point(_size_label(s), bundles[s], load_ca) for s in sizes],
        ),
        Series(
            "bundle_context",
            "the same, client_context(ca=bytes): OpenSSL's certificate store included",
            [point(_size_label(s), bundles[s], ca) for s in store_sizes],
            gating=False,
        ),
        Series(
            "bundle_stdlib",
            "the same, stdlib SSLContext.load_verify_locations(cadata=...) alone",
            [point(_size_label(s), bundles[s], stdlib_ca) for s in store_sizes],
            gating=False,
        ),
        Series(
            "bundle_inspect",
            "valid bundle of CA certificates, inspect(bytes)",
            [point(_size_label(s), bundles[s], securelink.inspect) for s in sizes],
        ),
        Series(
            "chain_inspect",
            "one chain, shuffled: inspect(bytes) orders it",
            [point(f"{n:,} certs", chains[n], securelink.inspect) for n in counts],
        ),
    ]


# ---------------------------------------------------------------------------------------------
# Report


def fmt_time(seconds: float) -> str:
    """A duration in s, ms, us or ns, three significant figures or so."""
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            value = seconds / scale
            return f"{value:.3g} {unit}" if value < 100 else f"{value:.0f} {unit}"
    return f"{seconds * 1e9:.0f} ns"


def render(meta: dict[str, Any], series: Sequence[Series], out: TextIO) -> None:
    """Print the human-readable report."""
    w = out.write
    w(
        f"securelink {meta['securelink']} parsing benchmark ({meta['profile']} run,"
        f" {meta['elapsed_s']:.1f} s; size limit {meta['max_input_size']:,} bytes)\n"
    )
    w(
        f"  Python {meta['python']} | {meta['openssl']} | cryptography {meta['cryptography']}"
        f" | {meta['cpus']} CPUs | load {meta['load_before']} -> {meta['load_after']}\n"
    )
    for s in series:
        w(f"\n{s.title}\n")
        if s.error is not None:
            w(f"  ERROR: {s.error}\n")
            continue
        w(
            f"  {'input':<13} {'bytes':>11} {'median':>9} {'q1..q3':>19} {'rounds':>6}"
            f" {'calls':>5}  {'x prev':>7} {'95% interval':>15} {'result':>6}\n"
        )
        for i, p in enumerate(s.points):
            m = p.summary()
            spread = f"{fmt_time(m['q1_s'])}..{fmt_time(m['q3_s'])}"
            line = (
                f"  {p.label:<13} {p.size:>11,} {fmt_time(m['median_s']):>9} {spread:>19}"
                f" {m['rounds']:>6} {m['calls_per_sample']:>5}"
            )
            if i > 0:
                r = s.ratios[i - 1]
                interval = f"{r['ci95'][0]:.2f}..{r['ci95'][1]:.2f}x"
                result = r["result"] if s.gating else f"({r['result']})"
                line += f"  {r['ratio']:>6.2f}x {interval:>15} {result:>6}"
            w(line + "\n")
        w(
            f"  over the whole range: {s.per_doubling:.2f}x per doubling"
            f" ({s.points[-1].size / s.points[0].size:.0f}x the input,"
            f" {s.per_doubling ** math.log2(s.points[-1].size / s.points[0].size):.0f}x the time)\n"
        )
    ratios = [r for s in series if s.gating for r in s.ratios]
    misses = [r for r in ratios if r["result"] != "PASS"]
    worst = max((r["ratio"] for r in ratios), default=float("nan"))
    w(
        f"\nTime per doubling of the input: at most {TARGET}x (linear: 2x; quadratic: 4x)."
        f" Worst {worst:.2f}x; {len(ratios) - len(misses)} of {len(ratios)} doublings PASS.\n"
        "Results in parentheses are informational (OpenSSL's certificate store); --strict counts"
        " the others.\n"
    )


def _load() -> str:
    try:
        return f"{os.getloadavg()[0]:.2f}"
    except OSError:  # pragma: no cover - not on every platform
        return "?"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Show that parsing untrusted input costs linear time: time per doubling of"
        " the input, up to securelink.MAX_INPUT_SIZE."
    )
    parser.add_argument(
        "--quick", action="store_true", help="inputs up to 2 MiB, fewer rounds (about 40 s)"
    )
    parser.add_argument(
        "--json",
        metavar="FILE",
        help="also write the results as JSON to FILE ('-': JSON on stdout, the table on stderr)",
    )
    parser.add_argument(
        "--strict", action="store_true", help="exit 1 if any doubling misses its target"
    )
    parser.add_argument("--seed", type=int, default=20240601, help="seed for orders and shuffles")
    args = parser.parse_args(argv)

    profile = QUICK if args.quick else FULL
    rng = random.Random(args.seed)
    started = time.perf_counter()
    load_before = _load()
    progress = sys.stderr
    progress.write(f"making inputs up to {_size_label(profile.max_size)} ...\n")
    series = build_series(profile, Certificates(), rng)
    for s in series:
        progress.write(f"measuring {s.key} ({len(s.points)} sizes) ...\n")
        try:
            run_series(s, profile, rng)
            evaluate(s, profile.bootstrap, rng)
        except Exception as exc:  # reported, and counted by --strict
            s.error = f"{type(exc).__name__}: {exc}"

    meta = {
        "securelink": securelink.__version__,
        "profile": profile.name,
        "elapsed_s": time.perf_counter() - started,
        "max_input_size": securelink.MAX_INPUT_SIZE,
        "python": platform.python_version(),
        "openssl": ssl.OPENSSL_VERSION,
        "cryptography": importlib.metadata.version("cryptography"),
        "cpus": os.cpu_count(),
        "load_before": load_before,
        "load_after": _load(),
        "target_per_doubling": TARGET,
    }
    table_out = sys.stderr if args.json == "-" else sys.stdout
    render(meta, series, table_out)
    if args.json:
        doc = {
            "meta": meta,
            "series": {
                s.key: {
                    "title": s.title,
                    "error": s.error,
                    "points": [p.summary() for p in s.points],
                    "samples_s": [p.samples for p in s.points],
                    "ratios": s.ratios,
                    "per_doubling_whole_range": s.per_doubling,
                }
                for s in series
            },
        }
        text = json.dumps(doc, indent=2) + "\n"
        if args.json == "-":
            sys.stdout.write(text)
        else:
            with open(args.json, "w", encoding="utf-8") as fh:
                fh.write(text)
    failed = any(s.error for s in series) or any(
        r["result"] != "PASS" for s in series if s.gating for r in s.ratios
    )
    return 1 if args.strict and failed else 0


if __name__ == "__main__":
    sys.exit(main())
