"""securelink contexts in the HTTP clients and servers people use, over real loopback HTTPS.

httpx (sync and async), requests (through SecureLinkAdapter), urllib3, aiohttp (client and web
server) and plain asyncio.

Each library's behaviour on failure is
pinned down exactly (which exception it raises, and where in it the securelink error sits), so
that docs/integrations.md stays true: when a library changes how it wraps errors, a test fails.
"""

from __future__ import annotations

import asyncio
import http.server
import json
import logging
import pickle
import re
import ssl
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import anyio
import httpcore
import httpx
import pytest
import requests
import urllib3
from aiohttp import web
from cryptography.hazmat.primitives.serialization import Encoding

import securelink
import securelink.aio
from securelink import (
    ClientAuth,
    ClientCertificateRequiredError,
    ClientOptions,
    ConfigurationError,
    HostnameMismatchError,
    SecureLinkError,
    UnknownAuthorityError,
)
from securelink._requests_adapter import SecureLinkAdapter
from securelink.devca import CertificateAuthority, IssuedCertificate, Usage

from .helpers import handshake

TIMEOUT = 10.0
T = TypeVar("T")


def run(coro: Awaitable[T]) -> T:
    """Run *coro* in a fresh event loop, bounded in time."""

    async def bounded() -> T:
        return await asyncio.wait_for(coro, TIMEOUT)

    return asyncio.run(bounded())


# --- the PKI ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pki:
    """A trusted CA, its server and client certificates, and what an untrusted CA issued."""

    ca: CertificateAuthority
    server: IssuedCertificate
    client: IssuedCertificate
    wrong_name: IssuedCertificate  # trusted, but only for other.test
    stranger: IssuedCertificate  # right names, issued by a CA nobody trusts

    def client_ctx(self, *, with_cert: bool = False) -> ssl.SSLContext:
        """A client context trusting the CA; with the client certificate if asked."""
        if with_cert:
            return securelink.client_context(
                self.ca.client_options(cert=self.client.chain_pem, key=self.client.key_pem)
            )
        return securelink.client_context(self.ca.client_options())

    def server_ctx(self, *, mtls: bool = False, leaf: IssuedCertificate | None = None) -> Any:
        """A server context for *leaf* (default: the server certificate); mTLS if asked."""
        leaf = leaf or self.server
        if mtls:
            return securelink.server_context(
                leaf.server_options(
                    client_auth=ClientAuth.REQUIRE_AND_VERIFY, client_ca=self.ca.cert_pem
                )
            )
        return securelink.server_context(leaf.server_options())


@pytest.fixture(scope="module")
def pki() -> Pki:
    ca = CertificateAuthority()
    return Pki(
        ca=ca,
        server=ca.issue("localhost", "127.0.0.1", usage=Usage.SERVER),
        client=ca.issue("client.test", usage=Usage.CLIENT),
        wrong_name=ca.issue("other.test", usage=Usage.SERVER),
        stranger=CertificateAuthority().issue("localhost", "127.0.0.1", usage=Usage.SERVER),
    )


# --- servers ---------------------------------------------------------------------------------


def _answer(peercert: dict[str, Any] | None, version: str | None, path: str) -> bytes:
    names = [value for _, value in (peercert or {}).get("subjectAltName", ())]
    return json.dumps({"path": path, "client": names, "version": version}).encode()


class _Handler(http.server.BaseHTTPRequestHandler):
    """Answers GET with JSON: the path, the client certificate's names, the TLS version."""

    connection: ssl.SSLSocket

    def do_GET(self) -> None:
        body = _answer(self.connection.getpeercert(), self.connection.version(), self.path)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet tests


