import functools
import zoneinfo
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.core.validators import RegexValidator
from django.db import models, router, transaction
from django.dispatch import Signal
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from core.fields import created_by_field
from core.history import CRMHistoricalRecords


class RecordedModel(models.Model):
    """A record whose row, history entry and event (``core/events.py``) commit or roll back together.

    A save inside a transaction is already atomic; this makes a save outside one
    (a shell, a script) atomic too, so that no change is ever left without its event.
    """

    class Meta:
        abstract = True

    def save_base(self, *args, **kwargs):
        using = kwargs.get("using") or router.db_for_write(type(self), instance=self)
        with transaction.atomic(using=using, savepoint=False):
            super().save_base(*args, **kwargs)

    def set_derived_fields(self):
        """Set the columns computed from the record's own other fields (a model with such columns says which).

        ``save()`` calls it; so does ``loaddata`` for the rows it saves raw, which skip ``save()``
        (``core/management/commands/loaddata.py``), and so may a bulk writer that builds instances.
        """


# How long a key is remembered; a retry after that is treated as a new request.
IDEMPOTENCY_KEY_TTL = timedelta(hours=24)


class IdempotencyKeyQuerySet(models.QuerySet):
    def expired(self, now=None):
        return self.filter(created_at__lt=(now or timezone.now()) - IDEMPOTENCY_KEY_TTL)


class IdempotencyKey(models.Model):
    """The first response to a POST sent with an ``Idempotency-Key`` header.

    The row is written in the same transaction as the change it records, so a
    key is either unused or bound to a finished response: a retry replays that
    response instead of writing twice.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("user"), on_delete=models.CASCADE, related_name="idempotency_keys"
    )
    key = models.CharField(_("key"), max_length=255)
    # sha256 of method, path and body: the same key with another request is refused.
    fingerprint = models.CharField(_("request fingerprint"), max_length=64)
    response_status = models.PositiveSmallIntegerField(_("response status"), null=True, blank=True)
    response_body = models.BinaryField(_("response body"), default=b"")
    response_headers = models.JSONField(_("response headers"), default=dict)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    objects = IdempotencyKeyQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("idempotency key")
        verbose_name_plural = _("idempotency keys")
        constraints = [models.UniqueConstraint(fields=["user", "key"], name="idempotency_key_user_key_unique")]
        indexes = [models.Index(fields=["created_at"], name="idempotency_key_created_idx")]

    def __str__(self):
        return f"{self.user_id}:{self.key}"

    @property
    def is_expired(self):
        return self.created_at < timezone.now() - IDEMPOTENCY_KEY_TTL


class RateCounter(models.Model):
    """A rate-limit counter (``core.api.throttling``) when the cache is the database's.

    Django's database cache stores pickled values and increments by a read and a
    write, so concurrent requests overshoot a limit; here a count is one integer
    that a single ``INSERT ... ON CONFLICT DO UPDATE`` checks and increments.
    """

    key = models.CharField(_("key"), max_length=255, primary_key=True)
    count = models.PositiveIntegerField(_("count"), default=0)
    # Unix time after which the counter no longer weighs on any window.
    expires = models.BigIntegerField(_("expires"))

    class Meta:
        ordering = ["key"]
        verbose_name = _("rate counter")
        verbose_name_plural = _("rate counters")
        indexes = [models.Index(fields=["expires"], name="rate_counter_expires_idx")]

    def __str__(self):
        return f"{self.key}={self.count}"


class EventQuerySet(models.QuerySet):
    def expired(self, now=None):
        return self.filter(created_at__lt=(now or timezone.now()) - timedelta(days=settings.EVENT_RETENTION_DAYS))

    def undispatched(self):
        return self.filter(dispatched_at__isnull=True)

    def placed(self):
        """The events the relay has given a position: committed, in the feed's order."""
        return self.filter(position__isnull=False)


