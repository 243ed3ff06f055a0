"""``new_access``: the first touch of a data class, resource or source address, once the actor is known.

Stories run on the real engine (``tests.detector_harness``).  The team reads
names and phones (identity, contact) in the CRM from their own private
address, on weekdays from Monday 2 November.  A first touch alone is low
severity; it weighs more for high-sensitivity data, for what the peers
never touch, for partners outside their contract and for public addresses.
"""

from __future__ import annotations

import pytest

from detectors.new_access import NewAccess
from models.alert import Severity
from tests.detector_contract import DetectorContract
from tests.detector_harness import (
    EVERY_DAY,
    PASSPORT_FIELDS,
    Actor,
    burst,
    describe,
    history,
    local,
    run,
    settings_with,
    stream,
    team,
)

NAME = "new_access"
TEAM = team(5)
AGENT = TEAM[0]
PUBLIC_IP = "93.184.216.34"  # outside organisation.internal_networks
BOOKINGS = {"system": "booking", "type": "reservation", "id": "reservations"}


def routine(days: int = 14, **access):
    return [history(a, days=days, per_hour=3, records=2, **access) for a in TEAM]


def insider(day: int = 14):
    """The agent, known for two weeks, reads passport numbers for the first time."""
    return stream(*routine(day), burst(AGENT, local(day, 10), events=3, records=2, fields=PASSPORT_FIELDS))


# -- the shared interface ------------------------------------------------------


class TestContract(DetectorContract):
    detector = NewAccess
    scales = ("short",)
    bad_values = [
        ("what", ["phone"], "'data_class', 'resource' or 'source_ip'"),
        ("min_records", -1, "greater than or equal to 0"),
    ]

    def story(self):
        return insider()


# -- what it exists for --------------------------------------------------------


def test_a_first_read_of_passports_that_no_peer_reads_raises_one_alert_naming_it():
    events = insider()
    alert = run(events, NAME).only()
    first_passport_read = next(e for e in events if e.fields and "passport_number" in e.fields)
    assert alert.evidence["new"] == [
        {"what": "data_class", "value": "government_id", "first_event_id": first_passport_read.event_id}
    ]
    assert "for the first time data class government_id" in alert.summary
    # a first touch (1), of high-sensitivity data (+2), that the peers never touch (+1)
    assert alert.score == 4.0 and alert.severity is Severity.MEDIUM
    assert alert.window_start == local(14, 10)


@pytest.mark.parametrize(
    "actor, access, score",
    [
        # a partner outside what its company's agents ever do: outside its contract (1 + 1 + 1)
        (Actor("ptn-0001", kind="partner", role="agent", organization="sky", department=None), {"crm"}, 3.0),
        # ... and when it is passport data (1 + 2 + 1 + 1)
        (Actor("ptn-0001", kind="partner", role="agent", organization="sky", department=None), {"passports"}, 5.0),
        # a service account calling from a public address (1 + 1 + 2)
        (Actor("svc-sync", kind="service", role="sync", department=None), {"public_ip"}, 4.0),
        # an employee from a public address (1 + 1)
        (Actor("emp-0050", role="sales", department="sales"), {"public_ip"}, 2.0),
    ],
)
def test_what_is_touched_and_by_whom_weighs_the_first_touch(actor, access, score):
    # ``access``: what is new in the actor's day 14 (a resource, passport data, a public address)
    known = history(actor, days=14, per_hour=3, records=2, resource=BOOKINGS, weekdays=EVERY_DAY)
    new = burst(
        actor,
        local(14, 10),
        events=2,
        resource={"system": "crm", "type": "customer_record"} if "crm" in access else BOOKINGS,
        fields=PASSPORT_FIELDS if "passports" in access else ("name", "phone"),
        source_ip=PUBLIC_IP if "public_ip" in access else actor.ip,
    )
    alert = run(stream(known, new), NAME).only()
    assert alert.score == score, describe(alert)


@pytest.mark.parametrize("address", ["198.51.100.77", "203.0.113.20"])
def test_an_address_outside_the_private_networks_is_external_even_in_a_documentation_range(address):
    service = Actor("svc-sync", kind="service", role="sync", department=None)
    known = history(service, days=14, per_hour=3, records=2, weekdays=EVERY_DAY)
    alert = run(stream(known, burst(service, local(14, 10), events=2, source_ip=address)), NAME).only()
    assert alert.score == 4.0, describe(alert)


def test_the_organisations_own_public_range_is_internal_when_configured():
    service = Actor("svc-sync", kind="service", role="sync", department=None)
    known = history(service, days=14, per_hour=3, records=2, weekdays=EVERY_DAY)
    events = stream(known, burst(service, local(14, 10), events=2, source_ip="198.51.100.77"))
    assert run(events, NAME).only().score == 4.0
    own_range = settings_with(organisation__internal_networks=["10.0.0.0/8", "198.51.100.0/24"])
    assert run(events, NAME, settings=own_range).only().score == 1.0


def test_many_new_things_at_once_and_a_large_read_weigh_more():
    new_ip = burst(AGENT, local(14, 10), events=2, source_ip="10.200.0.9")  # a new private address: 1
    alert = run(stream(*routine(), new_ip), NAME).only()
    assert alert.score == 1.0
    four_new = burst(
        AGENT,
        local(14, 10),
        events=2,
        records=600,  # 1,200 records: +1
        source_ip="10.200.0.9",
        resource=BOOKINGS,  # a resource the peers never touch: 2
        fields=("name", "booking_history", "religion"),  # transactions (2) and special (4)
    )
    alert = run(stream(*routine(), four_new), NAME).only()
    assert len(alert.evidence["new"]) == 4
    assert alert.score == 4.0 + 0.5 * 2 + 1.0  # the weightiest, + half a point per doubling, + the volume
    assert alert.severity is Severity.HIGH


