"""The admin's merge: the "Merge selected" action and the side-by-side page (``<model>/merge/?ids=a,b``).

One mixin for every mergeable model admin, which names its model's merge
service (``merge_service``, e.g. ``customers.services.merge_customers``) and the
fields the page offers a choice for (``merge_fields``). The page shows a column
per record, a radio per field for the value the survivor keeps (preselected as
the service's rules would choose), the survivor, and what would move to it (the
merge run and rolled back). Confirming posts the choices with the ``updated_at``
of each record as shown: a record changed meanwhile refuses the merge. The same
checks as the API: a writing role, every record in the user's book.
"""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.http import urlencode
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from core import merges
from core.admin.changesets import note_recorded


def parse_ids(text):
    """The ids of ``?ids=3,5``: a list of distinct integers, or None if the text is not that."""
    parts = [part.strip() for part in (text or "").split(",") if part.strip()]
    if not parts or not all(part.isdigit() and len(part) < 19 for part in parts):
        return None
    ids = [int(part) for part in parts]
    return ids if len(set(ids)) == len(ids) else None


def _shown(record, name):
    field = record._meta.get_field(name)
    if field.choices:
        value = getattr(record, f"get_{name}_display")()
    else:
        value = getattr(record, name)
    return "—" if value in (None, "") else str(value)


