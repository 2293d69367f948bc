"""What every CRM model admin shares: import/export, history, deletions that keep their history."""

import contextlib
import functools
import operator

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.core.exceptions import FieldDoesNotExist, PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db import DatabaseError, models, router, transaction
from django.forms.boundfield import BoundField
from django.forms.formsets import DELETION_FIELD_NAME
from django.forms.models import BaseModelFormSet
from django.forms.utils import ErrorDict
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.functional import cached_property
from django.utils.html import format_html
from django.utils.text import smart_split, unescape_string_literal
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from import_export.admin import ExportActionMixin, ImportExportMixin

from core import access, changesets, merges, tags
from core.admin import previews
from core.admin.changesets import note_recorded
from core.admin.customfields import CustomFieldsAdminMixin
from core.admin.display import LabelledExportForm, UnlinkedLinesMixin
from core.admin.formats import CSV, XLSX
from core.admin.history import CRMHistoryContextHelper, HistoryAdmin, by_id
from core.admin.imports import BoundedImportMixin
from core.admin.lookups import CheckedChangeList
from core.admin.widgets import CheckedAutocompleteSelect, ListSelect
from core.history import batched_delete_history
from core.paging import COUNT_CAP, capped_count
from core.resources import FileRefused
from core.rowlocks import lock_keys, lock_rows
from core.search import estimated_rows


class RecordGone(Exception):
    """A record a form was saved for is no longer stored: its save would have created it again."""


def update_stored(obj):
    """Save ``obj``, a stored record, as an UPDATE that cannot turn into an INSERT.

    Django's ``save()`` inserts a record whose UPDATE matched no row: a record deleted by someone else
    meanwhile would come back (with a history that says it changed). A ``RecordGone`` instead.
    """
    try:
        obj.save(force_update=True)
    except DatabaseError as exc:
        # Django's own "Forced update did not affect any rows", not an error of the database (which Django
        # raises from the driver's).
        if type(exc) is not DatabaseError or exc.__cause__ is not None:
            raise
        raise RecordGone(obj) from None


class CappedPaginator(Paginator):
    """The admin lists' pages, counted as the API counts them (``core.paging``): exactly up to the cap.

    ``capped`` says that there are more rows than the count; the list then says
    "more than" it (``admin/pagination.html``) and pages up to the cap.
    """

    cap = COUNT_CAP
    capped = False

    @cached_property
    def count(self):
        count, self.capped = capped_count(self.object_list, self.cap)
        return count


class CRMChangeList(CheckedChangeList):
    """Django's changelist, with a refused list edit shown beside the records it was posted for."""

    def show_posted_rows(self):
        """A refused list shown again: each posted row beside the record it was posted for (``ShownRowsFormSet``).

        Django pairs the posted rows with the list's rows as they are now: with a row gone since the page was
        shown, or one added above it, a row's inputs stood beside another record, and the last rows' inputs
        and ids were left off the page. A row whose record is gone stands beside an empty record of its id.
        """
        now = {row.pk: row for row in self.result_list}
        opts = self.model._meta
        rows = []
        for form, record in zip(self.formset.initial_forms, self.formset.get_queryset(), strict=True):
            if record is None:
                try:
                    pk = opts.pk.to_python(form[opts.pk.name].data)
                except ValidationError:
                    pk = None
                # Every column empty, not the model's defaults: a value of 0 is not what the row held.
                record = self.model(
                    **{
                        f.attname: "" if isinstance(f, (models.CharField, models.TextField)) else None
                        for f in opts.concrete_fields
                        if not f.primary_key
                    },
                    pk=pk,
                )
            rows.append(now.get(record.pk, record))
        self.result_list = rows


def _lf_line_breaks(value):
    """``value`` with its line breaks as LF: browsers post every line break of a form as CRLF."""
    if isinstance(value, str):
        return value.replace("\r\n", "\n").replace("\r", "\n")
    if isinstance(value, (list, tuple)):
        return [_lf_line_breaks(item) for item in value]
    return value


class ShownMultipleHiddenInput(forms.MultipleHiddenInput):
    """The values a multi-select showed (tags, a multi-choice custom field), and a marker that it showed them.

    Django renders one hidden input per value: a multi-select shown empty would post no shown value at
    all, like a post without shown values (a script), and be compared with the stored record instead, so
    a save that left it empty would take away what someone else chose meanwhile. Here an input with an
    empty value comes first, whatever the values (browsers post a form's inputs in the page's order):
    the first value posted is that marker, and is dropped.
    """

    def get_context(self, name, value, attrs):
        context = super().get_context(name, value, attrs)
        marker = forms.HiddenInput().get_context(name, "", {})["widget"]
        context["widget"]["subwidgets"] = [marker, *context["widget"]["subwidgets"]]
        return context

    def value_from_datadict(self, data, files, name):
        values = super().value_from_datadict(data, files, name)
        return values[1:] if values and values[0] == "" else values


