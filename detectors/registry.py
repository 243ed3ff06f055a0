"""Every detector the product knows, by name.

Adding one: its file, and its entry here (two lines: its import, and its line in ``DETECTORS``); its section in
``configs/default.toml`` is optional (without one it runs with its settings' defaults, which are that section's).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from detectors.base import Detector
from detectors.bulk_read import BulkRead
from detectors.denied_burst import DeniedBurst
from detectors.dormant import Dormant
from detectors.egress import Egress
from detectors.isolation_forest import IsolationForestDetector
from detectors.new_access import NewAccess
from detectors.off_hours import OffHours
from detectors.partner_contract import PartnerContract
from detectors.ramp import Ramp
from detectors.sensitive_access import SensitiveAccess
from models.config import ConfigError

DETECTORS: dict[str, type[Detector[Any]]] = {
    BulkRead.name: BulkRead,
    SensitiveAccess.name: SensitiveAccess,
    Egress.name: Egress,
    OffHours.name: OffHours,
    NewAccess.name: NewAccess,
    DeniedBurst.name: DeniedBurst,
    Dormant.name: Dormant,
    Ramp.name: Ramp,
    PartnerContract.name: PartnerContract,
    IsolationForestDetector.name: IsolationForestDetector,
}


def build_detectors(sections: Mapping[str, Mapping[str, Any]], data_dir: Path | None = None) -> list[Detector[Any]]:
    """The enabled detectors, each with its validated settings; ``ConfigError`` names a wrong value.

    A detector whose settings have a ``data_dir`` (one that keeps files, such as trained models) is given
    the product's: without one, it keeps them in memory and in its checkpointed state only.
    """
    from configs.loader import describe_validation_error

    detectors = []
    for name, section in sections.items():
        cls = DETECTORS.get(name)
        if cls is None:
            known = ", ".join(sorted(DETECTORS))
            raise ConfigError(f"configuration error: unknown detector detectors.{name}: expected one of {known}")
        values = dict(section)
        if data_dir is not None and "data_dir" in cls.Settings.model_fields:
            values["data_dir"] = data_dir
        try:
            settings = cls.Settings.model_validate(values)
        except ValidationError as exc:
            raise ConfigError(
                describe_validation_error(exc, {"detectors": {name: dict(section)}}, prefix=("detectors", name))
            ) from None
        if settings.enabled:
            detectors.append(cls(settings))
    return detectors
