"""The day of the files benchmark: a village's proxy cases, each with scanned pages.

:func:`scan` draws a page as a flatbed scanner gives it (an A4 page at 300 dpi: grey paper
with a little sensor noise and lines of handwriting-like strokes), so that after the
node's normalisation (:func:`core.scans.normalise`: 2000 px on the longer side, JPEG
quality 80) it is about 250 KB and does not compress to nothing. :func:`prepare` builds a
small city (central, a town, a village synced and delegated over loopback), and the
village takes in the day's cases through its desk: with their pages, or the same cases
without any (the records alone).
"""

from __future__ import annotations

import dataclasses
import io
import random
import shutil
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

from core.clock import FixedClock
from core.documents import mod11_2_check_char
from node import config
from node.desk import Upload
from sync.record.filestore import FileStore
from tests.helpers import TOWN, VILLAGE, Network
from tests.integration.syncnet import City, build_delegated_city, proxy_form

A4_300DPI = (2480, 3508)
PAPER_NOISE = 1.7
"""Sigma of the paper's grey noise: about 250 KB a page once normalised."""


def scan(seed: int, size: tuple[int, int] = A4_300DPI) -> bytes:
    """One scanned page (JPEG, quality 92, as a scanner's folder holds it), the same for a seed."""
    rnd = random.Random(seed)
    width, height = size
    noise = Image.effect_noise((width // 2, height // 2), PAPER_NOISE).resize(size)
    page = Image.eval(noise, lambda v: min(255, 110 + v))
    draw = ImageDraw.Draw(page)
    y = 250
    while y < height - 250:
        x = 200 + rnd.randrange(0, 60)
        while x < width - 300:
            word = rnd.randrange(40, 220)
            for _ in range(rnd.randrange(3, 9)):
                x0, y0 = x + rnd.randrange(0, word), y + rnd.randrange(0, 40)
                end = (x0 + rnd.randrange(-20, 30), y0 + rnd.randrange(-10, 45))
                draw.line((x0, y0, *end), fill=rnd.randrange(10, 70), width=rnd.randrange(3, 7))
            x += word + rnd.randrange(25, 60)
        y += rnd.randrange(70, 95)
    out = io.BytesIO()
    page.filter(ImageFilter.GaussianBlur(1)).convert("RGB").save(out, "JPEG", quality=92)
    return out.getvalue()


def file_store(home: Path) -> FileStore:
    """The node's file store (beside its database)."""
    return FileStore(config.load(home).database_path.parent / "files")


def resident_id(serial: int) -> str:
    """A valid resident ID number (GB 11643 check character), a different one for each serial."""
    body = f"110105{1950 + serial % 50:04d}0101{serial % 1000:03d}"
    return body + mod11_2_check_char(body)


@dataclasses.dataclass(frozen=True)
class Day:
    """A city whose village holds the day's cases, not yet synced, and what they carry."""

    city: City
    cases: int
    files: list[Path]
    """The village's stored files of the day (empty for the records alone)."""

    @property
    def file_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.files)


def base(root: Path) -> City:
    """The city before the day: the town synced with central, the village delegated and synced."""
    return build_delegated_city(root)


def prepare(base: City, root: Path, cases: int, scans_per_case: int, pages: list[bytes]) -> Day:
    """A copy of ``base`` in ``root`` with ``cases`` proxy cases taken in at the village, each
    with ``scans_per_case`` of ``pages`` (none: the records alone)."""
    shutil.copytree(base.net.root, root)
    city = City(Network(root, FixedClock(t=base.clock.now(), step=1), base.net.fingerprint), {})
    with city.desk(VILLAGE) as desk:
        for n in range(cases):
            form = proxy_form(desk, TOWN, resident_id(n))
            material = form.materials[0]
            uploads = tuple(
                Upload(material, f"scan-{n:03d}-{k}.jpg", pages[(n * scans_per_case + k) % len(pages)])
                for k in range(scans_per_case)
            )
            desk.intake(dataclasses.replace(form, uploads=uploads), actor="wangli")
    store = file_store(city.home(VILLAGE))
    return Day(city, cases, [store.path(sha) for sha in sorted(store.shas())])


def copy(day: Day, target: Path) -> Day:
    """A copy of the day's city in ``target``: every run starts from the same stores."""
    shutil.copytree(day.city.net.root, target)
    net = Network(target, FixedClock(t=day.city.clock.now(), step=1), day.city.net.fingerprint)
    moved = [target / p.relative_to(day.city.net.root) for p in day.files]
    return Day(City(net, {}), day.cases, moved)
