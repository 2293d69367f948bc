"""Tags in the admin: the Tag admin (managers write), and what a tagged model's admin takes from ``TaggedAdminMixin``.

The mixin gives a changelist the tags as chips, a tag filter, and the bulk actions
"Add a tag…" and "Remove a tag…" (an intermediate page choosing the tag); the change
form edits the tags with an autocomplete. Every change goes through the record's save
(``core/tags.py``): each record changed has its history entry and event.
"""

from threading import local

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.http import Http404
from django.template.response import TemplateResponse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from core import tags
from core.admin.base import CRMModelForm
from core.admin.history import HistoryAdmin
from core.admin.lookups import comparable
from core.admin.previews import changes_data
from core.admin.roles import ReadByAllWrittenByManagers
from core.admin.widgets import CheckedAutocompleteSelectMultiple
from core.models import Tag

# The chips' colours of the page being drawn (read once per changelist request).
_page = local()

_CHIP_STYLE = (
    "display:inline-block;padding:0 6px;margin:1px 2px;border-radius:8px;font-size:11px;"
    "border:1px solid {border};background:{background};color:{colour}"
)


def chips(names, colours):
    """The tag names as small coloured chips (a tag without a colour is grey)."""
    if not names:
        return "—"
    rows = []
    for name in names:
        colour = colours.get(name.casefold()) or ""
        style = _CHIP_STYLE.format(
            border=colour or "#bbb", background=(colour + "22") if colour else "#f4f4f4", colour="#333"
        )
        rows.append((style, name))
    return format_html_join("", '<span class="tag-chip" style="{}">{}</span>', rows)


class TagChoiceField(forms.ModelMultipleChoiceField):
    """Tags picked from the existing ones (autocomplete); cleans to the list of names the record stores."""

    def _check_values(self, value):
        # Django's lookup of the ids fails with a server error on one the database cannot compare (SQLite:
        # beyond 64 bits); such an id names no tag.
        for pk in value:
            if not comparable(Tag._meta.pk, pk):
                raise ValidationError(
                    self.error_messages["invalid_pk_value"], code="invalid_pk_value", params={"pk": pk}
                )
        return super()._check_values(value)

    def clean(self, value):
        chosen = super().clean(value)
        # Read again, held for linking until the page's save (one transaction, ``tags.current_tags``):
        # a rename committed since the page was read gives its new name (not the old one written back),
        # one under way waits for the save. A tag deleted since is no longer a choice, as a moment later.
        now = tags.current_tags([tag.pk for tag in chosen])
        gone = [tag for tag in chosen if tag.pk not in now]
        if gone:
            raise ValidationError(
                self.error_messages["invalid_choice"], code="invalid_choice", params={"value": str(gone[0].pk)}
            )
        names = sorted((tag.name for tag in now.values()), key=str.casefold)
        if len(names) > tags.MAX_PER_RECORD:
            raise ValidationError(_("At most %(limit)d tags per record.") % {"limit": tags.MAX_PER_RECORD})
        return names


