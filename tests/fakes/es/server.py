"""The HTTP/1.1 side of FakeElasticsearch and its public test API."""

from __future__ import annotations

import collections
import gzip
import socket
import socketserver
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

from .cluster import Cluster
from .errors import EsError
from .jsonutil import dumps, loads
from .routes import Request, Router

_ERRORS = {
    429: (
        "es_rejected_execution_exception",
        "rejected execution of coordinating operation [coordinating_and_primary_bytes=0, replica_bytes=0, "
        "all_bytes=0, coordinating_operation_bytes=0, max_coordinating_and_primary_bytes=0]",
    ),
    500: ("internal_server_error", "injected failure"),
    502: ("bad_gateway", "injected failure"),
    503: ("unavailable_shards_exception", "[fake][0] primary shard is not active Timeout: [1m]"),
    504: ("timeout_exception", "injected failure"),
}
_ACCEPTED_TYPES = (
    "application/json",
    "application/x-ndjson",
    "application/vnd.elasticsearch+json",
    "application/vnd.elasticsearch+x-ndjson",
)


def _error_body(status: int, error_type: str | None, reason: str | None) -> dict[str, Any]:
    t, r = _ERRORS.get(status, ("fake_injected_exception", "injected failure"))
    return EsError(status, error_type or t, reason or r).body()


class _Rule:
    def __init__(
        self,
        n: int,
        status: int,
        path_prefix: str | None,
        method: str | None,
        error_type: str | None,
        reason: str | None,
        body: Any,
    ):
        self.remaining = n
        self.status = status
        self.path_prefix = path_prefix
        self.method = method.upper() if method else None
        self.body = body if body is not None else _error_body(status, error_type, reason)

    def matches(self, method: str, path: str) -> bool:
        if self.method and method != self.method:
            return False
        if self.path_prefix is None:
            return True
        prefix = self.path_prefix
        if not prefix.startswith("/"):
            return prefix in path
        if path.startswith(prefix):
            return True
        # API prefixes ("/_bulk", "/_search") also match the per-index form ("/logs/_bulk")
        parts = path.split("/", 2)
        return (
            prefix.startswith("/_")
            and len(parts) == 3
            and not parts[1].startswith("_")
            and ("/" + parts[2]).startswith(prefix)
        )


class _ItemRejecter:
    def __init__(self) -> None:
        self.remaining = 0
        self.status = 429

    def take(self) -> bool:
        if self.remaining > 0:
            self.remaining -= 1
            return True
        return False

    def error(self) -> EsError:
        t, r = _ERRORS.get(self.status, ("fake_injected_exception", "injected failure"))
        return EsError(self.status, t, r)


