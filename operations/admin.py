"""The admin's "Import from HubSpot / Pipedrive / other file" screen, and each user's saved column mappings.

The screen is a view of the column mappings' admin (``switch``): upload the exports
(each read within the import bounds and kept, signed, by ``core.uploads``), map
the columns of another file (a field per column, guessed from the headers or taken
from the user's mapping of a file with the same headers, and saved for next time),
see the preview (the same import, rolled back: counts and a row-by-row diff), then
confirm. Writers only (a rep imports into their own book); read-only users and
users without a role get a 403.
"""

from pathlib import Path

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from companies.imports import COLUMNS as COMPANY_COLUMNS
from core import access
from core.admin.changesets import note_recorded
from core.sheets import ImportFileError
from core.tables import FileRefused, check_size
from core.uploads import UploadUnavailable, read_upload, store_upload
from customers.imports import COLUMNS as CUSTOMER_COLUMNS

from .models import ColumnMapping
from .switching import ACTIONS, SourceFile, header_key, header_signature, import_files, read_headers
from .vendors import FIELD_LABELS, FIELDS, REQUIRED, VENDORS, custom_preset, guess_mapping

PURPOSE = "operations.switch"
OTHER = "other"
PREVIEW_ROWS = 200
MAX_FILES = 3


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput())
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        single = super().clean
        if isinstance(data, (list, tuple)) and data:
            return [single(item, initial) for item in data]
        return [single(data, initial)]


class UploadForm(forms.Form):
    source = forms.ChoiceField(
        label=_("Exported from"),
        choices=[("hubspot", "HubSpot"), ("pipedrive", "Pipedrive"), (OTHER, _("Another file (map its columns)"))],
    )
    kind = forms.ChoiceField(
        label=_("Records (for another file)"),
        choices=ColumnMapping.Kind.choices,
        initial=ColumnMapping.Kind.CUSTOMERS,
        required=False,
    )
    files = MultipleFileField(label=_("Files"))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Interpolated here, in the reader's language: at import time it would be in the default one.
        self.fields["files"].help_text = _(
            "CSV or XLSX: companies, people and deals, in one go (up to %(count)s files)."
        ) % {"count": MAX_FILES}

    def clean_files(self):
        files = self.cleaned_data["files"]
        if len(files) > MAX_FILES:
            raise forms.ValidationError(_("Upload at most %(count)s files at once.") % {"count": MAX_FILES})
        for upload in files:
            if Path(upload.name).suffix.lower() not in (".csv", ".xlsx"):
                raise forms.ValidationError(_("%(name)s must be a .csv or .xlsx file.") % {"name": upload.name})
            try:
                # Refused before reading it: the upload's size is known.
                check_size(upload.size)
            except FileRefused as exc:
                raise forms.ValidationError(f"{upload.name}: {exc}") from None
        return files

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("source") == OTHER:
            if len(cleaned.get("files") or []) > 1:
                self.add_error("files", _("Another file is mapped one at a time: upload one file."))
            if not cleaned.get("kind"):
                self.add_error("kind", _("Choose the records that the file holds."))
        return cleaned


