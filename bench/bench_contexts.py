"""What securelink's contexts and its import cost, as ratios against the standard library.

The first client context of a process is measured in fresh processes (figure a), repeated and
new contexts in a warm one (b), server contexts (c), and the import (d).

Every figure is a ratio between two things measured side by side in the same run: the variants
of a figure are interleaved in rounds (in a shuffled order each round), each variant gives one
sample per round, and a ratio is the ratio of the medians.  The 95% interval next to it comes from
resampling the rounds (bootstrap), so a reader can tell a real miss from noise on a busy machine.

Run it from the repository root::

    python bench/bench_contexts.py            # full run, about 50 s
    python bench/bench_contexts.py --quick    # about 8 s, fewer rounds
    python bench/bench_contexts.py --json results.json --python /path/to/venv/bin/python

It exits 0 whatever it measures, unless ``--strict`` is given (then 1 on any miss or error).
See bench/README.md for what each figure means.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import random
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

import certifi
from _common import run_rounds

import securelink
from securelink import devca

#: Modules that ``import securelink`` must not load: they are imported lazily, when needed.
MUST_NOT_IMPORT = ("cryptography", "certifi", "asyncio")


@dataclass(frozen=True)
class Profile:
    """How much to measure."""

    name: str
    client_rounds: int  # rounds of section b (each round ~30 ms)
    client_budget: float  # seconds; rounds stop early past this (after min_rounds)
    server_rounds: int  # rounds of section c, per key type (each round ~10 ms)
    server_budget: float
    import_rounds: int  # rounds of section d (each round: three interpreter start-ups)
    import_budget: float
    fresh_rounds: int  # rounds of section a (each round: two interpreters, ~150 ms)
    fresh_budget: float
    min_rounds: int
    min_sample: float  # seconds: a sample batches calls until it takes at least this long
    bootstrap: int  # resamples for the 95% intervals


FULL = Profile("full", 300, 14.0, 300, 6.0, 60, 14.0, 200, 18.0, 30, 0.002, 1000)
QUICK = Profile("quick", 40, 2.0, 60, 1.0, 15, 2.5, 20, 3.0, 10, 0.002, 300)


# ---------------------------------------------------------------------------------------------
# Measurement


@dataclass
class Variant:
    """One thing to time: a callable (in-process) or a ``python -c`` snippet (subprocess)."""

    key: str
    label: str
    fn: Callable[[], object]
    batch: int = 1
    samples: list[float] = field(default_factory=list)  # seconds per call, one per round

    def summary(self) -> dict[str, Any]:
        """Median and quartiles, for the table and the JSON."""
        q1, _, q3 = _quartiles(self.samples)
        return {
            "label": self.label,
            "median_s": statistics.median(self.samples),
            "q1_s": q1,
            "q3_s": q3,
            "min_s": min(self.samples),
            "rounds": len(self.samples),
            "calls_per_sample": self.batch,
        }


def _quartiles(xs: Sequence[float]) -> tuple[float, float, float]:
    if len(xs) < 2:
        return xs[0], xs[0], xs[0]
    q = statistics.quantiles(xs, n=4, method="inclusive")
    return q[0], q[1], q[2]


def _calibrate(variant: Variant, min_sample: float) -> None:
    """Choose how many calls one sample makes, so that it lasts at least *min_sample*."""
    start = time.perf_counter()
    variant.fn()
    one = max(time.perf_counter() - start, 1e-7)
    variant.batch = max(1, min(100_000, int(min_sample / one) + 1))


@dataclass
class Figure:
    """A ratio between variants, with its target (if any)."""

    id: str
    label: str
    keys: tuple[str, ...]  # (numerator, denominator) or (numerator, denominator, base)
    target: float | None = None
    gating: bool = True  # counted for PASS/MISS and --strict; otherwise informational
    ratio: float = float("nan")
    low: float = float("nan")
    high: float = float("nan")
    error: str | None = None

    def compute(self, samples: Mapping[str, Sequence[float]]) -> float:
        """The ratio of medians; with a base, the ratio of the medians' increments over it."""
        num = statistics.median(samples[self.keys[0]])
        den = statistics.median(samples[self.keys[1]])
        if len(self.keys) == 3:
            base = statistics.median(samples[self.keys[2]])
            num, den = num - base, den - base
        return num / den if den > 0 else float("inf")

    @property
    def result(self) -> str:
        """PASS, MISS, ERROR, or '' when there is no target."""
        if self.error is not None:
            return "ERROR"
        if self.target is None:
            return ""
        return "PASS" if self.ratio <= self.target else "MISS"

    def as_json(self) -> dict[str, Any]:
        """The figure for --json."""
        return {
            "id": self.id,
            "label": self.label,
            "variants": list(self.keys),
            "ratio": None if self.error else self.ratio,
            "ci95": None if self.error else [self.low, self.high],
            "target": self.target,
            "gating": self.gating,
            "result": self.result or None,
            "error": self.error,
        }


