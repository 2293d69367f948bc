"""Tags: short labels a team sorts its customers, companies and opportunities by.

A tag is a ``core.Tag`` row (a name, unique ignoring case, and an optional colour).
A tagged model (``TaggedModel``) holds its tags twice, kept in step by its ``save()``:

- ``tags``, the names as a JSON list: the API's ``tags`` field, and a tracked field
  of the record's history, so that a change of tags is a change of the record (its
  history entry, its ``<model>.updated`` event with the API representation);
- ``tag_set``, a many-to-many to ``Tag``: what filters (``?tag=``, ``?tag_any=``),
  counts and the admin's list filter query.

Every write of a record's tags (API, admin form and actions, imports, commands) sets
``tags`` and saves the record, which resolves the names to tags (creating unknown
ones) and sets ``tag_set`` in the same transaction. Renaming or deleting a tag
rewrites the names of the records that carry it, with their history and events.

A tagging and a rename or delete of the same tag wait for each other (PostgreSQL row
locks; SQLite queues its writers): the tagging holds each tag it links ``FOR KEY
SHARE``, the rename or delete holds it ``FOR UPDATE`` before its records. A record
tagged while its tag is renamed ends with the new name; one tagged while its tag is
deleted gets the tag made again, as a name no tag has would.

The apps whose models are tagged declare them here from their ``AppConfig.ready()``
(``register(Customer, "customers")``): ``core`` imports no domain app.
"""

import functools
import operator
import unicodedata

from django.core.exceptions import EmptyResultSet, ValidationError
from django.db import connections, models, router, transaction
from django.db.models import Count, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.utils.translation import gettext_lazy as _

from core.rowlocks import locking

NAME_MAX_LENGTH = 50
# A casefolded name may be longer than the name (ß is ss).
KEY_MAX_LENGTH = 200
MAX_PER_RECORD = 20
# Tags named in one filter parameter.
MAX_PER_FILTER = 20

_registry = {}


class TagNameError(ValueError):
    """A tag name (or list of names) that breaks a rule; the message says which."""


def clean_name(value):
    """``value`` as a tag name: NFKC (full-width forms folded), spaces collapsed; TagNameError if invalid."""
    if not isinstance(value, str):
        raise TagNameError("Each tag must be a string.")
    value = unicodedata.normalize("NFKC", value)
    if any(unicodedata.category(char) == "Cc" and char not in " \t\n\r" for char in value):
        raise TagNameError("Tag names may not contain control characters.")
    value = " ".join(value.split())
    if not value:
        raise TagNameError("Tag names may not be blank.")
    if "," in value:
        # Exports join a record's tags with commas, and ?tag_any= splits on them.
        raise TagNameError("Tag names may not contain commas.")
    if len(value) > NAME_MAX_LENGTH:
        raise TagNameError(f"Tag names may have at most {NAME_MAX_LENGTH} characters.")
    return value


def name_key(name):
    """The key two names that are the same tag share: cleaned, then casefolded."""
    return clean_name(name).casefold()


def clean_names(values, *, limit=MAX_PER_RECORD):
    """A list of tag names: each cleaned, duplicates (by key) dropped, the first spelling kept."""
    if not isinstance(values, list | tuple):
        raise TagNameError("Expected a list of tag names.")
    names = {}
    for value in values:
        name = clean_name(value)
        names.setdefault(name.casefold(), name)
    if len(names) > limit:
        raise TagNameError(f"At most {limit} tags per record.")
    return list(names.values())


def split_names(text):
    """The tag names of a spreadsheet cell ("a, b"): empty parts ignored."""
    if text is None:
        return []
    return [part for part in str(text).split(",") if part.strip()]


def join_names(names):
    return ", ".join(names or [])


def _locking(using=None):
    """Whether tags and records are locked row by row: on PostgreSQL. SQLite needs no row locks: its
    writers are queued one at a time (``core/sqlite``), so a tagging and a rename never interleave."""
    from core.models import Tag

    return connections[using or router.db_for_write(Tag)].features.has_select_for_update


