"""The exception tree's mapping, and the settings model."""

from __future__ import annotations

import pydantic
import pytest

from genbatch import errors as E
from genbatch.settings import Settings


@pytest.mark.parametrize(
    ("status", "code", "cls"),
    [
        (401, "unauthorized", E.AuthenticationError),
        (403, "forbidden", E.PermissionDeniedError),
        (404, "not_found", E.NotFoundError),
        (429, "rate_limited", E.RateLimitError),
        (422, "insufficient_credits_for_job", E.InsufficientCreditsError),
        (422, "usable_gen_credit_required", E.NoActiveCreditsError),
        (422, "agent_not_found", E.AgentNotFoundError),
        (422, "validation_error", E.ValidationError),
        (422, "something_new", E.UnprocessableError),
        (422, None, E.UnprocessableError),
        (500, "internal_error", E.ServerError),
        (503, None, E.ServerError),
        (418, None, E.APIStatusError),
    ],
)
def test_status_error_class(status: int, code: str | None, cls: type[E.APIStatusError]) -> None:
    assert E.status_error_class(status, code) is cls


def test_tree_shape() -> None:
    assert issubclass(E.InsufficientCreditsError, E.UnprocessableError)
    assert issubclass(E.UnprocessableError, E.APIStatusError)
    assert issubclass(E.APIStatusError, E.APIError)
    assert issubclass(E.APITimeoutError, E.APIConnectionError)
    assert issubclass(E.ChecksumMismatch, E.TransferError)
    for name in E.__all__:
        obj = getattr(E, name)
        if isinstance(obj, type):
            assert issubclass(obj, E.GenError), name
    # every class in the tree is drawn in the module docstring
    doc = E.__doc__ or ""
    for name in E.__all__:
        if isinstance(getattr(E, name), type):
            assert name in doc, name


def test_job_failed_and_wait_timeout_text() -> None:
    err = E.JobFailed(kind="generation", job_id="7", status="failed", error="model error")
    assert str(err) == "generation 7 ended failed: model error"
    assert isinstance(E.WaitTimeout(kind="g", job_id="1", status="pending", waited=1), TimeoutError)


def test_settings_from_env() -> None:
    s = Settings.from_env(
        {
            "GEN_API_KEY": "envkey-abcdef",
            "GEN_API_URL": "http://127.0.0.1:9/v1/",
            "GEN_AGENT_URL": "http://127.0.0.1:9/v1",
            "GEN_AUTH": "Bearer",
        }
    )
    assert s.key() == "envkey-abcdef" and "envkey-abcdef" not in repr(s)
    assert s.api_url == "http://127.0.0.1:9/v1" and s.auth == "bearer"
    d = Settings.from_env({}, api_url="http://x/v1")
    assert (
        d.key() is None and d.agent_url == "https://agent.gen.pro/v1" and d.api_url == "http://x/v1"
    )
    with pytest.raises(pydantic.ValidationError):
        Settings.from_env({"GEN_API_URL": "ftp://x"})
    with pytest.raises(pydantic.ValidationError):
        Settings.from_env({"GEN_AUTH": "basic"})
