from django import template

from core.money import format_money

register = template.Library()


@register.filter
def money(value):
    """An amount with the deployment's currency symbol and thousands separators (``core.money``)."""
    return format_money(value)
