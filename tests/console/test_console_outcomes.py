"""Console: redeliver and return a failed order, courier duty, and the system in the timeline."""

import re
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.db.base import utcnow
from app.db.models import Order, Role, Store
from app.services.order_lifecycle import release_stale_orders
from tests.builders import make_order, make_store, make_store_user, make_user
from tests.console.helpers import sign_in


def _failed(db: Session, store: Store) -> Order:
    order = make_order(db, store=store, status="failed")
    order.failed_at = utcnow()
    order.failure_reason_code = "wrong_address"
    order.failure_reason = "No such building"
    db.commit()
    return order


def test_a_store_user_redelivers_a_failed_order_to_the_pool(
    client: TestClient, db: Session
) -> None:
    store = make_store(db)
    order = _failed(db, store)
    csrf = sign_in(client, db, make_store_user(db, store=store))
    page = client.get(f"/console/orders/{order.id}")
    assert 'id="redeliver-form"' in page.text
    assert 'id="return-form"' in page.text
    response = client.post(
        f"/console/orders/{order.id}/redeliver", data={"csrf_token": csrf, "courier_id": ""}
    )
    assert response.status_code == 200, response.text
    db.refresh(order)
    assert (order.status, order.courier_id, order.failure_reason_code) == ("new", None, None)
    after = client.get(f"/console/orders/{order.id}").text
    assert "redelivered" in after
    assert 'id="redeliver-form"' not in after


def test_the_picker_shows_off_duty_couriers_disabled_and_refuses_them(
    client: TestClient, db: Session
) -> None:
    store = make_store(db)
    order = _failed(db, store)
    resting = make_user(db, name="Resting Rina")
    resting.on_duty = False
    db.commit()
    working = make_user(db, name="Working Wael")
    csrf = sign_in(client, db, make_user(db, role=Role.ADMIN))
    page = client.get(f"/console/orders/{order.id}").text
    resting_option = re.search(
        rf'<option value="{resting.id}"([^>]*)>Resting Rina — off duty', page
    )
    working_option = re.search(rf'<option value="{working.id}"([^>]*)>Working Wael — load', page)
    assert resting_option is not None
    assert "disabled" in resting_option[1]
    assert working_option is not None
    assert "disabled" not in working_option[1]
    # A form sent anyway (an old page, a crafted post): the error shows next to the action.
    refused = client.post(
        f"/console/orders/{order.id}/redeliver",
        data={"csrf_token": csrf, "courier_id": str(resting.id)},
    )
    assert refused.status_code == 409
    assert 'id="e-redeliver"' in refused.text
    assert "off duty" in refused.text
    db.refresh(order)
    assert order.status == "failed"
    sent = client.post(
        f"/console/orders/{order.id}/redeliver",
        data={"csrf_token": csrf, "courier_id": str(working.id)},
    )
    assert sent.status_code == 200
    db.refresh(order)
    assert (order.status, order.courier_id) == ("assigned", working.id)


def test_return_stamps_the_order_and_a_second_return_is_shown_as_refused(
    client: TestClient, db: Session
) -> None:
    store = make_store(db)
    order = _failed(db, store)
    csrf = sign_in(client, db, make_store_user(db, store=store))
    assert client.post(f"/console/orders/{order.id}/return", data={"csrf_token": csrf}).is_success
    db.refresh(order)
    assert order.returned_at is not None
    page = client.get(f"/console/orders/{order.id}").text
    assert 'id="order-returned"' in page
    assert 'id="return-form"' not in page
    assert 'id="redeliver-form"' not in page
    again = client.post(f"/console/orders/{order.id}/return", data={"csrf_token": csrf})
    assert again.status_code == 409
    assert 'id="e-return"' in again.text


def test_another_stores_user_cannot_redeliver_or_return(client: TestClient, db: Session) -> None:
    order = _failed(db, make_store(db))
    csrf = sign_in(client, db, make_store_user(db, store=make_store(db)))
    for action in ("redeliver", "return"):
        response = client.post(f"/console/orders/{order.id}/{action}", data={"csrf_token": csrf})
        assert response.status_code == 404
    db.refresh(order)
    assert (order.status, order.returned_at) == ("failed", None)


def test_admin_sets_duty_from_the_courier_page_and_the_list_shows_it(
    client: TestClient, db: Session
) -> None:
    courier = make_user(db, name="Duty Dana")
    csrf = sign_in(client, db, make_user(db, role=Role.ADMIN))
    page = client.get(f"/console/couriers/{courier.id}").text
    assert "Set off duty" in page
    client.post(
        f"/console/couriers/{courier.id}/duty", data={"csrf_token": csrf, "on_duty": "false"}
    )
    db.refresh(courier)
    assert courier.on_duty is False
    assert "Set on duty" in client.get(f"/console/couriers/{courier.id}").text
    table = client.get("/console/couriers/table").text
    row = table[table.index(f'data-courier-id="{courier.id}"') :]
    assert "off duty" in row[: row.index("</tr>")]
    bad = client.post(
        f"/console/couriers/{courier.id}/duty", data={"csrf_token": csrf, "on_duty": "later"}
    )
    assert bad.status_code == 422
    assert 'id="e-on_duty"' in bad.text


def test_the_timeline_names_the_system_for_an_auto_release(client: TestClient, db: Session) -> None:
    order = make_order(db, store=make_store(db), status="accepted", courier=make_user(db))
    order.accepted_at = utcnow() - timedelta(minutes=45)
    db.commit()
    assert release_stale_orders(db, after_minutes=20) == [order.id]
    sign_in(client, db, make_user(db, role=Role.ADMIN))
    page = client.get(f"/console/orders/{order.id}").text
    assert "released" in page
    assert "by the system" in page
    assert "not_picked_up_in_time" in page
