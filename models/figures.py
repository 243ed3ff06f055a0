"""Figures as a person reads them: the alerts' summaries (``detectors.wording``) and the pages' first lines
(``notify.gist``) print them alike, so that a page's "11x their usual" is its summary's."""

from __future__ import annotations


def count(value: float) -> str:
    return f"{round(value):,}"


def times(ratio: float) -> str:
    return f"{ratio:,.0f}x" if ratio >= 10 else f"{ratio:.1f}x"


def usual(expected: float) -> str:
    """'6.4', '95', '1,250': an expected figure to the precision a multiple of it is read at."""
    return f"{expected:.1f}".removesuffix(".0") if expected < 10 else count(expected)


def multiple(value: float, expected: float) -> float:
    """``value`` over the usual as ``usual`` prints it, so that a reader's own division agrees."""
    return value / (round(expected, 1) if expected < 10 else round(expected))


_EGRESS_VERBS = {"export": "exported", "download": "downloaded", "print": "printed", "share": "shared"}


def took_out(records: int, by_action: dict[str, int]) -> str:
    """'printed 8,000 records', 'exported 5,000 and printed 3,000 records': what was done, largest first.

    A window saved by a version that did not count by action says all four: it cannot tell which.
    """
    if not by_action or sum(by_action.values()) != records:
        return f"exported, downloaded, printed or shared {count(records)} records"
    done = [
        f"{_EGRESS_VERBS.get(action, action)} {count(value)}"
        for action, value in sorted(by_action.items(), key=lambda item: (-item[1], item[0]))
    ]
    listed = done[0] if len(done) == 1 else f"{', '.join(done[:-1])} and {done[-1]}"
    return f"{listed} records"
