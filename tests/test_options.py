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
    Identity,
    Profile,
    SecureLinkError,
    ServerOptions,
    Trust,
    UnknownNames,
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
        with pytest.raises(AttributeError, match=r"frozen: .* copy with \.replace\(min_version="):
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


def _identity(**kwargs: Any) -> Identity:
    kwargs.setdefault("cert", "server.pem")
    kwargs.setdefault("key", "server.key")
    return Identity(**kwargs)


#: For each field: a way to build options with a value for it, and what types it accepts.
_BUILDERS: dict[str, Any] = {
    "ServerOptions.cert": (lambda v: server(cert=v), "cert"),
    "ServerOptions.key": (lambda v: server(key=v), "key"),
    "ServerOptions.client_ca": (
        lambda v: server(client_auth=ClientAuth.REQUIRE_AND_VERIFY, client_ca=v),
        "client_ca",
    ),
    "ServerOptions.password": (lambda v: server(password=v), "password"),
    "ServerOptions.alpn": (lambda v: server(alpn=("h2", v)), "alpn"),
    "ServerOptions.certificates_by_name": (
        lambda v: server(certificates_by_name={"api.test": v}),
        "certificates_by_name",
    ),
    "ClientOptions.ca": (lambda v: ClientOptions(ca=v), "ca"),
    "ClientOptions.cert": (lambda v: ClientOptions(cert=v, key="client.key"), "cert"),
    "ClientOptions.key": (lambda v: ClientOptions(cert="client.pem", key=v), "key"),
    "ClientOptions.password": (
        lambda v: ClientOptions(cert="c.pem", key="c.key", password=v),
        "password",
    ),
    "ClientOptions.alpn": (lambda v: ClientOptions(alpn=[v]), "alpn"),
    "Identity.cert": (lambda v: _identity(cert=v), "cert"),
    "Identity.key": (lambda v: _identity(key=v), "key"),
}

_BAD_VALUES: list[Any] = [1234, 1.5, True, object(), {"a.pem": 1}, ["ok.pem", 1234]]


class TestTypes:
    """A value of the wrong type is refused at construction, naming the field and the types."""

    @pytest.mark.parametrize("where", sorted(_BUILDERS))
    @pytest.mark.parametrize("value", _BAD_VALUES, ids=lambda v: type(v).__name__)
    def test_wrong_type(self, where: str, value: Any) -> None:
        """Numbers, booleans, dicts, arbitrary objects and lists holding them all fail early."""
        build, field = _BUILDERS[where]
        if field in ("alpn", "password", "certificates_by_name", "key") and isinstance(value, list):
            value = 1234  # those fields take no sequence of sources: the list case is cert/ca
        with pytest.raises(ConfigurationError) as info:
            build(value)
        error = info.value
        assert type(error) is ConfigurationError
        assert error.field == field
        assert error.hint
        shown = type(value[1] if isinstance(value, list) else value).__name__
        assert shown in error.message

    @pytest.mark.parametrize(
        ("build", "field", "accepted"),
        [
            (
                lambda: server(cert=1234),
                "cert",
                "a path (str or os.PathLike), PEM or DER bytes, a cryptography"
                " x509.Certificate, a sequence of these (leaf first), or a securelink.PKCS12"
                " bundle, not int (1234).",
            ),
            (
                lambda: server(key=1234),
                "key",
                "a path (str or os.PathLike), PEM or DER bytes, or a cryptography private key"
                " object, not int (1234).",
            ),
            (
                lambda: ClientOptions(ca=1234),  # type: ignore[arg-type]
                "ca",
                "a securelink.Trust member, a path (str or os.PathLike) to a file or directory,"
                " PEM or DER bytes, a cryptography x509.Certificate, or a sequence of these, not"
                " int (1234).",
            ),
            (
                lambda: server(client_auth=ClientAuth.REQUIRE_AND_VERIFY, client_ca=1234),
                "client_ca",
                "a path (str or os.PathLike) to a file or directory, PEM or DER bytes, a"
                " cryptography x509.Certificate, or a sequence of these, not int (1234).",
            ),
        ],
    )
    def test_message_lists_accepted_types(self, build: Any, field: str, accepted: str) -> None:
        """The message names the field and every type it takes, then what it got."""
        with pytest.raises(ConfigurationError) as info:
            build()
        assert info.value.field == field
        assert info.value.message == f"{field} must be {accepted}"

    def test_set_of_sources(self) -> None:
        """A set has no order, so several CAs go in a list or tuple; the hint says so."""
        with pytest.raises(ConfigurationError) as info:
            ClientOptions(ca={"a.pem", "b.pem"})  # type: ignore[arg-type]
        assert info.value.field == "ca"
        assert (
            info.value.hint == "Pass several sources for ca as a list or tuple (the order matters)."
        )

    def test_alpn_bytes_entry(self) -> None:
        """ALPN names are str: bytes entries name their type."""
        with pytest.raises(ConfigurationError) as info:
            ClientOptions(alpn=[b"h2"])  # type: ignore[list-item]
        assert info.value.field == "alpn"
        assert "(bytes); every entry must be a non-empty str" in info.value.message

    def test_objects_accepted(self, server_cert: Any) -> None:
        """Certificate and key objects of cryptography, paths and bytes are accepted."""
        from pathlib import Path

        options = server(
            cert=(server_cert.certificate, Path("chain.pem"), b"der"),
            key=server_cert.private_key,
        )
        assert options.key is server_cert.private_key
        client = ClientOptions(ca=(Trust.SYSTEM, server_cert.root, Path("ca.pem")))
        assert client.ca == (Trust.SYSTEM, server_cert.root, Path("ca.pem"))
        assert server(key=bytearray(b"key")).key == b"key"

    def test_checked_without_importing_cryptography(self) -> None:
        """The type check does not import cryptography (`import securelink` stays cheap)."""
        import subprocess
        import sys

        code = (
            "import sys, securelink\n"
            "try:\n"
            "    securelink.ClientOptions(ca=1234)\n"
            "except securelink.ConfigurationError as e:\n"
            "    assert e.field == 'ca'\n"
            "print('cryptography' in sys.modules)\n"
        )
        result = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
        )
        assert result.stdout.strip() == "False"


