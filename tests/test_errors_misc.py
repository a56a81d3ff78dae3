"""Error-model details: FrozenInstanceError is public, and errno is the platform's, not Linux's."""

from __future__ import annotations

import asyncio
import errno
import pickle
import socket
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

import securelink
from securelink import aio, devca, errors
from securelink.errors import FrozenInstanceError, NothingListeningError

LOOPBACK = "127.0.0.1"
TIMEOUT = 10.0


@contextmanager
def refusing_port() -> Iterator[int]:
    """A port on 127.0.0.1 that refuses connections: bound, never listening, held until the end.

    Holding the bound socket (rather than releasing it, as a "closed port" helper does) means no
    other process can start listening there in the meantime.
    """
    with socket.socket() as holder:
        holder.bind((LOOPBACK, 0))
        port: int = holder.getsockname()[1]
        yield port


class TestFrozenInstanceError:
    """Assigning to a frozen value raises a public, documented, structured error."""

    def test_public(self) -> None:
        """Importable from securelink.errors and securelink, and part of the error tree."""
        assert "FrozenInstanceError" in errors.__all__
        assert "FrozenInstanceError" in securelink.__all__
        assert securelink.FrozenInstanceError is errors.FrozenInstanceError
        assert FrozenInstanceError.__module__ == "securelink.errors"
        assert issubclass(FrozenInstanceError, securelink.SecureLinkError)
        assert issubclass(FrozenInstanceError, AttributeError)

    def test_assigning_an_option(self) -> None:
        """The class, the field and a hint naming replace() with that field."""
        options = securelink.ClientOptions()
        with pytest.raises(AttributeError) as info:
            options.alpn = ("h2",)  # type: ignore[misc]
        e = info.value
        assert type(e) is FrozenInstanceError
        assert (e.type_name, e.field) == ("ClientOptions", "alpn")
        assert e.message == "ClientOptions is frozen: 'alpn' cannot be changed."
        assert e.hint == "Make a changed copy with .replace(alpn=...)."
        assert options.alpn == ()  # unchanged

    def test_deleting_and_unknown_names(self) -> None:
        """Deleting a field, or setting a name that is not one, is refused the same way."""
        ca = devca.CertificateAuthority()
        leaf = ca.issue("localhost")
        options = securelink.ServerOptions(cert=leaf.certificate, key=leaf.private_key)
        with pytest.raises(FrozenInstanceError) as deleted:
            del options.cert
        assert type(deleted.value) is FrozenInstanceError
        assert (deleted.value.type_name, deleted.value.field) == ("ServerOptions", "cert")
        assert "cannot be deleted" in deleted.value.message
        with pytest.raises(FrozenInstanceError) as unknown:
            options.ca = "ca.pem"  # not a field: mypy accepts it, because of __setattr__
        assert (unknown.value.type_name, unknown.value.field) == ("ServerOptions", "ca")
        assert unknown.value.hint.startswith("ServerOptions has no field 'ca'")

    def test_records_too(self) -> None:
        """The records securelink returns are frozen the same way."""
        ca = devca.CertificateAuthority()
        summary = securelink.CertificateSummary.from_certificate(ca.issue("localhost").certificate)
        with pytest.raises(FrozenInstanceError) as info:
            summary.subject = "CN=someone else"  # type: ignore[misc]
        assert type(info.value) is FrozenInstanceError
        assert (info.value.type_name, info.value.field) == ("CertificateSummary", "subject")

    def test_pickle(self) -> None:
        """It survives pickle with its class, text and fields, like every securelink error."""
        with pytest.raises(FrozenInstanceError) as info:
            securelink.ClientOptions().diagnose = False  # type: ignore[misc]
        back = pickle.loads(pickle.dumps(info.value))  # noqa: S301 - our own bytes
        assert type(back) is FrozenInstanceError
        assert str(back) == str(info.value)
        assert vars(back) == vars(info.value)
        assert back.field == "diagnose"


class TestRefusedErrno:
    """NothingListeningError.errno is the platform's ECONNREFUSED, taken from the refusal."""

    def test_connect(self) -> None:
        """A real refused connection: errno is the refusal's own, errno.ECONNREFUSED."""
        client = securelink.client_context()
        with refusing_port() as port:
            with pytest.raises(ConnectionRefusedError) as plain:
                socket.create_connection((LOOPBACK, port), timeout=TIMEOUT).close()
            with pytest.raises(NothingListeningError) as info:
                securelink.connect(LOOPBACK, port, client, timeout=TIMEOUT)
        e = info.value
        assert type(e) is NothingListeningError
        assert (e.host, e.port) == (LOOPBACK, port)
        assert e.errno == errno.ECONNREFUSED == plain.value.errno
        assert type(e.__cause__) is ConnectionRefusedError
        assert pickle.loads(pickle.dumps(e)).errno == errno.ECONNREFUSED  # noqa: S301

    def test_asyncio(self) -> None:
        """The same through securelink.aio.open_connection."""

        async def attempt(port: int) -> None:
            await aio.open_connection(
                LOOPBACK, port, securelink.ClientOptions(), server_hostname="localhost"
            )

        with refusing_port() as port, pytest.raises(NothingListeningError) as info:
            asyncio.run(attempt(port))
        assert type(info.value) is NothingListeningError
        assert (info.value.host, info.value.port) == (LOOPBACK, port)
        assert info.value.errno == errno.ECONNREFUSED

    def test_explain_keeps_the_original(self) -> None:
        """explain() keeps the original's errno, and gives ECONNREFUSED when it has none."""
        with refusing_port() as port, pytest.raises(ConnectionRefusedError) as plain:
            socket.create_connection((LOOPBACK, port), timeout=TIMEOUT).close()
        explained = securelink.explain(plain.value, peer=(LOOPBACK, port))
        assert type(explained) is NothingListeningError
        assert explained.errno == plain.value.errno == errno.ECONNREFUSED
        # An errno this platform would not give, to show whose errno is kept.
        other = securelink.explain(ConnectionRefusedError(errno.ECONNRESET, "refused"))
        assert type(other) is NothingListeningError
        assert other.errno == errno.ECONNRESET
        bare = securelink.explain(ConnectionRefusedError())
        assert type(bare) is NothingListeningError
        assert (bare.host, bare.port) == (None, None)
        assert bare.errno == errno.ECONNREFUSED
