"""`/docs` works on a closed network: headless Chromium, with every host but 127.0.0.1
unreachable, renders every operation of the OpenAPI document, and no request of the page goes
anywhere but the gateway.

Chromium is the Debian package's (`scripts/ensure-os-tools` installs it), driven by playwright
from PyPI (a dev dependency) through its own pipe: playwright never downloads a browser here.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.async_api import async_playwright

CHROMIUM = Path("/usr/bin/chromium")
HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}

pytestmark = pytest.mark.db

# Network off: every name but 127.0.0.1 fails to resolve, and anything that would leave the
# machine goes to a proxy where nothing listens (loopback is never proxied).
OFFLINE = [
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    "--proxy-server=http://127.0.0.1:9",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


def operations(live_url: str) -> set[tuple[str, str]]:
    """(METHOD, path) of every operation the served OpenAPI document holds."""
    document = httpx.get(f"{live_url}/openapi.json", timeout=10).json()
    return {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in HTTP_METHODS
    }


def test_the_docs_page_names_nothing_off_the_gateway(live_url: str) -> None:
    docs = httpx.get(f"{live_url}/docs", timeout=10)
    assert "http://" not in docs.text and "https://" not in docs.text
    assert "/docs/static/swagger-ui-bundle.js" in docs.text
    assert "default-src 'self'" in docs.headers["content-security-policy"]
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        served = httpx.get(f"{live_url}/docs/static/{asset}", timeout=10)
        assert served.status_code == 200 and len(served.content) > 100_000, asset
    # No ReDoc: its build shows a logo from Redocly's CDN.
    assert httpx.get(f"{live_url}/redoc", timeout=10).status_code == 404


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason="Chromium is not installed (/usr/bin/chromium)")
async def test_chromium_offline_renders_every_operation(live_url: str) -> None:
    expected = operations(live_url)
    assert len(expected) > 20
    requested: list[str] = []
    async with async_playwright() as driver:
        browser = await driver.chromium.launch(executable_path=str(CHROMIUM), args=OFFLINE)
        try:
            page = await browser.new_page()
            page.on("request", lambda request: requested.append(request.url))
            await page.goto(f"{live_url}/docs", wait_until="networkidle")
            await page.wait_for_function(
                "n => document.querySelectorAll('.opblock').length >= n", arg=len(expected)
            )
            shown = await page.eval_on_selector_all(
                ".opblock",
                """blocks => blocks.map(b => [
                    b.querySelector('.opblock-summary-method').textContent.trim(),
                    b.querySelector('.opblock-summary-path').getAttribute('data-path')])""",
            )
            assert {(method, path) for method, path in shown} == expected
            assert await page.locator(".errors-wrapper").count() == 0
            # An operation opens, as a reader opens it, ready to be tried.
            await page.locator(".opblock-summary").first.click()
            await page.locator(".opblock .try-out__btn").first.wait_for()
        finally:
            await browser.close()
    hosts = {urlsplit(url).hostname for url in requested if not url.startswith("data:")}
    assert hosts == {"127.0.0.1"}, [u[:120] for u in requested if "127.0.0.1" not in u]
    assert any(url.endswith("/docs/static/swagger-ui-bundle.js") for url in requested)
