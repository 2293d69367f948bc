"""The admin's import screens: django-import-export's preview and confirmation, bounded and signed.

- The upload is read within the import bounds (``core.tables``): a file beyond
  them is refused before any row is processed, so no request does unbounded work.
- The preview shows the counts (new, update, skipped, errors), the first
  ``PREVIEW_ROWS`` rows and the errors a page at a time, never every row.
- The format (CSV or XLSX) follows the file's name; headers may be the
  columns' names or their aliases, English or Chinese (as for ``manage.py
  import_customers``); line numbers are the file's (the header is line 1).
- A preview with rejected rows offers to import the valid rows only, and a
  download of the rejected ones with their reasons (a CSV kept like an upload:
  signed, the user's own, gone after ``IMPORT_UPLOAD_MAX_AGE_HOURS``).
- ``?template=1`` downloads a CSV whose first row names the columns offered to
  the user, in their language. Columns only managers set (``created_at``,
  ``created_by``, ``owner``) are not offered to reps, and ignored, with a
  warning, when a rep's file has them; nor is ``id`` offered to them, though a
  rep's file may use it to update records of their own book.
- The file waiting for confirmation is kept under a name the server chose
  (``core.uploads``); the page carries a signed reference to it, bound to the
  user and to this import. A reference that is missing, altered, expired or
  someone else's is an error message on the import page, never a path read.
"""

import csv
import hashlib
import io

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.utils.html import format_html
from django.utils.translation import get_language, ngettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST
from import_export.forms import ConfirmImportForm

