"""Scans at the window: a page's bytes judged, cleaned and made small before they are kept.

:func:`normalise` takes what a scanner's folder or a phone's camera gave the clerk and
returns the bytes the case keeps (:class:`Scan`), or refuses with a stable code — before
anything is stored:

* The type is judged from the bytes (JPEG, PNG, PDF), never from the name; anything else
  is ``E_FILE_TYPE``, and a name whose extension says another of these types is
  ``E_FILE_TYPE_MISMATCH`` (a PDF renamed ``.jpg``).
* An image's pixel count is read from its header before it is decoded: over
  :data:`MAX_PIXELS` it is ``E_FILE_BOMB`` (a 30000 × 30000 PNG of a few kilobytes would
  take gigabytes to decode). It is then decoded in full — a truncated or damaged image is
  ``E_FILE_DAMAGED`` — turned upright by its EXIF orientation, stripped of every piece of
  metadata (EXIF with the phone's GPS position, XMP, comments; the colour profile stays),
  scaled so its longer side is at most ``max_side`` and encoded again: a JPEG as a JPEG of
  ``quality``, a PNG as an optimised PNG.
* A PDF is parsed (a damaged or password-protected one is refused) and kept byte for byte.
  It is marked ``active`` when it carries JavaScript, an open action, additional actions,
  launch actions or embedded files: such a file is kept, but only ever served as a
  download, never shown in the page.
* What is kept is at most :data:`core.files.MAX_FILE_BYTES` (``E_FILE_TOO_LARGE``).

Pillow and pypdf are the foreign libraries here; whatever either raises on bad bytes is
translated at this one boundary into ``E_FILE_DAMAGED``. The module does no I/O.
"""

from __future__ import annotations

import io
import re
import warnings
from dataclasses import dataclass
from typing import Any

from PIL import Image, ImageOps
from pypdf import PdfReader
from pypdf.generic import ArrayObject, DictionaryObject, IndirectObject, NameObject

from core.errors import ErrorCode, InputError
from core.files import JPEG, MAX_FILE_BYTES, PDF, PNG

MAX_PIXELS = 50_000_000
"""Pixels an image may have (a 300 dpi A3 scan has 17 million; a phone photo 12 to 48)."""
MAX_UPLOAD_BYTES = 4 * MAX_FILE_BYTES
"""Bytes of an image taken in before it is made smaller (a PDF is kept as it is)."""
MAX_PDF_OBJECTS = 200_000
"""Objects of a PDF looked through for active content; more is a damaged or hostile file."""

_MAGIC = ((b"\xff\xd8\xff", JPEG), (b"\x89PNG\r\n\x1a\n", PNG), (b"%PDF-", PDF))
_EXTENSIONS = {"jpg": JPEG, "jpeg": JPEG, "jpe": JPEG, "jfif": JPEG, "png": PNG, "pdf": PDF}
_PIL_FORMATS = {JPEG: "JPEG", PNG: "PNG"}
_DECODED_AS = {JPEG: ("JPEG", "MPO"), PNG: ("PNG",)}  # MPO: a phone's JPEG with a depth map
_ACTIVE_KEYS = frozenset(
    {"/JavaScript", "/JS", "/OpenAction", "/AA", "/Launch", "/EmbeddedFile", "/EmbeddedFiles"}
    | {"/GoToE", "/GoToR", "/SubmitForm", "/ImportData", "/RichMedia", "/XFA"}
)
_ACTIVE_BYTES = re.compile(rb"/(JavaScript|JS|OpenAction|AA|Launch|EmbeddedFiles?|GoToE|RichMedia|XFA)\b")
_TYPE_NAMES = {
    JPEG: ("JPEG 图片", "a JPEG image"),
    PNG: ("PNG 图片", "a PNG image"),
    PDF: ("PDF 文件", "a PDF"),
}


@dataclass(frozen=True)
class Scan:
    """A page as the case keeps it: its bytes and type; the image's size in pixels or the
    PDF's first page in points; its page count; whether it is a PDF with active content."""

    data: bytes
    type: str
    width: int
    height: int
    pages: int = 1
    active: bool = False


