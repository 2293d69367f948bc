from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class Kind(models.TextChoices):
    CUSTOMER = "customer", _("Customers")
    COMPANY = "company", _("Companies")


class DuplicateKey(models.Model):
    """A blocking key of one record (``duplicates.matching``): records sharing a key are compared.

    Rebuilt with the candidates; a record created through the API adds its own at once.
    """

    kind = models.CharField(max_length=16, choices=Kind.choices)
    record_id = models.BigIntegerField()
    key = models.CharField(max_length=300)

    class Meta:
        ordering = ["kind", "key", "record_id"]
        constraints = [models.UniqueConstraint(fields=["kind", "key", "record_id"], name="duplicate_key_unique")]
        indexes = [models.Index(fields=["kind", "record_id"], name="duplicate_key_record_idx")]

    def __str__(self):
        return f"{self.kind} {self.record_id}: {self.key}"


class DuplicateCandidateQuerySet(models.QuerySet):
    def visible_to(self, user):
        """The pairs whose two records ``user`` sees (``core.access.scope`` of each kind's model)."""
        from core import access

        condition = Q()
        for kind, model in models_by_kind().items():
            seen = access.scope(model._default_manager.all(), user).values("pk")
            condition |= Q(kind=kind, a_id__in=seen, b_id__in=seen)
        return self.filter(condition)

    def involving(self, kind, record_id):
        return self.filter(Q(a_id=record_id) | Q(b_id=record_id), kind=kind)


def models_by_kind():
    from django.apps import apps

    return {
        Kind.CUSTOMER: apps.get_model("customers", "Customer"),
        Kind.COMPANY: apps.get_model("companies", "Company"),
    }


class DuplicateCandidate(models.Model):
    """Two records (of one kind, ``a_id < b_id``) that are probably one, with how alike (0..1) and why.

    A rebuild refreshes the open pairs; a pair decided "not a duplicate" (or merged) keeps its
    status across rebuilds, so it is not offered again.
    """

    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        NOT_DUPLICATE = "not_duplicate", _("Not a duplicate")
        MERGED = "merged", _("Merged")

    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    a_id = models.BigIntegerField(_("first record"))
    b_id = models.BigIntegerField(_("second record"))
    score = models.FloatField(_("score"))
    # Names of the rules the pair meets (duplicates.matching: "same_email", "same_phone", ...).
    reasons = models.JSONField(_("reasons"), default=list)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.OPEN)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("decided by"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="duplicate_decisions",
    )
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)
    found_at = models.DateTimeField(_("found at"), auto_now_add=True)

    objects = DuplicateCandidateQuerySet.as_manager()

    class Meta:
        ordering = ["-score", "id"]
        verbose_name = _("possible duplicate")
        verbose_name_plural = _("possible duplicates")
        constraints = [
            models.UniqueConstraint(fields=["kind", "a_id", "b_id"], name="duplicate_pair_unique"),
            models.CheckConstraint(condition=Q(a_id__lt=models.F("b_id")), name="duplicate_pair_ordered"),
        ]
        indexes = [
            models.Index(fields=["kind", "b_id"], name="duplicate_pair_b_idx"),
            models.Index(fields=["status", "-score"], name="duplicate_status_score_idx"),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} {self.a_id} ~ {self.b_id} ({self.score:.2f})"

    def other(self, record_id):
        return self.b_id if self.a_id == record_id else self.a_id
