"""Who may call and what they pay with: users, API keys, persisted tokens, workspaces, credits.

Credits live here, not with generations, because a workspace's balance is
one number every paid call and the admin ledger read: charges and refunds
are recorded as events so tests can check that nothing is paid twice.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

from genbatch._constants import SIM_DEMO_API_KEY, SIM_DEMO_USER_ID, SIM_DEMO_WORKSPACE_ID
from genbatch.sim.entities import (
    ApiError,
    Json,
    Shared,
    Token,
    User,
    Workspace,
    as_int,
    not_found,
)

#: A second, seeded workspace the demo key does NOT belong to: its agent and
#: engine answer 404 `not_found` to the demo key, as missing ones do (docs/dialect.md §4).
SIM_OTHER_API_KEY: Final = "gen_other_key_9876543210"
SIM_OTHER_USER_ID: Final = 2
SIM_OTHER_WORKSPACE_ID: Final = 200
SIM_OTHER_AGENT_ID: Final = 2000

#: The seeded users: (user id, name, workspace id, workspace name, API key).
SEED_USERS: tuple[tuple[int, str, int, str, str], ...] = (
    (SIM_DEMO_USER_ID, "Demo User", SIM_DEMO_WORKSPACE_ID, "Demo Workspace", SIM_DEMO_API_KEY),
    (SIM_OTHER_USER_ID, "Other User", SIM_OTHER_WORKSPACE_ID, "Other Co", SIM_OTHER_API_KEY),
)
#: Balance of the other user's workspace (the demo one gets ``--credits``).
OTHER_CREDITS = 1000.0


class Accounts:
    """Users, keys, tokens, workspaces and the credit side of the ledger."""

    def __init__(self, sh: Shared, *, api_keys: Iterable[str], credits: float, now: float) -> None:
        self._sh = sh
        self.users: dict[int, User] = {}
        self.keys: dict[str, int] = {}  # API key or persisted token -> user id
        self.workspaces: dict[int, Workspace] = {}
        self.tokens: dict[int, Token] = {}
        self.charged = 0.0
        self.refunded = 0.0
        self.credit_events: list[Json] = []
        for uid, name, wid, wname, key in SEED_USERS:
            balance = credits if uid == SIM_DEMO_USER_ID else OTHER_CREDITS
            self.users[uid] = User(uid, name, f"user{uid}@example.com", [wid])
            self.workspaces[wid] = Workspace(wid, wname, uid, float(balance), now)
            self.keys[key] = uid
        #: Keys the config gave (not seeded, not minted): never written to a saved state.
        self.given_keys: set[str] = set()
        self.add_keys(api_keys)

    def add_keys(self, api_keys: Iterable[str]) -> None:
        """Accept ``api_keys`` as the demo user's (``--api-key``, a reloaded world's config)."""
        # ASSUMPTION: every --api-key is the demo user (docs/sim-assumptions.md, "keys").
        for key in api_keys:
            if key not in self.keys:
                self.given_keys.add(key)
            self.keys[key] = SIM_DEMO_USER_ID

    def __getstate__(self) -> dict[str, Any]:
        """What a saved world keeps (genbatch/sim/state.py): everything but the given keys,
        which the next config gives again, so no key a user passed is written to disk."""
        state = self.__dict__.copy()
        state["keys"] = {k: v for k, v in self.keys.items() if k not in self.given_keys}
        state["given_keys"] = set()
        return state

    # ------------------------------------------------------------------ access
    def user_for_key(self, api_key: str) -> User | None:
        uid = self.keys.get(api_key)
        return self.users.get(uid) if uid is not None else None

    def workspace(self, user: User, workspace_id: object) -> Workspace:
        wid = as_int(workspace_id)
        ws = self.workspaces.get(wid) if wid is not None else None
        if ws is None or ws.id not in user.workspace_ids:
            raise not_found("workspace", workspace_id)  # not yours looks like missing
        return ws

    # ------------------------------------------------------------------ credits
    def charge(self, ws: Workspace, amount: float, generation_id: int, reason: str) -> None:
        ws.credit_balance -= amount
        self.charged += amount
        self._event("charge", amount, generation_id, reason)

    def refund(self, ws: Workspace | None, amount: float, generation_id: int, reason: str) -> None:
        if ws is not None:
            ws.credit_balance += amount
        self.refunded += amount
        self._event("refund", amount, generation_id, reason)

    def _event(self, kind: str, amount: float, generation_id: int, reason: str) -> None:
        self.credit_events.append(
            {
                "t": self._sh.clock.now(),
                "kind": kind,
                "amount": amount,
                "generation_id": generation_id,
                "reason": reason,
            }
        )

    @staticmethod
    def check_credits(ws: Workspace, amount: float) -> None:
        """422 usable_gen_credit_required at zero, insufficient_credits_for_job when short."""
        # ASSUMPTION: balance <= 0 refuses even free media (docs/sim-assumptions.md, "prices").
        if ws.credit_balance <= 0:
            raise ApiError(
                422,
                "usable_gen_credit_required",
                "workspace has no active credits; add credits to generate",
            )
        if ws.credit_balance < amount:
            raise ApiError(
                422,
                "insufficient_credits_for_job",
                f"not enough credits for this job: needs {amount:g}, balance {ws.credit_balance:g}",
            )

    def ledger(self) -> Json:
        """The ledger's ``credits``: totals, the demo user's balance, every event."""
        return {
            "charged": self.charged,
            "refunded": self.refunded,
            "balance": sum(
                w.credit_balance for w in self.workspaces.values() if w.owner_id == SIM_DEMO_USER_ID
            ),
            "balances": {str(w.id): w.credit_balance for w in self.workspaces.values()},
            "events": list(self.credit_events),
        }
