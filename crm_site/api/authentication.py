"""Bearer tokens (django-rest-knox: stored as SHA-512 digests, with an expiry)."""

import binascii
from hmac import compare_digest

from django.utils import timezone
from knox.auth import TokenAuthentication
from knox.crypto import hash_token
from knox.models import get_token_model
from knox.settings import CONSTANTS
from rest_framework import exceptions


class BearerTokenAuthentication(TokenAuthentication):
    """knox's scheme, looked up in one query.

    knox also sweeps every other token of the user on each request; here only
    the presented token is checked (and deleted once expired), and a token that
    is not valid UTF-8 is refused instead of raising.
    """

    def authenticate_credentials(self, token):
        invalid = exceptions.AuthenticationFailed("Invalid or expired token.", code="authentication_failed")
        try:
            token = token.decode("utf-8")
            digest = hash_token(token)
        except (UnicodeDecodeError, TypeError, ValueError, binascii.Error):
            raise invalid from None
        candidates = (
            get_token_model().objects.filter(token_key=token[: CONSTANTS.TOKEN_KEY_LENGTH]).select_related("user")
        )
        for auth_token in candidates:
            if not compare_digest(digest, auth_token.digest):
                continue
            if auth_token.expiry is not None and auth_token.expiry < timezone.now():
                auth_token.delete()
                raise invalid
            return self.validate_user(auth_token)
        raise invalid
