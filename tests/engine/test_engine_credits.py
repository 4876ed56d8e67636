"""Pricing table and credit ledger: reserve, settle, release, exhaust."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from genbatch.engine.credits import CreditLedger, CreditsRefused, Pricing, PricingError
from genbatch.engine.recipe import Recipe

#: The vendor's published typical costs (docs/dialect.md §4), per call.
PUBLISHED_PER_CALL = {
    "image_from_text": 5,
    "speech_from_text": 15,  # a short's voiceover at ~30 per minute
    "lipsync": 200,
    "captions": 10,
    "media": 0,
    "render": 50,
}


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


# -- pricing -----------------------------------------------------------------
def test_default_pricing_is_the_published_typical_costs() -> None:
    pricing = Pricing.load()
    assert {k: pricing.price(k) for k in PUBLISHED_PER_CALL} == PUBLISHED_PER_CALL
    # Video is billed per second of the clip: 10 s of Veo 3 ~ 600, 5 s of Seedance Pro ~ 250.
    assert pricing.price("video_from_text", {"model": "veo_3", "duration": 10}) == 600
    assert pricing.price("video_from_text", {"model": "seedance_pro", "duration": 5}) == 250
    assert pricing.price("text", {"model": "gemini_2_5_pro"}) == 8
    assert pricing.price("image_from_text", {"model": "midjourney"}) == 15
    card = {"model": "veo_3", "duration": 8}
    assert pricing.total([("video_from_text", card), ("render", None)]) == 8 * 60 + 50


def test_default_recipe_estimates() -> None:
    pricing = Pricing.load()
    row = {"row_id": "r", "hook": "h", "script": "s"}
    # voiceover 15 + 5 s of veo_3_fast (30/s) + render 50
    assert Recipe.default("tiktok-vo-broll").plan_row(row).credit_estimate(pricing) == 215
    # voiceover 15 + 5 s of veo_3_fast + lipsync 200 + captions 10 + render 50
    assert Recipe.default("tiktok-talking-avatar").plan_row(row).credit_estimate(pricing) == 425


def test_user_pricing_with_model_and_per_second_overrides(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text(
        "[generation_types]\nvideo_from_text = 20\nrender = 5\n[models]\nveo_3 = 30\n"
        "[per_second]\nsora_2 = 7\n"
    )
    pricing = Pricing.load(path)
    assert pricing.price("video_from_text", {"model": "veo_3", "duration": 8}) == 30
    assert pricing.price("video_from_text", {"model": "sora_2", "duration": 10}) == 70
    # A per-second price without a duration falls through to the type's per-call price.
    assert pricing.price("video_from_text", {"model": "sora_2"}) == 20
    assert pricing.price("video_from_text", {"model": "kling_1_6", "duration": 5}) == 20
    with pytest.raises(PricingError, match="no price for generation type 'lipsync'"):
        pricing.price("lipsync")


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("nope", "TOML"),
        ("[generation_types]\n", "needs a"),
        ("[generation_types]\ntext = -1\n", ">= 0"),
        ("[generation_types]\ntext = 'cheap'\n", "number"),
        ("[generation_types]\ntext = 1\n[extras]\n", "unknown section"),
    ],
)
def test_bad_pricing_files(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "p.toml"
    path.write_text(text)
    with pytest.raises(PricingError, match=match):
        Pricing.load(path)
    with pytest.raises(PricingError, match="cannot read"):
        Pricing.load(tmp_path / "missing.toml")


# -- ledger ------------------------------------------------------------------
async def test_reserve_settle_release_accounting() -> None:
    ledger = CreditLedger(max_credits=100)
    a = await ledger.reserve(20, "r1/broll")
    b = await ledger.reserve(5, "r1/render")
    assert ledger.reserved == 25 and ledger.charged == 0
    assert a.settle(18) == 18  # the generation reported its cost
    b.release()  # the render failed and was refunded
    b.release()  # releasing twice is harmless
    assert ledger.charged == 18 and ledger.reserved == 0
    snap = ledger.snapshot()
    assert snap.in_flight == 0 and snap.charged == 18
    with pytest.raises(RuntimeError, match="already settled"):
        a.settle()
    c = await ledger.reserve(2)
    assert c.settle() == 2  # no reported cost: the estimate is charged
    assert ledger.charged == 20


async def test_budget_refuses_what_can_never_fit() -> None:
    ledger = CreditLedger(max_credits=30)
    (await ledger.reserve(20)).settle()
    with pytest.raises(CreditsRefused) as info:
        await ledger.reserve(20)
    assert info.value.reason == "budget" and "--max-credits 30" in str(info.value)
    assert ledger.snapshot().refused == 1
    small = await ledger.reserve(10)  # exactly fits
    small.settle()
    assert ledger.charged == 30


async def test_waits_for_in_flight_reservations_then_proceeds() -> None:
    ledger = CreditLedger(max_credits=40)
    first = await ledger.reserve(20)
    second = await ledger.reserve(20)
    waiter = asyncio.create_task(ledger.reserve(20))
    await settle()
    assert not waiter.done()  # could fit if one in-flight job is refunded
    second.release()
    third = await asyncio.wait_for(waiter, 5)
    assert ledger.reserved == 40
    first.settle()
    third.settle()
    assert ledger.charged == 40


async def test_waiter_is_refused_when_the_wait_cannot_pay_off() -> None:
    ledger = CreditLedger(max_credits=40)
    first = await ledger.reserve(30)
    waiter = asyncio.create_task(ledger.reserve(20))
    await settle()
    first.settle(30)  # charged in full: 10 left, 20 can never fit
    with pytest.raises(CreditsRefused, match="budget"):
        await asyncio.wait_for(waiter, 5)


async def test_known_balance_limits_spending() -> None:
    ledger = CreditLedger(balance=25)
    broll = await ledger.reserve(20)
    assert ledger.balance_left() == 5
    with pytest.raises(CreditsRefused) as info:
        await ledger.reserve(30)
    assert info.value.reason == "balance"
    broll.settle(20)
    render = await ledger.reserve(5)
    render.settle()
    assert ledger.balance_left() == 0
    ledger.set_balance(100)  # topped up, re-read
    assert ledger.balance_left() == 100
    (await ledger.reserve(50)).settle()
    assert ledger.balance_left() == 50 and ledger.charged == 75


async def test_exhaustion_stops_new_paid_work_and_refuses_waiters() -> None:
    ledger = CreditLedger(max_credits=20)
    in_flight = await ledger.reserve(20)
    waiter = asyncio.create_task(ledger.reserve(20))
    await settle()
    ledger.exhaust("insufficient_credits_for_job")
    with pytest.raises(CreditsRefused) as info:
        await asyncio.wait_for(waiter, 5)
    assert info.value.reason == "exhausted" and ledger.exhausted
    assert ledger.exhausted_reason == "insufficient_credits_for_job"
    with pytest.raises(CreditsRefused):
        ledger.try_reserve(1)
    # Work already in flight still settles and is reported.
    in_flight.settle(20)
    assert ledger.charged == 20
    # Free steps are not paid work: they still pass.
    free = await ledger.reserve(0, "media")
    free.settle(0)


async def test_many_concurrent_reservations_never_overspend() -> None:
    ledger = CreditLedger(max_credits=100)
    granted: list[float] = []
    refused = released = 0

    async def job(i: int) -> None:
        nonlocal refused, released
        try:
            r = await ledger.reserve(7, f"job{i}")
        except CreditsRefused:
            refused += 1
            return
        await asyncio.sleep(0.001 * (i % 3))
        if i % 4 == 0:
            r.release()  # failed, refunded
            released += 1
        else:
            granted.append(r.settle())

    await asyncio.gather(*(job(i) for i in range(60)))
    assert ledger.charged == sum(granted) <= 100
    assert ledger.reserved == 0
    assert refused + len(granted) + released == 60
    assert ledger.charged > 100 - 7  # the budget was used up, not abandoned early


def test_try_reserve_without_a_loop() -> None:
    ledger = CreditLedger()
    r = ledger.try_reserve(5)
    assert r is not None and ledger.reserved == 5
    assert ledger.balance_left() is None
    with pytest.raises(ValueError):
        CreditLedger(max_credits=-1)


# -- row admission -----------------------------------------------------------
async def test_admission_holds_a_whole_row_and_steps_draw_from_it() -> None:
    ledger = CreditLedger(balance=70)
    rows = [await ledger.admit(27, "r1"), await ledger.admit(27, "r2")]
    assert ledger.reserved == 54 and ledger.balance_left() == 16
    third = asyncio.create_task(ledger.admit(27, "r3"))
    await settle()
    assert not third.done()  # fits only if an admitted row comes in cheaper
    for row in rows:
        speech = await row.draw(2)
        video = await row.draw(20)
        video.release()  # failed, refunded: back to the row, not the ledger
        assert row.held == 25 and ledger.reserved == 54 - 27 * rows.index(row)
        video = await row.draw(20)
        render = await row.draw(5)
        assert row.held == 0 and ledger.charged == (27 if row is rows[1] else 0)
        for r in (speech, video, render):
            r.settle()
        row.close()
    with pytest.raises(CreditsRefused) as info:
        await asyncio.wait_for(third, 5)
    assert str(info.value) == "insufficient credits: needs 27, 16 left"
    assert info.value.reason == "balance"
    assert ledger.charged == 54 and ledger.reserved == 0


async def test_admission_budget_reason_and_unspent_hold_returns() -> None:
    ledger = CreditLedger(max_credits=60)
    row = await ledger.admit(27, "r1")
    other = await ledger.admit(27, "r2")
    (await row.draw(2)).settle()
    row.close()  # ended early (failed): 25 unspent go back at once
    assert ledger.reserved == 27 and ledger.charged == 2
    third = await ledger.admit(27, "r3")  # now it fits: 2 + 27 + 27 <= 60
    other.close()
    third.close()
    assert ledger.reserved == 0
    (await ledger.admit(0, "paid already")).close()  # nothing to pay: always admitted
    ledger2 = CreditLedger(max_credits=60)
    (await ledger2.reserve(50)).settle()
    with pytest.raises(CreditsRefused, match=r"needs 27, 10 left of --max-credits 60"):
        await ledger2.admit(27, "r")


async def test_a_draw_beyond_the_hold_reserves_the_rest_and_exhaustion_stops_draws() -> None:
    ledger = CreditLedger(max_credits=30)
    row = await ledger.admit(5, "r1")
    big = await row.draw(20)  # cost more than estimated: 15 from the ledger
    assert row.held == 0 and ledger.reserved == 20
    big.release()
    assert row.held == 5 and ledger.reserved == 5
    ledger.exhaust("insufficient credits")
    with pytest.raises(CreditsRefused, match="insufficient credits"):
        await row.draw(5)
    assert row.held == 5
    row.close()
    assert ledger.reserved == 0 and ledger.charged == 0