def sniff(data: bytes) -> str | None:
    """The type the bytes say they are (:data:`core.files.FILE_TYPES`), or ``None``."""
    return next((kind for magic, kind in _MAGIC if data.startswith(magic)), None)


def normalise(data: bytes, name: str, *, max_side: int = 2000, quality: int = 80) -> Scan:
    """The page to keep of ``data`` (a file named ``name``), or the refusal (see the module)."""
    kind = sniff(data)
    if kind is None:
        raise InputError(
            ErrorCode.FILE_TYPE,
            f"{name}: not a JPEG, PNG or PDF",
            zh=f"“{name}”不是 JPEG、PNG 图片或 PDF 文件",
            field="files",
        )
    said = _EXTENSIONS.get(name.rsplit(".", 1)[-1].lower()) if "." in name else None
    if said is not None and said != kind:
        raise InputError(
            ErrorCode.FILE_TYPE_MISMATCH,
            f"{name}: named as {_TYPE_NAMES[said][1]} but it is {_TYPE_NAMES[kind][1]}",
            zh=f"“{name}”按文件名是{_TYPE_NAMES[said][0]}，实际内容是{_TYPE_NAMES[kind][0]}",
            field="files",
        )
    scan = _pdf(data, name) if kind == PDF else _image(data, name, kind, max_side, quality)
    if len(scan.data) > MAX_FILE_BYTES:
        raise _too_large(name, len(scan.data))
    return scan


def _too_large(name: str, size: int) -> InputError:
    mib = MAX_FILE_BYTES // (1024 * 1024)
    return InputError(
        ErrorCode.FILE_TOO_LARGE,
        f"{name}: {size} bytes, at most {MAX_FILE_BYTES}",
        zh=f"“{name}”有 {size / 1048576:.1f} MB，每个文件最多 {mib} MB",
        field="files",
    )


def _damaged(name: str, exc: BaseException | str) -> InputError:
    reason = exc if isinstance(exc, str) else f"{type(exc).__name__}: {exc}"
    return InputError(
        ErrorCode.FILE_DAMAGED, f"{name}: {reason}"[:300], zh=f"“{name}”已损坏或不完整", field="files"
    )


def _bomb(name: str, width: int, height: int) -> InputError:
    return InputError(
        ErrorCode.FILE_BOMB,
        f"{name}: {width} × {height} pixels, at most {MAX_PIXELS}",
        zh=f"“{name}”有 {width} × {height} 像素，超过 {MAX_PIXELS // 1_000_000} 百万像素",
        field="files",
    )


# -- images --------------------------------------------------------------------------------


def _image(data: bytes, name: str, kind: str, max_side: int, quality: int) -> Scan:
    if len(data) > MAX_UPLOAD_BYTES:
        raise _too_large(name, len(data))
    with warnings.catch_warnings():
        # Pillow's own guard (a warning, then an error, at ~89 and ~179 megapixels) as an error
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data), formats=[_PIL_FORMATS[kind]])
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise _bomb(name, *_header_size(data, kind)) from exc
        except Exception as exc:  # the boundary: whatever Pillow makes of bad bytes
            raise _damaged(name, exc) from exc
        width, height = image.size
        if width * height > MAX_PIXELS or image.format not in _DECODED_AS[kind]:
            image.close()
            if width * height > MAX_PIXELS:
                raise _bomb(name, width, height)
            raise _damaged(name, f"decoded as {image.format}")
        try:
            out = _clean(image, kind, max_side, quality)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise _bomb(name, width, height) from exc
        except Exception as exc:  # truncated, damaged, or a decoder's refusal
            raise _damaged(name, exc) from exc
        finally:
            image.close()
    return out


def _header_size(data: bytes, kind: str) -> tuple[int, int]:
    """The size a PNG's header states (for the message); (0, 0) when not read cheaply."""
    if kind == PNG and len(data) >= 24 and data[12:16] == b"IHDR":
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    return 0, 0


