"""A newcomer's async component, built from the tutorial alone.

A sign-up service: new accounts are welcomed by e-mail (retried when the
mail server fails), verified accounts get a follow-up, and the component
reports its metrics. Run it with ``python examples/first_hour/signups.py``.
"""

from __future__ import annotations

import anyio
import attrs

from eventbus import Bus, Context, Event, ExponentialBackoff, SubscriptionMetrics


@attrs.frozen
class SignedUp(Event):
    user: str
    email: str
    plan: str = "free"


@attrs.frozen
class WelcomeSent(Event):
    user: str


@attrs.frozen
class Summary:
    welcomed: list[str]
    upgrades: list[str]
    attempts: int
    metrics: dict[str, SubscriptionMetrics]
    why_not: str | None


async def main() -> Summary:
    """Run the component on a few sign-ups; return what happened."""
    welcomed: list[str] = []
    upgrades: list[str] = []
    attempts = 0

    async with Bus(retry=ExponentialBackoff(max_attempts=3, initial=0.01, jitter=False)) as bus:

        @bus.on(SignedUp, name="welcome", concurrency=4, ordered_by="user", timeout=5)
        async def welcome(event: SignedUp, ctx: Context) -> None:
            nonlocal attempts
            attempts += 1
            if ctx.attempt == 1 and event.user == "bob":
                raise ConnectionError("mail server busy")  # retried by the policy
            welcomed.append(event.user)
            await ctx.publish(WelcomeSent(event.user))

        @bus.on(SignedUp, name="upsell", where={"plan": [{"anything-but": ["free"]}]})
        def upsell(event: SignedUp) -> None:  # a plain def runs in a worker thread
            upgrades.append(event.user)

        @bus.on(WelcomeSent, name="audit")
        async def audit(event: WelcomeSent) -> None:
            pass

        for user, plan in [("alice", "pro"), ("bob", "free"), ("carol", "team")]:
            await bus.publish(SignedUp(user, f"{user}@example.com", plan))
        await bus.drain()

        why = bus.explain(SignedUp("dave", "dave@example.com"))["upsell"]
        summary = Summary(sorted(welcomed), sorted(upgrades), attempts, bus.metrics(), why.reason)

    for name, m in summary.metrics.items():
        print(f"{name}: accepted={m.accepted} succeeded={m.succeeded} retries={m.retries}")
    print("not upsold: dave,", summary.why_not)
    return summary


if __name__ == "__main__":
    anyio.run(main)
