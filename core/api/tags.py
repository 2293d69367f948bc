"""Tags in the API: the ``tags`` field of tagged records, the ``?tag=``/``?tag_any=`` filters and ``/api/tags``.

The rules (names, limits, counts) live in ``core/tags.py``; this module only speaks HTTP.
"""

from django import forms
from django.db.models import Q
from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema_field
from rest_framework import exceptions, serializers

from core import tags
from core.api.permissions import HasRole, IsManager
from core.api.serializers import StrictJSONTypesMixin
from core.api.viewsets import CRMModelViewSet
from core.models import Tag

_NAME_LIST_SCHEMA = {"type": "array", "items": {"type": "string", "minLength": 1, "maxLength": tags.NAME_MAX_LENGTH}}


@extend_schema_field({**_NAME_LIST_SCHEMA, "maxItems": tags.MAX_PER_RECORD})
class TagsField(serializers.Field):
    """A record's tags as a list of names; writing creates the unknown ones (``core.tags.resolve``)."""

    # Imports give a cell "a, b" (core/resources.py).
    takes_tag_names = True

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault(
            "help_text",
            f"Tag names (at most {tags.MAX_PER_RECORD}, each up to {tags.NAME_MAX_LENGTH} characters, no commas); "
            "the same ignoring case. Writing the list replaces the record's tags, creating unknown tags.",
        )
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        try:
            names = tags.clean_names(data)
        except tags.TagNameError as exc:
            raise serializers.ValidationError(str(exc), code="invalid") from None
        return sorted(names, key=str.casefold)

    def to_representation(self, value):
        return list(value or [])


# -- filters ---------------------------------------------------------------------


class TagNamesField(forms.Field):
    """Tag names from a query string: repeated (``?tag=a&tag=b``) and/or comma-separated (``?tag=a,b``)."""

    widget = forms.MultipleHiddenInput

    def to_python(self, value):
        if not value:
            return []
        names = []
        for part in value:
            for piece in str(part).split(","):
                if piece.strip():
                    try:
                        names.append(tags.clean_name(piece))
                    except tags.TagNameError as exc:
                        raise forms.ValidationError(str(exc), code="invalid") from None
        if len(names) > tags.MAX_PER_FILTER:
            raise forms.ValidationError(f"At most {tags.MAX_PER_FILTER} tags per filter.", code="invalid")
        return names


# One query parameter, repeated or comma-separated: described as text (an array schema would have
# clients and fuzzers send JSON-ish values such as "null", which are valid tag names here).
@extend_schema_field({"type": "string"})
class TagFilter(filters.Filter):
    """``?tag=a&tag=b``: records carrying every tag named (``match="all"``) or at least one (``match="any"``)."""

    field_class = TagNamesField

    def __init__(self, *, match, **kwargs):
        self.match = match
        super().__init__(**kwargs)

    def filter(self, qs, value):
        if not value:
            return qs
        return tags.with_all(qs, value) if self.match == "all" else tags.with_any(qs, value)


@extend_schema_field(
    {"type": "string", "description": "Tag names, comma-separated or repeated: records with all of them."}
)
class AllTagsFilter(TagFilter):
    def __init__(self, **kwargs):
        super().__init__(match="all", **kwargs)


@extend_schema_field(
    {"type": "string", "description": "Tag names, comma-separated or repeated: records with any of them."}
)
class AnyTagsFilter(TagFilter):
    def __init__(self, **kwargs):
        super().__init__(match="any", **kwargs)


def tag_filters():
    """The two tag filters a tagged model's FilterSet declares: ``tag`` (all of) and ``tag_any`` (any of)."""
    return AllTagsFilter(), AnyTagsFilter()


# -- /api/tags --------------------------------------------------------------------


class TagCountsSerializer(serializers.Serializer):
    customers = serializers.IntegerField()
    companies = serializers.IntegerField()
    opportunities = serializers.IntegerField()


