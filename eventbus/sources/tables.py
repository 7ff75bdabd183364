"""Tables and their change streams (the DynamoDB and DynamoDB Streams model).

:class:`Table` is an embedded key-value table, kept in memory or in an
SQLite file, whose every change publishes a :class:`TableChange` as a
DynamoDB stream record does.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Literal, TypeAlias, final

import anyio
import attrs

from .._bus import Bus
from .._events import Event
from .._exceptions import ConditionFailed
from .._settle import publish_tracked
from .._sqlite import PRIVATE_FILE_MODE, check_mode
from ._common import check_bus, check_name, ensure_running, run_sync
from ._table_items import (
    Condition,
    Item,
    KeySchema,
    canonical,
    check_condition_form,
    equal,
    expiry,
    matches,
    sort_test,
)
from ._table_stores import Decision, MemoryStore, SqliteStore, Store

__all__ = ["ConditionFailed", "StreamView", "Table", "TableChange", "TableOperation"]

TableOperation = Literal["INSERT", "MODIFY", "REMOVE"]
_OPS = ("INSERT", "MODIFY", "REMOVE")

StreamView: TypeAlias = Literal["KEYS_ONLY", "NEW_IMAGE", "OLD_IMAGE", "NEW_AND_OLD_IMAGES"]
_VIEWS: Final = ("KEYS_ONLY", "NEW_IMAGE", "OLD_IMAGE", "NEW_AND_OLD_IMAGES")
_FORGET_BATCH: Final = 64  # settled changes forgotten per transaction


def _check_op(_inst: object, _attr: object, value: str) -> None:
    if value not in _OPS:
        raise ValueError(f"TableChange.op must be one of {', '.join(_OPS)}; got {value!r}")


@attrs.frozen
class TableChange(Event, type_name="eventbus.TableChange"):
    """A row of a table was inserted, modified or removed (a DynamoDB stream record).

    Attributes:
        table: the table name.
        op: ``"INSERT"``, ``"MODIFY"`` or ``"REMOVE"``.
        keys: the row's key attributes.
        new_image: the row after the change (``None`` for REMOVE, or when the
            stream view does not include new images).
        old_image: the row before the change (``None`` for INSERT, or when the
            stream view does not include old images).
        sequence_number: strictly increasing per table.
        expired: the row was removed by TTL expiry, not by a caller
            (DynamoDB's ``userIdentity`` of ``dynamodb.amazonaws.com``).
    """

    table: str
    op: TableOperation = attrs.field(validator=_check_op)
    keys: Mapping[str, Any]
    new_image: Mapping[str, Any] | None
    old_image: Mapping[str, Any] | None
    sequence_number: int
    expired: bool = False


@final
class Table:
    """An embedded table whose changes publish DynamoDB-stream-style events on a bus.

    ::

        users = Table(bus, "users", key="id")                       # in memory
        orders = Table(bus, "orders", key="customer", sort_key="at", path="shop.db")
        async with orders:
            await orders.put({"customer": "c1", "at": 1, "total": 30})
            rows = await orders.query("c1", between=(1, 9))

    Every write that changes something publishes one :class:`TableChange`
    (``source="eventbus.tables/<name>"``, ``sequence_number`` strictly
    increasing) and returns it; a write that changes nothing publishes
    nothing and returns None. The images the change carries follow
    *stream_view*. A write returns once its change (and any earlier one not
    yet published) has been accepted by the bus, waiting while a subscriber's
    queue is full.

    Rows are dicts of JSON values, ``bytes``, ``Decimal``, aware ``datetime``
    and sets (tuples come back as lists). Key attributes hold non-empty
    strings, finite numbers (``1 == 1.0``) or non-empty bytes.

    With ``path=`` the rows live in an SQLite file; each write stores the row
    and its change record in one transaction (an *outbox*), and the change
    stays in the outbox until every subscription that accepted its event has
    *settled* it -- handled it, or dead-lettered it (with a broker
    transport: until the broker has stored it). Opening the table --
    ``await table.open()``, ``async with table:``, or any first operation --
    publishes the changes a previous run committed but did not see settled
    (for instance because it was killed with events still queued), in order,
    with their original event ids: every committed change is handled at
    least once, and exactly once with idempotent handlers (``@idempotent``,
    keyed on the event id). Settled changes are forgotten in batches, and
    when the table closes. Use one :class:`Table` object per name and file
    at a time.

    With ``ttl_attribute=`` a row whose attribute holds an epoch-seconds
    number (or an aware datetime) at or before the bus clock's ``wall()``
    is expired by :meth:`expire` (or by :meth:`run_sweeper` every
    *interval* seconds): it is deleted and a ``REMOVE`` with
    ``expired=True`` is published. As in DynamoDB, an expired row stays
    readable until a sweep removes it.

    Args:
        bus: the bus to publish on.
        name: the table name (1-255 letters, digits, ``_ - .``).
        key: the partition key attribute.
        sort_key: the sort key attribute, if rows are ordered within a partition.
        stream_view: what images changes carry: ``"KEYS_ONLY"``, ``"NEW_IMAGE"``,
            ``"OLD_IMAGE"`` or ``"NEW_AND_OLD_IMAGES"``.
        path: an SQLite file for the durable backend; None keeps rows in memory.
        ttl_attribute: the attribute holding each row's expiry time.
        mode: the permission bits a new SQLite file is created with:
            ``0o600`` (owner only) unless told otherwise; an existing file
            keeps its mode.

    Raises:
        TypeError, ValueError: an argument is invalid.

    .. versionadded:: 0.1
    .. versionchanged:: 0.2
       New files are private (0600) by default; the *mode* argument.
    """

    __slots__ = (
        "_bus",
        "_deliver_lock",
        "_limiter",
        "_open",
        "_open_lock",
        "_path",
        "_published_upto",
        "_schema",
        "_settled",
        "_store",
        "_stream_view",
        "_ttl",
        "_write_lock",
    )

    def __init__(
        self,
        bus: Bus,
        name: str,
        key: str,
        sort_key: str | None = None,
        stream_view: StreamView = "NEW_AND_OLD_IMAGES",
        path: str | os.PathLike[str] | None = None,
        ttl_attribute: str | None = None,
        *,
        mode: int = PRIVATE_FILE_MODE,
    ) -> None:
        self._bus = check_bus("Table", bus)
        self._bus._add_source(self)
        check_mode("Table", mode)
        check_name("Table", "name", name)
        for label, value in (
            ("key", key),
            ("sort_key", sort_key),
            ("ttl_attribute", ttl_attribute),
        ):
            if value is None and label != "key":
                continue
            if not isinstance(value, str) or not value:
                raise TypeError(
                    f"Table({label}=...) must be a non-empty attribute name, got {value!r}"
                )
        if sort_key == key:
            raise ValueError(f"Table(sort_key=...) must differ from key ({key!r})")
        if ttl_attribute is not None and ttl_attribute in (key, sort_key):
            raise ValueError("Table(ttl_attribute=...) cannot be a key attribute")
        if stream_view not in _VIEWS:
            raise ValueError(
                f"Table(stream_view={stream_view!r}) must be one of {', '.join(_VIEWS)}"
            )
        self._schema = KeySchema(name, key, sort_key)
        self._stream_view: StreamView = stream_view
        self._ttl = ttl_attribute
        store: Store
        if path is None:
            self._path: Path | None = None
            store = MemoryStore(ttl_attribute)
        else:
            if not isinstance(path, str | os.PathLike):
                raise TypeError(
                    f"Table(path=...) must be a file path or None, got {type(path).__name__}"
                )
            self._path = Path(path)
            store = SqliteStore(self._path, self._schema, ttl_attribute, mode)
        self._store = store
        self._limiter = anyio.CapacityLimiter(1) if store.threaded else None
        self._write_lock = anyio.Lock()
        self._deliver_lock = anyio.Lock()
        self._open_lock = anyio.Lock()
        self._open = False
        # Outbox entries up to this sequence number were published by this
        # object since it opened; each is forgotten once its event settles.
        self._published_upto = 0
        self._settled: list[int] = []

    # -- properties ------------------------------------------------------------------

    @property
    def name(self) -> str:
        """The table name."""
        return self._schema.table

    @property
    def key(self) -> str:
        """The partition key attribute."""
        return self._schema.key

    @property
    def sort_key(self) -> str | None:
        """The sort key attribute, or None."""
        return self._schema.sort_key

    @property
    def stream_view(self) -> StreamView:
        """What images changes carry."""
        return self._stream_view

    @property
    def ttl_attribute(self) -> str | None:
        """The attribute holding each row's expiry time, or None."""
        return self._ttl

    @property
    def path(self) -> Path | None:
        """The SQLite file, or None in memory."""
        return self._path

    @property
    def source(self) -> str:
        """The ``source`` of the events this table publishes: ``eventbus.tables/<name>``."""
        return f"eventbus.tables/{self._schema.table}"

    # -- lifecycle ---------------------------------------------------------------------

    async def open(self) -> None:
        """Open the storage and publish the changes a previous run left undelivered.

        Called by ``async with table:`` and by the first operation; calling
        it again only publishes changes still pending.

        Raises:
            ValueError: the SQLite file holds this table with other keys.
            sqlite3.Error: the file cannot be opened.
            BusClosed: undelivered changes exist but the bus is not running
                (they stay in the file).
        """
        async with self._open_lock:
            if not self._open:
                await run_sync(self._limiter, self._store.open)
                self._open = True
        await self.deliver()

    async def aclose(self) -> None:
        """Close the SQLite file (a later operation opens it again)."""
        async with self._open_lock:
            if self._open:
                async with self._write_lock, self._deliver_lock:
                    with anyio.CancelScope(shield=True):
                        await self._forget_settled()
                        await run_sync(self._limiter, self._store.close)
                self._open = False
                self._published_upto = 0

    async def __aenter__(self) -> Table:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _ensure_open(self) -> None:
        if not self._open:
            await self.open()

    async def deliver(self) -> int:
        """Publish every committed change not yet published since the table opened, in order.

        Writes call it for you; call it after a write failed with
        :class:`~eventbus.BusClosed` or was cancelled while publishing. It
        also forgets, in one transaction, the changes whose events have
        settled since (once enough have gathered).

        Returns:
            How many changes were published.

        Raises:
            BusClosed: the bus is not running; the changes stay pending.

        If cancelled while publishing, that change stays pending and is
        published again later, so a subscription that had already accepted
        it sees it twice (with the same event id).
        """
        count = 0
        async with self._deliver_lock:
            if not self._open:
                return 0
            if len(self._settled) >= _FORGET_BATCH:
                await self._forget_settled()
            after = self._published_upto
            for seq, change in await run_sync(self._limiter, partial(self._store.pending, after)):
                await publish_tracked(self._bus, change, partial(self._on_settled, seq))
                self._published_upto = seq
                count += 1
        return count

    def _on_settled(self, seq: int) -> None:
        """Change *seq*'s event has settled everywhere: forget it with the next write."""
        self._settled.append(seq)  # looked up now: writes swap the list

    async def _forget_settled(self) -> None:
        """Drop the settled changes from the outbox (call holding the deliver lock)."""
        if not self._settled:
            return
        seqs, self._settled = self._settled, []
        try:
            await run_sync(self._limiter, partial(self._store.delivered, seqs))
        except BaseException:
            self._settled.extend(seqs)
            raise

    # -- writes ------------------------------------------------------------------------

    def _change(
        self,
        op: TableOperation,
        keys: Item,
        new: Item | None,
        old: Item | None,
        when: datetime,
        *,
        expired: bool = False,
    ) -> Callable[[int], TableChange]:
        view = self._stream_view
        new_image = new if view in ("NEW_IMAGE", "NEW_AND_OLD_IMAGES") else None
        old_image = old if view in ("OLD_IMAGE", "NEW_AND_OLD_IMAGES") else None

        def describe(seq: int) -> TableChange:
            return TableChange(
                self._schema.table,
                op,
                canonical(keys),
                None if new_image is None else canonical(new_image),
                None if old_image is None else canonical(old_image),
                seq,
                expired=expired,
                source=self.source,
                time=when,
            )

        return describe

    async def _write(
        self, keys: Item, decide: Callable[[Item | None], Decision | None], owner: str
    ) -> TableChange | None:
        ensure_running(self._bus, owner)
        await self._ensure_open()
        schema = self._schema
        row, pk = schema.row(keys), schema.partition(keys[schema.key])
        async with self._write_lock:
            forget, self._settled = self._settled, []  # leave the outbox with this write
            try:
                change: TableChange | None = await run_sync(
                    self._limiter, lambda: self._store.apply(row, pk, decide, forget)
                )
            except BaseException:
                self._settled.extend(forget)
                raise
            if change is None:
                self._settled.extend(forget)
        if change is not None:
            await self.deliver()
        return change

    def _check(self, condition: Condition | None, keys: Item, current: Item | None) -> None:
        if condition is not None and not matches(condition, current):
            raise ConditionFailed(self._schema.table, keys, current)

    async def put(
        self, item: Mapping[str, Any], *, condition: Condition | None = None
    ) -> TableChange | None:
        """Insert or replace a whole row and publish an ``INSERT`` or ``MODIFY``.

        Args:
            item: the row, with its key attributes.
            condition: written only if the current row meets it: a mapping of
                expected attribute values (the row must exist; ``{}`` only
                requires that), or a function ``(row or None) -> bool`` --
                ``lambda row: row is None`` inserts only.

        Returns:
            The :class:`TableChange` published, or None if the row was already equal.

        Raises:
            ConditionFailed: *condition* did not hold; nothing was written.
            TypeError, ValueError: the row or its keys are invalid.
            BusClosed: the bus is not running (nothing was written).
        """
        row = canonical(item)
        keys = self._schema.keys_of(row, "put()")
        condition = check_condition_form(condition, "put")
        when = self._bus.clock.wall()

        def decide(current: Item | None) -> Decision | None:
            self._check(condition, keys, current)
            if current is not None and equal(current, row):
                return None
            op: TableOperation = "INSERT" if current is None else "MODIFY"
            return row, self._change(op, keys, row, current, when)

        return await self._write(keys, decide, "Table.put")

    async def update(
        self,
        keys: Mapping[str, Any],
        changes: Mapping[str, Any] | None = None,
        *,
        remove: Iterable[str] = (),
        condition: Condition | None = None,
    ) -> TableChange | None:
        """Change some attributes of a row (creating it if missing) and publish the change.

        Args:
            keys: the row's key attributes.
            changes: attributes to set.
            remove: attribute names to delete.
            condition: as for :meth:`put`; ``{}`` updates existing rows only.

        Returns:
            The :class:`TableChange` published, or None if nothing changed.

        Raises:
            ConditionFailed: *condition* did not hold; nothing was written.
            ValueError: *changes* or *remove* names a key attribute.
            BusClosed: the bus is not running (nothing was written).
        """
        key_values = self._schema.exact_keys(keys, "update()")
        updates = canonical(changes or {}, "changes")
        if isinstance(remove, str):
            raise TypeError("update(remove=...) takes a list of attribute names, not a string")
        dropped = list(remove)
        for name in (*updates, *dropped):
            if not isinstance(name, str):
                raise TypeError(f"update(remove=...): attribute names are strings, got {name!r}")
            if name in self._schema.names:
                raise ValueError(
                    f"update(): {name!r} is a key attribute of table {self.name!r}; key "
                    "attributes cannot change -- delete the row and put a new one"
                )
        condition = check_condition_form(condition, "update")
        when = self._bus.clock.wall()

        def decide(current: Item | None) -> Decision | None:
            self._check(condition, key_values, current)
            new = {**(current if current is not None else key_values), **updates}
            for name in dropped:
                new.pop(name, None)
            if current is not None and equal(current, new):
                return None
            op: TableOperation = "INSERT" if current is None else "MODIFY"
            return new, self._change(op, key_values, new, current, when)

        return await self._write(key_values, decide, "Table.update")

    async def delete(
        self, keys: Mapping[str, Any], *, condition: Condition | None = None
    ) -> TableChange | None:
        """Delete a row and publish a ``REMOVE``.

        Returns:
            The :class:`TableChange` published, or None if there was no such row.

        Raises:
            ConditionFailed: *condition* did not hold; nothing was deleted.
            BusClosed: the bus is not running (nothing was deleted).
        """
        key_values = self._schema.exact_keys(keys, "delete()")
        condition = check_condition_form(condition, "delete")
        when = self._bus.clock.wall()

        def decide(current: Item | None) -> Decision | None:
            self._check(condition, key_values, current)
            if current is None:
                return None
            return None, self._change("REMOVE", key_values, None, current, when)

        return await self._write(key_values, decide, "Table.delete")

    async def expire(self) -> int:
        """Delete every row whose TTL has passed (bus clock), publishing ``REMOVE``s with ``expired=True``.

        Returns:
            How many rows expired (0 when the table has no ``ttl_attribute``).
        """
        if self._ttl is None:
            return 0
        await self._ensure_open()
        when = self._bus.clock.wall()
        now = when.timestamp()
        count = 0
        for item in await run_sync(self._limiter, lambda: self._store.expired(now)):
            keys = self._schema.keys_of(item, "expire()")

            def decide(current: Item | None, keys: Item = keys) -> Decision | None:
                due = None if current is None else expiry(current, self._ttl)
                if current is None or due is None or due > now:
                    return None  # changed since it was listed
                return None, self._change("REMOVE", keys, None, current, when, expired=True)

            if await self._write(keys, decide, "Table.expire") is not None:
                count += 1
        return count

    async def run_sweeper(self, interval: float = 60.0) -> None:
        """Call :meth:`expire` every *interval* seconds of the bus clock, until cancelled.

        Start it in a task group: ``tg.start_soon(table.run_sweeper, 30)``.

        Raises:
            ValueError: *interval* is not a positive number, or the table has no TTL.
        """
        if isinstance(interval, bool) or not isinstance(interval, int | float) or not interval > 0:
            raise ValueError(f"run_sweeper(interval=...) must be seconds > 0, got {interval!r}")
        if self._ttl is None:
            raise ValueError("run_sweeper(): the table has no ttl_attribute, so nothing can expire")
        clock = self._bus.clock
        while True:
            await clock.sleep_until(clock.now() + interval)
            await self.expire()

    # -- reads -----------------------------------------------------------------------

    async def get(self, keys: Mapping[str, Any]) -> Item | None:
        """The row with these key attributes (a copy), or None."""
        key_values = self._schema.exact_keys(keys, "get()")
        await self._ensure_open()
        row = self._schema.row(key_values)
        return await run_sync(self._limiter, lambda: self._store.get(row))

    async def query(
        self,
        partition: Any,
        *,
        eq: Any = None,
        lt: Any = None,
        le: Any = None,
        gt: Any = None,
        ge: Any = None,
        between: tuple[Any, Any] | None = None,
        begins_with: str | bytes | None = None,
        reverse: bool = False,
        limit: int | None = None,
    ) -> list[Item]:
        """Rows of one partition, in sort-key order, optionally narrowed on the sort key.

        Give at most one sort-key condition: ``eq``, ``lt``, ``le``, ``gt``,
        ``ge`` (a value), ``between`` (an inclusive ``(low, high)`` pair) or
        ``begins_with`` (a string or bytes prefix). Values of another type
        than the bound (a string sort key against ``lt=5``) never match.

        Args:
            partition: the partition key's value.
            reverse: newest (highest sort key) first.
            limit: at most this many rows.

        Raises:
            ValueError, TypeError: a bad condition, or a condition without a sort key.
        """
        self._schema.check_value(self._schema.key, partition, "query()")
        test = sort_test(
            self._schema,
            {
                "eq": eq,
                "lt": lt,
                "le": le,
                "gt": gt,
                "ge": ge,
                "between": between,
                "begins_with": begins_with,
            },
        )
        _check_limit(limit)
        await self._ensure_open()
        pk = self._schema.partition(partition)
        rows = await run_sync(self._limiter, lambda: self._store.partition(pk))
        sort_key = self._schema.sort_key
        if test is not None and sort_key is not None:
            rows = [r for r in rows if test(r[sort_key])]
        rows.sort(key=self._schema.order, reverse=bool(reverse))
        return rows if limit is None else rows[:limit]

    async def scan(
        self, *, filter: Condition | None = None, limit: int | None = None
    ) -> list[Item]:
        """Every row (or those meeting *filter*), ordered by partition key then sort key.

        Args:
            filter: a mapping of expected attribute values or a function ``row -> bool``.
            limit: at most this many rows.
        """
        condition = check_condition_form(filter, "scan")
        _check_limit(limit)
        await self._ensure_open()
        rows = await run_sync(self._limiter, self._store.scan)
        if condition is not None:
            rows = [r for r in rows if matches(condition, r)]
        rows.sort(key=self._schema.order)
        return rows if limit is None else rows[:limit]

    def __repr__(self) -> str:
        where = "memory" if self._path is None else str(self._path)
        return f"<Table {self.name!r} in {where}>"


def _check_limit(limit: object) -> None:
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"limit must be an int >= 1 or None, got {limit!r}")