class ThreadedHTTPSServer(http.server.ThreadingHTTPServer):
    """http.server over TLS: each connection's handshake runs in its own thread."""

    daemon_threads = True

    def __init__(self, ctx: ssl.SSLContext) -> None:
        self.ctx = ctx
        self.errors: list[BaseException] = []
        super().__init__(("127.0.0.1", 0), _Handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        request.settimeout(TIMEOUT)
        try:
            tls = self.ctx.wrap_socket(request, server_side=True)
        except (OSError, ssl.SSLError) as exc:
            self.errors.append(exc)  # what the server side saw: securelink errors too
            return
        with tls:
            super().finish_request(tls, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that went away mid-request is not the test's concern


@contextmanager
def https_server(ctx: ssl.SSLContext) -> Iterator[ThreadedHTTPSServer]:
    """Serve HTTPS on 127.0.0.1:0 in a thread until the block ends."""
    server = ThreadedHTTPSServer(ctx)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(TIMEOUT)
        assert not thread.is_alive(), "the test server did not stop"


def url_of(server: ThreadedHTTPSServer, host: str = "localhost") -> str:
    return f"https://{host}:{server.server_address[1]}/hello"


async def _asyncio_http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A minimal HTTP/1.0 responder for asyncio.start_server."""
    try:
        request = await reader.readuntil(b"\r\n\r\n")
        path = request.split(b" ", 2)[1].decode()
        ssl_object = writer.get_extra_info("ssl_object")
        body = _answer(ssl_object.getpeercert(), ssl_object.version(), path)
        writer.write(
            b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body
        )
        await writer.drain()
    finally:
        writer.close()


@dataclass
class AioServer:
    """An asyncio server's port and the errors its handshakes raised."""

    port: int
    errors: list[BaseException] = field(default_factory=list)


async def _with_asyncio_server(ctx: ssl.SSLContext, body: Callable[[AioServer], Awaitable[T]]) -> T:
    server = await asyncio.start_server(_asyncio_http, "127.0.0.1", 0, ssl=ctx)
    info = AioServer(server.sockets[0].getsockname()[1])
    loop = asyncio.get_running_loop()

    # asyncio reports a failed server handshake to the loop's exception handler.
    def record(_: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        info.errors.append(exc if exc is not None else RuntimeError(context.get("message")))

    loop.set_exception_handler(record)
    try:
        async with server:
            return await body(info)
    finally:
        server.close()
        await server.wait_closed()


# --- finding the securelink error in what a library raised ----------------------------------

_STEP = re.compile(r"\.(\w+)(?:\[(\d+)\])?")


def at(exc: BaseException, path: str) -> Any:
    """Follow *path* (``".args[0].reason"``, or ``""`` for *exc* itself) from *exc*."""
    current: Any = exc
    for name, index in _STEP.findall(path):
        current = getattr(current, name)
        if index:
            current = current[int(index)]
    return current


def locate(exc: BaseException) -> SecureLinkError | None:
    """Return the securelink error anywhere in *exc*'s causes, contexts and arguments."""
    queue: list[object] = [exc]
    seen: set[int] = set()
    while queue:
        current = queue.pop(0)
        if not isinstance(current, BaseException) or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, SecureLinkError):
            return current
        queue += [getattr(current, "reason", None), getattr(current, "certificate_error", None)]
        queue += [*current.args, current.__cause__, current.__context__]
    return None


def chain_types(exc: BaseException | None) -> list[type[BaseException]]:
    """The types along *exc*'s ``__cause__`` chain (or its first argument), to securelink's."""
    types: list[type[BaseException]] = []
    while exc is not None:
        types.append(type(exc))
        if isinstance(exc, SecureLinkError):
            break
        first = exc.args[0] if exc.args else None
        exc = exc.__cause__ or (first if isinstance(first, BaseException) else None)
    return types


# --- the clients, each used the way its documentation shows ---------------------------------


def get_httpx(url: str, ctx: ssl.SSLContext) -> dict[str, Any]:
    with httpx.Client(verify=ctx, timeout=TIMEOUT) as client:
        response = client.get(url)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result


def get_httpx_async(url: str, ctx: ssl.SSLContext) -> dict[str, Any]:
    async def main() -> dict[str, Any]:
        async with httpx.AsyncClient(verify=ctx, timeout=TIMEOUT) as client:
            response = await client.get(url)
            response.raise_for_status()
            result: dict[str, Any] = response.json()
            return result

    return run(main())


def get_requests(url: str, ctx: ssl.SSLContext) -> dict[str, Any]:
    with requests.Session() as session:
        session.mount("https://", SecureLinkAdapter(ctx))
        response = session.get(url, timeout=TIMEOUT)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result


def get_urllib3(url: str, ctx: ssl.SSLContext) -> dict[str, Any]:
    with urllib3.PoolManager(ssl_context=ctx, timeout=TIMEOUT) as pool:
        response = pool.request("GET", url)
        assert response.status == 200
        result: dict[str, Any] = response.json()
        return result


def get_aiohttp(url: str, ctx: ssl.SSLContext) -> dict[str, Any]:
    async def main() -> dict[str, Any]:
        timeout = aiohttp.ClientTimeout(total=TIMEOUT)
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.get(url, ssl=ctx) as response,
        ):
            response.raise_for_status()
            result: dict[str, Any] = await response.json()
            return result

    return run(main())


async def _raw_get(
    port: int, ctx: ssl.SSLContext, host: str = "localhost", path: str = "/"
) -> dict[str, Any]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ctx, server_hostname=host)
    try:
        writer.write(f"GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
        await writer.drain()
        raw = await reader.read()
    finally:
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 200")
    result: dict[str, Any] = json.loads(body)
    return result


def get_asyncio(url: str, ctx: ssl.SSLContext) -> dict[str, Any]:
    """Plain asyncio.open_connection: HTTP/1.0 by hand."""
    parsed = urllib3.util.parse_url(url)
    assert parsed.host is not None and parsed.port is not None and parsed.path is not None
    return run(_raw_get(parsed.port, ctx, parsed.host, parsed.path))


CLIENTS: dict[str, Callable[[str, ssl.SSLContext], dict[str, Any]]] = {
    "httpx": get_httpx,
    "httpx-async": get_httpx_async,
    "requests": get_requests,
    "urllib3": get_urllib3,
    "aiohttp": get_aiohttp,
    "asyncio": get_asyncio,
}


# --- the tests -------------------------------------------------------------------------------


class TestClients:
    """Each client library makes HTTPS requests with securelink client contexts."""

    @pytest.mark.parametrize("name", CLIENTS)
    def test_get(self, pki: Pki, name: str) -> None:
        """A request to a securelink server, trusting only the development CA."""
        with https_server(pki.server_ctx()) as server:
            answer = CLIENTS[name](url_of(server), pki.client_ctx())
        assert answer == {"path": "/hello", "client": [], "version": "TLSv1.3"}
        assert server.errors == []

    @pytest.mark.parametrize("name", CLIENTS)
    def test_mutual_tls(self, pki: Pki, name: str) -> None:
        """The client presents the certificate in its context; the server sees who it is."""
        with https_server(pki.server_ctx(mtls=True)) as server:
            answer = CLIENTS[name](url_of(server), pki.client_ctx(with_cert=True))
        assert answer["client"] == ["client.test"]
        assert server.errors == []

    @pytest.mark.parametrize("name", CLIENTS)
    def test_ip_address(self, pki: Pki, name: str) -> None:
        """An IP address in the URL is checked against the certificate's IP SANs."""
        with https_server(pki.server_ctx()) as server:
            answer = CLIENTS[name](url_of(server, "127.0.0.1"), pki.client_ctx())
        assert answer["path"] == "/hello"


#: What each library raises when a certificate fails verification (an untrusted CA, or a name
#: the certificate does not hold), and where the securelink error is in it.  Deterministic: the
#: handshake fails inside the context's socket or SSLObject, which explains it.
#: docs/integrations.md shows this table.
VERIFICATION_FAILED: dict[str, tuple[type[BaseException], str]] = {
    "httpx": (httpx.ConnectError, ".__cause__.args[0]"),
    "httpx-async": (httpx.ConnectError, ".__cause__.args[0]"),
    "requests": (requests.exceptions.SSLError, ".args[0].reason.args[0]"),
    "urllib3": (urllib3.exceptions.MaxRetryError, ".reason.args[0]"),
    "aiohttp": (aiohttp.ClientConnectorCertificateError, ".certificate_error"),
    "asyncio": (securelink.CertificateVerificationError, ""),  # the securelink error itself
}

#: A server that requires a client certificate the client does not have.  With TLS 1.3 the
#: refusal comes after the handshake, on the first read.  Blocking clients always explain it
#: (the socket class diagnoses a reset with a second handshake).
CERTIFICATE_REQUIRED: dict[str, tuple[type[BaseException], str]] = {
    "httpx": (httpx.ReadError, ".__cause__.args[0]"),
    "requests": (requests.exceptions.SSLError, ".args[0].reason.args[0]"),
    "urllib3": (urllib3.exceptions.MaxRetryError, ".reason.args[0]"),
}

#: The asyncio-based clients race the server's reset against its alert: the alert explains, the
#: reset (which no SSLObject sees) does not.  Both outcomes, as each library reports them.
Chain = list[type[BaseException]]
CERTIFICATE_REQUIRED_RACING: dict[str, tuple[Chain, Chain]] = {
    "httpx-async": (
        [ClientCertificateRequiredError],  # raised as it is, not wrapped in an httpx error
        [httpx.ReadError, httpcore.ReadError, anyio.BrokenResourceError, ConnectionResetError],
    ),
    "aiohttp": (
        [aiohttp.ClientOSError, ClientCertificateRequiredError],
        [aiohttp.ClientOSError, ConnectionResetError],
    ),
    "asyncio": (
        [ClientCertificateRequiredError],
        [ConnectionResetError],
    ),
}


class TestExplainedErrors:
    """securelink's explanations come through each library, at a documented place."""

    @pytest.mark.parametrize("name", VERIFICATION_FAILED)
    def test_unknown_authority(self, pki: Pki, name: str) -> None:
        """A server certificate from an untrusted CA: UnknownAuthorityError, with its facts."""
        outer, path = VERIFICATION_FAILED[name]
        with (
            https_server(pki.server_ctx(leaf=pki.stranger)) as server,
            pytest.raises(outer) as info,
        ):
            CLIENTS[name](url_of(server), pki.client_ctx())
        error = at(info.value, path)
        assert type(error) is UnknownAuthorityError
        assert (error.kind, error.role) == ("unknown-issuer", "client")
        issuer = pki.stranger.certificate.issuer.rfc4514_string()
        assert issuer == error.issuer
        # The explanation is in the text people see, not only in the chain.
        assert error.message.split(",")[0] in str(info.value)
        assert f"'{issuer}'" in str(info.value)

    @pytest.mark.parametrize("name", VERIFICATION_FAILED)
    def test_hostname_mismatch(self, pki: Pki, name: str) -> None:
        """A trusted certificate for another name: HostnameMismatchError names both."""
        outer, path = VERIFICATION_FAILED[name]
        with (
            https_server(pki.server_ctx(leaf=pki.wrong_name)) as server,
            pytest.raises(outer) as info,
        ):
            CLIENTS[name](url_of(server), pki.client_ctx())
        error = at(info.value, path)
        assert type(error) is HostnameMismatchError
        assert (error.expected, error.presented) == ("localhost", ("other.test",))
        assert error.message.split(",")[0] in str(info.value)
        assert "other.test" in str(info.value)

    @pytest.mark.parametrize("name", CERTIFICATE_REQUIRED)
    def test_client_certificate_required(self, pki: Pki, name: str) -> None:
        """No client certificate for an mTLS server: explained on the client and the server."""
        outer, path = CERTIFICATE_REQUIRED[name]
        with https_server(pki.server_ctx(mtls=True)) as server, pytest.raises(outer) as info:
            CLIENTS[name](url_of(server), pki.client_ctx())
        error = at(info.value, path)
        assert type(error) is ClientCertificateRequiredError
        assert (error.side, error.role) == ("peer", "client")
        assert error.message.split(",")[0] in str(info.value)
        assert {ClientCertificateRequiredError} == {type(e) for e in server.errors}

    @pytest.mark.parametrize("name", CERTIFICATE_REQUIRED_RACING)
    def test_client_certificate_required_racing(self, pki: Pki, name: str) -> None:
        """asyncio-based clients: the explanation when the alert wins, the reset otherwise."""
        explained, reset = CERTIFICATE_REQUIRED_RACING[name]
        with (
            https_server(pki.server_ctx(mtls=True)) as server,
            pytest.raises((OSError, httpx.HTTPError)) as info,
        ):
            CLIENTS[name](url_of(server), pki.client_ctx())
        assert chain_types(info.value) in (explained, reset)
        assert (locate(info.value) is None) == (chain_types(info.value) == reset)
        # The server always knows, whichever way the client heard of it.
        assert {ClientCertificateRequiredError} == {type(e) for e in server.errors}

    def test_securelink_aio_explains_the_reset(self, pki: Pki) -> None:
        """securelink.aio.open_connection explains the reset that plain asyncio cannot."""

        async def main(port: int) -> None:
            reader, writer = await securelink.aio.open_connection(
                "127.0.0.1", port, pki.client_ctx(), server_hostname="localhost"
            )
            try:
                writer.write(b"GET / HTTP/1.0\r\n\r\n")
                await reader.read()
            finally:
                writer.close()

        for _ in range(3):
            with (
                https_server(pki.server_ctx(mtls=True)) as server,
                pytest.raises(ClientCertificateRequiredError),
            ):
                run(main(server.server_address[1]))


class TestServers:
    """securelink server contexts behind asyncio and aiohttp servers."""

    @pytest.mark.parametrize("mtls", [False, True], ids=["tls", "mtls"])
    def test_asyncio_start_server(self, pki: Pki, mtls: bool) -> None:
        """asyncio.start_server(ssl=server_context(...)), with httpx and aiohttp as clients."""

        async def main(server: AioServer) -> list[dict[str, Any]]:
            url = f"https://localhost:{server.port}/asyncio"
            ctx = pki.client_ctx(with_cert=mtls)
            async with httpx.AsyncClient(verify=ctx, timeout=TIMEOUT) as client:
                first = (await client.get(url)).json()
            async with aiohttp.ClientSession() as session, session.get(url, ssl=ctx) as response:
                second = await response.json()
            return [first, second]

        answers = run(_with_asyncio_server(pki.server_ctx(mtls=mtls), main))
        names = ["client.test"] if mtls else []
        assert [{"path": "/asyncio", "client": names, "version": "TLSv1.3"}] * 2 == answers

    def test_plain_asyncio_server(self, pki: Pki, caplog: pytest.LogCaptureFixture) -> None:
        """Plain asyncio at both ends: the refused client reads the alert, the server logs why."""
        # asyncio's server closes a connection whose handshake failed without sending the alert
        # that says why, and logs the failure at debug level only (it is an OSError), never
        # calling the loop's exception handler.  securelink's SSLObject sends the alert, and
        # reports the failure on the securelink logger.

        async def main(server: AioServer) -> list[BaseException]:
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", server.port, ssl=pki.client_ctx(), server_hostname="localhost"
            )
            writer.write(b"GET / HTTP/1.0\r\n\r\n")
            with pytest.raises(ClientCertificateRequiredError):
                await reader.read()
            writer.close()
            await asyncio.sleep(0.1)  # give the server side time to report
            return server.errors

        with caplog.at_level(logging.WARNING, logger="securelink"):
            assert run(_with_asyncio_server(pki.server_ctx(mtls=True), main)) == []
        [record] = [r for r in caplog.records if r.name == "securelink"]
        assert "sent no certificate" in record.getMessage()

    def test_securelink_aio_server_reports(self, pki: Pki) -> None:
        """securelink.aio.start_server hands each failed handshake, explained, to a callback."""
        reported: list[SecureLinkError] = []

        async def main() -> None:
            server = await securelink.aio.start_server(
                _asyncio_http,
                "127.0.0.1",
                0,
                pki.server_ctx(mtls=True),
                on_handshake_error=reported.append,
            )
            async with server:
                with pytest.raises(ClientCertificateRequiredError):
                    await _raw_get(server.sockets[0].getsockname()[1], pki.client_ctx())
                await asyncio.sleep(0.1)

        run(main())
        [error] = reported
        assert type(error) is ClientCertificateRequiredError
        assert (error.side, error.role) == ("local", "server")

    @pytest.mark.parametrize("mtls", [False, True], ids=["tls", "mtls"])
    def test_aiohttp_web_server(self, pki: Pki, mtls: bool) -> None:
        """aiohttp.web with ssl_context=server_context(...), answering httpx and requests."""

        async def handler(request: web.Request) -> web.Response:
            assert request.transport is not None
            ssl_object = request.transport.get_extra_info("ssl_object")
            return web.Response(
                body=_answer(ssl_object.getpeercert(), ssl_object.version(), request.path),
                content_type="application/json",
            )

        async def main() -> list[dict[str, Any]]:
            app = web.Application()
            app.router.add_get("/{tail:.*}", handler)
            runner = web.AppRunner(app)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=pki.server_ctx(mtls=mtls))
            await site.start()
            try:
                port = runner.addresses[0][1]
                url = f"https://localhost:{port}/web"
                ctx = pki.client_ctx(with_cert=mtls)
                async with httpx.AsyncClient(verify=ctx, timeout=TIMEOUT) as client:
                    first = (await client.get(url)).json()
                # requests blocks: run it in a thread while the loop serves.
                second = await asyncio.to_thread(get_requests, url, ctx)
                return [first, second]
            finally:
                await runner.cleanup()

        answers = run(main())
        names = ["client.test"] if mtls else []
        assert [{"path": "/web", "client": names, "version": "TLSv1.3"}] * 2 == answers


