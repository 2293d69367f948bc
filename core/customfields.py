"""Custom fields: the one home of their rules.

Managers define fields per resource (``core.models.CustomField``); each record keeps
its values in its ``custom_fields`` JSON column as ``{key: value}``. Everything that
writes values (the API's serializers and batches, the admin's forms, imports, commands)
goes through :func:`clean`, and everything that reads them (API, admin, exports)
shows only the keys of current definitions (:func:`visible`): the values of a deleted
definition stay stored, out of sight, until ``manage.py purge_custom_field``.

A definition is saved by :func:`save_definition` (the API, the admin): a new type or new
choices convert the stored values, each record read under its lock and written with its
history entry and event, the whole conversion one changeset whose undo puts the type back
too. Purging writes the same way.

Stored values are JSON: text, long text, url, email and choice as strings; number as
an integer; decimal as a number; date as ``YYYY-MM-DD`` (so that text order is date
order); boolean as true/false; multi-choice as a list of strings.

The definitions of every resource are read in one query, once per request (and kept
for a few seconds outside requests, in commands and workers).
"""

import contextlib
import datetime
import functools
import re
import threading
import time
from contextvars import ContextVar
from decimal import Decimal, InvalidOperation

from django.core import validators
from django.core.exceptions import ValidationError
from django.core.signals import request_finished, request_started
from django.db import connection, models, router, transaction
from django.db.models.fields.json import KeyTransform
from django.db.models.signals import post_delete, post_save
from django.utils.translation import gettext as _

from core.cells import boolean_of
from core.prepared import PreparedInstances
from core.rowlocks import locking

# resource name ("customers") -> model, registered from the apps' ready().
MODELS = {}
# resource name -> names a key may not take (the model's fields, the API's fields).
_RESERVED = {}
KEY_PATTERN = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")
KEY_MAX_LENGTH = 50
FILTER_PREFIX = "cf_"
TEXT_MAX_LENGTH = 1000
LONG_TEXT_MAX_LENGTH = 20_000
URL_MAX_LENGTH = 500
EMAIL_MAX_LENGTH = 254
CHOICES_MAX = 200
CHOICE_MAX_LENGTH = 100
# Whole numbers JSON carries exactly (JavaScript's safe integers).
NUMBER_LIMIT = 2**53 - 1
DECIMAL_LIMIT = Decimal("1e15")
DECIMAL_DIGITS = 15
RANGE_TYPES = {"number", "decimal", "date"}
CHOICE_TYPES = {"choice", "multi_choice"}
# Multi-choice cells and query values are split on commas (choices may not hold one).
LIST_SEPARATORS = re.compile(r"[,，]")


def register(resource, model, *, reserved=()):
    """Give ``model`` (with a ``custom_fields`` JSON column) custom fields under the name ``resource``."""
    MODELS[resource] = model
    _RESERVED[resource] = set(reserved)


def reserved_names(resource):
    model = MODELS[resource]
    names = set(_RESERVED.get(resource, ()))
    for field in model._meta.get_fields():
        names.add(field.name)
        if getattr(field, "attname", None):
            names.add(field.attname)
    return names


def resource_of(model):
    for resource, registered in MODELS.items():
        if registered is model:
            return resource
    return None


# The definitions: read once per request.

_request_memo = ContextVar("custom_field_definitions", default=None)
_process_memo = {"at": 0.0, "definitions": None}
_process_lock = threading.Lock()
PROCESS_MEMO_SECONDS = 2.0


@functools.cache
def _definitions_query(using):
    """``CustomField.objects.order_by("order", "id")``, compiled once (core.prepared)."""
    from core.models import CustomField

    return PreparedInstances(CustomField, lambda: CustomField.objects.using(using).order_by("order", "id"), using, ())


def _load():
    from core.models import CustomField

    grouped = {}
    for definition in _definitions_query(router.db_for_read(CustomField)).all():
        grouped.setdefault(definition.model, []).append(definition)
    return grouped


