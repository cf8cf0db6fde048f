"""The interactive API docs in a real browser, offline: Authorize, Try it out, and ReDoc."""

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy.orm import Session

from tests.browser.conftest import OfflinePage
from tests.builders import PASSWORD, make_user

pytestmark = pytest.mark.slow


def test_swagger_signs_in_with_authorize_and_runs_me(
    live_server: str, committed: Session, offline_page: OfflinePage
) -> None:
    user = make_user(committed, name="Docs Reader", email="docs.reader@example.com")
    page = offline_page.page
    page.goto(f"{live_server}/docs")

    page.locator("button.authorize").first.click()
    page.locator("#oauth_username").fill(user.email or "")
    page.locator("#oauth_password").fill(PASSWORD)
    page.locator(".auth-btn-wrapper button.authorize").click()
    expect(page.locator(".auth-container")).to_contain_text("Authorized")
    page.locator("button.btn-done").click()

    run_me(page)
    # persistAuthorization: a reload keeps the developer signed in.
    page.reload()
    run_me(page)
    assert not [e for e in offline_page.console_errors if "Content Security Policy" in e]


def run_me(page: Page) -> None:
    operation = page.locator(".opblock-get", has=page.locator('[data-path="/v1/auth/me"]'))
    operation.locator(".opblock-summary").first.click()
    operation.locator("button.try-out__btn").click()
    operation.locator("button.execute").click()
    status = operation.locator(".live-responses-table .response .response-col_status")
    expect(status.first).to_have_text("200")
    expect(operation.locator(".live-responses-table .microlight").first).to_contain_text(
        "docs.reader@example.com"
    )
    # Collapse again, so the next run starts from the same state.
    operation.locator(".opblock-summary").first.click()


def test_redoc_lists_the_operations(
    live_server: str, committed: Session, offline_page: OfflinePage
) -> None:
    page = offline_page.page
    page.goto(f"{live_server}/redoc")
    expect(page.locator("h1").first).to_contain_text("Zariz")
    expect(page.get_by_text("/v1/auth/me").first).to_be_attached()
    expect(page.get_by_text("/v1/orders/{order_id}/claim").first).to_be_attached()
    # ReDoc 2 hard-codes its vendor's logo URL in the sidebar: the CSP blocks it before any
    # request is made (so the offline check never sees it) and ReDoc hides the broken image.
    violations = [e for e in offline_page.console_errors if "Content Security Policy" in e]
    assert [e for e in violations if "cdn.redoc.ly/redoc/logo-mini.svg" not in e] == []
