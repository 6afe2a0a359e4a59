"""Coalescer: callers of one loop turn share a batch; errors and departures are per caller."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from visualdm.coalesce import Coalescer


class Doubler:
    """A batch function that records each batch it was given."""

    def __init__(self, *, fail: bool = False, short: bool = False) -> None:
        self.batches: list[list[int]] = []
        self.fail = fail
        self.short = short
        self.release = asyncio.Event()
        self.release.set()

    async def __call__(self, items: Sequence[int]) -> list[int]:
        self.batches.append(list(items))
        await self.release.wait()
        if self.fail:
            raise ConnectionError("down")
        doubled = [2 * i for i in items]
        return doubled[:-1] if self.short else doubled


async def test_callers_of_one_turn_share_a_batch_in_order() -> None:
    fn = Doubler()
    coalescer = Coalescer(fn, max_batch=100)
    assert await asyncio.gather(*(coalescer.submit(i) for i in range(5))) == [0, 2, 4, 6, 8]
    assert fn.batches == [[0, 1, 2, 3, 4]]
    assert await coalescer.submit(7) == 14  # a lone caller is not kept waiting for company
    assert fn.batches[-1] == [7]


async def test_batches_never_exceed_their_size() -> None:
    fn = Doubler()
    coalescer = Coalescer(fn, max_batch=2)
    assert await asyncio.gather(*(coalescer.submit(i) for i in range(5))) == [0, 2, 4, 6, 8]
    assert fn.batches == [[0, 1], [2, 3], [4]]


async def test_an_error_reaches_every_caller_of_the_batch() -> None:
    coalescer = Coalescer(Doubler(fail=True), max_batch=10)
    results = await asyncio.gather(*(coalescer.submit(i) for i in range(3)), return_exceptions=True)
    assert all(isinstance(r, ConnectionError) for r in results)


async def test_a_batch_function_that_loses_results_is_an_error_not_a_mismatch() -> None:
    coalescer = Coalescer(Doubler(short=True), max_batch=10)
    results = await asyncio.gather(*(coalescer.submit(i) for i in range(3)), return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results)


async def test_a_caller_that_leaves_does_not_disturb_the_others() -> None:
    fn = Doubler()
    fn.release.clear()
    coalescer = Coalescer(fn, max_batch=10)
    leaving = asyncio.ensure_future(coalescer.submit(1))
    staying = asyncio.ensure_future(coalescer.submit(2))
    await asyncio.sleep(0.01)
    assert fn.batches == [[1, 2]]
    leaving.cancel()
    fn.release.set()
    assert await staying == 4
    assert leaving.cancelled()


def test_a_batch_size_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="max_batch"):
        Coalescer(Doubler(), max_batch=0)
