"""Credits: estimate before spending, reserve, settle what was really charged.

GEN does not document prices (docs/design.md §3), so a user-editable pricing table
(:class:`Pricing`, default ``genbatch/recipes/pricing.toml``) estimates each
paid POST.  The :class:`CreditLedger` turns estimates into reservations:

* :meth:`CreditLedger.admit` before a row starts: its whole remaining
  estimate is held as a :class:`RowReservation`, so a row starts only if it
  can be finished — credits spread over more rows than the budget covers
  would buy half-made videos.  Same verdicts as below (refused / wait);
* :meth:`RowReservation.draw` before each of the row's paid POSTs: the
  step's estimate comes out of the row's hold (from the ledger only for
  what exceeds it, when earlier steps cost more than estimated);
* :meth:`CreditLedger.reserve` for one paid POST on its own — refused at
  once when the budget (``--max-credits``) or the known workspace balance
  can *never* cover it; when only other in-flight reservations stand in the way it waits
  for them to settle or release (their actual cost may be lower, or they
  fail and are refunded);
* :meth:`Reservation.settle` with the actual cost once the job completed;
  :meth:`Reservation.release` when it failed or was stopped (GEN refunds);
* :meth:`CreditLedger.exhaust` on ``insufficient_credits_for_job``: no new
  paid work starts, in-flight work finishes, waiting reservations are
  refused so their rows end ``skipped``.

Everything runs on the event loop thread and no method awaits between a check
and its update, so the ledger is race-free without locks.

Shared budget (``genbatch run --ray``): a ledger given a :class:`CreditSource`
is one of several processes spending one ``--max-credits``.  The source's
owner holds the cap; this ledger holds an *allowance* out of it and grants
locally while its charges and holds fit the allowance.  When they do not, it
asks for more (the owner may add a spare: rows admitted together then cost
one call), and gives back what it does not hold whenever a row ends or it was
refused — an idle process must not sit on credits another one waits for.
A request is refused for good, as here, only when what all processes have
*charged* leaves no room for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Final, Literal, Protocol

from genbatch.errors import InputError

#: Package-data pricing table (genbatch/recipes/), user-overridable.
ENGINE_PRICING_FILE: Final = "pricing.toml"
#: A ledger with a shared budget asks its source again after this many seconds
#: when the allowance it needs is held by other processes.
ENGINE_CREDIT_RETRY_SECONDS: Final = 0.1

__all__ = [
    "CreditGrant",
    "CreditLedger",
    "CreditSource",
    "CreditsRefused",
    "LedgerSnapshot",
    "Pricing",
    "PricingError",
    "Reservation",
    "RowReservation",
]


class PricingError(InputError, ValueError):
    """The pricing table is unreadable or lacks a price we need."""


class Pricing:
    """Credits per paid POST: per second of a card's ``duration``, per model, per type.

    GEN bills a video by its length (credits per second of the clip, by model)
    and most other jobs per call; :meth:`price` looks a card up in that order:
    ``per_second[model]``, ``models[model]``, ``per_second[type]``,
    ``generation_types[type]`` — a per-second price needs the card's
    ``duration`` and falls through to the next when there is none.
    """

    def __init__(
        self,
        generation_types: Mapping[str, float],
        models: Mapping[str, float] | None = None,
        source: str = "<pricing>",
        per_second: Mapping[str, float] | None = None,
    ) -> None:
        self.source = source
        self.generation_types = dict(generation_types)
        self.models = dict(models or {})
        self.per_second = dict(per_second or {})
        prices = [*self.generation_types.items(), *self.models.items(), *self.per_second.items()]
        for name, value in prices:
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
                or value < 0
            ):
                raise PricingError(f"{source}: price of {name!r} must be a number >= 0")

    @classmethod
    def load(cls, path: Path | str | None = None) -> Pricing:
        """Read a pricing TOML; ``None`` reads the packaged default."""
        if path is None:
            res = resources.files("genbatch") / "recipes" / ENGINE_PRICING_FILE
            text, source = res.read_text(encoding="utf-8"), f"default {ENGINE_PRICING_FILE}"
        else:
            source = str(path)
            try:
                text = Path(path).read_text(encoding="utf-8")
            except OSError as exc:
                raise PricingError(f"{source}: cannot read pricing: {exc.strerror}") from None
        try:
            raw = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise PricingError(f"{source}: not valid TOML: {exc}") from None
        unknown = set(raw) - {"generation_types", "models", "per_second"}
        if unknown:
            raise PricingError(f"{source}: unknown section(s) {sorted(unknown)}")
        types = raw.get("generation_types")
        if not isinstance(types, dict) or not types:
            raise PricingError(f"{source}: needs a [generation_types] table")
        models = raw.get("models", {})
        per_second = raw.get("per_second", {})
        if not isinstance(models, dict) or not isinstance(per_second, dict):
            raise PricingError(f"{source}: [models] and [per_second] must be tables")
        return cls(types, models, source, per_second)

    def price(self, generation_type: str, card: Mapping[str, Any] | None = None) -> float:
        """Estimated credits for one POST of ``card`` (``"render"`` and no card for a render)."""
        card = card or {}
        model = card.get("model")
        model = model if isinstance(model, str) else None
        duration = card.get("duration")
        seconds = (
            float(duration)
            if isinstance(duration, int | float) and not isinstance(duration, bool)
            else None
        )
        for key, per_call in ((model, self.models), (generation_type, self.generation_types)):
            if key is None:
                continue
            if seconds is not None and key in self.per_second:
                return float(self.per_second[key]) * seconds
            if key in per_call:
                return float(per_call[key])
        raise PricingError(f"{self.source}: no price for generation type {generation_type!r}")

    def total(self, steps: Iterable[tuple[str, Mapping[str, Any] | None]]) -> float:
        """Sum of :meth:`price` over ``(generation_type, card)`` pairs."""
        return sum(self.price(kind, card) for kind, card in steps)


class CreditsRefused(RuntimeError):
    """A reservation cannot be granted; the row is ``skipped`` with this reason."""

    def __init__(self, reason: Literal["budget", "balance", "exhausted"], message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class CreditGrant:
    """The owner of a shared cap to one of its users.

    ``allowance``: what this user may have charged and held in all;
    ``elsewhere``: what the other users have charged (as last heard);
    ``seq``: grows with every answer to this user (a late answer is stale).
    """

    allowance: float
    elsewhere: float
    seq: int = 0


class CreditSource(Protocol):
    """The owner of a shared ``--max-credits``, as one of its users reaches it."""

    async def credits(self, want: float, charged: float, reserved: float) -> CreditGrant:
        """Raise this user's allowance by ``want`` (all or nothing, maybe a spare more)."""
        ...

    async def give_back(self, amount: float, charged: float) -> CreditGrant:
        """Lower this user's allowance by ``amount`` (never below ``charged``).

        By an amount, not to a level: a grant in flight at the same time is
        neither lost nor counted twice, whichever the owner takes first.
        """
        ...


