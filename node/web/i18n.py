"""Screen texts of the clerk web service, in Chinese (the default) and English.

Error messages come from :mod:`core.errors` (each code has both texts); the words every
service shares (login, language switch …) from :mod:`web.i18n`; the names of case states,
steps, delivery methods and ratings from :mod:`core.cases`; everything else a clerk's page
shows is in this service's gettext catalogs (``node/web/locale``, docs/translating.md). A
missing text is a test failure, not a blank on screen.
"""

from __future__ import annotations

from core.cases import DELIVERY_LABELS, EVENT_LABELS, RATING_LABELS, STATE_LABELS
from core.parts import PART_STATUS_LABELS
from web.i18n import SHARED, Texts, catalog_texts

TEXT: dict[str, tuple[str, str]] = catalog_texts("node.web")
"""This service's own screen texts: its gettext catalogs (``node/web/locale``)."""

# The words of the case lifecycle are core's, one table each (core.cases).
TEXT.update({f"state.{state.value}": label for state, label in STATE_LABELS.items()})
TEXT.update({f"event.{event.value}": label for event, label in EVENT_LABELS.items()})
TEXT.update({f"delivery.{way.value}": label for way, label in DELIVERY_LABELS.items()})
TEXT.update({f"rating.{rating.value}": label for rating, label in RATING_LABELS.items()})
TEXT.update({f"part.{status.value}": label for status, label in PART_STATUS_LABELS.items()})

TEXTS = Texts(SHARED, TEXT)
