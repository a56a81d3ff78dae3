"""Every touch of private CPython, and what differs between cryptography's versions."""

from __future__ import annotations

import _ssl
import ssl

TYPE_CHECKING = False
if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.dsa import DSAPrivateKey, DSAPublicKey

__all__ = ["der_chain", "dsa_key_classes", "tracing_available"]


def dsa_key_classes() -> tuple[type[DSAPrivateKey], type[DSAPublicKey]]:
    """DSA's private and public key classes, for ``isinstance`` checks.

    cryptography 51 deprecated DSA and warns on every access to the module's public names.
    securelink only recognises DSA keys (to refuse them or to name them), so it uses the
    module's own aliases that do not warn where they exist; older releases do not warn at all.
    """
    from cryptography.hazmat.primitives.asymmetric import dsa

    # cryptography 51 replaces the module in sys.modules by a wrapper that warns on access; its
    # own namespace (with the aliases that do not warn) is the wrapped module's.
    module = vars(getattr(dsa, "_module", dsa))
    private: type[DSAPrivateKey] = module.get("_DSAPrivateKey") or module["DSAPrivateKey"]
    public: type[DSAPublicKey] = module.get("_DSAPublicKey") or module["DSAPublicKey"]
    return private, public


def der_chain(obj: object, verified: bool) -> list[bytes]:
    """The chain a TLS socket or object holds, as DER, leaf first; empty if it holds none.

    The private ``_sslobj`` accessors keep the chain after a failure on every supported version
    (the public ones arrived in 3.13); see the error catalogue's "what a failed socket exposes".
    """
    sslobj = getattr(obj, "_sslobj", None)
    getter = getattr(sslobj, "get_verified_chain" if verified else "get_unverified_chain", None)
    if getter is None:
        return []
    try:
        certs = getter() or []
    except (ssl.SSLError, ValueError, AttributeError):  # pragma: no cover - defensive
        return []
    return [c if isinstance(c, bytes) else c.public_bytes(_ssl.ENCODING_DER) for c in certs]


def tracing_available() -> bool:
    """Return whether this Python offers the (private) message callback tracing relies on."""
    return hasattr(ssl.SSLContext, "_msg_callback")
