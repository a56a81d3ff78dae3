"""A requests transport adapter that uses a securelink context: ``SecureLinkAdapter``.

Imported on its own (``from securelink.requests_adapter import SecureLinkAdapter``) so that
``import securelink`` never imports requests, which securelink does not depend on.
"""

from ._requests_adapter import SecureLinkAdapter

__all__ = ["SecureLinkAdapter"]