def evaluate(
    figure: Figure, variants: Mapping[str, Variant], resamples: int, rng: random.Random
) -> None:
    """Fill in the figure's ratio and its bootstrap 95% interval (rounds resampled in pairs)."""
    data = {k: variants[k].samples for k in figure.keys}
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
# b. client contexts in a warm process


def client_section(profile: Profile, rng: random.Random, notes: list[str]) -> dict[str, Variant]:
    cafile = certifi.where()

    def stdlib() -> object:
        return ssl.create_default_context(cafile=cafile)

    def new() -> object:
        return securelink.client_context(securelink.ClientOptions())

    def repeated() -> object:
        return securelink.client_context(securelink.ClientOptions(), shared=True)

    variants = [
        Variant("stdlib_client", "ssl.create_default_context(cafile=certifi.where())", stdlib),
        Variant("new_client", "client_context(ClientOptions())  [a new context]", new),
        Variant(
            "shared_client", "client_context(ClientOptions(), shared=True)  [cached]", repeated
        ),
    ]
    if securelink.client_context(securelink.ClientOptions(), shared=True) is not repeated():
        notes.append(
            "b: client_context(ClientOptions(), shared=True) did not return the shared context"
            " twice; figure b measures rebuilds, not cache hits."
        )
    if new() is new():
        notes.append("b: client_context(ClientOptions()) returned the same context twice.")
    _warm_up(variants, notes, profile.min_sample)
    run_rounds(variants, profile.client_rounds, profile.client_budget, profile.min_rounds, rng)
    return {v.key: v for v in variants}


