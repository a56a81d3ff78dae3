"""Mutation fuzzing of certificates, keys, chains and PKCS#12 bundles through securelink's loaders.

Shared by ``tests/test_fuzz.py`` (a few hundred inputs, every CI run) and
``fuzz/fuzz_material.py`` (tens of thousands, run by hand).  Each input is a mutation of a
development-CA object (:mod:`securelink.devca`): bit flips, truncations, insertions and deletions,
DER length fields made wrong, OIDs swapped for other OIDs of the same length (so that the
structure still parses and the damage is found only when a field is read), EC points moved off
their curve, and PEM text damage.  It is passed through ``ClientOptions(ca=...)`` and
:func:`securelink.client_context`, ``ServerOptions(cert=..., key=...)`` and
:func:`securelink.server_context`, and :func:`securelink.inspect`.  Only securelink's documented
exceptions for those paths may come out: :class:`securelink.MaterialError` (and its subclasses)
and :class:`securelink.ConfigurationError`.

The mutations are drawn from ``random.Random(seed)``; the seed objects are made fresh each run (keys
are random), so a failure is reported with the input that caused it, to be replayed with
:func:`run_one`.
"""

from __future__ import annotations

import base64
import dataclasses
import random
import re
import time
import traceback
import warnings
from collections.abc import Callable, Iterator

from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes

import securelink
from securelink import devca

#: What these paths are documented to raise.
EXPECTED: tuple[type[Exception], ...] = (securelink.MaterialError, securelink.ConfigurationError)
PASSWORD = b"fuzz-password"


@dataclasses.dataclass(frozen=True)
class Seed:
    """One well-formed object to mutate.

    Attributes:
        name: What it is, for reports.
        role: How it is used: ``"ca"``, ``"cert"`` (a chain, given as ``cert=``), ``"key"``,
            ``"identity"`` (chain and key in one PEM), ``"pkcs12"``, or ``"inspect"`` (CSRs,
            CRLs and mixed files, which only :func:`securelink.inspect` reads).
        data: Its bytes.
    """

    name: str
    role: str
    data: bytes


@dataclasses.dataclass(frozen=True)
class Corpus:
    """The seeds, and the good material each use is completed with."""

    seeds: tuple[Seed, ...]
    chain_pem: bytes
    key_pem: bytes


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What one call made of one input.

    Attributes:
        target: Which call (``"client_context"``, ``"server_context"``, ``"inspect"``).
        seconds: How long it took.
        error: The exception's class name, or ``None``.
        foreign: Whether that exception is not one of :data:`EXPECTED`.
        detail: The message and the innermost frames of a foreign exception.
    """

    target: str
    seconds: float
    error: str | None
    foreign: bool
    detail: str = ""


def corpus() -> Corpus:
    """Make the seeds: CAs, leaves, chains, keys, bundles, PEM and DER, EC and RSA."""
    from tests.pki import der, key_der, key_pem, pem

    root = devca.CertificateAuthority(common_name="fuzz root")
    rsa_root = devca.CertificateAuthority(common_name="fuzz rsa root", key_type="rsa")
    inter = root.intermediate(common_name="fuzz intermediate")
    leaf = inter.issue("localhost", "127.0.0.1", "spiffe://fuzz.test/leaf")
    rsa_leaf = rsa_root.issue("rsa.localhost", key_type="rsa")
    seeds = [
        Seed("ca.pem", "ca", pem(root.certificate)),
        Seed("ca.der", "ca", der(root.certificate)),
        Seed("rsa-ca.pem", "ca", pem(rsa_root.certificate)),
        Seed("intermediate.der", "ca", der(inter.certificate)),
        Seed("ca-bundle.pem", "ca", pem(root.certificate) + pem(rsa_root.certificate)),
        Seed("chain.pem", "cert", leaf.chain_pem),
        Seed("leaf.der", "cert", der(leaf.certificate)),
        Seed("rsa-leaf.pem", "cert", rsa_leaf.cert_pem),
        Seed("key.pem", "key", leaf.key_pem),
        Seed("key-sec1.pem", "key", key_pem(leaf.private_key, fmt="traditional")),
        Seed("key.der", "key", key_der(leaf.private_key)),
        Seed("key-encrypted.pem", "key", leaf.encrypted_key_pem(PASSWORD)),
        Seed("rsa-key.der", "key", key_der(rsa_leaf.private_key, fmt="traditional")),
        Seed("identity.pem", "identity", leaf.chain_pem + leaf.key_pem),
        Seed("bundle.p12", "pkcs12", leaf.pkcs12()),
        Seed("bundle-password.p12", "pkcs12", leaf.pkcs12(PASSWORD)),
        Seed("legacy-encrypted-rsa.key", "key", _legacy_encrypted(rsa_leaf.private_key)),
        Seed(
            "trusted-ca.pem",
            "ca",
            pem(root.certificate).replace(b"CERTIFICATE-----", b"TRUSTED CERTIFICATE-----"),
        ),
        Seed("csr.pem", "inspect", devca.create_csr("csr.localhost").csr_pem),
        Seed("crl.der", "inspect", _crl(root)),
        Seed("everything.pem", "inspect", leaf.chain_pem + leaf.key_pem + pem(root.certificate)),
    ]
    return Corpus(tuple(seeds), leaf.chain_pem, leaf.key_pem)


def _legacy_encrypted(key: CertificateIssuerPrivateKeyTypes) -> bytes:
    """*key* in the traditional PEM form with the legacy ``Proc-Type: 4,ENCRYPTED`` encryption."""
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.BestAvailableEncryption(PASSWORD),
    )


def _crl(ca: devca.CertificateAuthority) -> bytes:
    """A CRL from *ca* that revokes one serial number, as DER."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization

    now = datetime.datetime.now(datetime.UTC)
    revoked = x509.RevokedCertificateBuilder().serial_number(1234).revocation_date(now).build()
    crl = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.certificate.subject)
        .last_update(now)
        .next_update(now + datetime.timedelta(days=7))
        .add_revoked_certificate(revoked)
        .sign(ca.private_key, hashes.SHA256())
    )
    return crl.public_bytes(serialization.Encoding.DER)