def _all_definitions():
    memo = _request_memo.get()
    if memo is not None:
        if "definitions" not in memo:
            memo["definitions"] = _load()
        return memo["definitions"]
    now = time.monotonic()
    with _process_lock:
        if _process_memo["definitions"] is None or now - _process_memo["at"] > PROCESS_MEMO_SECONDS:
            _process_memo["definitions"] = _load()
            _process_memo["at"] = now
        return _process_memo["definitions"]


def definitions(resource):
    """The current definitions of ``resource``, in their order."""
    return _all_definitions().get(resource, [])


def by_key(resource):
    return {definition.key: definition for definition in definitions(resource)}


def forget():
    """Read the definitions again on next use (after a change)."""
    memo = _request_memo.get()
    if memo is not None:
        memo.clear()
    with _process_lock:
        _process_memo["definitions"] = None


def _request_begins(**kwargs):
    _request_memo.set({})


def _request_ends(**kwargs):
    _request_memo.set(None)


def _definition_changed(**kwargs):
    forget()


def connect_signals():
    from core import changesets
    from core.models import CustomField

    request_started.connect(_request_begins, dispatch_uid="customfields_request_started")
    request_finished.connect(_request_ends, dispatch_uid="customfields_request_finished")
    post_save.connect(_definition_changed, sender=CustomField, dispatch_uid="customfields_saved")
    post_delete.connect(_definition_changed, sender=CustomField, dispatch_uid="customfields_deleted")
    changesets.undo_step(TYPE_CHANGE, _undo_type_change)
    changesets.undo_step(PURGE, _undo_purge)


# One value.


class Invalid(Exception):
    """A value that does not fit its definition (the message says why)."""


_UNSET = object()
UNSET = _UNSET  # what clean_value() gives for an empty value


def _no_null_characters(text):
    if "\x00" in text:
        raise Invalid(_("Null characters are not allowed."))
    return text


def _text(value, limit):
    if not isinstance(value, str):
        raise Invalid(_("Enter text."))
    _no_null_characters(value)
    if len(value) > limit:
        raise Invalid(_("Ensure this value has at most %(limit)d characters.") % {"limit": limit})
    return value


def _is_integer(value):
    return (isinstance(value, int) and not isinstance(value, bool)) or (isinstance(value, float) and value.is_integer())


def _parse_decimal(text):
    try:
        number = Decimal(text.replace(" ", ""))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _number(value, from_text):
    if from_text and isinstance(value, str):
        number = _parse_decimal(value)
        if number is None or number != number.to_integral_value():
            raise Invalid(_("Enter a whole number."))
        value = number
    elif not _is_integer(value):
        raise Invalid(_("Enter a whole number."))
    # Compared before int(), which takes a minute for 1e1000000 and more memory than there is for 1e999999999.
    if not -NUMBER_LIMIT <= value <= NUMBER_LIMIT:
        raise Invalid(_("Enter a number between -%(limit)d and %(limit)d.") % {"limit": NUMBER_LIMIT})
    return int(value)


def _decimal(value, from_text):
    if isinstance(value, bool):
        raise Invalid(_("Enter a number."))
    if isinstance(value, str) and from_text:
        number = _parse_decimal(value)
    elif isinstance(value, (int, float)):
        number = _parse_decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    else:
        number = None
    if number is None:
        raise Invalid(_("Enter a number."))
    # copy_abs(), not abs(): abs() rounds to the context, and overflows past 1e999999.
    if number.copy_abs() >= DECIMAL_LIMIT or len(number.normalize().as_tuple().digits) > DECIMAL_DIGITS:
        raise Invalid(
            _("Enter a number below %(limit)s with at most %(digits)d digits.")
            % {"limit": "10^15", "digits": DECIMAL_DIGITS}
        )
    return int(number) if number == number.to_integral_value() else float(number)


def _date(value, from_text):
    if from_text and isinstance(value, datetime.datetime):
        value = value.date()
    if from_text and isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, str):
        text = value.strip()
        if from_text and len(text) > 10 and text[10] in "T ":
            text = text[:10]  # a date-time cell: its day
        try:
            if len(text) == 10:
                return datetime.date.fromisoformat(text).isoformat()
        except ValueError:
            pass
    raise Invalid(_("Enter a date as YYYY-MM-DD."))


