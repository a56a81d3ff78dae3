"""ClientOptions and ServerOptions: frozen, keyword-only, and impossible combinations refused."""

from __future__ import annotations

import copy
import inspect
import pickle
import ssl
import sys
from typing import Any

import pytest

import securelink
from securelink import (
    PKCS12,
    ClientAuth,
    ClientOptions,
    ConfigurationError,
    SecureLinkError,
    ServerOptions,
    Trust,
)

CERT = b"-not-parsed-at-construction-"


def server(**kwargs: Any) -> ServerOptions:
    kwargs.setdefault("cert", "server.pem")
    kwargs.setdefault("key", "server.key")
    return ServerOptions(**kwargs)


class TestShape:
    """The option classes are frozen, keyword-only values."""

    def test_frozen(self) -> None:
        """Assigning to a field raises FrozenInstanceError."""
        options = ClientOptions()
        with pytest.raises(AttributeError, match=r"frozen; make a changed copy with \.replace"):
            options.min_version = ssl.TLSVersion.TLSv1_3  # type: ignore[misc]
        with pytest.raises(AttributeError):
            del options.ca

    def test_keyword_only(self) -> None:
        """Positional arguments are refused."""
        with pytest.raises(TypeError):
            ServerOptions("server.pem", "server.key")  # type: ignore[call-arg]

    def test_server_requires_cert(self) -> None:
        """A server cannot be described without a certificate."""
        with pytest.raises(TypeError):
            ServerOptions()  # type: ignore[call-arg]

    def test_side_specific_fields(self) -> None:
        """Client-only settings exist only on ClientOptions, server-only ones on ServerOptions."""
        client_fields = set(inspect.signature(ClientOptions).parameters)
        server_fields = set(inspect.signature(ServerOptions).parameters)
        assert "ca" in client_fields and "ca" not in server_fields
        assert {"client_auth", "client_ca"} <= server_fields
        assert not {"client_auth", "client_ca"} & client_fields

    def test_defaults(self) -> None:
        """The defaults are the secure ones: certifi, TLS 1.2 minimum, no client auth."""
        options = ClientOptions()
        assert options.ca is Trust.CERTIFI
        assert options.min_version is ssl.TLSVersion.TLSv1_2
        assert options.max_version is None
        assert options.cert is None and options.keylog is None
        assert server().client_auth is ClientAuth.NONE

    def test_sequences_become_tuples(self) -> None:
        """Lists given for sequences are stored as tuples, so options stay hashable."""
        options = ClientOptions(ca=["a.pem", "b.pem"], alpn=["h2", "http/1.1"])
        assert options.ca == ("a.pem", "b.pem")
        assert options.alpn == ("h2", "http/1.1")
        assert hash(options) == hash(ClientOptions(ca=("a.pem", "b.pem"), alpn=("h2", "http/1.1")))

    def test_replace_revalidates(self) -> None:
        """replace() runs the same checks as construction."""
        options = server()
        with pytest.raises(ConfigurationError) as info:
            options.replace(client_auth=ClientAuth.REQUIRE_AND_VERIFY)
        assert info.value.field == "client_ca"

    def test_replace(self) -> None:
        """replace() returns a changed copy and leaves the original alone."""
        options = ClientOptions(ca="ca.pem")
        changed = options.replace(min_version=ssl.TLSVersion.TLSv1_3)
        assert changed == ClientOptions(ca="ca.pem", min_version=ssl.TLSVersion.TLSv1_3)
        assert options.min_version is ssl.TLSVersion.TLSv1_2
        with pytest.raises(TypeError, match="no field 'colour'"):
            options.replace(colour="blue")

    @pytest.mark.skipif(sys.version_info < (3, 13), reason="copy.replace is new in Python 3.13")
    def test_copy_replace(self) -> None:
        """copy.replace() works on Python 3.13+."""
        replace = getattr(copy, "replace")  # noqa: B009 - absent before 3.13
        assert replace(server(), alpn=("h2",)).alpn == ("h2",)

    def test_pickle(self) -> None:
        """Options survive pickling."""
        options = server(client_auth=ClientAuth.REQUIRE_AND_VERIFY, client_ca=b"ca")
        assert pickle.loads(pickle.dumps(options)) == options  # noqa: S301 - our own bytes

    def test_repr_hides_secrets(self) -> None:
        """repr() shows paths but never passwords or in-memory key bytes."""
        options = server(key=b"-----BEGIN PRIVATE KEY-----secret", password="hunter2")
        text = repr(options)
        assert "hunter2" not in text and "secret" not in text
        assert "password=<hidden>" in text
        assert "key=<33 bytes>" in text
        assert "cert='server.pem'" in text

    def test_equal_options_are_equal(self) -> None:
        """Options built from the same values compare equal and hash alike."""
        assert ClientOptions(ca="ca.pem") == ClientOptions(ca="ca.pem")
        assert hash(ClientOptions(ca="ca.pem")) == hash(ClientOptions(ca="ca.pem"))

    def test_single_and_sequence_spellings_are_equal(self) -> None:
        """cert=x and cert=(x,) describe the same options, so they share a context."""
        assert ClientOptions(ca="ca.pem") == ClientOptions(ca=["ca.pem"])
        assert server(cert="s.pem") == server(cert=("s.pem",))
        assert hash(server(cert="s.pem")) == hash(server(cert=["s.pem"]))
        assert server(cert="s.pem") != server(cert="other.pem")


