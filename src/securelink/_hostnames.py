"""Host names checked before any connection, so that every part of it reads them the same way.

A server name passes through three readers: the resolver (``getaddrinfo``, which follows
``inet_aton``), OpenSSL's certificate check, and the SNI extension.  Where they disagree, a
connection can verify one name or address while talking to another: ``getaddrinfo`` reads
``0177.0.0.1`` as the octal 127.0.0.1 while OpenSSL reads 177.0.0.1; Python's IDNA 2003 codec
turns ``straße.example`` into ``strasse.example``, another name than the IDNA 2008
``xn--strae-oqa.example`` that registries and certificates use.  :func:`checked` accepts only
names that every reader takes the same way, and raises
:class:`~securelink.errors.ConfigurationError` (naming the problem and the form to write) for the
others, instead of the ``UnicodeError``, ``TypeError`` or ``ssl.SSLError`` the standard library
would raise, or the silent misreading.

The rules (documented in docs/contexts.md, "Host names"):

- A DNS name is labels of 1 to 63 letters, digits, ``-`` and ``_`` (no ``-`` at either end of a
  label), at most 253 characters in all: Go's ``isDomainName``.  One trailing dot is dropped for
  the certificate check and SNI (``example.com.`` is ``example.com``, as Go and browsers read it);
  RFC 6066 sends SNI without it.
- IPv4 addresses are accepted only in the dotted-quad form Python's :mod:`ipaddress` reads (four
  decimal numbers, no leading zeros).  A name whose last label is a number (or ``0x`` and hex
  digits) is read as an IPv4 address by URL parsers (WHATWG) and by ``inet_aton``: any other
  spelling is refused, with the address the resolver would have connected to.
- IPv6 addresses are written without brackets (as :mod:`ssl` takes them); a zone (``%eth0``) is
  dropped for the certificate check, which cannot hold one.
- Unicode names are encoded with the standard library's IDNA 2003 (nameprep and punycode, as
  ``socket`` does when it resolves them), except names containing the four characters IDNA 2003
  and IDNA 2008 encode differently (ß, ς, ZWJ, ZWNJ; and ẞ), or characters Unicode 3.2 did not
  have, which are refused: the caller passes the A-label.  A-labels (``xn--``) are always
  accepted as they are.
"""

from __future__ import annotations

import functools
import re

from .errors import ConfigurationError

__all__ = ["checked", "encode_hostname"]

# Patterns as strings, compiled by re (and cached there) on first use: `import securelink`
# stays cheap, and a program checks few distinct names (the results are cached below).
#: A DNS name in ASCII (Go's isDomainName): the fast path; the checks below explain a failure.
_LDH_NAME = (
    r"(?:[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?\.)*"
    r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
)
_LABEL_CHARS = r"[A-Za-z0-9_-]*"
#: The label separators of IDNA 2003 (RFC 3490, 3.1), as Python's codec splits on them.
_DOTS = "[.\u3002\uff0e\uff61]"
#: WHATWG URL's "ends in a number": a last label of digits, or 0x and hex digits.
_NUMBER = r"[0-9]+|0[xX][0-9A-Fa-f]*"
_HEX = r"0[xX][0-9A-Fa-f]*"
_OCTAL = r"0[0-7]+"
_DECIMAL = r"0|[1-9][0-9]*"
#: The characters IDNA 2003 and IDNA 2008 (UTS #46 non-transitional) read differently; the
#: capital sharp s is not in IDNA 2003's Unicode 3.2, and UTS #46 maps it to ß.
_DEVIATIONS = {
    "\u00df": "'ß' (sharp s)",
    "\u1e9e": "'ẞ' (capital sharp s)",
    "\u03c2": "'ς' (final sigma)",
    "\u200c": "a zero width non-joiner (U+200C)",
    "\u200d": "a zero width joiner (U+200D)",
}
MAX_NAME = 253
MAX_LABEL = 63
#: Longer inputs are refused before they are looked at: even a Unicode name whose characters
#: IDNA maps to nothing (soft hyphens) has no business being longer.
MAX_INPUT = 1024


