"""The SQLite database backend: Django's, with writers queued on a kernel lock (``writelock.py``).

Settings name it as the engine of an SQLite database (``crm_site/settings/base.py``).
"""