def _warm_up(variants: Sequence[Variant], notes: list[str], min_sample: float) -> None:
    """Run each variant a few times (imports, caches), check it, and calibrate its batch."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for variant in variants:
            for _ in range(3):
                result = variant.fn()
                if not isinstance(result, ssl.SSLContext):
                    raise TypeError(f"{variant.label} returned {type(result).__name__}")
    for w in caught:
        notes.append(f"warning while warming up: {w.category.__name__}: {w.message}")
    for variant in variants:
        _calibrate(variant, min_sample)


# ---------------------------------------------------------------------------------------------
# c. server contexts


KEY_TYPES = (
    ("ecdsa", "ECDSA P-256", devca.KeyType.ECDSA_P256),
    ("rsa", "RSA 2048", devca.KeyType.RSA_2048),
)


def server_section(
    profile: Profile, rng: random.Random, notes: list[str], tmp: str
) -> dict[str, Variant]:
    out: dict[str, Variant] = {}
    for short, _, key_type in KEY_TYPES:
        ca = devca.CertificateAuthority(key_type=key_type)
        leaf = ca.issue("localhost", "127.0.0.1", usage=devca.Usage.SERVER, key_type=key_type)
        cert_pem, key_pem = leaf.chain_pem, leaf.key_pem  # properties: serialise once, here
        cert_path = os.path.join(tmp, f"{short}-cert.pem")
        key_path = os.path.join(tmp, f"{short}-key.pem")
        with open(cert_path, "wb") as f:
            f.write(cert_pem)
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(key_pem)

        def objects(lf: devca.IssuedCertificate = leaf) -> object:
            options = securelink.ServerOptions(cert=lf.certificate, key=lf.private_key)
            return securelink.server_context(options, shared=False)

        def pem(c: bytes = cert_pem, k: bytes = key_pem) -> object:
            return securelink.server_context(securelink.ServerOptions(cert=c, key=k), shared=False)

        def files(c: str = cert_path, k: str = key_path) -> object:
            return securelink.server_context(securelink.ServerOptions(cert=c, key=k), shared=False)

        def stdlib(c: str = cert_path, k: str = key_path) -> object:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(c, k)
            return ctx

        variants = [
            Variant(
                f"{short}_objects", "server_context(cert=x509 object, key=key object)", objects
            ),
            Variant(f"{short}_pem", "server_context(cert=PEM bytes, key=PEM bytes)", pem),
            Variant(f"{short}_files", "server_context(cert=path, key=path)", files),
            Variant(
                f"{short}_stdlib", "SSLContext(PROTOCOL_TLS_SERVER).load_cert_chain(paths)", stdlib
            ),
        ]
        _warm_up(variants, notes, profile.min_sample)
        run_rounds(variants, profile.server_rounds, profile.server_budget, profile.min_rounds, rng)
        out.update((v.key, v) for v in variants)
    return out


# ---------------------------------------------------------------------------------------------
# d. import time, in fresh interpreter processes


IMPORTS = (
    ("proc_pass", "python -c pass", "pass"),
    ("proc_ssl", 'python -c "import ssl"', "import ssl"),
    ("proc_securelink", 'python -c "import securelink"', "import securelink"),
)

PROBE = (
    "{stmt}; import sys; m = sorted(sys.modules); import json, os; "
    "sl = sys.modules.get('securelink'); "
    "print(json.dumps({{'modules': m, 'venv': sys.prefix != sys.base_prefix, "
    "'version': sys.version.split()[0], 'executable': sys.executable, "
    "'pyc': bool(sl and sl.__cached__ and os.path.exists(sl.__cached__))}}))"
)


def _child_env() -> dict[str, str]:
    # PYTHONDONTWRITEBYTECODE (set on some machines) would make every `import securelink`
    # recompile its sources; PYTHONPATH, PYTHONSTARTUP and friends would change what starts up.
    return {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}


def _probe(python: str, stmt: str, env: Mapping[str, str]) -> dict[str, Any]:
    proc = subprocess.run(
        [python, "-c", PROBE.format(stmt=stmt)],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise RuntimeError(f"{python} -c {stmt!r} failed: {tail}")
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


def _loaded(modules: Sequence[str], name: str) -> bool:
    return any(m == name or m.startswith(name + ".") for m in modules)


def import_section(
    profile: Profile, rng: random.Random, python: str, notes: list[str]
) -> tuple[dict[str, Variant], dict[str, Any]]:
    env = _child_env()
    executable = shutil.which(python) or python
    cpu: dict[str, list[float]] = {key: [] for key, _, _ in IMPORTS}

    def spawn(key: str, code: str) -> Callable[[], object]:
        argv = [executable, "-c", code]

        def run() -> object:
            # Blocking waits only: Popen.wait(timeout=...) polls with growing sleeps (0.5, 1, 2
            # ... 50 ms), which would round every wall time up to the next step.
            if not _HAVE_SPAWN:  # pragma: no cover - not POSIX
                rc = subprocess.Popen(
                    argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL
                ).wait()
            else:
                pid = os.posix_spawn(executable, argv, env, file_actions=_DEVNULL_IO)
                _, status, usage = os.wait4(pid, 0)
                rc = os.waitstatus_to_exitcode(status)
                cpu[key].append(usage.ru_utime + usage.ru_stime)
            if rc != 0:
                raise subprocess.CalledProcessError(rc, argv)
            return rc

        return run

    # The probes come first: they say why an interpreter cannot import securelink, and the first
    # import writes securelink's .pyc files (which the probe then checks for).
    startup = _probe(executable, "pass", env)
    with_ssl = _probe(executable, "import ssl", env)
    with_sl = _probe(executable, "import securelink", env)
    variants = [Variant(key, label, spawn(key, code)) for key, label, code in IMPORTS]
    for _ in range(3):  # warm up: the page cache, the .pyc files
        for variant in variants:
            variant.fn()
    info: dict[str, Any] = {
        "python": python,
        "executable": startup["executable"],
        "version": startup["version"],
        "venv": startup["venv"],
        "modules_at_startup": len(startup["modules"]),
        "modules_after_import_ssl": len(with_ssl["modules"]),
        "modules_after_import_securelink": len(with_sl["modules"]),
        "securelink_pyc_cached": with_sl["pyc"],
        # Only what the import itself added: a module already loaded at start-up is not its doing.
        "loaded_by_import_securelink": {
            name: _loaded(with_sl["modules"], name) and not _loaded(startup["modules"], name)
            for name in MUST_NOT_IMPORT
        },
        "loaded_at_startup": [n for n in MUST_NOT_IMPORT if _loaded(startup["modules"], n)],
    }
    if not startup["venv"]:
        notes.append(
            f"d: {python} is not a virtual environment; its site-packages may import"
            " modules at start-up. Pass --python with a fresh venv's interpreter."
        )
    if info["loaded_at_startup"]:
        notes.append(
            f"d: {python} imports {', '.join(info['loaded_at_startup'])} at start-up"
            " (site/.pth); the import figures are wrong for it. Use a fresh venv."
        )
    if not with_sl["pyc"]:
        notes.append(
            "d: securelink's .pyc files are not cached (read-only tree?); each"
            " `import securelink` compiles its sources, inflating figure d."
        )
    for samples in cpu.values():
        samples.clear()  # the warm-up's
    run_rounds(variants, profile.import_rounds, profile.import_budget, profile.min_rounds, rng)
    out = {v.key: v for v in variants}
    if _HAVE_SPAWN:
        for key, label, _ in IMPORTS:
            out[f"{key}_cpu"] = Variant(
                f"{key}_cpu", f"{label}  [CPU: user+sys]", lambda: None, samples=cpu[key]
            )
    return out, info


_HAVE_SPAWN = hasattr(os, "posix_spawn") and hasattr(os, "wait4")
_DEVNULL_IO = (
    [
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
    ]
    if _HAVE_SPAWN
    else []
)


# ---------------------------------------------------------------------------------------------
# a. the first client context of a fresh process


_STDLIB_FIRST = "import certifi, ssl; ssl.create_default_context(cafile=certifi.where())"

#: (key, label, what the process imports first, the first context) for figure a.  Each side
#: imports certifi inside the timed part: securelink imports it lazily, on the first context.
#: The stdlib's is timed twice: after ``import securelink``, the same start as securelink's (the
#: modules that import loaded, threading or weakref, are then not in the timed part of either),
#: and after ``import ssl`` alone, as a program without securelink would start.
FIRST_CONTEXTS = (
    (
        "fresh_securelink",
        "client_context(ClientOptions())  [after import securelink]",
        "import securelink",
        "securelink.client_context(securelink.ClientOptions())",
    ),
    (
        "fresh_stdlib_same",
        "certifi + create_default_context  [after import securelink]",
        "import securelink",
        _STDLIB_FIRST,
    ),
    (
        "fresh_stdlib",
        "certifi + create_default_context  [after import ssl]",
        "import ssl",
        _STDLIB_FIRST,
    ),
)

#: Times itself, so that neither the interpreter's start-up nor the wait for the child counts.
#: Prints: first context (ns), import + first context (ns), and three flags: cryptography and
#: certifi already loaded at start-up, cryptography loaded once the first context is built.
FIRST_PROBE = (
    "import sys, time; "
    "has = lambda n: any(m == n or m.startswith(n + '.') for m in sys.modules); "
    "pre = (has('cryptography'), has('certifi')); "
    "t0 = time.perf_counter_ns(); {setup}; t1 = time.perf_counter_ns(); {first}; "
    "t2 = time.perf_counter_ns(); "
    "print(t2 - t1, t2 - t0, int(pre[0]), int(pre[1]), int(has('cryptography')))"
)


def first_context_section(
    profile: Profile, rng: random.Random, python: str, notes: list[str]
) -> tuple[dict[str, Variant], dict[str, Any]]:
    """Figure a: the first client context, in fresh processes of *python*, interleaved."""
    env = _child_env()
    executable = shutil.which(python) or python
    first: dict[str, list[float]] = {key: [] for key, _, _, _ in FIRST_CONTEXTS}
    total: dict[str, list[float]] = {key: [] for key, _, _, _ in FIRST_CONTEXTS}
    flags = {"preloaded_cryptography": False, "preloaded_certifi": False, "imported": False}

    def spawn(key: str, setup: str, code: str) -> Callable[[], object]:
        argv = [executable, "-c", FIRST_PROBE.format(setup=setup, first=code)]

        def run() -> object:
            proc = subprocess.run(
                argv,
                env=env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            if proc.returncode != 0:
                tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
                raise RuntimeError(f"{executable} failed to build a first context: {tail}")
            one, both, pre_crypto, pre_certifi, crypto = proc.stdout.split()
            first[key].append(int(one) / 1e9)
            total[key].append(int(both) / 1e9)
            flags["preloaded_cryptography"] |= pre_crypto == "1"
            flags["preloaded_certifi"] |= pre_certifi == "1"
            if key == "fresh_securelink":
                flags["imported"] |= crypto == "1"
            return proc

        return run

    spawners = [
        Variant(key, label, spawn(key, setup, code)) for key, label, setup, code in FIRST_CONTEXTS
    ]
    for _ in range(3):  # warm up: the page cache, the .pyc files
        for variant in spawners:
            variant.fn()
    for samples in (*first.values(), *total.values()):
        samples.clear()
    run_rounds(spawners, profile.fresh_rounds, profile.fresh_budget, profile.min_rounds, rng)
    if flags["preloaded_certifi"] or flags["preloaded_cryptography"]:
        notes.append(
            f"a: {python} imports certifi or cryptography at start-up (site/.pth), so the"
            " first-context figures leave part of the cost out. Use a fresh venv."
        )
    out: dict[str, Variant] = {}
    for key, label, _, _ in FIRST_CONTEXTS:
        out[key] = Variant(key, label, lambda: None, samples=first[key])
    for key, setup in (("fresh_securelink", "import securelink"), ("fresh_stdlib", "import ssl")):
        out[f"{key}_total"] = Variant(
            f"{key}_total",
            f"{out[key].label.split('  [')[0]}  [{setup} included]",
            lambda: None,
            samples=total[key],
        )
    return out, flags


# ---------------------------------------------------------------------------------------------
# Report


def fmt_time(seconds: float) -> str:
    """A duration in s, ms, us or ns, three significant figures or so."""
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            value = seconds / scale
            return f"{value:.3g} {unit}" if value < 100 else f"{value:.0f} {unit}"
    return f"{seconds * 1e9:.0f} ns"


def fmt_ratio(r: float) -> str:
    """A ratio: three decimals near 1, two significant figures when tiny."""
    if r != r:  # NaN
        return "-"
    return f"{r:.3f}x" if r >= 0.1 else f"{r:.2g}x"


def render(
    meta: Mapping[str, Any],
    sections: Sequence[tuple[str, Sequence[Variant]]],
    figures: Sequence[Figure],
    checks: Sequence[Mapping[str, Any]],
    import_info: Mapping[str, Any] | None,
    notes: Sequence[str],
    out: TextIO,
) -> None:
    """Print the human-readable report."""
    w = out.write
    w(
        f"securelink {meta['securelink']} context benchmark ({meta['profile']} run,"
        f" {meta['elapsed_s']:.1f} s)\n"
    )
    w(
        f"  Python {meta['python']} | {meta['openssl']} | cryptography {meta['cryptography']}"
        f" | {meta['cpus']} CPUs | load {meta['load_before']} -> {meta['load_after']}\n"
    )
    for title, variants in sections:
        if not variants:
            continue
        w(f"\n{title}\n")
        w(f"  {'variant':<62} {'median':>9} {'q1..q3':>19} {'rounds':>6} {'calls':>5}\n")
        for v in variants:
            s = v.summary()
            spread = f"{fmt_time(s['q1_s'])}..{fmt_time(s['q3_s'])}"
            w(
                f"  {v.label:<62} {fmt_time(s['median_s']):>9} {spread:>19} {s['rounds']:>6}"
                f" {s['calls_per_sample']:>5}\n"
            )
    if import_info is not None:
        loaded = import_info["loaded_by_import_securelink"]
        w(
            f"  interpreter: {import_info['executable']} (Python {import_info['version']},"
            f" venv: {'yes' if import_info['venv'] else 'NO'})\n"
        )
        w(
            f"  modules loaded: start-up {import_info['modules_at_startup']}, import ssl"
            f" {import_info['modules_after_import_ssl']}, import securelink"
            f" {import_info['modules_after_import_securelink']}; "
            + ", ".join(
                f"{n}: "
                + (
                    "LOADED"
                    if loaded[n]
                    else "at start-up"
                    if n in import_info["loaded_at_startup"]
                    else "no"
                )
                for n in MUST_NOT_IMPORT
            )
            + "\n"
        )
    w("\nRatios (ratio of medians; 95% interval from resampling the rounds)\n")
    shown: set[str] = set()
    w(f"  {'':<4}{'figure':<58} {'ratio':>9} {'95% interval':>19} {'target':>9} {'result':>7}\n")
    for f in figures:
        target = f"<={fmt_ratio(f.target)}" if f.target is not None else ""
        result = f.result if f.gating or not f.result else f"({f.result})"
        if f.error is not None:
            w(f"  {f.id:<4}{f.label:<58} {'-':>9} {'':>19} {target:>9} {result:>7}\n")
            if f.error not in shown:
                w(f"      {f.error}\n")
                shown.add(f.error)
            continue
        interval = f"{fmt_ratio(f.low)}..{fmt_ratio(f.high)}"
        w(
            f"  {f.id:<4}{f.label:<58} {fmt_ratio(f.ratio):>9} {interval:>19} {target:>9}"
            f" {result:>7}\n"
        )
    for c in checks:
        w(
            f"  {c['id']:<4}{c['label']:<58} {c['value']:>9} {'':>19} {c['target']:>9}"
            f" {c['result']:>7}\n"
        )
    w("  Results in parentheses are informational; --strict counts the others.\n")
    for note in notes:
        w(f"NOTE: {note}\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Measure securelink's context builds and import against the standard library,"
        " as ratios of medians of interleaved runs."
    )
    parser.add_argument("--quick", action="store_true", help="fewer rounds (about 8 s, not 50)")
    parser.add_argument(
        "--json",
        metavar="FILE",
        help="also write the results as JSON to FILE ('-': JSON on stdout, the table on stderr)",
    )
    parser.add_argument(
        "--python",
        metavar="PATH",
        default=sys.executable,
        help="interpreter for the fresh-process timings (a, d); use a fresh virtual environment's"
        " (default: this one, %(default)s)",
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help="exit 1 if any target is missed or a measurement fails",
    )
    parser.add_argument("--seed", type=int, default=20240601, help="seed for the round order")
    args = parser.parse_args(argv)

    profile = QUICK if args.quick else FULL
    rng = random.Random(args.seed)
    notes: list[str] = []
    started = time.perf_counter()
    load_before = _load()
    progress = sys.stderr

    progress.write("measuring b: client contexts in this process ...\n")
    client = client_section(profile, rng, notes)
    progress.write("measuring c: server contexts (ECDSA, RSA) ...\n")
    with tempfile.TemporaryDirectory(prefix="securelink-bench-") as tmp:
        server = server_section(profile, rng, notes, tmp)
    progress.write(f"measuring d: import time with {args.python} ...\n")
    imports: dict[str, Variant] = {}
    import_info: dict[str, Any] | None = None
    import_error: str | None = None
    try:
        imports, import_info = import_section(profile, rng, args.python, notes)
    except (OSError, RuntimeError, subprocess.SubprocessError, ValueError) as exc:
        import_error = f"import timing failed: {exc}"
    progress.write(
        f"measuring a: the first client context in fresh processes of {args.python} ...\n"
    )
    fresh: dict[str, Variant] = {}
    fresh_flags: dict[str, Any] | None = None
    fresh_error: str | None = None
    try:
        fresh, fresh_flags = first_context_section(profile, rng, args.python, notes)
    except (OSError, RuntimeError, subprocess.SubprocessError, ValueError) as exc:
        fresh_error = f"fresh-process timing failed: {exc}"

    figures = [
        Figure(
            "a",
            "first client context in a fresh process / stdlib's",
            ("fresh_securelink", "fresh_stdlib_same"),
            1.05,
        ),
        Figure(
            "a",
            "the same, the stdlib's after import ssl alone",
            ("fresh_securelink", "fresh_stdlib"),
            gating=False,
        ),
        Figure(
            "a",
            "the same, with import securelink / import ssl",
            ("fresh_securelink_total", "fresh_stdlib_total"),
            gating=False,
        ),
        Figure(
            "b",
            "repeated client context, shared=True (cache hit) / stdlib",
            ("shared_client", "stdlib_client"),
            0.01,
        ),
        Figure(
            "b",
            "new client context (the default) / stdlib",
            ("new_client", "stdlib_client"),
            gating=False,
        ),
    ]
    for short, name, _ in KEY_TYPES:
        figures += [
            Figure(
                "c",
                f"{name}: in-memory objects / files",
                (f"{short}_objects", f"{short}_files"),
                1.15,
            ),
            Figure(
                "c",
                f"{name}: in-memory PEM bytes / files",
                (f"{short}_pem", f"{short}_files"),
                1.15,
            ),
            Figure(
                "c",
                f"{name}: in-memory objects / stdlib files",
                (f"{short}_objects", f"{short}_stdlib"),
                gating=False,
            ),
            Figure(
                "c",
                f"{name}: in-memory PEM bytes / stdlib files",
                (f"{short}_pem", f"{short}_stdlib"),
                gating=False,
            ),
            Figure(
                "c",
                f"{name}: files / stdlib files",
                (f"{short}_files", f"{short}_stdlib"),
                gating=False,
            ),
        ]
    figures += [
        Figure(
            "d", "process: import securelink / import ssl", ("proc_securelink", "proc_ssl"), 2.0
        ),
        Figure(
            "d",
            "increment over `pass`: import securelink / import ssl",
            ("proc_securelink", "proc_ssl", "proc_pass"),
            2.0,
            gating=False,
        ),
        Figure(
            "d",
            "CPU time: import securelink / import ssl",
            ("proc_securelink_cpu", "proc_ssl_cpu"),
            gating=False,
        ),
        Figure(
            "d",
            "CPU time, increment over `pass`",
            ("proc_securelink_cpu", "proc_ssl_cpu", "proc_pass_cpu"),
            gating=False,
        ),
    ]
    all_variants = {**fresh, **client, **server, **imports}
    for f in figures:
        if all(k in all_variants for k in f.keys):
            evaluate(f, all_variants, profile.bootstrap, rng)
        else:
            f.error = (fresh_error if f.id == "a" else import_error) or "not measured"

    checks: list[dict[str, Any]] = []
    if fresh_flags is not None:
        checks.append(
            {
                "id": "a",
                "label": "first client context (no explicit CA) loads cryptography",
                "value": "yes" if fresh_flags["imported"] else "no",
                "target": "no",
                # Loaded at start-up, it would be there whatever the context does.
                "result": "MISS"
                if fresh_flags["imported"] and not fresh_flags["preloaded_cryptography"]
                else "ERROR"
                if fresh_flags["preloaded_cryptography"]
                else "PASS",
                **fresh_flags,
            }
        )
    else:
        checks.append(
            {
                "id": "a",
                "label": "first client context (no explicit CA) loads cryptography",
                "value": "-",
                "target": "no",
                "result": "ERROR",
            }
        )
    if import_info is not None:
        loaded = [n for n, hit in import_info["loaded_by_import_securelink"].items() if hit]
        preloaded = import_info["loaded_at_startup"]
        checks.append(
            {
                "id": "d",
                "label": "import securelink loads " + "/".join(MUST_NOT_IMPORT),
                "value": ",".join(loaded) if loaded else "none",
                "target": "none",
                # Modules the interpreter loads at start-up hide what the import would load.
                "result": "MISS" if loaded else "ERROR" if preloaded else "PASS",
                "loaded": loaded,
            }
        )
    else:
        checks.append(
            {
                "id": "d",
                "label": "import securelink loads " + "/".join(MUST_NOT_IMPORT),
                "value": "-",
                "target": "none",
                "result": "ERROR",
                "loaded": None,
            }
        )

    meta = {
        "securelink": securelink.__version__,
        "profile": profile.name,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "openssl": ssl.OPENSSL_VERSION,
        "cryptography": importlib.metadata.version("cryptography"),
        "certifi": importlib.metadata.version("certifi"),
        "cpus": os.cpu_count(),
        "load_before": load_before,
        "load_after": _load(),
        "seed": args.seed,
        "elapsed_s": time.perf_counter() - started,
    }
    sections = [
        (
            "a. The first client context of a fresh process (self-timed in the child)",
            list(fresh.values()),
        ),
        (
            "b. Client contexts in a warm process (trusting the certifi bundle)",
            list(client.values()),
        ),
        *(
            (
                f"c. Server contexts, {name} leaf from securelink.devca (shared=False)",
                [server[f"{short}_{kind}"] for kind in ("objects", "pem", "files", "stdlib")],
            )
            for short, name, _ in KEY_TYPES
        ),
        ("d. Interpreter start-up, wall time of a fresh process", list(imports.values())),
    ]
    for error in (fresh_error, import_error):
        if error:
            notes.append(error)
    table_out = sys.stderr if args.json == "-" else sys.stdout
    render(meta, sections, figures, checks, import_info, notes, table_out)

    if args.json:
        doc = {
            "meta": meta,
            "variants": {k: v.summary() for k, v in all_variants.items()},
            "samples_s": {k: v.samples for k, v in all_variants.items()},
            "figures": [f.as_json() for f in figures],
            "checks": checks,
            "imports": import_info,
            "notes": notes,
        }
        text = json.dumps(doc, indent=2, sort_keys=False) + "\n"
        if args.json == "-":
            sys.stdout.write(text)
        else:
            with open(args.json, "w", encoding="utf-8") as fh:
                fh.write(text)

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


if __name__ == "__main__":
    sys.exit(main())
