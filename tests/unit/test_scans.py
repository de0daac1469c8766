"""Scans judged by their bytes, cleaned of metadata, made small — or refused with a stable code.

Every file here is a real one, made with Pillow or written out as PDF text.
"""

from __future__ import annotations

import io
import random

import pytest
from PIL import ExifTags, Image

from core.errors import ErrorCode, InputError, TongbanError
from core.files import JPEG, PDF, PNG
from core.scans import MAX_PIXELS, Scan, normalise, pdf_is_active, sniff
from tests.scanfiles import PAGES, PLAIN_PDF, jpeg, pdf, phone_photo, png, png_header


def refused(data: bytes, name: str) -> ErrorCode:
    with pytest.raises(InputError) as err:
        normalise(data, name)
    return err.value.code


def test_a_phone_photo_loses_its_gps_and_every_other_tag_and_stands_upright() -> None:
    photo = phone_photo()
    assert Image.open(io.BytesIO(photo)).getexif().get_ifd(ExifTags.IFD.GPSInfo)  # the test's premise
    scan = normalise(photo, "IMG_0001.JPG")
    assert scan.type == JPEG and (scan.width, scan.height) == (600, 800)  # turned upright
    kept = Image.open(io.BytesIO(scan.data))
    assert kept.format == "JPEG" and kept.size == (600, 800)
    assert dict(kept.getexif()) == {} and "exif" not in kept.info
    assert b"PhoneMaker" not in scan.data and b"Exif" not in scan.data


def test_a_large_png_is_scaled_down_and_stays_a_png() -> None:
    scan = normalise(png((3000, 1500)), "scan.png", max_side=1000)
    assert scan.type == PNG and (scan.width, scan.height) == (1000, 500)
    assert Image.open(io.BytesIO(scan.data)).size == (1000, 500)


def test_a_small_image_keeps_its_size() -> None:
    scan = normalise(jpeg((400, 300)), "page.jpeg")
    assert (scan.width, scan.height, scan.pages, scan.active) == (400, 300, 1, False)


def test_a_phones_multi_picture_jpeg_keeps_its_first_picture_as_a_plain_jpeg() -> None:
    out = io.BytesIO()
    Image.new("RGB", (300, 200), "red").save(
        out, "MPO", save_all=True, append_images=[Image.new("RGB", (300, 200), "blue")]
    )
    assert Image.open(io.BytesIO(out.getvalue())).format == "MPO"  # the test's premise
    scan = normalise(out.getvalue(), "IMG_0002.JPG")
    kept = Image.open(io.BytesIO(scan.data))
    assert (kept.format, getattr(kept, "n_frames", 1), kept.getpixel((10, 10))) == ("JPEG", 1, (254, 0, 0))


def test_a_cmyk_scan_becomes_rgb_and_a_transparent_palette_keeps_its_transparency() -> None:
    out = io.BytesIO()
    Image.new("CMYK", (300, 200), (0, 255, 255, 0)).save(out, "JPEG")
    kept = Image.open(io.BytesIO(normalise(out.getvalue(), "scan.jpg").data))
    assert kept.mode == "RGB" and kept.getpixel((10, 10))[0] > 240
    out = io.BytesIO()
    Image.new("P", (50, 50), 0).save(out, "PNG", transparency=0)
    kept = Image.open(io.BytesIO(normalise(out.getvalue(), "stamp.png").data))
    assert kept.mode == "RGBA" and kept.getpixel((5, 5))[3] == 0


def test_a_name_without_an_extension_is_judged_by_its_bytes() -> None:
    assert normalise(png(), "scanner-0001").type == PNG


@pytest.mark.parametrize("size", [(30_000, 30_000), (10_000, 5_001), (8_000, 7_000)])
def test_a_decompression_bomb_is_refused_from_its_header(size: tuple[int, int]) -> None:
    data = png_header(*size)
    assert len(data) < 200 and size[0] * size[1] > MAX_PIXELS
    assert refused(data, "bomb.png") is ErrorCode.FILE_BOMB


