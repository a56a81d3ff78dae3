"""``securelink probe HOST:PORT``: connect, and show what the server presents or why it failed."""

from __future__ import annotations

from ._options import ClientOptions, Trust
from ._sockets import _chain, connect
from ._summary import CertificateSummary
from .errors import ConfigurationError, MaterialError, SecureLinkError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import TextIO

__all__ = ["parse_target", "probe"]

#: Exit statuses: connected; the connection failed; the command line or the material was wrong.
OK, FAILED, USAGE = 0, 1, 2


def parse_target(target: str) -> tuple[str, int]:
    """Split ``HOST:PORT`` (``[::1]:443`` for IPv6) into host and port.

    Raises:
        ConfigurationError: the target is not of that form.
    """
    host, sep, port = target.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigurationError(
            f"{target!r} is not HOST:PORT.",
            field="target",
            hint="Write the host and the port, for example example.com:443 or [::1]:8443.",
        )
    return host, int(port)


def _print_chain(out: TextIO, ders: list[bytes]) -> None:
    for depth, der in enumerate(ders):
        cert = CertificateSummary.from_der(der)
        role = "leaf" if depth == 0 else ("root" if cert.self_signed else "intermediate")
        print(f"  {depth} {role}: {cert.subject}", file=out)
        if cert.names:
            print(f"      names:    {', '.join(cert.names)}", file=out)
        print(f"      issuer:   {cert.issuer}", file=out)
        print(
            f"      valid:    {cert.not_before:%Y-%m-%d %H:%M} to {cert.not_after:%Y-%m-%d %H:%M}"
            " UTC",
            file=out,
        )
        print(f"      sha256:   {cert.sha256}", file=out)


def probe(
    target: str,
    *,
    ca: str | None,
    cert: str | None,
    key: str | None,
    servername: str | None,
    timeout: float,
    out: TextIO,
    err: TextIO,
) -> int:
    """Connect to *target* and report; return the exit status."""
    try:
        host, port = parse_target(target)
        options = ClientOptions(ca=ca if ca is not None else Trust.CERTIFI, cert=cert, key=key)
    except ConfigurationError as exc:
        print(f"securelink probe: {exc}", file=err)
        return USAGE
    name = servername or host
    try:
        sock = connect(host, port, options, server_hostname=name, timeout=timeout)
    except MaterialError as exc:
        print(f"securelink probe: {exc}", file=err)
        return USAGE
    except SecureLinkError as exc:
        print(f"{host} port {port} ({name}): FAILED", file=out)
        print(f"  {type(exc).__name__}: {exc.message}", file=out)
        if exc.hint:
            print(f"  hint: {exc.hint}", file=out)
        chain = getattr(exc, "chain", ())
        if chain:
            print("the chain the server presented:", file=out)
            for depth, summary in enumerate(chain):
                print(f"  {depth}: {summary}", file=out)
        return FAILED
    except (TimeoutError, OSError) as exc:
        print(f"{host} port {port} ({name}): FAILED", file=out)
        print(f"  {type(exc).__name__}: {exc}", file=out)
        return FAILED
    with sock:
        cipher = sock.cipher()
        print(f"{host} port {port} ({name}): OK", file=out)
        print(f"  version:  {sock.version()}", file=out)
        print(f"  cipher:   {cipher[0] if cipher else '?'}", file=out)
        print(f"  alpn:     {sock.selected_alpn_protocol() or '(none)'}", file=out)
        print("the chain the server presented (verified):", file=out)
        _print_chain(out, _chain(sock, verified=False))
    return OK
