"""Document operations: index/create/update/delete/get/mget and bulk."""

from __future__ import annotations

import copy
import time
from typing import Any

from .cluster import Cluster
from .errors import EsError, bad_request, index_not_found, parsing, unsupported
from .index import Doc, Index, auto_id
from .jsonutil import JSONDecodeError, dumps, loads
from .source import filter_source, source_spec

SHARDS = {"total": 2, "successful": 1, "failed": 0}


def _flag(params: dict[str, str], name: str) -> bool:
    return params.get(name) in ("true", "")


def _int_or_none(v: Any) -> int | None:
    return None if v is None else int(v)


def _write_result(idx: Index, doc_id: str, result: str, version: int, seq_no: int, status: int) -> dict[str, Any]:
    return {
        "_index": idx.name,
        "_id": doc_id,
        "_version": version,
        "result": result,
        "_shards": dict(SHARDS),
        "_seq_no": seq_no,
        "_primary_term": 1,
        "status": status,
    }


def _parse_source(raw: bytes) -> dict[str, Any]:
    try:
        src = loads(raw)
    except JSONDecodeError as e:
        raise EsError(400, "document_parsing_exception", f"[1:1] failed to parse: {e}") from None
    if not isinstance(src, dict):
        raise EsError(
            400, "document_parsing_exception", "[1:1] failed to parse: Malformed content, must start with an object"
        )
    return src


def deep_update(dst: dict[str, Any], src: dict[str, Any]) -> bool:
    """Partial-document merge of the update API; returns whether anything changed."""
    changed = False
    for k, v in src.items():
        if isinstance(v, dict) and isinstance(dst.get(k), dict):
            changed |= deep_update(dst[k], v)
        elif k not in dst or dst[k] != v or type(dst[k]) is not type(v):
            dst[k] = copy.deepcopy(v)
            changed = True
    return changed


