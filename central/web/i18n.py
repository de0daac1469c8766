"""Screen texts of central's operator web service, in Chinese (the default) and English.

Error messages come from :mod:`core.errors`; the words every service shares from
:mod:`web.i18n`; the names of case states and ratings from :mod:`core.cases`; a peer
city's modes, roles and standing from :mod:`core.federation`; the rest is in this
service's gettext catalogs (``central/web/locale``, docs/translating.md). A missing text is
a test failure, not a blank on screen.
"""

from __future__ import annotations

from core.cases import RATING_LABELS, STATE_LABELS
from core.federation import MODE_LABELS, ROLE_LABELS, STANDING_LABELS
from web.i18n import SHARED, Texts, catalog_texts

TEXT: dict[str, tuple[str, str]] = catalog_texts("central.web")
"""This service's own screen texts: its gettext catalogs (``central/web/locale``)."""

# The words of the case lifecycle are core's (core.cases): the dashboard's case states and ratings.
TEXT.update({f"case.{state.value}": label for state, label in STATE_LABELS.items()})
TEXT.update({f"rating.{rating.value}": label for rating, label in RATING_LABELS.items()})
# The federation's words are core's (core.federation): a peer's modes, roles and standing.
TEXT.update({f"peer.mode.{mode}": label for mode, label in MODE_LABELS.items()})
TEXT.update({f"peer.role.{role}": label for role, label in ROLE_LABELS.items()})
TEXT.update({f"peer.state.{state}": label for state, label in STANDING_LABELS.items()})

TEXTS = Texts(SHARED, TEXT)
