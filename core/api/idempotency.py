"""``Idempotency-Key`` on POST: a retried request replays the first response.

The key is claimed by inserting a row (unique per user and key) in the same
transaction as the write it guards. A concurrent request with the same key
blocks on that row (PostgreSQL: the unique index; SQLite: the write lock taken
at BEGIN) until the first one commits, then finds the stored response and
replays it. So a key never produces two records, and a stored key always has a
finished response. Responses with a 5xx status are not kept: the transaction is
rolled back and the client may retry with the same key.
"""

import hashlib
import re

from django.db import IntegrityError, transaction
from django.http import HttpResponse
from rest_framework import exceptions, status
from rest_framework.response import Response

from core.models import IdempotencyKey

HEADER = "Idempotency-Key"
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


class _Replay(Exception):
    def __init__(self, record):
        self.record = record


def request_fingerprint(request):
    digest = hashlib.sha256()
    for part in (request.method.encode(), request.get_full_path().encode(), request.body):
        digest.update(part)
        digest.update(b"\0")
    return digest.hexdigest()


def claim(user, key, fingerprint):
    """Insert the key's row, or raise ``_Replay`` / an API error for a key already used."""
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
        raise _Replay(existing)
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


class IdempotencyMixin:
    """For API views: POSTs with an ``Idempotency-Key`` header run at most once per user and key."""

    _idempotency_fingerprint = None
    _idempotency_record = None

    def dispatch(self, request, *args, **kwargs):
        key = request.headers.get(HEADER)
        if request.method != "POST" or key is None:
            return super().dispatch(request, *args, **kwargs)
        # The raw body is read here, before DRF parses it; the size limit middleware has already run.
        self._idempotency_fingerprint = request_fingerprint(request)
        with transaction.atomic():
            return super().dispatch(request, *args, **kwargs)

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        if self._idempotency_fingerprint is None or not request.user.is_authenticated:
            return
        key = request.headers.get(HEADER, "")
        if not _KEY_RE.match(key):
            raise InvalidIdempotencyKey()
        self._idempotency_record = claim(request.user, key, self._idempotency_fingerprint)

    def handle_exception(self, exc):
        if isinstance(exc, _Replay):
            return replay_response(exc.record)
        return super().handle_exception(exc)

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        record = self._idempotency_record
        if record is None or not isinstance(response, Response):
            return response
        if response.status_code >= 500:
            transaction.set_rollback(True)
            return response
        response.render()
        record.response_status = response.status_code
        record.response_body = response.content
        record.response_headers = {name: response[name] for name in _KEPT_HEADERS if response.has_header(name)}
        record.save(update_fields=["response_status", "response_body", "response_headers"])
        return response
