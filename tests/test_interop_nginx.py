"""nginx as an independent TLS server: what a securelink client meets behind a real web server.

One behaviour here is documented rather than explained: nginx with ``ssl_verify_client on``
does not refuse a client without an acceptable certificate in TLS.  It completes the handshake
and answers the request with ``400 Bad Request``, so a securelink client raises nothing, and the
refusal is in the HTTP response (docs/errors/client-certificate-required-error.md says so).
These tests keep that statement true.

nginx cannot listen on port 0, but it takes over listening sockets it inherits (the ``NGINX``
environment variable, meant for binary upgrades): each test binds 127.0.0.1 port 0 itself and
hands the socket to nginx.  Every nginx is started by the test that needs it and ended
(terminated, then waited for) before that test finishes.
"""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from securelink import ClientOptions, connect, devca

from .helpers import stop_process

NGINX = shutil.which("nginx") or next(
    (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None
)
TIMEOUT = 10.0
LOOPBACK = "127.0.0.1"

pytestmark = pytest.mark.skipif(
    NGINX is None, reason="nginx is missing (Debian: apt-get install nginx-light)"
)

CONFIG = """
daemon off;
master_process on;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log info;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    server {{
        listen {host}:{port} ssl;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_certificate {dir}/server.pem;
        ssl_certificate_key {dir}/server-key.pem;
        ssl_client_certificate {dir}/ca.pem;
        ssl_verify_client on;
        location / {{ return 200 "hello, $ssl_client_s_dn\\n"; }}
    }}
}}
"""


@contextmanager
def nginx(directory: Path, ca: devca.CertificateAuthority) -> Iterator[int]:
    """Run nginx requiring client certificates from *ca*; yield its port; always end it."""
    assert NGINX is not None
    server = ca.issue("localhost", LOOPBACK, usage=devca.Usage.SERVER)
    (directory / "server.pem").write_bytes(server.chain_pem)
    key = directory / "server-key.pem"
    key.write_bytes(server.key_pem)
    key.chmod(0o600)
    (directory / "ca.pem").write_bytes(ca.cert_pem)
    with socket.create_server((LOOPBACK, 0)) as listener:
        port = listener.getsockname()[1]
        config = directory / "nginx.conf"
        config.write_text(CONFIG.format(dir=directory, host=LOOPBACK, port=port))
        fd = listener.fileno()
        proc = subprocess.Popen(
            [NGINX, "-c", str(config), "-e", str(directory / "error.log")],
            pass_fds=[fd],
            env={**os.environ, "NGINX": f"{fd};"},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    # The socket listens already: connections queue until nginx accepts them.
    try:
        yield port
    finally:
        stop_process(proc)


def _get(port: int, options: ClientOptions) -> tuple[str, str]:
    """One HTTP/1.0 request over a securelink connection: (TLS version, the whole response)."""
    with connect(LOOPBACK, port, options, server_hostname="localhost", timeout=TIMEOUT) as tls:
        tls.sendall(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
        chunks = []
        while chunk := tls.recv(4096):
            chunks.append(chunk)
        return str(tls.version()), b"".join(chunks).decode()


MAX = {"TLSv1.2": ssl.TLSVersion.TLSv1_2, "TLSv1.3": ssl.TLSVersion.TLSv1_3}


@pytest.mark.parametrize("version", sorted(MAX))
class TestVerifyClientOn:
    """``ssl_verify_client on``: the handshake succeeds, the HTTP answer refuses."""

    def test_accepted_client(
        self, tmp_path: Path, ca: devca.CertificateAuthority, version: str
    ) -> None:
        client = ca.issue("client.test", usage=devca.Usage.CLIENT)
        options = client.client_options().replace(max_version=MAX[version])
        with nginx(tmp_path, ca) as port:
            negotiated, response = _get(port, options)
        assert negotiated == version
        assert response.startswith("HTTP/1.1 200 OK\r\n")
        # nginx's $ssl_client_s_dn: the subject devca gives a client certificate.
        assert response.endswith(f"\r\n\r\nhello, {client.certificate.subject.rfc4514_string()}\n")

    def test_client_without_certificate_gets_http_400(
        self, tmp_path: Path, ca: devca.CertificateAuthority, version: str
    ) -> None:
        """No TLS error at all: a securelink client raises nothing, the refusal is a 400."""
        options = ClientOptions(ca=ca.cert_pem, max_version=MAX[version])
        with nginx(tmp_path, ca) as port:
            negotiated, response = _get(port, options)
        assert negotiated == version
        assert response.startswith("HTTP/1.1 400 Bad Request\r\n")
        assert "No required SSL certificate was sent" in response

    def test_untrusted_client_certificate_gets_http_400(
        self, tmp_path: Path, ca: devca.CertificateAuthority, version: str
    ) -> None:
        stranger = devca.CertificateAuthority(common_name="a CA nginx does not trust")
        client = stranger.issue("client.test", usage=devca.Usage.CLIENT)
        options = client.client_options().replace(ca=ca.cert_pem, max_version=MAX[version])
        with nginx(tmp_path, ca) as port:
            negotiated, response = _get(port, options)
        assert negotiated == version
        assert response.startswith("HTTP/1.1 400 Bad Request\r\n")
        assert "The SSL certificate error" in response
