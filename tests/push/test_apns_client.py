"""The APNs client against the local fake: HTTP/2, the provider token, and each outcome."""

import socket
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import jwt
import pytest
import trustme

from app.core.config import Settings
from app.push.apns import (
    PRODUCTION_URL,
    SANDBOX_URL,
    ApnsClient,
    ApnsConfigError,
    ApnsResult,
    Outcome,
)
from tests.fake_apns import (
    BAD_TOKEN,
    ERROR,
    GONE,
    KEY_ID,
    TEAM_ID,
    TOO_MANY,
    TOPIC,
    FakeApns,
    Reply,
)
from tests.push.conftest import SigningKey

TOKEN = "ab" * 32
PAYLOAD = {"aps": {"content-available": 1}, "type": "order.created", "order_id": 7}


def send(client: ApnsClient, token: str = TOKEN, environment: str = "production") -> ApnsResult:
    return client.send(token=token, environment=environment, payload=PAYLOAD)


@pytest.fixture
def client(apns_settings: Settings) -> Iterator[ApnsClient]:
    apns = ApnsClient(apns_settings)
    yield apns
    apns.close()


def test_sends_a_background_push_over_http2_with_a_signed_provider_token(
    client: ApnsClient, fake_apns: FakeApns
) -> None:
    assert send(client) == ApnsResult(Outcome.SENT, 200)
    [seen] = fake_apns.requests(TOKEN)
    assert seen.http_version == "2"
    assert seen.headers["apns-topic"] == TOPIC
    assert seen.headers["apns-push-type"] == "background"
    assert seen.headers["apns-priority"] == "5"
    assert seen.payload == PAYLOAD
    # The fake verified the ES256 signature with the public key; these are its claims.
    assert seen.claims["iss"] == TEAM_ID
    assert isinstance(seen.claims["iat"], int)


def test_concurrent_pushes_are_streams_of_one_connection(
    client: ApnsClient, fake_apns: FakeApns
) -> None:
    fake_apns.set_default(Reply(delay=0.05))
    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda i: send(client, f"{i:064x}"), range(64)))
    assert {r.outcome for r in results} == {Outcome.SENT}
    assert len({seen.client for seen in fake_apns.requests()}) == 1


def test_provider_token_is_reused_and_renewed_after_50_minutes(
    apns_settings: Settings, fake_apns: FakeApns
) -> None:
    now = [1_000_000.0]
    client = ApnsClient(apns_settings, clock=lambda: now[0])
    try:
        first = client.tokens.current()
        now[0] += 49 * 60
        assert client.tokens.current() == first
        now[0] += 60
        renewed = client.tokens.current()
        assert renewed != first
        assert jwt.get_unverified_header(renewed)["kid"] == KEY_ID
    finally:
        client.close()


def test_one_provider_token_serves_many_pushes(client: ApnsClient, fake_apns: FakeApns) -> None:
    for token in ("01" * 32, "02" * 32, "03" * 32):
        send(client, token)
    assert len({seen.provider_token for seen in fake_apns.requests()}) == 1


def test_expired_provider_token_is_renewed_at_once_and_the_push_sent(
    client: ApnsClient, fake_apns: FakeApns
) -> None:
    send(client)
    fake_apns.expire_seen_tokens()
    assert send(client).outcome is Outcome.SENT
    first, refused, retried = fake_apns.requests(TOKEN)
    assert (first.status, refused.status, refused.reason) == (200, 403, "ExpiredProviderToken")
    assert retried.status == 200
    assert retried.provider_token != first.provider_token
    # The renewed token is the one kept for later pushes.
    send(client)
    assert fake_apns.requests(TOKEN)[-1].provider_token == retried.provider_token


@pytest.mark.parametrize(
    ("reply", "outcome"),
    [
        (GONE, Outcome.GONE),
        (BAD_TOKEN, Outcome.GONE),
        (Reply(400, "Unregistered"), Outcome.GONE),
        (TOO_MANY, Outcome.RETRY),
        (ERROR, Outcome.RETRY),
        (Reply(503, "ServiceUnavailable"), Outcome.RETRY),
        (Reply(403, "InvalidProviderToken"), Outcome.RETRY),
        (Reply(413, "PayloadTooLarge"), Outcome.REJECTED),
    ],
)
def test_apns_answers_map_to_outcomes(
    client: ApnsClient, fake_apns: FakeApns, reply: Reply, outcome: Outcome
) -> None:
    fake_apns.script(TOKEN, reply)
    assert send(client) == ApnsResult(outcome, reply.status, reply.reason)


def test_a_network_error_is_retryable(apns_settings: Settings) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    settings = apns_settings.model_copy(update={"apns_url": f"http://127.0.0.1:{closed_port}"})
    client = ApnsClient(settings)
    try:
        result = send(client)
    finally:
        client.close()
    assert result.outcome is Outcome.RETRY
    assert result.reason == "network error: ConnectError"


def test_device_environment_picks_apples_host_unless_apns_url_is_set(
    apns_settings: Settings,
) -> None:
    client = ApnsClient(apns_settings.model_copy(update={"apns_url": None}))
    try:
        assert client.base_url("production") == PRODUCTION_URL
        assert client.base_url("sandbox") == SANDBOX_URL
    finally:
        client.close()


@pytest.mark.parametrize(
    ("update", "message"),
    [
        ({"apns_key": "not a key"}, "not a PEM private key"),
        ({"apns_key": None, "apns_key_file": Path("/nonexistent/AuthKey.p8")}, "cannot read"),
        ({"apns_topic": None}, "APNS_TOPIC"),
    ],
)
def test_bad_configuration_fails_at_start(
    apns_settings: Settings, update: dict[str, object], message: str
) -> None:
    with pytest.raises(ApnsConfigError, match=message):
        ApnsClient(apns_settings.model_copy(update=update))


def test_key_file_and_escaped_newlines_are_accepted(
    apns_settings: Settings, signing_key: SigningKey, tmp_path: Path, fake_apns: FakeApns
) -> None:
    key_file = tmp_path / "AuthKey.p8"
    key_file.write_text(signing_key.pem)
    for update in (
        {"apns_key": None, "apns_key_file": key_file},
        {"apns_key": signing_key.pem.replace("\n", "\\n")},
    ):
        client = ApnsClient(apns_settings.model_copy(update=update))
        try:
            assert send(client).outcome is Outcome.SENT
        finally:
            client.close()


@pytest.mark.slow
def test_https_apns_url_speaks_http2_over_tls(
    apns_settings: Settings, signing_key: SigningKey, tmp_path: Path
) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    certfile, keyfile, cafile = tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(certfile))
    cert.private_key_pem.write_to_path(str(keyfile))
    ca.cert_pem.write_to_path(str(cafile))
    server = FakeApns(signing_key.public, certfile=certfile, keyfile=keyfile).start()
    try:
        assert server.url.startswith("https://")
        settings = apns_settings.model_copy(update={"apns_url": server.url, "apns_ca_file": cafile})
        client = ApnsClient(settings)
        try:
            assert send(client).outcome is Outcome.SENT
        finally:
            client.close()
        [seen] = server.requests(TOKEN)
        assert seen.http_version == "2"
        # Without the CA the certificate is not trusted: a network error, retried later.
        untrusting = ApnsClient(settings.model_copy(update={"apns_ca_file": None}))
        try:
            assert send(untrusting).outcome is Outcome.RETRY
        finally:
            untrusting.close()
    finally:
        server.stop()
