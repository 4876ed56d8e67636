"""Helpers for ``--videos-to`` tests: a real S3 API (moto's server on 127.0.0.1), the
simulator as its own process, ``genbatch run`` as a subprocess, and readers of what
each of them holds afterwards (object versions, the sim's ledger, the result table).
"""

from __future__ import annotations

import csv
import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import polars as pl
from botocore.config import Config
from moto.server import ThreadedMotoServer

from genbatch._constants import SIM_DEMO_AGENT_ID

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
#: A key long enough to be recognisable if it ever leaked into a file.
KEY = "gbstore-test-key-5c1e9a7d20b84f36"
AGENT = str(SIM_DEMO_AGENT_ID)
TEMPLATE = "tiktok-vo-broll"
REGION = "us-east-1"
#: Fake credentials moto accepts; they must never appear in anything genbatch writes.
AWS_SECRET = "moto-secret-4b7f0e2c9d16a853"
HALT_MARK = "GENBATCH-TEST-HALT"


@dataclass
class S3:
    """A moto S3 server: its endpoint and a boto3 client on it."""

    endpoint: str
    client: Any

    def env(self, **extra: str) -> dict[str, str]:
        """The environment a genbatch process needs to reach it (credentials included)."""
        return {
            **no_aws_env(),
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": AWS_SECRET,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ENDPOINT_URL": self.endpoint,
            **extra,
        }

    def bucket(self, name: str, *, versioned: bool = False) -> str:
        self.client.create_bucket(Bucket=name)
        if versioned:
            self.client.put_bucket_versioning(
                Bucket=name, VersioningConfiguration={"Status": "Enabled"}
            )
        return name

    def versions(self, bucket: str, prefix: str = "") -> dict[str, list[dict[str, Any]]]:
        """Every stored version by key (delete markers aside), oldest first."""
        out: dict[str, list[dict[str, Any]]] = defaultdict(list)
        pages = self.client.get_paginator("list_object_versions")
        for page in pages.paginate(Bucket=bucket, Prefix=prefix):
            for v in page.get("Versions", []):
                out[v["Key"]].append(v)
        for vs in out.values():
            vs.sort(key=lambda v: v["LastModified"])
        return dict(out)

    def get(self, bucket: str, key: str) -> tuple[bytes, dict[str, str]]:
        obj = self.client.get_object(Bucket=bucket, Key=key)
        return obj["Body"].read(), obj.get("Metadata", {})


def no_aws_env() -> dict[str, str]:
    """This process's environment without AWS settings or a home AWS config, and with
    the instance-metadata lookup off: nothing but the test's own store is asked."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "GEN_"))}
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    env["AWS_CONFIG_FILE"] = os.devnull
    env["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    return env


def moto_s3() -> Iterator[S3]:
    """A moto S3 server on 127.0.0.1 (a free port), empty, for the duration."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        # moto keeps its buckets per process, not per server: start from none.
        reset = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")
        with urllib.request.urlopen(reset, timeout=10) as resp:
            assert resp.status == 200
        client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key=AWS_SECRET,
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
        )
        yield S3(endpoint, client)
    finally:
        server.stop()


def vo_table(path: Path, n: int) -> Path:
    """``n`` rows for tiktok-vo-broll (hook, script)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["row_id", "hook", "script"])
        w.writerows([[f"r{i:02d}", f"Hook {i}", f"Script for video {i}."] for i in range(n)])
    return path


@dataclass
class Ran:
    code: int | None
    stdout: str
    stderr: str
    killed: bool
    halted_row: str | None = None


def run_cli(
    table: Path,
    out: Path,
    env: Mapping[str, str],
    *args: str,
    api_url: str,
    agent_url: str,
    halt_at: str | None = None,
    halt_nth: int = 1,
    kill_when: Callable[[str | None], bool] | None = None,
    timeout: float = 120.0,
) -> Ran:
    """``genbatch run`` as a subprocess against a simulator process.

    ``halt_at``: the ``halt_nth`` row to reach that journal milestone parks
    there (halt_launch.py); once it has and ``kill_when(row)`` says so, the
    process gets SIGKILL.
    """
    cmd = [sys.executable]
    cmd += [str(HERE / "halt_launch.py")] if halt_at else ["-m", "genbatch"]
    cmd += [
        "run", str(table), "--template", TEMPLATE, "--out", str(out),
        "--base-url", api_url, "--agent-url", agent_url, "--agent", AGENT,
        "--rate", "500", "--quiet", *args,
    ]  # fmt: skip
    full = {**env, "GEN_API_KEY": KEY, "PYTHONPATH": str(REPO)}
    if halt_at:
        full["GENBATCH_TEST_HALT_AT"] = halt_at
        full["GENBATCH_TEST_HALT_NTH"] = str(halt_nth)
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=full, cwd=table.parent
    )
    out_lines: list[str] = []
    err_lines: list[str] = []
    halted: list[str] = []

    def pump(stream: Any, sink: list[str]) -> None:
        for line in stream:
            sink.append(line)
            if line.startswith(HALT_MARK):
                halted.append(line.split("row=", 1)[1].split()[0])

    threads = [
        threading.Thread(target=pump, args=(proc.stdout, out_lines), daemon=True),
        threading.Thread(target=pump, args=(proc.stderr, err_lines), daemon=True),
    ]
    for t in threads:
        t.start()
    deadline = time.monotonic() + timeout
    killed = False
    while proc.poll() is None:
        if halted and (kill_when is None or kill_when(halted[0])):
            proc.send_signal(signal.SIGKILL)
            killed = True
            break
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            raise AssertionError(f"genbatch run did not end: {''.join(err_lines)[-2000:]}")
        time.sleep(0.01)
    proc.wait(timeout=30)
    for t in threads:
        t.join(timeout=5)
    return Ran(
        None if killed else proc.returncode,
        "".join(out_lines),
        "".join(err_lines),
        killed,
        halted[0] if halted else None,
    )


def results(out: Path) -> dict[str, dict[str, Any]]:
    """results.parquet by row_id."""
    return {r["row_id"]: r for r in pl.read_parquet(out / "results.parquet").to_dicts()}


def paid_once(ledger: Mapping[str, Any]) -> None:
    """No cell was paid twice (I2): per cell at most one generation not refunded."""
    alive: dict[tuple[Any, Any], list[Any]] = defaultdict(list)
    for gen in ledger["generations"]:
        if gen["status"] in ("completed", "pending", "processing"):
            alive[(gen["engine_id"], gen["cell_id"])].append(gen["id"])
    assert not {cell: ids for cell, ids in alive.items() if len(ids) > 1}


def posts(ledger: Mapping[str, Any]) -> list[str]:
    """Every POST the simulator saw (route patterns)."""
    return [e["route"] for e in ledger["requests"]["log"] if e["method"] == "POST"]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def assert_no_secrets(out: Path) -> None:
    """Neither the API key nor the storage secret is in anything genbatch wrote."""
    for root, _, files in os.walk(out):
        for name in files:
            data = (Path(root) / name).read_bytes()
            assert KEY.encode() not in data, f"API key in {name}"
            assert AWS_SECRET.encode() not in data, f"storage secret in {name}"
