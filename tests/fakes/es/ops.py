"""Document operations (index/create/update/delete/get, bulk), search/count/by-query, PIT and scroll."""

from __future__ import annotations

import base64
import os
import time
from typing import Any

from . import dates
from .errors import EsError, bad_request, parsing, search_phase, unsupported
from .index import Doc, Index
from .jsonutil import loads
from .ops_docs import DocOps, _flag
from .query import Ctx, compile_query
from .search import SearchRequest, render_hits, run_search


class Ops(DocOps):
    """Search, count, by-query, point in time and scroll on top of the document operations."""

    # ------------------------------------------------------------ search
    def views(self, indices: list[Index], now: int) -> list[Ctx]:
        out = []
        for idx in indices:
            if not idx.realtime and self.c.refresh_interval is not None:
                if time.monotonic() - idx.last_refresh >= self.c.refresh_interval:
                    idx.refresh()
            out.append(Ctx(idx, idx.slots, idx.visible, True, now))
        return out

    def search(self, target: str | None, body: dict[str, Any], params: dict[str, str]) -> dict[str, Any]:
        now = dates.now_ms()
        body = body or {}
        pit_id = None
        if body.get("pit"):
            if target:
                raise EsError(
                    400,
                    "action_request_validation_exception",
                    "Validation Failed: 1: [indices] cannot be used with point in time. "
                    "Do not specify any index with point in time.;",
                )
            pit_id = body["pit"].get("id")
            views = self._pit_views(pit_id, body["pit"].get("keep_alive"), now)
            body = {k: v for k, v in body.items() if k != "pit"}
        else:
            views = self.views(self.c.resolve_params(target, params), now)
        req = SearchRequest(body, params)
        scroll = params.get("scroll")
        if scroll and pit_id:
            raise bad_request("Cannot use [scroll] with point in time")
        resp, rest = run_search(
            views, req, self.c.id_field_data, pit_id is not None, limit_override=req.size if scroll else None
        )
        if pit_id:
            resp["pit_id"] = pit_id
        if scroll:
            sid = base64.urlsafe_b64encode(os.urandom(24)).decode()
            self.c.scrolls[sid] = {
                "rest": rest,
                "req": req,
                "size": req.size,
                "total": resp["hits"].get("total"),
                "expires": time.monotonic() + _keep_alive(scroll),
            }
            resp = dict({"_scroll_id": sid}, **resp)
        return resp

    def scroll(self, scroll_id: str, keep_alive: str | None) -> dict[str, Any]:
        ctx = self.c.scrolls.get(scroll_id)
        if ctx is None or ctx["expires"] < time.monotonic():
            self.c.scrolls.pop(scroll_id, None)
            raise EsError(
                404,
                "search_phase_execution_exception",
                "all shards failed",
                caused_by=EsError(404, "search_context_missing_exception", "No search context found for id [1]"),
                phase="query",
                grouped=True,
                failed_shards=[],
            )
        if keep_alive:
            ctx["expires"] = time.monotonic() + _keep_alive(keep_alive)
        page, ctx["rest"] = ctx["rest"][: ctx["size"]], ctx["rest"][ctx["size"] :]
        hits = render_hits(page, ctx["req"])
        hits_obj: dict[str, Any] = {}
        if ctx["total"] is not None:
            hits_obj["total"] = ctx["total"]
        hits_obj["max_score"] = None
        hits_obj["hits"] = hits
        return {
            "_scroll_id": scroll_id,
            "took": 0,
            "timed_out": False,
            "_shards": {"total": 1, "successful": 1, "skipped": 0, "failed": 0},
            "hits": hits_obj,
        }

    def clear_scroll(self, ids: list[str]) -> dict[str, Any]:
        freed = 0
        if ids == ["_all"]:
            freed = len(self.c.scrolls)
            self.c.scrolls.clear()
        for i in ids:
            if self.c.scrolls.pop(i, None) is not None:
                freed += 1
        return {"succeeded": True, "num_freed": freed}

    def count(self, target: str | None, body: dict[str, Any], params: dict[str, str]) -> dict[str, Any]:
        body = body or {}
        for k in body:
            if k != "query":
                raise parsing(f"request does not support [{k}]")
        now = dates.now_ms()
        views = self.views(self.c.resolve_params(target, params), now)
        query = body.get("query")
        if "q" in params:
            from .search import _uri_query

            query = _uri_query(params["q"])
        total = 0
        for ctx in views:
            try:
                total += len(compile_query(query, ctx).match(ctx, None))
            except EsError as e:
                if e.type == "query_shard_exception":
                    raise search_phase(e, index=ctx.index.name) from None
                raise
        n = len(views)
        return {"count": total, "_shards": {"total": n, "successful": n, "skipped": 0, "failed": 0}}

    def _matching_docs(self, target: str, body: dict[str, Any], params: dict[str, str]) -> list[Doc]:
        now = dates.now_ms()
        views = self.views(self.c.resolve_params(target, params), now)
        docs: list[Doc] = []
        for ctx in views:
            try:
                slots = compile_query((body or {}).get("query"), ctx).match(ctx, None)
            except EsError as e:
                if e.type == "query_shard_exception":
                    raise search_phase(e, index=ctx.index.name) from None
                raise
            docs.extend(ctx.docs[s] for s in sorted(slots))
        max_docs = params.get("max_docs", (body or {}).get("max_docs"))
        if max_docs is not None:
            docs = docs[: int(max_docs)]
        return docs

    def by_query(self, kind: str, target: str, body: dict[str, Any], params: dict[str, str]) -> dict[str, Any]:
        started = time.perf_counter()
        body = body or {}
        for k in body:
            if k not in ("query", "max_docs", "script", "conflicts", "slice"):
                raise parsing(f"Unknown key for a START_OBJECT in [{k}].")
        if kind == "update" and body.get("script"):
            raise unsupported("update_by_query scripts (painless)")
        docs = self._matching_docs(target, body, params)
        done = conflicts = 0
        failures: list[dict[str, Any]] = []
        proceed = params.get("conflicts", body.get("conflicts")) == "proceed"
        touched: dict[str, Index] = {}
        for d in docs:
            idx = d.idx
            current = idx.docs.get(d.id)
            if current is not d:
                conflicts += 1
                if not proceed:
                    failures.append(
                        {
                            "index": idx.name,
                            "id": d.id,
                            "cause": EsError(
                                409,
                                "version_conflict_engine_exception",
                                f"[{d.id}]: version conflict, required seqNo [{d.seq_no}], primary term [1]. "
                                f"current document has seqNo [{current.seq_no if current else -1}] "
                                "and primary term [1]",
                                index_uuid=idx.uuid,
                                shard="0",
                                index=idx.name,
                            ).cause_dict(),
                            "status": 409,
                        }
                    )
                    break
                continue
            if kind == "delete":
                idx.delete(d.id)
            else:
                src = loads(d.source)
                idx.write(d.id, src, d.source, "index")
            touched[idx.name] = idx
            done += 1
        if _flag(params, "refresh"):
            for idx in touched.values():
                idx.refresh()
        out: dict[str, Any] = {
            "took": int((time.perf_counter() - started) * 1000),
            "timed_out": False,
            "total": len(docs),
        }
        out["deleted" if kind == "delete" else "updated"] = done
        if kind == "update":
            out["deleted"] = 0
        out.update(
            {
                "batches": 1 if docs else 0,
                "version_conflicts": conflicts,
                "noops": 0,
                "retries": {"bulk": 0, "search": 0},
                "throttled_millis": 0,
                "requests_per_second": -1.0,
                "throttled_until_millis": 0,
                "failures": failures,
            }
        )
        if params.get("wait_for_completion") == "false":
            task_id = f"fake-node:{len(self.c.tasks) + 1}"
            self.c.tasks[task_id] = {
                "completed": True,
                "task": {
                    "node": "fake-node",
                    "id": len(self.c.tasks) + 1,
                    "type": "transport",
                    "action": f"indices:data/write/{kind}/byquery",
                    "cancellable": True,
                    "cancelled": False,
                    "status": {k: v for k, v in out.items() if k not in ("took", "timed_out", "failures")},
                },
                "response": out,
            }
            return {"task": task_id}
        return out

    # ------------------------------------------------------------ point in time
    def open_pit(self, target: str, params: dict[str, str]) -> dict[str, Any]:
        if not params.get("keep_alive"):
            raise EsError(
                400, "action_request_validation_exception", "Validation Failed: 1: [keep_alive] is not specified;"
            )
        indices = self.c.resolve_params(target, params)
        snap = []
        for idx in self.views(indices, 0):
            i = idx.index
            docs = {s: i.slots[s] for s in i.visible}
            i.pit_refs += 1
            snap.append((i, docs))
        pid = base64.urlsafe_b64encode(os.urandom(30)).decode()
        self.c.pits[pid] = {"snap": snap, "expires": time.monotonic() + _keep_alive(params["keep_alive"])}
        n = len(snap)
        return {"id": pid, "_shards": {"total": n, "successful": n, "skipped": 0, "failed": 0}}

    def _pit_views(self, pid: str | None, keep_alive: str | None, now: int) -> list[Ctx]:
        self.expire_pits()
        pit = self.c.pits.get(pid or "")
        if pit is None:
            raise EsError(
                404,
                "search_phase_execution_exception",
                "all shards failed",
                caused_by=EsError(404, "search_context_missing_exception", "No search context found for id [0]"),
                phase="query",
                grouped=True,
                failed_shards=[],
            )
        if keep_alive:
            pit["expires"] = time.monotonic() + _keep_alive(keep_alive)
        return [Ctx(idx, docs, set(docs), False, now) for idx, docs in pit["snap"]]

    def close_pit(self, pid: str) -> tuple[int, dict[str, Any]]:
        pit = self.c.pits.pop(pid, None)
        if pit is None:
            return 404, {"succeeded": True, "num_freed": 0}
        for idx, _ in pit["snap"]:
            idx.release_pit()
        return 200, {"succeeded": True, "num_freed": len(pit["snap"])}

    def expire_pits(self) -> None:
        now = time.monotonic()
        for pid in [p for p, v in self.c.pits.items() if v["expires"] < now]:
            self.close_pit(pid)


def _keep_alive(v: str) -> float:
    try:
        return dates.parse_fixed_interval(v, "keep_alive") / 1000.0
    except ValueError:
        raise bad_request(
            f"failed to parse setting [keep_alive] with value [{v}] as a time value: unit is missing or unrecognized"
        ) from None
