"""Every public name is documented, so the API reference cannot drift from the code."""

from __future__ import annotations

import importlib
import inspect
import re
import socket
import threading
from pathlib import Path
from types import ModuleType

import pytest

import securelink
from securelink import devca

DOCS = Path(__file__).resolve().parent.parent / "docs"

#: The public modules, each with its own "## module" section on docs/api.md.
MODULES = [
    "securelink",
    "securelink.errors",
    "securelink.aio",
    "securelink.devca",
    "securelink.requests_adapter",
]

#: A documenting directive (``.. autoclass:: securelink.Name()``, ``.. data:: __version__``) or
#: role (``{exc}`securelink.errors.Name```), with the dotted name it documents.
DOCUMENTS = re.compile(
    r"^\.\. (?:auto)?(?:function|class|exception|data|attribute)::\s+([\w.]+)"
    r"|\{(?:class|exc|func|data)\}`([\w.]+)`",
    re.MULTILINE,
)


def module(name: str) -> ModuleType:
    return importlib.import_module(name)


def public_names() -> list[tuple[str, str]]:
    return [(m, n) for m in MODULES for n in module(m).__all__ if n != "__version__"]


def api_sections() -> dict[str, str]:
    """docs/api.md cut at its "## " headings: heading -> text."""
    text = (DOCS / "api.md").read_text(encoding="utf-8")
    parts = re.split(r"^## (.+)$", text, flags=re.MULTILINE)
    return {heading.strip(): body for heading, body in zip(parts[1::2], parts[2::2], strict=True)}


def documented(name: str, text: str) -> set[str]:
    """The names of module ``name`` that a section documents, exactly.

    An ``automodule`` with ``:members:`` documents exactly the module's ``__all__`` (autodoc's
    rule, when the module defines one); otherwise each name counts that a directive documents,
    or, for a module whose section only lists them, that a role names: ``name.X`` with no
    further dot, so that ``Identity`` is never found inside ``PeerIdentity``.
    """
    names = set()
    whole = rf"^\.\. automodule:: {re.escape(name)}\n(?:   :.*\n)*   :members:\s*$"
    if re.search(whole, text, re.MULTILINE):
        assert "__all__" in vars(module(name)), f"{name} must define __all__ for automodule"
        names |= set(module(name).__all__)
    for directive, role in DOCUMENTS.findall(text):
        target = directive or role
        if name == "securelink" and target == "__version__":
            names.add(target)
        elif (
            target.startswith(name + ".")
            and "." not in target[len(name) + 1 :]
            and (directive or name != "securelink")
        ):
            names.add(target[len(name) + 1 :])
    return names


class TestReference:
    """The API page and the docstrings cover the whole public API."""

    @pytest.mark.parametrize("name", MODULES)
    def test_api_page_matches_all(self, name: str) -> None:
        """docs/api.md documents exactly each public module's __all__, in both directions."""
        sections = api_sections()
        assert name in sections, f"docs/api.md has no '## {name}' section"
        names = documented(name, sections[name])
        exported = set(module(name).__all__)
        assert sorted(exported - names) == [], f"in {name}.__all__ but not on docs/api.md"
        assert sorted(names - exported) == [], f"on docs/api.md but not in {name}.__all__"

    def test_exact_names(self) -> None:
        """A name is matched whole: a documented PeerIdentity does not document Identity."""
        text = ".. autoclass:: securelink.PeerIdentity()\n"
        assert documented("securelink", text) == {"PeerIdentity"}
        assert documented("securelink.errors", "{exc}`securelink.errors.RemoteError`") == {
            "RemoteError"
        }

    @pytest.mark.parametrize(("module", "name"), public_names())
    def test_has_docstring(self, module: str, name: str) -> None:
        """Each public class and function has a docstring of its own."""
        obj = getattr(__import__(module, fromlist=[name]), name)
        assert inspect.getdoc(obj)
        if inspect.isclass(obj) and not issubclass(obj, BaseException):
            for attr, value in vars(obj).items():
                if not attr.startswith("_") and callable(value):
                    assert inspect.getdoc(value), f"{name}.{attr} has no docstring"


class TestStatements:
    """Statements of the pages that no example shows, checked on real handshakes."""

    def test_allowed_peers_refused_client_reads_end_of_stream(self) -> None:
        """production.md: allowed_peers refuses after the handshake; the client reads b''."""
        ca = devca.CertificateAuthority()
        server_cert = ca.issue("localhost", usage=devca.Usage.SERVER)
        intruder = ca.issue("spiffe://example.org/ns/dev/sa/test", usage=devca.Usage.CLIENT)
        server_ctx = securelink.server_context(
            server_cert.server_options(
                client_auth=securelink.ClientAuth.REQUIRE_AND_VERIFY,
                allowed_peers=("spiffe://example.org/ns/prod/*",),
            )
        )
        refused: list[BaseException] = []

        def serve(listener: socket.socket) -> None:
            conn, _ = listener.accept()
            try:
                server_ctx.wrap_socket(conn, server_side=True).close()
            except securelink.HandshakeError as exc:
                refused.append(exc)
            finally:
                conn.close()

        with socket.create_server(("127.0.0.1", 0)) as listener:
            thread = threading.Thread(target=serve, args=(listener,))
            thread.start()
            try:
                with securelink.connect(
                    "127.0.0.1",
                    listener.getsockname()[1],
                    intruder.client_options(),
                    server_hostname="localhost",
                    timeout=10,
                ) as tls:
                    assert tls.recv(100) == b""
            finally:
                thread.join(timeout=10)
        assert len(refused) == 1
        error = refused[0]
        assert type(error) is securelink.ConnectionRejectedError
        assert error.hook == "allowed_peers"

    @pytest.mark.parametrize("cls", [securelink.ClientOptions, securelink.ServerOptions])
    def test_options_table_lists_every_option(self, cls: type) -> None:
        """options.md "At a glance": one row per keyword of the class, no more, no fewer."""
        page = (DOCS / "options.md").read_text(encoding="utf-8")
        glance = page[page.index("## At a glance") : page.index("\n## ", page.index("## At a"))]
        table = glance[glance.index(f"`{cls.__name__}`:") :].split("\n\n")[1]
        rows = re.findall(r"^\| `(\w+)` \|", table, re.MULTILINE)
        assert rows == list(inspect.signature(cls).parameters)