@admin.register(ColumnMapping)
class ColumnMappingAdmin(admin.ModelAdmin):
    list_display = ["__str__", "kind", "updated_at"]
    list_filter = ["kind"]
    change_list_template = "admin/operations/columnmapping/change_list.html"

    def get_queryset(self, request):
        # A user's own mappings, whatever their role.
        return super().get_queryset(request).filter(user=request.user)

    def has_module_permission(self, request):
        return access.can_write(request.user)

    def has_view_permission(self, request, obj=None):
        return access.can_write(request.user)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return access.can_write(request.user) and (obj is None or obj.user_id == request.user.pk)

    def get_urls(self):
        return [
            path("switch/", self.admin_site.admin_view(self.switch_view), name="operations_columnmapping_switch"),
            *super().get_urls(),
        ]

    # The screen.

    def switch_view(self, request):
        if not access.can_write(request.user):
            raise PermissionDenied
        if request.method != "POST":
            return self._render(request, "upload", form=UploadForm())
        step = request.POST.get("step", "upload")
        try:
            if step == "map":
                return self._mapped(request)
            if step == "confirm":
                return self._confirm(request)
        except UploadUnavailable as exc:
            messages.error(request, str(exc))
            return HttpResponseRedirect(self._url())
        except ImportFileError as exc:
            messages.error(request, str(exc))
            return HttpResponseRedirect(self._url())
        return self._uploaded(request)

    def _uploaded(self, request):
        form = UploadForm(request.POST, request.FILES)
        if not form.is_valid():
            return self._render(request, "upload", form=form)
        references = []
        for upload in form.cleaned_data["files"]:
            data = upload.read(settings.IMPORT_MAX_BYTES + 1)
            suffix = Path(upload.name).suffix.lower().lstrip(".")
            references.append(
                (store_upload(user=request.user, data=data, file_format=suffix, purpose=PURPOSE), _name(upload.name))
            )
        source = form.cleaned_data["source"]
        try:
            if source == OTHER:
                return self._mapping_page(request, references[0], form.cleaned_data["kind"])
            return self._preview(request, references, vendor=source)
        except ImportFileError as exc:
            form.add_error("files", str(exc))
            return self._render(request, "upload", form=form)

    def _sources(self, request, references, *, claim=False):
        sources = []
        for reference, name in references:
            upload = read_upload(user=request.user, reference=reference, purpose=PURPOSE, claim=claim)
            sources.append(SourceFile(name=f"{Path(name).stem}.{upload.file_format}", data=upload.data))
            if claim:
                upload.discard()
        return sources

    def _posted_references(self, request):
        return list(zip(request.POST.getlist("reference"), request.POST.getlist("name"), strict=False))[:MAX_FILES]

    def _mapping_page(self, request, reference, kind, *, mapping=None, errors=()):
        (source,) = self._sources(request, [reference])
        headers = read_headers(source.name, source.data)
        keys = [header_key(header) for header in headers]
        if mapping is None:
            saved = ColumnMapping.objects.filter(user=request.user, signature=header_signature(headers)).first()
            if saved is not None and saved.kind == kind:
                mapping = saved.mapping
            else:
                mapping = guess_mapping(kind, keys, (CUSTOMER_COLUMNS, COMPANY_COLUMNS))
        choices = [("", gettext("— ignore —"))] + [(name, FIELD_LABELS[name]) for name in FIELDS[kind]]
        columns = [
            {"position": position, "header": header, "chosen": mapping.get(key, "")}
            for position, (header, key) in enumerate(zip(headers, keys, strict=True))
        ]
        return self._render(
            request,
            "map",
            references=[reference],
            kind=kind,
            kind_label=ColumnMapping.Kind(kind).label,
            columns=columns,
            choices=choices,
            errors=errors,
        )

    def _mapped(self, request):
        references = self._posted_references(request)[:1]
        kind = request.POST.get("kind")
        if kind not in FIELDS or not references:
            raise UploadUnavailable(_no_upload())
        (source,) = self._sources(request, references)
        headers = read_headers(source.name, source.data)
        keys = [header_key(header) for header in headers]
        mapping, errors, taken = {}, [], {}
        for position, key in enumerate(keys):
            name = request.POST.get(f"column_{position}", "")
            if name and name not in FIELDS[kind]:
                name = ""
            if name and name in taken:
                errors.append(
                    gettext("%(field)s is chosen for two columns: %(first)s and %(second)s.")
                    % {"field": FIELD_LABELS[name], "first": headers[taken[name]], "second": headers[position]}
                )
            taken.setdefault(name, position)
            mapping[key] = name
        chosen = set(mapping.values())
        if kind == "customers" and chosen & {"first_name", "last_name"}:
            chosen.add("name")
        for name in REQUIRED[kind]:
            if name not in chosen:
                errors.append(gettext("Choose a column for %(field)s.") % {"field": FIELD_LABELS[name]})
        if errors:
            return self._mapping_page(request, references[0], kind, mapping=mapping, errors=errors)
        ColumnMapping.objects.update_or_create(
            user=request.user, signature=header_signature(headers), defaults={"kind": kind, "mapping": mapping}
        )
        return self._preview(request, references, kind=kind)

    def _preset_for(self, request, sources, kind):
        """The saved mapping of the one other file, as a preset."""
        (source,) = sources
        signature = header_signature(read_headers(source.name, source.data))
        saved = ColumnMapping.objects.filter(user=request.user, signature=signature, kind=kind).first()
        if saved is None:
            raise UploadUnavailable(gettext("This file's columns are not mapped. Upload the file again."))
        source.preset = custom_preset(kind, saved.mapping)

    def _preview(self, request, references, *, vendor="", kind=""):
        sources = self._sources(request, references)
        if kind:
            self._preset_for(request, sources, kind)
        result = import_files(sources, vendor=vendor, user=request.user, dry_run=True)
        return self._render(
            request, "preview", result=result, references=references, vendor=vendor, kind=kind, **_shown(result)
        )

    def _confirm(self, request):
        references = self._posted_references(request)
        vendor, kind = request.POST.get("vendor", ""), request.POST.get("kind", "")
        if not references or (vendor not in VENDORS and kind not in FIELDS):
            raise UploadUnavailable(_no_upload())
        sources = self._sources(request, references, claim=True)
        if kind:
            self._preset_for(request, sources, kind)
        result = import_files(sources, vendor=vendor if not kind else "", user=request.user)
        figures = sum(counts["created"] + counts["updated"] for counts in result.counts().values())
        messages.success(
            request,
            gettext("Imported: %(written)s records created or updated, %(rejected)s rows rejected.")
            % {"written": figures, "rejected": len(result.rejected)},
        )
        note_recorded(request, result.changeset, self.admin_site.name)
        return self._render(request, "done", result=result, **_shown(result))

    def _render(self, request, step, **context):
        request.current_app = self.admin_site.name
        return TemplateResponse(
            request,
            "admin/operations/switch.html",
            {
                **self.admin_site.each_context(request),
                "title": gettext("Import from HubSpot, Pipedrive or another file"),
                "opts": self.model._meta,
                "step": step,
                **context,
            },
        )

    def _url(self):
        return reverse(f"{self.admin_site.name}:operations_columnmapping_switch")


def _no_upload():
    return gettext("This import cannot be confirmed: it names no upload. Upload the file again.")


def _name(name):
    """An uploaded file's name, as shown in messages: its last part, without odd characters."""
    base = Path(str(name)).name
    return "".join(char for char in base if char.isprintable())[:100] or "upload"


def _shown(result):
    """The preview's counts and its first rows (rejected rows first)."""
    rows = sorted(result.rows, key=lambda row: row.action != "rejected")
    return {
        "counts": [(kind, [counts[action] for action in ACTIONS]) for kind, counts in result.counts().items()],
        "actions": ACTIONS,
        "rows": rows[:PREVIEW_ROWS],
        "more": max(len(rows) - PREVIEW_ROWS, 0),
    }
