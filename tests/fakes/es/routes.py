"""REST routing: (method, path) -> handler, independent of the socket layer."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, unquote

from .cluster import Cluster
from .errors import EsError, bad_request
from .jsonutil import JSONDecodeError, loads
from .ops import Ops

VERSION = {
    "number": "8.15.0",
    "build_flavor": "default",
    "build_type": "docker",
    "build_hash": "1a77947f34deddb41af25e6f0ddb8e830159c179",
    "build_date": "2024-08-05T10:05:34.233336849Z",
    "build_snapshot": False,
    "lucene_version": "9.11.1",
    "minimum_wire_compatibility_version": "7.17.0",
    "minimum_index_compatibility_version": "7.0.0",
}
ACK = {"acknowledged": True}

Result = tuple[int, Any]


class Request:
    def __init__(self, method: str, target: str, body: bytes, headers: dict[str, str]):
        self.method = method.upper()
        path, _, query = target.partition("?")
        self.path = path
        self.segments = [unquote(s) for s in path.split("/") if s]
        self.params: dict[str, str] = dict(parse_qsl(query, keep_blank_values=True))
        self.body = body
        self.headers = headers

    def json(self, required: bool = False) -> Any:
        if not self.body or not self.body.strip():
            if required:
                raise EsError(400, "parse_exception", "request body is required")
            return None
        try:
            return loads(self.body)
        except JSONDecodeError as e:
            raise EsError(400, "x_content_parse_exception", f"[1:1] Unexpected character: {e}") from None


Handler = Callable[..., Result]


class Router:
    def __init__(self, cluster: Cluster):
        self.c = cluster
        self.ops = Ops(cluster)
        self.routes: list[tuple[list[str], dict[str, Handler]]] = []
        self._build()

    def add(self, pattern: str, **methods: Handler) -> None:
        self.routes.append(([p for p in pattern.split("/") if p], {m.upper(): h for m, h in methods.items()}))

    def dispatch(self, req: Request) -> Result:
        allowed: list[str] | None = None
        for pattern, methods in self.routes:
            args = _match(pattern, req.segments)
            if args is None:
                continue
            h = methods.get(req.method) or (
                methods.get("GET") if req.method == "HEAD" and "HEAD" not in methods else None
            )
            if h is None:
                allowed = allowed or sorted(methods)
                continue
            with self.c.lock:
                status, body = h(req, **args)
            if req.params.get("filter_path") and isinstance(body, dict):
                body = filter_path(body, req.params["filter_path"].split(","))
            return status, body
        if allowed:
            return 405, {
                "error": f"Incorrect HTTP method for uri [{req.path}] and method [{req.method}], allowed: {allowed}",
                "status": 405,
            }
        return 400, {"error": f"no handler found for uri [{req.path}] and method [{req.method}]"}

    # ------------------------------------------------------------------ table
    def _build(self) -> None:
        a = self.add
        a("/", get=self.info, head=self.ping)
        a("/_cluster/health", get=self.health)
        a("/_cluster/health/{index}", get=self.health)
        a("/_cat/indices", get=self.cat_indices)
        a("/_cat/indices/{index}", get=self.cat_indices)
        a("/_index_template", get=self.get_templates)
        a(
            "/_index_template/{name}",
            put=self.put_template,
            post=self.put_template,
            get=self.get_templates,
            head=self.head_template,
            delete=self.delete_template,
        )
        a("/_component_template", get=self.get_components)
        a(
            "/_component_template/{name}",
            put=self.put_component,
            post=self.put_component,
            get=self.get_components,
            delete=self.delete_component,
        )
        a("/_ilm/policy", get=self.get_policies)
        a("/_ilm/policy/{name}", put=self.put_policy, get=self.get_policies, delete=self.delete_policy)
        a("/_data_stream", get=self.get_data_streams)
        a("/_data_stream/{name}", put=self.put_data_stream, get=self.get_data_streams, delete=self.delete_data_stream)
        a("/_bulk", post=self.bulk, put=self.bulk)
        a("/_refresh", post=self.refresh, get=self.refresh)
        a("/_search", get=self.search, post=self.search)
        a("/_search/scroll", get=self.scroll, post=self.scroll, delete=self.clear_scroll)
        a("/_search/scroll/{scroll_id}", get=self.scroll, post=self.scroll, delete=self.clear_scroll)
        a("/_count", get=self.count, post=self.count)
        a("/_pit", delete=self.close_pit)
        a("/_mget", get=self.mget, post=self.mget)
        a("/_aliases", post=self.aliases)
        a("/_alias", get=self.get_alias)
        a("/_alias/{name}", get=self.get_alias, head=self.head_alias)
        a("/_mapping", get=self.get_mapping)
        a("/_settings", get=self.get_settings)
        a("/_tasks/{task_id}", get=self.get_task)
        a("/{index}/_bulk", post=self.bulk, put=self.bulk)
        a("/{index}/_refresh", post=self.refresh, get=self.refresh)
        a("/{index}/_search", get=self.search, post=self.search)
        a("/{index}/_count", get=self.count, post=self.count)
        a("/{index}/_pit", post=self.open_pit)
        a("/{index}/_delete_by_query", post=self.delete_by_query)
        a("/{index}/_update_by_query", post=self.update_by_query)
        a("/{index}/_mget", get=self.mget, post=self.mget)
        a("/{index}/_rollover", post=self.rollover)
        a("/{index}/_alias", get=self.get_alias)
        a(
            "/{index}/_alias/{name}",
            get=self.get_alias,
            put=self.put_alias,
            post=self.put_alias,
            delete=self.delete_alias,
            head=self.head_alias,
        )
        a("/{index}/_aliases/{name}", put=self.put_alias, post=self.put_alias, delete=self.delete_alias)
        a("/{index}/_mapping", get=self.get_mapping, put=self.put_mapping, post=self.put_mapping)
        a("/{index}/_settings", get=self.get_settings, put=self.put_settings)
        a("/{index}/_doc", post=self.post_doc)
        a(
            "/{index}/_doc/{id}",
            put=self.put_doc,
            post=self.put_doc,
            get=self.get_doc,
            head=self.head_doc,
            delete=self.delete_doc,
        )
        a("/{index}/_create/{id}", put=self.create_doc, post=self.create_doc)
        a("/{index}/_update/{id}", post=self.update_doc)
        a("/{index}/_source/{id}", get=self.get_source, head=self.head_doc)
        a("/{index}", put=self.create_index, head=self.head_index, get=self.get_index, delete=self.delete_index)

    # ------------------------------------------------------------------ cluster
    def info(self, req: Request) -> Result:
        return 200, {
            "name": "fake-node-0",
            "cluster_name": "fake-elasticsearch",
            "cluster_uuid": self.c.cluster_uuid,
            "version": dict(VERSION),
            "tagline": "You Know, for Search",
        }

    def ping(self, req: Request) -> Result:
        return 200, None

    def health(self, req: Request, index: str | None = None) -> Result:
        n = len(self.c.resolve(index, ignore_unavailable=False)) if index else len(self.c.indices)
        return 200, {
            "cluster_name": "fake-elasticsearch",
            "status": "green",
            "timed_out": False,
            "number_of_nodes": 1,
            "number_of_data_nodes": 1,
            "active_primary_shards": n,
            "active_shards": n,
            "relocating_shards": 0,
            "initializing_shards": 0,
            "unassigned_shards": 0,
            "delayed_unassigned_shards": 0,
            "number_of_pending_tasks": 0,
            "number_of_in_flight_fetch": 0,
            "task_max_waiting_in_queue_millis": 0,
            "active_shards_percent_as_number": 100.0,
        }

    def cat_indices(self, req: Request, index: str | None = None) -> Result:
        rows = []
        for idx in self.c.resolve(index, expand_wildcards=req.params.get("expand_wildcards", "all")):
            rows.append(
                {
                    "health": "green",
                    "status": "open",
                    "index": idx.name,
                    "uuid": idx.uuid,
                    "pri": "1",
                    "rep": "1",
                    "docs.count": str(len(idx.docs)),
                    "docs.deleted": "0",
                    "store.size": "1kb",
                    "pri.store.size": "1kb",
                    "dataset.size": "1kb",
                }
            )
        if req.params.get("format") == "json":
            return 200, rows
        text = "".join(
            f"{r['health']} {r['status']} {r['index']} {r['uuid']} 1 1 {r['docs.count']} 0 1kb 1kb 1kb\n" for r in rows
        )
        return 200, text

    def get_task(self, req: Request, task_id: str) -> Result:
        t = self.c.tasks.get(task_id)
        if t is None:
            return 404, EsError(
                404, "resource_not_found_exception", f"task [{task_id}] isn't running and hasn't stored its results"
            ).body()
        return 200, t

    # ------------------------------------------------------------------ templates
    def put_template(self, req: Request, name: str) -> Result:
        self.c.put_template(name, req.json(required=True), req.params.get("create") == "true")
        return 200, dict(ACK)

    def get_templates(self, req: Request, name: str | None = None) -> Result:
        import fnmatch

        names = [n for n in self.c.templates if name is None or any(fnmatch.fnmatchcase(n, p) for p in name.split(","))]
        if name is not None and "*" not in name and not names:
            return 404, EsError(
                404, "resource_not_found_exception", f"index template matching [{name}] not found"
            ).body()
        return 200, {"index_templates": [{"name": n, "index_template": self.c.template_body(n)} for n in names]}

    def head_template(self, req: Request, name: str) -> Result:
        return (200 if name in self.c.templates else 404), None

    def delete_template(self, req: Request, name: str) -> Result:
        self.c.delete_template(name)
        return 200, dict(ACK)

    def put_component(self, req: Request, name: str) -> Result:
        body = req.json(required=True)
        if "template" not in body:
            raise EsError(400, "x_content_parse_exception", "[1:1] Required [template]")
        from .fields import validate_mapping

        validate_mapping((body.get("template") or {}).get("mappings") or {})
        self.c.component_templates[name] = body
        return 200, dict(ACK)

    def get_components(self, req: Request, name: str | None = None) -> Result:
        import fnmatch

        names = [n for n in self.c.component_templates if name is None or fnmatch.fnmatchcase(n, name)]
        if name is not None and "*" not in name and not names:
            return 404, EsError(
                404, "resource_not_found_exception", f"component template matching [{name}] not found"
            ).body()
        return 200, {
            "component_templates": [{"name": n, "component_template": self.c.component_templates[n]} for n in names]
        }

    def delete_component(self, req: Request, name: str) -> Result:
        if name not in self.c.component_templates:
            return 404, EsError(
                404, "resource_not_found_exception", f"component template matching [{name}] not found"
            ).body()
        users = [t for t, b in self.c.templates.items() if name in b.get("composed_of", [])]
        if users:
            raise bad_request(
                f"component templates [{name}] cannot be removed as they are still in use by index templates "
                f"[{', '.join(users)}]"
            )
        del self.c.component_templates[name]
        return 200, dict(ACK)

    # ------------------------------------------------------------------ ILM
    def put_policy(self, req: Request, name: str) -> Result:
        self.c.put_policy(name, req.json(required=True))
        return 200, dict(ACK)

    def get_policies(self, req: Request, name: str | None = None) -> Result:
        if name is None:
            return 200, {n: self.c.policy_body(n) for n in self.c.ilm}
        out = {}
        for n in name.split(","):
            if n not in self.c.ilm:
                return 404, EsError(404, "resource_not_found_exception", f"Lifecycle policy not found: [{n}]").body()
            out[n] = self.c.policy_body(n)
        return 200, out

    def delete_policy(self, req: Request, name: str) -> Result:
        if name not in self.c.ilm:
            return 404, EsError(404, "resource_not_found_exception", f"Lifecycle policy not found: {name}").body()
        used = self.c.policy_body(name)["in_use_by"]["indices"]
        if used:
            raise bad_request(
                f"Cannot delete policy [{name}]. It is in use by one or more indices: [{', '.join(used)}]"
            )
        del self.c.ilm[name]
        return 200, dict(ACK)

    # ------------------------------------------------------------------ data streams
    def put_data_stream(self, req: Request, name: str) -> Result:
        self.c.create_data_stream(name)
        return 200, dict(ACK)

    def get_data_streams(self, req: Request, name: str | None = None) -> Result:
        return 200, {"data_streams": [self.c.data_stream_body(ds) for ds in self.c.match_data_streams(name)]}

    def delete_data_stream(self, req: Request, name: str) -> Result:
        self.c.delete_data_stream(name)
        return 200, dict(ACK)

    def rollover(self, req: Request, index: str) -> Result:
        ds = self.c.data_streams.get(index)
        if ds is None:
            raise unsupported_rollover(index)
        old, new = self.c.rollover_data_stream(ds)
        return 200, {
            "acknowledged": True,
            "shards_acknowledged": True,
            "old_index": old,
            "new_index": new,
            "rolled_over": True,
            "dry_run": False,
            "lazy": False,
            "conditions": {},
        }

    # ------------------------------------------------------------------ indices
    def create_index(self, req: Request, index: str) -> Result:
        idx = self.c.create_index(index, req.json() or {})
        return 200, {"acknowledged": True, "shards_acknowledged": True, "index": idx.name}

    def head_index(self, req: Request, index: str) -> Result:
        try:
            found = self.c.resolve_params(index, req.params)
        except EsError:
            return 404, None
        return (200 if found else 404), None

    def get_index(self, req: Request, index: str) -> Result:
        out = {}
        for idx in self.c.resolve_params(index, req.params):
            body: dict[str, Any] = {
                "aliases": dict(idx.aliases),
                "mappings": idx.mapping.to_dict(),
                "settings": idx.settings_body(),
            }
            if idx.data_stream:
                body["data_stream"] = idx.data_stream
            out[idx.name] = body
        return 200, out

    def delete_index(self, req: Request, index: str) -> Result:
        self.c.delete_index(index, req.params)
        return 200, dict(ACK)

    def get_mapping(self, req: Request, index: str | None = None) -> Result:
        return 200, {idx.name: {"mappings": idx.mapping.to_dict()} for idx in self.c.resolve_params(index, req.params)}

    def put_mapping(self, req: Request, index: str) -> Result:
        body = req.json(required=True)
        targets = self.c.resolve_params(index, req.params)
        for idx in targets:
            idx.mapping.merge(body, check_conflicts=True)
        return 200, dict(ACK)

    def get_settings(self, req: Request, index: str | None = None) -> Result:
        return 200, {idx.name: {"settings": idx.settings_body()} for idx in self.c.resolve_params(index, req.params)}

    def put_settings(self, req: Request, index: str) -> Result:
        from .cluster import _deep_merge
        from .index import normalize_settings

        body = req.json(required=True)
        for idx in self.c.resolve_params(index, req.params):
            _deep_merge(idx.settings, normalize_settings(body.get("settings", body) if "settings" in body else body))
        return 200, dict(ACK)

    def refresh(self, req: Request, index: str | None = None) -> Result:
        indices = self.c.resolve_params(index, req.params)
        for idx in indices:
            idx.refresh()
        n = len(indices)
        return 200, {"_shards": {"total": n * 2, "successful": n, "failed": 0}}

    # ------------------------------------------------------------------ aliases
    def aliases(self, req: Request) -> Result:
        body = req.json(required=True)
        self.c.update_aliases(body.get("actions", []))
        return 200, {"acknowledged": True, "errors": False}

    def put_alias(self, req: Request, index: str, name: str) -> Result:
        spec = dict(req.json() or {})
        spec.update({"index": index, "alias": name})
        self.c.update_aliases([{"add": spec}])
        return 200, dict(ACK)

    def delete_alias(self, req: Request, index: str, name: str) -> Result:
        self.c.update_aliases([{"remove": {"index": index, "alias": name}}])
        return 200, dict(ACK)

    def get_alias(self, req: Request, index: str | None = None, name: str | None = None) -> Result:
        import fnmatch

        out: dict[str, Any] = {}
        found = False
        for idx in self.c.resolve(index, expand_wildcards="all") if index else list(self.c.indices.values()):
            als = {
                a: p
                for a, p in idx.aliases.items()
                if name is None or any(fnmatch.fnmatchcase(a, n) for n in name.split(","))
            }
            if als:
                found = True
            if als or name is None:
                out[idx.name] = {"aliases": als}
        if name is not None and not found:
            return 404, {"error": f"alias [{name}] missing", "status": 404}
        return 200, out

    def head_alias(self, req: Request, name: str, index: str | None = None) -> Result:
        status, _ = self.get_alias(req, index, name)
        return status, None

    # ------------------------------------------------------------------ documents
    def _doc_params(self, req: Request) -> dict[str, Any]:
        return req.params

    def _write(self, req: Request, index: str, out: dict[str, Any]) -> Result:
        self.ops.refresh_after_write(index, req.params, out)
        status = out.pop("status")
        return status, out

    def post_doc(self, req: Request, index: str) -> Result:
        out = self.ops.index_doc(index, None, req.body, req.params.get("op_type", "create"), req.params)
        return self._write(req, index, out)

    def put_doc(self, req: Request, index: str, id: str) -> Result:
        out = self.ops.index_doc(index, id, req.body, req.params.get("op_type", "index"), req.params)
        return self._write(req, index, out)

    def create_doc(self, req: Request, index: str, id: str) -> Result:
        out = self.ops.index_doc(index, id, req.body, "create", req.params)
        return self._write(req, index, out)

    def update_doc(self, req: Request, index: str, id: str) -> Result:
        out = self.ops.update_doc(index, id, req.json(required=True), req.params)
        return self._write(req, index, out)

    def delete_doc(self, req: Request, index: str, id: str) -> Result:
        out = self.ops.delete_doc(index, id, req.params)
        return self._write(req, index, out)

    def get_doc(self, req: Request, index: str, id: str) -> Result:
        return self.ops.get_doc(index, id, req.params)

    def head_doc(self, req: Request, index: str, id: str) -> Result:
        try:
            status, _ = self.ops.get_doc(index, id, req.params)
        except EsError as e:
            return e.status, None
        return status, None

    def get_source(self, req: Request, index: str, id: str) -> Result:
        status, out = self.ops.get_doc(index, id, req.params)
        if status != 200:
            return 404, EsError(404, "resource_not_found_exception", f"Document not found [{index}]/[{id}]").body()
        return 200, out.get("_source")

    def mget(self, req: Request, index: str | None = None) -> Result:
        return 200, self.ops.mget(index, req.json(required=True), req.params)

    def bulk(self, req: Request, index: str | None = None) -> Result:
        if not req.body:
            raise EsError(400, "action_request_validation_exception", "Validation Failed: 1: no requests added;")
        return 200, self.ops.bulk(req.body, index, req.params)

    # ------------------------------------------------------------------ search
    def search(self, req: Request, index: str | None = None) -> Result:
        return 200, self.ops.search(index, req.json() or {}, req.params)

    def scroll(self, req: Request, scroll_id: str | None = None) -> Result:
        body = req.json() or {}
        sid = body.get("scroll_id") or scroll_id or req.params.get("scroll_id")
        if req.method == "DELETE":
            return self.clear_scroll(req, scroll_id)
        if not sid:
            raise EsError(400, "action_request_validation_exception", "Validation Failed: 1: scrollId is missing;")
        return 200, self.ops.scroll(sid, body.get("scroll") or req.params.get("scroll"))

    def clear_scroll(self, req: Request, scroll_id: str | None = None) -> Result:
        body = req.json() or {}
        ids = body.get("scroll_id") or (scroll_id.split(",") if scroll_id else [])
        if isinstance(ids, str):
            ids = [ids]
        out = self.ops.clear_scroll(list(ids))
        return (200 if out["num_freed"] or ids == ["_all"] else 404), out

    def count(self, req: Request, index: str | None = None) -> Result:
        return 200, self.ops.count(index, req.json() or {}, req.params)

    def open_pit(self, req: Request, index: str) -> Result:
        return 200, self.ops.open_pit(index, req.params)

    def close_pit(self, req: Request) -> Result:
        body = req.json(required=True)
        return self.ops.close_pit(body.get("id", ""))

    def delete_by_query(self, req: Request, index: str) -> Result:
        return 200, self.ops.by_query("delete", index, req.json(required=True), req.params)

    def update_by_query(self, req: Request, index: str) -> Result:
        return 200, self.ops.by_query("update", index, req.json() or {}, req.params)


def unsupported_rollover(index: str) -> EsError:
    return EsError(
        400, "illegal_argument_exception", f"[fake-es] rollover is only supported for data streams, not [{index}]"
    )


def _match(pattern: list[str], segs: list[str]) -> dict[str, str] | None:
    if len(pattern) != len(segs):
        return None
    args: dict[str, str] = {}
    for p, s in zip(pattern, segs, strict=False):
        if p.startswith("{"):
            if p == "{index}" and s.startswith("_") and s not in ("_all",):
                return None
            args[p[1:-1]] = s
        elif p != s:
            return None
    return args


def filter_path(body: Any, paths: list[str]) -> Any:
    """The generic ``filter_path`` response filter (``*`` and ``**`` wildcards, ``-`` exclusions)."""
    inc = [p.split(".") for p in paths if not p.startswith("-")]
    exc = [p[1:].split(".") for p in paths if p.startswith("-")]

    def seg_ok(pat: str, key: str) -> bool:
        import fnmatch

        return fnmatch.fnmatchcase(key, pat)

    def keep(obj: Any, pats: list[list[str]]) -> Any:
        if not pats:
            return obj
        if isinstance(obj, list):
            out = [keep(x, pats) for x in obj]
            return [x for x in out if x is not _DROP]
        if not isinstance(obj, dict):
            return obj if any(not p for p in pats) else _DROP
        if any(not p for p in pats):
            return obj
        out = {}
        for k, v in obj.items():
            sub = []
            for p in pats:
                if p[0] == "**":
                    sub.append(p)
                    if len(p) > 1 and seg_ok(p[1], k):
                        sub.append(p[2:])
                elif seg_ok(p[0], k):
                    sub.append(p[1:])
            if sub:
                r = keep(v, sub)
                if r is not _DROP and r != {} and r != []:
                    out[k] = r
        return out if out else _DROP

    def drop(obj: Any, pats: list[list[str]]) -> Any:
        if isinstance(obj, list):
            return [drop(x, pats) for x in obj]
        if not isinstance(obj, dict):
            return obj
        out = {}
        for k, v in obj.items():
            sub = [p[1:] for p in pats if seg_ok(p[0], k)]
            if any(not p for p in sub):
                continue
            out[k] = drop(v, sub) if sub else v
        return out

    result = keep(body, inc) if inc else body
    if result is _DROP:
        result = {}
    return drop(result, exc) if exc else result


_DROP = object()
