"""Driving the admin's screens (django-import-export's among them) the way a browser does."""

import csv
import io
import re
from html.parser import HTMLParser

from django.contrib.auth.models import Group
from django.core.files.uploadedfile import SimpleUploadedFile
from django.forms import CheckboxInput, MultiWidget, SelectMultiple
from django.test import Client
from openpyxl import Workbook

from core.admin.base import ShownMultipleHiddenInput
from tests.factories import UserFactory

CSV_FORMAT = "0"
XLSX_FORMAT = "1"


def csv_bytes(rows):
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    return buffer.getvalue().encode()


def xlsx_bytes(rows):
    workbook = Workbook()
    sheet = workbook.active
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def upload(client, model_url, rows, file_format=CSV_FORMAT):
    """POST a file to the import page: the preview (dry run) response."""
    content = xlsx_bytes(rows) if file_format == XLSX_FORMAT else csv_bytes(rows)
    name = "import.xlsx" if file_format == XLSX_FORMAT else "import.csv"
    return client.post(
        f"{model_url}import/",
        {"resource": "0", "format": file_format, "import_file": SimpleUploadedFile(name, content)},
    )


def confirm(client, model_url, preview):
    """Confirm a previewed import, as the "Confirm import" button does."""
    form = preview.context["confirm_form"]
    return client.post(f"{model_url}process_import/", {**form.initial})


def import_rows(client, model_url, rows, file_format=CSV_FORMAT):
    preview = upload(client, model_url, rows, file_format)
    assert preview.context.get("confirm_form") is not None, preview.content.decode()[:2000]
    return confirm(client, model_url, preview)


def export_data(form, file_format=CSV_FORMAT):
    """The export form's POST data with every column selected."""
    data = {"format": file_format, "resource": "0"}
    for name, field in form.fields.items():
        if field.widget.input_type == "checkbox":
            data[name] = "on"
    return data


def read_csv(response):
    text = b"".join(response.streaming_content if response.streaming else [response.content]).decode("utf-8-sig")
    return list(csv.DictReader(io.StringIO(text)))


def form_data(form):
    """What a browser submits for ``form`` as rendered, untouched."""
    data = {}
    for name, field in form.fields.items():
        bound = form[name]
        value = bound.value()
        if isinstance(field.widget, MultiWidget):
            for index, part in enumerate(field.widget.decompress(value)):
                data[f"{bound.html_name}_{index}"] = "" if part is None else str(part)
        elif isinstance(field.widget, CheckboxInput):
            if value:
                data[bound.html_name] = "on"
        elif isinstance(field.widget, SelectMultiple):
            # The options selected (a record's tags); none is no value at all.
            if value:
                data[bound.html_name] = [str(item) for item in value]
        else:
            data[bound.html_name] = "" if value is None else str(value)
        if field.show_hidden_initial and issubclass(field.hidden_widget, ShownMultipleHiddenInput):
            # A multi-select's shown values, after the marker that says it showed them.
            data[form.add_initial_prefix(name)] = ["", *data.get(bound.html_name, [])]
        elif field.show_hidden_initial:
            # Fields with a callable default carry their initial value in hidden inputs.
            hidden = form.add_initial_prefix(name)
            data.update(
                {
                    key.replace(bound.html_name, hidden, 1): item
                    for key, item in data.items()
                    if key.startswith(bound.html_name)
                }
            )
    return data


def change_form_data(response):
    """The POST data of an admin change page (its form and inlines) sent back as shown."""
    data = form_data(response.context["adminform"].form)
    for inline in response.context.get("inline_admin_formsets", []):
        formset = inline.formset
        data.update(form_data(formset.management_form))
        for form in formset.forms:
            data.update(form_data(form))
    return data


def preview_then_confirm(client, url, data, follow=False):
    """Post a bulk action as the changelist does, then "Confirm" its preview (the page's own hidden fields).

    Returns the last response; an action the user is not offered (or a page of the action's own,
    such as a form with errors) answers without a preview, and that answer is returned.
    """
    response = client.post(url, data, follow=follow)
    context = getattr(response, "context", None)
    if not context or context.get("changeset_preview") is None or not context.get("total"):
        return response
    confirm_data = {}
    for name, value in context["confirm_data"]:
        confirm_data.setdefault(name, []).append(value)
    confirm_data[context["confirm_field"]] = "yes"
    confirm_data[context["digest_field"]] = context["digest"]
    return client.post(url, confirm_data, follow=follow)


class _BrowserForm(HTMLParser):
    """The fields of the page's forms whose id matches ``form_id``, as a browser submits them."""

    def __init__(self, form_id):
        super().__init__(convert_charrefs=True)
        self.form_id, self.inside, self.fields = form_id, False, []
        self.textarea = self.select = None
        self.options = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.inside = re.fullmatch(self.form_id, attrs.get("id") or "") is not None
        elif not self.inside:
            return
        elif tag == "input":
            kind = (attrs.get("type") or "text").lower()
            if "name" not in attrs or "disabled" in attrs or kind in ("submit", "button", "reset", "image", "file"):
                return
            if kind in ("checkbox", "radio"):
                if "checked" in attrs:
                    self.fields.append((attrs["name"], attrs.get("value", "on")))
                return
            self.fields.append((attrs["name"], attrs.get("value") or ""))
        elif tag == "textarea" and "name" in attrs:
            self.textarea = [attrs["name"], ""]
        elif tag == "select" and "name" in attrs:
            self.select, self.options = (attrs["name"], "multiple" in attrs), []
        elif tag == "option" and self.select:
            self.options.append([attrs.get("value"), "selected" in attrs, ""])

    def handle_data(self, data):
        if self.textarea is not None:
            self.textarea[1] += data
        elif self.select and self.options:
            self.options[-1][2] += data

    def handle_endtag(self, tag):
        if tag == "form":
            self.inside = False
        elif tag == "textarea" and self.textarea is not None:
            name, value = self.textarea
            # HTML drops a newline right after <textarea>.
            self.fields.append((name, value.removeprefix("\n")))
            self.textarea = None
        elif tag == "select" and self.select:
            name, multiple = self.select
            chosen = [option for option in self.options if option[1]]
            if not multiple and not chosen and self.options:
                chosen = self.options[:1]
            self.fields += [(name, text if value is None else value) for value, _selected, text in chosen]
            self.select = None


def browser_form_data(html, form_id=r".*_form|changelist-form"):
    """What a browser posts for the page ``html``'s form (line breaks as CRLF, as every browser sends them),
    as ``{name: [values]}``: unlike ``form_data``, from the HTML itself, not from the form's values."""
    parser = _BrowserForm(form_id)
    parser.feed(html)
    data = {}
    for name, value in parser.fields:
        data.setdefault(name, []).append(re.sub(r"\r\n|\r|\n", "\r\n", value))
    return data


def staff(name, group):
    """A staff user in the role ``group`` and a browser logged in as them: ``(user, client)``."""
    user = UserFactory(username=name, is_staff=True)
    user.groups.add(Group.objects.get(name=group))
    client = Client()
    client.force_login(user)
    return user, client


def managers(*names):
    """A logged-in browser per name, each a sales manager with the admin."""
    return [staff(name, "Sales manager")[1] for name in names]


def opened(client, url, form_id=r".*_form|changelist-form"):
    """The page's form at ``url`` as a browser would post it back untouched."""
    page = client.get(url)
    assert page.status_code == 200
    return browser_form_data(page.content.decode(), form_id)
