"""The ``securelink`` command line (also ``python -m securelink``)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ._version import __version__

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

    from .errors import SecureLinkError

__all__ = ["main"]

#: The exit status when the reader of standard output goes away (``securelink inspect F | head``):
#: 128 + SIGPIPE, what a shell reports for a program that SIGPIPE ended, as it ends ``cat``.
EXIT_BROKEN_PIPE = 141


def _fail(
    command: str, exc: SecureLinkError, files: Mapping[str, str | None] | None = None
) -> None:
    """Print *exc* on standard error, with its hint in the command line's words."""
    from ._clihints import cli_hint

    hint = cli_hint(command, exc, files)
    hint = f" Hint: {hint}" if hint else ""
    print(f"securelink {command}: {exc.message}{hint}", file=sys.stderr)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="securelink",
        description="Secure TLS and mutual TLS connections, explained.",
    )
    parser.add_argument("--version", action="version", version=f"securelink {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = commands.add_parser(
        "demo",
        help="tell the story of a secure connection by running it on loopback",
        description="Tell the story of a secure connection by running it on 127.0.0.1 in a"
        " temporary directory: the wrong port, a self-signed server, a development CA with every"
        " hook printing what it sees, the wrong name, mutual TLS refused then accepted, and the"
        " files inspected.",
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
    probe.set_defaults(probe_parser=probe)

    minica = commands.add_parser(
        "minica",
        help="issue a development certificate in minica's file layout",
        description="Like minica: create (or reuse) a development CA in minica.pem and"
        " minica-key.pem, and issue a certificate for the given names into"
        " <first-name>/cert.pem and <first-name>/key.pem. Files are never overwritten. For"
        " development and tests only. Single-dash spellings (-domains) work as in minica.",
    )
    minica.add_argument("--domains", "-domains", default="", help="comma-separated DNS names")
    minica.add_argument(
        "--ip-addresses", "-ip-addresses", default="", help="comma-separated IP addresses"
    )
    minica.add_argument("--ca-cert", "-ca-cert", default="minica.pem", help="default: %(default)s")
    minica.add_argument(
        "--ca-key", "-ca-key", default="minica-key.pem", help="default: %(default)s"
    )
    minica.add_argument(
        "--ca-alg", "-ca-alg", choices=("ecdsa", "rsa"), default="ecdsa", help="for a new CA"
    )
    minica.add_argument("--dir", default=".", help="where to write (default: the current one)")
    minica.add_argument("extra", nargs="*", help=argparse.SUPPRESS)

    csr = commands.add_parser(
        "csr",
        help="create a certificate signing request (and a key, if none is given)",
        description="Create a CSR for the given names, to send to a CA. The names become"
        " SubjectAltNames. With --key, that (unencrypted) key is certified; without, a new key is"
        " written next to the CSR with mode 0600. Files are never overwritten.",
    )
    csr.add_argument("--domains", default="", help="comma-separated DNS names")
    csr.add_argument("--ip-addresses", default="", help="comma-separated IP addresses")
    csr.add_argument("--key", metavar="FILE", help="the private key to certify (default: new)")
    csr.add_argument("--key-type", choices=("ecdsa", "rsa"), default="ecdsa", help="for a new key")
    csr.add_argument("--out", metavar="FILE", help="the CSR file (default: <first-name>.csr)")

    inspect = commands.add_parser(
        "inspect",
        help="describe certificates, keys, CSRs and bundles, and what to fix",
        description="Describe everything in each FILE (PEM with any number of blocks, DER,"
        " PKCS#12): certificates, private keys, CSRs, public keys, CRLs, whether certificates form"
        " a chain, and findings to act on. Exit status: 0 no errors found, 1 at least one"
        " error-level finding, 2 a file could not be read.",
    )
    inspect.add_argument("files", nargs="+", metavar="FILE")
    secret = inspect.add_mutually_exclusive_group()
    secret.add_argument(
        "--password",
        help="password for encrypted keys and PKCS#12 bundles (visible to other local users in"
        " the process list: prefer --password-file)",
    )
    secret.add_argument("--password-file", metavar="FILE", help="read the password from FILE")
    inspect.add_argument("--json", action="store_true", help="print JSON for programs")
    return parser


def _inspect(args: argparse.Namespace) -> int:
    import json

    from ._inspect import inspect
    from .errors import SecureLinkError

    password: str | bytes | None = args.password
    if args.password_file:
        try:
            with open(args.password_file, "rb") as f:
                password = f.read().rstrip(b"\r\n")
        except OSError as exc:
            print(f"securelink inspect: {args.password_file}: {exc.strerror}", file=sys.stderr)
            return 2
    status = 0
    results: list[dict[str, object]] = []
    for number, path in enumerate(args.files):
        try:
            result = inspect(path, password=password)
        except SecureLinkError as exc:
            _fail("inspect", exc)
            status = 2
            continue
        if any(f.severity == "error" for f in result.findings):
            status = max(status, 1)
        if args.json:
            results.append(result.to_dict())
        else:
            print(("\n" if number else "") + str(result))
    if args.json:
        print(json.dumps(results[0] if len(args.files) == 1 and results else results, indent=2))
    return status


def _names(text: str) -> list[str]:
    return [name for name in text.split(",") if name] if text else []


def _minica(args: argparse.Namespace) -> int:
    from . import devca
    from .errors import SecureLinkError

    if args.extra:
        print(
            f"securelink minica: extra arguments {args.extra!r}; maybe there are spaces in your"
            " domain list? Separate names with commas only.",
            file=sys.stderr,
        )
        return 2
    alg = devca.KeyType.ECDSA_P256 if args.ca_alg == "ecdsa" else devca.KeyType.RSA_2048
    try:
        files = devca.minica(
            args.dir,
            domains=_names(args.domains),
            ip_addresses=_names(args.ip_addresses),
            ca_cert=args.ca_cert,
            ca_key=args.ca_key,
            ca_alg=alg,
        )
    except SecureLinkError as exc:
        from os.path import join

        ca_files = {
            "--ca-cert": join(args.dir, args.ca_cert),
            "--ca-key": join(args.dir, args.ca_key),
        }
        _fail("minica", exc, ca_files)
        return 1
    from os.path import normpath

    verb = "created" if files.ca_created else "reused"
    print(f"CA {verb}: {normpath(files.ca_cert)} (key {normpath(files.ca_key)})")
    print(f"certificate: {normpath(files.cert)}")
    print(f"key:         {normpath(files.key)}")
    return 0


def _write_new(path: str, data: bytes, mode: int) -> None:
    import os

    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _file_stem(name: str) -> str:
    """The default file name (without extension) for a request whose first name is *name*.

    A DNS name or IP address is used as it is (``*`` written as ``_``, as minica names its
    directories).  A URI such as ``spiffe://example.org/ns/prod/billing`` cannot be (``/``
    would make it a path): it gives its last path segment (``billing``), or its host when it
    has no path, with anything but letters, digits, ``-``, ``.`` and ``_`` written as ``_``.
    """
    if "://" not in name:
        return name.replace("*", "_")  # the names were checked: no '/' in a DNS name or address
    from urllib.parse import unquote, urlsplit

    parts = urlsplit(name)
    segments = [unquote(s) for s in parts.path.split("/") if s]
    last = segments[-1] if segments else parts.hostname or parts.scheme
    stem = "".join(c if c.isalnum() or c in "-._" else "_" for c in last)
    return stem.lstrip(".") or "request"


def _csr(args: argparse.Namespace) -> int:
    import os

    from . import devca
    from ._material import load_private_key
    from .errors import SecureLinkError

    names = [*_names(args.domains), *_names(args.ip_addresses)]
    first = _file_stem(names[0]) if names else "request"
    csr_path = args.out or f"{first}.csr"
    # A new key goes next to the CSR, so that the pair stays together.
    key_path = args.key or os.path.join(os.path.dirname(csr_path), f"{first}.key")
    try:
        key = None
        if args.key and os.path.exists(args.key):
            key, _label = load_private_key(args.key, None, stamps=[])
        alg = devca.KeyType.ECDSA_P256 if args.key_type == "ecdsa" else devca.KeyType.RSA_2048
        request = devca.create_csr(*names, private_key=key, key_type=alg)  # type: ignore[arg-type]
        for path in (csr_path, key_path if key is None else None):
            if path and os.path.exists(path):
                print(f"securelink csr: {path} already exists; not overwriting it", file=sys.stderr)
                return 1
        if key is None:
            _write_new(key_path, request.key_pem, 0o600)
        _write_new(csr_path, request.csr_pem, 0o644)
    except SecureLinkError as exc:
        _fail("csr", exc, {"--key": args.key})
        return 1
    print(f"CSR: {csr_path} (for {', '.join(names)})")
    print(f"key: {key_path}{'' if key is not None else ' (new, mode 0600)'}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with *argv* (default: ``sys.argv[1:]``); return the exit status.

    Exit statuses: 0 success, 1 the command failed, 2 usage error, 141 standard output was
    closed by its reader (as in ``securelink inspect FILE | head``).
    """
    try:
        return _main(argv)
    except BrokenPipeError:
        _drop_stdout()
        return EXIT_BROKEN_PIPE


def _drop_stdout() -> None:
    """Point standard output at /dev/null, quietly: its reader has gone.

    The recipe of Python's documentation (the ``signal`` module, "Note on SIGPIPE"): without it,
    the interpreter's final flush of what is still buffered fails again at exit and prints
    "Exception ignored ... BrokenPipeError".
    """
    import os

    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        return  # not a real file (tests capture it): nothing will be flushed to a pipe
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)


def _main(argv: Sequence[str] | None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "demo":
        from ._demo import run

        def step() -> None:
            try:
                input("   [press Enter to continue]")
            except EOFError:  # no terminal (a pipe or closed stdin): just go on
                print()

        return run(sys.stdout, step=step if args.step else None)
    if args.command == "inspect":
        return _inspect(args)
    if args.command == "minica":
        return _minica(args)
    if args.command == "csr":
        return _csr(args)
    if args.command == "probe":
        from ._probe import probe

        if (args.cert is None) != (args.key is None):
            args.probe_parser.error("--cert and --key go together")
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
