"""``securelink probe HOST:PORT``: connect, and show what the server presents or why it failed."""

from __future__ import annotations

import ssl

from ._options import ClientOptions, Trust
from ._sockets import _chain, connect
from ._summary import CertificateSummary
from ._translate import facts_for
from .errors import ConfigurationError, MaterialError, SecureLinkError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import TextIO

__all__ = ["parse_target", "probe"]

#: Exit statuses: connected; the connection failed; the command line or the material was wrong.
OK, FAILED, USAGE = 0, 1, 2
#: How long to wait for the server's verdict after the handshake (TLS 1.3 servers send it then).
VERDICT_WAIT = 1.0


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


def _chain_lines(ders: list[bytes]) -> list[str]:
    lines = []
    for depth, der in enumerate(ders):
        cert = CertificateSummary.from_der(der)
        role = "leaf" if depth == 0 else ("root" if cert.self_signed else "intermediate")
        lines.append(f"  {depth} {role}: {cert.subject}")
        if cert.names:
            lines.append(f"      names:    {', '.join(cert.names)}")
        lines.append(f"      issuer:   {cert.issuer}")
        lines.append(
            f"      valid:    {cert.not_before:%Y-%m-%d %H:%M} to {cert.not_after:%Y-%m-%d %H:%M}"
            " UTC"
        )
        lines.append(f"      sha256:   {cert.sha256}")
    return lines


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
        with sock:
            # What the connection shows is taken before the read: a close clears some of it.
            ok, chain = _report(host, port, name, sock), _chain_lines(_chain(sock, verified=False))
            if _await_verdict(sock):
                ok.append("  note:     the server closed the connection right after the handshake")
            print("\n".join([*ok, "the chain the server presented:", *chain]), file=out)
    except MaterialError as exc:
        print(f"securelink probe: {exc}", file=err)
        return USAGE
    except SecureLinkError as exc:
        print(f"{host} port {port} ({name}): FAILED", file=out)
        print(f"  {type(exc).__name__}: {exc.message}", file=out)
        if exc.hint:
            print(f"  hint: {exc.hint}", file=out)
        presented = getattr(exc, "chain", ())
        if presented:
            print("the chain the server presented:", file=out)
            for depth, summary in enumerate(presented):
                print(f"  {depth}: {summary}", file=out)
        return FAILED
    except (TimeoutError, OSError) as exc:
        print(f"{host} port {port} ({name}): FAILED", file=out)
        print(f"  {type(exc).__name__}: {exc}", file=out)
        return FAILED
    return OK


def _await_verdict(sock: ssl.SSLSocket) -> bool:
    """Read once, briefly: a TLS 1.3 server refuses a client only after the handshake.

    A refusal is raised (as the securelink error that explains it); a server that waits for a
    request is fine.  Returns whether the server closed the connection without a word.
    """
    sock.settimeout(VERDICT_WAIT)
    try:
        return sock.recv(1) == b""
    except TimeoutError:
        return False  # no verdict: it waits for a request, as servers do


def _report(host: str, port: int, name: str, sock: ssl.SSLSocket) -> list[str]:
    cipher = sock.cipher()
    facts = facts_for(sock.context)
    trusted = f" against {facts.trusted}" if facts is not None else ""
    return [
        f"{host} port {port} ({name}): OK",
        f"  version:  {sock.version()}",
        f"  cipher:   {cipher[0] if cipher else '(none)'}",
        f"  alpn:     {sock.selected_alpn_protocol() or '(none)'}",
        f"  verified: yes, for {name}{trusted}",
    ]
