"""Both clients parse every 2xx as JSON: the whole v1 surface declares JSON successes."""

from fastapi.testclient import TestClient

# Not JSON on purpose, and neither client parses them as JSON.
NOT_JSON = {
    ("get", "/v1/orders/export.csv"),
    ("get", "/v1/events/sse"),
    # A proof's image bytes, shown as an image (its JSON description is in the proof list).
    ("get", "/v1/orders/{order_id}/proofs/{proof_id}"),
}


def test_every_v1_success_has_a_json_body(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    checked = 0
    for path, operations in spec["paths"].items():
        if not path.startswith("/v1/"):
            continue
        for method, operation in operations.items():
            if (method, path) in NOT_JSON:
                continue
            for status, response in operation["responses"].items():
                if not status.startswith("2"):
                    continue
                assert status != "204", f"{method.upper()} {path} answers without a body"
                assert "application/json" in response.get("content", {}), (method, path, status)
                checked += 1
    assert checked > 40
