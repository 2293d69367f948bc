"""List columns that keep a list within a laptop's width: long texts cut, whole on hover."""

from django.contrib import admin
from django.utils.html import format_html


def cut_text(value, size=""):
    """``value`` in a span the stylesheet cuts at its column's width (``core/static/core/admin.css``),
    with the whole text in its title."""
    if value in (None, ""):
        return None
    text = str(value)
    return format_html('<span class="crm-cut {}" title="{}">{}</span>', size, text, text)


def cut_column(attribute, description, ordering=None, size="", empty_value="—"):
    """A list column showing ``attribute`` (a dotted path: ``"customer.name"``) cut, sorted by ``ordering``."""

    def column(self, obj):
        value = obj
        for part in attribute.split("."):
            value = getattr(value, part, None)
            if value is None:
                break
        return cut_text(value, size)

    return admin.display(description=description, ordering=ordering, empty_value=empty_value)(column)
