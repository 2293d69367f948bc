"""The registries through which an app adds its part to a record of an app below it.

A domain app never imports the apps built on it: they register what they add from their
``AppConfig.ready()`` (``customers/parts.py``, ``companies/parts.py``: what follows a record
merged into another, what the answer to creating one adds...). Each registry is one
:class:`Registry`, so that every kind of part is registered and read the same way.
"""


class Registry(dict):
    """Parts by name, in the order the apps registered them; read as a dict (``.items()``)."""

    def add(self, name, part):
        """Register ``part`` under ``name`` (registering a name again replaces its part)."""
        self[name] = part


_BUILT = {}


def built_once(builders):
    """``{name: build()}`` for the ``(name, build)`` pairs of a figure registry, built once per process.

    A summary figure's ``build()`` makes a correlated subquery (querysets filtered, aggregated and
    wrapped): on a list page that costs more than running it. An expression is never changed by the
    queries it annotates (``annotate()`` resolves a copy of it), so one built expression serves every
    query; a registry that changes (a figure added or replaced) is a new set of pairs, built anew.
    """
    key = tuple(builders)
    expressions = _BUILT.get(key)
    if expressions is None:
        expressions = _BUILT[key] = {name: build() for name, build in key}
    return expressions