def test_what_limits_the_kinds_of_first_touch_judged():
    new_ip = burst(AGENT, local(14, 10), events=2, source_ip="10.200.0.9")
    assert run(stream(*routine(), new_ip), NAME, config={NAME: {"what": ["data_class", "resource"]}}).alerts == []


def test_a_first_touch_that_served_no_record_is_under_min_records():
    refused = burst(AGENT, local(14, 10), events=2, fields=PASSPORT_FIELDS, outcome="denied")
    assert run(stream(*routine(), refused), NAME).alerts == []
    assert run(stream(*routine(), refused), NAME, config={NAME: {"min_records": 0}}).alerts


# -- what it must leave alone --------------------------------------------------


def test_a_routine_first_touch_of_low_sensitivity_data_the_peers_touch_is_low_and_not_paged():
    # the others also read nationality; this agent never has, until today
    others = [history(a, days=14, per_hour=3, records=2, fields=("name", "phone", "membership_tier")) for a in TEAM[1:]]
    own = history(AGENT, days=14, per_hour=3, records=2)
    first = burst(AGENT, local(14, 10), events=2, fields=("name", "membership_tier"))  # unclassified: low
    alert = run(stream(*others, own, first), NAME).only()
    assert alert.score == 1.0 and alert.severity is Severity.LOW
    assert not alert.severity.at_least(settings_with().notify.min_severity)


def test_a_first_read_of_passports_the_peers_read_in_their_work_is_low_and_not_paged():
    # the others check passports now and then; this agent never has, until today
    others = [history(a, days=14, per_hour=3, records=2, fields=PASSPORT_FIELDS) for a in TEAM[1:]]
    own = history(AGENT, days=14, per_hour=3, records=2)
    first = burst(AGENT, local(14, 10), events=2, fields=PASSPORT_FIELDS)
    alert = run(stream(*others, own, first), NAME).only()
    # a first touch (1) of high-sensitivity data (+1 only: the peers' work includes it)
    assert alert.score == 2.0 and alert.severity is Severity.LOW
    assert not alert.severity.at_least(settings_with().notify.min_severity)
    # the same first read in a team that never reads passports is paged (see the insider above: 4.0)


def test_what_the_actor_already_touches_is_not_new():
    again = burst(AGENT, local(14, 10), events=30, records=20)
    assert run(stream(*routine(), again), NAME).alerts == []


def test_a_new_hire_is_not_judged_on_first_touches_during_its_own_warm_up():
    hire = Actor("emp-0099", ip="10.9.9.9")
    first_week = history(hire, days=4, start_day=14, per_hour=3, records=2)  # everything is new to a new hire
    assert run(stream(*routine(18), first_week), NAME).alerts == []
    # once known (five active days), a first touch is news again
    later = burst(hire, local(21, 10), events=2, fields=PASSPORT_FIELDS)
    five_days = history(hire, days=7, start_day=14, per_hour=3, records=2)
    assert run(stream(*routine(22), five_days, later), NAME).only().actor_id == hire.id


# -- alerts as an analyst sees them --------------------------------------------


def test_a_finding_that_continues_grows_one_alert_and_the_next_day_it_is_known():
    # passports at 10:45, bank details at 11:45: one exploration, one alert
    passports = burst(AGENT, local(14, 10, 45), events=2, fields=PASSPORT_FIELDS)
    bank = burst(AGENT, local(14, 11, 45), events=2, fields=("name", "bank_account"))
    next_day = burst(AGENT, local(15, 10), events=2, fields=("passport_number", "bank_account"))
    result = run(stream(*routine(16), passports, bank, next_day), NAME)
    alert = result.only()
    assert (alert.window_start, alert.window_end) == (local(14, 10), local(14, 12))
    assert alert.evidence["findings"] == alert.revision == len(result.findings) == 2
    assert [span[0] for span in alert.evidence["spans"]] == ["2026-11-16T02:00:00.000Z", "2026-11-16T03:00:00.000Z"]


def test_different_first_touches_days_apart_are_separate_alerts():
    passports = burst(AGENT, local(14, 10), events=2, fields=PASSPORT_FIELDS)
    bank = burst(AGENT, local(17, 10), events=2, fields=("name", "bank_account"))
    alerts = run(stream(*routine(21), passports, bank), NAME).alerts
    assert [a.evidence["new"][0]["value"] for a in alerts] == ["government_id", "financial"]
    assert [a.window_start for a in alerts] == [local(14, 10), local(17, 10)]


def test_no_alert_during_the_system_warm_up():
    # known after five active days (Monday to Friday), the agent reads passports on Saturday: day 5
    events = stream(
        *[history(a, days=5, per_hour=3, records=2, weekdays=EVERY_DAY) for a in TEAM],
        burst(AGENT, local(5, 10), events=2, fields=PASSPORT_FIELDS),
    )
    assert run(events, NAME).alerts == []
    shorter = settings_with(baselines__system_warmup="4d")
    assert run(events, NAME, settings=shorter).only().window_start == local(5, 10)


def test_counted_nouns_agree_with_their_figures():
    from detectors import wording

    assert wording.counted(1, "record") == "1 record"
    assert wording.counted(3000, "record") == "3,000 records"
    assert wording.counted(0.6, "address", "addresses") == "1 address"  # shown rounded: the noun agrees with it
    assert wording.counted(2, "data class", "data classes") == "2 data classes"
