"""Previews of bulk admin actions: the changeset an action would make, shown before it is made.

``CRMModelAdmin.response_action`` runs an action that changes data (Django's
"delete selected", and every action whose function has ``changes_data = True``)
first inside ``core.changesets.recording(..., dry_run=True)``: the same action
code, with the same selection and form fields, in a savepoint that is rolled
back. The page shows the would-be changeset as the changeset admin shows a
recorded one (``counts_text``, ``diff_table``); its "Confirm" button posts the
same request again with ``preview_confirmed=yes``, which runs the action for
real, under the same role checks (the action must still be offered to the user).

The preview's page carries a digest of the rows it shows (each record's values before, and which fields
change): should the Confirm find other rows (a record changed, added to or gone from the selection in
between), nothing is written and the new preview is shown, with a warning.

An action whose first step is a page of its own (a form choosing the tag or the
owner, Django's delete confirmation) shows that page first: it writes nothing,
and the preview is its confirm step.
"""

import hashlib
import json

from django.apps import apps
from django.contrib import messages
from django.db import transaction
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.utils.translation import gettext_lazy as _

from core import changesets
from core.admin.changesets import ROWS_SHOWN, counts_text, diff_table

CONFIRM_FIELD = "preview_confirmed"
DIGEST_FIELD = "preview_digest"


def confirmed(request):
    """Whether ``request`` is the "Confirm" of a preview."""
    return request.POST.get(CONFIRM_FIELD) == "yes"


def changes_data(function):
    """Mark an admin action function as one that changes data (previewed before it runs)."""
    function.changes_data = True
    return function


def digest(rows):
    """What a Confirm must find again: each row's record, change, values before and fields changed
    (not the values after, which may hold the time of the change, nor the id of a record created,
    which the dry run's rollback does not give back)."""
    seen = [
        [
            row.model,
            None if row.op == changesets.CREATED else row.object_id,
            row.op,
            row.before,
            sorted(row.after or {}),
        ]
        for row in rows
    ]
    return hashlib.sha256(json.dumps(seen, sort_keys=True, default=str).encode()).hexdigest()


class _Changed(Exception):
    pass


class _Kept:
    """The messages of a dry run, kept aside: its "3 customers changed" did not happen."""

    def __init__(self):
        self.messages = []

    def add(self, level, message, extra_tags=""):
        self.messages.append((level, message, extra_tags))


def _keeping_messages(request):
    own = request.__dict__.get("_messages")
    kept = _Kept()
    request._messages = kept

    def restore():
        if own is None:
            del request._messages
        else:
            request._messages = own

    return kept, restore


def _replay(request, kept):
    for level, message, extra_tags in kept.messages:
        messages.add_message(request, level, message, extra_tags=extra_tags, fail_silently=True)


def confirm_action(model_admin, request, queryset, recorded, run):
    """Run the action of a preview's Confirm for real, as one changeset; returns ``(response, changeset)``.

    When the preview's digest is posted and the rows differ now, nothing is written and the
    response is the new preview (``changeset`` None).
    """
    expected = request.POST.get(DIGEST_FIELD)
    kept, restore = _keeping_messages(request)
    try:
        with transaction.atomic():
            with changesets.recording(recorded["kind"], **_recording_kwargs(recorded)) as changeset:
                response = run(request, queryset)
            rows = list(changeset.rows.order_by("seq")) if changeset.pk is not None else []
            if expected is not None and digest(rows) != expected:
                raise _Changed
    except _Changed:
        restore()
        messages.warning(
            request, _("The records changed since the preview, which is shown again: check it, then confirm.")
        )
        return preview_action(model_admin, request, queryset, recorded, run), None
    except BaseException:
        restore()
        raise
    restore()
    _replay(request, kept)
    return response, changeset


def _recording_kwargs(recorded):
    return {"user": recorded["user"], "label": recorded["label"], "source": recorded["source"]}


def preview_action(model_admin, request, queryset, recorded, run):
    """The preview page of the action of ``request`` (``run(request, queryset)`` is Django's
    ``response_action``), or the action's own intermediate page when it answers with one."""
    kept, restore = _keeping_messages(request)
    try:
        with changesets.recording(recorded["kind"], **_recording_kwargs(recorded), dry_run=True) as changeset:
            response = run(request, queryset)
    finally:
        restore()
    rows = changeset.preview or []
    if not rows and not isinstance(response, HttpResponseRedirect):
        # A page of the action's own (a form to fill in, a confirmation), or no action at all: nothing
        # was written. (An action that ran to its end answers with a redirect to the list.)
        _replay(request, kept)
        return response
    opts = model_admin.opts
    counts = [
        {
            "model": apps.get_model(label)._meta.verbose_name_plural,
            "created": ops.get(changesets.CREATED, 0),
            "updated": ops.get(changesets.UPDATED, 0),
            "deleted": ops.get(changesets.DELETED, 0),
        }
        for label, ops in (changeset.counts or {}).items()
    ]
    context = {
        **model_admin.admin_site.each_context(request),
        "title": _("Preview: %(action)s") % {"action": recorded["label"]},
        "opts": opts,
        "action_label": recorded["label"],
        "counts": counts,
        "counts_text": counts_text(changeset.counts),
        "total": len(rows),
        "diff": diff_table(rows[:ROWS_SHOWN], more=max(len(rows) - ROWS_SHOWN, 0)),
        "problems": [str(message) for level, message, _tags in kept.messages if level >= messages.WARNING],
        "confirm_data": [
            (name, value)
            for name, values in request.POST.lists()
            for value in values
            if name not in ("csrfmiddlewaretoken", CONFIRM_FIELD, DIGEST_FIELD)
        ],
        "confirm_field": CONFIRM_FIELD,
        "digest_field": DIGEST_FIELD,
        "digest": digest(rows),
        "changeset_preview": changeset,
    }
    return TemplateResponse(request, "admin/core/changeset/preview.html", context)
