"""Cluster metadata: indices, composable/component index templates, data streams, ILM policies,
aliases, and index-name resolution (comma lists, ``*`` wildcards, ``-exclusions``, aliases,
data streams)."""

from __future__ import annotations

import copy
import fnmatch
import threading
import time
from datetime import UTC, datetime
from typing import Any

from .errors import EsError, bad_request, index_not_found
from .fields import validate_mapping
from .index import Index, new_uuid, normalize_settings

_BAD_CHARS = set('\\/*?"<>| ,#:')


def _now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(time.time() * 1000) % 1000:03d}Z"


class DataStream:
    def __init__(self, name: str, template: str):
        self.name = name
        self.template = template
        self.indices: list[Index] = []
        self.generation = 0

    @property
    def write_index(self) -> Index:
        return self.indices[-1]


def validate_index_name(name: str) -> None:
    def err(msg: str) -> EsError:
        return EsError(
            400, "invalid_index_name_exception", f"Invalid index name [{name}], {msg}", index_uuid="_na_", index=name
        )

    if not name:
        raise err("must not be empty")
    if name != name.lower():
        raise err("must be lowercase")
    if any(c in _BAD_CHARS for c in name):
        raise err("must not contain the following characters [' ','\"','*',',','/','<','>','?','\\','|']")
    if name[0] in "_-+":
        raise err("must not start with '_', '-', or '+'")
    if name in (".", ".."):
        raise err("must not be '.' or '..'")
    if len(name.encode()) > 255:
        raise err(f"index name is too long, ({len(name.encode())} > 255)")