class ShownValueBoundField(BoundField):
    """A field of a record's form, with the value the page showed (Django's ``show_hidden_initial``).

    A form posted without it (a script, a page from before it was sent) is compared with the stored
    value instead, as Django compares a field that does not show it.
    """

    def _shown_omitted(self):
        hidden_widget = self.field.hidden_widget()
        return hidden_widget.value_omitted_from_data(self.form.data, self.form.files, self.html_initial_name)

    def _has_changed(self):
        if self.field.show_hidden_initial and self._shown_omitted():
            return self.field.has_changed(self.initial, self.data)
        return super()._has_changed()

    def changed_since_shown(self):
        """Whether the stored value is no longer the one the page showed (someone else changed it)."""
        if not self.field.show_hidden_initial or self._shown_omitted():
            return False
        shown = _lf_line_breaks(self.form._widget_data_value(self.field.hidden_widget(), self.html_initial_name))
        stored = self.initial
        if isinstance(stored, str):
            # Compared as the field reads text (stripped), line breaks as a browser posts them (CRLF).
            try:
                stored = self.field.to_python(_lf_line_breaks(stored))
            except ValidationError:
                pass
        return self.field.has_changed(stored, shown)


def _show_values(fields):
    """Make each of ``fields`` carry the value the page shows, a multi-select's empty value included."""
    for field in fields:
        field.show_hidden_initial = True
        if issubclass(field.hidden_widget, forms.MultipleHiddenInput):
            field.hidden_widget = ShownMultipleHiddenInput


class CRMModelForm(forms.ModelForm):
    """A record's form (change page, inline row, list row) that changes only what its user changed.

    Each field carries the value the page showed: the user's changes are what differs from it, not
    from the record as stored when the form is posted, so a row of a list left as it was is not
    written back over someone else's change made meanwhile. A form whose user changed something is
    refused when a field it carries was changed by someone else since the page was shown: saving it
    would put back the value shown without a word.

    A row whose record is no longer among the page's rows (deleted, moved to another record or out of the
    user's book, by someone else since the page was shown) is told so by its formset (``row_gone``,
    ``ShownRowsFormSet``): left as shown, or marked for deletion, it is left out; changed, it is refused
    with a message that says why.

    The admin shows date-times to the second: saving a form would otherwise cut the microseconds of
    every one of them, and record that as a change; those not changed are left as they are stored.
    """

    bound_field_class = ShownValueBoundField
    # The fields refused as changed by someone else since the page was shown (``clean``).
    changed_meanwhile = ()
    # Set by ``ShownRowsFormSet`` when the row's record is no longer among the page's rows.
    row_gone = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # The record's own fields, not those a formset adds (its id, its parent, "delete").
        self._shown_names = list(self.fields)
        if not self.instance._state.adding:
            _show_values(self.fields.values())

    def mark_row_gone(self):
        """This row's record is no longer among the page's rows: its form is read against what it showed."""
        self.row_gone = True
        _show_values(self.fields[name] for name in self._shown_names)

    def has_changed(self):
        # A gone row's posted id is not its user's change (its record is now none): only what they typed is.
        if self.row_gone:
            return any(name in self.changed_data for name in self._shown_names)
        return super().has_changed()

    def full_clean(self):
        if not self.row_gone:
            super().full_clean()
            return
        # Nothing to validate nor save: a message if the user changed the row, else nothing.
        self._errors, self.cleaned_data = ErrorDict(), {}
        deletion = self.fields.get(DELETION_FIELD_NAME)
        if deletion is not None and deletion.clean(self[DELETION_FIELD_NAME].data):
            self.cleaned_data[DELETION_FIELD_NAME] = True
        elif self.has_changed():
            self.add_error(
                None,
                _(
                    "Deleted or moved elsewhere by someone else since this page was shown: your change to this "
                    "row was not saved. Open the page again to see the rows as they are now."
                ),
            )

    def clean(self):
        cleaned = super().clean()
        if not self.instance._state.adding and self.has_changed():
            changed = [
                name for name, bound in self._bound_items() if name not in self._errors and bound.changed_since_shown()
            ]
            for name in changed:
                self.add_error(
                    name,
                    _(
                        "Changed by someone else since this page was shown. Open the record again to see "
                        "their change, then make yours."
                    ),
                )
            self.changed_meanwhile = changed
        return cleaned

    def _post_clean(self):
        super()._post_clean()
        if self.instance._state.adding:
            return
        for name in self.fields:
            if name in self.changed_data or name not in self.initial:
                continue
            try:
                model_field = self.instance._meta.get_field(name)
            except FieldDoesNotExist:
                continue
            if isinstance(model_field, models.DateTimeField):
                setattr(self.instance, model_field.attname, self.initial[name])