class TestPKCS12AsPlainCert:
    """PKCS#12 bytes passed as plain cert= are recognised at construction."""

    def test_bytes(self, server_cert: Any) -> None:
        """Real PKCS#12 bytes without key= get a MaterialError saying how to pass a bundle."""
        from securelink import MaterialError

        bundle = server_cert.pkcs12("changeit")
        with pytest.raises(MaterialError) as info:
            ServerOptions(cert=bundle)
        error = info.value
        assert type(error) is MaterialError
        assert (error.source, error.found) == ("the in-memory certificate", "PKCS#12")
        assert "holds a PKCS#12 bundle" in error.message
        assert "cert=securelink.PKCS12(data) with password=" in error.hint

    def test_p12_path_is_left_to_the_build(self) -> None:
        """A path named .p12/.pfx is not read at construction: the context build says what it is."""
        assert ServerOptions(cert="server.p12").key is None
        assert ClientOptions(cert="client.PFX").key is None

    def test_other_paths_still_need_a_key(self) -> None:
        """Any other cert without key is refused at once, with the PKCS#12 way in the hint."""
        with pytest.raises(ConfigurationError) as info:
            ServerOptions(cert="server.pem")
        assert info.value.field == "key"
        assert "cert=securelink.PKCS12(path) with password=" in info.value.hint


