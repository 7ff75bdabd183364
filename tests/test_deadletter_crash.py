"""Redrive: SIGKILL with a slow handler and a small queue loses no dead letter."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest
from _dlq_events import Charge
from _sigkill import handled_in, run_until

from eventbus import Bus, DeadLetter, ErrorInfo, SqliteDeadLetters

WHEN = datetime(2024, 1, 1, tzinfo=UTC)
TESTS = Path(__file__).parent

REDRIVER = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, sys.argv[3])
    import anyio
    from _dlq_events import Charge
    from eventbus import Bus, SqliteDeadLetters

    path, handled_path = sys.argv[1], sys.argv[2]

    async def main():
        with open(handled_path, "a") as handled, SqliteDeadLetters(path) as letters:

            async def slow(event: Charge) -> None:
                await anyio.sleep(0.003)
                handled.write(event.order_id + "\\n")
                handled.flush()
                print("handled", flush=True)

            async with Bus() as bus:
                bus.subscribe(Charge, slow, name="billing", queue_size=4)
                await letters.redrive(bus)
                print("redriven", flush=True)
                await anyio.sleep_forever()

    anyio.run(main)
    """
)


async def fill(path: Path, count: int) -> list[str]:
    """Store *count* letters for the billing subscription; return their order ids."""
    orders = [f"o-{i}" for i in range(count)]
    with SqliteDeadLetters(path) as letters:
        for order in orders:
            error = ErrorInfo("RuntimeError", "card service down")
            await letters.put(DeadLetter(Charge(order), "billing", error, 3, WHEN, WHEN))
    return orders


@pytest.mark.parametrize("kill_after", [1, 30, 59, 60, 61, 62, 130])
async def test_no_letter_is_lost_when_a_redrive_is_killed(tmp_path: Path, kill_after: int) -> None:
    """Killed mid-redrive, every letter is either handled or still in the file; none vanishes."""
    db, handled_file = tmp_path / "letters.db", tmp_path / "handled.txt"
    orders = await fill(db, 200)
    await run_until(
        REDRIVER,
        tmp_path,
        [str(db), str(handled_file), str(TESTS)],
        lambda lines: lines.count("handled") >= kill_after,
    )
    handled = set(handled_in(handled_file))
    assert len(handled) >= kill_after
    with SqliteDeadLetters(db) as letters:
        kept = {letter.event.order_id for letter in letters}  # type: ignore[attr-defined]
        lost = sorted(set(orders) - handled - kept)
        assert lost == [], f"letters deleted but never handled: {lost}"
        again: list[str] = []

        async def record(event: Charge) -> None:
            again.append(event.order_id)

        async with Bus() as bus:
            bus.subscribe(Charge, record, name="billing")
            await letters.redrive(bus)
            await bus.drain()
        assert len(letters) == 0
    assert set(orders) <= handled | set(again)