class Cluster:
    def __init__(
        self,
        realtime: bool = True,
        refresh_interval: float | None = 1.0,
        dynamic_strings: str = "keyword",
        id_field_data: bool = False,
        destructive_requires_name: bool = True,
    ):
        self.lock = threading.RLock()
        self.realtime = realtime
        self.refresh_interval = refresh_interval
        self.dynamic_strings = dynamic_strings
        self.id_field_data = id_field_data
        self.destructive_requires_name = destructive_requires_name
        self.cluster_uuid = new_uuid()
        self.reset()

    def reset(self) -> None:
        self.indices: dict[str, Index] = {}
        self.templates: dict[str, dict[str, Any]] = {}
        self.component_templates: dict[str, dict[str, Any]] = {}
        self.data_streams: dict[str, DataStream] = {}
        self.ilm: dict[str, dict[str, Any]] = {}
        self.pits: dict[str, Any] = {}
        self.scrolls: dict[str, Any] = {}
        self.tasks: dict[str, Any] = {}
        self._ordinal = 0

    # ------------------------------------------------------------ resolution
    def _alias_members(self, alias: str) -> list[Index]:
        return [i for i in self.indices.values() if alias in i.aliases]

    def all_aliases(self) -> dict[str, list[Index]]:
        out: dict[str, list[Index]] = {}
        for idx in self.indices.values():
            for a in idx.aliases:
                out.setdefault(a, []).append(idx)
        return out

    def resolve(
        self,
        expr: str | None,
        *,
        ignore_unavailable: bool = False,
        allow_no_indices: bool = True,
        expand_wildcards: str = "open",
    ) -> list[Index]:
        parts = [p for p in (expr or "").split(",") if p] or ["_all"]
        chosen: dict[str, Index] = {}
        expand_hidden = "all" in expand_wildcards or "hidden" in expand_wildcards
        for n, part in enumerate(parts):
            if part.startswith("-") and n > 0:
                pat = part[1:]
                for name in list(chosen):
                    idx = chosen[name]
                    if fnmatch.fnmatchcase(name, pat) or (
                        idx.data_stream and fnmatch.fnmatchcase(idx.data_stream, pat)
                    ):
                        del chosen[name]
                continue
            if part in ("_all", "*") or "*" in part:
                pat = "*" if part == "_all" else part
                for idx in self.indices.values():
                    if fnmatch.fnmatchcase(idx.name, pat) and (
                        expand_hidden or (not idx.hidden and not idx.data_stream)
                    ):
                        chosen.setdefault(idx.name, idx)
                for ds in self.data_streams.values():
                    if fnmatch.fnmatchcase(ds.name, pat):
                        for idx in ds.indices:
                            chosen.setdefault(idx.name, idx)
                for alias, members in self.all_aliases().items():
                    if fnmatch.fnmatchcase(alias, pat):
                        for idx in members:
                            chosen.setdefault(idx.name, idx)
                continue
            if part in self.indices:
                chosen.setdefault(part, self.indices[part])
            elif part in self.data_streams:
                for idx in self.data_streams[part].indices:
                    chosen.setdefault(idx.name, idx)
            else:
                members = self._alias_members(part)
                if members:
                    for idx in members:
                        chosen.setdefault(idx.name, idx)
                elif not ignore_unavailable:
                    raise index_not_found(part)
        if not chosen and not allow_no_indices:
            raise index_not_found(expr or "_all")
        return sorted(chosen.values(), key=lambda i: i.ordinal)

    def resolve_params(self, expr: str | None, params: dict[str, str]) -> list[Index]:
        return self.resolve(
            expr,
            ignore_unavailable=params.get("ignore_unavailable") in ("true", ""),
            allow_no_indices=params.get("allow_no_indices", "true") != "false",
            expand_wildcards=params.get("expand_wildcards", "open"),
        )

    # ------------------------------------------------------------ templates
    def find_template(self, name: str) -> tuple[str, dict[str, Any]] | None:
        best = None
        for tname, tpl in self.templates.items():
            if any(fnmatch.fnmatchcase(name, p) for p in tpl.get("index_patterns", [])):
                prio = int(tpl.get("priority", 0))
                if best is None or prio > best[0]:
                    best = (prio, tname, tpl)
        return (best[1], best[2]) if best else None

    def composed(self, tpl: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        """(settings, mappings, aliases) of a template with its component templates applied in order."""
        from .mapping import Mapping

        settings: dict[str, Any] = {}
        mapping = Mapping({})
        aliases: dict[str, Any] = {}
        parts = [
            self.component_templates[c].get("template", {})
            for c in tpl.get("composed_of", [])
            if c in self.component_templates
        ]
        parts.append(tpl.get("template", {}))
        for part in parts:
            _deep_merge(settings, normalize_settings(part.get("settings") or {}))
            mapping.merge(part.get("mappings"))
            aliases.update(part.get("aliases") or {})
        return settings, mapping.to_dict(), aliases

    def put_template(self, name: str, body: dict[str, Any], create: bool = False) -> None:
        if create and name in self.templates:
            raise bad_request(f"index template [{name}] already exists")
        patterns = body.get("index_patterns")
        if not patterns:
            raise EsError(
                400, "action_request_validation_exception", "Validation Failed: 1: index patterns are missing;"
            )
        if isinstance(patterns, str):
            patterns = [patterns]
        body = copy.deepcopy(body)
        body["index_patterns"] = patterns
        validate_mapping((body.get("template") or {}).get("mappings") or {})
        missing = [c for c in body.get("composed_of", []) if c not in self.component_templates]
        if missing and not body.get("ignore_missing_component_templates"):
            raise bad_request(
                f"index template [{name}] specifies component templates {_jlist(missing)} that do not exist"
            )
        prio = int(body.get("priority", 0))
        for other, tpl in self.templates.items():
            if other == name or int(tpl.get("priority", 0)) != prio:
                continue
            overlap = [p for p in patterns if any(_patterns_overlap(p, q) for q in tpl["index_patterns"])]
            if overlap:
                raise bad_request(
                    f"index template [{name}] has index patterns {_jlist(patterns)} matching patterns from existing "
                    f"templates [{other}] with patterns ({other} => {_jlist(tpl['index_patterns'])}) that have the "
                    f"same priority [{prio}], multiple index templates may not match during index creation, please "
                    f"use a different priority"
                )
        if "template" in body and "settings" in (body["template"] or {}):
            body["template"]["settings"] = normalize_settings(body["template"]["settings"] or {})
        if "data_stream" in body and body["data_stream"] is not None:
            ds = dict(body["data_stream"])
            ds.setdefault("hidden", False)
            ds.setdefault("allow_custom_routing", False)
            body["data_stream"] = ds
        self.templates[name] = body

    def template_body(self, name: str) -> dict[str, Any]:
        tpl = copy.deepcopy(self.templates[name])
        out: dict[str, Any] = {"index_patterns": tpl.pop("index_patterns")}
        if "template" in tpl:
            out["template"] = tpl.pop("template")
        out["composed_of"] = tpl.pop("composed_of", [])
        out.update(tpl)
        return out

    def delete_template(self, name: str) -> None:
        names = [n for n in self.templates if fnmatch.fnmatchcase(n, name)] if "*" in name else [name]
        if not names or any(n not in self.templates for n in names):
            raise EsError(404, "resource_not_found_exception", f"index_template [{name}] missing")
        for n in names:
            using = [ds.name for ds in self.data_streams.values() if ds.template == n]
            if using:
                raise bad_request(
                    f"unable to remove composable templates [{n}] as they are in use by a data streams {_jlist(using)}"
                )
        for n in names:
            del self.templates[n]

    # ------------------------------------------------------------ indices
    def create_index(
        self, name: str, body: dict[str, Any] | None = None, data_stream: str | None = None, from_template: bool = True
    ) -> Index:
        validate_index_name(name)
        if name in self.indices or name in self.data_streams:
            existing = self.indices.get(name)
            raise EsError(
                400,
                "resource_already_exists_exception",
                f"index [{name}/{existing.uuid if existing else '_na_'}] already exists",
                index_uuid=existing.uuid if existing else "_na_",
                index=name,
            )
        if name in self.all_aliases():
            raise bad_request(
                f"Invalid index name [{name}], an alias with the same name already exists",
                "invalid_index_name_exception",
            )
        body = body or {}
        for k in body:
            if k not in ("settings", "mappings", "aliases"):
                raise parsing_unknown(k)
        settings: dict[str, Any] = {}
        mappings: dict[str, Any] = {}
        aliases: dict[str, Any] = {}
        if from_template:
            found = self.find_template(data_stream or name)
            if found is not None:
                tname, tpl = found
                if tpl.get("data_stream") is not None and data_stream is None:
                    raise bad_request(
                        f"cannot create index with name [{name}], because it matches with template [{tname}] that "
                        f"creates data streams only, use create data stream api instead"
                    )
                settings, mappings, aliases = self.composed(tpl)
        _deep_merge(settings, normalize_settings(body.get("settings") or {}))
        from .mapping import Mapping

        m = Mapping(mappings)
        m.merge(body.get("mappings"))
        aliases.update(body.get("aliases") or {})
        if data_stream is not None:
            settings.setdefault("index", {})["hidden"] = "true"
            aliases = {}
        self._ordinal += 1
        idx = Index(
            name, self._ordinal, settings, m.to_dict(), aliases, data_stream, self.realtime, self.dynamic_strings
        )
        self.indices[name] = idx
        return idx

    def delete_index(self, expr: str, params: dict[str, str]) -> None:
        parts = expr.split(",")
        if self.destructive_requires_name and any("*" in p or p == "_all" for p in parts):
            raise bad_request("Wildcard expressions or all indices are not allowed")
        targets = []
        for p in parts:
            if "*" not in p and p in self.data_streams:
                raise bad_request(
                    f"The provided expression [{p}] matches a data stream, "
                    "specify the corresponding concrete indices instead."
                )
            if "*" not in p and p not in self.indices and self._alias_members(p):
                raise bad_request(
                    f"The provided expression [{p}] matches an alias, "
                    "specify the corresponding concrete indices instead."
                )
        targets = self.resolve(expr, ignore_unavailable=params.get("ignore_unavailable") == "true")
        for idx in targets:
            if idx.data_stream:
                ds = self.data_streams.get(idx.data_stream)
                if ds is not None and ds.write_index is idx:
                    raise bad_request(
                        f"index [{idx.name}] is the write index for data stream [{ds.name}] and cannot be deleted"
                    )
        for idx in targets:
            if idx.data_stream and idx.data_stream in self.data_streams:
                self.data_streams[idx.data_stream].indices.remove(idx)
            del self.indices[idx.name]

    def write_target(self, name: str, op_type: str) -> Index:
        """The concrete index a write to `name` goes to (auto-creating indices / data streams)."""
        idx = self.indices.get(name)
        if idx is not None:
            return idx
        ds = self.data_streams.get(name)
        if ds is None:
            members = self._alias_members(name)
            if members:
                writers = [i for i in members if i.aliases[name].get("is_write_index")]
                if writers:
                    return writers[0]
                if len(members) == 1 and members[0].aliases[name].get("is_write_index") is not False:
                    return members[0]
                raise bad_request(
                    f"no write index is defined for alias [{name}]. The write index may be explicitly disabled using "
                    f"is_write_index=false or the alias points to multiple indices without one being designated as a "
                    f"write index"
                )
            found = self.find_template(name)
            if found is not None and found[1].get("data_stream") is not None:
                if op_type != "create":
                    raise bad_request("only write ops with an op_type of create are allowed in data streams")
                ds = self.create_data_stream(name)
            else:
                validate_index_name(name)
                return self.create_index(name)
        if op_type != "create":
            raise bad_request("only write ops with an op_type of create are allowed in data streams")
        return ds.write_index

    # ------------------------------------------------------------ data streams
    def create_data_stream(self, name: str) -> DataStream:
        if name in self.data_streams:
            raise EsError(400, "resource_already_exists_exception", f"data_stream [{name}] already exists")
        validate_index_name(name)
        found = self.find_template(name)
        if found is None or found[1].get("data_stream") is None:
            raise bad_request(f"no matching index template found for data stream [{name}]")
        if name in self.indices:
            raise bad_request(f"data stream [{name}] conflicts with index")
        ds = DataStream(name, found[0])
        self.data_streams[name] = ds
        self.rollover_data_stream(ds)
        return ds

    def rollover_data_stream(self, ds: DataStream) -> tuple[str | None, str]:
        old = ds.indices[-1].name if ds.indices else None
        ds.generation += 1
        day = datetime.now(UTC).strftime("%Y.%m.%d")
        backing = f".ds-{ds.name}-{day}-{ds.generation:06d}"
        idx = self.create_index(backing, data_stream=ds.name)
        ds.indices.append(idx)
        return old, backing

    def data_stream_body(self, ds: DataStream) -> dict[str, Any]:
        tpl = self.templates.get(ds.template, {})
        policy = None
        settings, _, _ = self.composed(tpl) if tpl else ({}, {}, {})
        policy = settings.get("index", {}).get("lifecycle", {}).get("name")
        managed = "Index Lifecycle Management" if policy else "Unmanaged"
        out: dict[str, Any] = {
            "name": ds.name,
            "timestamp_field": {"name": "@timestamp"},
            "indices": [
                dict(
                    {"index_name": i.name, "index_uuid": i.uuid, "prefer_ilm": True},
                    **({"ilm_policy": policy} if policy else {}),
                    managed_by=managed,
                )
                for i in ds.indices
            ],
            "generation": ds.generation,
            "status": "GREEN",
            "template": ds.template,
            "next_generation_managed_by": managed,
            "prefer_ilm": True,
            "hidden": bool(tpl.get("data_stream", {}).get("hidden", False)),
            "system": False,
            "allow_custom_routing": bool(tpl.get("data_stream", {}).get("allow_custom_routing", False)),
            "replicated": False,
            "rollover_on_write": False,
        }
        if policy:
            out["ilm_policy"] = policy
        if tpl.get("_meta"):
            out["_meta"] = tpl["_meta"]
        return out

    def match_data_streams(self, expr: str | None) -> list[DataStream]:
        if not expr or expr in ("*", "_all"):
            return list(self.data_streams.values())
        out = []
        for part in expr.split(","):
            if "*" in part:
                out.extend(ds for n, ds in self.data_streams.items() if fnmatch.fnmatchcase(n, part) and ds not in out)
            elif part in self.data_streams:
                if self.data_streams[part] not in out:
                    out.append(self.data_streams[part])
            else:
                raise index_not_found(part)
        return out

    def delete_data_stream(self, expr: str) -> None:
        for ds in self.match_data_streams(expr):
            for idx in ds.indices:
                self.indices.pop(idx.name, None)
            del self.data_streams[ds.name]

    # ------------------------------------------------------------ ILM
    def put_policy(self, name: str, body: dict[str, Any]) -> None:
        if not isinstance(body, dict) or "policy" not in body:
            raise parsing_unknown(
                next(iter(body), "") if isinstance(body, dict) and body else "policy",
                "[put_lifecycle_request] policy is required" if not body else None,
            )
        policy = copy.deepcopy(body["policy"])
        for k in policy:
            if k not in ("phases", "_meta", "deprecated"):
                raise EsError(400, "x_content_parse_exception", f"[1:1] [lifecycle_policy] unknown field [{k}]")
        for phase_name, phase in (policy.get("phases") or {}).items():
            if phase_name not in ("hot", "warm", "cold", "frozen", "delete"):
                raise bad_request(f"Lifecycle does not support phase [{phase_name}]")
            phase.setdefault("min_age", "0ms")
            phase.setdefault("actions", {})
        policy.setdefault("phases", {})
        prev = self.ilm.get(name)
        self.ilm[name] = {
            "version": (prev["version"] + 1) if prev else 1,
            "modified_date": _now_iso(),
            "policy": policy,
        }

    def policy_body(self, name: str) -> dict[str, Any]:
        p = self.ilm[name]
        templates = []
        for tname, tpl in self.templates.items():
            settings, _, _ = self.composed(tpl)
            if settings.get("index", {}).get("lifecycle", {}).get("name") == name:
                templates.append(tname)
        indices = [
            i.name for i in self.indices.values() if i.settings["index"].get("lifecycle", {}).get("name") == name
        ]
        streams = [ds.name for ds in self.data_streams.values() if ds.template in templates]
        return {
            "version": p["version"],
            "modified_date": p["modified_date"],
            "policy": copy.deepcopy(p["policy"]),
            "in_use_by": {"indices": indices, "data_streams": streams, "composable_templates": templates},
        }

    # ------------------------------------------------------------ aliases
    def update_aliases(self, actions: list[dict[str, Any]]) -> None:
        for action in actions:
            ((kind, spec),) = action.items()
            names = spec.get("indices") or [spec.get("index")]
            aliases = spec.get("aliases") or [spec.get("alias")]
            if kind == "remove_index":
                for idx in self.resolve(",".join(names)):
                    del self.indices[idx.name]
                continue
            targets = self.resolve(",".join(n for n in names if n))
            for idx in targets:
                for alias in aliases:
                    if kind == "add":
                        props = {
                            k: v for k, v in spec.items() if k in ("is_write_index", "filter", "routing", "is_hidden")
                        }
                        idx.aliases[alias] = props
                    elif kind == "remove":
                        if alias not in idx.aliases and spec.get("must_exist") is not False:
                            if "*" not in alias:
                                raise EsError(
                                    404,
                                    "aliases_not_found_exception",
                                    f"aliases [{alias}] missing",
                                    **{"resource.type": "aliases", "resource.id": alias},
                                )
                        for a in [a for a in idx.aliases if fnmatch.fnmatchcase(a, alias)]:
                            del idx.aliases[a]
                    else:
                        raise parsing_unknown(kind)


def _deep_merge(dst: dict[str, Any], src: dict[str, Any]) -> None:
    for k, v in src.items():
        if isinstance(v, dict) and isinstance(dst.get(k), dict):
            _deep_merge(dst[k], v)
        else:
            dst[k] = copy.deepcopy(v)


def _patterns_overlap(a: str, b: str) -> bool:
    # same heuristic as ES (Automatons intersect); good enough for prefix* patterns
    return fnmatch.fnmatchcase(a.replace("*", "x"), b) or fnmatch.fnmatchcase(b.replace("*", "x"), a) or a == b


def _jlist(items: list[str]) -> str:
    return "[" + ", ".join(items) + "]"


def parsing_unknown(key: str, reason: str | None = None) -> EsError:
    return EsError(400, "x_content_parse_exception", reason or f"[1:1] unknown field [{key}]")