def _boolean(value, from_text):
    if isinstance(value, bool):
        return value
    answer = boolean_of(value) if from_text else None
    if answer is None:
        raise Invalid(_("Enter true or false."))
    return answer


def _choice(definition, value, from_text):
    if not isinstance(value, str):
        raise Invalid(_("Enter one of the choices."))
    if from_text:
        value = value.strip()
        for choice in definition.choices:
            if choice.lower() == value.lower():
                return choice
    if value not in definition.choices:
        raise Invalid(
            _("“%(value)s” is not one of the choices: %(choices)s.")
            % {"value": value[:100], "choices": ", ".join(definition.choices)}
        )
    return value


def _multi_choice(definition, value, from_text):
    if from_text and isinstance(value, str):
        value = [part.strip() for part in LIST_SEPARATORS.split(value) if part.strip()]
    if not isinstance(value, list):
        raise Invalid(_("Enter a list of choices."))
    chosen = []
    for item in value:
        item = _choice(definition, item, from_text)
        if item not in chosen:
            chosen.append(item)
    return chosen or _UNSET


def clean_value(definition, value, *, from_text=False):
    """``value`` as stored for ``definition``, or ``_UNSET`` for an empty one; ``Invalid`` when it does not fit.

    ``from_text`` takes values as a spreadsheet cell or a query string gives them
    ("12", "yes", "a, b"); the API takes JSON types strictly, as its other fields do.
    """
    if value is None:
        return _UNSET
    if isinstance(value, str) and (value.strip() == "" if from_text else value == ""):
        return _UNSET
    kind = definition.field_type
    if kind == "text":
        return _text(value.strip() if from_text and isinstance(value, str) else value, TEXT_MAX_LENGTH)
    if kind == "long_text":
        return _text(value, LONG_TEXT_MAX_LENGTH)
    if kind == "number":
        return _number(value, from_text)
    if kind == "decimal":
        return _decimal(value, from_text)
    if kind == "date":
        return _date(value, from_text)
    if kind == "boolean":
        return _boolean(value, from_text)
    if kind == "choice":
        return _choice(definition, value, from_text)
    if kind == "multi_choice":
        return _multi_choice(definition, value, from_text)
    if kind == "url":
        text = _text(value.strip() if isinstance(value, str) else value, URL_MAX_LENGTH)
        try:
            validators.URLValidator()(text)
        except ValidationError:
            raise Invalid(_("Enter a valid URL.")) from None
        return text
    if kind == "email":
        text = _text(value.strip() if isinstance(value, str) else value, EMAIL_MAX_LENGTH)
        try:
            validators.validate_email(text)
        except ValidationError:
            raise Invalid(_("Enter a valid email address.")) from None
        return text
    raise Invalid(_("Unknown field type."))


def clean_cells(cells):
    """Clean a file row's custom field cells, ``(error_key, definition, cell)`` each, as text.

    Returns ``({key: stored value}, {error_key: [message]})``; empty cells are left out of both.
    The one home of the imports' cell rule: the admin's (``core/resources.py``) and the commands'
    (``core/sheets.py``).
    """
    values, errors = {}, {}
    for error_key, definition, cell in cells:
        try:
            value = clean_value(definition, cell, from_text=True)
        except Invalid as exc:
            errors[error_key] = [str(exc)]
            continue
        if value is not _UNSET:
            values[definition.key] = value
    return values, errors


def _is_empty(value):
    return value is None or value == "" or value == []


# A record's values.


