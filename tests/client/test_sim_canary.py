"""Canary: a distinctive key and every presigned signature must appear in no log line
(at DEBUG, every logger), no exception text, no traceback and no repr — across a batch
of calls that includes failures of every kind."""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import re
import socket
import traceback
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from clienthelp import AGENT

from genbatch.client import GenClient
from genbatch.client.retry import RetryPolicy
from genbatch.client.transfer import put_file
from genbatch.errors import GenError
from genbatch.sim.config import SimConfig
from genbatch.sim.serve import SimServer

CANARY = "gen_canary_5f3c9a1e7b2d4c6a"
WRONG = "gen_canary_wrong_9e8d7c6b5a"
SIGNATURE = re.compile(r"(?i)(x-amz-signature|signature)=(?!\[REDACTED\])[0-9a-z]{8,}")
POLICY = RetryPolicy(max_retries=2, backoff_initial=0.01, backoff_max=0.02)
VIDEO = {"generation_type": "video_from_text", "data": {"prompt": "tacos", "model": "veo_3"}}


async def test_canary_key_and_signatures_never_leak(
    caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    caplog.set_level(logging.DEBUG)  # root: every logger, every level
    errors: list[BaseException] = []
    signatures: list[str] = []
    reprs: list[str] = []
    cfg = SimConfig(api_keys=(CANARY,), rate=1000.0, burst=1000, time_scale=0.002, seed=3)
    data = os.urandom(50_000)
    path = tmp_path / "clip.mp4"
    path.write_bytes(data)
    md5 = base64.b64encode(hashlib.md5(data).digest()).decode()

    async def expect_error(coro: object) -> None:
        try:
            await coro  # type: ignore[misc]
        except GenError as exc:
            errors.append(exc)
        else:
            raise AssertionError("expected a failure")

    async with SimServer(cfg) as server:
        api, agent = server.api_url, server.agent_url

        async def faults(spec: str) -> None:
            async with gen.storage_session.post(
                server.url + "/_sim/config", json={"faults": spec}
            ) as r:
                assert r.status == 200

        async with GenClient(CANARY, api_url=api, agent_url=agent, retry_policy=POLICY) as gen:
            reprs.append(repr(gen))
            # successes
            eng = await gen.templates.clone("tiktok-vo-broll", AGENT)
            cell = eng.cell("broll")
            assert cell is not None
            await gen.generations.generate(eng.id, cell.id, AGENT, VIDEO)
            du = await gen.uploads.direct_upload(
                {
                    "filename": "clip.mp4",
                    "byte_size": len(data),
                    "checksum": md5,
                    "content_type": "video/mp4",
                }
            )
            signatures.append(parse_qs(urlsplit(du.direct_upload.url).query)["X-Amz-Signature"][0])
            reprs.extend([repr(du), str(du), repr(du.direct_upload)])
            await gen.uploads.put(du.direct_upload, path)
            # API failures
            await expect_error(gen.generations.get(999999))
            await expect_error(gen.templates.clone("tiktok-vo-broll", 424242))
            await expect_error(
                gen.generations.generate(
                    eng.id, cell.id, AGENT, {"generation_type": "text", "data": {}}
                )
            )
            await faults("500:1")
            await expect_error(gen.agents.me())
            await faults("reset_after:1")
            await expect_error(gen.generations.generate(eng.id, cell.id, AGENT, VIDEO))
            await faults("429:1@300")
            await expect_error(gen.organizations.list())
            # storage failures with signed URLs
            await faults("bad_digest:1")
            du2 = await gen.uploads.direct_upload(
                {
                    "filename": "c.mp4",
                    "byte_size": len(data),
                    "checksum": md5,
                    "content_type": "video/mp4",
                }
            )
            signatures.append(parse_qs(urlsplit(du2.direct_upload.url).query)["X-Amz-Signature"][0])
            await expect_error(gen.uploads.put(du2.direct_upload, path))
            await faults("upload_expired:1")
            du3 = await gen.uploads.direct_upload(
                {
                    "filename": "d.mp4",
                    "byte_size": len(data),
                    "checksum": md5,
                    "content_type": "video/mp4",
                }
            )
            signatures.append(parse_qs(urlsplit(du3.direct_upload.url).query)["X-Amz-Signature"][0])
            await expect_error(gen.uploads.put(du3.direct_upload, path))
            await expect_error(gen.uploads.upload(path, AGENT, method="direct"))
            await faults("")
            # a signed URL whose host refuses the connection, and a CDN 404 with a signature
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            dead = sock.getsockname()[1]
            sock.close()
            fake_sig = "feedfacecafebeef0011223344556677"
            signatures.append(fake_sig)
            await expect_error(
                put_file(
                    gen.storage_session,
                    f"http://127.0.0.1:{dead}/_storage/uploads/x?X-Amz-Signature={fake_sig}",
                    du.direct_upload.headers,
                    path,
                    policy=POLICY,
                )
            )
            await expect_error(
                gen.download(
                    server.url + f"/cdn/outputs/nope.mp4?Signature={fake_sig}", tmp_path / "x.mp4"
                )
            )
        # a wrong key is a secret too
        async with GenClient(WRONG, api_url=api, agent_url=agent, retry_policy=POLICY) as bad:
            reprs.append(repr(bad))
            await expect_error(bad.agents.me())

    assert len(errors) == 12
    texts = [caplog.text, *reprs]
    texts += [r.getMessage() for r in caplog.records]
    for exc in errors:
        texts += [str(exc), repr(exc), "".join(traceback.format_exception(exc))]
        texts.append(repr(getattr(exc, "__dict__", {})))
    blob = "\n".join(texts)
    assert CANARY not in blob and WRONG not in blob
    for sig in signatures:
        assert sig not in blob
    assert not SIGNATURE.search(blob), SIGNATURE.search(blob)
    # the logs were not vacuous: DEBUG lines of the client are there, with route patterns
    client_lines = [r for r in caplog.records if r.name.startswith("genbatch.client")]
    assert any(r.levelno == logging.DEBUG for r in client_lines)
    assert any("GET /v1/generations/{id}" in r.getMessage() for r in client_lines)
    assert "[REDACTED]" in blob  # the signed URLs did appear, masked
