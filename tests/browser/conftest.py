"""Browser fixtures: Debian's Chromium driven by Playwright, cut off from every other origin."""

import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Page, Playwright, Route, expect, sync_playwright

# Debian's package, launched by path: Playwright's own browser download is not used.
CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LOCAL_HOSTS = {"127.0.0.1"}
# expect() waits up to 30 s, not Playwright's 5: a page renders a 1 MB bundle (ReDoc) and the
# CI machine may be busy. Page actions get the same (offline_page).
EXPECT_TIMEOUT_MS = 30_000
expect.set_options(timeout=EXPECT_TIMEOUT_MS)


# Package scope, not session: Playwright's sync API keeps an asyncio loop running in the main
# thread while it is open, and the rest of the suite calls asyncio.run().
@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="package")
def browser(playwright: Playwright) -> Iterator[Browser]:
    if not CHROMIUM.exists():
        reason = f"Chromium not found at {CHROMIUM}: apt-get install chromium"
        # CI installs it (.ci/run), so there a missing browser is a failure, not a skip.
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    launched = playwright.chromium.launch(
        executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
    )
    yield launched
    launched.close()


class OfflinePage:
    """A page for which only 127.0.0.1 exists: any other origin is refused and recorded."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.foreign: list[str] = []
        self.console_errors: list[str] = []
        page.route("**/*", self._route)
        page.on(
            "console",
            lambda message: (
                self.console_errors.append(message.text) if message.type == "error" else None
            ),
        )

    def _route(self, route: Route) -> None:
        url = route.request.url
        parts = urlsplit(url)
        if parts.scheme in ("data", "blob") or parts.hostname in LOCAL_HOSTS:
            route.continue_()
        else:
            self.foreign.append(url)
            route.abort("internetdisconnected")


@pytest.fixture
def offline_page(browser: Browser) -> Iterator[OfflinePage]:
    context = browser.new_context()
    offline = OfflinePage(context.new_page())
    offline.page.set_default_timeout(EXPECT_TIMEOUT_MS)
    try:
        yield offline
    finally:
        context.close()
    # Checked after the test too, so a request made late (a font, a validator badge) still fails.
    assert offline.foreign == [], f"the page reached beyond 127.0.0.1: {offline.foreign}"
