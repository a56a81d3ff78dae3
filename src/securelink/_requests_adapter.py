"""A transport adapter that makes requests use a securelink context.

requests has no parameter for an :class:`ssl.SSLContext`: its ``verify=`` takes a boolean or a
path, and ``cert=`` takes file paths.  Its transport adapters are the documented extension point,
and urllib3, underneath, accepts a context for its pools.  This module is imported only by those
who use it, so requests never becomes a dependency of securelink itself.

Left alone, requests would undo part of what the context says, which is why this adapter is more
than the usual three lines:

- For every request with the default ``verify=True``, requests points the connection pool at
  certifi's bundle, and urllib3 then *loads that bundle into the context it was given*: a client
  that was meant to trust only a private CA would trust every public CA too (and, with a
  ``shared=True`` securelink context, every other user of that context would as well).  This is
  what the classic recipe, an ``HTTPAdapter`` whose ``init_poolmanager`` passes
  ``ssl_context=``, does.  The adapter gives urllib3 no CA files to load.
- ``verify=False``, ``verify="ca.pem"`` and ``cert=`` ask for a trust or an identity other than
  the context's.  The adapter refuses them with a :class:`~securelink.ConfigurationError` instead
  of letting one of the two silently win.
- urllib3 sets the context's ALPN protocols to ``http/1.1`` on every connection.  Built from
  options, the adapter builds a context of its own (never the ``shared=True`` one), so that this
  change reaches no other part of the process.
"""

from __future__ import annotations

import os
import ssl

from ._context import client_context
from ._options import ClientOptions
from .errors import ConfigurationError

try:
    from requests.adapters import HTTPAdapter
except ImportError as exc:  # pragma: no cover - exercised only without requests installed
    raise ImportError(
        "securelink's requests adapter needs the requests package: python -m pip install requests"
    ) from exc

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from requests.models import PreparedRequest, Response

__all__ = ["SecureLinkAdapter"]


