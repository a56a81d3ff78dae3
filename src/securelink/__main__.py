"""The ``securelink`` command line (also ``python -m securelink``)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ._version import __version__

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="securelink",
        description="Secure TLS and mutual TLS connections, explained.",
    )
    parser.add_argument("--version", action="version", version=f"securelink {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = commands.add_parser(
        "demo",
        help="run a mutual-TLS walkthrough on loopback",
        description="Create a development CA in a temporary directory, run mutual TLS on"
        " 127.0.0.1, and show two common failures with securelink's explanation.",
    )
    demo.add_argument(
        "--step", action="store_true", help="pause for Enter between steps (for teaching)"
    )
    probe = commands.add_parser(
        "probe",
        help="connect to a TLS server and show its chain, or why the connection failed",
        description="Connect to HOST:PORT over TLS, verify the server as a securelink client"
        " would, and print the negotiated version, cipher and ALPN and the chain the server"
        " presented, or securelink's explanation of the failure. Exit status: 0 connected,"
        " 1 the connection failed, 2 usage or certificate/key file error.",
    )
    probe.add_argument("target", metavar="HOST:PORT", help="where to connect ([::1]:443 for IPv6)")
    probe.add_argument(
        "--ca", metavar="FILE", help="trust this CA file (PEM or DER) instead of certifi's bundle"
    )
    probe.add_argument("--cert", metavar="FILE", help="client certificate, for mutual TLS")
    probe.add_argument("--key", metavar="FILE", help="client private key, for mutual TLS")
    probe.add_argument(
        "--servername", metavar="NAME", help="the name to verify and send as SNI (default: HOST)"
    )
    probe.add_argument(
        "--timeout", type=float, default=10.0, metavar="SECONDS", help="default: %(default)s"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with *argv* (default: ``sys.argv[1:]``); return the exit status.

    Exit statuses: 0 success, 1 the command failed, 2 usage error.
    """
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "demo":
        from ._demo import run

        def step() -> None:
            input("   [press Enter to continue]")

        return run(sys.stdout, step=step if args.step else None)
    if args.command == "probe":
        from ._probe import probe

        if (args.cert is None) != (args.key is None):
            parser.error("--cert and --key go together")
        return probe(
            args.target,
            ca=args.ca,
            cert=args.cert,
            key=args.key,
            servername=args.servername,
            timeout=args.timeout,
            out=sys.stdout,
            err=sys.stderr,
        )
    parser.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())
