from django.contrib.admin.apps import AdminConfig


class CRMAdminConfig(AdminConfig):
    """Django's admin, with the CRM's site (dashboard on the index) as ``admin.site``."""

    default_site = "crm_site.admin_site.CRMAdminSite"