class TestConfigurationErrors:
    """Impossible or insecure combinations raise ConfigurationError naming the field."""

    @pytest.mark.parametrize(
        ("build", "field", "words"),
        [
            (lambda: ClientOptions(cert="c.pem"), "key", "without key"),
            (lambda: ClientOptions(key="c.key"), "cert", "key was given without cert"),
            (lambda: ServerOptions(cert="c.pem"), "key", "without key"),
            (lambda: ServerOptions(cert=(), key="k"), "cert", "empty sequence"),
            (
                lambda: server(client_auth=ClientAuth.REQUIRE_AND_VERIFY),
                "client_ca",
                "REQUIRE_AND_VERIFY needs client_ca",
            ),
            (
                lambda: server(client_auth=ClientAuth.VERIFY_IF_GIVEN),
                "client_ca",
                "VERIFY_IF_GIVEN needs client_ca",
            ),
            (lambda: server(client_ca="ca.pem"), "client_auth", "client_auth is NONE"),
            (
                lambda: server(client_auth=ClientAuth.REQUIRE_AND_VERIFY, client_ca=Trust.CERTIFI),
                "client_ca",
                "public trust store",
            ),
            (lambda: server(client_auth="required"), "client_auth", "ClientAuth member"),
            (lambda: ClientOptions(min_version=ssl.TLSVersion.TLSv1), "min_version", "TLSv1 "),
            (lambda: ClientOptions(min_version=ssl.TLSVersion.TLSv1_1), "min_version", "TLSv1_1"),
            (lambda: server(min_version=ssl.TLSVersion.SSLv3), "min_version", "below 1.2"),
            (
                lambda: ClientOptions(min_version=ssl.TLSVersion.MINIMUM_SUPPORTED),
                "min_version",
                "MINIMUM_SUPPORTED",
            ),
            (lambda: ClientOptions(max_version=ssl.TLSVersion.TLSv1_1), "max_version", "TLSv1_1"),
            (
                lambda: ClientOptions(
                    min_version=ssl.TLSVersion.TLSv1_3, max_version=ssl.TLSVersion.TLSv1_2
                ),
                "max_version",
                "is above max_version",
            ),
            (lambda: ClientOptions(min_version="1.2"), "min_version", "ssl.TLSVersion"),  # type: ignore[arg-type]
            (lambda: ClientOptions(alpn="h2"), "alpn", "sequence of protocol names"),
            (lambda: ClientOptions(alpn=("h2", "")), "alpn", "non-empty"),
            (lambda: ClientOptions(alpn=("h2", "h2")), "alpn", "twice"),
            (lambda: ClientOptions(alpn=("x" * 256,)), "alpn", "1 to 255 bytes"),
            (lambda: ClientOptions(alpn=("hé",)), "alpn", "ASCII"),
            (lambda: ClientOptions(ca=None), "ca", "trust nothing"),  # type: ignore[arg-type]
            (lambda: ClientOptions(ca=()), "ca", "empty sequence"),
            (lambda: ClientOptions(ca=""), "ca", "empty path"),
            (lambda: ClientOptions(ca=b""), "ca", "empty bytes"),
            (
                lambda: ClientOptions(ca="-----BEGIN CERTIFICATE-----\nMIIB..."),
                "ca",
                "PEM text as a str",
            ),
            (
                lambda: ServerOptions(cert=PKCS12(b"p12"), key="k.pem"),
                "key",
                "already holds the key",
            ),
            (
                lambda: ServerOptions(cert=(PKCS12(b"p12"), "chain.pem")),  # type: ignore[arg-type]
                "cert",
                "mixes a PKCS12",
            ),
            (lambda: PKCS12(42), "cert", "path or bytes"),  # type: ignore[arg-type]
            (lambda: ClientOptions(password="secret"), "password", "no key"),
            (lambda: server(password=1234), "password", "str, bytes or a callable"),
            (lambda: server(keylog=3), "keylog", "must be a path"),
            (lambda: server(keylog=""), "keylog", "empty path"),
        ],
    )
    def test_refused(self, build: Any, field: str, words: str) -> None:
        """Each bad combination raises ConfigurationError with the right field and a hint."""
        with pytest.raises(ConfigurationError) as info:
            build()
        error = info.value
        assert type(error) is ConfigurationError
        assert error.field == field
        assert error.hint
        assert words in str(error) or words in error.message

    def test_password_without_key_message(self) -> None:
        """The message for a stray password says there is nothing to unlock."""
        with pytest.raises(ConfigurationError) as info:
            ClientOptions(password="secret")
        assert info.value.message == (
            "password was given, but there is no key or PKCS12 bundle for it to unlock."
        )

    def test_is_value_error(self) -> None:
        """ConfigurationError is a ValueError and a SecureLinkError, so old except clauses work."""
        with pytest.raises(ValueError, match="min_version"):
            ClientOptions(min_version=ssl.TLSVersion.TLSv1)
        assert issubclass(ConfigurationError, SecureLinkError)


