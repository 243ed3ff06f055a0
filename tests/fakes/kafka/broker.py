"""FakeKafkaBroker: a single-node Kafka broker on a loopback socket.

One thread per client connection.  Like a real broker, each connection is
served strictly in order: the next request is read only after the previous
one was answered (so long-polling fetches and parked JoinGroup/SyncGroup
requests block only their own connection).
"""

from __future__ import annotations

import io
import logging
import socket
import threading
import time
import traceback

from kafka.protocol.schemas.fields.codecs import Int32

from .groups import GroupCoordinator
from .handlers import API_VERSIONS, CloseConnection, Handlers, RequestContext
from .log import DEFAULT_MAX_MESSAGE_BYTES, LogStore

log = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 100 * 1024 * 1024  # socket.request.max.bytes

#: kafka-python consumer settings that make group joins/rebalances/evictions
#: take well under a second against this broker (its minimum session timeout
#: is 100 ms).  ``max_poll_interval_ms`` doubles as the rebalance timeout: the
#: broker waits that long for every member to rejoin, so keep polling every
#: consumer of a group while a rebalance is in progress.
# Quick rebalances, but not so quick that a loaded machine (CI shares two
# cores among many processes) starves a heartbeat and evicts a live member.
FAST_CONSUMER_CONFIG = dict(
    session_timeout_ms=4000,
    heartbeat_interval_ms=400,
    max_poll_interval_ms=30000,
    request_timeout_ms=5000,
    fetch_max_wait_ms=100,
    retry_backoff_ms=50,
    reconnect_backoff_ms=50,
)


