"""Bearer tokens (django-rest-knox: stored as SHA-512 digests, with an expiry)."""

import binascii
from functools import cache
from hmac import compare_digest

from django.db import connection, connections
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from knox.auth import TokenAuthentication
from knox.crypto import hash_token
from knox.models import get_token_model
from knox.settings import CONSTANTS, knox_settings
from rest_framework import HTTP_HEADER_ENCODING, exceptions

from core.access import remember_role, role_rank_sql

from .fastsql import reader


def authorization_words(request):
    """The words of the ``Authorization`` header, as bytes, as DRF's ``get_authorization_header`` splits them.

    Read from ``META``: DRF reads ``request.headers``, which Django builds from
    every header of the request on first use, and nothing else on a bearer
    API request needs it.
    """
    header = request.META.get("HTTP_AUTHORIZATION", b"")
    if isinstance(header, str):
        header = header.encode(HTTP_HEADER_ENCODING)
    return header.split()


def is_bearer(words):
    """Whether the header's ``words`` are the bearer scheme's (its first word, in any case)."""
    return bool(words) and words[0].lower() == knox_settings.AUTH_HEADER_PREFIX.encode().lower()


class BearerTokenAuthentication(TokenAuthentication):
    """knox's scheme, looked up in one query.

    knox also sweeps every other token of the user on each request; here only
    the presented token is checked (and deleted once expired), and a token that
    is not valid UTF-8 is refused instead of raising. Nothing is cached between
    requests: a revoked token is refused by every worker at once.

    A token ends with the password hash and the activation it was issued under:
    a database trigger (core migration ``0004``) deletes a user's tokens when the
    row's password changes or the user is deactivated, however the row is
    written, so the lookup needs no check of its own.
    """

    def authenticate(self, request):
        # knox's own, but for the header's words (see authorization_words).
        words = authorization_words(request)
        if not is_bearer(words):
            return None  # no credentials, or another scheme's
        if len(words) == 1:
            raise exceptions.AuthenticationFailed(_("Invalid token header. No credentials provided."))
        if len(words) > 2:
            raise exceptions.AuthenticationFailed(_("Invalid token header. Token string should not contain spaces."))
        return self.authenticate_credentials(words[1])

    def authenticate_credentials(self, token):
        try:
            token = token.decode("utf-8")
            digest = hash_token(token)
        except (UnicodeDecodeError, TypeError, ValueError, binascii.Error):
            raise _invalid() from None
        for auth_token in _tokens_with_users(token[: CONSTANTS.TOKEN_KEY_LENGTH]):
            if not compare_digest(digest, auth_token.digest):
                continue
            if auth_token.expiry is not None and auth_token.expiry < timezone.now():
                auth_token.delete()
                raise _invalid()
            return self.validate_user(auth_token)
        raise _invalid()


def _invalid():
    return exceptions.AuthenticationFailed("Invalid or expired token.", code="authentication_failed")


@cache
def _token_lookup():
    """The token-and-user join, built once: every API request runs it."""
    token_model = get_token_model()
    user_field = token_model._meta.get_field("user")
    token_reader, user_reader = reader(token_model), reader(user_field.related_model)
    quote = connection.ops.quote_name
    user_pk = f"{user_reader.table}.{quote(user_field.related_model._meta.pk.column)}"
    # The user's role comes along in the same query (see core.access.role_of).
    rank_sql, rank_params = role_rank_sql(user_pk)
    sql = (
        f"SELECT {', '.join(token_reader.columns + user_reader.columns)}, {rank_sql} "
        f"FROM {token_reader.table} INNER JOIN {user_reader.table} "
        f"ON {token_reader.table}.{quote(user_field.column)} = "
        f"{user_reader.table}.{quote(user_field.related_model._meta.pk.column)} "
        f"WHERE {token_reader.table}.{quote('token_key')} = %s"
    )
    return sql, rank_params, token_reader, user_reader


def _tokens_with_users(token_key):
    sql, rank_params, token_reader, user_reader = _token_lookup()
    # The connection looked up once (each lookup goes through the thread's connections).
    db = connections[token_reader.using]
    with db.cursor() as cursor:
        cursor.execute(sql, [*rank_params, token_key])
        rows = cursor.fetchall()
    split = len(token_reader)
    for row in rows:
        auth_token = token_reader.instance(row[:split], db)
        auth_token.user = user_reader.instance(row[split:-1], db)
        remember_role(auth_token.user, row[-1])
        yield auth_token
