"""Redaction of keys, auth headers and presigned signatures in text, headers and logs."""

from __future__ import annotations

import logging

import pytest

from genbatch.client.redact import (
    MASK,
    RedactingFilter,
    get_logger,
    redact,
    redact_headers,
    redact_url,
    register_secret,
)

SIGNED = (
    "http://127.0.0.1:9/_storage/b/k?X-Amz-Algorithm=AWS4-HMAC-SHA256"
    "&X-Amz-Credential=AKIA%2F20260101&X-Amz-Date=20260101T000000Z"
    "&X-Amz-Expires=3600&X-Amz-SignedHeaders=content-md5%3Bhost"
    "&X-Amz-Signature=deadbeefcafe0123456789"
)


def test_url_signature_and_credentials_masked() -> None:
    out = redact_url(SIGNED)
    assert "deadbeefcafe0123456789" not in out
    assert "AKIA" not in out
    assert "X-Amz-Expires=3600" in out  # harmless parts stay for debugging
    assert "/_storage/b/k" in out


@pytest.mark.parametrize(
    "text",
    [
        "https://cdn.example/x.mp4?Signature=s3cr3tsig&Expires=1",
        "https://cdn.example/x.mp4?Expires=1&signature=s3cr3tsig",
        "GET /x?sig=s3cr3tsig HTTP/1.1",
        "url=https%3A%2F%2Fh%2Fx%3Fa%3D1%26X-Amz-Signature%3Ds3cr3tsig",
    ],
)
def test_signature_shapes(text: str) -> None:
    assert "s3cr3tsig" not in redact(text)


def test_auth_header_shapes_masked_even_for_unknown_keys() -> None:
    for text in (
        "X-API-Key: unknownkey123",
        "{'X-API-Key': 'unknownkey123'}",
        "Authorization: Bearer unknownkey123",
        '"authorization": "Bearer unknownkey123"',
    ):
        out = redact(text)
        assert "unknownkey123" not in out and MASK in out, out


def test_registered_secret_masked_anywhere() -> None:
    register_secret("canary-9f8e7d6c5b4a")
    assert redact("token=canary-9f8e7d6c5b4a; bare canary-9f8e7d6c5b4a!").count(MASK) >= 2
    assert "canary-9f8e7d6c5b4a" not in redact("x canary-9f8e7d6c5b4a y")


def test_short_secrets_not_registered() -> None:
    register_secret("k1")
    assert redact("task1 k1") == "task1 k1"


def test_redact_headers() -> None:
    out = redact_headers({"X-API-Key": "abc", "authorization": "Bearer z", "Content-Type": "x"})
    assert out == {"X-API-Key": MASK, "authorization": MASK, "Content-Type": "x"}


def test_filter_rewrites_args_and_traceback(caplog: pytest.LogCaptureFixture) -> None:
    register_secret("canary-log-1234567")
    logger = get_logger("genbatch.client.test_redact")
    with caplog.at_level(logging.DEBUG, logger="genbatch"):
        logger.debug("calling %s with %r", SIGNED, {"X-API-Key": "canary-log-1234567"})
        try:
            raise RuntimeError(f"boom canary-log-1234567 {SIGNED}")
        except RuntimeError:
            logger.exception("failed")
    text = caplog.text
    assert "canary-log-1234567" not in text
    assert "deadbeefcafe0123456789" not in text
    assert "failed" in text and MASK in text


def test_filter_never_drops_records() -> None:
    record = logging.LogRecord("genbatch", logging.INFO, __file__, 1, "bad %d", ("x",), None)
    assert RedactingFilter().filter(record) is True
    assert record.args is None
