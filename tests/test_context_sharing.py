"""A context handed to another library cannot change what anyone else gets.

httpx sets ALPN on every context it is given, and requests' classic recipe (an ``HTTPAdapter``
whose ``init_poolmanager`` passes ``ssl_context=``) makes urllib3 load certifi's bundle into it.
So ``client_context()`` and ``server_context()`` return a new context on each call, and share one
per options only with ``shared=True``; securelink's own helpers (``connect``, ``wrap_client``,
``wrap_server``, ``securelink.aio``) share the contexts they build from options, which nobody
else is handed.  These tests run the real libraries against real TLS servers on loopback.
"""

from __future__ import annotations

import asyncio
import http.server
import json
import os
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
import requests.adapters
from cryptography.hazmat.primitives.serialization import Encoding

import securelink
import securelink.aio
from securelink import ClientOptions, client_context, server_context
from securelink._requests_adapter import SecureLinkAdapter
from securelink.devca import CertificateAuthority, IssuedCertificate

from .helpers import handshake, tls_server

TIMEOUT = 10.0


# --- an HTTPS server on loopback ---------------------------------------------------------------


class _Handler(http.server.BaseHTTPRequestHandler):
    """Answers every GET with a small JSON body naming the negotiated ALPN protocol."""

    connection: ssl.SSLSocket

    def do_GET(self) -> None:
        body = json.dumps({"alpn": self.connection.selected_alpn_protocol()}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet tests


class _HTTPSServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, ctx: ssl.SSLContext) -> None:
        self.ctx = ctx
        super().__init__(("127.0.0.1", 0), _Handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        request.settimeout(TIMEOUT)
        with self.ctx.wrap_socket(request, server_side=True) as tls:
            super().finish_request(tls, client_address)


@contextmanager
def https_server(ctx: ssl.SSLContext) -> Iterator[str]:
    """Serve HTTPS on 127.0.0.1:0 in a thread; yield its URL (by the name localhost)."""
    server = _HTTPSServer(ctx)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"https://localhost:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(TIMEOUT)
        assert not thread.is_alive(), "the test server did not stop"


def negotiated_alpn(server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext) -> str | None:
    """The ALPN protocol of one real handshake of *client_ctx* with *server_ctx*."""
    server, client = handshake(server_ctx, client_ctx)
    assert client.error is None, client.error
    assert server.error is None, server.error
    return client.alpn


def trusted_count(ctx: ssl.SSLContext) -> int:
    """How many CA certificates *ctx* trusts (loaded from files or memory)."""
    return len(ctx.get_ca_certs())


@pytest.fixture
def alpn_server(server_cert: IssuedCertificate) -> ssl.SSLContext:
    """A server that speaks 'special' and HTTP/1.1, preferring 'special'."""
    return server_context(server_cert.server_options(alpn=("special", "http/1.1")))


@pytest.fixture
def no_requests_bundle(monkeypatch: pytest.MonkeyPatch) -> None:
    """No REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE: verify=True means certifi's bundle here."""
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)


# --- the default: a new context per call -------------------------------------------------------


class TestNewByDefault:
    """client_context() and server_context() build a new context unless shared=True."""

    def test_client_new_each_call(self, ca: CertificateAuthority) -> None:
        """Equal options, two calls: two contexts."""
        assert client_context(ca.client_options()) is not client_context(ca.client_options())
        assert client_context() is not client_context()

    def test_client_shared_on_request(self, ca: CertificateAuthority) -> None:
        """shared=True: equal options give the one process-wide context."""
        shared = client_context(ca.client_options(), shared=True)
        assert client_context(ClientOptions(ca=ca.root), shared=True) is shared
        assert client_context(ca.client_options()) is not shared

    def test_server_new_each_call(self, server_cert: IssuedCertificate) -> None:
        """Equal options, two calls: two server contexts."""
        options = server_cert.server_options()
        assert server_context(options) is not server_context(options)

    def test_server_shared_on_request(self, server_cert: IssuedCertificate) -> None:
        """shared=True: equal server options give the one process-wide context."""
        shared = server_context(server_cert.server_options(), shared=True)
        assert server_context(server_cert.server_options(), shared=True) is shared
        assert server_context(server_cert.server_options()) is not shared


# --- httpx sets ALPN on the context it is given -----------------------------------------------