from core import changesets
from core.admin.changesets import note_recorded
from core.admin.formats import decode_text
from core.cells import csv_cell
from core.resources import file_line
from core.tables import check_size, csv_rows, xlsx_rows
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
        if "rejected" in request.GET:
            return self._rejected_download(request)
        if "template" in request.GET:
            return self._template_download(request)
        # The empty form, with the columns this user is offered.
        return self._render(request, self.create_import_form(request))

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
        skip_invalid = request.POST.get("skip_invalid") == "1"
        skipped = 0
        try:
            try:
                dataset = self._dataset(upload.data, upload.file_format)
            except Exception:
                # Read once already for the preview: only a change of code or settings gets here.
                messages.error(request, _("The uploaded file can no longer be read. Upload it again."))
                return HttpResponseRedirect(self._import_url())
            if skip_invalid:
                # The rows the preview rejected are found again (the same check) and left out.
                checked = self._resource(request, index).import_data(
                    dataset,
                    dry_run=True,
                    raise_errors=False,
                    user=request.user,
                    **self.get_import_data_kwargs(request=request),
                )
                lines = {line for line, _found in self._problems(checked, dataset)}
                skipped = len(lines)
                dataset = self._dataset(upload.data, upload.file_format)
                all_lines = [file_line(number, dataset.file_lines) for number in range(1, len(dataset) + 1)]
                kept = [(line, row) for line, row in zip(all_lines, dataset, strict=True) if line not in lines]
                del dataset[:]
                for _line, row in kept:
                    dataset.append(row)
                dataset.file_lines = [line for line, _row in kept]
            file_name = form.cleaned_data["original_file_name"]
            # One changeset, undoable from the changeset admin; none if the import wrote nothing.
            with changesets.recording(
                "import",
                user=request.user,
                label=file_name,
                source={"file": file_name, "sha256": hashlib.sha256(upload.data).hexdigest()},
            ) as changeset:
                result = self._resource(request, index).import_data(
                    dataset,
                    dry_run=False,
                    file_name=file_name,
                    user=request.user,
                    retain_instance_in_row_result=True,
                    **self.get_import_data_kwargs(request=request),
                )
        finally:
            upload.discard()
        note_recorded(request, changeset)
        if not (result.has_errors() or result.has_validation_errors()):
            if skip_invalid and skipped:
                rejected = request.POST.get("rejected", "")
                link = f"{self._import_url()}?rejected={rejected}&resource={index}" if rejected else ""
                text = ngettext(
                    "%(count)s rejected row was not imported.",
                    "%(count)s rejected rows were not imported.",
                    skipped,
                ) % {"count": skipped}
                if link:
                    messages.warning(
                        request,
                        format_html('{} <a href="{}">{}</a>', text, link, _("Download them with their reasons (CSV).")),
                    )
                else:
                    messages.warning(request, text)
            return self.process_result(result, request)
        messages.error(
            request, _("Nothing was imported: some rows are no longer valid. Correct them and import the file again.")
        )
        form = self.get_import_form_class(request)(self.get_import_formats(), self.get_import_resource_classes(request))
        return self._render(request, form, **self._result_context(result, page=1, dataset=dataset))

    def _preview_upload(self, request):
        request.POST = self._format_by_name(request)
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
        self._last_resource = self._resource(request, index)
        result = self._last_resource.import_data(
            dataset,
            dry_run=True,
            raise_errors=False,
            file_name=file_name,
            user=request.user,
            **self.get_import_data_kwargs(request=request),
        )
        context = self._result_context(result, page, dataset)
        context.update(upload=reference, upload_name=file_name, resource_index=index)
        ignored = self._last_resource.ignored_columns
        if ignored:
            messages.warning(
                request,
                _("These columns are set by managers only and were ignored: %(columns)s.")
                % {"columns": ", ".join(ignored)},
            )
        if "error_page" in context and result.valid_rows() and not result.has_errors():
            # Some rows are valid: they may be imported alone; the rejected ones are kept for download.
            context["rejected"] = store_upload(
                user=request.user,
                data=self._rejected_csv(result, dataset),
                file_format="csv",
                purpose=self._rejected_purpose(index),
            )
            context["valid_count"] = len(result.valid_rows())
            context["skip_form"] = ConfirmImportForm(
                initial={
                    "import_file_name": reference,
                    "original_file_name": file_name,
                    "format": str(file_format),
                    "resource": str(index),
                }
            )
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
    def _result_context(result, page, dataset=None):
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
        lines = getattr(dataset, "file_lines", None)
        values = {file_line(row.number, lines): row.values for row in result.invalid_rows}
        problems = [
            (line, found, values.get(line, [])) for line, found in BoundedImportMixin._problems(result, dataset)
        ]
        context["error_page"] = Paginator(problems, ERRORS_PER_PAGE).get_page(page)
        return context

    @staticmethod
    def _problems(result, dataset):
        """``[(line of the file, [messages])]`` of the rows ``result`` rejected, in file order."""
        lines = getattr(dataset, "file_lines", None)
        problems = [
            (file_line(line, lines), [str(error.error) for error in errors]) for line, errors in result.row_errors()
        ]
        for row in result.invalid_rows:
            found = [
                f"{field}: {message}" for field, messages_ in row.field_specific_errors.items() for message in messages_
            ]
            found += [str(message) for message in row.non_field_specific_errors]
            problems.append((file_line(row.number, lines), found))
        problems.sort(key=lambda problem: problem[0])
        return problems

    def _rejected_csv(self, result, dataset):
        """The rejected rows as the file had them, after their line and the reasons, as CSV (UTF-8 with BOM); cells
        neutralised as every export's are (``core.cells``)."""
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow([_("line"), _("reasons"), *(dataset.headers or [])])
        position = {
            file_line(number, getattr(dataset, "file_lines", None)): number - 1 for number in range(1, len(dataset) + 1)
        }
        for line, found in self._problems(result, dataset):
            cells = dataset[position[line]] if line in position else []
            # An export like the others: the file's formulas are neutralised (an XLSX text cell is inert, the same
            # text in a CSV is a formula).
            writer.writerow([line, csv_cell("; ".join(found)), *[csv_cell(cell) for cell in cells]])
        return ("\ufeff" + buffer.getvalue()).encode()

    def _rejected_download(self, request):
        index = self._resource_index(request, request.GET.get("resource"))
        try:
            upload = read_upload(
                user=request.user, reference=request.GET["rejected"], purpose=self._rejected_purpose(index)
            )
        except UploadUnavailable as exc:
            messages.error(request, str(exc))
            return HttpResponseRedirect(self._import_url())
        response = HttpResponse(upload.data, content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{self.model._meta.model_name}-rejected.csv"'
        return response

    def _template_download(self, request):
        """A CSV with only the first row: the columns this user may import, in their language."""
        index = self._resource_index(request, request.GET.get("resource"))
        buffer = io.StringIO()
        csv.writer(buffer).writerow(self._resource(request, index).template_headers(get_language()))
        response = HttpResponse(("\ufeff" + buffer.getvalue()).encode(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{self.model._meta.model_name}-template.csv"'
        return response

    def _format_by_name(self, request):
        """The POST data with the format that the uploaded file's name says (.csv, .xlsx), whatever was chosen."""
        upload = request.FILES.get("import_file")
        if upload is None:
            return request.POST
        suffix = upload.name.rsplit(".", 1)[-1].lower() if "." in upload.name else ""
        for position, file_format in enumerate(self.get_import_formats()):
            if file_format().get_extension() == suffix:
                data = request.POST.copy()
                data["format"] = str(position)
                return data
        return request.POST

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
                        resource(**self.get_import_resource_kwargs(request)).offered_columns(),
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

    def _rejected_purpose(self, index):
        return f"{self.model._meta.label_lower}:{index}:rejected"

    def _dataset(self, data, file_format):
        formats = self.get_import_formats()
        try:
            input_format = formats[int(file_format)]()
        except (TypeError, ValueError, IndexError):
            raise UploadUnavailable(_("Unknown file format.")) from None
        dataset = input_format.create_dataset(data)
        dataset.file_lines = _data_lines(data, input_format.get_extension(), len(dataset))
        return dataset

    def _import_url(self):
        opts = self.model._meta
        return reverse(f"admin:{opts.app_label}_{opts.model_name}_import", current_app=self.admin_site.name)


def _data_lines(data, extension, count):
    """The file lines of the ``count`` data rows of ``data``, read as the import commands read it; None if unsure.

    The readers skip blank lines; the lines are counted as the file has them (header = line 1).
    """
    try:
        if extension == "csv":
            rows = csv_rows(decode_text(data))
        elif extension == "xlsx":
            rows = xlsx_rows(data)
        else:
            return None
    except Exception:
        return None
    lines = [line for line, _cells in rows[1:]]
    return lines if len(lines) == count else None