def current_tags(ids):
    """{pk: tag} of the tags ``ids`` as committed now (a deleted one is missing).

    On PostgreSQL each is held ``FOR KEY SHARE`` until the transaction ends (the lock a link to it
    takes, here taken before its name is written on a record): a rename or delete takes ``FOR UPDATE``
    first (``save_tag``, ``delete_tag``), so it waits for the tagging to commit, or the tagging for it
    and then reads the tag as it was left. The ORM has no ``FOR KEY SHARE`` (``no_key=True`` is the
    stronger ``FOR NO KEY UPDATE``, which would queue the taggings of one tag one after another).
    """
    from core.models import Tag

    if isinstance(ids, list | tuple) and not ids:
        return {}
    rows = Tag.objects.filter(pk__in=ids).order_by("pk")
    if connections[rows.db].vendor == "postgresql":
        try:
            sql, params = rows.query.sql_with_params()
        except EmptyResultSet:  # ``ids`` a query that can match nothing
            return {}
        rows = Tag.objects.raw(f"{sql} FOR KEY SHARE", params)
    return {tag.pk: tag for tag in rows}


def resolve(names, *, created_by_id=None, carried=()):
    """The ``Tag`` rows of ``names`` (cleaned), in name order, creating those that do not exist yet.

    Each tag is read as it is once held for linking (``current_tags``): one renamed meanwhile
    comes with its new name, one deleted meanwhile is created again, as an unknown name is. The keys
    in ``carried`` are tags that the record being saved carries already, its row locked: a rename or
    delete of one of them waits for the record, so they are not locked again (that could deadlock).
    """
    from core.models import Tag

    wanted = {name.casefold(): name for name in clean_names(names)}
    locking = _locking()
    chosen = {}
    pending = dict(wanted)
    while pending:
        found = {tag.key: tag for tag in Tag.objects.filter(key__in=list(pending))}
        for key, name in pending.items():
            if key not in found:
                tag, created = Tag.objects.get_or_create(
                    key=key, defaults={"name": name, "created_by_id": created_by_id}
                )
                # A tag this transaction created is its own until it commits.
                (chosen if created else found)[key] = tag
        held = {key: tag for key, tag in found.items() if locking and key not in carried}
        chosen.update({key: tag for key, tag in found.items() if key not in held})
        now = current_tags([tag.pk for tag in held.values()]) if held else {}
        pending = {}
        for key, tag in held.items():
            if tag.pk in now:
                chosen[key] = now[tag.pk]
            else:  # deleted meanwhile: made again, as an unknown name is
                pending[key] = wanted[key]
    # Two names may now be one tag (one renamed to the other's name meanwhile).
    return sorted({tag.pk: tag for tag in chosen.values()}.values(), key=lambda tag: tag.key)


class TaggedModel(models.Model):
    """A record with tags: the names in ``tags`` (tracked by history), the rows in ``tag_set``.

    The concrete model declares ``tag_set = models.ManyToManyField("core.Tag", ...)``.
    """

    # The database default serves rows written around the ORM (the demo seeding, raw imports).
    tags = models.JSONField(
        _("tags"),
        default=list,
        db_default=models.Value([], output_field=models.JSONField()),
        blank=True,
        help_text=_("The record's tags, by name."),
    )

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        update_fields = kwargs.get("update_fields")
        # A new record without tags has no links to write: its save costs what it did before tags.
        changed = (self._state.adding and bool(self.tags)) or (
            not self._state.adding and self.tags != getattr(self, "_loaded_tags", None)
        )
        if self.tags is None:
            self.tags = []
        if update_fields is not None and "tags" not in update_fields:
            super().save(*args, **kwargs)
            return
        if not changed:
            super().save(*args, **kwargs)
            self._loaded_tags = list(self.tags)
            return
        using = kwargs.get("using") or router.db_for_write(type(self), instance=self)
        with transaction.atomic(using=using, savepoint=False):
            try:
                chosen = resolve(
                    self.tags or [],
                    created_by_id=getattr(self, "created_by_id", None),
                    carried=self._carried_keys(using),
                )
            except TagNameError as exc:
                raise ValidationError({"tags": [str(exc)]}) from exc
            self.tags = [tag.name for tag in chosen]
            super().save(*args, **kwargs)
            self.tag_set.set(chosen)
        self._loaded_tags = list(self.tags)

    def _carried_keys(self, using):
        """The keys of the tags this record carries as committed, its row locked until the transaction
        ends (PostgreSQL; nothing on SQLite, whose writers are queued)."""
        if self._state.adding or self.pk is None or not _locking(using):
            return set()
        rows = locking(type(self)._base_manager.using(using).filter(pk=self.pk))
        names = next(iter(rows.values_list("tags", flat=True)), None) or []
        return {name.casefold() for name in names}

    @classmethod
    def from_db(cls, db, field_names, values):
        instance = super().from_db(db, field_names, values)
        # The names as loaded, so that save() resolves them only when they changed.
        instance._loaded_tags = instance.__dict__.get("tags")
        return instance


