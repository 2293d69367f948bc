"""Changesets in the admin: the list of bulk changes, each page's per-row diff, and the Undo button.

Reps see the changesets they made, managers and read-only users all (``core.access.scope``);
nobody adds (``AnyRoleViews``), edits or deletes one. The Undo page (``<id>/undo/``) lists the records
changed since, if any, and offers to skip them; the POST undoes through
``core.changesets.undo`` under the same rules as the API (``undo_refusal``).
"""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import OperationalError, transaction
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from core import access, changesets
from core.admin.deadlocks import deadlocked
from core.admin.display import UnlinkedLinesMixin
from core.admin.roles import AnyRoleViews
from core.changesets import Changeset


def note_recorded(request, changeset, site_name="admin"):
    """Tell the user that a bulk change was recorded, with a link to its page (to see it or undo it)."""
    if changeset is not None and changeset.pk is not None:
        link = reverse(f"{site_name}:core_changeset_change", args=[changeset.pk])
        messages.info(request, format_html('{} <a href="{}">{}</a>', _("Recorded as one change:"), link, changeset))


UNDO_DEADLOCKED = _("Someone else was changing the same records at the same moment, so nothing was undone. Try again.")

# Rows shown on a changeset's page; the API pages through all of them.
ROWS_SHOWN = 500


def counts_text(counts):
    """ "customers.customer: +2 ~5 -1" per model, for a list column."""
    parts = []
    for label, ops in (counts or {}).items():
        parts.append(
            f"{label.split('.')[-1]}: +{ops.get('created', 0)} ~{ops.get('updated', 0)} -{ops.get('deleted', 0)}"
        )
    return "; ".join(parts) or "—"


def _cell(value):
    return "—" if value is None else str(value)


def diff_table(rows, more=0):
    """The rows of a changeset (or of a dry run's preview) as an HTML table: record, change, field, before, after."""
    lines = []
    for row in rows:
        changes = row.changes() or [("", None, None)]
        for index, (name, before, after) in enumerate(changes):
            lines.append(
                (
                    row.name if index == 0 else "",
                    f"{row.model} #{row.object_id}" if index == 0 else "",
                    row.get_op_display() if index == 0 else "",
                    name,
                    _cell(before),
                    _cell(after),
                )
            )
    body = format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", lines)
    tail = format_html('<p class="help">{}</p>', _("… and %(count)d more rows.") % {"count": more}) if more else ""
    return format_html(
        '<table class="changeset-diff"><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th>'
        "<th>{}</th></tr></thead><tbody>{}</tbody></table>{}",
        _("Record"),
        _("Id"),
        _("Change"),
        _("Field"),
        _("Before"),
        _("After"),
        body,
        tail,
    )


class ChangesetAdmin(AnyRoleViews, UnlinkedLinesMixin, admin.ModelAdmin):
    list_display = ["created_at", "user", "kind", "label", "counts_column", "status"]
    list_filter = ["kind", "status"]
    list_select_related = ["user"]
    search_fields = ["label"]
    date_hierarchy = "created_at"
    fields = [
        "kind",
        "label",
        "user",
        "created_at",
        "source",
        "counts_column",
        "status",
        "undoes",
        "undone_by",
        "undone_at",
        "diff",
    ]
    readonly_fields = fields
    actions = None

    @admin.display(description=_("counts"))
    def counts_column(self, obj):
        return counts_text(obj.counts)

    @admin.display(description=_("changes"))
    def diff(self, obj):
        rows = list(obj.rows.order_by("seq")[: ROWS_SHOWN + 1])
        total = obj.total
        return diff_table(rows[:ROWS_SHOWN], more=max(total - ROWS_SHOWN, 0))

    def get_queryset(self, request):
        return access.scope(super().get_queryset(request), request.user)

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        return [
            path("<path:object_id>/undo/", self.admin_site.admin_view(self.undo_view), name="{}_{}_undo".format(*info)),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        obj = self.get_object(request, object_id)
        extra = {**(extra_context or {})}
        if obj is not None and obj.status == Changeset.Status.APPLIED and access.can_write(request.user):
            extra["undo_url"] = reverse("admin:core_changeset_undo", args=[obj.pk])
        return super().change_view(request, object_id, form_url, extra)

    def undo_view(self, request, object_id):
        changeset = self.get_object(request, object_id)
        if changeset is None:
            raise Http404
        refusal = changesets.undo_refusal(request.user, changeset)
        if refusal:
            raise PermissionDenied(refusal)
        page = reverse("admin:core_changeset_change", args=[changeset.pk])
        if changeset.status == Changeset.Status.UNDONE:
            self.message_user(request, _("This changeset has already been undone."), messages.WARNING)
            return HttpResponseRedirect(page)
        if request.method == "POST":
            skip = request.POST.get("skip_conflicts") == "yes"
            try:
                with transaction.atomic():
                    done = changesets.undo(changeset, request.user, skip_conflicts=skip)
            except changesets.UndoRefused as refused:
                self.message_user(request, refused.message, messages.ERROR)
                return HttpResponseRedirect(reverse("admin:core_changeset_undo", args=[changeset.pk]))
            except OperationalError as exc:
                if not deadlocked(request, exc):
                    raise
                # Aborted by the database in a deadlock with another change of the same records: all of the
                # undo was rolled back. Its page again, to undo it once more (or see what changed since).
                self.message_user(request, UNDO_DEADLOCKED, messages.ERROR)
                return HttpResponseRedirect(reverse("admin:core_changeset_undo", args=[changeset.pk]))
            self.message_user(request, _("Undone: %(changeset)s.") % {"changeset": done}, messages.SUCCESS)
            target = reverse("admin:core_changeset_change", args=[done.pk]) if done.pk else page
            return HttpResponseRedirect(target)
        conflicts = changesets.conflicts(changeset, user=request.user)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": _("Undo %(changeset)s") % {"changeset": changeset},
            "changeset": changeset,
            "counts": counts_text(changeset.counts),
            "conflicts": [changesets.conflict_text(conflict) for conflict in conflicts],
            "page_url": page,
        }
        return TemplateResponse(request, "admin/core/changeset/undo.html", context)
