"""Bodies that are already the whole response envelope, and the answer that is a message.

Views return their payload as usual and the renderer wraps it as
``{"success": true, "data": ...}``. The few bodies that carry more than data
(a page's ``meta``, an error, a message) are built here as an :class:`Envelope`,
which the renderer sends as it is. The renderer tells the two apart by type,
never by looking for a ``success`` key, so a record with a field of that name is
still wrapped like any other.
"""

from rest_framework.response import Response


class Envelope(dict):
    """A response body that is already the envelope (``success`` and the rest)."""


class MessageResponse(Response):
    """``{"success": true, "message": ..., "data": ...}``: the answer to a delete, or a logout."""

    def __init__(self, message, data=None, **kwargs):
        super().__init__(Envelope(success=True, message=message, data=data), **kwargs)
