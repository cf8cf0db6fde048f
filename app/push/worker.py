"""The push worker: claims due jobs, sends them to APNs concurrently, records what happened.

It sleeps until there is work: NOTIFY on Postgres (from any process) or the after-commit signal
of its own process wake it at once, and a timed wake-up catches retries and leases coming due.
Runs as `zariz worker` or, with PUSH_WORKER=inline, as a thread of the API process.
"""

import logging
import threading
import time
from concurrent.futures import Future
from datetime import timedelta

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import sessionmaker

from app.core.config import PushWorkerMode, Settings
from app.core.metrics import PUSH_QUEUE_DEPTH
from app.db.base import utcnow
from app.db.listen import PgListener
from app.db.session import is_postgres
from app.push.apns import ApnsClient, ApnsConfigError, ApnsResult, Outcome, apns_configured
from app.push.jobs import Claimed, Done, claim_due, queue_stats, record_outcomes, skip_jobs
from app.services import signals
from app.services.maintenance import release_stale_claims, run_housekeeping

log = logging.getLogger("zariz.push")

UNCONFIGURED = "APNs is not configured"
LISTENER_NAME = "zariz-push-listener"
# How long a database outage makes the loop wait before trying again.
ERROR_PAUSE = 1.0
# Expired sessions and idempotency keys are purged at start and then this often (seconds).
HOUSEKEEPING_INTERVAL = 3600.0
# Accepted orders past AUTO_RELEASE_AFTER_MINUTES are looked for this often (seconds).
RELEASE_INTERVAL = 60.0


