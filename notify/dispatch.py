"""The durable outbox, delivery side: take due pages from the store, send them, record what happened.

At least once: a page is settled as sent only after its receiver accepted
it, so a crash in between sends it again after the restart, with the same
dedup key and delivery id for the receiver to collapse.  Never after
success: a sent row is never taken again.  A failed attempt is retried with
exponential backoff (and at least what a receiver's Retry-After asked), a
refusal that retrying cannot fix fails at once, and a page still not
delivered ``give_up_after`` its planning fails with the last error; either
way ``accesswatch pages`` shows it.

A receiver that failed is left to rest until its retry is due, so an outage
costs one timeout per backoff step, not one per waiting page; the steps
grow with the receiver's failures in a row, whichever of its pages was
tried, and start again from ``retry_initial`` once it accepts one.  The rest
is kept in the store (``store.outbox.ReceiverRest``), so every process that
delivers (``run``, ``pages --deliver``, ``ack``) honours it, a Retry-After
above all.  Escalations are checked against the incident when they fall due
and cancelled if a person acknowledged or closed it meanwhile; a page sent
again after a failure says the incident as it is then (``notify.as_now``).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from models.alert import AlertStatus
from models.config import Delivery
from models.page import Notification, NotificationStatus, Page, PageKind
from notify.as_now import as_now
from notify.base import DeliveryError, Notifier, ReaderGone
from notify.outbox import Clock, wall_clock
from store.base import Store
from store.outbox import OutboxQuery, ReceiverRest, Settlement

log = logging.getLogger(__name__)


@dataclass(slots=True)
class DeliveryReport:
    sent: int = 0
    # by receiver: a page goes to each receiver its route names, so ``sent`` counts a page once per receiver
    sent_to: Counter[str] = field(default_factory=Counter)
    retrying: int = 0
    failed: int = 0
    cancelled: int = 0
    errors: list[str] = field(default_factory=list)  # "receiver: error", in order
    # the receivers whose reader went away (``ReaderGone``): their pages wait for another process
    gone: set[str] = field(default_factory=set)

    def add(self, other: DeliveryReport) -> None:
        self.sent += other.sent
        self.sent_to.update(other.sent_to)
        self.retrying += other.retrying
        self.failed += other.failed
        self.cancelled += other.cancelled
        self.errors = (self.errors + other.errors)[-100:]  # a long run keeps the latest
        self.gone |= other.gone


def backoff(delivery: Delivery, attempt: int, notification_id: str) -> float:
    """Seconds before retry ``attempt`` (1 = the first retry): doubling, capped, with a spread.

    The spread (75-100%, derived from the id, so a test can predict it) keeps
    the pages that piled up during an outage from all retrying in the same
    second when the receiver comes back.
    """
    delay = min(delivery.retry_max, delivery.retry_initial * 2 ** min(attempt - 1, 32))
    spread = int.from_bytes(hashlib.blake2b(f"{notification_id}/{attempt}".encode(), digest_size=2).digest()) / 65535
    return delay * (0.75 + 0.25 * spread)


def next_try(row: Notification, rests: Mapping[str, ReceiverRest]) -> datetime:
    """When a waiting page is really tried: not before it is due, nor before its receiver's rest ends, nor
    before the lease of a process that took it runs out.

    A receiver that failed (a Retry-After, a backoff) is left alone until its
    retry, so the pages behind it, due since they were planned, wait as long.
    A page held under a lease is another process's to send, or, if that one
    died, nobody's until the lease runs out.
    """
    rest = rests.get(row.receiver)
    holds = (rest.until if rest is not None else None, row.leased_until)
    return max([row.due_at, *(moment for moment in holds if moment is not None)])


class Dispatcher:
    def __init__(
        self,
        store: Store,
        receivers: Mapping[str, Notifier],
        delivery: Delivery,
        clock: Clock = wall_clock,
    ) -> None:
        self.store = store
        self.receivers = receivers
        self.delivery = delivery
        self.clock = clock
        self.gone: set[str] = set()  # receivers whose reader went away: given no more pages by this process

    @property
    def lease_seconds(self) -> float:
        # long enough for the slowest delivery (SMTP: connect, STARTTLS, login, send, each with the timeout)
        return self.delivery.timeout * 6 + 30

    def deliver_due(
        self, incident_id: str | None = None, limit: int = 10_000, deadline: datetime | None = None
    ) -> DeliveryReport:
        """Send what is due now, one at a time, until nothing is due, ``limit``, or the ``deadline``."""
        report = DeliveryReport()
        for _ in range(limit):
            now = self.clock()
            if deadline is not None and now >= deadline:
                break
            # resting receivers left, and those whose reader went
            claimed = self.store.claim_due(now, self.lease_seconds, 1, incident_id, skip_receivers=sorted(self.gone))
            if not claimed:
                break
            self._deliver(claimed[0], report)
        return report

    def drain(
        self, seconds: float, incident_id: str | None = None, sleep: Callable[[float], None] = time.sleep
    ) -> DeliveryReport:
        """Deliver what is due, then for up to ``seconds`` the retries that fall due meanwhile.

        What a replay, a stopping pipeline and the CLI do before they exit: a
        receiver that hiccups for a moment still gets its page now; one that
        stays down leaves it pending for the next process.
        """
        until = self.clock() + timedelta(seconds=seconds)
        report = self.deliver_due(incident_id=incident_id)  # what is due now, whatever the time left
        while True:
            now = self.clock()
            due = self._next_due(incident_id)
            if now >= until or due is None or due >= until:
                return report
            # at least a moment: a row another process holds is due but not ours to take
            sleep(max(0.05, (due - now).total_seconds()))
            report.add(self.deliver_due(incident_id=incident_id, deadline=until))

    def _next_due(self, incident_id: str | None) -> datetime | None:
        pending = self.store.notifications(
            OutboxQuery(statuses=[NotificationStatus.PENDING], incident_id=incident_id, limit=10_000)
        )
        rests = self.store.receiver_rests()
        return min((next_try(row, rests) for row in pending if row.receiver not in self.gone), default=None)

    def retry_now(self) -> int:
        """Make the pages waiting out a backoff due now (a receiver was fixed), for every process.

        The receivers' backoff rests end, and their failures in a row are forgotten;
        what a receiver asked itself (a Retry-After) is still honoured: it would
        refuse what comes sooner.  An escalation keeps its deadline.  Returns how
        many pages were moved.  The failed ones are put back by ``Pager.retry_failed``,
        as their incidents are now.
        """
        now, moved = self.clock(), 0
        for row in self.store.notifications(OutboxQuery(statuses=[NotificationStatus.PENDING], limit=100_000)):
            if row.only_if_unacknowledged or row.due_at <= now:
                continue
            again = Settlement(status=NotificationStatus.PENDING, at=now, retry_at=now, attempted=False)
            self.store.settle(row.notification_id, again)
            moved += 1
        for rest in self.store.receiver_rests().values():
            if rest.asked_until is not None and rest.asked_until > now:
                self.store.rest_receiver(rest.model_copy(update={"until": rest.asked_until, "failures": 0}))
            else:
                self.store.end_rest(rest.receiver)
        return moved

    def _deliver(self, row: Notification, report: DeliveryReport) -> None:
        try:
            self._send(row, report)
        except ReaderGone as gone:
            # not an attempt, and no rest: the page waits, due at once, for a process whose reader is there;
            # the other receivers' pages go on (a ``head`` that stopped reading must not hold back PagerDuty)
            self._give_back(row)
            self.gone.add(row.receiver)
            report.gone.add(row.receiver)
            log.warning(
                "page %s given back, and %s given no more pages by this process: %s",
                row.notification_id,
                row.receiver,
                gone,
            )
        except (KeyboardInterrupt, SystemExit):
            # stopped cleanly in the middle (Ctrl-C): the page is given back, due at once to the next process
            # delivering, not held until the lease runs out as after a crash.  Settled just before, it stays so.
            self._give_back(row)
            raise

    def _give_back(self, row: Notification) -> None:
        try:
            self.store.release(row.notification_id)
        except Exception:  # the store gone too: the lease runs out, as after a crash
            log.warning("page %s not given back: due again when its lease runs out", row.notification_id)

    def _send(self, row: Notification, report: DeliveryReport) -> None:
        receiver = self.receivers.get(row.receiver)
        if receiver is None:
            error = f"receiver {row.receiver!r} is no longer configured"
            self._settle(row, NotificationStatus.FAILED, error, report, attempted=False)
            return
        page = row.page
        failed_before = bool(row.attempts or row.last_error)
        incident = self.store.get_incident(row.incident_id) if row.only_if_unacknowledged or failed_before else None
        if row.only_if_unacknowledged:
            if incident is None or incident.status is not AlertStatus.OPEN:
                state = incident.status.value if incident else "gone"
                error = f"{state} before the escalation was due"
                self._settle(row, NotificationStatus.CANCELLED, error, report, attempted=False)
                return
            if not failed_before:
                page = page.model_copy(update={"incident": incident})  # escalate what the incident is now
        started = self.clock()
        if failed_before:  # sent again: as the incident is now, not as it was when it failed
            page = as_now(page, incident, self.store, started)
        try:
            receiver.send(page, row.notification_id)
        except ReaderGone:
            raise
        except DeliveryError as exc:
            self._failed(row, str(exc), exc.retryable, exc.retry_after, report)
        except Exception as exc:  # a bug in a receiver must not stop the others' pages
            log.exception("receiver %s failed on %s", row.receiver, row.notification_id)
            self._failed(row, f"{type(exc).__name__}: {exc}", True, None, report)
        else:
            # it is up: its rest ends, but not one another process recorded while this page was on its way
            self.store.end_rest(row.receiver, set_before=started)
            if page.refreshed is None:
                self._settle(row, NotificationStatus.SENT, None, report)
            else:
                self._settle(row, NotificationStatus.SENT, None, report, sent_page=page)
                self._supersede_rises(row, page, report)

    def _supersede_rises(self, row: Notification, sent: Page, report: DeliveryReport) -> None:
        """The rises planned behind a page sent again as the incident is now: it told their severity already.

        Sent after it, "now CRITICAL (was HIGH)" would tell a receiver that never saw HIGH.
        """
        waiting = self.store.notifications(
            OutboxQuery(
                statuses=[NotificationStatus.PENDING],
                kinds=[PageKind.UPDATE],
                incident_id=row.incident_id,
                receiver=row.receiver,
                limit=10_000,
            )
        )
        told = f"superseded: the {row.kind.value} sent again said {sent.severity.value} already"
        for rise in waiting:
            if not rise.only_if_unacknowledged and rise.page.severity.rank <= sent.severity.rank:
                self._settle(rise, NotificationStatus.CANCELLED, told, report, attempted=False)

    def _failed(
        self, row: Notification, error: str, retryable: bool, retry_after: float | None, report: DeliveryReport
    ) -> None:
        now = self.clock()
        attempts = row.attempts + 1
        report.errors.append(f"{row.receiver}: {error}")
        if not retryable:
            self._settle(row, NotificationStatus.FAILED, error, report)
            return
        before = self.store.receiver_rests().get(row.receiver)
        failures = (before.failures if before is not None else 0) + 1
        # the receiver's failures in a row, or the page's own if more (a rest ended by pages --deliver)
        step = max(attempts, failures)
        wait = max(backoff(self.delivery, step, row.notification_id), retry_after or 0.0)
        retry_at = now + timedelta(seconds=wait)
        asked = now + timedelta(seconds=retry_after) if retry_after else None
        # the receiver rests whatever becomes of this page: every process leaves it alone until then
        rest = ReceiverRest(
            receiver=row.receiver, until=retry_at, asked_until=asked, failures=failures, error=error, at=now
        )
        self.store.rest_receiver(rest)
        if (now - row.created_at).total_seconds() >= self.delivery.give_up_after:
            self._settle(row, NotificationStatus.FAILED, f"gave up after {attempts} attempts: {error}", report)
            return
        log.warning(
            "page to %s not delivered (attempt %d, the receiver's failure %d in a row), retry in %.0f s: %s",
            row.receiver,
            attempts,
            failures,
            wait,
            error,
        )
        self.store.settle(
            row.notification_id,
            Settlement(status=NotificationStatus.PENDING, at=now, error=error, retry_at=retry_at),
        )
        report.retrying += 1

    def _settle(
        self,
        row: Notification,
        status: NotificationStatus,
        error: str | None,
        report: DeliveryReport,
        attempted: bool = True,
        sent_page: Page | None = None,
    ) -> None:
        settlement = Settlement(status=status, at=self.clock(), error=error, attempted=attempted, sent_page=sent_page)
        self.store.settle(row.notification_id, settlement)
        if status is NotificationStatus.SENT:
            report.sent += 1
            report.sent_to[row.receiver] += 1
        elif status is NotificationStatus.FAILED:
            report.failed += 1
            log.error("page to %s failed for good: %s", row.receiver, error)
        else:
            report.cancelled += 1


class DeliveryLoop:
    """Delivers in a thread of its own while the pipeline ingests; ``wake`` after planning skips the wait.

    The dispatcher must have a store connection of its own: the pipeline's is
    in the middle of its own transactions.
    """

    def __init__(self, dispatcher: Dispatcher, poll_interval: float, drain_seconds: float) -> None:
        self.dispatcher = dispatcher
        self.poll_interval = poll_interval
        self.drain_seconds = drain_seconds
        self.report = DeliveryReport()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name="accesswatch-delivery", daemon=True)

    def start(self) -> DeliveryLoop:
        self._thread.start()
        return self

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float | None = None) -> DeliveryReport:
        """Deliver what is due for up to ``drain_seconds`` more, then stop."""
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout if timeout is not None else self.drain_seconds + self.dispatcher.lease_seconds)
        return self.report

    def _run(self) -> None:
        while not self._stop.is_set():
            self._round()
            self._wake.wait(self.poll_interval)
            self._wake.clear()
        self._round(drain=True)

    def _round(self, drain: bool = False) -> None:
        try:
            if drain:
                self.report.add(self.dispatcher.drain(self.drain_seconds))
            else:
                self.report.add(self.dispatcher.deliver_due())
        except Exception:  # the store busy or gone for a moment: the next round tries again
            log.exception("delivering pages failed; trying again in %.1f s", self.poll_interval)
