"""ETags and the If-Match / If-None-Match comparisons.

The ETag is a digest of the record's JSON representation, so it changes with
any field a client can see, and a client that sends it back in ``If-Match``
updates or deletes only the version it read. This module only computes and
compares tags; the base viewset (``core.api.viewsets``) decides when, after it
has read (and, for a write, locked) the record.
"""

import hashlib

from django.utils.http import parse_etags
from rest_framework import exceptions, status
from rest_framework.utils.encoders import JSONEncoder


class PreconditionFailed(exceptions.APIException):
    status_code = status.HTTP_412_PRECONDITION_FAILED
    default_code = "precondition_failed"
    default_detail = "The record has changed since it was read: If-Match does not match its current ETag."


# ``json.dumps(data, cls=JSONEncoder, sort_keys=True, ensure_ascii=False, separators=(",", ":"))``, with the
# encoder made once instead of on each call (it holds nothing but these settings).
_etag_payload = JSONEncoder(sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode


def compute_etag(data, ignored=frozenset()):
    """The strong ETag of a representation, leaving out the top-level keys in ``ignored``."""
    if ignored:
        data = {key: value for key, value in data.items() if key not in ignored}
    payload = _etag_payload(data)
    return f'"{hashlib.sha256(payload.encode()).hexdigest()[:40]}"'


def _strip_weak(etag):
    return etag[2:] if etag.startswith("W/") else etag


def if_match_passes(header, etag):
    """Strong comparison, as RFC 9110 requires for If-Match."""
    candidates = parse_etags(header)
    return "*" in candidates or etag in candidates


def if_none_match_matches(header, etag):
    """Weak comparison, as RFC 9110 requires for If-None-Match."""
    candidates = parse_etags(header)
    return "*" in candidates or etag in {_strip_weak(candidate) for candidate in candidates}
