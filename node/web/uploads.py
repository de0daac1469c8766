"""The scanned pages a form sends (``multipart/form-data``), read with bounds, and served back.

A form names each page's material in its file field: ``file_<material code>`` (one or more
files each, in the order the clerk picked them; ``file_decision`` for a decision's
document). A request is bounded as a whole (:data:`MAX_UPLOAD_REQUEST`, ``E_REQUEST_TOO_LARGE``,
checked before the body is read) and each file as the clerk sent it
(:data:`MAX_UPLOAD_FILE`, ``E_FILE_TOO_LARGE``); what is kept is the normalised page
(:mod:`core.scans`), which :data:`core.files.MAX_FILE_BYTES` bounds again.

A file is served (:func:`file_response`) with its type from its ref, ``nosniff``, the pages'
CSP, ``Cache-Control: private``; a PDF always as a download (``attachment``), an image
``inline``.
"""

from __future__ import annotations

from pathlib import Path

from werkzeug.wrappers import Request, Response

from core.errors import ErrorCode, InputError
from core.files import MAX_RECORD_FILE_BYTES, FileRef
from node.files import Upload

MIB = 1024 * 1024
MAX_UPLOAD_FILE = 20 * MIB
"""Bytes one uploaded file may have before it is normalised (a phone's photo is larger
than the page kept)."""
MAX_UPLOAD_REQUEST = MAX_RECORD_FILE_BYTES + 8 * MIB
"""Bytes a form with pages may have in all (the pages and the form's fields)."""
PREFIX = "file_"
EXTENSION = {"image/jpeg": "jpg", "image/png": "png", "application/pdf": "pdf"}


def uploads_of(request: Request) -> tuple[Upload, ...]:
    """The pages ``request`` carries, in the form's order (empty file fields skipped)."""
    found: list[Upload] = []
    for key in request.files:
        if not key.startswith(PREFIX):
            continue
        material = key[len(PREFIX) :]
        for part in request.files.getlist(key):
            data = part.stream.read(MAX_UPLOAD_FILE + 1)
            name = part.filename or ""
            if not data and not name:
                continue
            if len(data) > MAX_UPLOAD_FILE:
                raise InputError(
                    ErrorCode.FILE_TOO_LARGE,
                    f"{name}: more than {MAX_UPLOAD_FILE} bytes",
                    zh=f"{name}：文件超过 {MAX_UPLOAD_FILE // MIB} MB",
                )
            found.append(Upload(material, name, data))
    return tuple(found)


def file_response(path: Path, ref: FileRef, name: str) -> Response:
    """The bytes of a held file with the headers above (the CSP is added by the context)."""
    response = Response(path.read_bytes(), mimetype=ref.type)
    disposition = "attachment" if ref.type == "application/pdf" else "inline"
    filename = f"{name}.{EXTENSION.get(ref.type, 'bin')}"
    response.headers["Content-Disposition"] = f'{disposition}; filename="{filename}"'
    response.headers["Cache-Control"] = "private, max-age=3600"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