# -- the tagged models ---------------------------------------------------------


def register(model, key):
    """Declare ``model`` (a ``TaggedModel``) as tagged; ``key`` names its count in ``/api/tags``."""
    _registry[key] = model


def tagged_models():
    """{key: model} of the tagged models, in the order they were registered."""
    return dict(_registry)


def link_model(model):
    """The model of the links of ``model``'s records to their tags (``tag_set``'s through model)."""
    return _link(model)[0]


def _link(model):
    """(the through model, its column naming the record) of ``model.tag_set``."""
    field = model._meta.get_field("tag_set")
    return field.remote_field.through, field.m2m_field_name()


def with_all(queryset, names):
    """Records of ``queryset`` carrying every tag of ``names`` (a name that is no tag matches nothing)."""
    through, column = _link(queryset.model)
    for key in {name.casefold() for name in names}:
        queryset = queryset.filter(pk__in=through.objects.filter(tag__key=key).values(column))
    return queryset


def with_any(queryset, names):
    """Records of ``queryset`` carrying at least one tag of ``names``."""
    through, column = _link(queryset.model)
    keys = {name.casefold() for name in names}
    return queryset.filter(pk__in=through.objects.filter(tag__key__in=keys).values(column))


def with_counts(tags, user):
    """``tags`` annotated ``<key>_count``: how many records of each tagged model the user sees carry it."""
    from core import access

    annotations = {}
    for key, model in _registry.items():
        through, column = _link(model)
        links = through.objects.filter(tag_id=OuterRef("pk"))
        if not access.sees_everything(user):
            links = links.filter(**{f"{column}__in": access.scope(model.objects.all(), user).values("pk")})
        counted = links.order_by().values("tag_id").annotate(n=Count("*")).values("n")
        annotations[f"{key}_count"] = Coalesce(Subquery(counted[:1]), 0)
    return tags.annotate(**annotations)


# -- changing tags on records --------------------------------------------------


def hold_tags_of(model, ids):
    """Hold the tags that the records ``ids`` of ``model`` carry for linking (``current_tags``), before
    the caller locks those records to give their tags to another record (a merge).

    In the order of a rename, tag then records: the other way round, a rename of one of those tags
    could be waiting for one of the records while the caller waits to link its tag.
    """
    hold_tags(model, records=model._base_manager.filter(pk__in=list(ids)))


def holds_tags(model):
    """Whether a write of several records of ``model`` holds their tags first (``hold_tags``): a tagged
    model, on PostgreSQL."""
    return issubclass(model, TaggedModel) and _locking()


def hold_tags(model, *, names=(), records=None):
    """Hold for linking (``current_tags``) the tags a write of several records of ``model`` in one
    transaction may link (an import, a batch), before it locks any record: the existing tags among
    ``names`` and those carried by ``records`` (a queryset of ``model``, the records it may change).

    Otherwise the write could lock a record carrying a tag, then wait to link that tag to another
    record, while a rename of the tag holds it and waits for the first record: a deadlock. A name
    that is no tag name is skipped (its row refuses it); a tag created meanwhile is not held.
    """
    from core.models import Tag

    if not holds_tags(model):
        return
    keys = set()
    for name in names:
        try:
            keys.add(name_key(name))
        except TagNameError:
            continue
    wanted = [models.Q(key__in=keys)] if keys else []
    if records is not None:
        through, column = _link(model)
        wanted.append(
            models.Q(pk__in=through.objects.filter(**{f"{column}__in": records.values("pk")}).values("tag_id"))
        )
    if wanted:
        current_tags(Tag.objects.filter(functools.reduce(operator.or_, wanted)).values("pk"))


def _locked(records):
    """``records`` read again and locked, by primary key: their tags as they are now, kept so until the
    transaction ends (a concurrent write of a record's tags is neither lost nor overwritten)."""
    records = list(records)
    if not records:
        return []
    model = type(records[0])
    # As an update (``FOR NO KEY UPDATE``): records being added to them meanwhile go on.
    return list(locking(model._base_manager.filter(pk__in=[record.pk for record in records])))


