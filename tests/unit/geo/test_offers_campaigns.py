"""Campaign definitions: coherence rules naming the field, PATCH merging, status changes."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
import pytest
from support.offer_fixtures import STORE, campaign, utc

from geo.campaigns import (
    CampaignChanges,
    CampaignSpec,
    Caps,
    Context,
    OfferTemplate,
    Reward,
    Trigger,
    apply_changes,
    check_rules,
    next_status,
)
from wallet.kernel.errors import Conflict, RuleViolation

TIERS = ("silver", "gold")


def spec(**rules: Any) -> CampaignSpec:
    store_ids = rules.pop("store_ids", ())
    c = campaign(**rules)
    return CampaignSpec(name="c", store_ids=store_ids, rules=c.rules)


def refused(s: CampaignSpec) -> str | None:
    with pytest.raises(RuleViolation) as err:
        check_rules(s, tiers=TIERS, stores={STORE})
    return err.value.field


def with_offer(reward: Reward) -> CampaignSpec:
    s = spec()
    offer = OfferTemplate(title="t", body="b", reward=reward, valid_for_s=60)
    return msgspec.structs.replace(s, rules=msgspec.structs.replace(s.rules, offer=offer))


def test_a_coherent_campaign_passes() -> None:
    s = spec(hours=[("12:00", "18:00"), ("22:00", "02:00")], weekdays=[1, 7], tiers=["Gold"],
             store_ids=(STORE,), context=Context(min_temp_c=20, max_temp_c=30))
    assert check_rules(s, tiers=TIERS, stores={STORE}) == s


def test_the_schedule_must_start_before_it_ends() -> None:
    assert refused(spec(starts_at=utc(2026, 2, 1), ends_at=utc(2026, 2, 1))) == "schedule.ends_at"


def test_weekdays_are_unique() -> None:
    assert refused(spec(weekdays=[1, 2, 1])) == "schedule.weekdays[2]"


def test_an_hour_window_is_not_empty() -> None:
    assert refused(spec(hours=[("08:00", "09:00"), ("10:00", "10:00")])) == "schedule.hours[1].to"


def test_a_dwell_trigger_needs_dwell_s_and_an_enter_trigger_refuses_it() -> None:
    assert refused(spec(trigger=Trigger(event="dwell"))) == "trigger.dwell_s"
    assert refused(spec(trigger=Trigger(event="enter", dwell_s=60))) == "trigger.dwell_s"


@pytest.mark.parametrize(("kind", "bad", "good"), [
    ("bonus_points", 1_000_001, 500),
    ("points_multiplier", 1, 2),
    ("points_multiplier", 11, 10),
    ("percent_off", 101, 100),
])
def test_reward_values_are_in_the_range_of_their_kind(kind: str, bad: int, good: int) -> None:
    assert refused(with_offer(Reward(kind=kind, value=bad))) == "offer.reward.value"  # type: ignore[arg-type]
    check_rules(with_offer(Reward(kind=kind, value=good)),  # type: ignore[arg-type]
                tiers=TIERS, stores=set())


def test_audience_tiers_must_exist_in_the_program() -> None:
    assert refused(spec(tiers=["gold", "platinum"])) == "audience.tiers[1]"


def test_stores_must_be_live_stores_of_the_program_listed_once() -> None:
    assert refused(spec(store_ids=(STORE, uuid.uuid4()))) == "store_ids[1]"
    assert refused(spec(store_ids=(STORE, STORE))) == "store_ids[1]"


def test_temperatures_must_be_ordered_and_conditions_unique() -> None:
    assert refused(spec(context=Context(min_temp_c=30, max_temp_c=20))) == "context.max_temp_c"
    assert refused(spec(context=Context(conditions=["rain", "rain"]))) == "context.conditions"


def test_shape_errors_fail_at_decoding_naming_the_field() -> None:
    with pytest.raises(msgspec.ValidationError, match=r"max_issued"):
        msgspec.convert({"max_issued": 0}, Caps)
    with pytest.raises(msgspec.ValidationError, match=r"conditions"):
        msgspec.convert({"conditions": ["hail"]}, Context)


def test_a_patch_replaces_only_the_parts_it_names() -> None:
    s = spec(tiers=["gold"])
    out = apply_changes(s, CampaignChanges(caps=Caps(max_issued=3), name="renamed"))
    assert out.name == "renamed" and out.rules.caps.max_issued == 3
    assert out.rules.audience == s.rules.audience and out.store_ids == s.store_ids


def test_status_draft_to_active_to_paused_and_back() -> None:
    now, end = utc(2026, 5, 1), utc(2027, 1, 1)
    assert next_status("draft", "activate", ends_at=end, now=now) == "active"
    assert next_status("active", "pause", ends_at=end, now=now) == "paused"
    assert next_status("paused", "activate", ends_at=end, now=now) == "active"
    assert next_status("active", "activate", ends_at=end, now=now) == "active"
    with pytest.raises(Conflict):
        next_status("draft", "pause", ends_at=end, now=now)
    with pytest.raises(RuleViolation):
        next_status("paused", "activate", ends_at=now, now=now)