def checked(name: str | bytes, field: str = "server_hostname") -> str:
    """Check a server name and return the form to verify the certificate against and send as SNI.

    Args:
        name: A DNS name (Unicode or A-labels, one trailing dot allowed), an IPv4 address in
            dotted-quad form, or an IPv6 address without brackets.  ``bytes`` must be ASCII.
        field: The argument *name* came from, for the error (``"server_hostname"`` or
            ``"host"``).

    Returns:
        The name in ASCII: A-labels for a Unicode name, without the trailing dot; an IPv6 address
        as written, without a zone.  Checking the result again returns it unchanged.

    Raises:
        ConfigurationError: the name is empty, malformed, or could be read two ways.
        TypeError: *name* is neither ``str`` nor ``bytes``.
    """
    if isinstance(name, str | bytes) and len(name) > MAX_INPUT:
        # Before any other work: a hostile name may be megabytes long.
        text = name if isinstance(name, str) else name.decode("ascii", "replace")
        raise _too_long(text, name, field)
    if isinstance(name, bytes):
        try:
            text = name.decode("ascii")
        except UnicodeDecodeError:
            raise ConfigurationError(
                f"{field} {name!r} holds bytes that are not ASCII.",
                field=field,
                hint="Pass the name as a str (internationalised names are encoded for you),"
                " or as its A-label (the xn-- form).",
            ) from None
        return _checked(text, field)
    if not isinstance(name, str):
        raise TypeError(f"{field} must be a str, not {type(name).__name__}")
    return _checked(name, field)


def encode_hostname(hostname: str | bytes | None) -> str | None:
    """``SSLContext._encode_hostname`` for securelink's contexts: the checks, then the stdlib's.

    ``SSLContext.wrap_bio`` (asyncio) encodes the name with the IDNA 2003 codec before the
    ``SSLObject`` class is involved, which would turn ``straße`` into ``strasse`` out of sight:
    the contexts route that encoding here instead.
    """
    if hostname is None:
        return None
    return checked(hostname)


@functools.lru_cache(maxsize=256)
def _checked(name: str, field: str) -> str:
    # Cached: a program connects to few names, over and over (every wrap_socket checks).
    if re.fullmatch(_LDH_NAME, name) or (name.endswith(".") and re.fullmatch(_LDH_NAME, name[:-1])):
        ascii_name = name.removesuffix(".")
        if len(ascii_name) > MAX_NAME:
            raise _too_long(name, ascii_name, field)
        if re.fullmatch(_NUMBER, ascii_name.rpartition(".")[2]):
            return _ipv4(name, field)
        return ascii_name
    return _slow(name, field)


def _slow(name: str, field: str) -> str:
    """Everything but a well-formed ASCII DNS name: say what is wrong, or encode it."""
    if not name:
        if field == "server_hostname":
            hint = (
                "Pass the name the server's certificate is issued for, or leave server_hostname"
                " out (None) to use the host: an empty name is not replaced by the host."
            )
        else:
            hint = "Pass the server's host name or IP address."
        raise ConfigurationError(f"{field} is an empty string.", field=field, hint=hint)
    _refuse_controls(name, field)
    if name.startswith("[") and name.endswith("]"):
        inner = name[1:-1]
        hint = "Write an IPv6 address without brackets"
        if _ipv6_or_none(inner) is not None:
            hint += f": {inner!r}."
        else:
            hint += ", such as '2001:db8::1'."
        raise ConfigurationError(
            f"{field} {_short(name)} is written in brackets, as URLs write IPv6 addresses.",
            field=field,
            hint=hint,
        )
    if ":" in name:
        return _ipv6(name, field)
    trailing = bool(re.fullmatch(_DOTS, name[-1]))
    ascii_name = name[:-1] if trailing else name
    labels = re.split(_DOTS, ascii_name)
    if "" in labels:
        raise ConfigurationError(
            f"{field} {_short(name)} has an empty label (a dot at the start, two dots in a row, or"
            " more than one dot at the end).",
            field=field,
            hint="Separate the labels with single dots, such as 'www.example.com'; one trailing"
            " dot is allowed (and ignored).",
        )
    if not ascii_name.isascii():
        labels = _idna(name, labels, field)
        ascii_name = ".".join(labels)
    for label in labels:
        if len(label) > MAX_LABEL:
            raise ConfigurationError(
                f"{field} {_short(name)} has a label of {len(label)} characters"
                f"{'' if name.isascii() else ' once encoded'}; DNS allows at most {MAX_LABEL}.",
                field=field,
                hint="Check the name: a label is the part between two dots.",
            )
    for label in labels:
        if not re.fullmatch(_LABEL_CHARS, label):
            char = next(c for c in label if not re.fullmatch(_LABEL_CHARS, c))
            raise ConfigurationError(
                f"{field} {_short(name)} contains {char!r}, which a host name cannot.",
                field=field,
                hint=_char_hint(char),
            )
        if label.startswith("-") or label.endswith("-"):
            raise ConfigurationError(
                f"{field} {_short(name)} has the label {label!r}, which starts or ends with '-'.",
                field=field,
                hint="Check the name: a DNS label cannot start or end with a hyphen.",
            )
    if len(ascii_name) > MAX_NAME:
        raise _too_long(name, ascii_name, field)
    if re.fullmatch(_NUMBER, labels[-1]):
        # A name that was not ASCII (fullwidth digits) whose encoding ends in a number: read as
        # an address by the resolver (which encodes it the same way) and by us.
        return _ipv4(ascii_name + ("." if trailing else ""), field)
    return ascii_name