class _Connection:
    def __init__(self, sock, ctx):
        self.sock = sock
        self.ctx = ctx
        self.thread = None

    def shutdown(self):
        self.ctx.closed = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class FakeKafkaBroker:
    """In-process single-node Kafka broker speaking the real wire protocol.

    Arguments:
        host, port: where to listen (port 0 picks a free port).
        auto_create_topics: create unknown topics on Metadata requests that
            allow it (auto.create.topics.enable).
        default_partitions: partitions of auto-created topics and of
            :meth:`create_topic` when none are given (num.partitions).
        group_min_session_timeout_ms / group_max_session_timeout_ms: accepted
            consumer session timeouts (a real broker defaults to 6000 min; the
            fake allows 100 ms so tests can rebalance quickly).
        group_initial_rebalance_delay_ms: group.initial.rebalance.delay.ms.
        max_message_bytes: largest accepted record batch (message.max.bytes).
    """

    def __init__(self, host="127.0.0.1", port=0, auto_create_topics=True, default_partitions=3, *,
                 node_id=0, group_min_session_timeout_ms=100, group_max_session_timeout_ms=1800000,
                 group_initial_rebalance_delay_ms=0, max_message_bytes=DEFAULT_MAX_MESSAGE_BYTES):
        self.host = host
        self._requested_port = port
        self.port = None
        self.node_id = node_id
        self.auto_create_topics = auto_create_topics
        self.default_partitions = default_partitions
        self.store = LogStore(max_message_bytes=max_message_bytes)
        self.groups = GroupCoordinator(
            threading.Condition(threading.RLock()), self.store,
            min_session_timeout_ms=group_min_session_timeout_ms,
            max_session_timeout_ms=group_max_session_timeout_ms,
            initial_rebalance_delay_ms=group_initial_rebalance_delay_ms)
        self.handlers = Handlers(self)
        self.stopping = False
        self._listener = None
        self._threads = []
        self._conns_lock = threading.Lock()
        self._conns: set[_Connection] = set()
        self._pause_cond = threading.Condition()
        self._paused = False
        self.internal_errors = []  # tracebacks of requests the fake failed to handle
        self.join_hold = 0.0  # seconds every JoinGroup answer takes at least: see hold_joins()
        self.produce_refusals = {}  # topic -> the error every Produce to it gets: see refuse_produce()
        self.offset_fetch_refusal = None  # the error every OffsetFetch gets: see refuse_offset_fetch()

    # ------------------------------------------------------------ lifecycle
    def start(self):
        if self._listener is not None:
            raise RuntimeError("broker already started")
        listener = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, self._requested_port))
        listener.listen(128)
        self._listener = listener
        self.port = listener.getsockname()[1]
        for target, name in ((self._accept_loop, "accept"), (self._timer_loop, "group-timer")):
            t = threading.Thread(target=target, name=f"fake-kafka-{name}-{self.port}", daemon=True)
            t.start()
            self._threads.append(t)
        log.info("FakeKafkaBroker listening on %s", self.bootstrap)
        return self

    def stop(self, timeout=5.0):
        if self.stopping:
            return
        self.stopping = True
        if self._listener is not None:
            try:
                self._listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._listener.close()
        self.groups.close()
        self.resume()
        self.drop_connections()
        deadline = time.monotonic() + timeout
        with self._conns_lock:
            conn_threads = [c.thread for c in self._conns if c.thread is not None]
        for t in self._threads + conn_threads:
            t.join(max(0.0, deadline - time.monotonic()))

    def __enter__(self):
        if self._listener is None:
            self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    @property
    def bootstrap(self):
        if self.port is None:
            raise RuntimeError("broker not started")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    # ---------------------------------------------------------- fault hooks
    def drop_connections(self, client_id=None):
        """Close client sockets now (all, or those whose last request used ``client_id``).

        Returns the number of connections closed.
        """
        with self._conns_lock:
            victims = [c for c in self._conns if client_id is None or c.ctx.client_id == client_id]
        for conn in victims:
            conn.shutdown()
        self._wake_waiters()
        return len(victims)

    def hold_joins(self, seconds):
        """Answer every JoinGroup no sooner than ``seconds`` after it came (0: at once).

        A real broker holds a JoinGroup until every member has rejoined, up to
        the rebalance timeout: longer than a consumer's poll timeout, often.
        """
        self.join_hold = float(seconds)

    def refuse_produce(self, topic, error=None):
        """Answer every Produce to ``topic`` with ``error`` (a ``kafka.errors`` class; None: accept again).

        E.g. ``NotEnoughReplicasError``, retriable: what a cluster with too few in-sync replicas answers.
        """
        if error is None:
            self.produce_refusals.pop(topic, None)
        else:
            self.produce_refusals[topic] = error

    def refuse_offset_fetch(self, error=None):
        """Answer every OffsetFetch with ``error`` (a ``kafka.errors`` class; None: answer again).

        E.g. ``CoordinatorLoadInProgressError``, retriable: what a group coordinator answers while it loads the
        group's offsets (after a failover; minutes, on a large cluster).  The committed offsets are not told, and
        everything else (heartbeats, commits, fetches) is answered as before.
        """
        self.offset_fetch_refusal = error

    def pause(self):
        """Stop answering: requests are read but held (an outage as seen by clients)."""
        with self._pause_cond:
            self._paused = True
        with self.groups.cond:
            self.groups.frozen = True

    def resume(self):
        """Answer again; group members get a fresh session timeout, as after a failover."""
        with self._pause_cond:
            self._paused = False
            self._pause_cond.notify_all()
        with self.groups.cond:
            self.groups.frozen = False
        self.groups.refresh_all_sessions()

    @property
    def paused(self):
        return self._paused

    def connection_count(self):
        with self._conns_lock:
            return len(self._conns)

    # ------------------------------------------------------- data helpers
    def create_topic(self, name, partitions=None, configs=None):
        self.store.create_topic(name, self.default_partitions if partitions is None else partitions, configs)

    def delete_topic(self, name):
        self.store.delete_topic(name)

    def topics(self):
        """{topic: partition count}"""
        with self.store.lock:
            return {name: len(parts) for name, parts in self.store.topics.items()}

    def messages(self, topic, partition=None):
        """[(partition, offset, key, value)] in partition/offset order."""
        return [(p, r.offset, r.key, r.value) for p, r in self.records(topic, partition)]

    def records(self, topic, partition=None):
        """[(partition, StoredRecord)] -- records with timestamps and headers."""
        with self.store.lock:
            parts = self.store.topics.get(topic)
            if parts is None:
                raise KeyError(f"unknown topic {topic!r}")
            return [(plog.partition, rec) for plog in parts
                    if partition is None or plog.partition == partition
                    for rec in plog.records()]

    def end_offsets(self, topic):
        """{partition: log end offset}"""
        with self.store.lock:
            return {plog.partition: plog.log_end_offset for plog in self.store.topics[topic]}

    def committed(self, group, topic):
        """{partition: committed offset} for ``group`` on ``topic``."""
        return self.groups.committed(group, topic)

    def group_state(self, group):
        """'Empty' / 'PreparingRebalance' / 'CompletingRebalance' / 'Stable' / 'Dead'."""
        return self.groups.describe_group(group)["state"]

    def group_members(self, group):
        """Member ids of ``group`` (in join order)."""
        with self.groups.cond:
            g = self.groups.groups.get(group)
            return list(g.members) if g is not None else []

    def group_generation(self, group):
        with self.groups.cond:
            g = self.groups.groups.get(group)
            return g.generation_id if g is not None else -1

    @staticmethod
    def supported_api_versions():
        """{api name: (min, max)} advertised in ApiVersions."""
        return {k.name: (v[2], v[3]) for k, v in API_VERSIONS.items()}

    # ------------------------------------------------------------ internals
    def _wake_waiters(self):
        with self.store.cond:
            self.store.cond.notify_all()
        with self._pause_cond:
            self._pause_cond.notify_all()
        with self.groups.cond:
            self.groups.cond.notify_all()

    def _accept_loop(self):
        while not self.stopping:
            try:
                sock, addr = self._listener.accept()
            except OSError:
                break
            if self.stopping:
                sock.close()
                break
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = _Connection(sock, RequestContext("/" + addr[0]))
            conn.thread = threading.Thread(target=self._serve, args=(conn,), daemon=True,
                                           name=f"fake-kafka-conn-{addr[0]}:{addr[1]}")
            with self._conns_lock:
                self._conns.add(conn)
            conn.thread.start()

    def _timer_loop(self):
        cond = self.groups.cond
        with cond:
            while not self.stopping and not self.groups.closed:
                if self.groups.frozen:  # paused: nothing expires; resume() notifies
                    cond.wait(1.0)
                    continue
                self.groups.tick()
                deadline = self.groups.next_deadline()
                timeout = 1.0 if deadline is None else min(1.0, max(0.005, deadline - time.monotonic()))
                cond.wait(timeout)

    def _wait_while_paused(self, ctx):
        with self._pause_cond:
            while self._paused and not ctx.closed and not self.stopping:
                self._pause_cond.wait()

    def _serve(self, conn):
        sock, ctx = conn.sock, conn.ctx
        try:
            while not self.stopping and not ctx.closed:
                size_bytes = _recv_exact(sock, 4)
                if size_bytes is None:
                    break
                size = Int32.decode(io.BytesIO(size_bytes))
                if not 0 <= size <= MAX_REQUEST_BYTES:
                    log.warning("closing connection: invalid request size %d", size)
                    break
                payload = _recv_exact(sock, size)
                if payload is None:
                    break
                self._wait_while_paused(ctx)
                if ctx.closed or self.stopping:
                    break
                try:
                    out = self.handlers.handle_frame(payload, ctx)
                except CloseConnection as exc:
                    log.warning("closing connection from %s: %s", ctx.client_host, exc)
                    break
                except Exception:  # a broker closes connections it cannot parse
                    log.exception("closing connection from %s: request failed", ctx.client_host)
                    self.internal_errors.append(traceback.format_exc())
                    break
                if out is not None:
                    self._wait_while_paused(ctx)
                    if ctx.closed or self.stopping:
                        break
                    sock.sendall(out)
        except OSError:
            pass
        finally:
            ctx.closed = True
            try:
                sock.close()
            except OSError:
                pass
            with self._conns_lock:
                self._conns.discard(conn)


def _recv_exact(sock, n):
    chunks = []
    while n > 0:
        chunk = sock.recv(min(n, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)