@dataclass(frozen=True, slots=True)
class LedgerSnapshot:
    charged: float
    reserved: float
    in_flight: int
    max_credits: float | None
    balance_left: float | None
    exhausted: bool
    refused: int


class Reservation:
    """Credits held for one paid POST until it settles or is released.

    ``pooled`` of ``amount`` was drawn from ``row``'s hold: released, it goes
    back to the row (a failed generation may be tried again), not the ledger.
    """

    __slots__ = ("_ledger", "_pooled", "_row", "amount", "state", "tag")

    def __init__(
        self,
        ledger: CreditLedger,
        amount: float,
        tag: str,
        row: RowReservation | None = None,
        pooled: float = 0.0,
    ) -> None:
        self._ledger = ledger
        self.amount = amount
        self.tag = tag
        self._row = row
        self._pooled = pooled
        self.state: Literal["held", "settled", "released"] = "held"

    def settle(self, actual: float | None = None) -> float:
        """The job completed: charge ``actual`` (the estimate if unknown).

        Returns what was charged, for the journal.
        """
        self._close("settled")
        charged = self.amount if actual is None else float(actual)
        self._ledger._settle(self.amount, charged)
        return charged

    def release(self) -> None:
        """The job failed, was stopped or never sent: nothing was charged."""
        if self.state == "held":
            self._close("released")
            back = self._row._give_back(self._pooled) if self._row is not None else 0.0
            self._ledger._settle(self.amount - back, 0.0)

    def _close(self, state: Literal["settled", "released"]) -> None:
        if self.state != "held":
            raise RuntimeError(f"reservation {self.tag!r} already {self.state}")
        self.state = state

    def __repr__(self) -> str:
        return f"<Reservation {self.tag!r} {self.amount:g} {self.state}>"


