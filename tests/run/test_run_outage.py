"""Reads that decide money ride out outages; past the limit the row is suspended."""

from __future__ import annotations

import pytest

from genbatch.engine.failures import RowSuspended, RunAborted, through_outage
from genbatch.errors import AuthenticationError, NotFoundError, ServerError


def _server_error() -> ServerError:
    return ServerError("503", method="GET", route="GET /v1/generations/{id}", status=503)


async def test_transient_failures_are_ridden_out() -> None:
    calls = []

    async def flaky() -> str:
        calls.append(1)
        if len(calls) < 5:
            raise _server_error()
        return "done"

    seen: list[BaseException] = []
    got = await through_outage(flaky, backoff=(0.001, 0.004), what="poll", on_error=seen.append)
    assert got == "done" and len(calls) == 5 and len(seen) == 4


async def test_an_outage_past_the_limit_suspends_instead_of_failing() -> None:
    async def down() -> str:
        raise _server_error()

    with pytest.raises(RowSuspended, match="rerun to resume"):
        await through_outage(down, backoff=(0.001, 0.002), what="poll", limit=0.02)


@pytest.mark.parametrize(
    ("exc", "raised"),
    [
        (AuthenticationError("401", method="GET", route="r", status=401), RunAborted),
        (NotFoundError("404", method="GET", route="r", status=404), NotFoundError),
    ],
)
async def test_non_transient_errors_are_not_retried(
    exc: BaseException, raised: type[BaseException]
) -> None:
    calls = []

    async def call() -> str:
        calls.append(1)
        raise exc

    with pytest.raises(raised):
        await through_outage(call, backoff=(0.001, 0.002), what="poll")
    assert len(calls) == 1
