"""A client's credentials as the credential checks are handed them, for the admission tests."""

from __future__ import annotations

from app.admission.credential_checks import Presented


def presented(secret: str, stored: str) -> Presented:
    """Client 7 ("ops", from 198.51.100.7) presenting ``secret`` against ``stored``."""
    return Presented(
        kind="client", name="ops", address="198.51.100.7", secret=secret, ident=7,
        stored_hash=stored,
    )  # fmt: skip
