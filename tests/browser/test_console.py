"""The console in a real browser: sign-in, new order, the live board, dispatch, cancel, sign-out."""

import os
import re
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest
from playwright.sync_api import Browser, Locator, Page, expect
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.models import Role, StoreMembership, StoreRole, User
from tests.browser.conftest import EXPECT_TIMEOUT_MS, OfflinePage
from tests.builders import PASSWORD, auth_headers, make_store, make_user
from tests.orders_helpers import ORDER_BODY
from tests.proof_files import jpeg

pytestmark = pytest.mark.slow

# CONSOLE_SCREENSHOTS=docs/console makes these tests save the pictures docs/console.md shows.
SHOTS = os.environ.get("CONSOLE_SCREENSHOTS")


def shot(page: Page, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=True)


@pytest.fixture
def second_page(browser: Browser) -> Iterator[OfflinePage]:
    """A second browser (its own cookies): the dispatcher beside the store owner."""
    context = browser.new_context()
    offline = OfflinePage(context.new_page())
    offline.page.set_default_timeout(EXPECT_TIMEOUT_MS)
    try:
        yield offline
    finally:
        context.close()
    assert offline.foreign == []


def owner_of(db: Session, store_name: str, name: str, email: str) -> User:
    store = make_store(db, name=store_name)
    user = make_user(db, role=Role.STORE, name=name, email=email)
    db.add(StoreMembership(user_id=user.id, store_id=store.id, role_in_store=StoreRole.OWNER))
    db.commit()
    return user


def sign_in(page: Page, base: str, user: User) -> None:
    page.goto(f"{base}/console")
    expect(page).to_have_url(f"{base}/console/login?next=%2Fconsole")
    page.get_by_label("Email or phone").fill(user.email or "")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Board")).to_be_visible()
    # The live stream is open before the test makes anything happen.
    expect(page.locator("#live-status")).to_have_attribute("data-state", "open")


def no_csp_violations(*pages: OfflinePage) -> None:
    for offline in pages:
        assert not [e for e in offline.console_errors if "Content Security Policy" in e]


def card(page: Page, status: str, order_id: str) -> Locator:
    return page.locator(f".status-{status} [data-order-id='{order_id}']")


def test_store_creates_an_order_and_dispatch_sees_it_live_and_assigns_it(
    live_server: str,
    committed: Session,
    offline_page: OfflinePage,
    second_page: OfflinePage,
) -> None:
    owner = owner_of(committed, "חנות הפרחים", "Shira Store", "shira@example.com")
    admin = make_user(committed, role=Role.ADMIN, name="Dana Dispatch", email="dana@example.com")
    courier = make_user(committed, role=Role.COURIER, name="Yossi Courier", capacity_boxes=10)
    store_page, admin_page = offline_page.page, second_page.page
    sign_in(store_page, live_server, owner)
    sign_in(admin_page, live_server, admin)
    shot(admin_page, "board-empty")

    # The store owner creates an order; a field left out is named next to the field first.
    store_page.get_by_role("link", name="New order").click()
    store_page.get_by_label("First name *").fill("נועה")
    store_page.get_by_label("Last name *").fill("לוי")
    store_page.get_by_label("Street *").fill("דיזנגוף")
    store_page.get_by_label("Building *").fill("100")
    store_page.get_by_label("Boxes *").fill("3")
    expect(store_page.locator("#price")).to_contain_text("total")
    store_page.get_by_role("button", name="Create order").click()
    expect(store_page.locator("#e-phone")).to_be_visible()
    shot(store_page, "new-order-errors")
    store_page.get_by_label("Phone *").fill("+972 50 123 4567")
    store_page.get_by_role("button", name="Create order").click()
    expect(store_page.get_by_role("heading", name="Order #")).to_be_visible()
    order_id = store_page.url.rsplit("/", 1)[1]
    store_page.get_by_role("link", name="Board").click()
    expect(card(store_page, "new", order_id)).to_contain_text("נועה לוי")
    # Marks the store's document: had its board reloaded instead of updating, the mark is gone.
    store_page.evaluate("window.zarizMark = 'no reload'")

    # The dispatcher's board shows it without a reload, standing out as new.
    expect(card(admin_page, "new", order_id)).to_be_visible()
    expect(card(admin_page, "new", order_id)).to_have_class(re.compile(r"\bunassigned\b"))
    shot(admin_page, "board")
    card(admin_page, "new", order_id).locator("a").click()
    admin_page.get_by_label("Assign to").select_option(str(courier.id))
    shot(admin_page, "order")
    admin_page.get_by_role("button", name="Assign").click()
    expect(admin_page.locator("#order-status")).to_have_text("assigned")
    expect(admin_page.locator("#order-courier")).to_have_text("Yossi Courier")

    # The store's board moved the order without a reload.
    expect(card(store_page, "assigned", order_id)).to_be_visible()

    # The courier accepts, picks up and delivers through the API; both boards follow.
    admin_page.get_by_role("link", name="Board").click()
    expect(admin_page.locator("#live-status")).to_have_attribute("data-state", "open")
    headers = auth_headers(committed, courier)
    with httpx.Client(base_url=live_server, headers=headers) as api:
        assert api.post(f"/v1/orders/{order_id}/accept").status_code == 200
        for page in (store_page, admin_page):
            expect(card(page, "accepted", order_id)).to_be_visible()
        assert api.post(f"/v1/orders/{order_id}/status", json={"status": "picked_up"}).is_success
        for page in (store_page, admin_page):
            expect(card(page, "picked_up", order_id)).to_be_visible()
        assert api.post(f"/v1/orders/{order_id}/status", json={"status": "delivered"}).is_success
    for page in (store_page, admin_page):
        expect(card(page, "delivered", order_id)).to_be_visible()
    assert store_page.evaluate("window.zarizMark") == "no reload"
    shot(store_page, "board-after-delivery")
    admin_page.get_by_role("link", name="Today").click()
    expect(admin_page.locator("#stat-delivered strong")).to_have_text("1")
    shot(admin_page, "today")
    no_csp_violations(offline_page, second_page)


