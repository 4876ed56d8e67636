"""Every tunable default of genbatch, in one place.

Each layer keeps its own section; a value lives here (not inline) so a reader
can see and change every default without hunting through modules.  Sections:
SIM (the offline simulator), CLIENT (HTTP client), ENGINE (batch producer).
"""

from __future__ import annotations

from typing import Final

# --------------------------------------------------------------------------
# Shared
# --------------------------------------------------------------------------
#: The two hosts of the GEN API, as the reference names them.
DEFAULT_API_URL: Final = "https://api.gen.pro/v1"
DEFAULT_AGENT_URL: Final = "https://agent.gen.pro/v1"

#: Seeded simulator identity: the demo key, workspace and agent every fresh
#: simulator knows, so `genbatch run --sim` works with no setup.
SIM_DEMO_API_KEY: Final = "gen_demo_key_0123456789"
SIM_DEMO_USER_ID: Final = 1
SIM_DEMO_WORKSPACE_ID: Final = 100
SIM_DEMO_AGENT_ID: Final = 1000
SIM_DEFAULT_HOST: Final = "127.0.0.1"
SIM_DEFAULT_PORT: Final = 8787

# --------------------------------------------------------------------------
# SIM — owned by genbatch/sim (add sim defaults below this line)
# --------------------------------------------------------------------------

# --------------------------------------------------------------------------
# CLIENT — owned by genbatch/client (add client defaults below this line)
# --------------------------------------------------------------------------

# --------------------------------------------------------------------------
# ENGINE — owned by genbatch/engine (add engine defaults below this line)
# --------------------------------------------------------------------------
