"""The admin's shared bases: ModelAdmin behaviour (``base``) and import/export file formats (``formats``)."""