class _HTTPServer(socketserver.ThreadingMixIn, HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False
    request_queue_size = 128
    fake: FakeElasticsearch


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        try:
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        self.server.fake._track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.fake._track(self.connection, False)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _read_body(self) -> bytes | None:
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            chunks = []
            while True:
                line = self.rfile.readline()
                if not line:
                    return None
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            body = b"".join(chunks)
        else:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            if len(body) < length:
                return None
        if (self.headers.get("Content-Encoding") or "").lower() == "gzip" and body:
            body = gzip.decompress(body)
        return body

    def _handle(self) -> None:
        fake = self.server.fake
        body = self._read_body()
        if body is None or fake._unavailable:
            self.close_connection = True
            _abort(self.connection)
            return
        status, ctype, payload = fake._respond(self.command, self.path, dict(self.headers.items()), body)
        if fake._unavailable:
            self.close_connection = True
            _abort(self.connection)
            return
        head = [
            f"HTTP/1.1 {status} {self.responses.get(status, ('Unknown',))[0]}",
            "X-elastic-product: Elasticsearch",
            f"content-type: {ctype}",
            f"content-length: {0 if self.command == 'HEAD' else len(payload)}",
        ]
        opaque = self.headers.get("X-Opaque-Id")
        if opaque:
            head.append(f"X-Opaque-Id: {opaque}")
        if self.close_connection:
            head.append("Connection: close")
        data = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1")
        if self.command != "HEAD":
            data += payload
        try:
            self.wfile.write(data)
        except OSError:
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = _handle


def _abort(sock: socket.socket) -> None:
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    except OSError:
        pass
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


class FakeElasticsearch:
    """An Elasticsearch 8.x look-alike served over real loopback HTTP.

    Options (all keyword):
      realtime=True          writes are searchable at once; False = near-real-time: searchable after a refresh
                             (``refresh=true|wait_for`` on the write, ``_refresh``, or ``refresh_interval`` seconds)
      refresh_interval=1.0   auto-refresh period when realtime=False (None: only explicit refreshes)
      dynamic_strings="keyword"  dynamic mapping of JSON strings: "keyword" or "text" (ES default: text + .keyword)
      id_field_data=False    ES 8 default: sorting/aggregating on _id is rejected
      destructive_requires_name=True  ES 8 default: DELETE /logs-* is rejected
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        realtime: bool = True,
        refresh_interval: float | None = 1.0,
        dynamic_strings: str = "keyword",
        id_field_data: bool = False,
        destructive_requires_name: bool = True,
    ):
        if dynamic_strings not in ("keyword", "text"):
            raise ValueError("dynamic_strings must be 'keyword' or 'text'")
        self.host = host
        self.port = port
        self.cluster = Cluster(
            realtime=realtime,
            refresh_interval=refresh_interval,
            dynamic_strings=dynamic_strings,
            id_field_data=id_field_data,
            destructive_requires_name=destructive_requires_name,
        )
        self.cluster.reject_items = _ItemRejecter()  # type: ignore[attr-defined]
        self.router = Router(self.cluster)
        self.request_log: collections.deque[tuple[str, str]] = collections.deque(maxlen=10000)
        self._rules: list[_Rule] = []
        self._rules_lock = threading.Lock()
        self._state_lock = threading.RLock()
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        self._server: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._unavailable = False
        self._started = False

    # ------------------------------------------------------------------ lifecycle
    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> FakeElasticsearch:
        with self._state_lock:
            if not self._started:
                self._listen()
                self._started = True
        return self

    def stop(self) -> None:
        with self._state_lock:
            self._close()
            self._started = False

    def __enter__(self) -> FakeElasticsearch:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def _listen(self) -> None:
        deadline = time.monotonic() + 5
        while True:
            try:
                server = _HTTPServer((self.host, self.port), _Handler)
                break
            except OSError:
                if self.port == 0 or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        server.fake = self
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name=f"fake-es-{self.port}", daemon=True
        )
        self._thread.start()

    def _close(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        with self._conns_lock:
            conns = list(self._conns)
        for c in conns:
            _abort(c)

    def _track(self, sock: socket.socket, add: bool) -> None:
        with self._conns_lock:
            if add:
                self._conns.add(sock)
            else:
                self._conns.discard(sock)

    # ------------------------------------------------------------------ fault injection
    def fail_next(
        self,
        n: int = 1,
        status: int = 429,
        path_prefix: str | None = None,
        *,
        method: str | None = None,
        error_type: str | None = None,
        reason: str | None = None,
        body: Any = None,
    ) -> None:
        """The next `n` matching requests answer `status` with an ES error body (429 ->
        es_rejected_execution_exception, 503 -> unavailable_shards_exception, ...). `path_prefix` limits it to
        matching paths: "/_bulk" matches "/_bulk" and "/{index}/_bulk" (likewise "/_search", "/_count", ...);
        "/logs" matches paths starting with "/logs"; a prefix without a leading "/" matches anywhere in the
        path. `method` limits it to one HTTP method."""
        with self._rules_lock:
            self._rules.append(_Rule(n, status, path_prefix, method, error_type, reason, body))

    def reject_bulk_items(self, n: int, status: int = 429) -> None:
        """The next `n` bulk *items* fail individually (per-item status/error, `errors: true`)."""
        rej = self.cluster.reject_items  # type: ignore[attr-defined]
        rej.remaining += n
        rej.status = status

    def clear_failures(self) -> None:
        with self._rules_lock:
            self._rules.clear()
        self.cluster.reject_items.remaining = 0  # type: ignore[attr-defined]

    def set_unavailable(self, unavailable: bool = True) -> None:
        """Like a downed node: stop listening (connection refused) and drop open connections; False restores
        the server on the same port with its data."""
        with self._state_lock:
            if unavailable == self._unavailable:
                return
            self._unavailable = unavailable
            if not self._started:
                return
            if unavailable:
                self._close()
            else:
                self._listen()

    # ------------------------------------------------------------------ inspection
    def documents(self, index_or_pattern: str = "*", with_meta: bool = False) -> list[dict[str, Any]]:
        """Current (real-time) documents of the matching indices / data streams / aliases, in write order."""
        with self.cluster.lock:
            indices = self.cluster.resolve(index_or_pattern, ignore_unavailable=True, expand_wildcards="all")
            out = []
            for idx in indices:
                for doc in sorted(idx.docs.values(), key=lambda d: d.slot):
                    src = loads(doc.source)
                    out.append(
                        {"_index": idx.name, "_id": doc.id, "_version": doc.version, "_source": src}
                        if with_meta
                        else src
                    )
            return out

    def document(self, index: str, doc_id: str) -> dict[str, Any] | None:
        with self.cluster.lock:
            for idx in self.cluster.resolve(index, ignore_unavailable=True, expand_wildcards="all"):
                doc = idx.docs.get(doc_id)
                if doc is not None:
                    return loads(doc.source)
        return None

    def indices(self) -> list[str]:
        with self.cluster.lock:
            return list(self.cluster.indices)

    def refresh(self, index_or_pattern: str = "*") -> None:
        with self.cluster.lock:
            for idx in self.cluster.resolve(index_or_pattern, ignore_unavailable=True, expand_wildcards="all"):
                idx.refresh()

    def reset(self) -> None:
        """Drop all indices, templates, data streams, policies and injected failures."""
        with self.cluster.lock:
            self.cluster.reset()
        self.clear_failures()
        self.request_log.clear()

    # ------------------------------------------------------------------ request handling
    def _respond(self, method: str, target: str, headers: dict[str, str], body: bytes) -> tuple[int, str, bytes]:
        lower = {k.lower(): v for k, v in headers.items()}
        compat = "compatible-with" in (lower.get("accept") or "") or "compatible-with" in (
            lower.get("content-type") or ""
        )
        json_type = "application/vnd.elasticsearch+json;compatible-with=8" if compat else "application/json"
        self.request_log.append((method, target))
        path = target.split("?", 1)[0]
        with self._rules_lock:
            for rule in self._rules:
                if rule.matches(method, path):
                    rule.remaining -= 1
                    if rule.remaining <= 0:
                        self._rules.remove(rule)
                    return rule.status, json_type, dumps(rule.body)
        if body:
            ctype = (lower.get("content-type") or "").split(";")[0].strip().lower()
            if ctype not in _ACCEPTED_TYPES:
                msg = (
                    f"Content-Type header [{lower.get('content-type')}] is not supported"
                    if ctype
                    else "Content-Type header is missing"
                )
                return 406, json_type, dumps({"error": msg, "status": 406})
        try:
            status, out = self.router.dispatch(Request(method, target, body, lower))
        except EsError as e:
            status, out = e.status, e.body()
        except Exception as e:
            import traceback

            traceback.print_exc()
            status, out = 500, EsError(500, "fake_internal_error", f"{type(e).__name__}: {e}").body()
        if out is None:
            return status, json_type, b""
        if isinstance(out, str):
            return status, "text/plain; charset=UTF-8", out.encode()
        return status, json_type, dumps(out)
