"""Elasticsearch-shaped errors.

Every failure inside the fake raises :class:`EsError`; the HTTP layer renders it the way
Elasticsearch 8 does::

    {"error": {"root_cause": [...], "type": ..., "reason": ..., ...}, "status": N}
"""

from __future__ import annotations

from typing import Any


class EsError(Exception):
    def __init__(
        self,
        status: int,
        type_: str,
        reason: str,
        caused_by: EsError | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(f"{status} {type_}: {reason}")
        self.status = status
        self.type = type_
        self.reason = reason
        self.caused_by = caused_by
        self.extra = extra
        self.root_causes: list[dict[str, Any]] | None = None

    def cause_dict(self) -> dict[str, Any]:
        """The error object as it appears inside bulk items / caused_by."""
        d: dict[str, Any] = {"type": self.type, "reason": self.reason}
        d.update(self.extra)
        if self.caused_by is not None:
            d["caused_by"] = self.caused_by.cause_dict()
        return d

    def _root(self) -> list[dict[str, Any]]:
        if self.root_causes is not None:
            return self.root_causes
        err: EsError = self
        while err.caused_by is not None and err.type in _WRAPPERS:
            err = err.caused_by
        root = {"type": err.type, "reason": err.reason}
        root.update(err.extra)
        return [root]

    def body(self) -> dict[str, Any]:
        err = self.cause_dict()
        out = {"root_cause": self._root()}
        out.update(err)
        return {"error": out, "status": self.status}


_WRAPPERS = {"search_phase_execution_exception"}


def bad_request(reason: str, type_: str = "illegal_argument_exception", **extra: Any) -> EsError:
    return EsError(400, type_, reason, **extra)


def parsing(reason: str) -> EsError:
    return EsError(400, "parsing_exception", reason, line=1, col=1)


def x_content(reason: str) -> EsError:
    return EsError(400, "x_content_parse_exception", f"[1:1] {reason}")


def unsupported(feature: str) -> EsError:
    """Something real Elasticsearch supports but this fake deliberately does not."""
    return EsError(400, "illegal_argument_exception", f"[fake-es] {feature} is not supported by FakeElasticsearch")


def index_not_found(name: str) -> EsError:
    return EsError(
        404,
        "index_not_found_exception",
        f"no such index [{name}]",
        **{"resource.type": "index_or_alias", "resource.id": name, "index_uuid": "_na_", "index": name},
    )


def search_phase(cause: EsError, index: str = "_na_", phase: str = "query") -> EsError:
    """Shard-level failures are wrapped the way a search that failed on all shards is."""
    err = EsError(
        cause.status,
        "search_phase_execution_exception",
        "all shards failed",
        caused_by=cause,
        phase=phase,
        grouped=True,
        failed_shards=[{"shard": 0, "index": index, "node": "fake-node-0", "reason": cause.cause_dict()}],
    )
    return err


def shard_query(reason: str, index: str, cause: EsError | None = None) -> EsError:
    return EsError(400, "query_shard_exception", reason, caused_by=cause, index_uuid="_na_", index=index)


def fielddata_text(field: str) -> EsError:
    return bad_request(
        f"Fielddata is disabled on [{field}] in [_na_]. Text fields are not optimised for operations that require "
        "per-document field data like aggregations and sorting, so these operations are disabled by default. "
        f"Please use a keyword field instead. Alternatively, set fielddata=true on [{field}] in order to load field "
        "data by uninverting the inverted index. Note that this can use significant memory."
    )
