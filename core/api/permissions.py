"""API permissions by role (see ``core.access`` and docs/roles.md).

Which *rows* a user sees is the queryset's business (``scope()``, out of scope
is a 404); these classes decide which *requests* a role may make at all (a 403).
"""

from rest_framework import permissions

from core import access


class HasRole(permissions.BasePermission):
    """Signed in with a role; read-only users may only read; a delete needs the user's delete permission.

    Anonymous requests get the 401 of the authentication scheme; a signed-in
    user without a role gets a 403 for every data endpoint.
    """

    message = "Your account has no role in the CRM; ask a manager to give you one."

    def has_permission(self, request, view):
        user = request.user
        if not (user and user.is_authenticated):
            return False
        role = access.role_of(user)
        if role is None:
            return False
        if request.method in permissions.SAFE_METHODS:
            return True
        if role == access.READ_ONLY:
            self.message = "Read-only users cannot change data."
            return False
        if request.method == "DELETE":
            model = getattr(getattr(view, "queryset", None), "model", None)
            if model is not None and not access.may_delete(user, model):
                self.message = "Your role may not delete these records; ask a manager."
                return False
        return True


class IsManager(permissions.BasePermission):
    """Sales managers (and superusers) only."""

    message = "Only sales managers may do this."

    def has_permission(self, request, view):
        user = request.user
        return bool(user and user.is_authenticated and access.is_manager(user))