def _clean(image: Image.Image, kind: str, max_side: int, quality: int) -> Scan:
    """Decode fully, turn upright, drop the metadata, scale down, encode again."""
    image.load()  # the first frame only: an MPO's depth map or an APNG's other frames stay out
    icc = image.info.get("icc_profile")
    upright = ImageOps.exif_transpose(image)
    pixels = upright.copy() if upright is image else upright
    if "transparency" in pixels.info:  # a palette's transparent colour lives in info
        pixels = pixels.convert("RGBA")
    pixels.info = {}  # EXIF (GPS), XMP, comments, text chunks: nothing goes along
    if max(pixels.size) > max_side:
        pixels.thumbnail((max_side, max_side), Image.Resampling.LANCZOS, reducing_gap=3.0)
    wanted = ("L", "RGB") if kind == JPEG else ("1", "L", "LA", "P", "RGB", "RGBA", "I;16")
    if pixels.mode not in wanted:
        pixels = pixels.convert("RGB" if kind == JPEG else "RGBA")
        icc = None  # the profile described the colours of the mode converted from (CMYK …)
    buffer = io.BytesIO()
    options: dict[str, Any] = {"icc_profile": icc} if isinstance(icc, bytes) and icc else {}
    if kind == JPEG:
        pixels.save(buffer, "JPEG", quality=quality, optimize=True, **options)
    else:
        pixels.save(buffer, "PNG", optimize=True, **options)
    return Scan(buffer.getvalue(), kind, pixels.width, pixels.height)


# -- PDFs ----------------------------------------------------------------------------------


def _pdf(data: bytes, name: str) -> Scan:
    if b"%%EOF" not in data[-2048:]:
        raise _damaged(name, "the file ends before the PDF's end marker")
    if len(data) > MAX_FILE_BYTES:
        raise _too_large(name, len(data))
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            raise InputError(
                ErrorCode.FILE_TYPE,
                f"{name}: a password-protected PDF",
                zh=f"“{name}”是加密的 PDF，请提供未加密的文件",
                field="files",
            )
        pages = len(reader.pages)
        if pages == 0:
            raise _damaged(name, "a PDF without pages")
        box = reader.pages[0].mediabox
        width, height = round(float(box.width)), round(float(box.height))
        active = bool(_ACTIVE_BYTES.search(data)) or _has_active(reader)
    except InputError:
        raise
    except Exception as exc:  # the boundary: whatever pypdf makes of bad bytes
        raise _damaged(name, exc) from exc
    return Scan(data, PDF, width, height, pages, active)


def pdf_is_active(data: bytes) -> bool:
    """Whether the PDF ``data`` carries active content (see :func:`normalise`); a PDF that
    cannot be parsed counts as active (it is only ever served as a download)."""
    if _ACTIVE_BYTES.search(data):
        return True
    try:
        return _has_active(PdfReader(io.BytesIO(data), strict=False))
    except Exception:  # the boundary: a file that does not parse is handled as the unsafe kind
        return True


def _has_active(reader: PdfReader) -> bool:
    """Walk every object reachable from the trailer (names are compared decoded, so
    ``/J#61vaScript`` and keys inside object streams are found too)."""
    seen: set[tuple[int, int]] = set()
    stack: list[Any] = [reader.trailer]
    count = 0
    while stack:
        value = stack.pop()
        count += 1
        if count > MAX_PDF_OBJECTS:
            raise ValueError("too many objects")
        if isinstance(value, IndirectObject):
            key = (value.idnum, value.generation)
            if key in seen:
                continue
            seen.add(key)
            stack.append(value.get_object())
        elif isinstance(value, DictionaryObject):
            if any(str(k) in _ACTIVE_KEYS for k in value):
                return True
            if value.get("/S") in (NameObject("/JavaScript"), NameObject("/Launch")):
                return True
            stack.extend(v for k, v in value.items() if k != "/Parent")
        elif isinstance(value, ArrayObject):
            stack.extend(value)
    return False