def test_store_cancels_an_order_with_a_reason(
    live_server: str, committed: Session, offline_page: OfflinePage
) -> None:
    owner = owner_of(committed, "Bakery", "Avi Bakery", "avi@example.com")
    page = offline_page.page
    sign_in(page, live_server, owner)
    page.get_by_role("link", name="New order").click()
    for label, value in (
        ("First name *", "Dan"),
        ("Last name *", "Cohen"),
        ("Phone *", "0501234567"),
        ("Street *", "Herzl"),
        ("Building *", "5"),
    ):
        page.get_by_label(label).fill(value)
    shot(page, "new-order")
    page.get_by_role("button", name="Create order").click()
    page.get_by_label("Cancel reason").fill("Customer called to cancel")
    page.get_by_role("button", name="Cancel order").click()
    expect(page.locator("#order-status")).to_have_text("canceled")
    expect(page.locator("#cancel-reason")).to_have_text("Customer called to cancel")
    expect(page.locator(".timeline")).to_contain_text("Customer called to cancel")
    no_csp_violations(offline_page)


def test_suspending_the_user_ends_their_console_session_at_once(
    live_server: str,
    committed: Session,
    offline_page: OfflinePage,
    second_page: OfflinePage,
) -> None:
    owner = owner_of(committed, "Florist", "Rina Florist", "rina@example.com")
    admin = make_user(committed, role=Role.ADMIN, email="root@example.com")
    page = offline_page.page
    sign_in(page, live_server, owner)
    store_id = committed.scalar(
        select(StoreMembership.store_id).where(StoreMembership.user_id == owner.id)
    )
    with httpx.Client(base_url=live_server, headers=auth_headers(committed, admin)) as api:
        # A suspended store's users are suspended with it: their sessions end.
        response = api.post(f"/v1/admin/stores/{store_id}/status", json={"status": "suspended"})
        assert response.is_success, response.text
    # The open board's stream is closed by the server; the page lands on sign-in by itself.
    expect(page).to_have_url(f"{live_server}/console/login?next=%2Fconsole", timeout=30_000)
    page.goto(f"{live_server}/console/orders/new")
    expect(page.get_by_role("heading", name="Sign in to Zariz")).to_be_visible()
    shot(page, "sign-in")


