"""Event classes shared by the dead-letter tests and the processes they spawn.

The type names are fixed, so a letter written by a child process decodes in
the test process whichever way each imported this module.
"""

from __future__ import annotations

import attrs

from eventbus import Event


@attrs.frozen
class Charge(Event, type_name="tests.dlq.Charge"):
    """A payment to take."""

    order_id: str
    amount: int = 0


@attrs.frozen
class Refund(Event, type_name="tests.dlq.Refund"):
    """A payment to give back."""

    order_id: str
