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
