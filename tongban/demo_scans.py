"""The demo's scanned pages: a resident's papers as a window's camera would take them, and
two cases taken in with them at a demo village.

:func:`id_card_photo` (a photographed 居民身份证 on a desk), :func:`hukou_page` (a page of the
居民户口簿) and :func:`letter_pdf` (a one-page PDF) are drawn with Pillow when the demo is
made, with the demo resident's particulars (:data:`tongban.demo_files.DEMO_CARD`) in Chinese
when a CJK font is installed (fonts-noto-cjk; :func:`cjk_font` looks for it), else with
grey bars where the text would be. :func:`seed_cases` takes them in through the village's
desk like a clerk's uploads: cleaned, signed with the intake record, kept in its file store
(:data:`DEMO_CASES`).
"""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from core.catalog import Mode
from core.clock import Clock
from node.desk import Desk, IntakeForm, Upload
from sync.projection.delegation import ItemAuthority
from tongban.demo_files import DEMO_CARD

FONT_DIRS = (Path("/usr/share/fonts"), Path("/usr/local/share/fonts"))
FONT_PATTERNS = ("NotoSansCJK-Regular.tt?", "NotoSerifCJK-Regular.tt?", "*CJK*.tt?", "wqy*.tt?")
DEMO_PHONE = "13957300000"
Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


def cjk_font() -> Path | None:
    """An installed font file with Chinese glyphs, if one is found."""
    for folder in FONT_DIRS:
        if folder.is_dir():
            for pattern in FONT_PATTERNS:
                found = sorted(folder.rglob(pattern))
                if found:
                    return found[0]
    return None