class MergeAdminMixin:
    merge_service = None
    merge_fields = ()

    @admin.action(description=_("Merge selected"), permissions=["change"])
    def merge_selected(self, request, queryset):
        ids = list(queryset.order_by("pk").values_list("pk", flat=True)[: merges.MAX_MERGED + 2])
        if not 2 <= len(ids) <= merges.MAX_MERGED + 1:
            self.message_user(
                request,
                _("Select between 2 and %(most)d records to merge.") % {"most": merges.MAX_MERGED + 1},
                messages.WARNING,
            )
            return None
        return HttpResponseRedirect(f"{self._merge_url()}?{urlencode({'ids': ','.join(map(str, ids))})}")

    def get_urls(self):
        prefix = f"{self.opts.app_label}_{self.opts.model_name}"
        return [
            path("merge/", self.admin_site.admin_view(self.merge_view), name=f"{prefix}_merge"),
            *super().get_urls(),
        ]

    def _merge_url(self):
        return reverse(f"{self.admin_site.name}:{self.opts.app_label}_{self.opts.model_name}_merge")

    def merge_view(self, request):
        if not self.has_change_permission(request):
            raise PermissionDenied
        changelist = reverse(f"{self.admin_site.name}:{self.opts.app_label}_{self.opts.model_name}_changelist")
        ids = parse_ids(request.GET.get("ids"))
        if ids is None or not 2 <= len(ids) <= merges.MAX_MERGED + 1:
            self.message_user(
                request,
                _("Select between 2 and %(most)d records to merge.") % {"most": merges.MAX_MERGED + 1},
                messages.WARNING,
            )
            return HttpResponseRedirect(changelist)
        related = [name for name in self.merge_fields if self.model._meta.get_field(name).many_to_one]
        found = {record.pk: record for record in self.get_queryset(request).filter(pk__in=ids).select_related(*related)}
        if len(found) != len(ids):
            self.message_user(request, _("Some of these records no longer exist or are not yours."), messages.ERROR)
            return HttpResponseRedirect(changelist)
        records = [found[pk] for pk in ids]
        for record in records:
            # The version the user is shown; posted back, a record changed since refuses the merge.
            record.merge_version = request.POST.get(f"version:{record.pk}") or record.updated_at.isoformat()
        if request.method == "POST":
            survivor, choices, versions = self._merge_posted(request, records)
            if "confirm" in request.POST:
                try:
                    result = type(self).merge_service(
                        survivor,
                        [r for r in records if r.pk != survivor.pk],
                        choices=choices,
                        user=request.user,
                        versions=versions,
                    )
                except merges.MergeRefused as exc:
                    self.message_user(request, exc.message, messages.ERROR)
                else:
                    self.message_user(
                        request,
                        _("%(count)d record(s) merged into “%(record)s”.")
                        % {"count": len(result["merged_ids"]), "record": result["survivor"]},
                        messages.SUCCESS,
                    )
                    note_recorded(request, result["changeset"], self.admin_site.name)
                    return HttpResponseRedirect(
                        reverse(
                            f"{self.admin_site.name}:{self.opts.app_label}_{self.opts.model_name}_change",
                            args=[result["survivor"].pk],
                        )
                    )
        else:
            survivor, choices = records[0], None
        return self._merge_page(request, records, survivor, choices)

    def _merge_posted(self, request, records):
        by_id = {str(record.pk): record for record in records}
        survivor = by_id.get(request.POST.get("survivor"), records[0])
        choices = {}
        for name in self._merge_choice_names(records):
            source = by_id.get(request.POST.get(f"field:{name}"))
            if source is not None:
                choices[name] = source.pk
        versions = {record.pk: record.merge_version for record in records}
        return survivor, choices, versions

    def _merge_choice_names(self, records):
        keys = sorted({key for record in records for key in (record.custom_fields or {})})
        return [*self.merge_fields, *(f"{merges.CUSTOM_PREFIX}{key}" for key in keys)]

    def _merge_preview(self, request, records, survivor, choices):
        """What the merge would make (run, then rolled back): the survivor and the counts that move; or the refusal."""
        others = [record.pk for record in records if record.pk != survivor.pk]
        try:
            with merges.trial(dry_run=True):
                result = type(self).merge_service(survivor.pk, others, choices=choices, user=request.user)
                merged = {name: _shown(result["survivor"], name) for name in self.merge_fields}
                tags = list(result["survivor"].tags or [])
        except merges.MergeRefused as exc:
            return {"refused": exc.message}
        # The kinds are the movers' names ("interactions", "people"), each also a model's plural in the catalogue.
        moved = [(gettext(kind), count) for kind, count in result["moved"].items()]
        return {"moved": result["moved"], "moved_labels": moved, "values": merged, "tags": tags}

    def _merge_page(self, request, records, survivor, choices):
        others = [record for record in records if record.pk != survivor.pk]
        defaults = {}
        if choices is None:
            # Preselected as the service would choose: the survivor's, else the first non-empty.
            chosen = merges.chosen_values(survivor, others, self.merge_fields, {})
            for name in self.merge_fields:
                attname = self.model._meta.get_field(name).attname
                source = next((r for r in (survivor, *others) if getattr(r, attname) == chosen[attname]), survivor)
                defaults[name] = source.pk
            choices = {}
        rows = []
        for name in self._merge_choice_names(records):
            if name.startswith(merges.CUSTOM_PREFIX):
                key = name.removeprefix(merges.CUSTOM_PREFIX)
                label = key
                cells = [
                    (r.pk, "—" if (r.custom_fields or {}).get(key) in (None, "") else r.custom_fields[key])
                    for r in records
                ]
            else:
                label = self.model._meta.get_field(name).verbose_name
                cells = [(r.pk, _shown(r, name)) for r in records]
            selected = choices.get(name, defaults.get(name))
            rows.append({"name": name, "label": label, "cells": cells, "selected": selected})
        context = {
            **self.admin_site.each_context(request),
            "title": _("Merge %(records)s") % {"records": self.opts.verbose_name_plural},
            "opts": self.opts,
            "records": records,
            "survivor": survivor,
            "rows": rows,
            "tags": [(r.pk, ", ".join(r.tags or []) or "—") for r in records],
            "preview": self._merge_preview(request, records, survivor, choices or defaults),
            "merge_url": f"{self._merge_url()}?{urlencode({'ids': ','.join(str(r.pk) for r in records)})}",
        }
        return TemplateResponse(request, "admin/core/merge.html", context)