class TaggedFormMixin:
    """A model form whose ``tags`` (the record's names) start as the chosen tags of the autocomplete."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        names = self.initial.get("tags")
        if "tags" in self.fields and isinstance(names, list | tuple):
            keys = [str(name).casefold() for name in names]
            self.initial["tags"] = list(Tag.objects.filter(key__in=keys).values_list("pk", flat=True))


class TagActionForm(forms.Form):
    tag = forms.ModelChoiceField(label=_("Tag"), queryset=Tag.objects.order_by("key"))


class TagFilter(admin.SimpleListFilter):
    title = _("tag")
    parameter_name = "tag"

    def lookups(self, request, model_admin):
        return [(tag.key, tag.name) for tag in Tag.objects.order_by("key")]

    def queryset(self, request, queryset):
        value = self.value()
        if not value:
            return queryset
        try:
            name = tags.clean_name(value)
        except tags.TagNameError:
            return queryset.none()
        return tags.with_all(queryset, [name])


class TaggedAdminMixin:
    """For the admin of a ``TaggedModel``: chips, filter, tag editing, and the add/remove actions.

    The admin lists ``"tag_chips"`` in ``list_display`` and ``"tags"`` in its form fields.
    """

    tag_actions_template = "admin/core/tag_action.html"

    def get_list_filter(self, request):
        return [*super().get_list_filter(request), TagFilter]

    def get_actions(self, request):
        actions = super().get_actions(request)
        if self.has_change_permission(request):
            for name in ("add_tag", "remove_tag"):
                function = getattr(type(self), name)
                actions[name] = (function, name, function.short_description)
        return actions

    def get_form(self, request, obj=None, change=False, **kwargs):
        base = kwargs.pop("form", None) or self.form
        kwargs["form"] = type(f"Tagged{base.__name__}", (TaggedFormMixin, base), {})
        return super().get_form(request, obj, change=change, **kwargs)

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if db_field.name == "tags":
            return TagChoiceField(
                queryset=Tag.objects.all(),
                required=False,
                label=_("Tags"),
                widget=CheckedAutocompleteSelectMultiple(self.model._meta.get_field("tag_set"), self.admin_site),
                help_text=_("Managers add new tags on the Tags page; the API creates them as records are tagged."),
            )
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    def changelist_view(self, request, extra_context=None):
        # The colours of the chips, read once per page.
        # The page is rendered later in this same thread; the next changelist request replaces them.
        _page.colours = dict(Tag.objects.exclude(colour="").values_list("key", "colour"))
        return super().changelist_view(request, extra_context)

    @admin.display(description=_("tags"))
    def tag_chips(self, obj):
        return chips(obj.tags, getattr(_page, "colours", None) or {})

    @changes_data
    @admin.action(description=_("Add a tag…"))
    def add_tag(self, request, queryset):
        return self._tag_action(request, queryset, "add_tag", tags.add_tag)

    @changes_data
    @admin.action(description=_("Remove a tag…"))
    def remove_tag(self, request, queryset):
        return self._tag_action(request, queryset, "remove_tag", tags.remove_tag)

    def _tag_action(self, request, queryset, name, change):
        if not self.has_change_permission(request):
            raise PermissionDenied
        form = TagActionForm(request.POST if "confirm" in request.POST else None)
        if form.is_valid():
            tag = form.cleaned_data["tag"]
            try:
                with transaction.atomic():
                    count = change(list(queryset), tag)
            except tags.TagNameError as exc:
                self.message_user(request, str(exc), messages.ERROR)
                return None
            message = ngettext(
                "%(count)d record changed (tag “%(tag)s”).", "%(count)d records changed (tag “%(tag)s”).", count
            ) % {"count": count, "tag": tag.name}
            self.message_user(request, message, messages.SUCCESS)
            return None
        return TemplateResponse(
            request,
            self.tag_actions_template,
            {
                **self.admin_site.each_context(request),
                "title": _("Add a tag") if name == "add_tag" else _("Remove a tag"),
                "opts": self.opts,
                "form": form,
                "records": list(queryset[:200]),
                "record_count": queryset.count(),
                "selected": list(queryset.values_list("pk", flat=True)),
                "action": name,
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
                "media": self.media + form.media,
            },
        )


class TagAdminForm(CRMModelForm):
    # Set on the form of a page answered again after its save lost the name to other writers twice
    # (``TagAdmin.changeform_view``): the name is refused whatever the check finds now.
    name_lost = False

    class Meta:
        model = Tag
        fields = ["name", "colour"]

    def clean_name(self):
        try:
            name = tags.clean_name(self.cleaned_data.get("name") or "")
        except tags.TagNameError as exc:
            raise ValidationError(str(exc)) from None
        clash = Tag.objects.filter(key=name.casefold())
        if self.instance.pk is not None:
            clash = clash.exclude(pk=self.instance.pk)
        if self.name_lost or clash.exists():
            raise ValidationError(_("A tag with this name already exists."))
        return name

    def clean(self):
        # Held until the save (the admin's page is one transaction): a rename or recolour of a tag deleted
        # meanwhile is refused here, not failed in the save or written back as a new tag without its records.
        if self.instance.pk is not None and tags.locked_tag(self.instance) is None:
            raise ValidationError(_("This tag was deleted meanwhile."))
        return super().clean()


class _LostToAnotherWriter(Exception):
    """A tag's save refused for what another writer committed after the form's checks (its name taken)."""


class TagAdmin(ReadByAllWrittenByManagers, HistoryAdmin):
    """Tags: every role sees them (and picks them in forms); managers create, rename, recolour and delete."""

    form = TagAdminForm
    list_display = ["name", "colour_chip", "created_at"]
    search_fields = ["name", "key"]
    ordering = ["key"]
    readonly_fields = ["created_by", "created_at", "updated_at"]

    @admin.display(description=_("colour"))
    def colour_chip(self, obj):
        if not obj.colour:
            return "—"
        return format_html(
            '<span style="{}">{}</span>',
            _CHIP_STYLE.format(border=obj.colour, background=obj.colour + "22", colour="#333"),
            obj.colour,
        )

    def history_view(self, request, object_id, extra_context=None):
        # django-simple-history looks the id up as given: one that is no number is an unknown id, not a 500
        # (here and on a version's page).
        if not str(object_id).isdecimal():
            raise Http404
        return super().history_view(request, object_id, extra_context)

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        # django-simple-history lets anyone who may view a record post a revert: a revert is a change.
        if not str(object_id).isdecimal():
            raise Http404
        if request.method == "POST" and not self.has_change_permission(request):
            raise PermissionDenied
        return super().history_form_view(request, object_id, version_id, extra_context)

    def revert_disabled(self, request, obj=None):
        return super().revert_disabled(request, obj) or not self.has_change_permission(request, obj)

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        for _attempt in range(2):
            try:
                return super().changeform_view(request, object_id, form_url, extra_context)
            except _LostToAnotherWriter:
                # Nothing of the page was saved (its transaction is rolled back). The page is answered again:
                # its form now meets what the other writer committed (the name taken: an error on the name).
                pass
        # Lost again on that retry (the name freed and taken once more meanwhile): the page is answered with
        # the name refused, as for the first loss, and its form is not saved a third time.
        request._tag_name_lost = True
        return super().changeform_view(request, object_id, form_url, extra_context)

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)
        if getattr(request, "_tag_name_lost", False):
            form = type(form.__name__, (form,), {"name_lost": True})
        return form

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        try:
            with transaction.atomic():
                tags.save_tag(obj)
        except (tags.TagNameError, IntegrityError) as exc:
            # The name taken by another writer after the form's check: committed before the save's own
            # check (TagNameError), or under way then and committed while the save waited for it.
            raise _LostToAnotherWriter() from exc

    def get_deleted_objects(self, objs, request):
        # A tag's links to its records go with it, the records stay: the page lists the tags alone, and the
        # records that lose the tag are counted above the list (``delete_view``).
        deleted, model_count, perms_needed, protected = super().get_deleted_objects(objs, request)
        links = {str(tags.link_model(model)._meta.verbose_name_plural) for model in tags.tagged_models().values()}
        deleted = [entry for entry in deleted if not isinstance(entry, list)]
        model_count = {name: count for name, count in model_count.items() if str(name) not in links}
        return deleted, model_count, perms_needed, protected

    def delete_view(self, request, object_id, extra_context=None):
        carried = []
        if str(object_id).isdecimal():
            counted = tags.with_counts(Tag.objects.filter(pk=object_id), request.user).first()
            for key, model in tags.tagged_models().items():
                count = getattr(counted, f"{key}_count", 0) if counted is not None else 0
                if count:
                    name = model._meta.verbose_name if count == 1 else model._meta.verbose_name_plural
                    carried.append(f"{count} {name}")
        return super().delete_view(request, object_id, {**(extra_context or {}), "carried": ", ".join(carried)})

    def delete_model(self, request, obj):
        tags.delete_tag(obj)

    def delete_queryset(self, request, queryset):
        with transaction.atomic():
            for tag in queryset:
                tags.delete_tag(tag)