def _refuse_controls(name: str, field: str) -> None:
    for position, char in enumerate(name):
        code = ord(char)
        if code > 0x20 and code != 0x7F and not 0xD800 <= code <= 0xDFFF:
            continue
        if code == 0:
            what = "a NUL character (U+0000)"
            hint = "Check where the name came from: a NUL ends a name in C, so two readers differ."
        elif code == 0x20:
            what = "a space"
            hint = "Pass one name, without spaces."
        elif code >= 0xD800:
            what = f"a lone surrogate (U+{code:04X})"
            hint = (
                "Check where the name came from: a lone surrogate is not text; it comes from"
                " bytes decoded with errors='surrogateescape'."
            )
        else:
            what = f"a control character (U+{code:04X})"
            hint = "Check where the name came from: strip line ends and other control characters."
        raise ConfigurationError(
            f"{field} {_short(name)} contains {what} at position {position}.",
            field=field,
            hint=hint,
        )


def _idna(name: str, labels: list[str], field: str) -> list[str]:
    """The labels of a Unicode name as A-labels (IDNA 2003), refusing what IDNA 2008 reads apart."""
    found = [what for char, what in _DEVIATIONS.items() if char in name]
    if found:
        suggestion = _idna2008_guess(labels)
        hint = "Pass the A-label (the xn-- form) the server's certificate is issued for"
        if suggestion is not None:
            hint += f": as IDNA 2008 encodes it, {suggestion!r}"
        raise ConfigurationError(
            f"{field} {_short(name)} contains {' and '.join(found)}, which IDNA 2003 (Python's"
            " codec) and IDNA 2008 (what registries and browsers use) encode as different names.",
            field=field,
            hint=hint + ".",
        )
    import stringprep
    from encodings import idna

    for char in name:
        # Python's codec lets code points unassigned in Unicode 3.2 through, normalised by 3.2's
        # tables (which do not know them) and case-mapped by today's: a mix UTS #46 need not
        # agree with.  RFC 3490 refuses them in stored names, and certificates hold those.
        if stringprep.in_table_a1(char):
            raise ConfigurationError(
                f"{field} {_short(name)} contains U+{ord(char):04X}, which IDNA 2003 (Python's"
                " codec, Unicode 3.2) does not know.",
                field=field,
                hint="Pass the A-label (the xn-- form) the server's certificate is issued for.",
            )
    result: list[str] = []
    for label in labels:
        if label.isascii():
            result.append(label)
            continue
        try:
            prepared = idna.nameprep(label)
        except UnicodeError as exc:
            raise ConfigurationError(
                f"{field} {_short(name)} cannot be encoded as an internationalised name ({exc}).",
                field=field,
                hint="Pass the A-label (the xn-- form) the server's certificate is issued for.",
            ) from None
        if not prepared:
            raise ConfigurationError(
                f"{field} {_short(name)} has the label {label!r}, which IDNA maps to nothing.",
                field=field,
                hint="Check the name: it holds only characters IDNA ignores (such as soft"
                " hyphens).",
            )
        if prepared.isascii():  # fullwidth letters and digits, and the like
            result.append(prepared)
        else:
            result.append("xn--" + prepared.encode("punycode").decode("ascii"))
    return result


def _idna2008_guess(labels: list[str]) -> str | None:
    # ß and ς are valid in IDNA 2008 as they are, so their A-label is the punycode of the
    # lower-cased label (UTS #46 maps case the same way); the joiners are valid only in some
    # scripts' contexts, which without the idna package cannot be checked: no suggestion.
    import unicodedata

    if any(c in "".join(labels) for c in "\u200c\u200d"):
        return None
    out = []
    for label in labels:
        label = unicodedata.normalize("NFC", label.lower())
        out.append(label if label.isascii() else "xn--" + label.encode("punycode").decode())
    return ".".join(out)


def _ipv6_or_none(text: str) -> str | None:
    import ipaddress

    try:
        address = ipaddress.IPv6Address(text)
    except ValueError:
        return None
    # As written (OpenSSL reads every form ipaddress does), without the zone: a certificate
    # holds an address, never a zone.
    return text.partition("%")[0] if address.scope_id else text


