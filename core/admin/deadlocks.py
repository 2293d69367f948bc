"""A change PostgreSQL aborted in a deadlock, in the admin: answered as a conflict (409), never as a server error.

Writers lock in a set order (tags, a record's parents, the record, each by primary key: ``core.rowlocks``,
``CRMModelAdmin.lock_parents``) so that none should meet one; should two still wait for each other,
PostgreSQL aborts one of them (``rowlocks.is_deadlock``). The admin writes each change in one transaction (a
record's page, a delete, a list's edits, an action's changeset, an import, an undo), rolled back with the
error before it reaches here: nothing of it is kept. The screens that can say so in their own words do (the
Undo page, an import's rows); any other that lets the error out is answered by ``answering_deadlocks``, which
the admin site wraps around every view (``crm_site/admin_site.py``), as the API answers ``Deadlocked``.
"""

import functools
import logging

from django.contrib.messages.storage import default_storage
from django.db import OperationalError
from django.http import JsonResponse
from django.template.response import TemplateResponse
from django.utils.translation import gettext_lazy as _

from core.rowlocks import is_deadlock

logger = logging.getLogger(__name__)

NOTHING_SAVED = _(
    "Someone else was changing the same records at the same moment, so nothing of this change was saved. "
    "Go back and try again."
)


def deadlocked(request, exc):
    """Whether ``exc`` (a database error) is ``request``'s change aborted in a deadlock; logged if so, at info
    level, as the API logs one: it is the other writer's moment, not a fault."""
    if not is_deadlock(exc):
        return False
    logger.info("%s %s deadlocked", request.method, request.path, exc_info=True)
    return True


def answering_deadlocks(view, site):
    """``view``, answering a deadlock it lets out with a page of ``site`` that says what happened (409)."""

    @functools.wraps(view)
    def answering(request, *args, **kwargs):
        try:
            return view(request, *args, **kwargs)
        except OperationalError as exc:
            if not deadlocked(request, exc):
                raise
        return _conflict(request, site)

    return answering


def _conflict(request, site):
    if hasattr(request, "_messages"):
        # What the view announced ("… was changed successfully") was rolled back: its messages are dropped with
        # the storage they were added to. Read anew, it holds only those that were waiting for this page.
        request._messages = default_storage(request)
    if "application/json" in request.headers.get("Accept", ""):
        # The admin's scripts (the pipeline board) read a JSON answer and show its message.
        return JsonResponse({"success": False, "message": str(NOTHING_SAVED)}, status=409)
    context = {
        **site.each_context(request),
        "title": _("Not saved: someone else was changing the same records"),
        "not_saved": NOTHING_SAVED,
        # The page the change was sent from, read again as it is now.
        "back_url": request.get_full_path(),
    }
    return TemplateResponse(request, "admin/core/deadlocked.html", context, status=409)
