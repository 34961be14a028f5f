"""Write the REST API's OpenAPI document (``make openapi``).

The document is the one the app serves at ``/openapi.json``; building it needs no database (the
app is created with a placeholder DSN and never started).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from app.main import create_app
from app.settings import Settings

PLACEHOLDER_DSN = "postgresql://docs@127.0.0.1:1/docs"


def openapi_document() -> dict[str, Any]:
    """The OpenAPI document of an app built with placeholder settings."""
    settings = Settings(primary_dsn=PLACEHOLDER_DSN, replica_dsns=[])
    return create_app(settings).openapi()


def render(document: dict[str, Any]) -> str:
    """The document as committed: indented, UTF-8, keys in the app's order, a final newline."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write the document to the path given (stdout when none)."""
    args = sys.argv[1:] if argv is None else argv
    text = render(openapi_document())
    if not args or args[0] == "-":
        sys.stdout.write(text)
        return 0
    path = Path(args[0])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
