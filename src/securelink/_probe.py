"""``securelink probe HOST:PORT``: connect, and show what the server presents or why it failed."""

from __future__ import annotations

import ssl

from ._clihints import cli_hint
from ._compat import der_chain
from ._connect import connect
from ._options import ClientOptions, Trust
from ._summary import CertificateSummary
from ._translate import facts_for
from ._x509 import duration, utcnow
from .errors import ConfigurationError, MaterialError, SecureLinkError

TYPE_CHECKING = False
if TYPE_CHECKING:
    import datetime
    from typing import TextIO

__all__ = ["parse_target", "probe", "problems"]

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


def _chain_lines(ders: list[bytes], name: str) -> list[str]:
    lines = []
    now = utcnow()
    for depth, der in enumerate(ders):
        try:
            cert = CertificateSummary.from_der(der)
        except ValueError as exc:  # a field cryptography cannot read (OpenSSL could)
            lines.append(f"  {depth} (a certificate securelink cannot read: {exc})")
            continue
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
        lines += [f"      problem:  {p}" for p in problems(cert, name if depth == 0 else None, now)]
    return lines


def problems(
    cert: CertificateSummary, name: str | None, now: datetime.datetime | None = None
) -> list[str]:
    """What else is wrong with one certificate of a chain, beyond the error that was reported.

    OpenSSL stops at the first failure it finds (an unknown CA hides an expired certificate),
    so the chain is checked here for the problems that can be seen in each certificate alone:
    outside its validity period, and for the leaf (*name* given) not valid for *name*.

    Args:
        cert: The certificate.
        name: The name the client asked for, to check a leaf against; ``None`` for a CA.
        now: The time to check against (default: now).

    Returns:
        One sentence per problem; empty when none is seen.
    """
    now = now if now is not None else utcnow()
    found = []
    if cert.not_after < now:
        found.append(
            f"expired on {cert.not_after:%Y-%m-%d %H:%M} UTC, {duration(now - cert.not_after)} ago"
        )
    if cert.not_before > now:
        found.append(
            f"not valid until {cert.not_before:%Y-%m-%d %H:%M} UTC,"
            f" {duration(cert.not_before - now)} from now"
        )
    if name is not None and not _holds(cert.names, name):
        held = ", ".join(n for n in cert.names if "://" not in n) or "no host name"
        found.append(f"not valid for {name!r} (it holds {held})")
    return found


def _holds(names: tuple[str, ...], wanted: str) -> bool:
    """Whether a certificate with these SubjectAltNames is valid for *wanted* (RFC 6125).

    An IP address matches an equal IP address entry; a host name matches a DNS entry ignoring
    case, where ``*`` may stand for exactly the whole left-most label.  URIs never match.
    """
    import ipaddress

    try:
        address = ipaddress.ip_address(wanted.strip("[]"))
    except ValueError:
        address = None
    host = wanted.rstrip(".").lower()
    for entry in names:
        if "://" in entry:
            continue
        try:
            entry_address = ipaddress.ip_address(entry)
        except ValueError:
            entry_address = None
        if address is not None or entry_address is not None:
            # An address matches only an equal address entry; never a host name, either way.
            if address is not None and entry_address == address:
                return True
            continue
        pattern = entry.rstrip(".").lower()
        if pattern == host:
            return True
        if pattern.startswith("*.") and "." in host:
            label, rest = host.split(".", 1)
            if label and rest == pattern[2:]:
                return True
    return False


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
        print(f"securelink probe: {exc.message} Hint: {cli_hint('probe', exc)}", file=err)
        return USAGE
    # Which flag named each file, so that an error about a file can name the flag to fix.
    files = {"--ca": ca, "--cert": cert, "--key": key}
    name = servername or host
    try:
        sock = connect(host, port, options, server_hostname=name, timeout=timeout)
        with sock:
            # What the connection shows is taken before the read: a close clears some of it.
            ok, chain = (
                _report(host, port, name, sock),
                _chain_lines(der_chain(sock, verified=False), name),
            )
            if _await_verdict(sock):
                ok.append("  note:     the server closed the connection right after the handshake")
            print("\n".join([*ok, "the chain the server presented:", *chain]), file=out)
    except (MaterialError, ConfigurationError) as exc:
        # A file that cannot be used, or a name that cannot be checked (--servername "a..",
        # HOST 0177.0.0.1): the command line is at fault, not the server.
        print(f"securelink probe: {exc.message} Hint: {cli_hint('probe', exc, files)}", file=err)
        return USAGE
    except SecureLinkError as exc:
        print(f"{host} port {port} ({name}): FAILED", file=out)
        print(f"  {type(exc).__name__}: {exc.message}", file=out)
        hint = cli_hint("probe", exc, files)
        if hint:
            print(f"  hint: {hint}", file=out)
        presented = getattr(exc, "chain", ())
        if presented:
            # OpenSSL reports one failure; each certificate's other problems are shown too.
            print("the chain the server presented:", file=out)
            now = utcnow()
            for depth, summary in enumerate(presented):
                print(f"  {depth}: {summary}", file=out)
                for problem in problems(summary, name if depth == 0 else None, now):
                    print(f"     problem: {problem}", file=out)
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
