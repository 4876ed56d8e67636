"""Bad input: clear reasons per row, refusals before any spend, nothing outside the out dir."""

from __future__ import annotations

from pathlib import Path

import pytest
from runhelp import (
    check_invariants,
    ledger,
    results,
    run_table,
    snapshot_tree,
    vo_recipe,
    write_csv,
)

from genbatch.engine.plan import StartError

MODEL_RECIPE = vo_recipe(model="{model}")


async def test_bad_rows_fail_with_reasons_and_good_rows_run(sim_factory, tmp_path: Path) -> None:
    sim = await sim_factory(api_keys=("gb-test-secret-key-7f3a9c21d5e84b60",))
    work = tmp_path / "work"
    recipe = work / "recipe.toml"
    work.mkdir()
    recipe.write_text(MODEL_RECIPE, encoding="utf-8")
    table = write_csv(
        work / "t.csv",
        ["row_id", "hook", "script", "model", "publish_at"],
        [
            ["good", "A hook", "A script", "veo_3_fast", ""],
            ["../../x", "Escape hook", "Escape script", "veo_3", ""],
            ["no-script", "Hook only", "", "veo_3", ""],
            ["bad-model", "Hook", "Script", "veo_9000", ""],
            ["bad-date", "Hook", "Script", "veo_3", "tomorrow at noon"],
            ["=HYPERLINK(1)", "Hook", "Script", "veo_3", ""],
        ],
    )
    before = snapshot_tree(tmp_path)
    out = work / "out"

    summary = await run_table(sim, table, out, recipe=recipe)

    assert summary.exit_code == 1
    rows = {r["row_id"]: r for r in check_invariants(await ledger(sim.url), out, table)}
    assert rows["good"]["status"] == "completed"
    escaped = rows["../../x"]
    assert escaped["status"] == "completed"
    # A hostile row_id becomes a harmless file name inside videos/.
    assert escaped["mp4_path"].startswith("videos/") and ".." not in escaped["mp4_path"]
    assert (out / escaped["mp4_path"]).is_file()
    assert rows["no-script"]["status"] == "failed"
    assert "script" in rows["no-script"]["reason"]
    assert rows["bad-model"]["status"] == "failed"
    assert "veo_9000" in rows["bad-model"]["reason"] and "model" in rows["bad-model"]["reason"]
    assert rows["bad-date"]["status"] == "failed"
    assert "publish_at" in rows["bad-date"]["reason"]
    assert rows["=HYPERLINK(1)"]["status"] == "failed"
    assert "formula" in rows["=HYPERLINK(1)"]["reason"]
    for bad in ("no-script", "bad-model", "bad-date", "=HYPERLINK(1)"):
        assert rows[bad]["error_code"] == "invalid_row"
        assert rows[bad]["engine_id"] is None and rows[bad]["credits"] == 0
    # The formula-looking id is escaped in the CSV, verbatim in parquet.
    csv_text = (out / "results.csv").read_text(encoding="utf-8")
    assert "\n'=HYPERLINK(1)," in csv_text
    # I6: nothing outside the output dir, not even for "../../x".
    created = snapshot_tree(tmp_path) - before
    assert all(p == out or out in p.parents for p in created), created
    assert not [p for p in snapshot_tree(tmp_path) if p.name.startswith("x")]


def test_duplicate_row_ids_refuse_the_run(tmp_path: Path) -> None:
    import asyncio

    from genbatch.engine.runner import RunOptions, execute

    table = write_csv(
        tmp_path / "t.csv",
        ["row_id", "hook", "script"],
        [
            ["a", "h", "s"],
            ["b", "h", "s"],
            ["a", "h2", "s2"],
        ],
    )
    opts = RunOptions(
        table=table,
        out_dir=tmp_path / "out",
        api_key="unused",
        api_url="http://127.0.0.1:9/v1",
        agent_url="http://127.0.0.1:9/v1",
        template="tiktok-vo-broll",
        agent="1000",
        progress=False,
    )
    with pytest.raises(StartError, match="duplicate row_id"):
        asyncio.run(execute(opts))
    assert not (tmp_path / "out").exists()  # refused before touching the output dir


@pytest.mark.parametrize(
    ("header", "recipe_text", "match"),
    [
        (["row_id", "hook"], None, "no column 'script'"),
        (["row_id", "hook", "script"], MODEL_RECIPE.replace('"{model}"', '"veo_9"'), "veo_9"),
    ],
)
def test_missing_column_or_literal_unknown_model_refuses_the_run(
    tmp_path: Path, header: list[str], recipe_text: str | None, match: str
) -> None:
    import asyncio

    from genbatch.engine.runner import RunOptions, execute

    table = write_csv(tmp_path / "t.csv", header, [["a"] + ["x"] * (len(header) - 1)])
    recipe = None
    if recipe_text is not None:
        recipe = tmp_path / "r.toml"
        recipe.write_text(recipe_text, encoding="utf-8")
    opts = RunOptions(
        table=table,
        out_dir=tmp_path / "out",
        api_key="unused",
        api_url="http://127.0.0.1:9/v1",
        agent_url="http://127.0.0.1:9/v1",
        recipe=recipe,
        template=None if recipe else "tiktok-vo-broll",
        agent="1000",
        progress=False,
    )
    with pytest.raises(StartError, match=match):
        asyncio.run(execute(opts))
    assert not (tmp_path / "out").exists()


async def test_missing_asset_and_escaping_asset_path_fail_the_row(
    sim_factory, tmp_path: Path
) -> None:
    sim = await sim_factory(api_keys=("gb-test-secret-key-7f3a9c21d5e84b60",))
    work = tmp_path / "work"
    work.mkdir()
    (work / "song.m4a").write_bytes(b"\x00\x00\x00\x18ftypM4A " + b"\x00" * 64)
    (tmp_path / "secret.m4a").write_bytes(b"outside")
    recipe = work / "montage.toml"
    recipe.write_text(
        """
template = "tiktok-montage"
[cells]
hook = "{hook}"
[assets]
music = "{music}"
[[generate]]
cell = "shot_1"
generation_type = "video_from_text"
data = { prompt = "shot of {hook}", model = "veo_3_fast", duration = 5 }
[[generate]]
cell = "shot_2"
generation_type = "video_from_text"
data = { prompt = "detail of {hook}", model = "veo_3_fast", duration = 5 }
[[generate]]
cell = "shot_3"
generation_type = "video_from_text"
data = { prompt = "payoff of {hook}", model = "veo_3_fast", duration = 5 }
[render]
enabled = true
""",
        encoding="utf-8",
    )
    table = write_csv(
        work / "t.csv",
        ["row_id", "hook", "music"],
        [
            ["ok", "Coffee", "song.m4a"],
            ["gone", "Tea", "nope.m4a"],
            ["out", "Milk", "../secret.m4a"],
        ],
    )
    out = work / "out"
    summary = await run_table(sim, table, out, recipe=recipe)
    rows = {r["row_id"]: r for r in results(out)}
    assert summary.exit_code == 1
    assert rows["ok"]["status"] == "completed", rows["ok"]
    assert rows["gone"]["status"] == "failed" and "nope.m4a" in rows["gone"]["reason"]
    assert rows["out"]["status"] == "failed" and "outside" in rows["out"]["reason"]
    led = await ledger(sim.url)
    assert [u["filename"] for u in led["uploads"]] == ["song.m4a"]