def test_export_downloads_the_csv_of_the_chosen_days(
    live_server: str, committed: Session, offline_page: OfflinePage
) -> None:
    owner = owner_of(committed, "Deli", "Gil Deli", "gil@example.com")
    page = offline_page.page
    sign_in(page, live_server, owner)
    page.get_by_role("link", name="New order").click()
    for label, value in (
        ("First name *", "Maya"),
        ("Last name *", "Peretz"),
        ("Phone *", "0521112233"),
        ("Street *", "Allenby"),
        ("Building *", "12"),
    ):
        page.get_by_label(label).fill(value)
    page.get_by_role("button", name="Create order").click()
    order_id = page.url.rsplit("/", 1)[1]
    page.get_by_role("link", name="Export").click()
    shot(page, "export")
    with page.expect_download() as download:
        page.get_by_role("button", name="Download CSV").click()
    assert download.value.suggested_filename == "orders.csv"
    content = Path(download.value.path()).read_text(encoding="utf-8-sig")
    assert content.splitlines()[0].startswith("id,")
    assert content.splitlines()[1].startswith(f"{order_id},")
    assert "Peretz" in content


def test_admin_manages_couriers_and_stores(
    live_server: str, committed: Session, offline_page: OfflinePage
) -> None:
    admin = make_user(committed, role=Role.ADMIN, name="Dana Dispatch", email="dana@example.com")
    page = offline_page.page
    sign_in(page, live_server, admin)

    page.get_by_role("link", name="Couriers").click()
    page.get_by_label("Name *").fill("אבי שליח")
    page.get_by_label("Phone").fill("+972 50 777 1234")
    page.get_by_label("Password *").fill("short")
    page.get_by_role("button", name="Create courier").click()
    expect(page.locator("#e-password")).to_be_visible()
    page.get_by_label("Password *").fill("a long password")
    page.get_by_role("button", name="Create courier").click()
    expect(page.get_by_role("heading", name="אבי שליח")).to_be_visible()
    page.get_by_label("Status").select_option("suspended")
    page.get_by_role("button", name="Set status").click()
    expect(page.locator("#courier-status")).to_have_text("suspended")
    page.get_by_label("Status").select_option("active")
    page.get_by_role("button", name="Set status").click()
    expect(page.locator("#courier-status")).to_have_text("active")
    page.get_by_label("New password *").fill("another long one")
    page.get_by_role("button", name="Reset password").click()
    expect(page.locator("#e-password")).to_have_count(0)
    shot(page, "courier")
    page.get_by_role("link", name="All couriers").click()
    expect(page.locator("#couriers")).to_contain_text("0/8 boxes")
    shot(page, "couriers")

    page.get_by_role("link", name="Stores").click()
    page.get_by_label("Name *").fill("פיצה בדרך")
    page.get_by_label("Pickup address").fill("רחוב הרצל 10, תל אביב")
    page.get_by_role("button", name="Create store").click()
    expect(page.get_by_role("heading", name="פיצה בדרך")).to_be_visible()
    page.locator("#f-owner_email").fill("pizza@example.com")
    page.locator("#f-owner_password").fill("pizza password")
    page.get_by_role("button", name="Save owner sign-in").click()
    expect(page.locator(".card").filter(has_text="Owner sign-in")).to_contain_text(
        "pizza@example.com"
    )
    page.get_by_label("Status").select_option("suspended")
    page.get_by_role("button", name="Set status").click()
    expect(page.locator("#store-status")).to_have_text("suspended")
    shot(page, "store")
    page.get_by_role("link", name="All stores").click()
    shot(page, "stores")
    page.get_by_role("link", name="Today").click()
    expect(page.locator("#stat-open")).to_be_visible()
    no_csp_violations(offline_page)


def test_a_store_owner_on_a_phone_uses_the_keyboard(
    live_server: str, committed: Session, browser: Browser
) -> None:
    owner = owner_of(committed, "Kiosk", "Tal Kiosk", "tal@example.com")
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    offline = OfflinePage(context.new_page())
    page = offline.page
    page.set_default_timeout(EXPECT_TIMEOUT_MS)
    try:
        page.goto(f"{live_server}/console")
        # Keyboard only: the sign-in form's fields are reached and sent without a pointer.
        expect(page.get_by_label("Email or phone")).to_be_focused()
        page.keyboard.type(owner.email or "")
        page.keyboard.press("Tab")
        page.keyboard.type(PASSWORD)
        page.keyboard.press("Enter")
        expect(page.get_by_role("heading", name="Board")).to_be_visible()
        page.keyboard.press("Tab")
        expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
        # Nothing is wider than the phone's screen.
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390
        shot(page, "board-phone")
        page.goto(f"{live_server}/console/orders/new")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390
    finally:
        context.close()
    assert offline.foreign == []


