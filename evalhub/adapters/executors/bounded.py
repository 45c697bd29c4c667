"""What every executor does with its units: run them a bounded number at once, and on Ctrl-C
cancel every one (each reports itself interrupted) before raising KeyboardInterrupt."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable, Sequence

from evalhub.core.job import JobResults, JobSpec


async def run_bounded(
    jobs: Sequence[JobSpec],
    concurrency: int,
    run_one: Callable[[JobSpec], Awaitable[JobResults]],
) -> dict[str, JobResults]:
    """`run_one(job)` for every job, `concurrency` at once; results by fingerprint."""
    limiter = asyncio.Semaphore(concurrency)
    results: dict[str, JobResults] = {}

    async def guarded(job: JobSpec) -> None:
        async with limiter:
            results[job.fingerprint] = await run_one(job)

    tasks = [asyncio.create_task(guarded(job)) for job in jobs]
    # Ctrl-C stops every unit. Our own handler, not asyncio.run's: it also holds when a unit
    # finishes in the same instant (3.11's wait_for can swallow that cancellation) and when
    # the loop was busy recording when the signal came.
    interrupted = False

    def on_interrupt() -> None:
        nonlocal interrupted
        interrupted = True
        for task in tasks:
            task.cancel()

    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
        loop.add_signal_handler(signal.SIGINT, on_interrupt)
    try:
        await asyncio.gather(*tasks)
    except asyncio.CancelledError:
        interrupted = True
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.remove_signal_handler(signal.SIGINT)
    if interrupted:
        raise KeyboardInterrupt
    return results
