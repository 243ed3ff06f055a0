"""Every detector the product knows, by name.  Adding one: its file, and one line here."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from detectors.base import Detector
from detectors.bulk_read import BulkRead
from detectors.denied_burst import DeniedBurst
from detectors.dormant import Dormant
from detectors.egress import Egress
from detectors.new_access import NewAccess
from detectors.off_hours import OffHours
from detectors.sensitive_access import SensitiveAccess
from models.config import ConfigError

DETECTORS: dict[str, type[Detector]] = {
    BulkRead.name: BulkRead,
    SensitiveAccess.name: SensitiveAccess,
    Egress.name: Egress,
    OffHours.name: OffHours,
    NewAccess.name: NewAccess,
    DeniedBurst.name: DeniedBurst,
    Dormant.name: Dormant,
}


def build_detectors(sections: Mapping[str, Mapping[str, Any]]) -> list[Detector]:
    """The enabled detectors, each with its validated settings; ``ConfigError`` names a wrong value."""
    from configs.loader import describe_validation_error

    detectors = []
    for name, section in sections.items():
        cls = DETECTORS.get(name)
        if cls is None:
            known = ", ".join(sorted(DETECTORS))
            raise ConfigError(f"configuration error: unknown detector detectors.{name}: expected one of {known}")
        try:
            settings = cls.Settings.model_validate(dict(section))
        except ValidationError as exc:
            raise ConfigError(
                describe_validation_error(exc, {"detectors": {name: dict(section)}}, prefix=("detectors", name))
            ) from None
        if settings.enabled:
            detectors.append(cls(settings))
    return detectors
