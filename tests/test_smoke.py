from securelink import ClientAuth, client_context, server_context
from securelink.devca import IssuedCertificate

from .helpers import handshake


def test_mtls(server_cert: IssuedCertificate, client_cert: IssuedCertificate) -> None:
    """A devca server and client complete mutual TLS."""
    sctx = server_context(server_cert.server_options(client_auth=ClientAuth.REQUIRE_AND_VERIFY))
    server, client = handshake(sctx, client_context(client_cert.client_options()))
    assert client.error is None and server.error is None
    assert client.received == b"pong" and server.received == b"ping"
