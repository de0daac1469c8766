"""Screen texts of the department desk, in Chinese (the default) and English.

Error messages come from :mod:`core.errors`, the shared words from :mod:`web.i18n`, the
names of case states and steps from :mod:`core.cases`; the rest is in this service's gettext
catalogs (``central/department/web/locale``, docs/translating.md).
"""

from __future__ import annotations

from core.cases import EVENT_LABELS, STATE_LABELS
from web.i18n import SHARED, Texts, catalog_texts

TEXT: dict[str, tuple[str, str]] = catalog_texts("central.department.web")
"""The desk's own screen texts: its gettext catalogs (``central/department/web/locale``)."""

TEXT.update({f"state.{state.value}": label for state, label in STATE_LABELS.items()})
TEXT.update({f"event.{event.value}": label for event, label in EVENT_LABELS.items()})

TEXTS = Texts(SHARED, TEXT)
