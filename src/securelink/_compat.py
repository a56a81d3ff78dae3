"""Differences between the versions of cryptography securelink supports, in one place."""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.dsa import DSAPrivateKey, DSAPublicKey

__all__ = ["dsa_key_classes"]


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
