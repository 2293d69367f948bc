"""Admin uploads awaiting the confirmation of their import preview.

The file is kept under a name the server chose, in ``IMPORT_UPLOAD_DIR``; the
page carries a signed reference to it (who uploaded it, for which import, the
file's id, format and hash), never a path. Confirming claims the file, so that
it is imported once, then deletes it; ``purge_abandoned_uploads()`` deletes
the ones never confirmed once ``IMPORT_UPLOAD_MAX_AGE_HOURS`` have passed.
"""

import datetime
import hashlib
import os
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core import signing
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext as _

SALT = "core.uploads"
SUFFIX = ".upload"
CLAIMED = ".claimed"
_FILE_ID = re.compile(r"[0-9a-f]{32}")


class UploadUnavailable(Exception):
    """The reference names no upload this user may confirm; the message says what to do."""


@dataclass
class Upload:
    data: bytes
    file_format: str
    purpose: str
    path: Path

    def discard(self):
        self.path.unlink(missing_ok=True)


def upload_folder():
    """The folder of uploads awaiting confirmation, created private to this account if missing."""
    folder = Path(settings.IMPORT_UPLOAD_DIR)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    # A folder planted by another account (a shared temporary folder) could be read or filled by it.
    if folder.is_symlink() or (hasattr(os, "getuid") and folder.stat().st_uid != os.getuid()):
        raise ImproperlyConfigured(
            f"{folder} (DJANGO_IMPORT_UPLOAD_DIR) must be a folder of the account that runs the application."
        )
    return folder


def max_age():
    return datetime.timedelta(hours=settings.IMPORT_UPLOAD_MAX_AGE_HOURS)


def store_upload(*, user, data, file_format, purpose):
    """Keep ``data`` for ``user`` and return the signed reference the confirmation sends back."""
    file_id = secrets.token_hex(16)
    path = upload_folder() / f"{file_id}{SUFFIX}"
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
    payload = {
        "user": user.pk,
        "file": file_id,
        "format": str(file_format),
        "purpose": purpose,
        "sha256": hashlib.sha256(data).hexdigest(),
    }
    return signing.dumps(payload, salt=SALT)


def read_upload(*, user, reference, purpose, claim=False):
    """The upload ``reference`` names, for ``user`` and ``purpose``; claimed (taken out of the folder) if asked.

    Raises ``UploadUnavailable`` for a reference that is forged, altered, expired, another
    user's or another import's, or whose file is gone (confirmed already or purged).
    """
    invalid = _("This import cannot be confirmed: its reference is not valid. Upload the file again.")
    try:
        payload = signing.loads(reference, salt=SALT, max_age=max_age())
    except signing.SignatureExpired:
        raise UploadUnavailable(
            _("This upload is more than %(hours)s hours old and was removed. Upload the file again.")
            % {"hours": settings.IMPORT_UPLOAD_MAX_AGE_HOURS}
        ) from None
    except signing.BadSignature:
        raise UploadUnavailable(invalid) from None
    if (
        not isinstance(payload, dict)
        or payload.get("user") != user.pk
        or payload.get("purpose") != purpose
        or not isinstance(payload.get("file"), str)
        or not _FILE_ID.fullmatch(payload["file"])
    ):
        raise UploadUnavailable(invalid)
    path = upload_folder() / f"{payload['file']}{SUFFIX}"
    try:
        if claim:
            # A rename succeeds once: a second confirmation of the same upload finds nothing.
            claimed = path.with_name(f"{payload['file']}{CLAIMED}{secrets.token_hex(4)}")
            path.rename(claimed)
            path = claimed
        data = path.read_bytes()
    except FileNotFoundError:
        raise UploadUnavailable(
            _("This upload is no longer there: it was imported already or removed. Upload the file again.")
        ) from None
    if hashlib.sha256(data).hexdigest() != payload.get("sha256"):
        raise UploadUnavailable(invalid)
    return Upload(data=data, file_format=payload.get("format"), purpose=purpose, path=path)


def purge_abandoned_uploads(*, now=None):
    """Delete the uploads older than ``IMPORT_UPLOAD_MAX_AGE_HOURS``; return how many were deleted."""
    folder = Path(settings.IMPORT_UPLOAD_DIR)
    if not folder.is_dir():
        return 0
    cutoff = (now if now is not None else time.time()) - max_age().total_seconds()
    deleted = 0
    for path in folder.iterdir():
        name = path.name
        if not (name.endswith(SUFFIX) or CLAIMED in name) or not _FILE_ID.fullmatch(name[:32]):
            continue  # not ours: left alone
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
                deleted += 1
        except FileNotFoundError:
            continue  # confirmed or purged meanwhile
    return deleted
