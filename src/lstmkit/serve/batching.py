"""Micro-batching of ``POST /v1/predict``: concurrent requests share one predictor call.

Requests wait in a bounded :class:`asyncio.Queue` (full: :class:`Overloaded`, answered 503). One
worker task takes the first waiting request and, when requests come in a burst (others already wait,
the last call served several, or this one came within ``max_wait`` of the one before), lets others join
for at most ``max_wait`` seconds (or until ``max_batch`` are there); a lone request is not held back. It groups them by equal options, and runs one
``predictor.predict(all items of the group, **options)`` per group in a thread, one predictor call at
a time (``lock``, shared with the streaming sessions). The outputs are split back in order.

The JSON inputs are converted (``convert``: JSON -> ``(items, single)``, e.g. DataFrames) and the
outputs made JSON in that thread too, so that the event loop only moves bytes.

If a group's call fails (one request's bad input fails the whole call), each of its requests runs
alone, so each gets its own answer or its own error. Requests whose options hold a ``seed`` are
never joined: with a seed, an item's output depends on its position in the call.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lstmkit.io import to_jsonable

PredictFn = Callable[..., Any]  # predictor.predict(items: list, **options) -> list, one output per item
ConvertFn = Callable[[Any], tuple[list[Any], bool]]  # JSON inputs -> (items, single)


class Overloaded(Exception):
    """The queue is full: the server answers 503."""


@dataclass(eq=False)  # a job is itself, whatever its inputs
class Job:
    """One request: its JSON inputs and options; once converted, its items and whether it wants
    one output (not a list)."""

    inputs: Any
    options: dict[str, Any]
    future: asyncio.Future[Any]
    items: list[Any] = field(default_factory=list)
    single: bool = False
    gap: float = float("inf")  # seconds since the request before it arrived

    @property
    def key(self) -> str | None:
        """Requests with equal keys share a call; None: this one runs alone."""
        if self.options.get("seed") is not None:
            return None
        return json.dumps(self.options, sort_keys=True, default=str)


class Batcher:
    """The queue and its worker; ``await submit(...)`` -> the request's outputs as JSON values."""

    def __init__(
        self,
        predict: PredictFn,
        convert: ConvertFn,
        lock: asyncio.Lock,
        *,
        max_batch: int = 32,
        max_wait: float = 0.002,
        max_queue: int = 1024,
        on_batch: Callable[[int], None] = lambda n: None,
    ):
        self.predict, self.convert, self.lock, self.on_batch = predict, convert, lock, on_batch
        self.max_batch, self.max_wait = max_batch, max_wait
        self.queue: asyncio.Queue[Job] = asyncio.Queue(maxsize=max_queue)
        self.full = asyncio.Event()  # set when a whole batch is waiting: stop waiting for more
        self.last_size = 1  # requests in the last call: > 1 means the server is busy
        self.last_arrival = -float("inf")

    async def submit(self, inputs: Any, options: dict[str, Any]) -> Any:
        """Queue one request and wait for its outputs as JSON values."""
        loop = asyncio.get_running_loop()
        job = Job(inputs, options, loop.create_future())
        job.gap, self.last_arrival = loop.time() - self.last_arrival, loop.time()
        try:
            self.queue.put_nowait(job)
        except asyncio.QueueFull:
            raise Overloaded(f"{self.queue.maxsize} requests are waiting; try again later") from None
        if self.queue.qsize() >= self.max_batch - 1:
            self.full.set()
        return await job.future

    async def run(self) -> None:
        """The worker: gather, group, predict, answer; forever (cancelled at shutdown)."""
        while True:
            jobs = await self.gather()
            for group in self.groups(jobs):
                try:
                    async with self.lock:
                        results = await asyncio.to_thread(self.run_group, group)
                except Exception as e:  # a bug here must not stop the worker: these requests get it
                    results = [e] * len(group)
                self.on_batch(len(group))
                for job, result in zip(group, results):
                    if job.future.done():  # the client went away
                        continue
                    if isinstance(result, BaseException):
                        job.future.set_exception(result)
                    else:
                        job.future.set_result(result)

    async def gather(self) -> list[Job]:
        """The first waiting request and those that join within ``max_wait`` (``max_batch`` at most)."""
        jobs = [await self.queue.get()]
        busy = not self.queue.empty() or self.last_size > 1 or jobs[0].gap < self.max_wait
        if busy and self.max_wait > 0 and self.queue.qsize() < self.max_batch - 1:
            self.full.clear()
            try:
                await asyncio.wait_for(self.full.wait(), self.max_wait)
            except asyncio.TimeoutError:
                pass
        while len(jobs) < self.max_batch and not self.queue.empty():
            jobs.append(self.queue.get_nowait())
        self.last_size = len(jobs)
        return [j for j in jobs if not j.future.done()]

    @staticmethod
    def groups(jobs: list[Job]) -> list[list[Job]]:
        """Jobs with equal options together, in order of arrival; a seeded job alone."""
        out: dict[Any, list[Job]] = {}
        for i, job in enumerate(jobs):
            key = job.key
            out.setdefault(key if key is not None else ("alone", i), []).append(job)
        return list(out.values())

    def run_group(self, jobs: list[Job]) -> list[Any]:
        """One predictor call for the whole group (in a worker thread): each job's JSON outputs,
        or the exception it answers with (its inputs' conversion error, or its call's)."""
        results: list[Any] = [None] * len(jobs)
        ready = []
        for k, job in enumerate(jobs):
            try:
                job.items, job.single = self.convert(job.inputs)
                ready.append(k)
            except Exception as e:
                results[k] = e
        if len(ready) == 1:
            results[ready[0]] = self.run_one(jobs[ready[0]])
        elif ready:
            group = [jobs[k] for k in ready]
            try:
                outputs = self.call([x for j in group for x in j.items], group[0].options)
            except Exception:  # find whose input it was: each alone
                outputs = None
            start = 0
            for k, job in zip(ready, group):
                n = len(job.items)
                results[k] = self.run_one(job) if outputs is None else self.shape(job, outputs[start : start + n])
                start += n
        return results

    def run_one(self, job: Job) -> Any:
        try:
            return self.shape(job, self.call(job.items, job.options))
        except Exception as e:
            return e

    def call(self, items: list[Any], options: dict[str, Any]) -> list[Any]:
        outputs = self.predict(items, **options)
        if not isinstance(outputs, list) or len(outputs) != len(items):
            got = len(outputs) if isinstance(outputs, list) else type(outputs).__name__
            raise RuntimeError(f"the predictor returned {got} outputs for {len(items)} inputs")
        return outputs

    @staticmethod
    def shape(job: Job, outputs: list[Any]) -> Any:
        return to_jsonable(outputs[0] if job.single else outputs)
