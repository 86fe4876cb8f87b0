"""Writes asked for by concurrent requests, gathered into shared transactions.

A transaction per signup pays the write lock, the commit and the round trips once per person,
and fifty people asking at once queue for the lock anyway. Here one task per event loop
writes whatever has gathered while the previous batch was being written, in one transaction
on a worker thread: the cost is paid once per batch, nobody waits for more than the batch
ahead and their own, and the event loop never waits on the database. When a batch fails with
a conflict (the same new address signed up in another process at the same instant), its items
are written one by one, and the one that conflicted once more, by when the row it met has
committed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from anyio import to_thread

Item = TypeVar("Item")
Result = TypeVar("Result")


class Batcher(Generic[Item, Result]):
    """`await submit(item)` returns `write(batch)`'s result for that item."""

    def __init__(
        self, write: Callable[[Sequence[Item]], list[Result]], most: int = 100,
        alone_on: tuple[type[Exception], ...] = (Exception,),
    ) -> None:  # fmt: skip
        """`alone_on`: the failures of a batch after which its items are written one by one
        (others, such as a database that is down, fail every request of the batch at once)."""
        self.write, self.most, self.alone_on = write, most, alone_on
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue[tuple[Item, asyncio.Future[Result]]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def submit(self, item: Item) -> Result:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # the first request, or a test client's new event loop
            self._loop, self._queue = loop, asyncio.Queue()
            self._task = loop.create_task(self._run())
        future: asyncio.Future[Result] = loop.create_future()
        self._queue.put_nowait((item, future))
        return await future

    async def _run(self) -> None:
        queue = self._queue
        while True:
            batch = [await queue.get()]
            while len(batch) < self.most and not queue.empty():
                batch.append(queue.get_nowait())
            await self._write(batch)

    async def _write(
        self, batch: list[tuple[Item, asyncio.Future[Result]]], again: bool = True
    ) -> None:
        """Write `batch`; after an `alone_on` failure, each item alone, and an item that fails
        so alone once more (what it conflicted with has committed since: now it is found)."""
        try:
            results = await to_thread.run_sync(self.write, [item for item, _ in batch])
        except Exception as exc:
            if again and isinstance(exc, self.alone_on):
                for one in batch:
                    await self._write([one], again=len(batch) > 1)
                return
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():  # its client may have gone away meanwhile
                future.set_result(result)
