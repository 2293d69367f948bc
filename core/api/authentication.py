"""Bearer tokens (django-rest-knox: stored as SHA-512 digests, with an expiry)."""

import binascii
from functools import cache
from hmac import compare_digest

from django.contrib.auth.hashers import is_password_usable
from django.db import connection
from django.utils import timezone
from knox.auth import TokenAuthentication
from knox.crypto import hash_token
from knox.models import get_token_model
from knox.settings import CONSTANTS
from rest_framework import exceptions

from core.access import remember_role, role_rank_sql

from .fastsql import reader


class BearerTokenAuthentication(TokenAuthentication):
    """knox's scheme, looked up in one query.

    knox also sweeps every other token of the user on each request; here only
    the presented token is checked (and deleted once expired), and a token that
    is not valid UTF-8 is refused instead of raising. Nothing is cached between
    requests: a revoked token is refused by every worker at once.
    """

    def authenticate_credentials(self, token):
        invalid = exceptions.AuthenticationFailed("Invalid or expired token.", code="authentication_failed")
        try:
            token = token.decode("utf-8")
            digest = hash_token(token)
        except (UnicodeDecodeError, TypeError, ValueError, binascii.Error):
            raise invalid from None
        for auth_token in _tokens_with_users(token[: CONSTANTS.TOKEN_KEY_LENGTH]):
            if not compare_digest(digest, auth_token.digest):
                continue
            if auth_token.expiry is not None and auth_token.expiry < timezone.now():
                auth_token.delete()
                raise invalid
            return self.validate_user(auth_token)
        raise invalid


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
    with connection.cursor() as cursor:
        cursor.execute(sql, [*rank_params, token_key])
        rows = cursor.fetchall()
    split = len(token_reader)
    for row in rows:
        auth_token = token_reader.instance(row[:split])
        auth_token.user = user_reader.instance(row[split:-1])
        remember_role(auth_token.user, row[-1])
        yield auth_token


def note_credential_change(sender, instance, raw=False, using=None, update_fields=None, **kwargs):
    """``pre_save`` of the user model: mark a save that must end the user's bearer tokens.

    A token must not outlive the password it was obtained with, nor the
    account's deactivation (refused at once by ``validate_user``, and revoked
    here so that reactivating the account does not bring it back). New
    passwords are seen without a query: ``set_password()`` (the admin's
    password form, ``changepassword``) leaves the raw password in
    ``_password`` until the save. Any other save that writes the password
    (``set_unusable_password()``, a hash assigned directly) compares it with
    the stored one; Django's own re-hash of the same password at login, which
    saves only the password field, is not a change. Saves that do not write
    the password (``last_login`` at login) cost nothing.
    """
    if raw or instance._state.adding:
        return
    saved = None if update_fields is None else frozenset(update_fields)
    revoke = False
    if (saved is None or "is_active" in saved) and not instance.is_active:
        revoke = True
    elif saved is None or "password" in saved:
        if getattr(instance, "_password", None) is not None:
            revoke = True
        elif saved != {"password"} or not is_password_usable(instance.password):
            stored = (
                sender._default_manager.using(using).filter(pk=instance.pk).values_list("password", flat=True).first()
            )
            revoke = stored is not None and stored != instance.password
    instance._revoke_tokens = revoke


def revoke_tokens_after_credential_change(sender, instance, using=None, **kwargs):
    """``post_save`` of the user model: delete the tokens of a save so marked, once it has succeeded."""
    if getattr(instance, "_revoke_tokens", False):
        instance._revoke_tokens = False
        get_token_model().objects.using(using).filter(user_id=instance.pk).delete()
