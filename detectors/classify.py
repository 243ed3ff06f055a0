"""Which data classes an access touched, and how sensitive they are."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from models.config import Classification

UNCLASSIFIED = "unclassified"
_SENSITIVITY_RANK = {"low": 0, "medium": 1, "high": 2}


@dataclass(frozen=True, slots=True)
class Touch:
    classes: frozenset[str]
    high: bool  # at least one high-sensitivity class: ID documents, financial, special categories
    # the classes in name order, as the windows fold them: a frozenset iterates in an order that depends on the
    # process's string hashing, and a window's maps keep it, so checkpoints differed from run to run
    ordered: tuple[str, ...] = field(init=False, compare=False)
    # a window's keys of these classes' first events, ("data_class", name): it looks them all up at once
    first_keys: frozenset[tuple[str, str]] = field(init=False, compare=False)
    # the same keys, in ``ordered``'s order.  The classifier gives every touch the same tuple for a class, and a
    # window keeps these very tuples, so looking them up again (``first_keys``, a day's merge) finds each by
    # identity instead of comparing two equal tuples
    ordered_keys: tuple[tuple[str, str], ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        ordered = tuple(sorted(self.classes))
        keys = self.ordered_keys or tuple(first_event_key(name) for name in ordered)
        if len(keys) != len(ordered):
            raise ValueError("ordered_keys: one key a class, in name order")
        object.__setattr__(self, "ordered", ordered)
        object.__setattr__(self, "ordered_keys", keys)
        object.__setattr__(self, "first_keys", frozenset(keys))


def first_event_key(name: str) -> tuple[str, str]:
    """A window's key for the first event of a data class (``WindowStats.first_ids``)."""
    return ("data_class", name)


class Classifier:
    """Maps an event's ``fields`` to data classes, as the configuration says.

    Systems send the same few field lists over and over, so results are
    cached per list; the cache is bounded so that hostile input cannot grow it.
    """

    def __init__(self, classification: Classification, cache_size: int = 4096) -> None:
        self._class_of = {
            field: name for name, data_class in classification.classes.items() for field in data_class.fields
        }
        self.sensitivity = {name: data_class.sensitivity for name, data_class in classification.classes.items()}
        self.sensitivity[UNCLASSIFIED] = classification.unclassified_sensitivity
        self.high_classes = frozenset(name for name, level in self.sensitivity.items() if level == "high")
        self._first_key = {name: first_event_key(name) for name in self.sensitivity}  # one tuple a class, shared
        # field list -> its Touch; cleared when full, never replaced: the engine reads it without a call per event
        self.touches: dict[tuple[str, ...], Touch] = {}
        self._cache_size = cache_size

    def touch(self, fields: Sequence[str] | None) -> Touch:
        key = tuple(fields) if fields else ()
        found = self.touches.get(key)
        if found is None:
            classes = frozenset(self._class_of.get(field, UNCLASSIFIED) for field in key)
            found = Touch(
                classes, bool(classes & self.high_classes), tuple(self._first_key[name] for name in sorted(classes))
            )
            if len(self.touches) >= self._cache_size:
                self.touches.clear()
            self.touches[key] = found
        return found

    def class_of(self, field: str) -> str:
        return self._class_of.get(field, UNCLASSIFIED)

    def fields_of_class(self, name: str) -> list[str]:
        return [field for field, owner in self._class_of.items() if owner == name]

    def is_high(self, name: str) -> bool:
        return _SENSITIVITY_RANK[self.sensitivity.get(name, "low")] >= 2
