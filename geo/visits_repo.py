"""Visits in SQL: the one definition of a member's open visits, embedded by the queries that
need them (ping ingestion reads them to step the state machine, offer issuance to find the
visits an offer may be for)."""

from __future__ import annotations

import msgspec

from geo.pings import OpenVisit

# A visit is open until it has an exit time (`visits_one_open` allows one per member and store).
_OPEN = "FROM visits v WHERE v.member_id = {member} AND v.exited_at IS NULL"


def open_visit_column(column: str, member: str = "m.id") -> str:
    """SQL: `SELECT v.<column>` of every open visit of `member` (an SQL expression)."""
    assert column.isidentifier()
    return f"SELECT v.{column} " + _OPEN.format(member=member)


def open_visits_json(member: str = "m.id") -> str:
    """SQL: the open visits of `member` as a JSON array of `OpenVisit` (text)."""
    return """(SELECT coalesce(json_agg(json_build_object(
                   'id', v.id, 'store_id', v.store_id, 'entered_at', v.entered_at,
                   'last_seen_at', v.last_seen_at, 'dwell_at', v.dwell_at,
                   'outside_since', v.outside_since)), '[]') """ + _OPEN.format(
        member=member) + ")::text"


OPEN_VISITS = open_visits_json()


decode_open_visits = msgspec.json.Decoder(list[OpenVisit]).decode