class SecureLinkAdapter(HTTPAdapter):
    """A requests transport adapter whose HTTPS connections use a securelink client context.

    Mount it on a session for the URLs it should serve; the context decides what the client
    trusts and which certificate it presents::

        import requests
        import securelink
        from securelink.requests_adapter import SecureLinkAdapter

        session = requests.Session()
        session.mount("https://", SecureLinkAdapter(securelink.ClientOptions(ca="ca.pem")))
        session.get("https://api.internal/")

    Failures keep securelink's explanations: a failed certificate check raises
    ``requests.exceptions.SSLError`` whose ``args[0].reason.args[0]`` is the securelink error,
    and whose message includes it.

    Args:
        options_or_context: :class:`~securelink.ClientOptions` (a context of the adapter's own
            is built from them), a client :class:`ssl.SSLContext` from
            :func:`securelink.client_context`, or ``None`` for ``ClientOptions()`` (the certifi
            bundle, no client certificate).  A context given here is used as it is, and urllib3
            sets its ALPN protocols to ``http/1.1``: do not give it a ``shared=True`` one.
        **kwargs: Passed to :class:`requests.adapters.HTTPAdapter` (``pool_connections``,
            ``pool_maxsize``, ``max_retries``, ``pool_block``).

    Raises:
        TypeError: *options_or_context* is neither, or is a server context.

    Attributes:
        ssl_context: The client context every HTTPS connection of this adapter uses.

    Environment variables do not change what it trusts: a session passes ``REQUESTS_CA_BUNDLE``
    (or ``CURL_CA_BUNDLE``) on as ``verify``, and the adapter ignores that path, as securelink
    ignores ``SSLKEYLOGFILE``.  A path given in code (``verify="ca.pem"``) is refused instead.

    .. versionadded:: 0.2.0
    """

    ssl_context: ssl.SSLContext

    def __init__(
        self, options_or_context: ClientOptions | ssl.SSLContext | None = None, **kwargs: Any
    ) -> None:
        if options_or_context is None:
            options_or_context = ClientOptions()
        if isinstance(options_or_context, ClientOptions):
            # Never the shared one: urllib3 changes the context it is given (ALPN), see the
            # module docstring.  (shared=False is the default; it is spelt out for that reason.)
            self.ssl_context = client_context(options_or_context, shared=False)
            self._securelink_options: ClientOptions | None = options_or_context
        elif isinstance(options_or_context, ssl.SSLContext):
            if options_or_context.protocol is not ssl.PROTOCOL_TLS_CLIENT:
                raise TypeError(
                    "SecureLinkAdapter needs a client context (securelink.client_context()),"
                    " not a server context"
                )
            self.ssl_context = options_or_context
            self._securelink_options = None
        else:
            raise TypeError(
                "SecureLinkAdapter takes ClientOptions or an ssl.SSLContext, not"
                f" {type(options_or_context).__name__}"
            )
        super().__init__(**kwargs)

    def init_poolmanager(
        self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any
    ) -> None:
        """Create urllib3's pool manager with this adapter's context (requests calls this)."""
        pool_kwargs["ssl_context"] = self.ssl_context
        super().init_poolmanager(connections, maxsize, block=block, **pool_kwargs)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        """Create the manager for connections through *proxy*, with this adapter's context."""
        # For the servers behind the proxy; the proxy's own TLS, if any, is urllib3's business.
        proxy_kwargs["ssl_context"] = self.ssl_context
        return super().proxy_manager_for(proxy, **proxy_kwargs)

    def build_connection_pool_key_attributes(
        self, request: PreparedRequest, verify: bool | str, cert: Any = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Choose the connection pool for *request*: always one that uses this context."""
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(
            request, verify, cert
        )
        # The context alone decides trust and identity: no CA or certificate files for urllib3
        # to load into it.  (send() has already refused the verify and cert values that differ.)
        for key in ("ca_certs", "ca_cert_dir", "cert_file", "key_file"):
            pool_kwargs.pop(key, None)
        pool_kwargs["cert_reqs"] = "CERT_REQUIRED"
        pool_kwargs["ssl_context"] = self.ssl_context
        return host_params, pool_kwargs

    def cert_verify(self, conn: Any, url: str, verify: bool | str, cert: Any) -> None:
        """Configure verification on *conn*: the context's, never a CA file of requests' own."""
        # requests' version points the pool at certifi's bundle, which urllib3 would load into
        # the context, adding every public CA to what this client trusts.
        conn.cert_reqs = "CERT_REQUIRED"
        conn.ca_certs = None
        conn.ca_cert_dir = None

    def send(
        self,
        request: PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: bool | str = True,
        cert: Any = None,
        proxies: dict[str, str] | None = None,
    ) -> Response:
        """Send *request*, refusing ``verify=`` and ``cert=`` values that contradict the context.

        Raises:
            ConfigurationError: ``verify`` is ``False`` or a path other than the one requests
                took from ``REQUESTS_CA_BUNDLE`` or ``CURL_CA_BUNDLE``, or ``cert`` is given.
        """
        _check_request_settings(verify, cert)
        return super().send(
            request, stream=stream, timeout=timeout, verify=verify, cert=cert, proxies=proxies
        )

    def __getstate__(self) -> dict[str, Any]:
        # A context cannot be pickled; without this, an unpickled adapter would quietly fall
        # back to requests' own TLS settings.  Options can be, and the context is rebuilt.
        if self._securelink_options is None:
            raise TypeError(
                "a SecureLinkAdapter built from an ssl.SSLContext cannot be pickled; build it"
                " from ClientOptions instead"
            )
        state = super().__getstate__()
        state["_securelink_options"] = self._securelink_options
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        options = state["_securelink_options"]
        self.ssl_context = client_context(options, shared=False)
        super().__setstate__(state)


def _environment_bundle() -> str | None:
    # What requests' Session.merge_environment_settings substitutes for verify=True when
    # trust_env is on (requests/sessions.py).  Recognised only to be ignored: the context alone
    # decides what is trusted, whatever the machine's environment says.
    return os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or None


def _check_request_settings(verify: bool | str, cert: Any) -> None:
    if verify is False:
        raise ConfigurationError(
            "verify=False would turn certificate verification off, and securelink contexts"
            " always verify.",
            field="verify",
            hint="To trust a private CA, pass it as ClientOptions(ca=...) to the adapter;"
            " do not turn verification off.",
        )
    if isinstance(verify, str) and verify != _environment_bundle():
        raise ConfigurationError(
            f"verify={verify!r} names a CA bundle, but this adapter trusts exactly what its"
            " securelink context trusts.",
            field="verify",
            hint="Pass the CA as ClientOptions(ca=...) to the adapter, and leave verify at its"
            " default.",
        )
    if cert is not None:
        raise ConfigurationError(
            "cert= names a client certificate, but this adapter presents the one in its"
            " securelink context.",
            field="cert",
            hint="Pass the certificate and key as ClientOptions(cert=..., key=...) to the adapter.",
        )
