"""Fuzz securelink's loaders with mutated certificates, keys, chains and PKCS#12 bundles.

The long run behind ``tests/test_fuzz.py`` (which runs a few hundred inputs in every CI run): by
default 21,000 inputs, each a mutation of a development-CA object (PEM, DER and PKCS#12: bit flips,
truncations, insertions, DER length fields made wrong, OIDs swapped for others of the same length,
EC points moved off their curve, PEM text damage), passed through ``ClientOptions(ca=...)`` with
``client_context``, ``ServerOptions(cert=..., key=...)`` (and ``client_ca=``, ``PKCS12(...)``)
with ``server_context``, and ``securelink.inspect``.  The mutations live in ``tests/fuzzing.py``.

It lives in ``fuzz/`` rather than ``bench/``: it checks behaviour (which exceptions come out, and
that no input is slow), it does not measure a ratio.

Two things must hold, and the script exits 1 if either does not:

- **0 foreign exceptions**: every exception is a :class:`securelink.MaterialError` (or a subclass)
  or a :class:`securelink.ConfigurationError`, the documented ones for these calls.
- **0 inputs over 1 s**: no single call takes more than ``--slow`` seconds (default 1.0).

Run it from the repository root, with securelink installed (``pip install -e .``)::

    python fuzz/fuzz_material.py                    # 21,000 inputs, seed 1: a few minutes
    python fuzz/fuzz_material.py --count 2000 --seed 7
    python fuzz/fuzz_material.py --save failures/   # write each failing input to a file

The seed fixes the mutations; the seed objects themselves are made fresh each run (their keys are
random), so a failure is reported with the input itself (saved with ``--save``), which
``tests.fuzzing.run_one`` replays.
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import time

# The mutations are shared with the test suite: run from the repository root, or from anywhere.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tests import fuzzing  # after the path above


def main(argv: list[str] | None = None) -> int:
    """Run the fuzzer; return the exit status (0: no foreign exception and no slow input)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=21_000, help="inputs to try (21000)")
    parser.add_argument("--seed", type=int, default=1, help="the mutations' random seed (1)")
    parser.add_argument("--slow", type=float, default=1.0, help="seconds that make a call slow")
    parser.add_argument("--save", metavar="DIR", help="write every failing input into DIR")
    args = parser.parse_args(argv)

    corpus = fuzzing.corpus()
    outcomes: collections.Counter[tuple[str, str]] = collections.Counter()
    foreign: list[tuple[int, str, str, str, bytes]] = []
    slow: list[tuple[float, int, str, str, int]] = []
    slowest = 0.0
    calls = 0
    start = time.perf_counter()
    for n, seed, data in fuzzing.inputs(corpus, args.seed, args.count):
        for outcome in fuzzing.run_one(seed, data, corpus):
            calls += 1
            outcomes[(outcome.target, outcome.error or "ok")] += 1
            slowest = max(slowest, outcome.seconds)
            if outcome.foreign:
                foreign.append((n, seed.name, outcome.target, outcome.detail, data))
            if outcome.seconds > args.slow:
                slow.append((outcome.seconds, n, seed.name, outcome.target, len(data)))
        if (n + 1) % 1000 == 0:
            print(
                f"  {n + 1} inputs, {len(foreign)} foreign, {len(slow)} slow,"
                f" {time.perf_counter() - start:.0f} s",
                file=sys.stderr,
            )
    elapsed = time.perf_counter() - start

    print(f"securelink material fuzz: seed {args.seed}, {args.count} inputs, {calls} calls")
    print(f"  {elapsed:.1f} s in all, slowest call {slowest * 1000:.1f} ms")
    print("  outcomes (call, exception or ok):")
    for (target, error), count in sorted(outcomes.items()):
        print(f"    {target:15} {error:28} {count}")
    print(f"  foreign exceptions: {len(foreign)}")
    for n, name, target, detail, _ in foreign[:50]:
        print(f"    input {n} ({name} -> {target}): {detail}")
    print(f"  calls over {args.slow:g} s: {len(slow)}")
    for seconds, n, name, target, size in sorted(slow, reverse=True)[:50]:
        print(f"    input {n} ({name} -> {target}, {size} bytes): {seconds:.2f} s")
    if args.save and foreign:
        os.makedirs(args.save, exist_ok=True)
        for n, name, target, _, data in foreign:
            with open(os.path.join(args.save, f"{n}-{name}-{target}.bin"), "wb") as f:
                f.write(data)
        print(f"  failing inputs written to {args.save}")
    ok = not foreign and not slow
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