# ---------------------------------------------------------------------------------------------
# DER structure


def _tlvs(
    data: bytes, start: int = 0, end: int | None = None, depth: int = 0
) -> Iterator[tuple[int, int, int, int]]:
    """Yield (offset, header length, content length, tag) of every TLV, depth first.

    Constructed values are entered, and so are BIT and OCTET STRINGs that hold DER (extension
    values, public keys).  Stops quietly where the data stops being DER.
    """
    end = len(data) if end is None else end
    i = start
    while i + 2 <= end and depth < 12:
        tag, first = data[i], data[i + 1]
        header = 2
        if first & 0x80:
            n = first & 0x7F
            if n == 0 or n > 4 or i + 2 + n > end:
                return
            size = int.from_bytes(data[i + 2 : i + 2 + n], "big")
            header += n
        else:
            size = first
        if i + header + size > end:
            return
        yield i, header, size, tag
        inner = i + header
        if tag == 0x03 and size > 1:
            inner += 1  # the unused-bits byte
        if tag & 0x20 or (
            tag in (0x03, 0x04) and inner < i + header + size and data[inner] == 0x30
        ):
            yield from _tlvs(data, inner, i + header + size, depth + 1)
        i += header + size


#: OIDs (their content bytes) that mutations swap in, grouped by length so the swap keeps the
#: structure intact: extensions (2.5.29.x), key and curve algorithms, signature algorithms.
_OIDS: tuple[bytes, ...] = (
    *(bytes([0x55, 0x1D, n]) for n in (14, 15, 17, 19, 31, 32, 35, 37, 30, 18, 99)),
    bytes.fromhex("2a8648ce3d0201"),  # id-ecPublicKey
    bytes.fromhex("2a8648ce3d0202"),  # unknown, same arc
    bytes.fromhex("2a8648ce3d030107"),  # prime256v1
    bytes.fromhex("2a8648ce3d03017f"),  # unknown curve
    bytes.fromhex("2a8648ce3d040302"),  # ecdsa-with-SHA256
    bytes.fromhex("2a8648ce3d040301"),  # ecdsa-with-SHA224
    bytes.fromhex("2a8648ce3d040101"),  # ecdsa-with-SHA1
    bytes.fromhex("2a864886f70d010101"),  # rsaEncryption
    bytes.fromhex("2a864886f70d01010b"),  # sha256WithRSAEncryption
    bytes.fromhex("2a864886f70d010105"),  # sha1WithRSAEncryption
    bytes.fromhex("2a864886f70d01010a"),  # RSASSA-PSS
    bytes.fromhex("2a864886f70d01017f"),  # unknown
    bytes.fromhex("2b81040022"),  # secp384r1
    bytes.fromhex("2b81040023"),  # secp521r1
    bytes.fromhex("2b6570"),  # Ed25519
    bytes.fromhex("2b6571"),  # Ed448
    bytes.fromhex("2b656e"),  # X25519
    bytes.fromhex("550403"),  # commonName
    bytes.fromhex("55040a"),  # organizationName
)


def _replace(data: bytes, at: int, size: int, new: bytes) -> bytes:
    return data[:at] + new + data[at + size :]


