"""One index: documents, versions/seq_no, visibility (refresh) and a lazy term -> slots index.

Every write appends a new *slot* (like a Lucene doc id); the previous version of the document is
deleted. Searches see the slots in ``visible``. In real-time mode (the default) writes are visible
at once; otherwise they become visible at the next refresh. Slots of deleted documents are purged
(data dropped) when they leave ``visible`` and no point-in-time is open.
"""

from __future__ import annotations

import base64
import os
import time
from collections.abc import Iterator
from typing import Any

from .errors import EsError
from .mapping import Mapping


def new_uuid() -> str:
    return base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=")[:22]


def auto_id() -> str:
    return base64.urlsafe_b64encode(os.urandom(15)).decode()


class Doc:
    __slots__ = ("fields", "id", "idx", "seq_no", "slot", "source", "version")

    def __init__(
        self, id_: str, source: bytes, fields: dict[str, Any], version: int, seq_no: int, slot: int, idx: Index
    ):
        self.id = id_
        self.source = source
        self.fields = fields
        self.version = version
        self.seq_no = seq_no
        self.slot = slot
        self.idx = idx


class Index:
    def __init__(
        self,
        name: str,
        ordinal: int,
        settings: dict[str, Any] | None = None,
        mappings: dict[str, Any] | None = None,
        aliases: dict[str, Any] | None = None,
        data_stream: str | None = None,
        realtime: bool = True,
        dynamic_strings: str = "keyword",
    ) -> None:
        self.name = name
        self.ordinal = ordinal
        self.uuid = new_uuid()
        self.creation_date = int(time.time() * 1000)
        self.settings = normalize_settings(settings or {})
        self.mapping = Mapping(mappings, dynamic_strings)
        self.aliases: dict[str, dict[str, Any]] = dict(aliases or {})
        self.data_stream = data_stream
        self.realtime = realtime
        self.docs: dict[str, Doc] = {}
        self.slots: list[Doc | None] = []
        self.visible: set[int] = set()
        self.pending_add: list[int] = []
        self.pending_del: list[int] = []
        self.deferred_purge: list[int] = []
        self.pit_refs = 0
        self.deleted_versions: dict[str, int] = {}
        self.seq_no = -1
        self.term_index: dict[str, dict[Any, set[int]]] = {}
        self.last_refresh = time.monotonic()
        if data_stream:
            self.mapping.merge({"_data_stream_timestamp": {"enabled": True}})
            if self.mapping.field("@timestamp") is None:
                self.mapping.merge({"properties": {"@timestamp": {"type": "date"}}})

    @property
    def hidden(self) -> bool:
        return str(self.settings["index"].get("hidden", "false")).lower() == "true"

    @property
    def max_result_window(self) -> int:
        return int(self.settings["index"].get("max_result_window", 10000))

    # ------------------------------------------------------------ errors
    def _conflict(self, doc_id: str, reason: str) -> EsError:
        return EsError(
            409,
            "version_conflict_engine_exception",
            f"[{doc_id}]: version conflict, {reason}",
            index_uuid=self.uuid,
            shard="0",
            index=self.name,
        )

    def missing_error(self, doc_id: str) -> EsError:
        return EsError(
            404,
            "document_missing_exception",
            f"[{doc_id}]: document missing",
            index_uuid=self.uuid,
            shard="0",
            index=self.name,
        )

    def check_cas(self, doc_id: str, existing: Doc | None, if_seq_no: int | None, if_primary_term: int | None) -> None:
        if if_seq_no is None and if_primary_term is None:
            return
        if existing is None:
            raise self._conflict(
                doc_id, f"required seqNo [{if_seq_no}], primary term [{if_primary_term}] but no document was found"
            )
        if existing.seq_no != int(if_seq_no if if_seq_no is not None else -2) or int(if_primary_term or 1) != 1:
            raise self._conflict(
                doc_id,
                f"required seqNo [{if_seq_no}], primary term [{if_primary_term}]. current document has seqNo "
                f"[{existing.seq_no}] and primary term [1]",
            )

    # ------------------------------------------------------------ writes
    def write(
        self,
        doc_id: str,
        source: dict[str, Any],
        raw: bytes,
        op_type: str = "index",
        if_seq_no: int | None = None,
        if_primary_term: int | None = None,
    ) -> tuple[str, Doc]:
        existing = self.docs.get(doc_id)
        if op_type == "create" and existing is not None:
            raise self._conflict(doc_id, f"document already exists (current version [{existing.version}])")
        self.check_cas(doc_id, existing, if_seq_no, if_primary_term)
        fields = self.mapping.parse_document(source, doc_id)
        if self.data_stream:
            ts = fields.get("@timestamp")
            if ts is None:
                raise EsError(
                    400,
                    "document_parsing_exception",
                    "[1:1] failed to parse: data stream timestamp field [@timestamp] is missing",
                    caused_by=EsError(
                        400, "illegal_argument_exception", "data stream timestamp field [@timestamp] is missing"
                    ),
                )
            if type(ts) is list:
                raise EsError(
                    400,
                    "document_parsing_exception",
                    "[1:1] failed to parse: data stream timestamp field [@timestamp] encountered multiple values",
                    caused_by=EsError(
                        400,
                        "illegal_argument_exception",
                        "data stream timestamp field [@timestamp] encountered multiple values",
                    ),
                )
        version = existing.version + 1 if existing is not None else self.deleted_versions.pop(doc_id, 0) + 1
        self.seq_no += 1
        slot = len(self.slots)
        doc = Doc(doc_id, raw, fields, version, self.seq_no, slot, self)
        self.slots.append(doc)
        if existing is not None:
            self._remove_slot(existing.slot)
        self.docs[doc_id] = doc
        self._add_slot(doc)
        return ("updated" if existing is not None else "created"), doc

    def delete(
        self, doc_id: str, if_seq_no: int | None = None, if_primary_term: int | None = None
    ) -> tuple[str, int, int]:
        existing = self.docs.get(doc_id)
        self.check_cas(doc_id, existing, if_seq_no, if_primary_term)
        self.seq_no += 1
        if existing is None:
            version = self.deleted_versions.get(doc_id, 0) + 1
            return "not_found", version, self.seq_no
        del self.docs[doc_id]
        self.deleted_versions[doc_id] = existing.version + 1
        self._remove_slot(existing.slot)
        return "deleted", existing.version + 1, self.seq_no

    def _add_slot(self, doc: Doc) -> None:
        for field, terms in self.term_index.items():
            self._index_terms(terms, doc.fields.get(field), doc.slot)
        if self.realtime:
            self.visible.add(doc.slot)
        else:
            self.pending_add.append(doc.slot)

    def _remove_slot(self, slot: int) -> None:
        if self.realtime:
            self.visible.discard(slot)
            self._purge(slot)
        else:
            self.pending_del.append(slot)

    def _purge(self, slot: int) -> None:
        if self.pit_refs > 0:
            self.deferred_purge.append(slot)
            return
        doc = self.slots[slot]
        if doc is None:
            return
        for field, terms in self.term_index.items():
            v = doc.fields.get(field)
            if v is None:
                continue
            for t in _terms_of(v):
                s = terms.get(t)
                if s is not None:
                    s.discard(slot)
                    if not s:
                        del terms[t]
        self.slots[slot] = None

    def refresh(self) -> None:
        self.last_refresh = time.monotonic()
        if self.pending_add:
            self.visible.update(self.pending_add)
            self.pending_add = []
        if self.pending_del:
            dels, self.pending_del = self.pending_del, []
            for slot in dels:
                self.visible.discard(slot)
                self._purge(slot)

    def release_pit(self) -> None:
        self.pit_refs -= 1
        if self.pit_refs == 0 and self.deferred_purge:
            slots, self.deferred_purge = self.deferred_purge, []
            for slot in slots:
                if slot not in self.visible:
                    self._purge(slot)

    # ------------------------------------------------------------ reads
    def get(self, doc_id: str) -> Doc | None:
        return self.docs.get(doc_id)

    def terms(self, field: str) -> dict[Any, set[int]]:
        """term -> slots for one field (built on first use, then maintained on writes)."""
        terms = self.term_index.get(field)
        if terms is None:
            terms = {}
            for doc in self.slots:
                if doc is not None:
                    self._index_terms(terms, doc.fields.get(field), doc.slot)
            self.term_index[field] = terms
        return terms

    @staticmethod
    def _index_terms(terms: dict[Any, set[int]], v: Any, slot: int) -> None:
        if v is None:
            return
        for t in _terms_of(v):
            s = terms.get(t)
            if s is None:
                terms[t] = {slot}
            else:
                s.add(slot)

    def live_docs(self) -> Iterator[Doc]:
        yield from self.docs.values()

    def doc_count(self) -> int:
        return len(self.visible)

    def settings_body(self) -> dict[str, Any]:
        s = {k: v for k, v in self.settings["index"].items()}
        s.setdefault("number_of_shards", "1")
        s.setdefault("number_of_replicas", "1")
        s["uuid"] = self.uuid
        s["creation_date"] = str(self.creation_date)
        s["provided_name"] = self.name
        s["version"] = {"created": "8512000"}
        if self.data_stream:
            s["hidden"] = "true"
        return {"index": s}


def _terms_of(v: Any) -> Any:
    t = type(v)
    if t is list:
        return set(v)
    if t is tuple:
        return {x for x in v if x is not None}
    return (v,)


def normalize_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """Flatten {"index": {"number_of_shards": 1}} / {"index.number_of_shards": 1} / {"number_of_shards": 1}
    to {"index": {"number_of_shards": "1"}} (ES returns settings as strings)."""
    flat: dict[str, Any] = {}

    def walk(prefix: str, obj: Any) -> None:
        if isinstance(obj, dict):
            for k, v in obj.items():
                walk(f"{prefix}.{k}" if prefix else k, v)
        else:
            flat[prefix] = obj

    walk("", settings)
    out: dict[str, Any] = {}
    for key, val in flat.items():
        if key.startswith("index."):
            key = key[6:]
        node = out
        parts = key.split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = (
            val
            if isinstance(val, (str, list)) or val is None
            else (str(val).lower() if isinstance(val, bool) else str(val))
        )
    return {"index": out}
