"""Pages appended to a JSON Lines file, one a line: the embedded default's page log.

Each line is the contract's alert record with a ``page`` object beside its
keys (``notify.base.page_record``): what happened to the incident, and by
whom, what its other detectors found, where to read the whole incident
(``look``) and how to act on it.

A page delivered again under the same delivery id (at least once: a process
stopped between writing it and recording it as sent) is not written twice
when its line is among the file's last ``TAIL_BYTES``, a dozen pages.  One
stopped cleanly (Ctrl-C) gives the page back, due at once to the next process
delivering, so its line is still there; after a crash the page waits out its
lease, other pages may come between, and it may be written twice.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, BinaryIO

import orjson
from pydantic import AfterValidator

from models.config import Settings as Config
from models.config import appendable_file  # ``Settings`` below is the receiver's own
from models.page import Page
from notify.base import DeliveryError, Notifier, ReceiverSettings, page_record

# how far back a page's delivery id is looked for: a dozen pages of 4 to 5 KiB, one read per page
TAIL_BYTES = 1 << 16


class FileSettings(ReceiverSettings):
    # relative paths are inside the data dir (``complete`` joins them before this check)
    path: Annotated[str, AfterValidator(lambda path: str(appendable_file(Path(path))))]


class JsonlFileNotifier(Notifier[FileSettings]):
    kind = "file"
    Settings = FileSettings

    def __init__(self, name: str, settings: FileSettings) -> None:
        super().__init__(name, settings)
        self.path = Path(settings.path)
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # as the store's data dir: owner only

    @classmethod
    def complete(cls, section: dict[str, Any], config: Config) -> dict[str, Any]:
        path = Path(section.get("path") or config.notify.file)
        return {**section, "path": str(path if path.is_absolute() else Path(config.data_dir) / path)}

    def send(self, page: Page, delivery_id: str = "") -> None:
        line = orjson.dumps(page_record(page, delivery_id)) + b"\n"
        try:
            # one write of a whole line, then fsync: a page is on disk before it counts as sent
            with open(self.path, "a+b", opener=_owner_only) as handle:
                if delivery_id and _written(handle, delivery_id):
                    return
                handle.write(line)
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as exc:
            raise DeliveryError(f"cannot append to {self.path}: {exc.strerror or exc}") from exc


def _written(handle: BinaryIO, delivery_id: str) -> bool:
    """Whether a whole line of this delivery id ends the file's tail: ``page_record`` puts the id last."""
    size = handle.seek(0, os.SEEK_END)
    handle.seek(max(0, size - TAIL_BYTES))
    ending = b'"delivery_id":' + orjson.dumps(delivery_id) + b"}}\n"  # JSON escapes any quote inside a value
    return ending in handle.read()


def _owner_only(path: str, flags: int) -> int:
    """The pages name customers and actors: a file made here is readable by its owner only (one that exists keeps
    its mode)."""
    return os.open(path, flags, 0o600)
