"""Real files for the tests of scanned materials: images made with Pillow, PDFs written out.

Each builder gives the bytes of a file a scanner or a phone could have made (or an
attacker): a photo with EXIF orientation and a GPS position, plain and active PDFs, a PNG
whose header claims more pixels than any page has.
"""

from __future__ import annotations

import io
import struct
import zlib

from PIL import ExifTags, Image


def jpeg(size: tuple[int, int] = (400, 300), *, exif: Image.Exif | None = None, quality: int = 90) -> bytes:
    image = Image.new("RGB", size)
    image.putdata(
        [((x * 7) % 256, (y * 3) % 256, (x + y) % 256) for y in range(size[1]) for x in range(size[0])]
    )
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality, exif=exif.tobytes() if exif is not None else b"")
    return out.getvalue()


def png(size: tuple[int, int] = (300, 200), mode: str = "RGB") -> bytes:
    image = Image.new(mode, size, "white")
    for x in range(0, size[0], 10):
        for y in range(size[1]):
            image.putpixel((x, y), 0 if mode in ("L", "1") else (0, 0, 0))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def phone_photo() -> bytes:
    """A phone's photo: taken sideways (orientation 6), with its make and GPS position."""
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "PhoneMaker"
    exif[ExifTags.Base.Orientation] = 6
    exif[ExifTags.IFD.GPSInfo] = {
        ExifTags.GPS.GPSLatitudeRef: "N",
        ExifTags.GPS.GPSLatitude: (30.0, 31.0, 12.5),
        ExifTags.GPS.GPSLongitudeRef: "E",
        ExifTags.GPS.GPSLongitude: (120.0, 41.0, 3.0),
    }
    return jpeg((800, 600), exif=exif)


def pdf(*objects: bytes) -> bytes:
    """A PDF of ``objects`` (object 1 the catalog), with a correct cross-reference table."""
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


PAGES = (
    b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
    b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >>",
)
PLAIN_PDF = pdf(b"<< /Type /Catalog /Pages 2 0 R >>", *PAGES)


def png_header(width: int, height: int) -> bytes:
    """A PNG whose header says ``width`` × ``height``, with a few bytes of pixel data."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


ACTIVE_PDF = pdf(
    b"<< /Type /Catalog /Pages 2 0 R /OpenAction 4 0 R >>",
    *PAGES,
    b"<< /S /JavaScript /JS (app.alert\\(1\\)) >>",
)