class Event(models.Model):
    """One change to a record, written in the same transaction as the change (a transactional outbox).

    A write that rolls back leaves no event; a committed one always has one. After
    the commit a job hands new events to the dispatchers (see ``core/events.py``).

    ``position`` orders the feed and the dispatch in commit order: it is given once
    the event's transaction has committed (``core.events.relay``), so an event that
    commits late is placed after those already served, never behind them.
    """

    type = models.CharField(_("type"), max_length=64, help_text=_("<model>.<verb>, e.g. customer.created"))
    # The record: its model label ("customers.customer") and primary key.
    model = models.CharField(_("model"), max_length=100)
    object_id = models.BigIntegerField(_("object id"))
    # The owner of the record when the event was written: scopes the feed, deleted records included.
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("owner"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_constraint=False,
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("changed by"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_constraint=False,
    )
    # {field: {"old": ..., "new": ...}} for the fields that changed (all of them on creation).
    changes = models.JSONField(_("changes"), default=dict, encoder=DjangoJSONEncoder)
    # The record as the API returns it after the change; null for a deletion.
    data = models.JSONField(_("data"), null=True, blank=True, encoder=DjangoJSONEncoder)
    request_id = models.CharField(_("request id"), max_length=128, blank=True, default="")
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    # Set once the dispatchers have been given the event; the outbox sweep re-sends the rest.
    dispatched_at = models.DateTimeField(_("dispatched at"), null=True, blank=True)
    # The place in the feed, in commit order; null until the relay has seen the event committed.
    # PostgreSQL: given by core.events.relay from a sequence; SQLite (one writer at a time, ids in
    # commit order): the id, set by a trigger on insert. Events older than it kept their ids.
    position = models.BigIntegerField(_("position"), null=True, blank=True, unique=True, editable=False)

    objects = EventQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        verbose_name = _("event")
        verbose_name_plural = _("events")
        indexes = [
            models.Index(fields=["owner", "position"], name="event_owner_position_idx"),
            models.Index(fields=["type", "position"], name="event_type_position_idx"),
            models.Index(fields=["created_at"], name="event_created_idx"),
            models.Index(
                fields=["position"], name="event_undispatched_pos_idx", condition=models.Q(dispatched_at__isnull=True)
            ),
            # What the relay has still to place, oldest first.
            models.Index(fields=["id"], name="event_unplaced_idx", condition=models.Q(position__isnull=True)),
        ]

    def __str__(self):
        return f"{self.type} {self.model}:{self.object_id}"


# The longest reminder lead a task or a user may ask for: four weeks, in minutes.
MAX_REMINDER_LEAD_MINUTES = 4 * 7 * 24 * 60


def default_time_zone():
    return settings.TIME_ZONE


def validate_time_zone(value):
    """Refuse a name that is not an IANA time zone (``Asia/Shanghai``, ``UTC``)."""
    if not is_time_zone(value):
        raise ValidationError(
            _("%(value)s is not a time zone name (such as Europe/Paris or Asia/Shanghai)."),
            code="invalid_time_zone",
            params={"value": value},
        )


def zone_named(name):
    """The ``zoneinfo.ZoneInfo`` of ``name`` (the site's when the name is no longer known)."""
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo(settings.TIME_ZONE)


def is_time_zone(value):
    """Whether ``value`` names the time zone of a place: one of the zone database's names, not its files that
    name none (``localtime``, the server's own zone; ``Factory``; ``posix/…``, ``right/…``, clocks that count
    leap seconds, 27 seconds off)."""
    return isinstance(value, str) and value in _place_zones()


@functools.cache
def _place_zones():
    return frozenset(zoneinfo.available_timezones()) - {"localtime", "Factory"}


# Sent in the transaction of a save that changes a user's time zone, with ``user``, ``old_zone`` and
# ``new_zone`` (``zoneinfo.ZoneInfo``): the apps whose records are kept in a user's zone follow it (a
# date-only task keeps its date: ``tasks``).
time_zone_changed = Signal()


class UserPreferences(models.Model):
    """A user's settings: their time zone ("today" and "overdue" are theirs), reminders, the morning digest.

    Created on first use (:meth:`for_user`); a user without a row has the defaults. A save that
    changes the time zone sends :data:`time_zone_changed` in its transaction.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, verbose_name=_("user"), on_delete=models.CASCADE, related_name="crm_preferences"
    )
    time_zone = models.CharField(
        _("time zone"), max_length=64, default=default_time_zone, validators=[validate_time_zone]
    )
    reminder_lead_minutes = models.PositiveIntegerField(
        _("reminder lead (minutes)"), default=15, help_text=_("How long before a task is due its reminder fires.")
    )
    daily_digest = models.BooleanField(
        _("daily digest"), default=False, help_text=_("A morning email of the day's and overdue tasks.")
    )

    class Meta:
        verbose_name = _("user preferences")
        verbose_name_plural = _("user preferences")

    def __str__(self):
        return f"{self.user_id}: {self.time_zone}"

    def save(self, *args, **kwargs):
        # A user without a row had the site's zone.
        old_zone = zone_named(getattr(self, "_stored_zone", None) or default_time_zone())
        using = kwargs.get("using") or router.db_for_write(type(self), instance=self)
        with transaction.atomic(using=using):
            super().save(*args, **kwargs)
            self._stored_zone = self.time_zone
            if self.zone != old_zone:
                time_zone_changed.send(type(self), user=self.user, old_zone=old_zone, new_zone=self.zone)

    @classmethod
    def from_db(cls, db, field_names, values):
        preferences = super().from_db(db, field_names, values)
        preferences._stored_zone = preferences.__dict__.get("time_zone")
        return preferences

    @classmethod
    def for_user(cls, user):
        """``user``'s preferences, an unsaved row with the defaults when they have none yet.

        Cached on the user object, so that a request asks the database once; a user read with
        ``select_related("crm_preferences")`` (the session's user: ``core.auth``) costs no query.
        """
        cached = getattr(user, "_crm_preferences_cache", None)
        if cached is not None:
            return cached
        relation = cls._meta.get_field("user").remote_field
        if relation.is_cached(user):
            preferences = relation.get_cached_value(user)
        else:
            preferences = cls.objects.filter(user=user).first() if user.pk else None
        if preferences is None:
            preferences = cls(user=user)
        user._crm_preferences_cache = preferences
        return preferences

    @property
    def zone(self):
        """The ``zoneinfo.ZoneInfo`` of ``time_zone`` (the site's when the stored name is no longer known)."""
        return zone_named(self.time_zone)


class CustomField(models.Model):
    """A field that managers add to a model (customers, companies, opportunities) without a developer.

    The values live in the model's ``custom_fields`` JSON column, checked against
    these definitions by ``core.customfields`` on every write path. Deleting a
    definition hides its stored values (no data is lost) until
    ``manage.py purge_custom_field`` removes them; re-creating the key shows them again.
    """

    class Type(models.TextChoices):
        TEXT = "text", _("Text")
        LONG_TEXT = "long_text", _("Long text")
        NUMBER = "number", _("Number (whole)")
        DECIMAL = "decimal", _("Decimal number")
        DATE = "date", _("Date")
        BOOLEAN = "boolean", _("Yes or no")
        CHOICE = "choice", _("Choice")
        MULTI_CHOICE = "multi_choice", _("Multiple choice")
        URL = "url", _("Web address")
        EMAIL = "email", _("Email")

    # The resource the field belongs to: "customers", "companies", "opportunities" (core.customfields.MODELS).
    model = models.CharField(_("model"), max_length=32)
    key = models.CharField(_("key"), max_length=50)
    label = models.CharField(_("label (English)"), max_length=100)
    label_zh = models.CharField(_("label (Chinese)"), max_length=100, blank=True, default="")
    field_type = models.CharField(_("type"), max_length=16, choices=Type.choices, default=Type.TEXT)
    required = models.BooleanField(_("required"), default=False)
    choices = models.JSONField(_("choices"), default=list, blank=True)
    order = models.PositiveIntegerField(_("order"), default=0)
    show_in_list = models.BooleanField(_("list column"), default=False)
    filterable = models.BooleanField(_("list filter"), default=False)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        ordering = ["model", "order", "id"]
        verbose_name = _("custom field")
        verbose_name_plural = _("custom fields")
        constraints = [models.UniqueConstraint(fields=["model", "key"], name="custom_field_model_key_unique")]

    def __str__(self):
        return f"{self.model}.{self.key}"

    @property
    def display_label(self):
        """The label in the active language (Chinese when set and active)."""
        from django.utils.translation import get_language

        if self.label_zh and (get_language() or "").lower().startswith("zh"):
            return self.label_zh
        return self.label


class Tag(RecordedModel):
    """A label for customers, companies and opportunities; the name is unique ignoring case (``core/tags.py``)."""

    name = models.CharField(_("name"), max_length=50)
    # The name cleaned and casefolded (core.tags.name_key): "VIP", " vip " and "ＶＩＰ" are one tag.
    key = models.CharField(_("key"), max_length=200, unique=True, editable=False)
    colour = models.CharField(
        _("colour"),
        max_length=7,
        blank=True,
        default="",
        validators=[RegexValidator(r"^#[0-9a-fA-F]{6}$", _("Enter a colour as #rrggbb."))],
        help_text=_("Optional, as #rrggbb."),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    created_by = created_by_field()
    history = CRMHistoricalRecords(excluded_fields=["updated_at", "key"])

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("tag")
        verbose_name_plural = _("tags")
        constraints = [models.CheckConstraint(condition=~models.Q(name=""), name="tag_name_not_blank")]

    def __str__(self):
        return self.name

    def save(self, *args, **kwargs):
        from core.tags import clean_name

        self.name = clean_name(self.name)
        self.key = self.name.casefold()
        self.colour = (self.colour or "").lower()
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and "name" in update_fields:
            kwargs["update_fields"] = {*update_fields, "key"}
        super().save(*args, **kwargs)


class MergedRecord(models.Model):
    """The tombstone of a record merged into another (``core/merges.py``): its old id answers with the survivor's.

    Kept with history, so that undoing a merge (which replays the history of
    everything the merge wrote) removes it like any other record it created.
    """

    # The model's label ("customers.customer").
    model = models.CharField(_("model"), max_length=100)
    old_id = models.BigIntegerField(_("old id"))
    survivor_id = models.BigIntegerField(_("survivor id"))
    merged_at = models.DateTimeField(_("merged at"), default=timezone.now)
    merged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("merged by"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    history = CRMHistoricalRecords()
    # Not a record of its own: undoing the merge removes it, whoever may undo the merge (core/changesets.py).
    bookkeeping = True

    class Meta:
        ordering = ["-merged_at", "-id"]
        verbose_name = _("merged record")
        verbose_name_plural = _("merged records")
        constraints = [models.UniqueConstraint(fields=["model", "old_id"], name="merged_record_model_old_id_unique")]
        indexes = [models.Index(fields=["model", "survivor_id"], name="merged_record_survivor_idx")]

    def __str__(self):
        return f"{self.model} #{self.old_id} → #{self.survivor_id}"


# The changesets engine keeps its models beside its code.
from core.changesets import Changeset, ChangesetRow  # noqa: E402, F401