class TestHttpx:
    """httpx.Client(verify=ctx) rewrites ctx's ALPN protocols; nobody else's."""

    def test_httpx_does_not_change_a_new_context(
        self, ca: CertificateAuthority, alpn_server: ssl.SSLContext
    ) -> None:
        """The issue's repro: after httpx used one context, the next one still says 'special'."""
        options = ca.client_options(alpn=("special",))
        assert negotiated_alpn(alpn_server, client_context(options)) == "special"
        given = client_context(options)
        with https_server(alpn_server) as url, httpx.Client(verify=given, timeout=TIMEOUT) as c:
            response = c.get(url)
        assert (response.status_code, response.json()) == (200, {"alpn": "http/1.1"})
        # httpx did change the context it was given: the premise of the issue still holds...
        assert negotiated_alpn(alpn_server, given) == "http/1.1"
        # ...and it reached no other context built from the same options.
        assert negotiated_alpn(alpn_server, client_context(options)) == "special"

    def test_a_shared_context_is_changed_for_everyone(
        self, ca: CertificateAuthority, alpn_server: ssl.SSLContext
    ) -> None:
        """Why shared=True contexts must not be handed to httpx: the change reaches every caller."""
        options = ca.client_options(alpn=("special",))
        given = client_context(options, shared=True)
        with https_server(alpn_server) as url, httpx.Client(verify=given, timeout=TIMEOUT) as c:
            assert c.get(url).status_code == 200
        assert negotiated_alpn(alpn_server, client_context(options, shared=True)) == "http/1.1"
        assert negotiated_alpn(alpn_server, client_context(options)) == "special"


# --- requests' classic recipe loads certifi into the context ----------------------------------


class TestRequests:
    """requests and urllib3 write to the context they are given; a new one is never affected."""

    @pytest.mark.usefixtures("no_requests_bundle")
    def test_classic_recipe_does_not_widen_a_new_context(
        self, ca: CertificateAuthority, server_cert: IssuedCertificate
    ) -> None:
        """The issue's repro: 1 trusted CA stays 1 for the next context, whatever requests did."""
        options = ca.client_options()
        assert trusted_count(client_context(options)) == 1
        given = client_context(options)

        class Classic(requests.adapters.HTTPAdapter):
            def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
                kwargs["ssl_context"] = given
                super().init_poolmanager(*args, **kwargs)

        with (
            https_server(server_context(server_cert.server_options())) as url,
            requests.Session() as session,
        ):
            session.trust_env = False
            session.mount("https://", Classic())
            assert session.get(url, timeout=TIMEOUT).status_code == 200
        # urllib3 loaded certifi's bundle into the context it was given (verify=True)...
        assert trusted_count(given) > 100
        # ...which no other context built from the same options trusts.
        assert trusted_count(client_context(options)) == 1
        der = ca.certificate.public_bytes(Encoding.DER)
        assert client_context(options).get_ca_certs(True) == [der]

    @pytest.mark.usefixtures("no_requests_bundle")
    def test_adapter_from_options_leaves_the_shared_context_alone(
        self, ca: CertificateAuthority, server_cert: IssuedCertificate, alpn_server: ssl.SSLContext
    ) -> None:
        """SecureLinkAdapter(options) has a private context: the shared one keeps ALPN, trust."""
        options = ca.client_options(alpn=("special",))
        shared = client_context(options, shared=True)
        adapter = SecureLinkAdapter(options)
        assert adapter.ssl_context is not shared
        with https_server(alpn_server) as url, requests.Session() as session:
            session.mount("https://", adapter)
            assert session.get(url, timeout=TIMEOUT).json() == {"alpn": "http/1.1"}
        assert client_context(options, shared=True) is shared
        assert negotiated_alpn(alpn_server, shared) == "special"
        assert trusted_count(shared) == 1
        assert trusted_count(adapter.ssl_context) == 1  # and the adapter's own is not widened


# --- securelink's own helpers share what they build --------------------------------------------


