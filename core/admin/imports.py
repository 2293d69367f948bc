"""The admin's import screens: django-import-export's preview and confirmation, bounded and signed.

- The upload is read within the import bounds (``core.tables``): a file beyond
  them is refused before any row is processed, so no request does unbounded work.
- The preview shows the counts (new, update, skipped, errors), the first
  ``PREVIEW_ROWS`` rows and the errors a page at a time, never every row.
- The file waiting for confirmation is kept under a name the server chose
  (``core.uploads``); the page carries a signed reference to it, bound to the
  user and to this import. A reference that is missing, altered, expired or
  someone else's is an error message on the import page, never a path read.
"""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST
from import_export.forms import ConfirmImportForm

from core.tables import check_size
from core.uploads import UploadUnavailable, read_upload, store_upload

PREVIEW_ROWS = 100
ERRORS_PER_PAGE = 50


class BoundedImportMixin:
    """Replaces ``ImportMixin.import_action`` and ``process_import``; to be listed before it."""

    import_template_name = "admin/core/import.html"

    def import_action(self, request, **kwargs):
        if not self.has_import_permission(request):
            raise PermissionDenied
        if request.method == "POST":
            return self._preview_upload(request)
        if "upload" in request.GET:
            return self._preview_stored(request)
        return super().import_action(request, **kwargs)

    @method_decorator(require_POST)
    def process_import(self, request, **kwargs):
        if not self.has_import_permission(request):
            raise PermissionDenied
        form = ConfirmImportForm(request.POST)
        try:
            if not form.is_valid():
                raise UploadUnavailable(
                    _("This import cannot be confirmed: it names no upload. Upload the file again.")
                )
            index = self._resource_index(request, form.cleaned_data.get("resource"))
            upload = read_upload(
                user=request.user,
                reference=form.cleaned_data["import_file_name"],
                purpose=self._upload_purpose(index),
                claim=True,
            )
        except UploadUnavailable as exc:
            messages.error(request, str(exc))
            return HttpResponseRedirect(self._import_url())
        try:
            try:
                dataset = self._dataset(upload.data, upload.file_format)
            except Exception:
                # Read once already for the preview: only a change of code or settings gets here.
                messages.error(request, _("The uploaded file can no longer be read. Upload it again."))
                return HttpResponseRedirect(self._import_url())
            result = self._resource(request, index).import_data(
                dataset,
                dry_run=False,
                file_name=form.cleaned_data["original_file_name"],
                user=request.user,
                retain_instance_in_row_result=True,
                **self.get_import_data_kwargs(request=request),
            )
        finally:
            upload.discard()
        if not (result.has_errors() or result.has_validation_errors()):
            return self.process_result(result, request)
        messages.error(
            request, _("Nothing was imported: some rows are no longer valid. Correct them and import the file again.")
        )
        form = self.get_import_form_class(request)(self.get_import_formats(), self.get_import_resource_classes(request))
        return self._render(request, form, **self._result_context(result, page=1))

    def _preview_upload(self, request):
        form = self.create_import_form(request)
        if not form.is_valid():
            return self._render(request, form)
        import_file = form.cleaned_data["import_file"]
        file_format = form.cleaned_data["format"]
        try:
            check_size(import_file.size)
            data = import_file.read()
            dataset = self._dataset(data, file_format)
        except Exception as exc:
            self.add_data_read_fail_error_to_form(form, exc)
            return self._render(request, form)
        if not dataset:
            form.add_error(
                "import_file",
                _("No valid data to import. Ensure your file has the correct headers or data for import."),
            )
            return self._render(request, form)
        index = self._resource_index(request, form.cleaned_data.get("resource"))
        reference = store_upload(
            user=request.user, data=data, file_format=file_format, purpose=self._upload_purpose(index)
        )
        return self._preview(request, form, dataset, index, file_format, reference, import_file.name, page=1)

    def _preview_stored(self, request):
        """A page of the errors of a preview: the stored upload is read and checked again."""
        form = self.create_import_form(request)
        index = self._resource_index(request, request.GET.get("resource"))
        try:
            upload = read_upload(
                user=request.user, reference=request.GET["upload"], purpose=self._upload_purpose(index)
            )
            dataset = self._dataset(upload.data, upload.file_format)
        except UploadUnavailable as exc:
            messages.error(request, str(exc))
            return HttpResponseRedirect(self._import_url())
        except Exception:
            messages.error(request, _("The uploaded file can no longer be read. Upload it again."))
            return HttpResponseRedirect(self._import_url())
        name = request.GET.get("name", "")
        page = request.GET.get("page")
        return self._preview(request, form, dataset, index, upload.file_format, request.GET["upload"], name, page=page)

    def _preview(self, request, form, dataset, index, file_format, reference, file_name, page):
        result = self._resource(request, index).import_data(
            dataset,
            dry_run=True,
            raise_errors=False,
            file_name=file_name,
            user=request.user,
            **self.get_import_data_kwargs(request=request),
        )
        context = self._result_context(result, page)
        context.update(upload=reference, upload_name=file_name, resource_index=index)
        if "error_page" not in context:
            context["confirm_form"] = ConfirmImportForm(
                initial={
                    "import_file_name": reference,
                    "original_file_name": file_name,
                    "format": str(file_format),
                    "resource": str(index),
                }
            )
        return self._render(request, form, **context)

    @staticmethod
    def _result_context(result, page):
        """The counts of ``result``, and its first rows or a page of its errors."""
        totals = result.totals
        context = {
            "result": result,
            "totals": {
                "new": totals["new"],
                "update": totals["update"],
                "skip": totals["skip"],
                "error": totals["error"] + totals["invalid"],
            },
        }
        if not (result.has_errors() or result.has_validation_errors()):
            valid = result.valid_rows()
            context["preview_rows"] = valid[:PREVIEW_ROWS]
            context["preview_more"] = max(len(valid) - PREVIEW_ROWS, 0)
            return context
        problems = [(line, [str(error.error) for error in errors], []) for line, errors in result.row_errors()]
        for row in result.invalid_rows:
            found = [
                f"{field}: {message}" for field, messages_ in row.field_specific_errors.items() for message in messages_
            ]
            found += [str(message) for message in row.non_field_specific_errors]
            problems.append((row.number, found, row.values))
        problems.sort(key=lambda problem: problem[0])
        context["error_page"] = Paginator(problems, ERRORS_PER_PAGE).get_page(page)
        return context

    def _render(self, request, form, **context):
        request.current_app = self.admin_site.name
        resources = self.get_import_resource_classes(request)
        return TemplateResponse(
            request,
            [self.import_template_name],
            {
                **self.admin_site.each_context(request),
                **self.get_import_context_data(),
                "title": _("Import"),
                "form": form,
                "opts": self.model._meta,
                "media": self.media + form.media,
                "fields_list": [
                    (
                        resource.get_display_name(),
                        [
                            field.column_name
                            for field in resource(**self.get_import_resource_kwargs(request)).get_user_visible_fields()
                        ],
                    )
                    for resource in resources
                ],
                "import_error_display": self.import_error_display,
                "preview_limit": PREVIEW_ROWS,
                **context,
            },
        )

    def _resource_index(self, request, value):
        count = len(self.get_import_resource_classes(request))
        try:
            index = int(value or 0)
        except (TypeError, ValueError):
            index = 0
        return index if 0 <= index < count else 0

    def _resource(self, request, index):
        resource_class = self.get_import_resource_classes(request)[index]
        return resource_class(**self.get_import_resource_kwargs(request))

    def _upload_purpose(self, index):
        return f"{self.model._meta.label_lower}:{index}"

    def _dataset(self, data, file_format):
        formats = self.get_import_formats()
        try:
            input_format = formats[int(file_format)]()
        except (TypeError, ValueError, IndexError):
            raise UploadUnavailable(_("Unknown file format.")) from None
        return input_format.create_dataset(data)

    def _import_url(self):
        opts = self.model._meta
        return reverse(f"admin:{opts.app_label}_{opts.model_name}_import", current_app=self.admin_site.name)