def test_a_truncated_jpeg_is_damaged() -> None:
    data = jpeg((400, 300))
    assert refused(data[: len(data) * 2 // 3], "half.jpg") is ErrorCode.FILE_DAMAGED


def test_a_pdf_named_jpg_is_a_mismatch_and_says_both_types() -> None:
    with pytest.raises(InputError) as err:
        normalise(PLAIN_PDF, "photo.jpg")
    assert err.value.code is ErrorCode.FILE_TYPE_MISMATCH
    assert "PDF" in err.value.text("zh") and "JPEG" in err.value.text("zh")
    assert refused(png(), "page.jpg") is ErrorCode.FILE_TYPE_MISMATCH


@pytest.mark.parametrize(
    ("data", "name"),
    [
        ("申请书\n姓名：王秀英\n".encode(), "申请书.txt"),
        (b"GIF89a\x01\x00\x01\x00\x00\x00\x00;", "a.gif"),
        (b"", "empty.jpg"),
        (b"PK\x03\x04", "scan.pdf"),
    ],
)
def test_anything_but_jpeg_png_and_pdf_is_refused(data: bytes, name: str) -> None:
    assert refused(data, name) is ErrorCode.FILE_TYPE


def test_a_plain_pdf_is_kept_byte_for_byte() -> None:
    scan = normalise(PLAIN_PDF, "申请表.pdf")
    assert scan == Scan(PLAIN_PDF, PDF, 595, 842, 1, False)
    assert not pdf_is_active(PLAIN_PDF)


@pytest.mark.parametrize(
    "objects",
    [
        (
            b"<< /Type /Catalog /Pages 2 0 R /OpenAction 4 0 R >>",
            *PAGES,
            b"<< /S /JavaScript /JS (app.alert\\(1\\)) >>",
        ),
        # the name written with an escape, which a byte search does not find
        (
            b"<< /Type /Catalog /Pages 2 0 R /Names << /J#61vaScript 4 0 R >> >>",
            *PAGES,
            b"<< /Names [(x) 5 0 R] >>",
            b"<< /S /J#61vaScript /J#53 (app.alert\\(1\\)) >>",
        ),
        (b"<< /Type /Catalog /Pages 2 0 R /AA << /O 4 0 R >> >>", *PAGES, b"<< /S /Launch /F (cmd.exe) >>"),
        (
            b"<< /Type /Catalog /Pages 2 0 R /Names << /EmbeddedFiles 4 0 R >> >>",
            *PAGES,
            b"<< /Names [(a.exe) << /Type /Filespec /F (a.exe) >>] >>",
        ),
    ],
)
def test_a_pdf_with_active_content_is_kept_but_marked_active(objects: tuple[bytes, ...]) -> None:
    data = pdf(*objects)
    scan = normalise(data, "letter.pdf")
    assert scan.active and scan.data == data and scan.pages == 1
    assert pdf_is_active(data)


def test_a_truncated_pdf_is_damaged() -> None:
    assert refused(PLAIN_PDF[:-40], "letter.pdf") is ErrorCode.FILE_DAMAGED
    assert refused(b"%PDF-1.4\n garbage \n%%EOF\n", "letter.pdf") is ErrorCode.FILE_DAMAGED


def test_a_pdf_over_the_cap_is_too_large() -> None:
    big = PLAIN_PDF[:-6] + b" " * (10 * 1024 * 1024) + b"%%EOF\n"
    assert refused(big, "big.pdf") is ErrorCode.FILE_TOO_LARGE


def test_sniff_reads_only_the_magic() -> None:
    assert (sniff(jpeg()), sniff(png()), sniff(PLAIN_PDF), sniff(b"hello")) == (JPEG, PNG, PDF, None)


@pytest.mark.parametrize("kind", ["jpeg", "png", "pdf"])
def test_mutated_files_give_a_scan_or_a_file_code_and_nothing_else(kind: str) -> None:
    """Random byte flips, insertions and cuts of valid files: never another exception."""
    valid = {"jpeg": jpeg((120, 90)), "png": png((90, 60)), "pdf": pdf(*_js_objects())}[kind]
    name = f"page.{kind}"
    rng = random.Random(f"fuzz/{kind}")
    outcomes: set[str] = set()
    for _ in range(150):
        data = bytearray(valid)
        for _ in range(rng.randint(1, 8)):
            at = rng.randrange(len(data))
            choice = rng.random()
            if choice < 0.6:
                data[at] = rng.randrange(256)
            elif choice < 0.8:
                data[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
            else:
                del data[at : at + rng.randint(1, 64)]
        try:
            scan = normalise(bytes(data), name)
        except TongbanError as exc:
            assert exc.code.value.startswith("E_FILE_"), exc
            outcomes.add(exc.code.value)
        else:
            assert scan.type in (JPEG, PNG, PDF) and scan.data
            outcomes.add("scan")
    assert "scan" in outcomes and len(outcomes) > 1  # the mutations reach both sides


def _js_objects() -> tuple[bytes, ...]:
    return (b"<< /Type /Catalog /Pages 2 0 R /OpenAction 4 0 R >>", *PAGES, b"<< /S /JavaScript /JS (x) >>")