def clean(resource, incoming, *, existing=None, full=False, from_text=False):
    """The record's values after writing ``incoming`` onto ``existing``: ``(values, errors)``.

    - ``incoming`` maps keys to values; a key of no current definition is an error
      (a deleted definition's too); null (or an empty value) removes the key.
    - ``existing`` (the stored values, hidden ones included) is kept where
      ``incoming`` says nothing: a partial update merges, and the values of
      deleted definitions are never lost by a write.
    - ``full`` (a create, or a form that shows every field): every required
      field must have a value. Otherwise only a required key being removed is an error.

    ``errors`` maps keys to lists of messages (empty when the values are good).
    """
    current = by_key(resource)
    values = dict(existing or {})
    errors = {}
    for key, value in (incoming or {}).items():
        definition = current.get(key)
        if definition is None:
            errors[str(key)[:100]] = [_("Unknown custom field.")]
            continue
        try:
            cleaned = clean_value(definition, value, from_text=from_text)
        except Invalid as exc:
            errors[key] = [str(exc)]
            continue
        if cleaned is _UNSET:
            values.pop(key, None)
            if definition.required:
                errors[key] = [_("This field is required.")]
        else:
            values[key] = cleaned
    if full:
        for key, definition in current.items():
            if definition.required and key not in errors and _is_empty(values.get(key)):
                errors[key] = [_("This field is required.")]
    return values, errors


def visible(resource, stored):
    """The values of current definitions only, in the definitions' order."""
    if not stored:
        return {}  # nothing to hide: the definitions need not be read
    return {d.key: stored[d.key] for d in definitions(resource) if d.key in stored}


