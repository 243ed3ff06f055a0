"""Seeded, deterministic simulator of a travel/retail company's customer-data access log.

    from ingest.simulator import SimulationSettings, simulate, write_simulation
    sim = simulate(SimulationSettings(seed=7))
    for event in sim.events(): ...      # contract-valid dicts, streamed
    sim.labels()                        # ground truth: actors, insider scenarios, benign bulk work
    write_simulation(Path("out"), SimulationSettings())   # events.jsonl + labels.json

Same seed and settings give byte-identical files. Events leave at most
`max_disorder_seconds` out of timestamp order (shipping jitter); memory stays
at about two days of events.

Volume (measured, seed 7, 30 days, 5 partner orgs, 6 service accounts):
about 24 events per employee per calendar day (~33 per working day), plus a
fixed ~1,150 a day from partners and service accounts. So

    events ~= days * (24 * employees + 1_150)

Default settings give ~208k events; for ~1,000,000 events over 30 days use
employees=1350. Typical hourly volumes while on shift: customer service and
store staff ~5/h, sales ~3/h, finance ~2.7/h, analysts and marketing
~1.3/h (but hundreds of records each), partner agents ~4-6/h,
svc-billing ~22/h.

labels.json:
    {"seed", "days", "start", "end", "generator": "accesswatch-simulator/1",
     "actors": [{"actor_id", "kind", "role", "department", "organization",
                 "first_active", "shift_worker"}],
     "scenarios": [{"scenario_id", "kind", "actor_id", "start", "end",
                    "event_ids_sample", "description"}],
     "benign": [{"kind", "actor_id", "start", "end", "description"}],
     "notes": ["why a scenario is missing, if one is"]}
Times are RFC 3339 UTC with Z; start/end of an episode are the timestamps of
its first and last event (new_hire and busy_day: their day spans).
department/organization are null where they do not apply.
"""

from .pacing import paced
from .settings import SimulationSettings
from .simulation import GENERATOR, Simulation, simulate
from .writer import write_simulation

__all__ = ["GENERATOR", "Simulation", "SimulationSettings", "paced", "simulate", "write_simulation"]
