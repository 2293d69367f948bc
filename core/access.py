"""Who may see which records: the one place that knows the ownership rules.

- Superusers and members of "Sales manager" are managers: they see and change everything.
- Members of "Read-only" see everything and change nothing.
- Members of "Sales rep" see and change only the customers they own, and those
  customers' interactions, opportunities and tasks; a record may name further
  users who see it too (a task: its assignee, whoever owns its customer; a
  company: the reps who own its people).
- Anyone else (no role) sees nothing.

Every list, detail, report, export, history, timeline, admin page and form
choice narrows its queryset with :func:`scope`, so that the rules are the same
on every route.
"""

import functools

from django.contrib.auth import get_permission_codename
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import ImproperlyConfigured
from django.db.models import Q

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

# Model label -> the lookup from a row of that model to the user who owns it,
# declared once by the model's own app (register_owner_path(), in its AppConfig.ready()).
_OWNER_PATHS = {}
# Model label -> further lookups to users who see a row too (register_owner_path(..., also_seen_by=...)).
_ALSO_SEEN_BY = {}

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


def stand_in(pk, role):
    """A user with primary key ``pk`` and ``role``, not read from the database.

    For compiling once a query scoped to whoever has ``role`` (``core.api.fastsql``'s
    readers): each run puts the real user's primary key where ``pk`` stands.
    """
    from django.contrib.auth import get_user_model

    user = get_user_model()(pk=pk, is_active=True)
    setattr(user, _CACHE_ATTR, role)
    return user


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


def managers():
    """The active users with the manager role (superusers and members of "Sales manager")."""
    from django.contrib.auth import get_user_model
    from django.db.models import Q

    return (
        get_user_model()
        .objects.filter(Q(is_superuser=True) | Q(groups__name=ROLE_GROUPS[MANAGER]), is_active=True)
        .distinct()
    )


def users_with_a_role():
    """The active users with a role (superusers and members of a role's group): the only ones the CRM
    tells anything of its records (a reminder, a digest, a calendar feed), as they alone may see them."""
    from django.contrib.auth import get_user_model

    return get_user_model().objects.filter(
        Q(is_superuser=True) | Q(groups__name__in=ROLE_GROUPS.values()), is_active=True
    )


def register_owner_path(model, path, *, also_seen_by=()):
    """Declare ``path``, the lookup from a row of ``model`` to the user who owns it (such as ``customer__owner``).

    ``also_seen_by`` names further lookups to users who see (and, with a writing
    role, change) the row too, though they do not own it (a task's ``assignee``):
    a rep's scope is the rows along any of the paths. The owner is the one the
    event log files a change under.

    Each app declares its own models' paths once, in its ``AppConfig.ready()``:
    the API, the admin, exports, imports and reports all ask :func:`scope`.
    """
    _OWNER_PATHS[model._meta.label_lower] = path
    for further in also_seen_by:
        register_viewer_path(model, further)


def register_viewer_path(model, path):
    """Let a rep also see (and change) the rows of ``model`` that ``path`` leads from to them.

    For an app that adds a way to a model it does not own (customers: a company
    is seen by the reps who own its people, ``customers__owner``). The owner path
    stays the one that says whose record it is (events, writes). A path may cross
    a many-valued relation: such rows are matched through a subquery, so none is
    repeated.
    """
    paths = _ALSO_SEEN_BY.setdefault(model._meta.label_lower, [])
    if path not in paths:
        paths.append(path)


@functools.cache
def _is_many_valued(model, path):
    """Whether ``path`` from ``model`` crosses a many-valued relation (read once per model and path)."""
    for name in path.split("__"):
        field = model._meta.get_field(name)
        if field.one_to_many or field.many_to_many:
            return True
        model = field.related_model
    return False


def has_owner_path(model):
    return model._meta.label_lower in _OWNER_PATHS


def owner_path(model):
    try:
        return _OWNER_PATHS[model._meta.label_lower]
    except KeyError:
        raise ImproperlyConfigured(
            f"{model._meta.label} has no owner path: its app must call core.access.register_owner_path()."
        ) from None


def seen_by_paths(model):
    """The owner path of ``model`` and the further paths of users who see its rows."""
    return (owner_path(model), *_ALSO_SEEN_BY.get(model._meta.label_lower, ()))


def sees_own_alone(model, user):
    """Whether :func:`scope` gives ``user`` exactly the rows of ``model`` that they own along its owner path.

    True for a rep when no further path (``register_viewer_path``) leads to the model's rows: figures
    kept per owner are then their book's (``opportunities/figures.py``).
    """
    return role_of(user) == REP and seen_by_paths(model) == (owner_path(model),)


def scope(queryset, user):
    """``queryset`` narrowed to the rows ``user`` may see, along the owner path of its model (or a further one).

    Managers and read-only users get ``queryset`` itself, unchanged.
    """
    role = role_of(user)
    if role in (MANAGER, READ_ONLY):
        return queryset
    if role == REP:
        model = queryset.model
        condition = Q()
        for path in seen_by_paths(model):
            if _is_many_valued(model, path):
                condition |= Q(pk__in=model._base_manager.filter(**{path: user}).values("pk"))
            else:
                condition |= Q(**{path: user})
        return queryset.filter(condition)
    return queryset.none()


def seen_among(model, pks, user):
    """The primary keys among ``pks`` of the rows of ``model`` that ``user`` sees (:func:`scope`), in one query.

    For naming related records (a diff's old customer of a deal): a row outside the user's book is not named.
    All of them for a model without an owner path (users) and for those who see everything.
    """
    pks = {pk for pk in pks if pk is not None}
    if not pks or not has_owner_path(model) or sees_everything(user):
        return pks
    return set(scope(model._base_manager.filter(pk__in=pks), user).values_list("pk", flat=True))


def may_delete(user, model):
    """Whether ``user`` may delete rows of ``model``: their Django permission, as the admin asks it.

    The roles' permissions are the grants of their groups (customers/migrations/0003_staff_groups.py):
    a rep lacks ``delete_customer``, since removing a customer removes everything under it.
    """
    opts = model._meta
    return user.has_perm(f"{opts.app_label}.{get_permission_codename('delete', opts)}")
