from rest_framework import serializers

from .models import DuplicateCandidate


class DuplicateCandidateSerializer(serializers.ModelSerializer):
    decided_by_id = serializers.IntegerField(read_only=True, allow_null=True)

    class Meta:
        model = DuplicateCandidate
        fields = ["id", "kind", "a_id", "b_id", "score", "reasons", "status", "decided_by_id", "decided_at", "found_at"]
        read_only_fields = fields
        extra_kwargs = {
            "a_id": {"help_text": "The record with the smaller id (a customer or a company, by kind)."},
            "b_id": {"help_text": "The record with the larger id."},
            "score": {"help_text": "How alike the two records are, 0..1."},
        }