def _mutate_der(rng: random.Random, data: bytes) -> bytes:
    """One structural or byte-level mutation of DER *data*."""
    if not data:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 16)))
    tlvs = list(_tlvs(data))
    choice = rng.randrange(10)
    if choice == 0:  # bit flips
        out = bytearray(data)
        for _ in range(rng.randrange(1, 5)):
            i = rng.randrange(len(out))
            out[i] ^= 1 << rng.randrange(8)
        return bytes(out)
    if choice == 1:  # truncation
        return data[: rng.randrange(len(data))]
    if choice == 2:  # insertion
        at = rng.randrange(len(data) + 1)
        return data[:at] + bytes(rng.randrange(256) for _ in range(rng.randrange(1, 9))) + data[at:]
    if choice == 3:  # deletion
        at = rng.randrange(len(data))
        return data[:at] + data[at + rng.randrange(1, 9) :]
    if choice == 4 and tlvs:  # a length field made wrong
        at, header, size, _ = rng.choice(tlvs)
        new = rng.choice(
            [size + 1, max(size - 1, 0), 0, size * 2 + 1, 0x7F, 0xFFFF, 0x7FFFFFFF, -1]
        )
        if new < 0:
            length = b"\x80"  # indefinite: not DER
        elif new < 0x80 and rng.random() < 0.7:
            length = bytes([new])
        else:
            n = max(1, (new.bit_length() + 7) // 8)
            length = bytes([0x80 | n]) + new.to_bytes(n, "big")
        return data[: at + 1] + length + data[at + header :]
    oids = [t for t in tlvs if t[3] == 0x06 and t[2] > 0]
    if choice in (5, 6) and oids:  # an OID swapped for another of the same length
        at, header, size, _ = rng.choice(oids)
        same = [o for o in _OIDS if len(o) == size]
        if same and rng.random() < 0.8:
            oid = rng.choice(same)
        else:
            content = bytearray(data[at + header : at + header + size])
            content[-1] = rng.randrange(0x80)
            oid = bytes(content)
        return _replace(data, at + header, size, oid)
    points = [
        t for t in tlvs if t[3] == 0x03 and data[t[0] + t[1] : t[0] + t[1] + 2] == b"\x00\x04"
    ]
    if choice == 7 and points:  # an EC point moved off its curve
        at, header, size, _ = rng.choice(points)
        out = bytearray(data)
        i = at + header + 2 + rng.randrange(max(size - 2, 1))
        if i < len(out):
            out[i] ^= 1 << rng.randrange(8)
        return bytes(out)
    if choice == 8 and tlvs:  # a TLV's tag changed
        at, _, _, _ = rng.choice(tlvs)
        tag = rng.choice(
            [
                0x01,
                0x02,
                0x03,
                0x04,
                0x05,
                0x06,
                0x0C,
                0x13,
                0x17,
                0x18,
                0x30,
                0x31,
                0xA0,
                0xA3,
                0x80,
                0x1F,
            ]
        )
        return _replace(data, at, 1, bytes([tag]))
    if tlvs:  # a TLV duplicated or removed (parents' lengths are left wrong on purpose)
        at, header, size, _ = rng.choice(tlvs)
        piece = data[at : at + header + size]
        if rng.random() < 0.5:
            return data[: at + header + size] + piece + data[at + header + size :]
        return data[:at] + data[at + header + size :]
    return data[::-1]


_PEM = re.compile(
    rb"(-----BEGIN ([A-Z0-9 #]+)-----\r?\n)(.*?)(-----END [A-Z0-9 #]+-----\r?\n?)", re.DOTALL
)


def _mutate_pem(rng: random.Random, data: bytes) -> bytes:
    """Mutate one PEM block's DER (re-encoded), or damage the text itself."""
    blocks = list(_PEM.finditer(data))
    if blocks and rng.random() < 0.7:
        block = rng.choice(blocks)
        try:
            der = base64.b64decode(b"".join(block.group(3).split()))
        except ValueError:
            der = b""
        if der and not block.group(3).startswith(b"Proc-Type"):
            for _ in range(rng.choice((1, 1, 1, 2, 3))):
                der = _mutate_der(rng, der)
            body = base64.encodebytes(der)
            return data[: block.start(3)] + body + data[block.end(3) :]
    choice = rng.randrange(5)
    if choice == 0:  # text damage
        out = bytearray(data)
        for _ in range(rng.randrange(1, 4)):
            out[rng.randrange(len(out))] = rng.choice(b"-ABCZ=+/\n\r \x00\xff")
        return bytes(out)
    if choice == 1:  # a BEGIN or END line lost, doubled or renamed
        lines = data.splitlines(keepends=True)
        marks = [i for i, line in enumerate(lines) if line.startswith(b"-----")]
        if marks:
            i = rng.choice(marks)
            action = rng.randrange(3)
            if action == 0:
                del lines[i]
            elif action == 1:
                lines.insert(i, lines[i])
            else:
                label = rng.choice(
                    [b"CERTIFICATE", b"PRIVATE KEY", b"X509 CRL", b"PUBLIC KEY", b"FOO"]
                )
                lines[i] = (
                    lines[i][:11] + label + b"-----\n"
                    if lines[i].startswith(b"-----BEGIN")
                    else b"-----END " + label + b"-----\n"
                )
            return b"".join(lines)
    if choice == 2:  # blocks shuffled or repeated
        pieces = [m.group(0) for m in blocks] or [data]
        return b"".join(rng.choice(pieces) for _ in range(rng.randrange(1, 6)))
    if choice == 3:
        return data[: rng.randrange(len(data))]
    return _mutate_der(rng, data)


def mutate(rng: random.Random, seed: Seed) -> bytes:
    """One mutated input from *seed* (one to three mutations)."""
    data = seed.data
    if b"-----BEGIN" in data:
        return _mutate_pem(rng, data)
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        data = _mutate_der(rng, data)
    return data


# ---------------------------------------------------------------------------------------------
# Running


def _calls(seed: Seed, data: bytes, corpus: Corpus) -> list[tuple[str, Callable[[], object]]]:
    if seed.role == "ca":
        return [
            (
                "client_context",
                lambda: securelink.client_context(securelink.ClientOptions(ca=data)),
            ),
            (
                "server_context",
                lambda: securelink.server_context(
                    securelink.ServerOptions(
                        cert=corpus.chain_pem,
                        key=corpus.key_pem,
                        client_ca=data,
                        client_auth=securelink.ClientAuth.REQUIRE_AND_VERIFY,
                    )
                ),
            ),
            ("inspect", lambda: securelink.inspect(data)),
        ]
    if seed.role == "cert":
        return [
            (
                "server_context",
                lambda: securelink.server_context(
                    securelink.ServerOptions(cert=data, key=corpus.key_pem)
                ),
            ),
            (
                "client_context",
                lambda: securelink.client_context(securelink.ClientOptions(ca=data)),
            ),
            ("inspect", lambda: securelink.inspect(data)),
        ]
    if seed.role == "key":
        return [
            (
                "server_context",
                lambda: securelink.server_context(
                    securelink.ServerOptions(cert=corpus.chain_pem, key=data, password=PASSWORD)
                ),
            ),
            ("inspect", lambda: securelink.inspect(data, password=PASSWORD)),
        ]
    if seed.role == "identity":
        return [
            (
                "server_context",
                lambda: securelink.server_context(securelink.ServerOptions(cert=data, key=data)),
            ),
            ("inspect", lambda: securelink.inspect(data)),
        ]
    if seed.role == "inspect":
        return [("inspect", lambda: securelink.inspect(data, password=PASSWORD))]
    assert seed.role == "pkcs12", seed.role
    return [
        (
            "server_context",
            lambda: securelink.server_context(
                securelink.ServerOptions(cert=securelink.PKCS12(data), password=PASSWORD)
            ),
        ),
        ("inspect", lambda: securelink.inspect(data, password=PASSWORD)),
    ]


def run_one(seed: Seed, data: bytes, corpus: Corpus) -> list[Outcome]:
    """Pass *data* (a mutation of *seed*) through every call its role allows."""
    outcomes = []
    for target, call in _calls(seed, data, corpus):
        start = time.perf_counter()
        error: BaseException | None = None
        with warnings.catch_warnings():
            # SecurityWarning (an expired CA among others, a readable key file) is a warning,
            # not an exception: the suite turns warnings into errors, the fuzzer does not.
            warnings.simplefilter("ignore")
            try:
                call()
            except Exception as exc:  # classifying every exception is the point
                error = exc
        seconds = time.perf_counter() - start
        foreign = error is not None and not isinstance(error, EXPECTED)
        detail = ""
        if foreign:
            assert error is not None
            frames = traceback.extract_tb(error.__traceback__)[-3:]
            detail = (
                f"{type(error).__module__}.{type(error).__qualname__}: {error} at "
                + " <- ".join(
                    f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno} {f.name}" for f in reversed(frames)
                )
            )
        outcomes.append(
            Outcome(target, seconds, type(error).__name__ if error else None, foreign, detail)
        )
    return outcomes


def inputs(corpus: Corpus, seed: int, count: int) -> Iterator[tuple[int, Seed, bytes]]:
    """Yield *count* (number, seed object, mutated input), deterministically from *seed*."""
    rng = random.Random(seed)  # noqa: S311 - reproducible mutations, not secrets
    for n in range(count):
        obj = corpus.seeds[n % len(corpus.seeds)]
        yield n, obj, mutate(rng, obj)


def encode(data: bytes) -> str:
    """*data* as base64, for a report a failure can be replayed from."""
    return base64.b64encode(data).decode()
