"""Classic (JoinGroup/SyncGroup) consumer-group coordinator for the fake broker.

Follows the state machine of Kafka's GroupCoordinator (2.x):

    Empty --join--> PreparingRebalance --all joined / rebalance timeout-->
    CompletingRebalance --leader SyncGroup--> Stable --join/leave/expiry-->
    PreparingRebalance ...

* JoinGroup blocks (the connection thread waits) until every known member
  has rejoined or the rebalance timeout fires; members that did not rejoin
  are removed.  v4+ joins without a member id get MEMBER_ID_REQUIRED.
* SyncGroup from followers blocks until the leader supplies assignments.
* Members whose session timeout passes without a heartbeat (and who are
  not parked in a JoinGroup/SyncGroup) are evicted, triggering a rebalance.
* OffsetCommit is checked against member id and generation.

All state lives under one Condition; a timer thread calls :meth:`tick`.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field

import kafka.errors as Errors

EMPTY = "Empty"
PREPARING_REBALANCE = "PreparingRebalance"
COMPLETING_REBALANCE = "CompletingRebalance"
STABLE = "Stable"
DEAD = "Dead"

OFFSET_METADATA_MAX_BYTES = 4096


class _Waiter:
    __slots__ = ("result",)

    def __init__(self):
        self.result = None


@dataclass
class Member:
    member_id: str
    client_id: str
    client_host: str
    session_timeout_ms: int
    rebalance_timeout_ms: int
    protocol_type: str
    protocols: list  # [(name, metadata bytes)]
    heartbeat_deadline: float = 0.0
    assignment: bytes = b""
    join_waiter: _Waiter | None = None
    sync_waiter: _Waiter | None = None

    def metadata_for(self, protocol):
        for name, metadata in self.protocols:
            if name == protocol:
                return metadata
        return None

    def keep_alive(self, now):
        return self.join_waiter is not None or self.sync_waiter is not None or now < self.heartbeat_deadline

    def touch(self, now):
        self.heartbeat_deadline = now + self.session_timeout_ms / 1000.0


@dataclass
class CommittedOffset:
    offset: int
    leader_epoch: int
    metadata: str | None
    commit_timestamp_ms: int


@dataclass
class Group:
    group_id: str
    state: str = EMPTY
    generation_id: int = 0
    protocol_type: str | None = None
    protocol_name: str | None = None
    leader_id: str | None = None
    members: dict = field(default_factory=dict)          # member_id -> Member (join order)
    pending_members: dict = field(default_factory=dict)  # member_id -> [deadline, session_timeout_ms]
    join_deadline: float | None = None
    initial_delay: bool = False
    offsets: dict = field(default_factory=dict)          # (topic, partition) -> CommittedOffset

    def all_members_joined(self):
        return (not self.pending_members
                and all(m.join_waiter is not None for m in self.members.values()))

    def candidate_protocols(self):
        names = None
        for m in self.members.values():
            mine = {name for name, _ in m.protocols}
            names = mine if names is None else names & mine
        return names or set()

    def supports_protocols(self, protocol_type, protocols):
        if not self.members:
            return True
        if protocol_type != self.protocol_type:
            return False
        return bool(self.candidate_protocols() & {name for name, _ in protocols})

    def select_protocol(self):
        candidates = self.candidate_protocols()
        votes = {}
        for m in self.members.values():
            for name, _ in m.protocols:
                if name in candidates:
                    votes[name] = votes.get(name, 0) + 1
                    break
        # most votes wins; ties broken by the first member's preference order
        first = next(iter(self.members.values()))
        order = [name for name, _ in first.protocols]
        return max(votes, key=lambda n: (votes[n], -order.index(n)))


def _error(error_type, **extra):
    result = {"error_code": error_type.errno}
    result.update(extra)
    return result


class GroupCoordinator:
    def __init__(self, cond: threading.Condition, store, *,
                 min_session_timeout_ms=100, max_session_timeout_ms=1800000,
                 initial_rebalance_delay_ms=0):
        self.cond = cond
        self.store = store  # LogStore, for partition existence checks on commit
        self.groups: dict[str, Group] = {}
        self.min_session_timeout_ms = min_session_timeout_ms
        self.max_session_timeout_ms = max_session_timeout_ms
        self.initial_rebalance_delay_ms = initial_rebalance_delay_ms
        self.closed = False
        self.frozen = False  # while the broker is paused, nothing expires

    # ------------------------------------------------------------------ util
    def _wait_for(self, waiter, timeout=None):
        deadline = None if timeout is None else time.monotonic() + timeout
        while waiter.result is None and not self.closed:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                break
            self.cond.wait(remaining if remaining is not None else 1.0)
        if waiter.result is None:
            return _error(Errors.CoordinatorNotAvailableError)
        return waiter.result

    def _prepare_rebalance(self, group, now):
        if group.state == COMPLETING_REBALANCE:
            # Leader's assignment is void now; parked followers must rejoin.
            for m in group.members.values():
                m.assignment = b""
                if m.sync_waiter is not None:
                    m.sync_waiter.result = _error(Errors.RebalanceInProgressError)
                    m.sync_waiter = None
        if group.state == EMPTY and self.initial_rebalance_delay_ms > 0:
            group.initial_delay = True
            group.join_deadline = now + self.initial_rebalance_delay_ms / 1000.0
        else:
            group.initial_delay = False
            timeout_ms = max([m.rebalance_timeout_ms for m in group.members.values()] or [0])
            group.join_deadline = now + timeout_ms / 1000.0
        group.state = PREPARING_REBALANCE
        self.cond.notify_all()

    def _maybe_complete_join(self, group, now, force=False):
        if group.state != PREPARING_REBALANCE:
            return
        if not force and (group.initial_delay or not group.all_members_joined()):
            return
        # Members that did not rejoin in time are dropped from the group.
        for member_id in [mid for mid, m in group.members.items() if m.join_waiter is None]:
            self._remove_member(group, member_id)
        group.generation_id += 1
        group.join_deadline = None
        group.initial_delay = False
        if not group.members:
            group.state = EMPTY
            group.protocol_name = None
            group.leader_id = None
            self.cond.notify_all()
            return
        group.protocol_name = group.select_protocol()
        if group.leader_id not in group.members:
            group.leader_id = next(iter(group.members))
        group.state = COMPLETING_REBALANCE
        for m in group.members.values():
            m.join_waiter.result = self._join_result(group, m)
            m.join_waiter = None
            m.touch(now)
        self.cond.notify_all()

    def _join_result(self, group, member):
        members = []
        if member.member_id == group.leader_id:
            members = [(m.member_id, m.metadata_for(group.protocol_name)) for m in group.members.values()]
        return {
            "error_code": 0,
            "generation_id": group.generation_id,
            "protocol_name": group.protocol_name,
            "leader": group.leader_id,
            "member_id": member.member_id,
            "members": members,
        }

    def _remove_member(self, group, member_id):
        member = group.members.pop(member_id)
        if group.leader_id == member_id:
            group.leader_id = None
        for waiter in (member.join_waiter, member.sync_waiter):
            if waiter is not None:
                waiter.result = _error(Errors.UnknownMemberIdError)
        member.join_waiter = member.sync_waiter = None
        if not group.members:
            group.protocol_type = None
        self.cond.notify_all()

    def _member_gone(self, group, member_id, now):
        """A member left or expired: rebalance the rest (like onMemberFailure)."""
        self._remove_member(group, member_id)
        if group.state in (STABLE, COMPLETING_REBALANCE):
            self._prepare_rebalance(group, now)
            self._maybe_complete_join(group, now)
        elif group.state == PREPARING_REBALANCE:
            self._maybe_complete_join(group, now)

    def _check_session_timeout(self, session_timeout_ms):
        return self.min_session_timeout_ms <= session_timeout_ms <= self.max_session_timeout_ms

    # ------------------------------------------------------------- requests
    def join_group(self, group_id, member_id, client_id, client_host, session_timeout_ms,
                   rebalance_timeout_ms, protocol_type, protocols, require_known_member_id):
        """Handle JoinGroup; blocks until the join completes. Returns a dict."""
        with self.cond:
            now = time.monotonic()
            if not group_id:
                return _error(Errors.InvalidGroupIdError, member_id=member_id)
            if not self._check_session_timeout(session_timeout_ms):
                return _error(Errors.InvalidSessionTimeoutError, member_id=member_id)
            if rebalance_timeout_ms < 0:  # JoinGroup v0 has no rebalance timeout
                rebalance_timeout_ms = session_timeout_ms
            group = self.groups.get(group_id)
            if group is None:
                if member_id:
                    return _error(Errors.UnknownMemberIdError, member_id=member_id)
                group = self.groups[group_id] = Group(group_id)
            if not protocol_type or not protocols:
                return _error(Errors.InconsistentGroupProtocolError, member_id=member_id)
            if not group.supports_protocols(protocol_type, protocols):
                return _error(Errors.InconsistentGroupProtocolError, member_id=member_id)

            if not member_id:
                new_id = "{}-{}".format(client_id or "consumer", uuid.uuid4())
                if require_known_member_id:
                    group.pending_members[new_id] = [now + session_timeout_ms / 1000.0, session_timeout_ms]
                    self.cond.notify_all()
                    return _error(Errors.MemberIdRequiredError, member_id=new_id)
                return self._add_member_and_wait(group, new_id, client_id, client_host, session_timeout_ms,
                                                 rebalance_timeout_ms, protocol_type, protocols, now)
            if member_id in group.pending_members:
                del group.pending_members[member_id]
                return self._add_member_and_wait(group, member_id, client_id, client_host, session_timeout_ms,
                                                 rebalance_timeout_ms, protocol_type, protocols, now)
            member = group.members.get(member_id)
            if member is None:
                return _error(Errors.UnknownMemberIdError, member_id=member_id)

            same_metadata = list(protocols) == list(member.protocols)
            member.session_timeout_ms = session_timeout_ms
            member.rebalance_timeout_ms = rebalance_timeout_ms
            member.protocols = list(protocols)
            member.client_id, member.client_host = client_id, client_host
            if group.state in (COMPLETING_REBALANCE, STABLE) and same_metadata and \
                    (group.state == COMPLETING_REBALANCE or member_id != group.leader_id):
                # The member lost its previous JoinGroup response: resend it.
                member.touch(now)
                return self._join_result(group, member)
            if member.join_waiter is not None:  # duplicate JoinGroup: the newer one wins
                member.join_waiter.result = _error(Errors.RebalanceInProgressError, member_id=member_id)
            waiter = member.join_waiter = _Waiter()
            if group.state != PREPARING_REBALANCE:
                self._prepare_rebalance(group, now)
            self._maybe_complete_join(group, now)
            return self._wait_for(waiter)

    def _add_member_and_wait(self, group, member_id, client_id, client_host, session_timeout_ms,
                             rebalance_timeout_ms, protocol_type, protocols, now):
        member = Member(member_id, client_id, client_host, session_timeout_ms,
                        rebalance_timeout_ms, protocol_type, list(protocols))
        member.touch(now)
        if not group.members:
            group.protocol_type = protocol_type
        group.members[member_id] = member
        waiter = member.join_waiter = _Waiter()
        if group.state != PREPARING_REBALANCE:
            self._prepare_rebalance(group, now)
        self._maybe_complete_join(group, now)
        return self._wait_for(waiter)

    def sync_group(self, group_id, generation_id, member_id, assignments):
        """Handle SyncGroup; followers block until the leader syncs."""
        with self.cond:
            now = time.monotonic()
            if not group_id:
                return _error(Errors.InvalidGroupIdError)
            group = self.groups.get(group_id)
            if group is None or member_id not in group.members:
                return _error(Errors.UnknownMemberIdError)
            if generation_id != group.generation_id:
                return _error(Errors.IllegalGenerationError)
            member = group.members[member_id]
            if group.state == PREPARING_REBALANCE:
                return _error(Errors.RebalanceInProgressError)
            if group.state == STABLE:
                member.touch(now)
                return {"error_code": 0, "assignment": member.assignment}
            if group.state != COMPLETING_REBALANCE:
                return _error(Errors.UnknownMemberIdError)
            waiter = member.sync_waiter = _Waiter()
            if member_id == group.leader_id:
                given = dict(assignments)
                for m in group.members.values():
                    m.assignment = given.get(m.member_id, b"")
                group.state = STABLE
                for m in group.members.values():
                    if m.sync_waiter is not None:
                        m.sync_waiter.result = {"error_code": 0, "assignment": m.assignment}
                        m.sync_waiter = None
                        m.touch(now)
                self.cond.notify_all()
            result = self._wait_for(waiter)
            if result["error_code"] == 0 and member_id in group.members:
                group.members[member_id].touch(time.monotonic())
            return result

    def heartbeat(self, group_id, generation_id, member_id):
        with self.cond:
            now = time.monotonic()
            if not group_id:
                return Errors.InvalidGroupIdError
            group = self.groups.get(group_id)
            if group is None or member_id not in group.members:
                return Errors.UnknownMemberIdError
            if generation_id != group.generation_id:
                return Errors.IllegalGenerationError
            group.members[member_id].touch(now)
            if group.state == PREPARING_REBALANCE:
                return Errors.RebalanceInProgressError
            return Errors.NoError

    def leave_group(self, group_id, member_id):
        with self.cond:
            now = time.monotonic()
            if not group_id:
                return Errors.InvalidGroupIdError
            group = self.groups.get(group_id)
            if group is None:
                return Errors.UnknownMemberIdError
            if member_id in group.pending_members:
                del group.pending_members[member_id]
                self._maybe_complete_join(group, now)
                return Errors.NoError
            if member_id not in group.members:
                return Errors.UnknownMemberIdError
            self._member_gone(group, member_id, now)
            return Errors.NoError

    def commit_offsets(self, group_id, generation_id, member_id, offsets):
        """offsets: [(topic, partition, offset, leader_epoch, metadata)].

        Returns {(topic, partition): error_class}.
        """
        with self.cond:
            now = time.monotonic()
            keys = [(t, p) for t, p, _, _, _ in offsets]
            if not group_id:
                return dict.fromkeys(keys, Errors.InvalidGroupIdError)
            group = self.groups.get(group_id)
            if group is None:
                if generation_id >= 0:
                    return dict.fromkeys(keys, Errors.IllegalGenerationError)
                group = self.groups[group_id] = Group(group_id)
            elif generation_id < 0 and group.state == EMPTY:
                pass  # standalone (non group-managed) commit
            elif group.state == COMPLETING_REBALANCE:
                return dict.fromkeys(keys, Errors.RebalanceInProgressError)
            elif member_id not in group.members:
                return dict.fromkeys(keys, Errors.UnknownMemberIdError)
            elif generation_id != group.generation_id:
                return dict.fromkeys(keys, Errors.IllegalGenerationError)
            else:
                group.members[member_id].touch(now)
            results = {}
            commit_ts = int(time.time() * 1000)
            for topic, partition, offset, leader_epoch, metadata in offsets:
                if self.store.partition(topic, partition) is None:
                    results[(topic, partition)] = Errors.UnknownTopicOrPartitionError
                elif metadata is not None and len(metadata.encode("utf-8")) > OFFSET_METADATA_MAX_BYTES:
                    results[(topic, partition)] = Errors.OffsetMetadataTooLargeError
                else:
                    group.offsets[(topic, partition)] = CommittedOffset(offset, leader_epoch, metadata, commit_ts)
                    results[(topic, partition)] = Errors.NoError
            return results

    def fetch_offsets(self, group_id, partitions):
        """partitions: [(topic, partition)] or None for all committed ones.

        Returns [(topic, partition, CommittedOffset or None)].
        """
        with self.cond:
            group = self.groups.get(group_id)
            committed = dict(group.offsets) if group is not None else {}
            if partitions is None:
                return [(t, p, c) for (t, p), c in sorted(committed.items())]
            return [(t, p, committed.get((t, p))) for t, p in partitions]

    def describe_group(self, group_id):
        with self.cond:
            group = self.groups.get(group_id)
            if group is None:
                return {"state": DEAD, "protocol_type": "", "protocol_data": "", "members": []}
            stable = group.state == STABLE
            members = [{
                "member_id": m.member_id,
                "client_id": m.client_id,
                "client_host": m.client_host,
                "member_metadata": (m.metadata_for(group.protocol_name) or b"") if stable else b"",
                "member_assignment": m.assignment if stable else b"",
            } for m in group.members.values()]
            return {
                "state": group.state,
                "protocol_type": group.protocol_type or "",
                "protocol_data": (group.protocol_name or "") if stable else "",
                "members": members,
            }

    def list_groups(self):
        with self.cond:
            return [(g.group_id, g.protocol_type or "") for g in self.groups.values()]

    # ---------------------------------------------------------------- timers
    def tick(self, now=None):
        """Expire pending members, member sessions and rebalance timeouts."""
        with self.cond:
            if self.frozen or self.closed:
                return
            now = time.monotonic() if now is None else now
            for group in list(self.groups.values()):
                expired_pending = [mid for mid, (dl, _) in group.pending_members.items() if dl <= now]
                for mid in expired_pending:
                    del group.pending_members[mid]
                if expired_pending:
                    self._maybe_complete_join(group, now)
                for mid, member in list(group.members.items()):
                    if mid in group.members and not member.keep_alive(now):
                        self._member_gone(group, mid, now)
                if group.state == PREPARING_REBALANCE and group.join_deadline is not None \
                        and group.join_deadline <= now:
                    self._maybe_complete_join(group, now, force=True)

    def next_deadline(self):
        with self.cond:
            deadlines = []
            for group in self.groups.values():
                deadlines.extend(dl for dl, _ in group.pending_members.values())
                deadlines.extend(m.heartbeat_deadline for m in group.members.values()
                                 if m.join_waiter is None and m.sync_waiter is None)
                if group.join_deadline is not None:
                    deadlines.append(group.join_deadline)
            return min(deadlines) if deadlines else None

    def refresh_all_sessions(self):
        """After an outage (resume), give every member a fresh session."""
        with self.cond:
            now = time.monotonic()
            for group in self.groups.values():
                for m in group.members.values():
                    m.touch(now)
                for pending in group.pending_members.values():
                    pending[0] = now + pending[1] / 1000.0
            self.cond.notify_all()

    def close(self):
        with self.cond:
            self.closed = True
            self.cond.notify_all()

    # ------------------------------------------------------------ inspection
    def committed(self, group_id, topic):
        with self.cond:
            group = self.groups.get(group_id)
            if group is None:
                return {}
            return {p: c.offset for (t, p), c in sorted(group.offsets.items()) if t == topic}
