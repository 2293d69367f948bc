"""Who may do what on the admin pages of shared definitions (tags, custom fields) and of rows the CRM writes."""

from core import access


class ReadByAllWrittenByManagers:
    """Every role sees the module and its rows; managers alone add, change and delete them."""

    def has_module_permission(self, request):
        return access.role_of(request.user) is not None

    def has_view_permission(self, request, obj=None):
        return access.role_of(request.user) is not None

    def has_add_permission(self, request):
        return access.is_manager(request.user)

    def has_change_permission(self, request, obj=None):
        return access.is_manager(request.user)

    def has_delete_permission(self, request, obj=None):
        return access.is_manager(request.user)


class AnyRoleViews:
    """For a model admin of rows the CRM writes (not typed in): every role sees the module and the list
    (the queryset narrows the rows to the user's own), and nobody adds one by hand."""

    def has_module_permission(self, request):
        return access.role_of(request.user) is not None

    def has_view_permission(self, request, obj=None):
        return access.role_of(request.user) is not None

    def has_add_permission(self, request):
        return False