class RowReservation:
    """Credits held at admission for one row's remaining paid steps.

    Held in the ledger from :meth:`CreditLedger.admit` until :meth:`close`
    (the row ended, however it ended); each paid POST :meth:`draw` s from it.
    """

    __slots__ = ("_ledger", "closed", "held", "tag")

    def __init__(self, ledger: CreditLedger, amount: float, tag: str) -> None:
        self._ledger = ledger
        self.held = amount
        self.tag = tag
        self.closed = False

    async def draw(self, amount: float, tag: str = "") -> Reservation:
        """One paid POST's estimate, out of this row's hold.

        No new paid work once the ledger is exhausted, hold or not.  What the
        hold no longer covers (earlier steps cost more than estimated) is
        reserved from the ledger, waiting or refused like :meth:`CreditLedger.reserve`.
        """
        ledger = self._ledger
        tag = tag or self.tag
        if amount > 0 and ledger._exhausted is not None:
            ledger._refused += 1
            raise CreditsRefused("exhausted", ledger._exhausted)
        take = 0.0 if self.closed else min(self.held, max(0.0, amount))
        self.held -= take
        extra = amount - take
        if extra <= 1e-9:
            ledger._in_flight += 1
            return Reservation(ledger, take, tag, self, take)
        try:
            outer = await ledger.reserve(extra, tag)
        except BaseException:
            self._give_back(take)
            raise
        outer.amount += take
        outer._row, outer._pooled = self, take
        return outer

    def _give_back(self, amount: float) -> float:
        """Return a released draw to the hold; 0 once closed (the ledger takes it)."""
        if self.closed:
            return 0.0
        self.held += amount
        return amount

    def close(self) -> None:
        """The row ended: what it did not spend goes back to the ledger."""
        if not self.closed:
            self.closed = True
            ledger = self._ledger
            ledger._reserved = max(0.0, ledger._reserved - self.held)
            self.held = 0.0
            ledger._notify()
            ledger._tidy()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<RowReservation {self.tag!r} {self.held:g} {state}>"


class _Closed(RuntimeError):
    """The ledger's run ended (no more calls to its source)."""


