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
    parser.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())