def _ipv6(name: str, field: str) -> str:
    address = _ipv6_or_none(name)
    if address is not None:
        return address
    if "/" in name or "@" in name:
        raise ConfigurationError(
            f"{field} {_short(name)} looks like a URL, not a host name.",
            field=field,
            hint=_char_hint("/"),
        )
    host, colon, port = name.rpartition(":")
    if colon and ":" not in host and port.isdigit():
        raise ConfigurationError(
            f"{field} {_short(name)} looks like a host and a port.",
            field=field,
            hint=f"Pass the host alone ({host!r}) and the port separately.",
        )
    raise ConfigurationError(
        f"{field} {_short(name)} is not an IPv6 address, and a host name cannot contain ':'.",
        field=field,
        hint="Write IPv6 addresses as Python's ipaddress module reads them, such as"
        " '2001:db8::1', without brackets.",
    )


def _ipv4(name: str, field: str) -> str:
    """A name that ends in a number: a dotted-quad IPv4 address, or refused."""
    import ipaddress

    if name.endswith("."):
        trimmed = name[:-1]
        try:
            ipaddress.IPv4Address(trimmed)
        except ValueError:
            pass
        else:
            raise ConfigurationError(
                f"{field} {_short(name)} is an IPv4 address with a trailing dot, which resolvers"
                " look up as a DNS name.",
                field=field,
                hint=f"Write it as {trimmed!r}.",
            )
    else:
        try:
            ipaddress.IPv4Address(name)
        except ValueError:
            pass
        else:
            return name
    read_as = _inet_aton(name)
    if read_as is not None:
        raise ConfigurationError(
            f"{field} {_short(name)} is not a plain dotted-quad IPv4 address: the system's resolver"
            f" reads it as {read_as}, and other readers (the certificate check among them) may"
            " read it as another address or as a name.",
            field=field,
            hint=f"Write it as {read_as!r}.",
        )
    raise ConfigurationError(
        f"{field} {_short(name)} ends in a number but is not an IPv4 address.",
        field=field,
        hint="Write an IPv4 address as four decimal numbers from 0 to 255 without leading"
        " zeros, such as '192.0.2.1'; the last label of a host name cannot be a number.",
    )


def _inet_aton(name: str) -> str | None:
    """The address ``inet_aton`` (and so ``getaddrinfo``) reads in *name*, or ``None``.

    One to four parts, each decimal, octal (a leading 0) or hex (0x); the last fills the bytes
    left: ``127.1`` is 127.0.0.1 and ``2130706433`` too.  WHATWG's URL parser reads the same.
    """
    parts = name.removesuffix(".").split(".")
    if not 1 <= len(parts) <= 4:
        return None
    numbers = []
    for part in parts:
        # Matched before int(), which would also take signs, underscores and other digits.
        if re.fullmatch(_HEX, part):
            numbers.append(int(part[2:] or "0", 16))
        elif re.fullmatch(_OCTAL, part):
            numbers.append(int(part, 8))
        elif re.fullmatch(_DECIMAL, part):
            numbers.append(int(part))
        else:
            return None
    *first, last = numbers
    if any(n > 255 for n in first) or last >= 256 ** (5 - len(numbers)):
        return None
    value = last
    for i, n in enumerate(first):
        value += n << (8 * (3 - i))
    return ".".join(str((value >> shift) & 255) for shift in (24, 16, 8, 0))


def _too_long(name: str, ascii_name: str | bytes, field: str) -> ConfigurationError:
    encoded = " once encoded" if not name.isascii() and len(ascii_name) <= MAX_INPUT else ""
    return ConfigurationError(
        f"{field} {_short(name)} is {len(ascii_name)} characters long{encoded};"
        f" a DNS name has at most {MAX_NAME}.",
        field=field,
        hint="Check where the name came from.",
    )


def _char_hint(char: str) -> str:
    if char == "*":
        return (
            "'*' is a pattern certificates use, not a name: connect to one name it covers,"
            " such as 'www.example.com'."
        )
    if char in "/@?#":
        return (
            "Pass the host alone, without a scheme, user or path: 'example.com', not"
            " 'https://example.com/'."
        )
    return "A host name has letters, digits, '-' and '_' between single dots."


def _short(name: str) -> str:
    # A hostile or mistaken name may be megabytes long: quote its start only.
    return repr(name) if len(name) <= 80 else f"{name[:60]!r}..."