class ShownRowsFormSet(BaseModelFormSet):
    """A page's rows (an inline's, an editable list's), read against the rows the page showed.

    Django looks each posted row up among the rows as they are now (the parent's rows, the records of the
    user's book): a row gone since the page was shown (deleted, moved to another record or out of the
    user's book) becomes a new, unsaved record whose hidden id fails to validate, and the page is refused
    with "Please correct the error below" and no error in sight, even when its user did not touch the
    row. Here such a row is told so (``CRMModelForm.mark_row_gone``): left as shown, or marked for
    deletion, it is left out and the page saves; changed, it is refused with a message of its own.
    """

    # Whether its user may change the rows it lists: an inline read-only for them (``CRMTabularInline``) may at
    # most delete some.
    rows_changeable = True

    def _construct_form(self, i, **kwargs):
        form = super()._construct_form(i, **kwargs)
        if self.is_bound and i < self.initial_form_count() and form.instance.pk is None:
            form.mark_row_gone()
        return form

    def _should_delete_form(self, form):
        # A row changed by someone else since the page was shown is not deleted unseen: its form is refused.
        return super()._should_delete_form(form) and not form.changed_meanwhile

    def get_queryset(self):
        # Once a posted page's rows are read, each row's record is the one it was posted for (None for a
        # row gone since): a refused page shows each row beside these (the admin's inlines,
        # ``CRMChangeList.show_posted_rows``), not beside the rows as they are now.
        if self.is_bound and "forms" in self.__dict__:
            return [None if form.row_gone else form.instance for form in self.initial_forms]
        if self.is_bound and not hasattr(self, "_queryset") and self.queryset is not None:
            # A posted page's rows are locked before they are read (``lock_rows``): a row saved by someone
            # else at the same moment is read with their change, and one they deleted is read as gone. Only
            # the rows the post may write: the others are read, but nobody writing them is waited for.
            written = self.posted_rows()
            if written:
                lock_rows(self.queryset.filter(pk__in=written))
        return super().get_queryset()

    def posted_rows(self):
        """The primary keys of the rows this post may write: those it names (``<prefix>-N-id``, as Django looks
        them up), each one its user may change, or marked for deletion where they may delete it.

        A row of the list not named in the post (added to it since the page was shown) cannot be changed by
        it, nor can a row of a list read-only for its user unless they delete it.
        """
        pk_field = self.model._meta.pk
        to_python = self._get_to_python(pk_field)
        posted = set()
        for i in range(min(self.initial_form_count(), self.total_form_count())):
            prefix = self.add_prefix(i)
            if not self.rows_changeable and not (self.can_delete and f"{prefix}-{DELETION_FIELD_NAME}" in self.data):
                continue
            try:
                pk = to_python(self.data.get(f"{prefix}-{pk_field.name}"))
            except ValidationError:
                continue  # Django reads it as a new row, which locks nothing
            if pk is not None:
                posted.add(pk)
        return sorted(posted)

    def save_existing(self, form, obj, commit=True):
        # A row is written as an UPDATE: a row gone meanwhile is never inserted again (``update_stored``).
        if not commit:
            return super().save_existing(form, obj, commit=False)
        obj = form.save(commit=False)
        update_stored(obj)
        form.save_m2m()
        return obj

    def gone_rows(self):
        """The rows left out, as their user left them as shown, because their records were deleted or moved
        elsewhere since the page was shown."""
        return [form for form in self.initial_forms if form.row_gone and not self._should_delete_form(form)]


def carrying_shown_values(cls, base):
    """``cls`` (a form or formset class an admin was given), made a ``base`` (``CRMModelForm``,
    ``ShownRowsFormSet``) if it is not one."""
    return cls if issubclass(cls, base) else type(cls.__name__, (base, cls), {})


