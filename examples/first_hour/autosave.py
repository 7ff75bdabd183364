"""A newcomer's threads-only program with a schedule, built from the docs alone.

No ``async`` anywhere: a "GUI" thread publishes edits, a plain ``def``
handler saves them, and a schedule autosaves every minute. Run it with
``python examples/first_hour/autosave.py`` (it uses a virtual clock, so the
minutes pass at once; drop ``clock=`` to run on real time).
"""

from __future__ import annotations

import threading

import attrs

from eventbus import BlockingBus, Event, ScheduledEvent
from eventbus.testing import FakeClock


@attrs.frozen
class Edited(Event):
    document: str
    text: str


@attrs.frozen
class Result:
    saved: dict[str, str]
    autosaves: list[str]
    handler_threads: set[int]


def run(clock: FakeClock, minutes: int = 3) -> Result:
    """Edit from two threads, then let *minutes* of the clock pass; return what happened."""
    lock = threading.Lock()
    pending: dict[str, str] = {}
    saved: dict[str, str] = {}
    autosaves: list[str] = []
    handler_threads: set[int] = set()

    def remember(event: Edited) -> None:
        with lock:
            pending[event.document] = event.text
            handler_threads.add(threading.get_ident())

    def autosave(event: ScheduledEvent) -> None:
        with lock:
            saved.update(pending)
            pending.clear()
            autosaves.append(event.scheduled_time.strftime("%H:%M"))

    with BlockingBus(clock=clock) as bus:
        bus.subscribe(Edited, remember, name="remember")
        bus.subscribe(ScheduledEvent, autosave, name="autosave", where={"rule": ["autosave"]})
        bus.schedule("rate(1 minute)", name="autosave")

        def gui(document: str) -> None:  # a thread that is not the bus's
            for n in range(3):
                bus.publish(Edited(document, f"{document} v{n}"))

        threads = [threading.Thread(target=gui, args=(d,)) for d in ("a.txt", "b.txt")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        bus.drain()
        bus.call(clock.advance, 60 * minutes)
        bus.drain()
        print("schedules:", [(s.name, s.fired) for s in bus.schedules()])
    return Result(saved, autosaves, handler_threads)


if __name__ == "__main__":
    result = run(FakeClock())
    print("saved:", result.saved)
    print("autosaves at:", result.autosaves)
