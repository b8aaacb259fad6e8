"""Table tests of the pure fairness functions."""

from __future__ import annotations

import pytest

from bot.core.scheduling import ServiceHistory, Slot, fair_order, startable

A, B, C = 1, 2, 3  # members
G1, G2 = 10, 20  # guilds


def slot(job_id: int, guild: int = G1, user: int = A, provider: str = "replicate") -> Slot:
    return Slot(job_id, guild, user, provider)


@pytest.mark.parametrize(
    ("queued", "running", "expected"),
    [
        pytest.param([], [], [], id="empty queue"),
        pytest.param([slot(1), slot(2), slot(3)], [], [1, 2, 3], id="one member keeps FIFO order"),
        pytest.param(
            [slot(1), slot(2), slot(3), slot(4, user=B)],
            [],
            [1, 4, 2, 3],
            id="a second member does not wait behind ten of the first",
        ),
        pytest.param(
            [slot(1), slot(2, user=B), slot(3, user=C), slot(4), slot(5, user=B)],
            [],
            [1, 2, 3, 4, 5],
            id="three members take turns",
        ),
        pytest.param(
            [slot(5), slot(6, user=B)],
            [slot(1)],
            [6, 5],
            id="a member with a running job goes after one without",
        ),
        pytest.param(
            [slot(1), slot(2), slot(3), slot(4, guild=G2, user=B)],
            [],
            [1, 4, 2, 3],
            id="a busy guild does not starve another",
        ),
        pytest.param(
            [slot(3), slot(4, guild=G2, user=B)],
            [slot(1), slot(2, user=C)],
            [4, 3],
            id="the guild with fewer running jobs goes first",
        ),
    ],
)
def test_fair_order(queued: list[Slot], running: list[Slot], expected: list[int]) -> None:
    assert [s.job_id for s in fair_order(queued, running)] == expected


@pytest.mark.parametrize(
    ("order", "running", "per_guild", "per_provider", "expected"),
    [
        pytest.param([slot(1), slot(2)], [], 2, 8, [1, 2], id="room for both"),
        pytest.param([slot(1), slot(2)], [slot(9)], 2, 8, [1], id="guild limit counts running"),
        pytest.param(
            [slot(1), slot(2, guild=G2)],
            [slot(9)],
            1,
            8,
            [2],
            id="a full guild is skipped, the next guild starts",
        ),
        pytest.param(
            [slot(1), slot(2, guild=G2), slot(3, guild=G2, provider="proxy")],
            [slot(9, guild=G2)],
            5,
            2,
            [1, 3],
            id="provider limit counts all guilds",
        ),
    ],
)
def test_startable(
    order: list[Slot],
    running: list[Slot],
    per_guild: int,
    per_provider: int,
    expected: list[int],
) -> None:
    chosen = startable(
        order,
        running,
        max_running_per_guild=lambda _: per_guild,
        max_running_per_provider=per_provider,
    )
    assert [s.job_id for s in chosen] == expected


def test_within_a_round_the_member_served_longest_ago_goes_first() -> None:
    history = ServiceHistory()
    history.record(slot(1, user=A))  # A's first job ran and finished

    order = fair_order([slot(2, user=A), slot(3, user=A), slot(4, user=B)], [], history)

    assert [s.job_id for s in order] == [4, 2, 3]


def test_within_a_round_the_guild_served_longest_ago_goes_first() -> None:
    history = ServiceHistory()
    history.record(slot(1, guild=G1))

    order = fair_order([slot(2, guild=G1), slot(3, guild=G2, user=B)], [], history)

    assert [s.job_id for s in order] == [3, 2]