class DocOps:
    def __init__(self, cluster: Cluster):
        self.c = cluster

    # ------------------------------------------------------------ single-document writes
    def index_doc(
        self,
        target: str,
        doc_id: str | None,
        raw: bytes,
        op_type: str,
        params: dict[str, Any],
        src: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        if op_type not in ("index", "create"):
            raise bad_request(f"opType must be 'create' or 'index', found: [{op_type}]")
        if doc_id is None:
            doc_id = auto_id()
            op_type = "create"
        elif doc_id == "":
            raise EsError(
                400,
                "action_request_validation_exception",
                "Validation Failed: 1: if _id is specified it must not be empty;",
            )
        elif len(doc_id.encode()) > 512:
            raise EsError(
                400,
                "action_request_validation_exception",
                f"Validation Failed: 1: id [{doc_id}] is too long, must be no longer than 512 bytes but was: "
                f"{len(doc_id.encode())};",
            )
        if params.get("pipeline") and params.get("pipeline") != "_none":
            raise unsupported("ingest pipelines")
        idx = self.c.write_target(target, op_type)
        if src is None:
            src = _parse_source(raw)
        result, doc = idx.write(
            doc_id,
            src,
            raw,
            op_type,
            _int_or_none(params.get("if_seq_no")),
            _int_or_none(params.get("if_primary_term")),
        )
        return _write_result(idx, doc_id, result, doc.version, doc.seq_no, 201 if result == "created" else 200)

    def update_doc(self, target: str, doc_id: str, body: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise parsing("Failed to derive xcontent")
        for k in body:
            if k not in (
                "doc",
                "doc_as_upsert",
                "upsert",
                "script",
                "scripted_upsert",
                "detect_noop",
                "_source",
                "lang",
                "params",
            ):
                raise EsError(400, "x_content_parse_exception", f"[1:2] [UpdateRequest] unknown field [{k}]")
        if "script" in body:
            raise unsupported("update scripts (painless)")
        if "doc" not in body and "upsert" not in body:
            raise EsError(400, "action_request_validation_exception", "Validation Failed: 1: script or doc is missing;")
        if target in self.c.data_streams:
            raise bad_request("only write ops with an op_type of create are allowed in data streams")
        idx = self.c.indices.get(target)
        if idx is None:
            members = self.c._alias_members(target)
            if members:
                idx = self.c.write_target(target, "index")
        existing = idx.get(doc_id) if idx is not None else None
        if existing is None:
            upsert = body.get("doc") if body.get("doc_as_upsert") else body.get("upsert")
            if upsert is None:
                if idx is None:
                    raise index_not_found(target)
                raise idx.missing_error(doc_id)
            if idx is None:
                idx = self.c.write_target(target, "index")
            if params.get("if_seq_no") is not None:
                idx.check_cas(
                    doc_id, None, _int_or_none(params.get("if_seq_no")), _int_or_none(params.get("if_primary_term"))
                )
            raw = dumps(upsert)
            _, doc = idx.write(doc_id, copy.deepcopy(upsert), raw, "create")
            out = _write_result(idx, doc_id, "created", doc.version, doc.seq_no, 201)
            self._maybe_get(out, doc, body, params)
            return out
        idx.check_cas(
            doc_id, existing, _int_or_none(params.get("if_seq_no")), _int_or_none(params.get("if_primary_term"))
        )
        src = loads(existing.source)
        changed = deep_update(src, body.get("doc") or {})
        if not changed and body.get("detect_noop", True):
            out = {
                "_index": idx.name,
                "_id": doc_id,
                "_version": existing.version,
                "result": "noop",
                "_shards": {"total": 0, "successful": 0, "failed": 0},
                "_seq_no": existing.seq_no,
                "_primary_term": 1,
                "status": 200,
            }
            self._maybe_get(out, existing, body, params)
            return out
        _result, doc = idx.write(doc_id, src, dumps(src), "index")
        out = _write_result(idx, doc_id, "updated", doc.version, doc.seq_no, 200)
        self._maybe_get(out, doc, body, params)
        return out

    def _maybe_get(self, out: dict[str, Any], doc: Doc, body: dict[str, Any], params: dict[str, Any]) -> None:
        spec = body.get("_source")
        if spec is None and not any(k in params for k in ("_source", "_source_includes", "_source_excludes")):
            return
        fetch, inc, exc = source_spec(spec, params)
        if fetch:
            out["get"] = {
                "_seq_no": doc.seq_no,
                "_primary_term": 1,
                "found": True,
                "_source": filter_source(loads(doc.source), inc, exc),
            }

    def delete_doc(self, target: str, doc_id: str, params: dict[str, Any]) -> dict[str, Any]:
        idx = self.c.indices.get(target)
        if idx is None:
            if target in self.c.data_streams:
                raise bad_request("only write ops with an op_type of create are allowed in data streams")
            members = self.c._alias_members(target)
            if not members:
                # deleting from a missing index auto-creates it in ES; keep it simple: 404 index
                raise index_not_found(target)
            idx = self.c.write_target(target, "index")
        result, version, seq_no = idx.delete(
            doc_id, _int_or_none(params.get("if_seq_no")), _int_or_none(params.get("if_primary_term"))
        )
        return _write_result(idx, doc_id, result, version, seq_no, 200 if result == "deleted" else 404)

    # ------------------------------------------------------------ bulk
    def bulk(self, body: bytes, default_index: str | None, params: dict[str, str]) -> dict[str, Any]:
        started = time.perf_counter()
        lines = body.split(b"\n")
        if body and not body.endswith(b"\n"):
            raise bad_request("The bulk request must be terminated by a newline [\\n]")
        items: list[dict[str, Any]] = []
        errors = False
        touched: dict[str, Index] = {}
        reject = getattr(self.c, "reject_items", None)
        i, n = 0, len(lines)
        line_no = 0
        while i < n:
            line = lines[i]
            i += 1
            line_no += 1
            if not line.strip():
                continue
            try:
                action = loads(line)
            except JSONDecodeError:
                raise EsError(
                    400, "x_content_parse_exception", f"[{line_no}:1] Unexpected character in bulk action line"
                ) from None
            if not isinstance(action, dict) or len(action) != 1:
                raise bad_request(
                    f"Malformed action/metadata line [{line_no}], expected START_OBJECT or END_OBJECT but found [VALUE]"
                )
            ((op, meta),) = action.items()
            if op not in ("index", "create", "update", "delete"):
                raise bad_request(
                    f"Malformed action/metadata line [{line_no}], expected one of [create, delete, index, update] "
                    f"but found [{op}]"
                )
            if not isinstance(meta, dict):
                raise bad_request(
                    f"Malformed action/metadata line [{line_no}], expected START_OBJECT "
                    f"but found [{type(meta).__name__}]"
                )
            for k in meta:
                if k not in (
                    "_index",
                    "_id",
                    "routing",
                    "if_seq_no",
                    "if_primary_term",
                    "require_alias",
                    "pipeline",
                    "retry_on_conflict",
                    "dynamic_templates",
                    "version",
                    "version_type",
                    "_source",
                    "require_data_stream",
                    "list_executed_pipelines",
                ):
                    raise bad_request(f"Action/metadata line [{line_no}] contains an unknown parameter [{k}]")
            source_line = None
            if op != "delete":
                if i >= n or (not lines[i].strip() and i == n - 1):
                    raise EsError(
                        400, "action_request_validation_exception", "Validation Failed: 1: source is missing;"
                    )
                source_line = lines[i]
                i += 1
                line_no += 1
            index_name = meta.get("_index") or default_index
            doc_id = meta.get("_id")
            doc_id = None if doc_id is None else str(doc_id)
            if not index_name:
                raise EsError(400, "action_request_validation_exception", "Validation Failed: 1: index is missing;")
            try:
                if reject is not None and reject.take():
                    raise reject.error()
                item = self._bulk_op(op, index_name, doc_id, source_line, meta, params)
                idx = self.c.indices.get(item["_index"])
                if idx is not None:
                    touched[idx.name] = idx
            except EsError as e:
                errors = True
                resolved = index_name
                if index_name in self.c.data_streams:
                    resolved = self.c.data_streams[index_name].write_index.name
                item = {"_index": resolved, "_id": doc_id, "status": e.status, "error": e.cause_dict()}
            items.append({op: item})
        forced = self._refresh_touched(touched.values(), params)
        if forced:
            for it in items:
                ((op, item),) = it.items()
                if "error" not in item:
                    item["forced_refresh"] = True
        return {"errors": errors, "took": int((time.perf_counter() - started) * 1000), "items": items}

    def _bulk_op(
        self,
        op: str,
        index_name: str,
        doc_id: str | None,
        source_line: bytes | None,
        meta: dict[str, Any],
        params: dict[str, str],
    ) -> dict[str, Any]:
        cas = {k: meta[k] for k in ("if_seq_no", "if_primary_term") if k in meta}
        if op in ("index", "create"):
            p = dict(cas)
            if meta.get("pipeline") or params.get("pipeline"):
                p["pipeline"] = meta.get("pipeline") or params.get("pipeline")
            assert source_line is not None
            return self.index_doc(index_name, doc_id, source_line.strip(), op, p)
        if op == "update":
            if doc_id is None:
                raise EsError(400, "action_request_validation_exception", "Validation Failed: 1: id is missing;")
            assert source_line is not None
            try:
                body = loads(source_line)
            except JSONDecodeError as e:
                raise EsError(400, "x_content_parse_exception", f"[1:1] {e}") from None
            return self.update_doc(index_name, doc_id, body, cas)
        if doc_id is None:
            raise EsError(400, "action_request_validation_exception", "Validation Failed: 1: id is missing;")
        return self.delete_doc(index_name, doc_id, cas)

    def _refresh_touched(self, indices: Any, params: dict[str, str]) -> bool:
        r = params.get("refresh")
        if r in ("true", "", "wait_for"):
            for idx in indices:
                idx.refresh()
            return r != "wait_for"
        return False

    def refresh_after_write(self, index_name: str, params: dict[str, str], out: dict[str, Any]) -> None:
        idx = self.c.indices.get(out.get("_index", ""))
        if idx is not None and self._refresh_touched([idx], params):
            out["forced_refresh"] = True

    # ------------------------------------------------------------ reads
    def get_doc(self, target: str, doc_id: str, params: dict[str, str]) -> tuple[int, dict[str, Any]]:
        indices = self.c.resolve(target)
        if not indices:
            raise index_not_found(target)
        if len(indices) > 1 and target not in self.c.data_streams:
            raise bad_request(
                f"alias [{target}] has more than one index associated with it {[i.name for i in indices]}, "
                "can't execute a single index op"
            )
        for idx in reversed(indices):
            if params.get("realtime") == "false":
                doc = next((d for d in (idx.slots[s] for s in idx.visible) if d is not None and d.id == doc_id), None)
            else:
                doc = idx.get(doc_id)
            if doc is not None:
                out: dict[str, Any] = {
                    "_index": idx.name,
                    "_id": doc_id,
                    "_version": doc.version,
                    "_seq_no": doc.seq_no,
                    "_primary_term": 1,
                    "found": True,
                }
                fetch, inc, exc = source_spec(None, params)
                if params.get("stored_fields") == "_none_":
                    fetch = False
                if fetch:
                    out["_source"] = filter_source(loads(doc.source), inc, exc)
                return 200, out
        return 404, {"_index": indices[-1].name, "_id": doc_id, "found": False}

    def mget(self, default_index: str | None, body: dict[str, Any], params: dict[str, str]) -> dict[str, Any]:
        docs = []
        specs = body.get("docs")
        if specs is None:
            specs = [{"_id": i} for i in body.get("ids", [])]
        for spec in specs:
            index = spec.get("_index") or default_index
            if not index:
                raise EsError(
                    400, "action_request_validation_exception", "Validation Failed: 1: index is missing for doc 0;"
                )
            try:
                _, out = self.get_doc(index, str(spec["_id"]), params)
            except EsError as e:
                out = {"_index": index, "_id": spec["_id"], "error": e.cause_dict()}
            docs.append(out)
        return {"docs": docs}
