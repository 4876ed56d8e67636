"""Simulator profiles (genbatch/sim/profile.py, ``genbatch sim --profile``): the named
ones load into valid configs, a bad file is one line and exit 2, flags beat the
profile, and ``launch.command`` spells out a config the child serves exactly."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from genbatch.cli.sim import _config, register
from genbatch.sim.clock import SIM_LATENCY
from genbatch.sim.config import SIM_DEFAULT_BURST, SIM_DEFAULT_PORT, SIM_DEFAULT_RATE, SimConfig
from genbatch.sim.launch import SimProcess, command
from genbatch.sim.profile import ProfileError, load_profile, profile_names

NAMED = ("fast-models", "limit-60", "queue-50", "slow-render", "timestamps", "today")
#: What each named profile must play (brief, genbatch issue 12); the rest is SimConfig's default.
EXPECTED: dict[str, dict[str, Any]] = {
    "today": {"rate": None, "rate_headers": False, "timestamps": False, "job_cap": None},
    "limit-60": {"rate": 60.0, "burst": 10, "rate_headers": False, "timestamps": False},
    "queue-50": {"rate": None, "rate_headers": False, "timestamps": False, "job_cap": 50},
    "fast-models": {"rate": None, "rate_headers": False, "timestamps": False, "job_cap": None},
    "slow-render": {"rate": None, "rate_headers": False, "timestamps": False, "job_cap": None},
    "timestamps": {"rate": None, "rate_headers": False, "timestamps": True, "job_cap": None},
}


def _scaled(kind: str, factor: float) -> tuple[float, float]:
    lo, hi = SIM_LATENCY[kind]
    return lo * factor, hi * factor


def parse(argv: list[str]) -> SimConfig:
    """``genbatch sim ARGV`` as the CLI turns it into a SimConfig (without serving it)."""
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["sim", *argv])
    agent_port = args.agent_port
    if agent_port is None:  # as cmd_sim: the port after the API host's
        agent_port = args.port + 1 if args.port else 0
    return _config(args, agent_port)


def test_named_profiles_are_shipped_and_listed_in_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert tuple(profile_names()) == NAMED
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    with pytest.raises(SystemExit):
        parser.parse_args(["sim", "--help"])
    text = capsys.readouterr().out
    for name in NAMED:
        assert f"\n  {name} " in text
    assert "0 = no rate limit at all" in " ".join(text.split())


@pytest.mark.parametrize("name", NAMED)
def test_each_named_profile_builds_a_valid_config(name: str) -> None:
    config = SimConfig.from_profile(name, time_scale=0.01)
    assert config.profile == name and config.time_scale == 0.01
    for field, want in EXPECTED[name].items():
        assert getattr(config, field) == want, field
    assert config.capacity is None
    latency = config.latency_map()
    if name == "fast-models":
        assert latency == {
            "video_from_text": _scaled("video_from_text", 0.05),
            "video_from_image": _scaled("video_from_image", 0.05),
            "video_from_ingredients": _scaled("video_from_ingredients", 0.05),
            "image_from_text": _scaled("image_from_text", 0.1),
            "speech_from_text": _scaled("speech_from_text", 0.2),
        }
    elif name == "slow-render":
        assert latency == {"render": _scaled("render", 4.0)}
    else:
        assert latency == {}


def test_no_profile_keeps_todays_defaults() -> None:
    config = parse([])
    assert config == SimConfig(port=SIM_DEFAULT_PORT, agent_port=SIM_DEFAULT_PORT + 1)
    assert (config.rate, config.burst) == (SIM_DEFAULT_RATE, SIM_DEFAULT_BURST)
    assert config.rate_headers and not config.timestamps
    assert config.job_cap is None and config.capacity is None and config.profile is None


def test_a_profile_file_resolves_multipliers_to_ranges(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(
        'description = "mine"\nrate = 2.5\nburst = 3\ncapacity = 40\njob_cap = 4\n'
        "time_scale = 0.5\n[latency]\nveo_3 = 0.5\nrender = [1, 2]\ntext = 2\n",
        encoding="utf-8",
    )
    values = load_profile(path)
    assert values == {
        "profile": str(path),
        "rate": 2.5,
        "burst": 3,
        "capacity": 40.0,
        "job_cap": 4,
        "time_scale": 0.5,
        # veo_3 is a video_from_text model: its multiplier scales that type's range
        "latency": (
            ("veo_3", _scaled("video_from_text", 0.5)),
            ("render", (1.0, 2.0)),
            ("text", _scaled("text", 2.0)),
        ),
    }
    config = SimConfig.from_profile(path, api_keys=("k1",))
    assert config.api_keys == ("k1",) and config.latency == values["latency"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("bogus = 1\n", "unknown key bogus"),
        ("rate = -1\n", "rate must be a number >= 0 (0: none), got -1"),
        ('rate = "fast"\n', 'rate must be a number >= 0 (0: none), got "fast"'),
        ("burst = 0\n", "burst must be an integer >= 1, got 0"),
        ("job_cap = 2.5\n", "job_cap must be an integer >= 0 (0: no cap), got 2.5"),
        ('timestamps = "yes"\n', 'timestamps must be true or false, got "yes"'),
        ("latency = 3\n", "latency must be a table"),
        ("[latency]\nwarp_drive = 2\n", "latency.warp_drive: unknown key"),
        ("[latency]\nrender = [5, 1]\n", "latency.render: must be a multiplier"),
        ("[latency]\nrender = 0\n", "latency.render: a multiplier must be > 0, got 0"),
        ("rate = \n", "not valid TOML"),
    ],
)
def test_a_bad_profile_is_one_line_naming_file_and_key(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ProfileError) as caught:
        load_profile(path)
    said = str(caught.value)
    assert said.startswith(f"{path}: ") and message in said and "\n" not in said


def test_an_unknown_profile_name_lists_the_named_ones() -> None:
    with pytest.raises(ProfileError, match=r"no profile nope: not a named profile \(fast-models"):
        load_profile("nope")


def test_the_cli_reports_a_bad_profile_in_one_line_and_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("rate = 60\nrate_limit = 5\n", encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "genbatch", "sim", "--port", "0", "--profile", str(path)],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2 and done.stdout == b""
    lines = done.stderr.decode().splitlines()
    assert len(lines) == 1, lines  # no traceback
    assert lines[0].startswith(f"genbatch sim: {path}: unknown key rate_limit")


def test_explicit_flags_override_the_profile() -> None:
    assert parse(["--port", "0", "--profile", "limit-60"]) == SimConfig.from_profile("limit-60")
    flags = "--profile limit-60 --rate 0 --rate-headers --timestamps --job-cap 3"
    config = parse(
        [*flags.split(), "--capacity", "25", "--time-scale", "0.1", "--latency", "veo_3=1:2"]
    )
    assert config.rate is None and config.burst == 10  # burst: still the profile's
    assert config.rate_headers and config.timestamps and config.job_cap == 3
    assert config.capacity == 25.0 and config.time_scale == 0.1
    assert config.latency == (("veo_3", (1.0, 2.0)),) and config.profile == "limit-60"
    # a --latency key replaces the profile's for that key only
    slow = parse(["--profile", "fast-models", "--latency", "render=1:1", "--latency", "text=0:0"])
    assert slow.latency_map() == {
        **SimConfig.from_profile("fast-models").latency_map(),
        "render": (1.0, 1.0),
        "text": (0.0, 0.0),
    }
    # 0 turns a profile's limit, cap or capacity off; an unset flag keeps it
    assert parse(["--profile", "queue-50", "--job-cap", "0"]).job_cap is None
    assert parse(["--profile", "queue-50", "--rate", "7"]).rate == 7.0


@pytest.mark.parametrize(
    "config",
    [
        SimConfig(),
        SimConfig.from_profile("fast-models", time_scale=0.01),
        SimConfig.from_profile("limit-60", api_keys=("k1",)),
        SimConfig(
            rate=None,
            rate_headers=False,
            timestamps=True,
            job_cap=3,
            capacity=12.5,
            latency=(("veo_3", (1.0, 2.0)), ("render", (0.5, 0.5))),
            profile="mine.toml",
            api_keys=("a", "b"),
            prices=(("render", 20.0),),
            faults="500:0.1",
            admin_key="s",
            legacy_paths=True,
            credits=12.0,
            seed=9,
        ),
    ],
)
def test_command_spells_out_every_field(config: SimConfig) -> None:
    argv = command(config)
    assert argv[1:4] == ["-m", "genbatch", "sim"] and "--profile" not in argv
    assert parse(argv[4:]) == config  # data_dir aside, every field round-trips


@pytest.mark.slow  # a process start
def test_a_process_started_from_a_profile_serves_that_profile(tmp_path: Path) -> None:
    config = SimConfig.from_profile(
        "fast-models", time_scale=0.01, job_cap=7, capacity=500.0, api_keys=("k1",)
    )
    with SimProcess(config, log=tmp_path / "out.log") as sim:
        served = sim.ledger()["config"]
        banner = (tmp_path / "out.log").read_text(encoding="utf-8")
    assert served == {
        "profile": "fast-models",
        "rate": None,
        "burst": SIM_DEFAULT_BURST,
        "rate_headers": False,
        "timestamps": False,
        "job_cap": 7,
        "capacity": 500.0,
        "latency": {k: [lo, hi] for k, (lo, hi) in sorted(config.latency)},
        "faults": "",
        "time_scale": 0.01,
        "seed": config.seed,
    }
    assert "profile: fast-models; rate limit: none; job cap: 7; capacity: 500 req/s" in banner