class TestAccepted:
    """Valid combinations, including the less common ones, are accepted."""

    def test_combined_trust(self) -> None:
        """A private CA can be added to the certifi bundle."""
        options = ClientOptions(ca=(Trust.CERTIFI, "corp-ca.pem"))
        assert options.ca == (Trust.CERTIFI, "corp-ca.pem")

    def test_pkcs12_identity(self) -> None:
        """A PKCS12 bundle stands for cert and key, unlocked by password."""
        options = ServerOptions(cert=PKCS12("server.p12"), password="changeit")
        assert options.key is None
        assert isinstance(options.cert, PKCS12)

    def test_same_path_for_cert_and_key(self) -> None:
        """A combined PEM file is passed as both cert and key."""
        options = server(cert="both.pem", key="both.pem")
        assert options.cert == options.key

    def test_tls13_only(self) -> None:
        """A TLS 1.3-only configuration is allowed."""
        options = ClientOptions(min_version=ssl.TLSVersion.TLSv1_3)
        assert options.min_version is ssl.TLSVersion.TLSv1_3

    def test_bytearray_source(self) -> None:
        """A bytearray is stored as bytes."""
        options = ClientOptions(ca=[bytearray(b"der")])  # type: ignore[list-item]
        assert options.ca == (b"der",)

    def test_public_names(self) -> None:
        """The package exports exactly the documented public names."""
        assert len(set(securelink.__all__)) == len(securelink.__all__)
        for name in securelink.__all__:
            assert getattr(securelink, name) is not None
