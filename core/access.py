"""Who may see which records: the one place that knows the ownership rules.

- Superusers and members of "Sales manager" are managers: they see and change everything.
- Members of "Read-only" see everything and change nothing.
- Members of "Sales rep" see and change only the customers they own, and those
  customers' interactions and opportunities.
- Anyone else (no role) sees nothing.

Every list, detail, report, export, history, timeline, admin page and form
choice narrows its queryset with :func:`scope`, so that the rules are the same
on every route.
"""

from django.contrib.auth import get_permission_codename
from django.contrib.auth.models import AnonymousUser

MANAGER = "manager"
REP = "rep"
READ_ONLY = "read_only"

# Role -> the staff group that grants it (created by customers/migrations/0003_staff_groups.py).
ROLE_GROUPS = {
    MANAGER: "Sales manager",
    REP: "Sales rep",
    READ_ONLY: "Read-only",
}
# The strongest role wins when a user is in several groups.
_PRECEDENCE = (MANAGER, READ_ONLY, REP)

# Model label -> the lookup from a row of that model to the user who owns it.
OWNER_PATHS = {
    "customers.customer": "owner",
    "customers.historicalcustomer": "owner",
    "interactions.interaction": "customer__owner",
    "opportunities.opportunity": "customer__owner",
    "opportunities.stagechange": "opportunity__customer__owner",
    # Events keep the owner of their record at the time: a deleted record's events stay in its book.
    "core.event": "owner",
}

_CACHE_ATTR = "_crm_role"


def role_of(user):
    """``"manager"``, ``"rep"``, ``"read_only"`` or ``None`` (no role, or not signed in).

    Cached on the user object, so that a request asks the database once.
    """
    if user is None or isinstance(user, AnonymousUser) or not user.is_authenticated or not user.is_active:
        return None
    if user.is_superuser:
        return MANAGER
    if not hasattr(user, _CACHE_ATTR):
        names = set(user.groups.filter(name__in=ROLE_GROUPS.values()).values_list("name", flat=True))
        role = next((role for role in _PRECEDENCE if ROLE_GROUPS[role] in names), None)
        setattr(user, _CACHE_ATTR, role)
    return getattr(user, _CACHE_ATTR)


def role_rank_sql(user_pk_column):
    """SQL (and its parameters) for the rank in ``_PRECEDENCE`` of the user's strongest role group.

    A correlated subquery on ``user_pk_column``, so that a query that loads a
    user (the bearer token lookup) brings the role along; NULL without a role.
    """
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.db import connection

    quote = connection.ops.quote_name
    membership = get_user_model().groups.through
    user_column = membership._meta.get_field("user").column
    group_column = membership._meta.get_field("group").column
    groups = quote(Group._meta.db_table)
    link = quote(membership._meta.db_table)
    cases = " ".join("WHEN %s THEN %s" for _ in _PRECEDENCE)
    params = [value for rank, role in enumerate(_PRECEDENCE) for value in (ROLE_GROUPS[role], rank)]
    sql = (
        f"(SELECT MIN(CASE {groups}.{quote('name')} {cases} END) FROM {link} "
        f"INNER JOIN {groups} ON {groups}.{quote('id')} = {link}.{quote(group_column)} "
        f"WHERE {link}.{quote(user_column)} = {user_pk_column})"
    )
    return sql, params


def remember_role(user, rank):
    """Cache the role found by :func:`role_rank_sql` on ``user``."""
    setattr(user, _CACHE_ATTR, None if rank is None else _PRECEDENCE[rank])


def sees_everything(user):
    return role_of(user) in (MANAGER, READ_ONLY)


def can_write(user):
    return role_of(user) in (MANAGER, REP)


def is_manager(user):
    return role_of(user) == MANAGER


def owner_path(model):
    return OWNER_PATHS[model._meta.label_lower]


def scope(queryset, user, owner_field=None):
    """``queryset`` narrowed to the rows ``user`` may see.

    ``owner_field`` is the lookup from the queryset's rows to their owner;
    by default the one registered for the model in ``OWNER_PATHS``. Managers
    and read-only users get ``queryset`` itself (unchanged, so fast paths that
    need a plain queryset stay available to them).
    """
    role = role_of(user)
    if role in (MANAGER, READ_ONLY):
        return queryset
    if role == REP:
        return queryset.filter(**{owner_field or owner_path(queryset.model): user})
    return queryset.none()


def may_delete(user, model):
    """Whether ``user`` may delete rows of ``model``: their Django permission, as the admin asks it.

    The roles' permissions are the grants of their groups (customers/migrations/0003_staff_groups.py):
    a rep lacks ``delete_customer``, since removing a customer removes everything under it.
    """
    opts = model._meta
    return user.has_perm(f"{opts.app_label}.{get_permission_codename('delete', opts)}")