class Pen:
    """Writes text with the CJK font when there is one, else draws a bar of its length."""

    def __init__(self, font: Path | None) -> None:
        self.font = font
        self.sizes: dict[int, Font] = {}

    def write(self, draw: ImageDraw.ImageDraw, at: tuple[int, int], text: str, size: int, fill: str) -> None:
        if self.font is None:
            x, y = at
            draw.rectangle((x, y + size // 4, x + len(text) * size * 3 // 4, y + size), fill="#b8b8b8")
            return
        if size not in self.sizes:
            self.sizes[size] = ImageFont.truetype(str(self.font), size)
        draw.text(at, text, font=self.sizes[size], fill=fill)


def _photographed(page: Image.Image, canvas: tuple[int, int], background: str, angle: float) -> Image.Image:
    """``page`` lying on a surface, turned a little, as a camera sees it."""
    turned = page.rotate(angle, expand=True, resample=Image.Resampling.BICUBIC, fillcolor=background)
    photo = Image.new("RGB", canvas, background)
    photo.paste(turned, ((canvas[0] - turned.width) // 2, (canvas[1] - turned.height) // 2))
    return photo


def _jpeg(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=88)
    return out.getvalue()


def id_card_photo(pen: Pen) -> bytes:
    """The demo resident's identity card, front side, photographed on a desk."""
    card = Image.new("RGB", (856, 540), "#e9f1f6")
    draw = ImageDraw.Draw(card)
    draw.rounded_rectangle((4, 4, 851, 535), radius=36, outline="#9fb6c6", width=4)
    draw.rectangle((600, 110, 800, 360), fill="#d5dde3")  # the photo: head and shoulders
    draw.ellipse((650, 140, 750, 250), fill="#8c96a0")
    draw.pieslice((610, 250, 790, 420), 180, 360, fill="#8c96a0")
    c = DEMO_CARD
    lines = [
        (("姓名", c["name"]), 60),
        (("性别", f"{c['sex']}    民族  {c['nation']}"), 130),
        (("出生", "{}年{}月{}日".format(*(int(p) for p in c["birth"].split("-")))), 200),
        (("住址", c["address"]), 270),
    ]
    for (label, value), y in lines:
        pen.write(draw, (60, y), label, 30, "#4a7a9a")
        pen.write(draw, (150, y - 4), value, 36, "#1a1a1a")
    pen.write(draw, (60, 440), "公民身份号码", 30, "#4a7a9a")
    pen.write(draw, (270, 434), c["number"], 38, "#1a1a1a")
    return _jpeg(_photographed(card, (1280, 900), "#7a5a3c", 3.5))


def hukou_page(pen: Pen) -> bytes:
    """The demo resident's page of the household register (常住人口登记卡), photographed."""
    page = Image.new("RGB", (900, 1240), "#f4ede0")
    draw = ImageDraw.Draw(page)
    pen.write(draw, (300, 50), "常住人口登记卡", 46, "#6a2a2a")
    c = DEMO_CARD
    rows = [
        ("姓名", c["name"]),
        ("户主或与户主关系", "户主"),
        ("性别", c["sex"]),
        ("民族", c["nation"]),
        ("出生地", "浙江省海宁市"),
        ("籍贯", "浙江海宁"),
        ("出生日期", c["birth"].replace("-", ".")),
        ("公民身份号码", c["number"]),
        ("住址", c["address"]),
        ("登记日期", "2006.09.12"),
    ]
    top, height = 150, 96
    draw.rectangle((50, top, 850, top + height * len(rows)), outline="#7a4a4a", width=3)
    for n, (label, value) in enumerate(rows):
        y = top + n * height
        draw.line((50, y, 850, y), fill="#7a4a4a", width=2)
        pen.write(draw, (70, y + 30), label, 28, "#6a2a2a")
        pen.write(draw, (340, y + 26), value, 32, "#1a1a1a")
    draw.line((320, top, 320, top + height * len(rows)), fill="#7a4a4a", width=2)
    draw.ellipse((600, 1120, 760, 1230), outline="#c0392b", width=5)  # the registrar's seal
    return _jpeg(_photographed(page, (1100, 1400), "#5c5c58", -2.0))


def letter_pdf(pen: Pen) -> bytes:
    """A one-page PDF: the resident's written statement (情况说明), as a scanner makes it."""
    page = Image.new("L", (620, 877), 255)
    draw = ImageDraw.Draw(page)
    pen.write(draw, (250, 60), "情况说明", 34, "black")
    text = [
        f"本人{DEMO_CARD['name']}，身份证号{DEMO_CARD['number']}，",
        f"现住{DEMO_CARD['address']}。",
        "因家中突发重病，生活陷入困难，",
        "特申请临时救助。以上情况属实。",
    ]
    for n, line in enumerate(text):
        pen.write(draw, (60, 150 + n * 44), line, 22, "black")
    pen.write(draw, (380, 700), f"申请人：{DEMO_CARD['name']}", 22, "black")
    out = io.BytesIO()
    page.save(out, "PDF", resolution=72.0)
    return out.getvalue()


DEMO_CASES = (
    ("MZ-0002", "hukou_book", "户口簿.jpg", hukou_page),  # 特困人员救助供养申请
    ("MZ-0003", "hardship_statement", "情况说明.pdf", letter_pdf),  # 临时救助申请
)
"""The demo's cases: an item the village takes in for its town, the material of the page
beside the identity card's photo, its file name and how it is drawn."""


def _form(auth: ItemAuthority, uploads: tuple[Upload, ...]) -> IntakeForm:
    return IntakeForm(
        item=auth.item.code,
        name=DEMO_CARD["name"],
        doc_type="resident_id",
        doc_no=DEMO_CARD["number"],
        phone=DEMO_PHONE,
        materials=tuple(m.code for m in auth.item.materials if m.required),
        uploads=uploads,
    )


def seed_cases(village: Path, clock: Clock) -> list[str]:
    """The :data:`DEMO_CASES` of the demo resident, taken in at the village ``village`` with
    their scanned pages (an item the catalog or the grants do not offer there is left out);
    their numbers."""
    pen = Pen(cjk_font())
    card = id_card_photo(pen)
    made: list[str] = []
    with Desk.open(village, clock) as desk:
        offered = {a.item.code: a for a in desk.items() if a.mode is Mode.PROXY}
        for code, material, name, draw in DEMO_CASES:
            auth = offered.get(code)
            materials = {m.code for m in auth.item.materials} if auth is not None else set()
            if auth is None or not {"id_card", material} <= materials:
                continue
            uploads = (Upload("id_card", "身份证.jpg", card), Upload(material, name, draw(pen)))
            made.append(desk.intake(_form(auth, uploads), actor="wangli").case_no)
    return made
