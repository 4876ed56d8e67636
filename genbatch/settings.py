"""One settings model for genbatch, read from the environment.

Plain pydantic (no pydantic-settings): the handful of variables below do not
justify another dependency, and an explicit ``from_env(environ)`` keeps tests
free of process-global state.  The key is a ``SecretStr`` so a settings
object can be printed or logged without leaking it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from genbatch import _constants as C

#: Auth header scheme: the reference recommends X-API-Key; Bearer also works.
CLIENT_DEFAULT_AUTH: Final = "x-api-key"
#: Whole-request timeout for API calls (seconds); transfers use their own.
CLIENT_TIMEOUT: Final = 60.0

AuthScheme = Literal["x-api-key", "bearer"]


class Settings(BaseModel):
    """Where the GEN API lives and how to authenticate to it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    api_key: SecretStr | None = None
    api_url: str = C.DEFAULT_API_URL
    agent_url: str = C.DEFAULT_AGENT_URL
    auth: AuthScheme = CLIENT_DEFAULT_AUTH
    timeout: float = Field(default=CLIENT_TIMEOUT, gt=0)
    max_retries: int = Field(default=C.CLIENT_MAX_RETRIES, ge=0)

    @field_validator("api_url", "agent_url")
    @classmethod
    def _strip_slash(cls, v: str) -> str:
        # Route paths start with "/", so a trailing slash would double up.
        v = v.strip().rstrip("/")
        if not v.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL")
        return v

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, /, **overrides: object) -> Settings:
        """Settings from ``environ`` (default ``os.environ``); overrides that are not None win."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for field, var in (
            ("api_key", C.CLIENT_ENV_API_KEY),
            ("api_url", C.CLIENT_ENV_API_URL),
            ("agent_url", C.CLIENT_ENV_AGENT_URL),
            ("auth", C.CLIENT_ENV_AUTH),
        ):
            raw = env.get(var)
            if raw:
                values[field] = raw.strip().lower() if field == "auth" else raw.strip()
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls.model_validate(values)

    def key(self) -> str | None:
        """The raw key, for the one place that puts it in a header."""
        return self.api_key.get_secret_value() if self.api_key is not None else None