class TestHelpersShare:
    """connect, wrap_client, wrap_server and securelink.aio build from options with shared=True."""

    def test_connect_uses_the_shared_context(
        self, ca: CertificateAuthority, server_cert: IssuedCertificate
    ) -> None:
        """connect(host, port, options) uses client_context(options, shared=True)."""
        options = ca.client_options()
        with (
            tls_server(server_context(server_cert.server_options())) as (port, server),
            securelink.connect(
                "127.0.0.1", port, options, server_hostname="localhost", timeout=TIMEOUT
            ) as tls,
        ):
            tls.sendall(b"ping")
            assert tls.recv(10) == b"pong"
            assert tls.context is client_context(options, shared=True)
        assert server.error is None

    def test_wrap_client_and_server_use_the_shared_contexts(
        self, ca: CertificateAuthority, server_cert: IssuedCertificate
    ) -> None:
        """wrap_client and wrap_server build from options with shared=True."""
        client_options, server_options = ca.client_options(), server_cert.server_options()
        listener = socket.create_server(("127.0.0.1", 0))
        listener.settimeout(TIMEOUT)
        seen: dict[str, Any] = {}

        def serve() -> None:
            conn, _ = listener.accept()
            conn.settimeout(TIMEOUT)
            try:
                with securelink.wrap_server(conn, server_options) as tls:
                    seen["context"] = tls.context
                    tls.sendall(tls.recv(10))
            except OSError as exc:  # pragma: no cover - reported below
                seen["error"] = exc

        thread = threading.Thread(target=serve)
        thread.start()
        try:
            raw = socket.create_connection(listener.getsockname(), timeout=TIMEOUT)
            with securelink.wrap_client(raw, client_options, server_hostname="localhost") as tls:
                tls.sendall(b"ping")
                assert tls.recv(10) == b"ping"
                assert tls.context is client_context(client_options, shared=True)
        finally:
            thread.join(TIMEOUT)
            listener.close()
        assert not thread.is_alive()
        assert "error" not in seen
        assert seen["context"] is server_context(server_options, shared=True)

    def test_aio_uses_the_shared_contexts(
        self, ca: CertificateAuthority, server_cert: IssuedCertificate
    ) -> None:
        """securelink.aio's open_connection and start_server build with shared=True."""
        client_options, server_options = ca.client_options(), server_cert.server_options()

        async def main() -> tuple[object, object]:
            seen: list[object] = []

            async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
                seen.append(writer.get_extra_info("sslcontext"))
                writer.write(await reader.read(10))
                await writer.drain()
                writer.close()

            server = await securelink.aio.start_server(echo, "127.0.0.1", 0, server_options)
            try:
                port = server.sockets[0].getsockname()[1]
                reader, writer = await securelink.aio.open_connection(
                    "127.0.0.1", port, client_options, server_hostname="localhost"
                )
                writer.write(b"ping")
                assert await reader.read(10) == b"ping"
                client_side = writer.get_extra_info("sslcontext")
                writer.close()
                await writer.wait_closed()
            finally:
                server.close()
                await server.wait_closed()
            return client_side, seen[0]

        client_side, server_side = asyncio.run(asyncio.wait_for(main(), TIMEOUT))
        assert client_side is client_context(client_options, shared=True)
        assert server_side is server_context(server_options, shared=True)


# --- no cryptography for a context without an explicit CA --------------------------------------

#: Run in a fresh interpreter: what the first client context imports, and what was there before.
FIRST_CONTEXT = """
import json, sys
def loaded(name):
    return sorted(m for m in sys.modules if m == name or m.startswith(name + "."))
before = {"cryptography": loaded("cryptography"), "certifi": loaded("certifi")}
import securelink
imported = loaded("cryptography")
ctx = securelink.client_context(OPTIONS)
print(json.dumps({
    "before": before,
    "after_import": imported,
    "after_context": loaded("cryptography"),
    "trusted": len(ctx.get_ca_certs()),
}))
"""


def first_context(options: str, cwd: Path) -> dict[str, Any]:
    """Build the first client context from *options* (source text) in a fresh interpreter.

    ``-I`` ignores PYTHON* variables and the user's site-packages; ``SSL_CERT_FILE`` and the
    requests bundles are removed too, so the machine's settings cannot change what is loaded.
    Modules that the interpreter's own site start-up imports are reported in ``before``.
    """
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("PYTHON")
        and k not in {"SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"}
    }
    code = FIRST_CONTEXT.replace("OPTIONS", options)
    result = subprocess.run(
        [sys.executable, "-I", "-c", code],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    found: dict[str, Any] = json.loads(result.stdout)
    return found


class TestFirstContextImports:
    """The first client context without an explicit CA does not import cryptography."""

    @pytest.mark.parametrize(
        "options",
        [
            "securelink.ClientOptions()",
            "securelink.ClientOptions(), shared=True",
            "securelink.ClientOptions(alpn=('h2', 'http/1.1'))",
        ],
    )
    def test_certifi_only(self, options: str, tmp_path: Path) -> None:
        """Trusting certifi alone: the bundle is loaded, and cryptography never imported."""
        found = first_context(options, tmp_path)
        # The interpreter must not have imported it before: then this test could not tell.
        assert found["before"]["cryptography"] == []
        assert found["after_import"] == []
        assert found["after_context"] == []
        assert found["trusted"] > 100  # the certifi bundle really was loaded

    def test_system_store(self, tmp_path: Path) -> None:
        """Trusting the operating system's store (and certifi): no cryptography either."""
        found = first_context(
            "securelink.ClientOptions(ca=(securelink.Trust.SYSTEM, securelink.Trust.CERTIFI))",
            tmp_path,
        )
        assert found["before"]["cryptography"] == []
        assert found["after_context"] == []
        assert found["trusted"] > 100

    def test_explicit_ca_does_import_it(self, ca: CertificateAuthority, tmp_path: Path) -> None:
        """The control: with a CA file to check, cryptography is imported (the probe can see it)."""
        (tmp_path / "ca.pem").write_bytes(ca.cert_pem)
        found = first_context("securelink.ClientOptions(ca='ca.pem')", tmp_path)
        assert found["before"]["cryptography"] == []
        assert found["after_import"] == []
        assert "cryptography" in found["after_context"]
        assert found["trusted"] == 1