class TestProfileVersions:
    """A profile sets the minimum version only when none was given; a contradiction fails."""

    @pytest.mark.parametrize(
        ("given", "words"),
        [
            ({"min_version": ssl.TLSVersion.TLSv1_2}, "min_version=TLSv1_2 was given"),
            ({"max_version": ssl.TLSVersion.TLSv1_2}, "max_version=TLSv1_2 was given"),
            (
                {"min_version": ssl.TLSVersion.TLSv1_2, "max_version": ssl.TLSVersion.TLSv1_3},
                "min_version=TLSv1_2 was given",
            ),
        ],
    )
    def test_modern_contradicted(self, given: dict[str, ssl.TLSVersion], words: str) -> None:
        """MODERN with a version below TLS 1.3 given explicitly fails at construction."""
        with pytest.raises(ConfigurationError) as info:
            server(profile=Profile.MODERN, **given)
        assert type(info.value) is ConfigurationError
        assert info.value.field == "profile"
        assert "profile=MODERN is TLS 1.3 only" in info.value.message
        assert words in info.value.message
        assert "Profile.INTERMEDIATE" in info.value.hint

    @pytest.mark.parametrize(
        ("profile", "given", "expected"),
        [
            (Profile.INTERMEDIATE, {}, ssl.TLSVersion.TLSv1_2),
            (Profile.MODERN, {}, ssl.TLSVersion.TLSv1_3),
            (Profile.MODERN, {"min_version": None}, ssl.TLSVersion.TLSv1_3),
            (Profile.MODERN, {"min_version": ssl.TLSVersion.TLSv1_3}, ssl.TLSVersion.TLSv1_3),
            (Profile.MODERN, {"max_version": ssl.TLSVersion.TLSv1_3}, ssl.TLSVersion.TLSv1_3),
            (
                Profile.INTERMEDIATE,
                {"min_version": ssl.TLSVersion.TLSv1_3},
                ssl.TLSVersion.TLSv1_3,
            ),
        ],
    )
    def test_consistent(
        self, profile: Profile, given: dict[str, ssl.TLSVersion | None], expected: ssl.TLSVersion
    ) -> None:
        """Left out, the minimum is the profile's; given and consistent, it is kept."""
        assert server(profile=profile, **given).min_version is expected

    def test_below_tls12_is_still_about_the_version(self) -> None:
        """A version securelink never offers is reported on its own field, whatever the profile."""
        with pytest.raises(ConfigurationError) as info:
            server(profile=Profile.MODERN, min_version=ssl.TLSVersion.TLSv1_1)
        assert type(info.value) is ConfigurationError
        assert info.value.field == "min_version"

    def test_replace_profile_takes_its_minimum(self) -> None:
        """replace(profile=...) of a minimum left out takes the new profile's minimum both ways."""
        modern = server().replace(profile=Profile.MODERN)
        assert modern.min_version is ssl.TLSVersion.TLSv1_3
        back = modern.replace(profile=Profile.INTERMEDIATE)
        assert back.min_version is ssl.TLSVersion.TLSv1_2
        assert back == server()

    def test_replace_keeps_a_given_minimum(self) -> None:
        """A minimum given explicitly stays given: replace(profile=MODERN) then contradicts it."""
        explicit = server(min_version=ssl.TLSVersion.TLSv1_2)
        with pytest.raises(ConfigurationError) as info:
            explicit.replace(profile=Profile.MODERN)
        assert type(info.value) is ConfigurationError
        assert info.value.field == "profile"
        strict = server(min_version=ssl.TLSVersion.TLSv1_3, profile=Profile.MODERN)
        assert strict.replace(profile=Profile.INTERMEDIATE).min_version is ssl.TLSVersion.TLSv1_3

    def test_pickle_keeps_a_minimum_left_out(self) -> None:
        """A pickled copy still lets replace(profile=MODERN) choose the minimum."""
        copied = pickle.loads(pickle.dumps(server()))  # noqa: S301 - our own bytes
        assert copied == server()
        assert copied.replace(profile=Profile.MODERN).min_version is ssl.TLSVersion.TLSv1_3

    @pytest.mark.skipif(sys.version_info < (3, 13), reason="copy.replace is new in Python 3.13")
    def test_copy_replace_profile(self) -> None:
        """copy.replace() follows the same rule as replace()."""
        replace = getattr(copy, "replace")  # noqa: B009 - absent before 3.13
        modern = replace(server(), profile=Profile.MODERN)
        assert modern.min_version is ssl.TLSVersion.TLSv1_3


class TestUnknownNames:
    """unknown_names is an UnknownNames member."""

    def test_members(self) -> None:
        """Two members, DEFAULT the default, exported from the package."""
        assert list(UnknownNames) == [UnknownNames.DEFAULT, UnknownNames.REJECT]
        assert server().unknown_names is UnknownNames.DEFAULT
        assert server(unknown_names=UnknownNames.REJECT).unknown_names is UnknownNames.REJECT
        assert securelink.UnknownNames is UnknownNames
        assert "UnknownNames" in securelink.__all__

    def test_string_refused(self) -> None:
        """The 0.1 strings are refused with the member to use instead."""
        with pytest.raises(ConfigurationError) as info:
            server(unknown_names="reject")
        assert type(info.value) is ConfigurationError
        assert info.value.field == "unknown_names"
        assert info.value.hint.startswith("Use UnknownNames.REJECT:")
