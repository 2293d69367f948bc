"""The admin's merge: the "Merge selected" action and the side-by-side page (``<model>/merge/?ids=a,b``).

One mixin for every mergeable model admin, which names its model's merge
service (``merge_service``, e.g. ``customers.services.merge_customers``) and the
fields the page offers a choice for (``merge_fields``). The page shows a column
per record, a radio per field for the value the survivor keeps (preselected as
the service's rules would choose, ``core.merges.default_source``), the survivor, and what
would move to it (the merge run and rolled back). Choosing another survivor moves the
fields the user did not pick to its preselection: on the page (``core/static/core/merge.js``,
from each survivor radio's ``data-defaults``) or, without JavaScript, on Preview (``defaults_of``
names the survivor the values on screen were preselected for). Confirming posts the choices with the ``updated_at``
of each record as shown: a record changed meanwhile refuses the merge. The same
checks as the API: a writing role, every record in the user's book.
"""

import json

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
    if not parts or not all(part.isdecimal() and len(part) < 19 for part in parts):
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
            survivor, shown_for, choices, versions = self._merge_posted(request, records)
            if "confirm" in request.POST and shown_for.pk != survivor.pk:
                # The values on screen were preselected for another survivor (a page without JavaScript):
                # shown again for this one before anything is merged.
                self.message_user(
                    request,
                    _("The record that stays changed: check the values it keeps, then merge."),
                    messages.WARNING,
                )
            elif "confirm" in request.POST:
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
            survivor, choices = records[0], {}
        return self._merge_page(request, records, survivor, choices)

    def _merge_posted(self, request, records):
        """(survivor, the survivor the page's values were preselected for, the user's own choices, versions).

        A radio left at the value preselected for the survivor shown (``defaults_of``) is no choice
        of the user's: it follows the survivor when another is picked, as the page's script makes it do.
        """
        by_id = {str(record.pk): record for record in records}
        survivor = by_id.get(request.POST.get("survivor"), records[0])
        shown_for = by_id.get(request.POST.get("defaults_of"), survivor)
        names = self._merge_choice_names(records)
        preselected = merges.default_sources(records, shown_for, names)
        choices = {}
        for name in names:
            source = by_id.get(request.POST.get(f"field:{name}"))
            if source is not None and source.pk != preselected[name]:
                choices[name] = source.pk
        versions = {record.pk: record.merge_version for record in records}
        return survivor, shown_for, choices, versions

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
        names = self._merge_choice_names(records)
        # Each record as the survivor: the value each field would take from whom (the service's rule,
        # merges.default_source); the page's script preselects by it when the survivor changes.
        defaults = {record.pk: merges.default_sources(records, record, names) for record in records}
        rows = []
        for name in names:
            if name.startswith(merges.CUSTOM_PREFIX):
                label = name.removeprefix(merges.CUSTOM_PREFIX)
                cells = [
                    (r.pk, "—" if merges.value_of(r, name) in (None, "") else merges.value_of(r, name)) for r in records
                ]
            else:
                label = self.model._meta.get_field(name).verbose_name
                cells = [(r.pk, _shown(r, name)) for r in records]
            selected = choices.get(name, defaults[survivor.pk][name])
            rows.append({"name": name, "label": label, "cells": cells, "selected": selected})
        for record in records:
            record.merge_defaults = json.dumps(defaults[record.pk])
        context = {
            **self.admin_site.each_context(request),
            "title": _("Merge %(records)s") % {"records": self.opts.verbose_name_plural},
            "opts": self.opts,
            "records": records,
            "survivor": survivor,
            "rows": rows,
            "tags": [(r.pk, ", ".join(r.tags or []) or "—") for r in records],
            "preview": self._merge_preview(request, records, survivor, choices),
            "merge_url": f"{self._merge_url()}?{urlencode({'ids': ','.join(str(r.pk) for r in records)})}",
        }
        return TemplateResponse(request, "admin/core/merge.html", context)
