"""Only what two layers share: the API's hosts, environment variable names, the demo identity.

Every other default lives with the module that uses it (docs/design.md §2).
"""

from __future__ import annotations

from typing import Final

#: The two hosts of the GEN API, as the reference names them.
DEFAULT_API_URL: Final = "https://api.gen.pro/v1"
DEFAULT_AGENT_URL: Final = "https://agent.gen.pro/v1"

#: Environment variables the settings model reads (and the CLI names in its hints).
CLIENT_ENV_API_KEY: Final = "GEN_API_KEY"
CLIENT_ENV_API_URL: Final = "GEN_API_URL"
CLIENT_ENV_AGENT_URL: Final = "GEN_AGENT_URL"
CLIENT_ENV_AUTH: Final = "GEN_AUTH"
#: Retries after the first attempt (so up to 1 + this many attempts): the
#: settings model's default and the retry policy's.
CLIENT_MAX_RETRIES: Final = 4

#: Give up waiting on one agent run or user job after this long (deep research
#: takes ~90 s): the engine's watcher's default and what the agent commands' help says.
ENGINE_RUN_MAX_WAIT: Final = 900.0

#: Seeded simulator identity: the demo key, workspace and agent every fresh
#: simulator knows, so `genbatch run --sim` works with no setup.
SIM_DEMO_API_KEY: Final = "gen_demo_key_0123456789"
SIM_DEMO_USER_ID: Final = 1
SIM_DEMO_WORKSPACE_ID: Final = 100
SIM_DEMO_AGENT_ID: Final = 1000
