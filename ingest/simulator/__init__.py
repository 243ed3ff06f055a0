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
about 23 events per employee per calendar day (33 per working day: most
people work five days in seven), plus a fixed ~1,140 a day from partner
agents (~510) and service accounts (~630). So

    events ~= days * (23 * employees + 1_140)

Default settings give ~200k events (199,661 for seed 7). For ~1,000,000
events over 30 days use employees=1360 (1400 gave 1,028,271). Generation
and writing run at ~60-65k events/s on one core.

Typical volume of one actor on shift (events per active hour; records per event):
customer service ~5/h (1-3 records, 90% with a ticket ref; shift workers also
at night), store staff ~6/h (POS, single records, 10:00-22:30 rosters incl.
weekends), sales ~4/h (mostly 1-5, searches of 20-200), finance ~3/h
(invoices; reports up to 3,000), it_support and compliance ~2/h, data
analysts and marketing ~2/h (searches of hundreds of records), partner
agents 3-5/h within their org's hours, svc-billing ~12/h around the clock,
svc-crm-sync one run an hour 07:00-22:00 local, svc-notifications ~14/h
06:00-23:00; nightly ETL 01:00-03:00 (20-40 reads, 20-80k records) and
backup at 02:00 (5 full-table downloads, ~3M rows).

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
