from __future__ import annotations

import random

import pytest

from bot.core.queue_index import QueueIndex
from bot.core.scheduling import ServiceHistory, Slot, fair_order


class Model:
    """The queue as plain lists, ordered by ``fair_order`` itself: the oracle."""

    def __init__(self) -> None:
        self.waiting: dict[int, Slot] = {}
        self.running: dict[int, Slot] = {}
        self.history = ServiceHistory()
        self.index = QueueIndex(self.history)

    def order(self) -> list[int]:
        return [
            slot.job_id
            for slot in fair_order(
                list(self.waiting.values()), list(self.running.values()), self.history
            )
        ]


def random_changes(rng: random.Random, model: Model, steps: int) -> None:
    next_id = 1
    for _ in range(steps):
        action = rng.choice(["add", "add", "add", "start", "finish", "drop", "resume", "requeue"])
        if action in ("add", "resume", "requeue"):
            # "requeue" puts back an older id, as a job sent back to the queue would be.
            job_id = rng.randrange(1, next_id) if action == "requeue" and next_id > 1 else next_id
            if job_id in model.waiting or job_id in model.running:
                continue
            next_id = max(next_id, job_id + 1)
            slot = Slot(job_id, rng.randrange(4), rng.randrange(5), "replicate")
            if action == "resume":
                model.running[job_id] = slot
                model.index.run(slot)
            else:
                model.waiting[job_id] = slot
                model.index.add(job_id, slot.guild_id, slot.user_id)
        elif action == "start" and model.waiting:
            # Mostly the next in order, as the dispatcher would; sometimes another (a provider
            # limit can hold the first back).
            order = model.order()
            job_id = order[0] if rng.random() < 0.7 else rng.choice(order)
            slot = model.waiting.pop(job_id)
            model.running[job_id] = slot
            model.index.start(slot)
        elif action == "finish" and model.running:
            job_id = rng.choice(list(model.running))
            del model.running[job_id]
            model.index.finish(job_id)
        elif action == "drop" and model.waiting:
            job_id = rng.choice(list(model.waiting))
            del model.waiting[job_id]
            assert model.index.drop(job_id)


@pytest.mark.parametrize("seed", range(12))
def test_the_index_orders_the_queue_exactly_as_fair_order_does(seed: int) -> None:
    rng = random.Random(seed)
    model = Model()
    for _ in range(40):
        random_changes(rng, model, 10)
        assert [entry.job_id for entry in model.index.order()] == model.order()


@pytest.mark.parametrize("seed", range(12))
def test_every_position_is_the_jobs_place_in_the_fair_order(seed: int) -> None:
    rng = random.Random(seed)
    model = Model()
    for _ in range(40):
        random_changes(rng, model, 10)
        expected = {job_id: place for place, job_id in enumerate(model.order(), 1)}
        assert {job_id: model.index.position(job_id) for job_id in model.waiting} == expected


def test_a_job_that_is_not_waiting_has_no_position() -> None:
    index = QueueIndex()
    index.add(1, 10, 100)
    index.start(Slot(1, 10, 100, "replicate"))

    assert index.position(1) is None
    assert index.position(2) is None


def test_members_take_turns_ahead_of_a_member_with_many_jobs() -> None:
    index = QueueIndex()
    for job_id in range(1, 11):
        index.add(job_id, 10, 100)  # one member queues ten
    index.add(11, 10, 200)  # another member queues one after them

    assert index.position(11) == 2
    assert index.position(10) == 11


def test_a_finished_job_frees_its_members_round() -> None:
    index = QueueIndex()
    index.run(Slot(1, 10, 100, "replicate"))  # member 100 has a job running
    index.add(2, 10, 100)
    index.add(3, 10, 200)
    assert index.position(2) == 2

    index.finish(1)

    assert index.position(2) == 1
