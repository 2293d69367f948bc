"""Signing in with a username and password: Django's model backend, and the user's preferences with the user."""

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend


class PreferencesModelBackend(ModelBackend):
    """Django's ``ModelBackend``; the signed-in user of a session comes with their preferences in the same query.

    The admin reads the user's time zone on every page (``core.timezones``): joined to the
    user's row, it costs no query of its own. ``UserPreferences.for_user`` reads the joined row.
    """

    def get_user(self, user_id):
        user_model = get_user_model()
        try:
            user = user_model._default_manager.select_related("crm_preferences").get(pk=user_id)
        except user_model.DoesNotExist:
            return None
        return user if self.user_can_authenticate(user) else None