def display(definition, value):
    """A value as text for a list column or a spreadsheet cell."""
    if value is None:
        return ""
    if isinstance(value, list):
        return ", ".join(str(item) for item in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def changes(resource, old, new):
    """``[(definition, key, old value, new value)]`` of the keys whose value differs between two versions of a
    record's ``custom_fields`` (None: no values), as the API's history compares the column: the keys of current
    definitions in their order, then those of definitions deleted since (``definition`` None), by key. A value
    the version has not is None."""
    old, new = old or {}, new or {}
    current = by_key(resource) if old or new else {}
    keys = [key for key in current if key in old or key in new]
    keys += sorted(key for key in {*old, *new} if key not in current)
    return [(current.get(key), key, old.get(key), new.get(key)) for key in keys if old.get(key) != new.get(key)]


# Definitions: their own rules.


def definition_errors(resource, key, field_type, choices, *, instance=None):
    """Why a definition cannot be saved as given ({field: [messages]}), checked against stored values too."""
    errors = {}
    if resource not in MODELS:
        errors["model"] = [_("Choose one of: %(models)s.") % {"models": ", ".join(sorted(MODELS))}]
        return errors
    if instance is not None and (resource != instance.model or key != instance.key):
        errors["key" if key != instance.key else "model"] = [
            _("The model and key of a custom field cannot change; delete it and create another.")
        ]
        return errors
    if not isinstance(key, str) or not KEY_PATTERN.match(key) or len(key) > KEY_MAX_LENGTH:
        errors["key"] = [
            _("Use lower-case letters, digits and single underscores, starting with a letter (at most %(n)d).")
            % {"n": KEY_MAX_LENGTH}
        ]
    elif instance is None:
        from core.models import CustomField

        # Checked when the key is chosen only: a field the record gains in a later version may take the key of
        # a definition made before, which stays editable (its key cannot change):
        # its values stay apart from the field's, and files head its column ``cf_<key>`` (``column_name``).
        if key in reserved_names(resource) or FILTER_PREFIX + key in reserved_names(resource):
            errors["key"] = [_("“%(key)s” is the name of a field of the record.") % {"key": key}]
        elif CustomField.objects.filter(model=resource, key=key).exists():
            errors["key"] = [_("This model already has a custom field with this key.")]
    choice_errors = _choices_errors(field_type, choices)
    if choice_errors:
        errors["choices"] = choice_errors
    if errors:
        return errors
    problem = stored_values_problem(resource, key, field_type, choices)
    if problem:
        errors["field_type" if instance is None or instance.field_type != field_type else "choices"] = [problem]
    return errors


def _choices_errors(field_type, choices):
    if field_type not in CHOICE_TYPES:
        return [_("Only choice fields have choices.")] if choices else []
    if not isinstance(choices, list) or not choices:
        return [_("List the choices.")]
    if len(choices) > CHOICES_MAX:
        return [_("At most %(n)d choices.") % {"n": CHOICES_MAX}]
    seen = set()
    for choice in choices:
        if not isinstance(choice, str) or not choice.strip() or choice != choice.strip():
            return [_("Each choice is a text without surrounding spaces.")]
        if len(choice) > CHOICE_MAX_LENGTH or "\x00" in choice or LIST_SEPARATORS.search(choice):
            return [_("Each choice has at most %(n)d characters and no comma.") % {"n": CHOICE_MAX_LENGTH}]
        if choice.lower() in seen:
            return [_("The choice “%(choice)s” appears twice.") % {"choice": choice}]
        seen.add(choice.lower())
    return []


class _Definition:
    """A definition as it would be saved (for checking stored values before saving it)."""

    def __init__(self, key, field_type, choices):
        self.key, self.field_type, self.choices, self.required = key, field_type, list(choices or []), False


def _stored(resource, key):
    model = MODELS[resource]
    rows = model._base_manager.filter(custom_fields__has_key=key)
    return rows.values_list("pk", "custom_fields")


def _same(new, value):
    """Whether ``new`` is ``value`` as stored: 5.0 == 5, but a number is stored as 5, not 5.0."""
    return type(new) is type(value) and new == value


def _converted(target, value):
    """``value`` as stored for ``target`` (a definition as it would be saved); ``Invalid`` when it does not fit.

    A value that fits the type as it is (strictly, as the API takes it) is kept as it is; any
    other is converted as a cell with its text would be. ``_UNSET`` when it converts to nothing.
    """
    try:
        fits = clean_value(target, value)
    except Invalid:
        fits = _UNSET
    if fits is not _UNSET and _same(fits, value):
        return value
    given = value
    if target.field_type != "multi_choice" and isinstance(value, (int, float, bool, list)):
        given = str(display(target, value))  # converted as a cell with that text would be
    return clean_value(target, given, from_text=True)


def converted_values(resource, key, field_type, choices):
    """{pk: value converted to the type} of the records holding a value for ``key``, and how many do not fit.

    Read without locks: what a check before saving a definition may say; the conversion itself
    reads each record again under its lock (:func:`convert_stored`).
    """
    target = _Definition(key, field_type, choices)
    converted, misfits = {}, 0
    for pk, stored in _stored(resource, key).iterator(chunk_size=2000):
        value = stored.get(key)
        try:
            new = _converted(target, value)
        except Invalid:
            misfits += 1
            continue
        if new is not _UNSET and not _same(new, value):
            converted[pk] = new
    return converted, misfits


def _misfits_message(count, key):
    return _(
        "%(count)d record(s) hold values for “%(key)s” that do not fit this type or these choices; "
        "change them first (or purge them: manage.py purge_custom_field)."
    ) % {"count": count, "key": key}


def stored_values_problem(resource, key, field_type, choices):
    """Why the records' stored values for ``key`` (a deleted definition's too) do not fit this type, or None."""
    _converted_values, misfits = converted_values(resource, key, field_type, choices)
    return _misfits_message(misfits, key) if misfits else None


class StoredValuesMisfit(Exception):
    """A value written since the check no longer fits the new type (the message says so); nothing was saved."""


class DefinitionGone(Exception):
    """The definition being saved was deleted since it was read (the message says so); nothing was saved."""


# Records locked and rewritten per chunk (one bulk update and one history insert each).
CHUNK = 500


def _rewrite_locked(resource, key, rewrite, reason):
    """Apply ``rewrite(custom_fields)`` to every record of ``resource`` holding ``key``, each read under its
    lock, a chunk at a time, and write the changed ones with their history, events and changeset rows.

    ``rewrite`` returns the record's new ``custom_fields`` (the same dict when it keeps them). A record
    deleted meanwhile is not read, so not written; a value changed meanwhile is read as changed, so
    the conversion starts from it and a concurrent edit is never overwritten. Returns how many changed.
    """
    from django.utils import timezone

    from core.history import current_history_user

    model = MODELS[resource]
    timestamped = any(field.name == "updated_at" for field in model._meta.concrete_fields)
    user = current_history_user()
    # As updates (``FOR NO KEY UPDATE``): records being added to them go on.
    rows = locking(model._base_manager.filter(custom_fields__has_key=key))
    changed_count, last = 0, None
    while True:
        chunk = list((rows if last is None else rows.filter(pk__gt=last))[:CHUNK])
        if not chunk:
            return changed_count
        last = chunk[-1].pk
        changed, now = [], timezone.now()
        for row in chunk:
            values = rewrite(row.custom_fields)
            if values is not row.custom_fields:  # (compared, {"n": 5} == {"n": 5.0})
                row.custom_fields = values
                if timestamped:
                    row.updated_at = now
                changed.append(row)
        if changed:
            model._base_manager.bulk_update(
                changed, ["custom_fields", "updated_at"] if timestamped else ["custom_fields"], batch_size=CHUNK
            )
            model.history.bulk_history_create(
                changed, batch_size=CHUNK, update=True, default_user=user, default_change_reason=reason
            )
            changed_count += len(changed)


def convert_stored(resource, key, field_type, choices):
    """Rewrite the stored values of ``key`` as ``field_type`` stores them; how many records changed.

    Each record is read under its lock (a chunk at a time) and converted from that value, and
    written with its history entry and ``<model>.updated`` event (a row of the changeset being
    recorded, if any). A value that does not fit (written since the check) raises
    :class:`StoredValuesMisfit`: call it inside the transaction that saves the definition.
    """
    target = _Definition(key, field_type, choices)
    misfits = 0

    def rewrite(values):
        nonlocal misfits
        value = values.get(key)
        try:
            new = _converted(target, value)
        except Invalid:
            misfits += 1
            return values
        if new is _UNSET or _same(new, value):
            return values
        return {**values, key: new}

    count = _rewrite_locked(resource, key, rewrite, f"Custom field {key!r} converted to {field_type}")
    if misfits:
        raise StoredValuesMisfit(_misfits_message(misfits, key))
    return count


def _type_of(definition):
    return {"field_type": definition.field_type, "choices": list(definition.choices or [])}


def save_definition(definition, *, user=None):
    """Save ``definition`` (already checked with :func:`definition_errors`), converting stored values if need be.

    One transaction: the definition and every converted record (each with its history entry
    and event, attributed to ``user``, or to the request's user) commit together, and a
    conversion (a change of type or choices, or a new definition over a deleted one's values)
    is one changeset; undo reverses a type change, definition included, and refuses to undo a
    new definition's (:func:`_undo_type_change`). Raises :class:`StoredValuesMisfit`,
    with nothing saved, when a value written since the check does not fit, and
    :class:`DefinitionGone`, with nothing saved, when a stored definition was deleted since it
    was read (saving it would insert it again).
    """
    from core import changesets
    from core.history import acting_as, current_history_user
    from core.models import CustomField

    acting = user if user is not None and current_history_user() is None else None
    try:
        with transaction.atomic(), acting_as(acting) if acting is not None else contextlib.nullcontext():
            before = None
            if definition.pk is not None:
                before = locking(CustomField.objects.filter(pk=definition.pk)).first()
                if before is None:
                    name = f"{definition.model}.{definition.key}"
                    raise DefinitionGone(
                        _("The custom field %(field)s was deleted meanwhile: nothing was saved.") % {"field": name}
                    )
            definition.save()
            if before is None or _type_of(before) != _type_of(definition):
                resource, key = definition.model, definition.key
                source = {
                    "id": definition.pk,
                    "resource": resource,
                    "key": key,
                    "before": _type_of(before) if before is not None else None,
                    "after": _type_of(definition),
                }
                with changesets.recording(
                    "action",
                    user=user or current_history_user(),
                    label=f"Type of {definition}: "
                    + (f"{before.field_type} → " if before is not None else "")
                    + definition.field_type,
                    source={TYPE_CHANGE: source},
                ):
                    convert_stored(resource, key, definition.field_type, definition.choices)
    finally:
        forget()
    return definition


def purge(resource, key):
    """Remove the stored values of ``key`` from every record of ``resource``; how many records held one.

    Refused (``ValueError``) while a definition of the key exists. Each record is read under
    its lock and written with its history entry and event; the whole purge is one changeset.
    """
    from core import changesets
    from core.models import CustomField

    if resource not in MODELS:
        raise ValueError(f"Unknown model {resource!r}; choose one of: {', '.join(sorted(MODELS))}.")
    with transaction.atomic():
        if CustomField.objects.filter(model=resource, key=key).exists():
            raise ValueError(f"{resource} still defines the custom field {key!r}: delete the definition first.")
        with changesets.recording(
            "action",
            user=None,
            label=f"Purge of {resource}.{key}",
            source={PURGE: {"resource": resource, "key": key}},
        ):
            return _rewrite_locked(
                resource,
                key,
                lambda values: {name: value for name, value in values.items() if name != key},
                f"Custom field {key!r} purged",
            )


# Undoing a type change or a purge (core.changesets.undo_step).

TYPE_CHANGE = "custom_field_type"
PURGE = "custom_field_purge"


def _undo_refused(name, pk, message):
    from core.changesets import UndoRefused

    return UndoRefused(
        message,
        code="undo_conflict",
        conflicts=[{"model": "core.customfield", "object_id": pk, "name": name, "reason": "changed"}],
    )


def _undo_type_change(change):
    """After an undo put back the records' values: the definition goes back to its type and choices before,
    and the values stored since are converted to them. Refused when the definition is gone or is
    no longer as the change left it, or when a value does not fit. Returns the undo's own change."""
    from core.models import CustomField

    name = f"{change['resource']}.{change['key']}"
    definition = locking(CustomField.objects.filter(pk=change["id"])).first()
    if definition is None or (definition.model, definition.key) != (change["resource"], change["key"]):
        raise _undo_refused(
            name,
            change["id"],
            _("The custom field %(field)s was deleted since; it cannot be undone.") % {"field": name},
        )
    if _type_of(definition) != change["after"]:
        raise _undo_refused(
            name,
            definition.pk,
            _("The type or choices of the custom field %(field)s changed since; change them back first.")
            % {"field": name},
        )
    target = change["before"]
    if target is None:
        # A new definition converted the values a deleted one left: without it they would be hidden again,
        # which deleting the definition does; putting back values of another type under it would not fit.
        raise _undo_refused(
            name,
            definition.pk,
            _("The custom field %(field)s was created by this change; delete it or change its type instead.")
            % {"field": name},
        )
    definition.field_type, definition.choices = target["field_type"], target["choices"]
    definition.save(update_fields=["field_type", "choices", "updated_at"])
    forget()
    try:
        convert_stored(definition.model, definition.key, definition.field_type, definition.choices)
    except StoredValuesMisfit as exc:
        raise _undo_refused(name, definition.pk, str(exc)) from None
    return {**change, "before": change["after"], "after": target}


def _undo_purge(purged):
    """An undo of a purge (or of its undo) while the key is defined again would write values the
    definition does not check: refused."""
    from core.models import CustomField

    defined = CustomField.objects.filter(model=purged["resource"], key=purged["key"]).first()
    if defined is not None:
        name = f"{purged['resource']}.{purged['key']}"
        raise _undo_refused(
            name,
            defined.pk,
            _("The custom field %(field)s is defined again; delete the definition first.") % {"field": name},
        )
    return purged


# Query strings: ?cf_<key>=, ?cf_<key>__gte=, ?cf_<key>__lte=, and ordering.


class JSONArrayHas(models.Func):
    """``column -> key`` (a JSON array) holds the text ``value`` (SQLite; PostgreSQL uses ``@>``)."""

    output_field = models.BooleanField()
    conditional = True

    def __init__(self, column, key, value):
        super().__init__(models.F(column))
        self.key, self.value = key, value

    def as_sql(self, compiler, connection, **extra):
        column, params = compiler.compile(self.source_expressions[0])
        sql = f"EXISTS (SELECT 1 FROM json_each({column}, %s) WHERE json_each.value = %s)"
        return sql, [*params, f'$."{self.key}"', self.value]


def _equals(key, value, alias):
    if connection.vendor == "postgresql":
        # The GIN index (jsonb_path_ops) answers containment.
        return models.Q(custom_fields__contains={key: value})
    return models.Q(**{alias: value})


def _has_member(key, value):
    if connection.vendor == "postgresql":
        return models.Q(custom_fields__contains={key: [value]})
    return JSONArrayHas("custom_fields", key, value)


def filter_params(params):
    """The query parameters that filter by custom fields (``cf_...``)."""
    return [name for name in params if name.startswith(FILTER_PREFIX)]


def apply_filters(queryset, resource, params):
    """``queryset`` narrowed by the ``cf_`` parameters of ``params`` (a QueryDict); ValidationError-style dict on bad ones.

    Returns ``(queryset, errors)``.
    """
    current = by_key(resource)
    errors = {}
    for name in filter_params(params):
        raw_values = params.getlist(name)
        base, _sep, op = name[len(FILTER_PREFIX) :].partition("__")
        definition = current.get(base)
        if definition is None:
            errors[name] = [_("No custom field with this key.")]
            continue
        if op not in ("", "gte", "lte"):
            errors[name] = [_("Use cf_<key>, cf_<key>__gte or cf_<key>__lte.")]
            continue
        if op and definition.field_type not in RANGE_TYPES:
            errors[name] = [_("Ranges apply to number, decimal and date fields.")]
            continue
        alias = f"cf_value_{base}"
        queryset = queryset.alias(**{alias: KeyTransform(base, "custom_fields")})
        values = []
        for raw in raw_values:
            if "\x00" in raw or len(raw) > LONG_TEXT_MAX_LENGTH:
                errors[name] = [_("Enter a valid value.")]
                break
            scalar = _Definition(
                base, "choice" if definition.field_type in CHOICE_TYPES else definition.field_type, definition.choices
            )
            try:
                value = clean_value(scalar, raw, from_text=True)
            except Invalid as exc:
                errors[name] = [str(exc)]
                break
            if value is _UNSET:
                errors[name] = [_("Enter a value.")]
                break
            values.append(value)
        if name in errors:
            continue
        if op:
            # The last one given counts, as for other query parameters.
            queryset = queryset.filter(**{f"{alias}__{op}": values[-1]})
        elif definition.field_type == "multi_choice":
            for value in values:  # all of them
                queryset = queryset.filter(_has_member(base, value))
        else:
            condition = models.Q()
            for value in values:  # any of them
                condition |= _equals(base, value, alias)
            queryset = queryset.filter(condition)
    return queryset, errors


def ordering(key, descending):
    """The ORDER BY expression of ``?ordering=cf_<key>`` (records without a value last)."""
    value = KeyTransform(key, "custom_fields")
    return value.desc(nulls_last=True) if descending else value.asc(nulls_last=True)


# Spreadsheets.


def column_name(definition, own_columns):
    """The header of ``definition``'s column in a file whose record columns are ``own_columns``: its key, or
    ``cf_<key>`` when a column of the record has that name (the query parameter's name, never a field's)."""
    return FILTER_PREFIX + definition.key if definition.key in own_columns else definition.key


def export_columns(model, header, sources):
    """``(header, sources, convert)`` of an export with a column per custom field (headed by :func:`column_name`).

    ``sources`` gains the ``custom_fields`` column; ``convert`` turns a row of those
    sources into the row of cells (the record's values of current definitions only).
    """
    resource = resource_of(model)
    current = definitions(resource) if resource else []
    if not current:
        return header, sources, tuple
    width = len(sources)
    own = set(header)

    def convert(row):
        stored = row[width] or {}
        return (*row[:width], *(display(d, stored.get(d.key)) for d in current))

    return [*header, *(column_name(d, own) for d in current)], [*sources, "custom_fields"], convert


def column_map(resource):
    """{lower-case header: key} of the columns that name custom fields: ``cf_<key>``, or the key or a label in either
    language unless that is the name of a field of the record (a key a field added later took)."""
    reserved = reserved_names(resource)
    columns = {}
    for definition in definitions(resource):
        for name in (definition.label_zh, definition.label, definition.key):
            if name and name.strip() and name.strip().lower() not in reserved:
                columns[name.strip().lower()] = definition.key
    for definition in definitions(resource):
        columns[FILTER_PREFIX + definition.key] = definition.key
    return columns
