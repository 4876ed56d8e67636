"""``genbatch run --videos-to s3://…`` against a real S3 API (moto's server), end to end.

The run is a subprocess, the simulator a process of its own (a rerun after a
SIGKILL finds the jobs of the killed run), the bucket versioned: a second
upload of any object would show as a second version, so "each key has one
version" proves nothing was uploaded twice.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from storagehelp import (
    AGENT,
    AWS_SECRET,
    KEY,
    S3,
    assert_no_secrets,
    moto_s3,
    no_aws_env,
    paid_once,
    posts,
    results,
    run_cli,
    sha256,
    vo_table,
)

from genbatch.sim.config import SimConfig
from genbatch.sim.launch import SimProcess

ROWS = 20
BUCKET = "genbatch-night"
PREFIX = "night/"


@pytest.fixture
def s3() -> Iterator[S3]:
    yield from moto_s3()


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[SimProcess]:
    config = SimConfig(
        api_keys=(KEY,), rate=1000.0, burst=1000, time_scale=0.002, seed=3, credits=100_000.0
    )
    with SimProcess(config, log=tmp_path / "sim.log") as proc:
        yield proc


def _objects(s3: S3) -> dict[str, str]:
    """Key -> version id of every object under the prefix (one version each, asserted)."""
    found = s3.versions(BUCKET, PREFIX)
    twice = {k: len(v) for k, v in found.items() if len(v) != 1}
    assert not twice, f"uploaded more than once: {twice}"
    return {k: v[0]["VersionId"] for k, v in found.items()}


def test_kill_mid_run_then_rerun_uploads_every_video_once(
    tmp_path: Path, s3: S3, sim: SimProcess
) -> None:
    s3.bucket(BUCKET, versioned=True)
    table = vo_table(tmp_path / "night.csv", ROWS)
    out = tmp_path / "out"
    url = f"s3://{BUCKET}/{PREFIX}"
    args = ("--videos-to", url, "--max-concurrency", "4")

    def some_uploaded(_row: str | None) -> bool:
        return sum(k.endswith(".mp4") for k in s3.versions(BUCKET, PREFIX)) >= 6

    # The 6th row to finish its uploads parks between "verified" and "recorded";
    # the kill then finds it there, earlier rows recorded, later ones not begun.
    first = run_cli(
        table, out, s3.env(), *args, api_url=sim.api_url, agent_url=sim.agent_url,
        halt_at="store:verified", halt_nth=6, kill_when=some_uploaded,
    )  # fmt: skip
    assert first.killed, first.stderr[-2000:]
    halted = first.halted_row
    assert halted is not None
    before = _objects(s3)
    videos = {k for k in before if k.endswith(".mp4")}
    assert 6 <= len(videos) < ROWS, sorted(before)
    # Caught after its upload, before its record: the object is there, the journal
    # does not say so yet.
    assert f"{PREFIX}{halted}.mp4" in before
    assert (out / "videos" / f"{halted}.mp4").is_file()  # not removed before the record

    again = run_cli(table, out, s3.env(), *args, api_url=sim.api_url, agent_url=sim.agent_url)
    assert again.code == 0, again.stderr[-2000:]

    after = _objects(s3)  # still one version per key: nothing sent twice
    assert {k: after[k] for k in before} == before  # objects from before the kill untouched
    rows = results(out)
    assert len(rows) == ROWS
    for row_id, r in rows.items():
        assert r["status"] == "completed", r
        assert r["video_url"] == f"{url}{row_id}.mp4"
        assert r["thumbnail_url"] == f"{url}{row_id}.jpg"
        assert r["mp4_path"] is None and r["thumbnail"] is None  # local copies removed
        data, meta = s3.get(BUCKET, f"{PREFIX}{row_id}.mp4")
        assert len(data) == r["bytes"] and sha256(data) == r["sha256"] == meta["sha256"]
        jpg, jmeta = s3.get(BUCKET, f"{PREFIX}{row_id}.jpg")
        assert jpg[:3] == b"\xff\xd8\xff" and sha256(jpg) == jmeta["sha256"]
    assert set(after) == {f"{PREFIX}{r}.{ext}" for r in rows for ext in ("mp4", "jpg")}
    assert sorted(p.name for p in (out / "videos").iterdir()) == []
    # The journal and the results stay in --out; nothing was paid twice.
    assert (out / "journal.sqlite").is_file() and (out / "results.csv").is_file()
    paid_once(sim.ledger())
    assert_no_secrets(out)
    assert AWS_SECRET not in first.stderr + again.stderr + again.stdout


def test_keep_local_keeps_the_local_copies(tmp_path: Path, s3: S3, sim: SimProcess) -> None:
    s3.bucket(BUCKET)
    table = vo_table(tmp_path / "t.csv", 2)
    out = tmp_path / "out"
    url = f"s3://{BUCKET}/keep"  # no trailing slash: the same prefix
    done = run_cli(
        table, out, s3.env(), "--videos-to", url, "--keep-local",
        api_url=sim.api_url, agent_url=sim.agent_url,
    )  # fmt: skip
    assert done.code == 0, done.stderr[-2000:]
    for row_id, r in results(out).items():
        local = out / r["mp4_path"]
        assert r["video_url"] == f"{url}/{row_id}.mp4"
        data, _ = s3.get(BUCKET, f"keep/{row_id}.mp4")
        assert local.read_bytes() == data
        assert (out / r["thumbnail"]).read_bytes() == s3.get(BUCKET, f"keep/{row_id}.jpg")[0]


def _refused(tmp_path: Path, env: dict[str, str], sim: SimProcess, *args: str) -> str:
    table = vo_table(tmp_path / "t.csv", 2)
    done = run_cli(
        table, tmp_path / "out", env, *args, api_url=sim.api_url, agent_url=sim.agent_url
    )
    assert done.code == 2, (done.code, done.stderr[-2000:])
    err = done.stderr.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert AWS_SECRET not in err and KEY not in err
    ledger = sim.ledger()
    assert posts(ledger) == [] and ledger["generations"] == []  # nothing paid, nothing sent
    return err


def test_missing_bucket_is_refused_before_any_paid_call(
    tmp_path: Path, s3: S3, sim: SimProcess
) -> None:
    err = _refused(tmp_path, s3.env(), sim, "--videos-to", "s3://no-such-bucket/night/")
    assert "s3://no-such-bucket/night/" in err and "bucket does not exist" in err


def test_no_credentials_is_refused_before_any_paid_call(
    tmp_path: Path, s3: S3, sim: SimProcess
) -> None:
    s3.bucket(BUCKET)
    env = {**no_aws_env(), "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": s3.endpoint}
    err = _refused(tmp_path, env, sim, "--videos-to", f"s3://{BUCKET}/night/")
    assert "no credentials" in err and "AWS_ACCESS_KEY_ID" in err


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("genbatch-night/night", "is not a URL"),
        ("s3://KEY:secret@genbatch-night/x", "must not carry credentials"),
        ("nosuchproto://x/y", "unknown storage protocol"),
    ],
)
def test_bad_url_is_refused_before_any_paid_call(
    tmp_path: Path, s3: S3, sim: SimProcess, url: str, says: str
) -> None:
    err = _refused(tmp_path, s3.env(), sim, "--videos-to", url)
    assert says in err
    assert "secret" not in err


def test_without_the_storage_extra_says_what_to_install(
    tmp_path: Path, s3: S3, sim: SimProcess
) -> None:
    # A plain install has no fsspec: hide it from the child, as if never installed.
    table = vo_table(tmp_path / "t.csv", 1)
    code = (
        "import sys; sys.modules['fsspec'] = None\n"
        "from genbatch.cli import main\n"
        "raise SystemExit(main(sys.argv[1:]))\n"
    )
    import subprocess

    done = subprocess.run(
        [
            sys.executable, "-c", code, "run", str(table), "--template", "tiktok-vo-broll",
            "--out", str(tmp_path / "out"), "--base-url", sim.api_url,
            "--agent-url", sim.agent_url, "--agent", AGENT, "--videos-to", "s3://bkt/x/",
        ],
        env={**s3.env(), "GEN_API_KEY": KEY},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "pip install 'genbatch[storage]'" in done.stderr
    assert posts(sim.ledger()) == []
    assert not (tmp_path / "out").exists()
