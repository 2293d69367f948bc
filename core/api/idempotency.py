"""``Idempotency-Key`` on POST: a retried request replays the first response.

The key is claimed by inserting a row (unique per user and key) in the same
transaction as the write it guards. A concurrent request with the same key
blocks on that row (PostgreSQL: the unique index; SQLite: the write lock taken
at BEGIN) until the first one commits, then finds the stored response and
replays it. So a key never produces two records, and a stored key always has a
finished response. Responses with a 5xx status are not kept: the transaction is
rolled back and the client may retry with the same key.

This module only claims keys, stores answers and replays them; the base
viewset (``core.api.viewsets``) opens the transaction and calls it.
"""

import hashlib
import re

from django.db import IntegrityError, transaction
from django.http import HttpResponse
from rest_framework import exceptions, status

from core.models import IdempotencyKey

HEADER = "Idempotency-Key"
# The header as the WSGI environ holds it: read from ``META``, as building ``request.headers`` from the
# whole environ for it costs a create more than the rest of the key's handling.
META_KEY = "HTTP_IDEMPOTENCY_KEY"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255
KEY_PATTERN = r"^[\x21-\x7e]{1,255}$"
_KEY_RE = re.compile(KEY_PATTERN)
# Headers of the first response that a replay repeats.
_KEPT_HEADERS = ("Content-Type", "ETag", "Location")


class InvalidIdempotencyKey(exceptions.APIException):
    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "invalid_idempotency_key"
    default_detail = f"{HEADER} must be 1 to {MAX_KEY_LENGTH} visible ASCII characters."


class IdempotencyKeyReused(exceptions.APIException):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_code = "idempotency_key_reused"
    default_detail = f"This {HEADER} was already used for a different request."


class IdempotencyKeyInProgress(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "idempotency_key_in_progress"
    default_detail = f"A request with this {HEADER} is still being processed; retry shortly."


class Replay(Exception):
    """The key was used before for this very request: answer with its stored response."""

    def __init__(self, record):
        self.record = record


def request_fingerprint(request):
    digest = hashlib.sha256()
    for part in (request.method.encode(), request.get_full_path().encode(), request.body):
        digest.update(part)
        digest.update(b"\0")
    return digest.hexdigest()


def claim(user, key, fingerprint):
    """Insert the key's row, or raise ``Replay`` / an API error for a key already used.

    Called inside the request's transaction, which the write it guards shares.
    """
    for _attempt in range(3):
        try:
            with transaction.atomic():
                return IdempotencyKey.objects.create(user=user, key=key, fingerprint=fingerprint)
        except IntegrityError:
            existing = IdempotencyKey.objects.filter(user=user, key=key).first()
        if existing is None:
            continue
        if existing.is_expired:
            existing.delete()
            continue
        if existing.fingerprint != fingerprint:
            raise IdempotencyKeyReused()
        if existing.response_status is None:
            raise IdempotencyKeyInProgress()
        raise Replay(existing)
    raise IdempotencyKeyInProgress()


def replay_response(record):
    headers = dict(record.response_headers)
    response = HttpResponse(
        bytes(record.response_body), status=record.response_status, content_type=headers.pop("Content-Type", None)
    )
    for name, value in headers.items():
        response[name] = value
    response[REPLAYED_HEADER] = "true"
    return response


def valid_key(key):
    return bool(_KEY_RE.match(key))


def remember(record, response):
    """Store ``response`` (rendered here) as the answer to the key of ``record``."""
    response.render()
    record.response_status = response.status_code
    record.response_body = response.content
    record.response_headers = {name: response[name] for name in _KEPT_HEADERS if response.has_header(name)}
    record.save(update_fields=["response_status", "response_body", "response_headers"])