class TagSerializer(StrictJSONTypesMixin, serializers.ModelSerializer):
    colour = serializers.RegexField(
        r"^#[0-9a-fA-F]{6}$",
        required=False,
        allow_blank=True,
        max_length=7,
        error_messages={"invalid": "Enter a colour as #rrggbb."},
        help_text="Optional, as #rrggbb.",
    )
    counts = serializers.SerializerMethodField(
        help_text="How many records of each kind that you see carry the tag (lists and detail reads)."
    )
    created_by_id = serializers.IntegerField(read_only=True, allow_null=True)

    class Meta:
        model = Tag
        fields = ["id", "name", "colour", "counts", "created_at", "updated_at", "created_by_id"]
        read_only_fields = ["id", "created_at", "updated_at", "created_by_id"]
        extra_kwargs = {"name": {"max_length": None}}

    @extend_schema_field(TagCountsSerializer)
    def get_counts(self, tag):
        keys = list(tags.tagged_models())
        if keys and not hasattr(tag, f"{keys[0]}_count"):
            # A tag just written: its figures, read once.
            request = self.context.get("request")
            if tag.pk is None or request is None:
                return dict.fromkeys(keys, 0)
            tag = tags.with_counts(Tag.objects.filter(pk=tag.pk), request.user).first() or tag
        return {key: getattr(tag, f"{key}_count", 0) for key in keys}

    def validate_name(self, value):
        try:
            name = tags.clean_name(value)
        except tags.TagNameError as exc:
            raise serializers.ValidationError(str(exc), code="invalid") from None
        clash = Tag.objects.filter(key=name.casefold())
        if self.instance is not None:
            clash = clash.exclude(pk=self.instance.pk)
        if clash.exists():
            raise serializers.ValidationError("A tag with this name already exists.", code="unique")
        return name

    def validate_colour(self, value):
        return value.lower()

    def create(self, validated_data):
        tag = Tag(created_by=validated_data.get("created_by"))
        return self._save(tag, validated_data)

    def update(self, instance, validated_data):
        return self._save(instance, validated_data)

    def _save(self, tag, validated_data):
        try:
            return tags.save_tag(tag, name=validated_data.get("name"), colour=validated_data.get("colour"))
        except tags.TagNameError as exc:
            raise exceptions.ValidationError({"name": [str(exc)]}) from None


class TagListFilter(filters.FilterSet):
    search = filters.CharFilter(method="filter_search", max_length=200, label="Tag names containing this text")
    ordering = filters.OrderingFilter(fields=("id", "name", "created_at", "updated_at"))

    class Meta:
        model = Tag
        fields = ["search"]

    def filter_search(self, queryset, name, value):
        try:
            value = " ".join(value.split())
            key = tags.name_key(value) if value else ""
        except tags.TagNameError as exc:
            raise exceptions.ValidationError({"search": [str(exc)]}) from None
        return queryset.filter(Q(key__contains=key)) if key else queryset


class TagViewSet(CRMModelViewSet):
    """Tags: every role reads them, with how many of its records carry each; managers write them."""

    queryset = Tag.objects.all()
    serializer_class = TagSerializer
    filterset_class = TagListFilter
    # A name taken by a concurrent writer (PostgreSQL names the constraint, SQLite the column).
    unique_constraint_fields = {
        "core_tag_key": ("name", "A tag with this name already exists."),
        "core_tag.key": ("name", "A tag with this name already exists."),
    }
    deleted_message = "Tag deleted, and taken off its records."
    # Tags are configuration, written one at a time: no batch route.
    batch = None
    # Counts move as records are tagged: they make no ETag stale; the detail is read with them.
    etag_ignored_fields = frozenset({"counts"})
    detail_reader = None

    def get_permissions(self):
        if self.request.method in ("GET", "HEAD", "OPTIONS"):
            return [HasRole()]
        return [IsManager()]

    def get_queryset(self):
        # Tags are the team's shared vocabulary: every role sees them all; the counts are the user's own.
        queryset = Tag.objects.all()
        if self.action in ("list", "retrieve"):
            queryset = tags.with_counts(queryset, self.request.user)
        return queryset

    def perform_destroy(self, instance):
        # Its records keep going, without it: the answer says how many of each lost it.
        return {"unlinked": tags.delete_tag(instance)}
