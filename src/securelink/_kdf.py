"""The work a password-protected input asks for, read before it is opened, and refused if huge.

A PKCS#12 bundle and an encrypted PKCS#8 key name their own key-derivation cost: the iteration
count of PBKDF2 or of the PKCS#12 MAC and PBE schemes, scrypt's N.  They are attacker-chosen
numbers in a file of a kilobyte: 20 million iterations hold ``inspect()`` for five seconds,
2**31 for minutes, before any password is checked.  These parameters are stored in clear, so
they are read here from the DER (a bounded walk of its structure, no cryptography) and an input
that asks for more than :data:`MAX_ITERATIONS` is refused before it is decrypted.

What cannot be seen is not bounded: parameters inside an encrypted part of a PKCS#12 bundle
(a key bag encrypted again inside encrypted content) are read by cryptography only once the
outer layer is open, with the outer cost already bounded here.
"""

from __future__ import annotations

import binascii

__all__ = ["MAX_ITERATIONS", "MAX_SCRYPT_N", "excessive_work", "pem_body"]

#: The most key-derivation iterations securelink runs for one input: OpenSSL writes 2,048, and
#: OWASP's advice for PBKDF2 is 600,000 (SHA-256) to 1,300,000 (SHA-1); two million take about
#: half a second on a current CPU.
MAX_ITERATIONS = 2_000_000
#: The largest scrypt cost parameter N (2**20 with r=8 needs 1 GiB; OpenSSL's own default limit
#: of 32 MiB refuses far less).
MAX_SCRYPT_N = 2**20

# Object identifiers, as their DER content bytes.
_PBKDF2 = bytes.fromhex("2a864886f70d01050c")  # 1.2.840.113549.1.5.12
_SCRYPT = bytes.fromhex("2b06010401da47040b")  # 1.3.6.1.4.1.11591.4.11
_PBES1 = {bytes.fromhex("2a864886f70d0105") + bytes([n]) for n in (1, 3, 4, 6, 10, 11)}
_PKCS12_PBE = {bytes.fromhex("2a864886f70d010c01") + bytes([n]) for n in range(1, 7)}

_SEQUENCE, _INTEGER, _OCTET_STRING, _OID = 0x30, 0x02, 0x04, 0x06
# A walk deeper than this (nested OCTET STRINGs holding DER) is not a real bundle.
_MAX_DEPTH = 24


class _Node:
    __slots__ = ("children", "end", "start", "tag")

    def __init__(self, tag: int, start: int, end: int) -> None:
        self.tag = tag
        self.start = start
        self.end = end
        self.children: list[_Node] | None = None


def _header(data: bytes, pos: int, end: int) -> tuple[int, int, int] | None:
    """(tag, content start, content end) of the TLV at *pos*, or None if it is not one."""
    if pos + 2 > end:
        return None
    tag = data[pos]
    if tag & 0x1F == 0x1F:  # high tag numbers: none of the structures read here use them
        return None
    length = data[pos + 1]
    pos += 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4 or pos + count > end:
            return None
        length = int.from_bytes(data[pos : pos + count], "big")
        pos += count
    if pos + length > end:
        return None
    return tag, pos, pos + length


def _children(data: bytes, start: int, end: int) -> list[_Node] | None:
    """The TLVs that exactly fill data[start:end], or None if they do not."""
    out = []
    pos = start
    while pos < end:
        found = _header(data, pos, end)
        if found is None:
            return None
        tag, cstart, cend = found
        out.append(_Node(tag, cstart, cend))
        pos = cend
    return out


def _integer(data: bytes, node: _Node) -> int | None:
    if node.tag != _INTEGER or node.end <= node.start:
        return None
    if node.end - node.start > 8:  # more than 2**63: as good as infinite
        return 2**64
    return int.from_bytes(data[node.start : node.end], "big", signed=True)


def _params_cost(data: bytes, oid: bytes, params: _Node) -> tuple[str, int, int] | None:
    """(what, asked for, limit) for an algorithm identifier whose cost is too high, or None."""
    if params.tag != _SEQUENCE:
        return None
    fields = _children(data, params.start, params.end) or []
    if oid == _PBKDF2 or oid in _PBES1 or oid in _PKCS12_PBE:
        count = _integer(data, fields[1]) if len(fields) > 1 else None
        if count is not None and count > MAX_ITERATIONS:
            return "iterations of its password's key derivation", count, MAX_ITERATIONS
    elif oid == _SCRYPT:
        n = _integer(data, fields[1]) if len(fields) > 1 else None
        if n is not None and n > MAX_SCRYPT_N:
            return "as scrypt's cost parameter N", n, MAX_SCRYPT_N
    return None


def excessive_work(der: bytes) -> tuple[str, int, int] | None:
    """The key-derivation cost *der* asks for, if it is above securelink's bounds.

    Returns:
        ``(what, asked for, limit)`` for the first excessive setting found, or ``None``: nothing
        found, or nothing that is not DER (the loaders report that themselves).
    """
    # An iterative walk over every TLV, descending into constructed values and into OCTET
    # STRINGs whose content is DER (a PKCS#12 bundle's authenticated safe is one).  Each
    # level is parsed once, and levels are bounded: linear in the input.
    stack: list[tuple[int, int, int]] = [(0, len(der), 0)]
    while stack:
        start, end, depth = stack.pop()
        nodes = _children(der, start, end)
        if nodes is None or depth > _MAX_DEPTH:
            continue
        # The PFX's MAC: SEQUENCE { INTEGER 3, ContentInfo, MacData { DigestInfo, salt, iters } }.
        if depth == 0 and len(nodes) == 1 and nodes[0].tag == _SEQUENCE:
            top = _children(der, nodes[0].start, nodes[0].end) or []
            if len(top) == 3 and _integer(der, top[0]) == 3 and top[2].tag == _SEQUENCE:
                mac = _children(der, top[2].start, top[2].end) or []
                count = _integer(der, mac[2]) if len(mac) == 3 else None
                if count is not None and count > MAX_ITERATIONS:
                    return (
                        "iterations of its integrity check (the PKCS#12 MAC)",
                        count,
                        (MAX_ITERATIONS),
                    )
        for i, node in enumerate(nodes):
            if node.tag == _OID and i + 1 < len(nodes):
                found = _params_cost(der, der[node.start : node.end], nodes[i + 1])
                if found is not None:
                    return found
            if node.tag & 0x20 or node.tag == _OCTET_STRING:  # constructed, or maybe DER inside
                stack.append((node.start, node.end, depth + 1))
    return None


def pem_body(pem: bytes) -> bytes | None:
    """The DER inside one PEM block, past any RFC 1421 headers; None for legacy encryption.

    OpenSSL skips headers (``Name: value`` lines up to a blank line) before the base64 text, so
    they are skipped here too: a header must not hide the key derivation from the bound.
    Legacy PEM encryption (``Proc-Type: 4,ENCRYPTED``) derives its key with one MD5 round:
    nothing to bound.
    """
    lines = pem.strip().splitlines()[1:-1]
    if lines and b":" in lines[0]:
        if any(line.startswith(b"Proc-Type:") for line in lines):
            return None
        blank = next((i for i, line in enumerate(lines) if not line.strip()), len(lines))
        lines = lines[blank + 1 :]
    try:
        return binascii.a2b_base64(b"".join(lines))
    except binascii.Error:
        return None