def add_tag(records, tag):
    """Add ``tag`` to each of ``records`` that lacks it (each saved: history, event). Returns how many."""
    changed = 0
    with transaction.atomic():
        # Held before the records, as a rename holds it before its records; as it is now (renamed
        # meanwhile: the new name). One deleted meanwhile is made again from its name, as a new name is.
        tag = current_tags([tag.pk]).get(tag.pk) or tag
        for record in _locked(records):
            if tag.key not in {name.casefold() for name in record.tags}:
                if len(record.tags) >= MAX_PER_RECORD:
                    raise TagNameError(f"At most {MAX_PER_RECORD} tags per record: {record} has that many.")
                record.tags = [*record.tags, tag.name]
                record.save()
                changed += 1
    return changed


def remove_tag(records, tag):
    """Take ``tag`` off each of ``records`` that carries it (each saved: history, event). Returns how many."""
    changed = 0
    with transaction.atomic():
        tag = current_tags([tag.pk]).get(tag.pk)
        if tag is None:  # deleted meanwhile: taken off every record already
            return 0
        for record in _locked(records):
            kept = [name for name in record.tags if name.casefold() != tag.key]
            if len(kept) != len(record.tags):
                record.tags = kept
                record.save()
                changed += 1
    return changed


def _rewrite_names(tag, rename):
    """Apply ``rename(names)`` to the ``tags`` of every record carrying ``tag``, with history and events in bulk."""
    from core.history import current_history_user

    user = current_history_user()
    counts = {}
    for key, model in _registry.items():
        # Locked: a record's tags changed meanwhile are read as changed, not overwritten with what they were.
        carrying = model.objects.filter(tag_set=tag).values("pk")
        records = []
        # As updates (``FOR NO KEY UPDATE``): records being added to them go on.
        for record in locking(model.objects.filter(pk__in=carrying)):
            names = sorted(rename(record.tags), key=str.casefold)
            if names != record.tags:  # (not when its tag was taken off meanwhile)
                record.tags = names
                record._loaded_tags = list(names)
                records.append(record)
        if records:
            model.objects.bulk_update(records, ["tags"], batch_size=500)
            model.history.bulk_history_create(records, update=True, default_user=user)
        counts[key] = len(records)
    return counts


def locked_tag(tag):
    """The row of ``tag`` read again ``FOR UPDATE`` (None if deleted meanwhile): a rename or delete
    holds it first, so that it waits for the taggings holding it for linking, and they for it. A rename
    too, though it deletes nothing: the ``FOR KEY SHARE`` of a tagging does not hold up ``FOR NO KEY
    UPDATE``, and the record would be tagged with the name the rename is replacing."""
    from core.models import Tag

    return Tag.objects.select_for_update().filter(pk=tag.pk).first()


def save_tag(tag, *, name=None, colour=None):
    """Create or change ``tag`` (name, colour); a new name is carried to the records that have the tag."""
    from core.models import Tag

    with transaction.atomic():
        current = None
        if not tag._state.adding:
            current = locked_tag(tag)
            if current is None:
                raise TagNameError("This tag was deleted meanwhile.")
        if name is not None:
            tag.name = clean_name(name)
        if colour is not None:
            tag.colour = colour
        clash = Tag.objects.filter(key=tag.name.casefold())
        if tag.pk is not None:
            clash = clash.exclude(pk=tag.pk)
        if clash.exists():
            raise TagNameError("A tag with this name already exists.")
        renamed = current is not None and current.name != tag.name
        tag.save()
        if renamed:
            old_key = current.key
            _rewrite_names(tag, lambda names: [tag.name if n.casefold() == old_key else n for n in names])
    return tag


def delete_tag(tag):
    """Delete ``tag``, taking it off every record that carries it (with their history and events).

    Returns how many records of each tagged model lost it.
    """
    with transaction.atomic():
        current = locked_tag(tag)
        if current is None:  # deleted meanwhile, and taken off its records then
            return dict.fromkeys(_registry, 0)
        counts = _rewrite_names(current, lambda names: [n for n in names if n.casefold() != current.key])
        tag.delete()
    return counts
