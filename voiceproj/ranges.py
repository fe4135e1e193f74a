"""HTTP range requests (RFC 9110 §14) for a file kept in a Django storage.

Consumes a request's ``Range`` header and a stored file; produces the whole
file (200), one byte range of it (206 with ``Content-Range``) or 416 with
``Content-Range: bytes */SIZE`` for a range that starts past the end. Every
answer says ``Accept-Ranges: bytes``, so a browser's ``<audio>`` seeks by range.
A header this module does not serve (several ranges, another unit, bad syntax)
is ignored, as the RFC allows: the whole file is sent.
"""

import re
from collections.abc import Iterator
from typing import IO

from django.db.models.fields.files import FieldFile
from django.http import FileResponse, HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase

RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
CHUNK_BYTES = 64 * 1024


class Unsatisfiable(Exception):
    """The range starts past the end of the file (416)."""


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The first and last byte (inclusive) that ``header`` asks of ``size``
    bytes; None for the whole file; :class:`Unsatisfiable` for a 416."""
    match = RANGE.match((header or "").strip())
    if match is None:
        return None
    first, last = match.groups()
    if not first:
        if not last:
            return None  # "bytes=-": not a range
        suffix = int(last)  # the last N bytes
        if suffix == 0 or size == 0:
            raise Unsatisfiable
        return max(0, size - suffix), size - 1
    start = int(first)
    if start >= size:
        raise Unsatisfiable
    end = min(int(last), size - 1) if last else size - 1
    if end < start:
        return None  # an invalid range is ignored
    return start, end


def _read(handle: IO[bytes], length: int) -> Iterator[bytes]:
    try:
        while length > 0:
            chunk = handle.read(min(CHUNK_BYTES, length))
            if not chunk:
                return
            length -= len(chunk)
            yield chunk
    finally:
        handle.close()


def ranged_file_response(
    request: HttpRequest, file: FieldFile, size: int, content_type: str, filename: str
) -> HttpResponseBase:
    """Serve ``file`` (``size`` bytes) whole or by the request's ``Range``."""
    response: HttpResponseBase
    try:
        wanted = parse_range(request.headers.get("Range"), size)
    except Unsatisfiable:
        response = HttpResponse(status=416)
        response["Content-Range"] = f"bytes */{size}"
        response["Accept-Ranges"] = "bytes"
        return response
    handle = file.storage.open(str(file.name), "rb")
    if wanted is None:
        response = FileResponse(handle, content_type=content_type)
        response["Content-Length"] = str(size)
    else:
        start, end = wanted
        handle.seek(start)
        response = StreamingHttpResponse(
            _read(handle, end - start + 1), status=206, content_type=content_type
        )
        response["Content-Range"] = f"bytes {start}-{end}/{size}"
        response["Content-Length"] = str(end - start + 1)
    response["Accept-Ranges"] = "bytes"
    response["Content-Disposition"] = f'inline; filename="{filename}"'
    return response