class TestRequestsAdapter:
    """SecureLinkAdapter: requests with a securelink context, and nothing else deciding trust."""

    def test_from_options(self, pki: Pki) -> None:
        """Built from ClientOptions: a private context, so urllib3's changes stay local."""
        options = pki.ca.client_options(cert=pki.client.chain_pem, key=pki.client.key_pem)
        adapter = SecureLinkAdapter(options)
        assert type(adapter.ssl_context) is ssl.SSLContext
        assert adapter.ssl_context is not securelink.client_context(options, shared=True)
        with https_server(pki.server_ctx(mtls=True)) as server, requests.Session() as session:
            session.mount("https://", adapter)
            answer = session.get(url_of(server), timeout=TIMEOUT).json()
        assert answer["client"] == ["client.test"]

    def test_default_options(self) -> None:
        """No argument: ClientOptions(), the certifi bundle."""
        adapter = SecureLinkAdapter()
        assert len(adapter.ssl_context.get_ca_certs()) > 100

    def test_trust_is_not_widened(self, pki: Pki) -> None:
        """The certifi bundle of requests never gets into the context (it would trust any CA)."""
        ctx = securelink.client_context(pki.ca.client_options(), shared=False)
        with https_server(pki.server_ctx()) as server, requests.Session() as session:
            session.mount("https://", SecureLinkAdapter(ctx))
            session.get(url_of(server), timeout=TIMEOUT)
        assert [pki.ca.certificate.public_bytes(Encoding.DER)] == ctx.get_ca_certs(True)

    def test_a_plain_adapter_would_widen_trust(self, pki: Pki) -> None:
        """Why the adapter exists: passing ssl_context alone lets urllib3 load certifi into it."""

        class Naive(requests.adapters.HTTPAdapter):
            def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
                kwargs["ssl_context"] = ctx
                super().init_poolmanager(*args, **kwargs)

        ctx = securelink.client_context(pki.ca.client_options(), shared=False)
        with https_server(pki.server_ctx()) as server, requests.Session() as session:
            session.mount("https://", Naive())
            session.get(url_of(server), timeout=TIMEOUT)
        assert len(ctx.get_ca_certs()) > 100

    @pytest.mark.parametrize(
        ("kwargs", "field"),
        [
            ({"verify": False}, "verify"),
            ({"verify": "/srv/private-ca.pem"}, "verify"),
            ({"cert": ("client.pem", "client.key")}, "cert"),
        ],
        ids=["verify-false", "verify-path", "cert"],
    )
    def test_conflicting_settings_refused(
        self, pki: Pki, kwargs: dict[str, Any], field: str
    ) -> None:
        """verify=False, verify=<path> and cert= contradict the context: refused, unsent."""
        with https_server(pki.server_ctx()) as server, requests.Session() as session:
            session.mount("https://", SecureLinkAdapter(pki.client_ctx()))
            with pytest.raises(ConfigurationError) as info:
                session.get(url_of(server), timeout=TIMEOUT, **kwargs)
        assert field == info.value.field

    @pytest.mark.parametrize("variable", ["REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"])
    def test_environment_bundle_ignored(
        self, pki: Pki, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, variable: str
    ) -> None:
        """A CA bundle from the environment (requests passes it as verify=) changes nothing."""
        bundle = tmp_path / "bundle.pem"
        bundle.write_bytes(pki.ca.cert_pem + pki.stranger.root_pem)
        monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
        monkeypatch.setenv(variable, str(bundle))
        with requests.Session() as session:
            session.mount("https://", SecureLinkAdapter(pki.client_ctx()))
            with https_server(pki.server_ctx()) as server:
                assert session.get(url_of(server), timeout=TIMEOUT).json()["path"] == "/hello"
            # The bundle trusts the stranger's CA; the adapter's context does not.
            with (
                https_server(pki.server_ctx(leaf=pki.stranger)) as server,
                pytest.raises(requests.exceptions.SSLError) as info,
            ):
                session.get(url_of(server), timeout=TIMEOUT)
        assert type(at(info.value, VERIFICATION_FAILED["requests"][1])) is UnknownAuthorityError

    def test_session_verify_path_refused(
        self, pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A CA path set in code on the session contradicts the context: refused."""
        # (With either variable set, requests would pass its value instead: requests#3829.)
        monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
        monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
        with https_server(pki.server_ctx()) as server, requests.Session() as session:
            session.mount("https://", SecureLinkAdapter(pki.client_ctx()))
            session.verify = str(tmp_path / "ca.pem")
            with pytest.raises(ConfigurationError) as info:
                session.get(url_of(server), timeout=TIMEOUT)
        assert info.value.field == "verify"

    def test_server_context_refused(self, pki: Pki) -> None:
        """A server context cannot make client connections."""
        with pytest.raises(TypeError, match="client context"):
            SecureLinkAdapter(pki.server_ctx())

    def test_wrong_type_refused(self) -> None:
        """Anything but options or a context is a TypeError."""
        with pytest.raises(TypeError, match="not str"):
            SecureLinkAdapter("ca.pem")  # type: ignore[arg-type]

    def test_pickle_from_options(self, pki: Pki) -> None:
        """Pickled with its options, the adapter rebuilds its context and keeps working."""
        adapter = SecureLinkAdapter(ClientOptions(ca=pki.ca.cert_pem), max_retries=2)
        copy = pickle.loads(pickle.dumps(adapter))  # noqa: S301 - our own data
        assert copy.ssl_context is not adapter.ssl_context
        assert copy.max_retries.total == 2
        with https_server(pki.server_ctx()) as server, requests.Session() as session:
            session.mount("https://", copy)
            assert session.get(url_of(server), timeout=TIMEOUT).json()["path"] == "/hello"

    def test_pickle_from_context_refused(self, pki: Pki) -> None:
        """A context cannot be pickled: refused, rather than falling back to requests' TLS."""
        with pytest.raises(TypeError, match="ClientOptions"):
            pickle.dumps(SecureLinkAdapter(pki.client_ctx()))


class TestUrllib3ChangesTheContext:
    """urllib3 writes to the context it is given: why shared contexts need care there."""

    def test_alpn_is_overwritten(self, pki: Pki) -> None:
        """After urllib3 used it, a context that offered h2 offers only http/1.1."""
        ctx = securelink.client_context(pki.ca.client_options(alpn=("h2",)), shared=False)
        h2_server = securelink.server_context(pki.server.server_options(alpn=("h2", "http/1.1")))
        _, before = handshake(h2_server, ctx)
        with https_server(pki.server_ctx()) as server:
            get_urllib3(url_of(server), ctx)
        _, after = handshake(h2_server, ctx)
        assert (before.alpn, after.alpn) == ("h2", "http/1.1")