class CreditLedger:
    """Budget and balance accounting for one run (see the module docstring)."""

    def __init__(
        self,
        *,
        max_credits: float | None = None,
        balance: float | None = None,
        source: CreditSource | None = None,
    ) -> None:
        if max_credits is not None and max_credits < 0:
            raise ValueError("max_credits must be >= 0")
        self.max_credits = max_credits
        # A shared cap (see the module docstring): only with a cap to share.
        self._source = source if max_credits is not None else None
        self._allowance = 0.0
        self._elsewhere = 0.0
        self._asking: asyncio.Task[None] | None = None
        self._giving: asyncio.Task[None] | None = None
        # One call to the source at a time: answers then come back in order, and
        # what is being given back is off the local allowance before it is sent.
        self._calls = asyncio.Lock()
        self._seq = -1
        self._reported = 0.0  # charges the source last heard of
        self._lost: BaseException | None = None
        self._charged = 0.0
        self._reserved = 0.0
        self._in_flight = 0
        self._refused = 0
        self._balance_base: float | None = None
        self._charged_at_base = 0.0
        self._exhausted: str | None = None
        self._changed = asyncio.Event()
        if balance is not None:
            self.set_balance(balance)

    # -- state ---------------------------------------------------------------
    @property
    def charged(self) -> float:
        """Credits charged by settled jobs: what genbatch reports as spent."""
        return self._charged

    @property
    def reserved(self) -> float:
        return self._reserved

    @property
    def exhausted(self) -> bool:
        return self._exhausted is not None

    @property
    def exhausted_reason(self) -> str | None:
        return self._exhausted

    def balance_left(self) -> float | None:
        """Known balance minus charges since it was read and open reservations."""
        if self._balance_base is None:
            return None
        return self._balance_base - (self._charged - self._charged_at_base) - self._reserved

    def snapshot(self) -> LedgerSnapshot:
        return LedgerSnapshot(
            charged=self._charged,
            reserved=self._reserved,
            in_flight=self._in_flight,
            max_credits=self.max_credits,
            balance_left=self.balance_left(),
            exhausted=self.exhausted,
            refused=self._refused,
        )

    def set_balance(self, balance: float) -> None:
        """Record the workspace balance as read now (organization read).

        Open reservations are assumed not yet charged by the server, which
        errs on the safe side if it already took them.
        """
        self._balance_base = float(balance)
        self._charged_at_base = self._charged
        self._notify()

    def exhaust(self, reason: str = "insufficient credits") -> None:
        """Stop granting paid work (``insufficient_credits_for_job`` seen)."""
        if self._exhausted is None:
            self._exhausted = reason
        self._notify()

    # -- reservations ----------------------------------------------------------
    def _verdict(self, amount: float, row: bool = False) -> Literal["ok", "wait"] | CreditsRefused:
        """Grant, wait (only open reservations stand in the way), or refuse.

        ``row``: an admission — the reason then says what the row needs.
        """
        if amount <= 0:
            return "ok"  # free steps (media, clone) are never paid work
        if self._exhausted is not None:
            return CreditsRefused("exhausted", self._exhausted)
        if self.max_credits is not None:
            spent = self._charged + self._elsewhere
            if spent + amount > self.max_credits + 1e-9:
                # "left": what in-flight holds leave, the figure a user recognises.
                spare = max(0.0, self.max_credits - spent - self._reserved)
                return CreditsRefused(
                    "budget",
                    f"insufficient credits: needs {amount:g}, {spare:g} left of "
                    f"--max-credits {self.max_credits:g}"
                    if row
                    else f"budget exhausted: {spent:g} of --max-credits "
                    f"{self.max_credits:g} spent, next step needs {amount:g}",
                )
            if self._charged + self._reserved + amount > self.max_credits + 1e-9:
                return "wait"
            if (
                self._source is not None
                and self._charged + self._reserved + amount > self._allowance + 1e-9
            ):
                return "wait"  # the allowance is short: :meth:`_ask` for more
        left = self.balance_left()
        if left is not None:
            if left + self._reserved < amount - 1e-9:
                return CreditsRefused(
                    "balance",
                    f"insufficient credits: needs {amount:g}, {max(0.0, left):g} left"
                    if row
                    else f"insufficient credits: balance {left + self._reserved:g}, "
                    f"next step needs {amount:g}",
                )
            if left < amount - 1e-9:
                return "wait"
        return "ok"

    async def admit(self, amount: float, tag: str = "") -> RowReservation:
        """Hold a row's whole remaining estimate before it starts, waiting for room.

        Raises :class:`CreditsRefused` when the row can never be covered
        (``"insufficient credits: needs N, M left"``), or the ledger is exhausted.
        A row with nothing left to pay (``amount`` 0) is always admitted.
        """
        while True:
            verdict = self._verdict(amount, row=True)
            if isinstance(verdict, CreditsRefused):
                self._refused += 1
                raise verdict
            if verdict == "ok":
                held = max(0.0, amount)
                self._reserved += held
                return RowReservation(self, held, tag)
            await self._wait_for(amount)

    def try_reserve(self, amount: float, tag: str = "") -> Reservation | None:
        """Reserve now, or ``None`` if it must wait; raises if it never fits."""
        verdict = self._verdict(amount)
        if isinstance(verdict, CreditsRefused):
            self._refused += 1
            raise verdict
        if verdict == "wait":
            return None
        self._reserved += amount
        self._in_flight += 1
        return Reservation(self, amount, tag)

    async def reserve(self, amount: float, tag: str = "") -> Reservation:
        """Reserve ``amount`` for one paid POST, waiting for room if needed.

        Raises :class:`CreditsRefused` when it can never be granted (budget
        or balance too small, or the ledger is exhausted — also while waiting).
        """
        while True:
            reservation = self.try_reserve(amount, tag)
            if reservation is not None:
                return reservation
            await self._wait_for(amount)

    def _settle(self, amount: float, charged: float) -> None:
        self._reserved = max(0.0, self._reserved - amount)
        self._in_flight -= 1
        self._charged += charged
        self._notify()

    def _notify(self) -> None:
        # Wake every waiter to re-check; a fresh event for the next round.
        self._changed.set()
        self._changed = asyncio.Event()

    # -- a shared cap ------------------------------------------------------------
    async def _wait_for(self, amount: float) -> None:
        """Wait for the next change; with a shared cap, ask for the allowance first."""
        if self._lost is not None:
            raise self._lost
        changed = self._changed
        short = self._charged + self._reserved + amount - self._allowance
        if self._source is not None and short > 1e-9 and self._asking is None:
            self._asking = asyncio.ensure_future(self._ask(short))
        await changed.wait()
        if self._lost is not None:
            raise self._lost

    async def _ask(self, short: float) -> None:
        source = self._source
        assert source is not None
        try:
            async with self._calls:
                need = self._charged + self._reserved + short
                self._reported = self._charged
                self._heard(await source.credits(short, self._charged, self._reserved))
                denied = self._allowance + 1e-9 < need
                if denied:
                    # Held elsewhere: give back the spare here (another user may
                    # wait for it), ask again soon.
                    await self._give_back(source)
            if denied:
                await asyncio.sleep(ENGINE_CREDIT_RETRY_SECONDS)
        except Exception as exc:
            self._lost = exc
        finally:
            self._asking = None
            self._notify()

    async def _give_back(self, source: CreditSource, spare: float | None = None) -> None:
        """Give back ``spare`` (default: what is not held) and tell the charges;
        under ``_calls``."""
        amount = max(0.0, self._spare() if spare is None else spare)
        if amount <= 1e-9 and self._charged == self._reported:
            return
        self._allowance -= amount  # not to be granted here while it travels
        self._reported = self._charged
        self._heard(await source.give_back(amount, self._charged))

    def _spare(self) -> float:
        """The allowance this ledger does not hold (charged or reserved)."""
        return max(0.0, self._allowance - self._charged - self._reserved)

    def _heard(self, grant: CreditGrant) -> None:
        if grant.seq < self._seq:
            return  # overtaken by a later answer
        self._seq = grant.seq
        self._allowance = grant.allowance
        self._elsewhere = grant.elsewhere

    def _tidy(self) -> None:
        """A row ended: give back the allowance it no longer holds, and tell what it
        cost (the others' refusals count on every user's charges)."""
        source = self._source
        if source is None or self._giving is not None or self._lost is not None:
            return
        if self._spare() <= 1e-9 and self._charged == self._reported:
            return

        async def give() -> None:
            try:
                async with self._calls:
                    await self._give_back(source)
            except Exception as exc:
                self._lost = exc
            finally:
                self._giving = None
                self._notify()
            self._tidy()  # rows that ended while this call travelled

        self._giving = asyncio.ensure_future(give())

    async def aclose(self) -> None:
        """The run ended: give every allowance back (a no-op without a shared cap)."""
        source = self._source
        if source is None:
            return
        self._lost = self._lost or _Closed()  # no more asking or tidying
        for task in (self._asking, self._giving):
            if task is not None:  # let it land: a grant cut off here would be lost
                with contextlib.suppress(Exception):
                    await task
        if isinstance(self._lost, _Closed):
            with contextlib.suppress(Exception):
                async with self._calls:
                    # Holds end with the run: all but what was charged goes back.
                    await self._give_back(source, max(0.0, self._allowance - self._charged))
