"""Push fixtures: a local fake APNs, settings pointing at it, and a database with real commits."""

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from app.core.config import Settings, get_settings
from app.push.worker import PushWorker
from tests.fake_apns import KEY_ID, TEAM_ID, TOPIC, FakeApns, new_signing_key


@dataclass(frozen=True)
class SigningKey:
    pem: str
    public: EllipticCurvePublicKey


@pytest.fixture(scope="session")
def signing_key() -> SigningKey:
    pem, public = new_signing_key()
    return SigningKey(pem, public)


@pytest.fixture(scope="session")
def _fake_server(signing_key: SigningKey) -> Iterator[FakeApns]:
    server = FakeApns(signing_key.public).start()
    yield server
    server.stop()


@pytest.fixture
def fake_apns(_fake_server: FakeApns) -> Iterator[FakeApns]:
    _fake_server.reset()
    yield _fake_server
    _fake_server.release()


@pytest.fixture
def apns_settings(
    monkeypatch: pytest.MonkeyPatch, signing_key: SigningKey, fake_apns: FakeApns
) -> Settings:
    """The process's settings pointed at the fake, with retries fast enough for a test."""
    settings = get_settings()
    for name, value in {
        "apns_key": signing_key.pem,
        "apns_key_id": KEY_ID,
        "apns_team_id": TEAM_ID,
        "apns_topic": TOPIC,
        "apns_url": fake_apns.url,
        "apns_timeout": 5.0,
        "push_max_attempts": 3,
        "push_backoff_base": 0.02,
        "push_backoff_max": 0.1,
        "push_poll_interval": 0.5,
        "push_lease_seconds": 5.0,
        "push_concurrency": 16,
    }.items():
        monkeypatch.setattr(settings, name, value)
    return settings


@pytest.fixture
def live(committed: Session) -> sessionmaker[Session]:
    """New sessions on the `committed` database (tests/live.py), which empties it afterwards."""
    return sessionmaker(bind=committed.get_bind(), expire_on_commit=False, autoflush=False)


StartWorker = Callable[..., PushWorker]


@pytest.fixture
def start_worker(
    engine: Engine, apns_settings: Settings, live: sessionmaker[Session]
) -> Iterator[StartWorker]:
    # Depends on `live` so workers stop before the tables are cleaned.
    workers: list[PushWorker] = []

    def start(settings: Settings | None = None) -> PushWorker:
        worker = PushWorker(settings=settings or apns_settings, engine=engine)
        worker.start()
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()
    for worker in workers:
        assert worker.join(10), "push worker did not stop"