class CRMModelAdmin(
    UnlinkedLinesMixin, CustomFieldsAdminMixin, BoundedImportMixin, ImportExportMixin, ExportActionMixin, HistoryAdmin
):
    """A model admin with CSV/XLSX import (previewed before writing), export of the
    filtered list or of a selection, and field-by-field change history.

    Every page sees only the records the user may see (``core.access.scope``):
    lists, search, autocomplete, change, delete and history pages, exports, and
    the customers offered in forms. New records remember their creator; a record
    saved without a change is not written.

    Every write asks what the API asks: a role that writes (``core.access``) on
    top of the model permission, whatever the user's permissions say, for every
    form, inline, list edit, action, import and history revert. A revert puts
    back only the fields the user could type into the change form; the others
    (the owner, for a rep) keep their current values.

    The models with custom fields get them on their forms, as list columns and as list
    filters (``core.admin.customfields``).

    Imported rows are validated by the API's serializers (``core.resources``);
    exported cells are neutralised for spreadsheets as the API's exports are
    (``core.admin.formats``).
    """

    form = CRMModelForm
    formats = [CSV, XLSX]
    list_per_page = 50
    # No list counts a million rows: the count is capped (core.paging), and a filtered list
    # does not count the unfiltered one beside it.
    paginator = CappedPaginator
    show_full_result_count = False
    # Records with an owner (the field's name): only managers set it; a new record of anyone
    # else is their own, as in the API (``CRMModelViewSet.owner_field``).
    owner_field = None
    # The export button on a record's page would duplicate the export action.
    show_change_form_export = False
    # The export page's columns labelled in the reader's language (``LabelledExportForm``).
    export_form_class = LabelledExportForm
    # An address typed without its scheme (a company's website, a webhook's URL) is taken as https, as the
    # custom fields' URL type takes it (Django 6's default; Django 5.2 warns and assumes http).
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    def get_changelist(self, request, **kwargs):
        return CRMChangeList

    def get_changelist_form(self, request, **kwargs):
        # A list's editable choice column renders once a row: the same HTML, without the templates.
        choice_fields = [name for name in self.list_editable if getattr(self.opts.get_field(name), "choices", None)]
        widgets = {name: ListSelect for name in choice_fields}
        # Its rows carry the values they showed, as a record's own form does.
        form = carrying_shown_values(kwargs.pop("form", CRMModelForm), CRMModelForm)
        return super().get_changelist_form(request, **{"widgets": widgets, **kwargs, "form": form})

    def get_changelist_formset(self, request, **kwargs):
        # An editable list's rows are read against the rows the page showed, as an inline's are.
        formset = carrying_shown_values(kwargs.pop("formset", ShownRowsFormSet), ShownRowsFormSet)
        return super().get_changelist_formset(request, formset=formset, **kwargs)

    def get_changelist_instance(self, request):
        changelist = super().get_changelist_instance(request)
        # Read by ``changelist_view`` once an editable list posted by this request is saved or refused.
        request._crm_changelist = changelist
        return changelist

    def changelist_view(self, request, extra_context=None):
        # Django reads a list's posted rows before the transaction it saves them in: here they are read and
        # saved in one, locked first (``ShownRowsFormSet``), so a row saved or deleted by someone else at the
        # same moment is read as they left it.
        saving = request.method == "POST" and self.list_editable and "_save" in request.POST
        in_transaction = transaction.atomic(using=router.db_for_write(self.model))
        try:
            with in_transaction if saving else contextlib.nullcontext():
                response = super().changelist_view(request, extra_context)
        except RecordGone:
            # Not seen under the lock (a row read without one): nothing of the list was saved.
            self.message_user(request, self.record_gone_text(), messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())
        changelist = getattr(request, "_crm_changelist", None)
        # An action answered before the list's formset was made leaves it unset.
        formset = getattr(changelist, "formset", None)
        if formset is not None and formset.is_bound:
            if formset.is_valid():
                self._note_gone_rows(request, formset)
            else:
                changelist.show_posted_rows()
        return response

    # The role decides, as in the API (core.api.permissions): a user outside every role group,
    # or a read-only one, writes nothing even when granted the model permissions one by one.
    def has_view_permission(self, request, obj=None):
        return access.role_of(request.user) is not None and super().has_view_permission(request, obj)

    def has_add_permission(self, request):
        return access.can_write(request.user) and super().has_add_permission(request)

    def has_change_permission(self, request, obj=None):
        return access.can_write(request.user) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return access.can_write(request.user) and super().has_delete_permission(request, obj)

    def has_import_permission(self, request):
        # An imported row creates a record or changes one: both rights are needed.
        return (
            super().has_import_permission(request)
            and self.has_add_permission(request)
            and self.has_change_permission(request)
        )

    def has_export_permission(self, request):
        return super().has_export_permission(request) and self.has_view_permission(request)

    def get_valid_export_item_pks(self, request):
        # The records a selection-export may name: those this user's changelist can show.
        return self.get_queryset(request).values_list("pk", flat=True)

    # Actions whose changeset is of another kind than "action".
    changeset_kinds = {"reassign_customers": "reassign"}
    # Actions that change data (besides those whose function says so, ``changes_data = True``): each runs
    # first as a dry run whose would-be changeset is shown, then for real once confirmed.
    previewed_actions = frozenset({"delete_selected"})

    def action_is_previewed(self, name, function):
        return name in self.previewed_actions or getattr(function, "changes_data", False)

    def response_action(self, request, queryset):
        """Run a bulk action as one changeset (``core/changesets.py``), named in a message to undo it.

        An action that changes data is previewed first (``core.admin.previews``): the same
        action code runs as a dry run and the page shows its changeset; the "Confirm" button
        posts the same request again, which runs it for real.
        """
        name = request.POST.get("action", "")
        action = self.get_actions(request).get(name)
        label = str(action[2]) if action else name
        recorded = {
            "kind": self.changeset_kinds.get(name, "action"),
            "user": request.user,
            "label": label,
            "source": {"action": name, "model": self.opts.label_lower},
        }
        if action and self.action_is_previewed(name, action[0]) and not previews.confirmed(request):
            return previews.preview_action(self, request, queryset, recorded, self._run_action_locked)
        if action and self.action_is_previewed(name, action[0]):
            response, changeset = previews.confirm_action(self, request, queryset, recorded, self._run_action_locked)
        else:
            with changesets.recording(recorded.pop("kind"), **recorded) as changeset:
                response = super().response_action(request, queryset)
        note_recorded(request, changeset, self.admin_site.name)
        return response

    def _run_action_locked(self, request, queryset):
        """Django's ``response_action`` of an action that changes data, its selected rows locked first (``lock_rows``).

        The action reads them after: a row deleted by someone else at the same moment is not among them, and
        is not written again by the action's save.
        """
        selected = queryset
        if request.POST.get("select_across") in (None, "", "0", "False", "false"):
            try:
                pks = [self.opts.pk.to_python(pk) for pk in request.POST.getlist(helpers.ACTION_CHECKBOX_NAME)]
            except ValidationError:
                pks = []  # Django answers a tampered selection itself
            selected = queryset.filter(pk__in=pks)
        # Their tags first, as a rename takes a tag and then its records ("Remove a tag…" takes a tag they
        # carry after locking them: the other order would deadlock with a rename of it).
        tags.hold_tags(self.model, records=selected)
        # "Delete selected" takes them as its DELETE will, at once (see ``get_object``).
        lock_rows(selected, delete=request.POST.get("action") == "delete_selected")
        return super().response_action(request, queryset)

    def save_formset(self, request, form, formset, change):
        super().save_formset(request, form, formset, change)
        self._note_gone_rows(request, formset)

    def _note_gone_rows(self, request, formset):
        """Rows of an inline or an editable list (``ShownRowsFormSet``) deleted or moved elsewhere since the
        page was shown, which their user left as shown: the page saved without them, and says so."""
        gone = formset.gone_rows() if isinstance(formset, ShownRowsFormSet) else []
        if gone:
            opts = formset.model._meta
            self.message_user(
                request,
                ngettext(
                    "%(count)d %(rows)s shown on this page was deleted or moved elsewhere by someone else "
                    "meanwhile; it is no longer listed here.",
                    "%(count)d %(rows)s shown on this page were deleted or moved elsewhere by someone else "
                    "meanwhile; they are no longer listed here.",
                    len(gone),
                )
                % {"count": len(gone), "rows": opts.verbose_name if len(gone) == 1 else opts.verbose_name_plural},
                messages.WARNING,
            )

    def delete_model(self, request, obj):
        with transaction.atomic(), batched_delete_history():
            self._lock_cascade(type(obj)._base_manager.using(obj._state.db).filter(pk=obj.pk))
            super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        with transaction.atomic(), batched_delete_history():
            self._lock_cascade(queryset)
            super().delete_queryset(request, queryset)

    def _lock_cascade(self, queryset):
        """Lock the rows of ``queryset`` and the rows their deletion cascades to, before Django's collector
        reads what hangs below those (``lock_rows``).

        A child written at the same moment (a deal moved on the board, which logs the step) is waited for,
        and what it wrote below itself is collected and deleted with it, rather than left to fail the
        delete at its COMMIT (the foreign keys are checked there, on PostgreSQL).
        """
        lock_rows(queryset, delete=True)
        ids = queryset.order_by().values("pk")
        for relation in self.opts.related_objects:
            if relation.one_to_many and relation.on_delete is not models.DO_NOTHING:
                children = relation.related_model._base_manager.using(queryset.db)
                lock_rows(children.filter(**{f"{relation.field.name}__in": ids}), delete=True)

    def get_queryset(self, request):
        return access.scope(super().get_queryset(request), request.user)

    # The table's indexed search (a ``core.search.TextSearch``): each word of the search box
    # must match, as in Django's admin search, through the indexes the API's ``?search=`` uses;
    # ``text_search_also`` names further fields each word may be in (each with its own index);
    # ``text_search_related`` further columns of a related table, through that table's own
    # ``TextSearch``: ``(foreign key, its TextSearch, its fields)``.
    text_search = None
    text_search_also = ()
    text_search_related = ()

    def get_search_results(self, request, queryset, search_term):
        if self.text_search is None:
            return super().get_search_results(request, queryset, search_term)
        term = search_term.strip()
        if self.text_search.phone_q(term) is not None:
            # A phone number with spaces ("+86 138 0013 8000") is one term, not four words: the whole
            # number, or part of one ("555-0199"), as the other fields hold it.
            condition, _found = self._text_search_word(term)
            return queryset.filter(condition), False
        words = [
            unescape_string_literal(word) if word[0] in {'"', "'"} and word[0] == word[-1] else word
            for word in smart_split(term)
        ]
        matches = [self._text_search_word(word) for word in words if word]
        for condition, _found in matches:
            queryset = queryset.filter(condition)
        if self.text_search_related and matches:
            # Each row is checked against every word. When one word is found in few rows (through the
            # indexes), only those rows are checked; a word found in many rows has rows that match it
            # all along the list's order, and the list's first page is found by walking that order.
            narrow = self._narrow_word([found for _, found in matches])
            if narrow is not None:
                queryset = queryset.filter(pk__in=narrow)
        return queryset, False

    # Per word, the first ``text_search_probe`` rows it finds are counted, to find a narrow one.
    text_search_probe = 10_000
    # Count the words in the order of the database's estimate of their rows, and stop at the first
    # within the probe (PostgreSQL); without it, or without estimates (SQLite), every word is counted.
    text_search_by_estimate = True
    # A word estimated at more than this many times the probe is taken as wide without counting it.
    text_search_uncounted_over = 10

    def _narrow_word(self, founds):
        """The rows of a word found in at most ``text_search_probe`` rows (a subquery), or None.

        Counting a word's rows up to the probe costs about as much as reading them: "Smith" in
        111,000 customers' names is most of a search's time. With estimates (the planner's, read
        without running the query) the word estimated narrowest is counted first, and the others
        only if it turns out wider than the probe; a word estimated far wider than the probe
        (``text_search_uncounted_over`` times) is not counted at all: when every word is common
        ("Smith Acme") the list's order is walked at once. Which narrow word is used, if any,
        changes how fast the rows are found, never which rows.
        """
        probe = self.text_search_probe
        if self.text_search_by_estimate and len(founds) > 1:
            estimates = [estimated_rows(found) for found in founds]
            if None not in estimates:
                bound = probe * self.text_search_uncounted_over
                by_estimate = sorted(
                    (i for i in range(len(founds)) if estimates[i] <= bound), key=estimates.__getitem__
                )
                return next((founds[i] for i in by_estimate if founds[i][: probe + 1].count() <= probe), None)
        counted, index = min((found[: probe + 1].count(), index) for index, found in enumerate(founds))
        return founds[index] if counted <= probe else None

    def _text_search_word(self, word):
        """The condition a row must meet for ``word``, and the rows that meet it (a subquery of their ids)."""
        own = functools.reduce(
            operator.or_,
            [models.Q(**{f"{name}__icontains": word}) for name in self.text_search_also],
            self.text_search.condition(word),
        )
        manager = self.model._base_manager
        condition = own
        found = manager.filter(own).order_by().values("pk")
        for relation, search, fields in self.text_search_related:
            related = self.model._meta.get_field(relation).related_model._base_manager.filter(
                search.condition(word, fields)
            )
            condition |= models.Exists(related.filter(pk=models.OuterRef(relation)))
            found = found.union(
                manager.filter(**{f"{relation}__in": related.order_by().values("pk")}).order_by().values("pk"), all=True
            )
        return condition, found

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if access.has_owner_path(db_field.related_model):
            kwargs["queryset"] = self._choices(request, db_field.related_model)
        if "widget" not in kwargs and db_field.name in self.get_autocomplete_fields(request):
            kwargs["widget"] = CheckedAutocompleteSelect(db_field, self.admin_site, using=kwargs.get("using"))
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    @staticmethod
    def _choices(request, model):
        """The records of ``model`` a form offers ``request``'s user for a foreign key: those they may see."""
        rows = model._default_manager.all()
        return access.scope(rows, request.user) if access.has_owner_path(model) else rows

    # Foreign keys to the parents of this admin's records (a customer's company), highest parent first: a posted
    # page holds the parents its record points at and those it names before the record (``lock_parents``).
    parents_locked_first = ()

    def lock_parents(self, request, records=None):
        """Hold the parents (``parents_locked_first``) that ``records`` (the posted page's record, in the user's
        book; None when adding) point at, and those the page names among the user's choices, before the record.

        A parent's delete or merge locks the parent (``FOR UPDATE``), then the records pointing at it. A save
        that points a record at a parent (a customer moved to a company, a deal added on its page with the
        customer's company) has the foreign key checked at COMMIT (PostgreSQL's keys are deferred), after the
        record is locked: in the other order, the two would deadlock. Held first, with the lock that check
        takes (``rowlocks.lock_keys``), a delete under way is waited for; a parent it deleted is then no longer
        a choice of the form, and the page says so on the field, rather than failing at its COMMIT. A save of
        the parent itself, or another page holding it, is not held up.
        """
        for name in self.parents_locked_first:
            field = self.opts.get_field(name)
            parent = field.related_model
            wanted = []
            if records is not None:
                wanted.append(models.Q(pk__in=records.order_by().values(field.attname)))
            try:
                named = parent._meta.pk.to_python(request.POST.get(name) or None)
            except ValidationError:
                named = None
            if named is not None:
                choice = self._choices(request, parent).filter(pk=named)
                if records is not None:
                    # Not for a record out of the user's book, which is not found: it holds up nobody.
                    choice = choice.filter(models.Exists(records))
                wanted.append(models.Q(pk__in=choice.order_by().values("pk")))
            if wanted:
                lock_keys(
                    parent._base_manager.using(router.db_for_write(parent)).filter(
                        functools.reduce(operator.or_, wanted)
                    )
                )

    def get_object(self, request, object_id, from_field=None):
        # A record's page posted (a save, a delete, a revert) reads its record locked (``lock_rows``): a save
        # by someone else at the same moment is waited for and seen by the form's comparison; a record they
        # deleted is read as gone, and is not found.
        if request.method == "POST" and from_field in (None, self.opts.pk.name):
            try:
                pk = self.opts.pk.to_python(object_id)
            except ValidationError:
                pk = None
            if pk is not None:
                # Only a record the user may see (one out of their book is not found, after): nobody holds up
                # the writers of records they cannot see. The tags it carries first, as a rename takes a tag
                # and then its records: the form takes the tags chosen on it after (``TagChoiceField``).
                scoped = self.get_queryset(request).using(router.db_for_write(self.model)).filter(pk=pk)
                tags.hold_tags(self.model, records=scoped)
                # Then its parents, as their deletes take them before the records pointing at them. A delete
                # takes its record as its DELETE will (``FOR UPDATE``) at once: taken stronger only then, a page
                # holding the record's key meanwhile (a child's page holding it as its parent) would deadlock it.
                self.lock_parents(request, scoped)
                lock_rows(scoped, delete=getattr(request, "_deleting_record", False))
        return super().get_object(request, object_id, from_field)

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        # A new record posted: the parents it names are locked before its form reads them (``lock_parents``),
        # in the transaction Django saves it in (joined: a savepoint).
        adding = request.method == "POST" and (object_id is None or "_saveasnew" in request.POST)
        in_transaction = transaction.atomic(using=router.db_for_write(self.model))
        try:
            with in_transaction if adding and self.parents_locked_first else contextlib.nullcontext():
                if adding:
                    self.lock_parents(request)
                return super().changeform_view(request, object_id, form_url, extra_context)
        except RecordGone:
            # A record (or an inline row) gone though it was read: nothing of the page was saved (the
            # transaction is rolled back), and the page says why.
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)

    def record_gone_text(self):
        return _(
            "Deleted by someone else since this page was shown, or no longer among the records you may see: "
            "nothing you sent from it was saved."
        )

    def save_model(self, request, obj, form, change):
        current = getattr(request, "_reverting_history", None)
        if current is not None:
            self._keep_unsettable_fields(request, obj, form, current)
        # A change form saved unchanged writes nothing: no history entry, and updated_at stays.
        # Reverting to an older version submits that version's form unchanged: it is written.
        elif change and not form.has_changed():
            return
        if not change:
            obj.created_by = request.user
            owner = self.owner_field
            if owner and (getattr(obj, f"{owner}_id") is None or not access.is_manager(request.user)):
                setattr(obj, owner, request.user)
            super().save_model(request, obj, form, change)
            return
        # What ``SimpleHistoryAdmin.save_model`` does, with a save that cannot create the record again.
        obj._history_user = request.user
        update_stored(obj)

    # The text of the link to a record's change history (``history_link``, a read-only field).
    history_link_text = _("Every change to this record")

    @admin.display(description=_("history"))
    def history_link(self, obj):
        if obj.pk is None:
            return "—"
        opts = self.opts
        url = reverse(f"{self.admin_site.name}:{opts.app_label}_{opts.model_name}_history", args=[obj.pk])
        return format_html('<a href="{}">{}</a>', url, self.history_link_text)

    def readonly_names(self, request, obj):
        fields = super().readonly_names(request, obj)
        if self.owner_field and not access.is_manager(request.user):
            fields = [*fields, self.owner_field]
        # On a past version's page, its lines for the related records it may not name (``lines_in_place``).
        return [*fields, *self._unnamed_in_version(request, obj).values()]

    def lines_in_place(self, request, obj):
        return self._unnamed_in_version(request, obj)

    def _keep_unsettable_fields(self, request, obj, form, current):
        """On a revert, every field the form does not offer this user keeps its current value.

        The historical version brings back all its fields, the owner too; the user
        may only restore what they could have typed into the change form.
        """
        kept = []
        for model_field in obj._meta.concrete_fields:
            if model_field.name in form.fields:
                continue
            if model_field.name == "custom_fields" and getattr(form, "_custom_field_definitions", None):
                continue  # typed into the form's custom field section (core/admin/customfields.py)
            old, now = getattr(obj, model_field.attname), getattr(current, model_field.attname)
            if old != now:
                setattr(obj, model_field.attname, now)
                if model_field.editable and model_field.name not in self.readonly_fields:
                    kept.append(str(model_field.verbose_name))
        if kept:
            self.message_user(
                request,
                _("Kept as they are, as you may not change them: %(fields)s.") % {"fields": ", ".join(kept)},
                messages.WARNING,
            )

    def history_view(self, request, object_id, extra_context=None):
        # django-simple-history falls back to the records of a deleted object; a
        # user who may not see everything gets only the history of what is in their book.
        # Ids are numbers: anything else is answered like an unknown id, as the change page does.
        if not str(object_id).isdecimal() or (
            not access.sees_everything(request.user) and not self._in_scope(request, object_id)
        ):
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        return super().history_view(request, object_id, extra_context)

    def delete_view(self, request, object_id, extra_context=None):
        # Django asks for the delete right before it looks the record up: a record outside the
        # user's book reads "not found" here too, like its other pages.
        request._deleting_record = request.method == "POST"
        if not str(object_id).isdecimal() or not self._in_scope(request, object_id):
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        return super().delete_view(request, object_id, extra_context)

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        # django-simple-history lets anyone who may view the record post a revert: a revert is a
        # change, so it needs the change permission on the record as it is now, in the user's book,
        # and it is a manager's call (a rep corrects a record by changing it).
        # A revert reads the record locked and writes it in one transaction, as a change page does.
        posted = request.method == "POST"
        try:
            with transaction.atomic(using=router.db_for_write(self.model)) if posted else contextlib.nullcontext():
                current = self.get_object(request, unquote(object_id)) if str(object_id).isdecimal() else None
                if current is None:
                    return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
                if posted:
                    if self.revert_disabled(request, current):
                        raise PermissionDenied
                    request._reverting_history = current
                request._showing_version = True
                return super().history_form_view(request, object_id, version_id, extra_context)
        except RecordGone:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)

    def revert_disabled(self, request, obj=None):
        return (
            super().revert_disabled(request, obj)
            or not access.is_manager(request.user)
            or not self.has_change_permission(request, obj)
        )

    def get_historical_record_context_helper(self, request, historical_record):
        return CRMHistoryContextHelper(self.model, historical_record, named=getattr(request, "_history_named", None))

    def _history_named(self, request, records):
        """{foreign key: ids} of the related records the history page of ``records`` (its entries, or the
        record as a past version was) may name (None: all of them).

        Those the user sees (``access.seen_among``), and those the record points at now, which its own page names
        (a task's customer, to its assignee): an earlier related record of another book (the customer a deal was
        moved from) reads as its id, as in the API's history.
        """
        if access.sees_everything(request.user):
            return None
        history = getattr(self.model, self.opts.simple_history_manager_attribute)
        fields = [
            field
            for field in history.model.tracked_fields
            if field.many_to_one and access.has_owner_path(field.related_model)
        ]
        if not fields:
            return None
        current = (
            self.model._base_manager.filter(pk=getattr(records[0], self.opts.pk.attname))
            .values(*(field.attname for field in fields))
            .first()
        ) or {}
        return {
            field.name: access.seen_among(
                field.related_model, {getattr(record, field.attname) for record in records}, request.user
            )
            | {current.get(field.attname)}
            for field in fields
        }

    def _unnamed_in_version(self, request, obj):
        """{foreign key name: its line} of the related records that the past version ``obj``, on its page
        (``history_form_view``), points at and may not name (``_history_named``): each a read-only line that
        shows the record's id, as the history list does, in place of the form's field (whose choice, or read-only
        line, would name it). Nothing on any other page, nor for a user who sees everything."""
        if obj is None or not getattr(request, "_showing_version", False):
            return {}
        if getattr(request, "_version_unnamed", None) is None:
            named = self._history_named(request, [obj]) or {}
            request._version_unnamed = {}
            for name, ids in named.items():
                field = self.opts.get_field(name)
                pk = getattr(obj, field.attname)
                if pk is not None and pk not in ids:
                    request._version_unnamed[name] = by_id(field, pk)
        return request._version_unnamed

    def set_history_delta_changes(self, request, historical_records, foreign_keys_are_objs=True):
        records = list(historical_records)
        if not records:
            return
        last = records[-1]
        # The oldest entry of a page that is not the first version is compared with the entry before it.
        earlier = None if last.history_type == "+" else last.prev_record
        request._history_named = self._history_named(request, [*records, *([earlier] if earlier else [])])
        super().set_history_delta_changes(request, historical_records, foreign_keys_are_objs)
        helper = self.get_historical_record_context_helper(request, last)
        if last.history_type == "+":
            # The first version: what the record was created with.
            last.history_initial_values = helper.initial_values()
        elif earlier is not None:
            delta = last.diff_against(earlier, foreign_keys_are_objs=foreign_keys_are_objs)
            last.history_delta_changes = helper.context_for_delta_changes(delta)

    def _get_obj_does_not_exist_redirect(self, request, opts, object_id):
        """A record that does not exist, or is outside the user's book: a plain "not found" page.

        Django redirects to the list with "… doesn't exist. Perhaps it was deleted?": that
        would tell a rep that someone else's record is there, and is not what happened.
        """
        context = {
            **self.admin_site.each_context(request),
            "title": _("Not found"),
            "opts": opts,
            "changelist_url": reverse(f"{self.admin_site.name}:{opts.app_label}_{opts.model_name}_changelist"),
            "merged_into_url": self._merged_into_url(request, opts, object_id),
            # A page posted for it (a save, a delete, a revert): the record went since the page was shown.
            "not_saved": self.record_gone_text() if request.method == "POST" else None,
        }
        return TemplateResponse(request, "admin/core/not_found.html", context, status=404)

    def _merged_into_url(self, request, opts, object_id):
        """The page of the record ``object_id`` was merged into (core/merges.py), if the user sees it."""
        if not str(object_id).isdecimal() or len(str(object_id)) > 18:
            return None
        survivor = merges.merged_into(self.model, int(object_id))
        if survivor is None or not self.get_queryset(request).filter(pk=survivor).exists():
            return None
        return reverse(f"{self.admin_site.name}:{opts.app_label}_{opts.model_name}_change", args=[survivor])

    def _in_scope(self, request, object_id):
        return self.get_object(request, unquote(object_id)) is not None

    def get_resource_kwargs(self, request, *args, **kwargs):
        # Resources look records up (ids, emails, customers) within the user's scope,
        # and validate rows with the API's serializers in the context of this request.
        return {**super().get_resource_kwargs(request, *args, **kwargs), "user": request.user, "request": request}

    def get_import_data_kwargs(self, **kwargs):
        # A confirmed import is written whole or not at all: should a row fail now (the
        # records changed since the preview), every row is rolled back.
        return {**super().get_import_data_kwargs(**kwargs), "rollback_on_validation_errors": True}

    def add_data_read_fail_error_to_form(self, form, e):
        if isinstance(e, FileRefused):
            message = str(e)
        else:
            file_format = self.get_import_formats()[int(form.cleaned_data["format"])]().get_title().upper()
            message = _(
                "This file cannot be read as %(format)s: it is damaged, empty or of another kind. "
                "Choose the format that matches the file."
            ) % {"format": file_format}
        form.add_error("import_file", message)
