"""Reading a resident ID card (二代身份证) at the window: one interface, the readers behind it.

A window PC or a self-service kiosk has a card reader on USB; its vendor's SDK reads the
card's chip (name, sex, ethnicity, birth date, address, number, issuing authority,
validity). :class:`CardReader` is what the node asks of any reader: the card on it now.
The clerk's intake form and the kiosk API (``GET /api/v1/card``) fill the applicant (or
the agent) from it, and the checks are the same as for a typed number.

Built here: :class:`SimulatedReader`, for tests and the demo (the card "on the reader" is
a JSON file in the node's directory), and :class:`NoReader`. A real reader is **not**
built: no PyPI or Debian package reads a 二代身份证 — the chip is read through the
security module (SAM) of a licensed reader, and each vendor (华视, 神思, 精伦 …) ships its
own SDK, a Windows DLL or a Linux ``.so`` under licence. A vendor's reader plugs in as one
class with ``read()`` (ctypes over its SDK), named by ``[reader] kind`` in ``node.toml``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from core.documents import DocType
from core.errors import ErrorCode, InputError


@dataclass(frozen=True)
class IdCard:
    """What a resident ID card's chip says, as a reader returns it."""

    name: str
    number: str
    sex: str = ""  # 男 / 女
    nation: str = ""  # 民族
    birth: str = ""  # YYYY-MM-DD
    address: str = ""
    issuer: str = ""  # 签发机关
    valid: str = ""  # 有效期限, e.g. 2016.03.01-2036.03.01
    doc_type: DocType = DocType.RESIDENT_ID


class CardReader(Protocol):
    """A card reader: the card lying on it now (``E_READER_EMPTY`` when there is none)."""

    def read(self) -> IdCard: ...


class NoReader:
    """The node has no reader configured."""

    def read(self) -> IdCard:
        raise InputError(ErrorCode.READER_NONE, "[reader] kind is none", zh="本机未配置身份证读卡器")


class SimulatedReader:
    """A reader whose card is the JSON object in ``path`` (the keys of :class:`IdCard`):
    tests and the demo put a card there, as a clerk lays one on the reader."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self) -> IdCard:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InputError(
                ErrorCode.READER_EMPTY,
                f"no card in {self.path.name}",
                zh="读卡器上没有证件，请放好身份证后重试",
            ) from None
        except (OSError, ValueError) as exc:
            raise InputError(
                ErrorCode.READER_FAILED, f"{self.path.name}: {exc}", zh="读卡失败，请重新放置证件"
            ) from exc
        if (
            not isinstance(data, dict)
            or not isinstance(data.get("name"), str)
            or not isinstance(data.get("number"), str)
        ):
            raise InputError(
                ErrorCode.READER_FAILED,
                f"{self.path.name}: no name and number",
                zh="读卡失败，请重新放置证件",
            )
        text = {k: str(data.get(k, "")) for k in _TEXT_FIELDS}
        return IdCard(
            name=text["name"],
            number=text["number"],
            sex=text["sex"],
            nation=text["nation"],
            birth=text["birth"],
            address=text["address"],
            issuer=text["issuer"],
            valid=text["valid"],
        )


_TEXT_FIELDS = frozenset({"name", "number", "sex", "nation", "birth", "address", "issuer", "valid"})


def reader_for(kind: str, home: Path, card_file: str) -> CardReader:
    """The reader ``[reader] kind`` names: ``none`` or ``simulated``."""
    if kind == "simulated":
        return SimulatedReader(home / card_file)
    return NoReader()


def card_of(values: dict[str, str], card: IdCard, prefix: str = "") -> dict[str, str]:
    """The intake form's ``values`` with the person (``prefix`` ``agent_`` for the agent)
    filled from ``card``."""
    return {
        **values,
        prefix + "name": card.name,
        prefix + "doc_type": card.doc_type.value,
        prefix + "doc_no": card.number,
    }
