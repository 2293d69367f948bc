"""Behaviour shared by every resource viewset."""

from django.db import IntegrityError, transaction
from rest_framework import exceptions, status, viewsets
from rest_framework.response import Response

from .conditional import ConditionalRequestMixin
from .idempotency import IdempotencyMixin


class CRMModelViewSet(IdempotencyMixin, ConditionalRequestMixin, viewsets.ModelViewSet):
    """A model viewset with the CRM's conventions.

    - ``PUT`` is a partial update, as in the original API (clients send only
      the fields that changed); ``PATCH`` too.
    - ``DELETE`` answers 200 with a message instead of an empty 204.
    - Writes run in a transaction; a unique constraint that loses a race with a
      concurrent writer becomes a 400 on the field named in ``unique_constraint_fields``.
    - POSTs honour ``Idempotency-Key`` (see ``idempotency.py``); detail responses
      carry an ETag, and PUT/PATCH/DELETE honour ``If-Match`` (see ``conditional.py``).
    """

    # Ids are integers: anything else is not a route, so it gets the JSON 404.
    lookup_value_regex = r"[0-9]+"
    # Database constraint name -> (field, message) for IntegrityErrors.
    unique_constraint_fields = {}
    deleted_message = "Deleted."

    def update(self, request, *args, **kwargs):
        kwargs["partial"] = True
        return super().update(request, *args, **kwargs)

    def perform_create(self, serializer):
        self._save(serializer)

    def perform_update(self, serializer):
        self._save(serializer)

    def _save(self, serializer):
        try:
            with transaction.atomic():
                serializer.save()
        except IntegrityError as exc:
            text = str(exc)
            for constraint, (field, message) in self.unique_constraint_fields.items():
                if constraint in text:
                    raise exceptions.ValidationError({field: [message]}) from exc
            raise exceptions.ValidationError("The change conflicts with existing data.") from exc

    def destroy(self, request, *args, **kwargs):
        with transaction.atomic():
            # Read inside the transaction: an If-Match check and the delete see the same row.
            instance = self.get_object()
            payload = {"id": instance.pk}
            payload.update(self.perform_destroy(instance) or {})
        return Response({"success": True, "message": self.deleted_message, "data": payload}, status=status.HTTP_200_OK)
