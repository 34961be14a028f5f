"""The SOAP contract in ``wsdl/``, served with the running instance's address.

The files are the source of truth; serving changes two things only: the placeholder address
of both ports becomes the address the client reached, and the schema import points at
``?xsd`` on that address, so a client that knows only the WSDL URL can load everything.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final
from xml.sax.saxutils import escape

#: Where the contract lives in a checkout (and in the image, which copies the checkout).
DEFAULT_CONTRACT_DIR: Final = Path(__file__).resolve().parents[2] / "wsdl"
PLACEHOLDER_ADDRESS: Final = "http://localhost:8000/soap/v1"

_ADDRESS: Final = f'location="{PLACEHOLDER_ADDRESS}"'
_SCHEMA_LOCATION: Final = 'schemaLocation="contribution.xsd"'


@dataclass(frozen=True, slots=True)
class Contract:
    """The WSDL (with its placeholders) and the XSD it imports."""

    wsdl: str
    xsd: bytes

    def wsdl_for(self, endpoint: str) -> bytes:
        """The WSDL naming ``endpoint`` as the address of both ports and the schema's home."""
        address = escape(endpoint, {'"': "&quot;"})
        return (
            self.wsdl.replace(_ADDRESS, f'location="{address}"')
            .replace(_SCHEMA_LOCATION, f'schemaLocation="{address}?xsd"')
            .encode("utf-8")
        )


def load_contract(directory: Path = DEFAULT_CONTRACT_DIR) -> Contract:
    """Read the contract files; refuse files that lack the placeholders served copies replace."""
    wsdl = (directory / "contribution.wsdl").read_text(encoding="utf-8")
    xsd = (directory / "contribution.xsd").read_bytes()
    if wsdl.count(_ADDRESS) != 2 or wsdl.count(_SCHEMA_LOCATION) != 1:
        raise RuntimeError(
            f"{directory / 'contribution.wsdl'} must name {PLACEHOLDER_ADDRESS} as the address "
            f"of both ports and import contribution.xsd once"
        )
    return Contract(wsdl, xsd)
