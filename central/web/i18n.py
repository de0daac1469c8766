"""Screen texts of central's operator web service, in Chinese (the default) and English.

Error messages come from :mod:`core.errors`; the words every service shares from
:mod:`web.i18n`; the names of case states and ratings from :mod:`core.cases`; the rest is
in this service's gettext catalogs (``central/web/locale``, docs/translating.md). A missing
text is a test failure, not a blank on screen.
"""

from __future__ import annotations

from core.cases import RATING_LABELS, STATE_LABELS
from web.i18n import SHARED, Texts, catalog_texts

TEXT: dict[str, tuple[str, str]] = catalog_texts("central.web")
"""This service's own screen texts: its gettext catalogs (``central/web/locale``)."""

# The words of the case lifecycle are core's (core.cases): the dashboard's case states and ratings.
TEXT.update({f"case.{state.value}": label for state, label in STATE_LABELS.items()})
TEXT.update({f"rating.{rating.value}": label for rating, label in RATING_LABELS.items()})

TEXTS = Texts(SHARED, TEXT)
