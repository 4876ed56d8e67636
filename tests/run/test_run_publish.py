"""Publishing: posted once per row; "now" waits for the post id, a schedule does not."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from runhelp import check_invariants, ledger, run_table, vo_recipe, write_csv

PUBLISH_NOW = vo_recipe(
    publish='[publish]\nenabled = true\ndescription = "{hook}"\nhashtags = ["coffee"]\n'
)


def publishes(led: dict) -> list[dict]:
    return [j for j in led["user_jobs"] if j["type"] == "publish_content"]


async def test_publish_now_waits_for_the_post_id(sim_factory, tmp_path: Path) -> None:
    sim = await sim_factory(api_keys=("gb-test-secret-key-7f3a9c21d5e84b60",))
    recipe = tmp_path / "now.toml"
    recipe.write_text(PUBLISH_NOW, encoding="utf-8")
    table = write_csv(
        tmp_path / "t.csv", ["row_id", "hook", "script"], [["a", "Hook A", "S"], ["b", "B", "S"]]
    )
    out = tmp_path / "out"

    summary = await run_table(sim, table, out, recipe=recipe)

    assert summary.exit_code == 0, summary.to_json()
    led = await ledger(sim.url)
    rows = check_invariants(led, out, table)
    jobs = publishes(led)
    assert len(jobs) == 2 and all(j["status"] == "completed" for j in jobs)
    assert sorted(r["post_id"] for r in rows) == sorted(j["post_id"] for j in jobs)
    assert all(r["seconds_publish"] is not None for r in rows)

    again = await run_table(sim, table, out, recipe=recipe)  # a finished table: no repost
    assert again.exit_code == 0
    assert len(publishes(await ledger(sim.url))) == 2


async def test_rows_with_publish_at_are_scheduled_once(sim_factory, tmp_path: Path) -> None:
    sim = await sim_factory(api_keys=("gb-test-secret-key-7f3a9c21d5e84b60",))
    # Far enough ahead that even at the test's time scale the run will not wait.
    when = (datetime.now(UTC) + timedelta(days=60)).replace(microsecond=0)
    table = write_csv(
        tmp_path / "t.csv",
        ["row_id", "hook", "script", "publish_at"],
        [
            ["post-me", "Fresh beans, Friday", "Script one.", when.isoformat()],
            ["keep-me", "Not this one", "Script two.", ""],
        ],
    )
    out = tmp_path / "out"

    summary = await run_table(sim, table, out, template="tiktok-vo-broll")

    assert summary.exit_code == 0, summary.to_json()
    led = await ledger(sim.url)
    rows = {r["row_id"]: r for r in check_invariants(led, out, table)}
    (job,) = publishes(led)
    assert job["scheduled_time"].startswith(when.strftime("%Y-%m-%dT%H:%M"))
    assert job["status"] == "pending"  # posts in 60 days; the run did not wait
    assert rows["post-me"]["status"] == "completed" and rows["post-me"]["post_id"] is None
    assert rows["post-me"]["publish_job_id"] == str(job["id"])
    assert rows["keep-me"]["post_id"] is None

    again = await run_table(sim, table, out, template="tiktok-vo-broll")
    assert again.exit_code == 0
    assert len(publishes(await ledger(sim.url))) == 1
