"""Behaviour shared by every resource viewset."""

from django.core.exceptions import FieldDoesNotExist
from django.db import IntegrityError, transaction
from rest_framework import exceptions, status, viewsets
from rest_framework.response import Response

from core.access import scope
from core.history import batched_delete_history

from .conditional import ConditionalRequestMixin
from .idempotency import IdempotencyMixin
from .mixins import ListOnlyFilteringMixin, PrimaryKeyReadMixin


def changes_anything(instance, validated_data):
    """Whether saving ``validated_data`` onto ``instance`` would change any of its fields."""
    for name, value in validated_data.items():
        try:
            field = instance._meta.get_field(name)
        except FieldDoesNotExist:
            return True
        if field.many_to_many or field.one_to_many:
            return True
        if field.many_to_one or field.one_to_one:
            current, value = getattr(instance, field.attname), None if value is None else value.pk
        else:
            current = getattr(instance, field.attname)
        if current != value:
            return True
    return False


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The change conflicts with the current state of the data; reload and try again."
    default_code = "conflict"


class CRMModelViewSet(
    IdempotencyMixin, ConditionalRequestMixin, ListOnlyFilteringMixin, PrimaryKeyReadMixin, viewsets.ModelViewSet
):
    """A model viewset with the CRM's conventions.

    - ``PUT`` is a partial update, as in the original API (clients send only
      the fields that changed); ``PATCH`` too.
    - ``DELETE`` answers 200 with a message instead of an empty 204.
    - Writes run in a transaction; a unique constraint that loses a race with a
      concurrent writer becomes a 400 on the field named in ``unique_constraint_fields``.
    - POSTs honour ``Idempotency-Key`` (see ``idempotency.py``); detail responses
      carry an ETag, and PUT/PATCH/DELETE honour ``If-Match`` (see ``conditional.py``).
    - Every action built on ``get_queryset()``/``get_object()`` sees only the rows
      the user may see (``core.access.scope`` along ``owner_field``): out of
      scope is a 404. New records remember their creator (``created_by``).
    - An update that changes nothing writes nothing: no history entry, and
      ``updated_at`` and so the ETag stay as they were.
    """

    # Ids are integers: anything else is not a route, so it gets the JSON 404.
    lookup_value_regex = r"[0-9]+"
    # Database constraint name -> (field, message) for IntegrityErrors.
    unique_constraint_fields = {}
    deleted_message = "Deleted."
    # The lookup from a row to the user who owns it (see core.access).
    owner_field = None

    def get_queryset(self):
        return scope(super().get_queryset(), self.request.user, self.owner_field)

    def update(self, request, *args, **kwargs):
        kwargs["partial"] = True
        return super().update(request, *args, **kwargs)

    def perform_create(self, serializer):
        self._save(serializer, created_by=self.request.user)

    def perform_update(self, serializer):
        if changes_anything(serializer.instance, serializer.validated_data):
            self._save(serializer)

    def _save(self, serializer, **extra):
        try:
            with transaction.atomic():
                serializer.save(**extra)
        except IntegrityError as exc:
            text = str(exc)
            for constraint, (field, message) in self.unique_constraint_fields.items():
                if constraint in text:
                    raise exceptions.ValidationError({field: [message]}) from exc
            raise Conflict() from exc

    def destroy(self, request, *args, **kwargs):
        # Deletion history (a cascade's included) is written in bulk, in the same transaction.
        with transaction.atomic(), batched_delete_history():
            # Read inside the transaction: an If-Match check and the delete see the same row.
            instance = self.get_object()
            payload = {"id": instance.pk}
            payload.update(self.perform_destroy(instance) or {})
        return Response({"success": True, "message": self.deleted_message, "data": payload}, status=status.HTTP_200_OK)