class PushWorker:
    def __init__(
        self, *, settings: Settings, engine: Engine, client: ApnsClient | None = None
    ) -> None:
        self.settings = settings
        self._engine = engine
        self._sessions = sessionmaker(bind=engine, expire_on_commit=False, autoflush=False)
        self._owns_client = client is None
        if client is None and apns_configured(settings):
            client = ApnsClient(settings)  # a bad key fails here, at start, not per push
        self._client = client
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._listener: PgListener | None = None
        self._unrecorded: list[Done] = []
        self._housekeeping_due = time.monotonic()
        self._release_due = time.monotonic()
        self.crashed = False

    # -- control ---------------------------------------------------------------------------

    def wake(self) -> None:
        self._wake.set()

    def _on_local_commit(self, _payloads: list[str]) -> None:
        self._wake.set()

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="push-worker", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Asks the loop to finish: no new claims, in-flight sends complete and are recorded."""
        self._stopping.set()
        self._wake.set()

    def join(self, timeout: float | None = None) -> bool:
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True

    def run(self) -> None:
        if self._client is None:
            log.warning("%s: due push jobs will be marked skipped", UNCONFIGURED)
        signals.subscribe(signals.PUSH, self._on_local_commit)
        if is_postgres(self._engine):
            url = self.settings.database_url_direct or self._engine.url.render_as_string(
                hide_password=False
            )
            self._listener = PgListener(
                url, signals.PUSH, self.wake, application_name=LISTENER_NAME
            )
            self._listener.start()
        log.info("push worker started")
        try:
            self._loop()
        except Exception:
            # Logged loudly and surfaced (`zariz worker` exits 1 so its supervisor restarts it);
            # the jobs it held come back when their leases run out.
            self.crashed = True
            log.exception("push worker crashed")
        finally:
            signals.unsubscribe(signals.PUSH, self._on_local_commit)
            if self._listener is not None:
                self._listener.stop()
            if self._client is not None and self._owns_client:
                self._client.close()
            log.info("push worker stopped")

    # -- the loop --------------------------------------------------------------------------

    def _loop(self) -> None:
        in_flight: dict[Future[ApnsResult], Claimed] = {}
        capacity = self.settings.push_concurrency
        while True:
            # Cleared before looking for work, so a wake-up that arrives meanwhile is kept.
            self._wake.clear()
            for future in [f for f in in_flight if f.done()]:
                job = in_flight.pop(future)
                self._unrecorded.append(Done(job, _result(future, job)))
            if self._unrecorded and not self._record():
                if not self._stopping.is_set():
                    self._stopping.wait(ERROR_PAUSE)
                elif in_flight:
                    time.sleep(ERROR_PAUSE)
                else:
                    # Not lost: the leases run out and these jobs are sent again.
                    log.error("stopping with %d push outcomes unrecorded", len(self._unrecorded))
                    return
                continue
            if self._stopping.is_set():
                if not in_flight:
                    return
                self._wake.wait()  # each finishing send wakes us
                continue
            free = capacity - len(in_flight)
            # Under load, claim in batches of at least half the capacity rather than a job per
            # finished send; an idle worker claims whatever is there at once.
            worth_claiming = free >= max(1, capacity // 2) or not in_flight
            try:
                claimed = self._claim(free) if worth_claiming else []
            except SQLAlchemyError:
                log.exception("claiming push jobs failed")
                self._stopping.wait(ERROR_PAUSE)
                continue
            for job in claimed:
                sending = next((f for f, j in in_flight.items() if j.job_id == job.job_id), None)
                if sending is not None:
                    # Our own lease ran out while the send was still going (a stalled
                    # connection): keep that send, under the new claim's fence.
                    in_flight[sending] = job
                    continue
                future = self._send(job)
                in_flight[future] = job
                future.add_done_callback(lambda _f: self._wake.set())
            timeout = self.settings.push_poll_interval
            if worth_claiming and len(claimed) < free:
                # Nothing else is due: tidy up if it is time, then sleep until the next job is
                # due, or until woken.
                self._housekeeping()
                self._release_stale()
                timeout = min(timeout, self._until_next_due(), self._until_release())
            # The floor keeps a job another worker is claiming this instant from spinning us.
            self._wake.wait(max(timeout, 0.01))

    def _claim(self, limit: int) -> list[Claimed]:
        with self._sessions() as session:
            claimed = claim_due(
                session, limit=limit, lease_seconds=self.settings.push_lease_seconds
            )
            if claimed and self._client is None:
                skip_jobs(session, claimed, UNCONFIGURED)
                return []
            return claimed

    def _send(self, job: Claimed) -> "Future[ApnsResult]":
        assert self._client is not None
        return self._client.submit(
            token=job.token, environment=job.environment, payload=job.payload
        )

    def _record(self) -> bool:
        try:
            with self._sessions() as session:
                record_outcomes(session, self._unrecorded, self.settings)
        except SQLAlchemyError:
            # Kept and written on the next turn; if this process dies first, the lease brings
            # the jobs back and they are sent again (at least once, never lost).
            log.exception("recording push outcomes failed")
            return False
        self._unrecorded.clear()
        return True

    def _housekeeping(self) -> None:
        if time.monotonic() < self._housekeeping_due:
            return
        self._housekeeping_due = time.monotonic() + HOUSEKEEPING_INTERVAL
        try:
            with self._sessions() as session:
                run_housekeeping(session)
        except SQLAlchemyError:
            log.exception("housekeeping failed; trying again in an hour")

    def _release_stale(self) -> None:
        if self.settings.auto_release_after_minutes <= 0:
            return
        if time.monotonic() < self._release_due:
            return
        self._release_due = time.monotonic() + RELEASE_INTERVAL
        try:
            with self._sessions() as session:
                release_stale_claims(
                    session, after_minutes=self.settings.auto_release_after_minutes
                )
        except SQLAlchemyError:
            log.exception("releasing stale accepted orders failed; trying again in a minute")

    def _until_release(self) -> float:
        if self.settings.auto_release_after_minutes <= 0:
            return self.settings.push_poll_interval
        return max(0.0, self._release_due - time.monotonic())

    def _until_next_due(self) -> float:
        try:
            with self._sessions() as session:
                depth, next_due = queue_stats(session)
        except SQLAlchemyError:
            log.exception("reading the push queue failed")
            return ERROR_PAUSE
        PUSH_QUEUE_DEPTH.set(depth)
        if next_due is None:
            return self.settings.push_poll_interval
        # A little slack so the job is due by the time we claim it.
        return max(0.0, (next_due - utcnow() + timedelta(milliseconds=5)).total_seconds())


def _result(future: "Future[ApnsResult]", job: Claimed) -> ApnsResult:
    try:
        return future.result()
    except Exception as exc:
        # A bug must not lose the job: it is retried and ends dead like any failure.
        log.error("push send crashed", exc_info=exc, extra={"job_id": job.job_id})
        return ApnsResult(Outcome.RETRY, reason=f"client error: {type(exc).__name__}")


def start_inline(settings: Settings, engine: Engine) -> PushWorker | None:
    """The worker as a thread of this process (PUSH_WORKER=inline), or None."""
    if settings.push_worker != PushWorkerMode.INLINE:
        return None
    try:
        worker = PushWorker(settings=settings, engine=engine)
    except ApnsConfigError as exc:
        log.error("push worker not started: %s", exc)
        return None
    worker.start()
    return worker


def run_until_signalled(worker: PushWorker) -> bool:
    """Runs the worker in a thread so the main thread stays free to handle SIGTERM/SIGINT.

    Returns whether it stopped cleanly (False: it crashed).
    """
    worker.start()
    while not worker.join(timeout=1.0):
        pass
    return not worker.crashed