def test_a_required_photo_is_enforced_and_the_store_sees_its_thumbnail(
    live_server: str,
    committed: Session,
    offline_page: OfflinePage,
    second_page: OfflinePage,
) -> None:
    owner = owner_of(committed, "מאפיית השכונה", "Lior Bakery", "lior@example.com")
    admin = make_user(committed, role=Role.ADMIN, name="Dana Dispatch", email="dana@example.com")
    courier = make_user(committed, role=Role.COURIER, name="Yossi Courier", capacity_boxes=10)
    store_id = committed.scalar(
        select(StoreMembership.store_id).where(StoreMembership.user_id == owner.id)
    )
    committed.commit()  # ends the read: on SQLite, an open one would block the server's writes
    admin_page, store_page = second_page.page, offline_page.page

    # The admin makes a photo required for a delivery, on the store's page.
    sign_in(admin_page, live_server, admin)
    admin_page.goto(f"{live_server}/console/stores/{store_id}")
    admin_page.get_by_label("Delivered: photo").select_option("required")
    admin_page.get_by_role("button", name="Save proof policy").click()
    expect(admin_page.get_by_label("Delivered: photo")).to_have_value("required")
    expect(admin_page.locator("#proof-policy-form .error")).to_have_count(0)
    shot(admin_page, "store-proof-policy")

    # The courier, through the API, cannot deliver without one; with one, they can.
    with (
        httpx.Client(base_url=live_server, headers=auth_headers(committed, owner)) as shop,
        httpx.Client(base_url=live_server, headers=auth_headers(committed, admin)) as dispatch,
        httpx.Client(base_url=live_server, headers=auth_headers(committed, courier)) as api,
    ):
        created = shop.post("/v1/orders", json=ORDER_BODY)
        assert created.status_code == 201, created.text
        order_id = created.json()["id"]
        assigned = dispatch.post(f"/v1/orders/{order_id}/assign", json={"courier_id": courier.id})
        assert assigned.is_success, assigned.text
        assert api.post(f"/v1/orders/{order_id}/accept").is_success
        assert api.post(f"/v1/orders/{order_id}/status", json={"status": "picked_up"}).is_success
        refused = api.post(f"/v1/orders/{order_id}/status", json={"status": "delivered"})
        assert refused.status_code == 409, refused.text
        assert refused.json()["code"] == "proof_required"
        uploaded = api.post(
            f"/v1/orders/{order_id}/proofs",
            data={"kind": "photo", "stage": "dropoff"},
            files={"file": ("door.jpg", jpeg(size=(800, 600)), "image/jpeg")},
        )
        assert uploaded.status_code == 201, uploaded.text
        proof_id = uploaded.json()["id"]
        delivered = api.post(f"/v1/orders/{order_id}/status", json={"status": "delivered"})
        assert delivered.is_success, delivered.text

    # The store sees the photo on the order's page: loaded from the console, under its CSP.
    sign_in(store_page, live_server, owner)
    store_page.goto(f"{live_server}/console/orders/{order_id}")
    expect(store_page.locator("#order-status")).to_have_text("delivered")
    thumbnail = store_page.locator(f"#proof-{proof_id} img")
    expect(thumbnail).to_be_visible()
    expect(store_page.locator(f"#proof-{proof_id}")).to_contain_text("Yossi Courier")
    store_page.wait_for_function(
        "id => { const i = document.querySelector(`#proof-${id} img`);"
        " return i.complete && i.naturalWidth > 0; }",
        arg=proof_id,
    )
    full = store_page.request.get(f"{live_server}/console/orders/{order_id}/proofs/{proof_id}")
    assert (full.status, full.headers["content-type"]) == (200, "image/jpeg")
    shot(store_page, "order-proofs")
    no_csp_violations(offline_page, second_page)
