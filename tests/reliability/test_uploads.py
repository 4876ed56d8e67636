"""Case 14: the direct-upload path under storage faults (client level).

genbatch's engine uploads row assets by multipart (small files); the
presigned direct-upload path (ActiveStorage: ask for a URL, PUT to storage,
attach the signed id) is the client's, and it is where storage faults live.
Each fault runs ``client.uploads.upload(..., method="direct")`` through the
fault proxy, against the simulator as its own process, and the one rule
that matters most is read off the wire: storage never sees the API key.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os

import pytest
from harness import AGENT, CANARY_KEY, REPO, Case, ProxyFactory, SimFactory, write_table

from genbatch.client import GenClient
from genbatch.errors import ChecksumMismatch, TransferError

pytestmark = pytest.mark.reliability

PUT = rb"^PUT /_storage/"
AUDIO = REPO / "genbatch" / "sim" / "media" / "assets" / "audio.m4a"
HOW = {
    "bad_digest": "sim fault bad_digest:1.0 (/_sim/config): storage answers BadDigest to every PUT",
    "expired": "sim fault upload_expired:1.0 (/_sim/config): every presigned URL is born expired",
    "reset_mid_put": "fault proxy resets the PUT after 50,000 body bytes (once)",
    "redirect": "fault proxy answers the PUT with 307 to another host (a capture server)",
}


@pytest.mark.parametrize("fault", list(HOW))
@pytest.mark.case("14", fault="upload fault: {fault}", how="{how}")
async def test_upload_faults_never_leak_the_key_to_storage(
    case: Case,
    sims: SimFactory,
    proxies: ProxyFactory,
    fault: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="genbatch")
    case.fault = case.fault.format(fault=fault)
    case.how = case.how.format(how=HOW[fault])
    sim = sims(seed=14)
    proxy = proxies(sim, seed=14)
    clip = case.work / "clip.mp4"
    payload = os.urandom(200_000)
    clip.write_bytes(payload)
    captured: list[bytes] = []

    async def capture(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        captured.append(await r.read(65536))
        w.close()

    server = await asyncio.start_server(capture, "127.0.0.1", 0)
    cap_port = server.sockets[0].getsockname()[1]
    if fault == "bad_digest":
        sim.config(faults="bad_digest:1.0")
    elif fault == "expired":
        sim.config(faults="upload_expired:1.0")
    elif fault == "reset_mid_put":
        proxy.add("reset_peer", "upstream", match=PUT, after_bytes=50_000, times=1)
    else:
        proxy.add(
            "respond",
            "upstream",
            match=PUT,
            response=(
                f"HTTP/1.1 307 Temporary Redirect\r\nLocation: http://127.0.0.1:{cap_port}"
                "/steal\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            ).encode(),
        )
    error: BaseException | None = None
    resource = None
    try:
        async with GenClient(
            CANARY_KEY, api_url=proxy.url + "/v1", agent_url=sim.agent_url
        ) as client:
            resource = await client.uploads.upload(clip, AGENT, method="direct")
    except (TransferError, ChecksumMismatch) as exc:
        error = exc
    finally:
        server.close()
    led = sim.ledger()
    blobs = [u for u in led["uploads"] if u["via"] == "direct_upload"]
    puts = [h for h in proxy.stats.heads if h.startswith(b"PUT ")]
    # I5: the key never reached storage, nor any message or log line.
    assert puts and not [h for h in puts if CANARY_KEY.encode() in h]
    assert not [h for h in puts if b"x-api-key" in h.lower() or b"authorization" in h.lower()]
    assert CANARY_KEY not in caplog.text and CANARY_KEY not in str(error or "")
    assert "X-Amz-Signature=" not in str(error or "").replace("X-Amz-Signature=[REDACTED]", "")
    if fault == "bad_digest":
        assert isinstance(error, ChecksumMismatch), error
        assert len(puts) == 2  # resent once, then given up
        assert not [b for b in blobs if b["uploaded"]]
    elif fault == "expired":
        assert isinstance(error, TransferError) and "expired" in str(error).lower(), error
        assert len(blobs) == 2  # a fresh URL was fetched once
        assert not [b for b in blobs if b["uploaded"]]
    elif fault == "reset_mid_put":
        assert error is None and resource is not None
        assert len(puts) == 2
        (blob,) = blobs
        assert blob["uploaded"] and blob["byte_size"] == len(payload)
        assert blob["content_resource_id"] == int(resource.id)
        assert blob["checksum"] == _md5_b64(payload)
    else:
        assert isinstance(error, TransferError) and "redirect" in str(error), error
        assert captured == [], "the client followed the redirect to another host"
        assert not [b for b in blobs if b["uploaded"]]
    case.invariants.update({"I5"})
    if fault != "reset_mid_put":
        case.invariants.add("I3")  # nothing attached, nothing charged
        assert led["credits"]["charged"] == 0
    case.note(
        f"{len(puts)} PUT(s), {len(blobs)} presigned URL(s); "
        + (f"raised {type(error).__name__}" if error else "upload completed")
        + "; no PUT carried the key"
    )


def _md5_b64(data: bytes) -> str:
    import base64

    return base64.b64encode(hashlib.md5(data).digest()).decode()


@pytest.mark.parametrize("where", ["mid-body", "after-the-server-took-it"])
@pytest.mark.case(
    "14",
    fault="engine upload reset {where}",
    how="tiktok-montage rows with a local music file; fault proxy resets the multipart "
    "POST /v1/content_resources {how}",
)
def test_engine_upload_reset_is_retried_without_a_duplicate(
    case: Case, sims: SimFactory, proxies: ProxyFactory, where: str
) -> None:
    case.fault = case.fault.format(where=where)
    case.how = case.how.format(
        how="after 20,000 request bytes" if where == "mid-body" else "after the server answered"
    )
    sim = sims(seed=141)
    proxy = proxies(sim, seed=141)
    music = case.work / "music.m4a"
    music.write_bytes(AUDIO.read_bytes() * 4)
    table = write_table(
        case.work / "montage.csv",
        ["row_id", "hook", "music"],
        [["m0", "Latte art in slow motion", "music.m4a"], ["m1", "Beans to cup", "music.m4a"]],
    )
    ids = ["m0", "m1"]
    if where == "mid-body":
        toxic = proxy.add(
            "reset_peer",
            "upstream",
            match=rb"^POST /v1/content_resources",
            after_bytes=20_000,
            times=1,
        )
    else:
        toxic = proxy.add("reset_peer", match=rb"^POST /v1/content_resources", times=1)
    out = case.out()
    res = case.run(table, out, proxy.url, template="tiktok-montage")
    assert toxic.hits == 1
    assert res.rc == 0, res.stderr
    led = sim.ledger()
    case.check(out, led, ids, fetch=sim.fetch)
    uploads = [u for u in led["uploads"] if u["via"] == "multipart"]
    assert len(uploads) == len(ids), f"{len(uploads)} resources for {len(ids)} uploads"
    case.note(f"upload reset {where}: resent with the same key; {len(uploads)} resources, no dup")
