"""The blocklist's matching: what counts as the same text, what a term and a regex match, how
a slow pattern is bounded, and what an admin may add."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime

import aiosqlite
import pytest

from bot.core.blocklist import (
    MAX_ENTRIES,
    MAX_PATTERN_LENGTH,
    MAX_TERM_LENGTH,
    BlocklistService,
    Hit,
    Matcher,
    compile_regex,
)
from bot.core.errors import InvalidRequest, PromptBlocked
from bot.core.storage.blocklist import BlocklistRepository
from bot.core.storage.protocols import BlocklistEntry, BlocklistKind
from bot.core.text import normalise
from tests.factories import A_MEMBER, GUILD_ID, USER_ID

CATASTROPHIC = r"(a+)+$"
# Long enough that backtracking through it would outlast any test run many times over.
LONG_RUN_OF_A = "a" * 50_000 + "!"
FULL_WIDTH_FOO = "\uff26\uff2f\uff2f"


def entry(text: str, kind: BlocklistKind = "term", entry_id: int = 1) -> BlocklistEntry:
    stored = normalise(text) if kind == "term" else text
    return BlocklistEntry(
        id=entry_id, kind=kind, text=stored, added_by=USER_ID, added_at=datetime.now(UTC)
    )


def blocks(prompt: str, *entries: BlocklistEntry) -> bool:
    return Matcher(entries).find([normalise(prompt)]) is not None


@pytest.fixture
def service(connection: aiosqlite.Connection) -> BlocklistService:
    return BlocklistService(repository=BlocklistRepository(connection))


# ----------------------------------------------------------------------- normalisation


@pytest.mark.parametrize(
    "written",
    [
        "F\u200bO\u200bO",  # zero-width spaces
        "f\u200co\u200do",  # zero-width non-joiner and joiner
        "f\u2060o\ufeffo",  # word joiner and byte order mark
        "f\u00ado\u00ado",  # soft hyphens
        "f\u202eo\u2066o",  # bidirectional controls (category Cf)
        "f\ufe0fo\ufe0fo",  # variation selectors
        FULL_WIDTH_FOO,
        "FoO",
    ],
)
def test_disguised_spellings_normalise_to_the_plain_word(written: str) -> None:
    assert normalise(written) == "foo"


def test_composed_and_decomposed_accents_normalise_alike() -> None:
    assert normalise("cafe\u0301") == normalise("café") == "café"


def test_an_invisible_character_between_a_letter_and_its_accent_does_not_keep_them_apart() -> None:
    assert normalise("cafe\u200b\u0301") == "café"


def test_case_folding_goes_beyond_lower_case() -> None:
    assert normalise("STRASSE") == normalise("Straße") == "strasse"


def test_runs_of_whitespace_of_any_kind_are_one_space() -> None:
    assert normalise("  red\t\n\u3000fox\u00a0 ") == "red fox"


def test_invisible_letters_that_is_blank_knows_are_removed() -> None:
    assert normalise("f\u3164o\u2800o") == "foo"


# ----------------------------------------------------------------------- terms and regexes


@pytest.mark.parametrize(
    "prompt",
    ["foo", "a FOO bar", "a f\u200bo\u200bo bar", f"{FULL_WIDTH_FOO}!", "(foo)", "bar,foo"],
)
def test_a_term_matches_as_a_whole_word_however_it_is_written(prompt: str) -> None:
    assert blocks(prompt, entry("foo"))


@pytest.mark.parametrize("prompt", ["foobar", "a barfoo", "fooé"])
def test_a_term_does_not_match_inside_a_longer_word(prompt: str) -> None:
    assert not blocks(prompt, entry("foo"))


@pytest.mark.parametrize("prompt", ["_foo_", "foo_bar", "foo2", "1foo"])
def test_underscores_and_digits_around_a_term_do_not_hide_it(prompt: str) -> None:
    """The image service still reads "foo" in them."""
    assert blocks(prompt, entry("foo"))


def test_an_invisible_khmer_vowel_inside_a_term_does_not_hide_it() -> None:
    assert blocks("f\u17b4oo", entry("foo"))


@pytest.mark.parametrize("pattern", ["(?:x{4000}){4000}", "(?:x{100}){100}{2}", "a{101}"])
def test_a_regex_whose_repeat_counts_would_make_compiling_slow_is_refused(pattern: str) -> None:
    with pytest.raises(InvalidRequest, match="Repeat counts"):
        compile_regex(pattern)


def test_a_term_as_written_by_the_admin_is_normalised_too() -> None:
    assert blocks("a foo bar", entry("\uff26\uff2f\u200b\uff2f"))


def test_a_phrase_matches_across_any_whitespace() -> None:
    assert blocks("a red\n\tfox", entry("Red Fox"))


def test_a_term_in_a_script_without_spaces_matches_inside_a_sentence() -> None:
    assert blocks("黒い猫と犬", entry("猫"))


def test_a_regex_matches_anywhere_in_the_normalised_prompt() -> None:
    assert blocks("a F\u200bOOBAR", entry(r"foo\w*", "regex"))


def test_a_regex_written_in_capitals_still_matches() -> None:
    assert blocks("a foobar", entry("FOO", "regex"))


def test_the_negative_prompt_is_checked_too() -> None:
    found = Matcher([entry("foo", entry_id=7)]).find(["a red fox", normalise("no FOO")])

    assert found == Hit(7)


def test_a_clean_prompt_matches_nothing() -> None:
    assert not blocks("a red fox", entry("foo"), entry("ba[rz]", "regex", entry_id=2))


# ----------------------------------------------------------------------- the time bound


def test_a_catastrophic_regex_is_stopped_by_the_time_bound() -> None:
    matcher = Matcher([entry(CATASTROPHIC, "regex")])

    found = matcher.find([LONG_RUN_OF_A], budget=0.01)

    assert found == Hit(1, timed_out=True)


def test_the_time_bound_is_shared_by_every_entry_of_the_check() -> None:
    """Every search gets only what is left: a budget spent before the last entry stops it."""
    ticks: Iterator[float] = iter([0.0, 0.0, 0.5, 2.0])
    matcher = Matcher([entry("bar"), entry("baz", entry_id=2), entry("qux", entry_id=3)])

    found = matcher.find(["a red fox"], budget=1.0, timer=lambda: next(ticks))

    assert found == Hit(3, timed_out=True)


async def test_a_prompt_the_check_runs_out_of_time_on_is_refused(
    connection: aiosqlite.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    service = BlocklistService(repository=BlocklistRepository(connection), budget=0.01)
    added = await service.add(GUILD_ID, USER_ID, "regex", CATASTROPHIC)

    with caplog.at_level(logging.WARNING), pytest.raises(PromptBlocked):
        await service.check(A_MEMBER, LONG_RUN_OF_A)

    assert f"blocklist entry {added.id} of guild {GUILD_ID} ran out of time" in caplog.text


# ----------------------------------------------------------------------- the service


async def test_a_blocked_prompt_is_refused_without_naming_the_entry(
    service: BlocklistService,
) -> None:
    await service.add(GUILD_ID, USER_ID, "term", "foo")

    with pytest.raises(PromptBlocked) as refused:
        await service.check(A_MEMBER, "a FOO bar")

    assert "foo" not in refused.value.user_message.lower()
    assert "Nothing was queued or charged." in refused.value.user_message


async def test_the_match_is_logged_with_guild_member_and_entry_but_not_the_prompt(
    service: BlocklistService, caplog: pytest.LogCaptureFixture
) -> None:
    added = await service.add(GUILD_ID, USER_ID, "term", "foo")

    with caplog.at_level(logging.INFO), pytest.raises(PromptBlocked):
        await service.check(A_MEMBER, "a secret foo prompt")

    assert f"entry {added.id} of guild {GUILD_ID} refused a prompt of member {USER_ID}" in (
        caplog.text
    )
    assert "secret" not in caplog.text


async def test_another_servers_blocklist_does_not_apply(service: BlocklistService) -> None:
    await service.add(GUILD_ID + 1, USER_ID, "term", "foo")

    await service.check(A_MEMBER, "a foo bar")


async def test_an_added_entry_applies_to_the_next_check(service: BlocklistService) -> None:
    await service.check(A_MEMBER, "a foo bar")  # caches the empty list
    await service.add(GUILD_ID, USER_ID, "term", "foo")

    with pytest.raises(PromptBlocked):
        await service.check(A_MEMBER, "a foo bar")


async def test_a_removed_entry_no_longer_applies(service: BlocklistService) -> None:
    added = await service.add(GUILD_ID, USER_ID, "term", "foo")
    with pytest.raises(PromptBlocked):
        await service.check(A_MEMBER, "a foo bar")

    await service.remove(GUILD_ID, USER_ID, added.id)

    await service.check(A_MEMBER, "a foo bar")


async def test_a_term_is_stored_as_it_is_matched(service: BlocklistService) -> None:
    added = await service.add(GUILD_ID, USER_ID, "term", "  \uff26\uff2f\u200b\uff2f ")

    assert added.text == "foo"


async def test_the_same_term_written_two_ways_is_refused_as_a_duplicate(
    service: BlocklistService,
) -> None:
    await service.add(GUILD_ID, USER_ID, "term", "foo")

    with pytest.raises(InvalidRequest, match="already on this server's blocklist"):
        await service.add(GUILD_ID, USER_ID, "term", "F\u200bOO")


async def test_removing_an_entry_of_another_server_is_refused(service: BlocklistService) -> None:
    added = await service.add(GUILD_ID + 1, USER_ID, "term", "foo")

    with pytest.raises(InvalidRequest, match=f"no entry #{added.id}"):
        await service.remove(GUILD_ID, USER_ID, added.id)


# ----------------------------------------------------------------------- what may be added


@pytest.mark.parametrize("pattern", ["(unclosed", "[z-a]", "a{2,1}", "*"])
def test_an_invalid_regex_is_refused_with_the_reason(pattern: str) -> None:
    with pytest.raises(InvalidRequest, match="not a valid regular expression"):
        compile_regex(pattern)


@pytest.mark.parametrize("pattern", [".*", "x?", "^", "(foo)?"])
def test_a_regex_that_matches_an_empty_prompt_is_refused(pattern: str) -> None:
    with pytest.raises(InvalidRequest, match="would refuse every prompt"):
        compile_regex(pattern)


async def test_an_invalid_regex_is_not_added(service: BlocklistService) -> None:
    with pytest.raises(InvalidRequest):
        await service.add(GUILD_ID, USER_ID, "regex", "(unclosed")

    assert await service.entries(GUILD_ID) == []


async def test_a_term_of_only_invisible_characters_is_refused(service: BlocklistService) -> None:
    with pytest.raises(InvalidRequest, match="empty"):
        await service.add(GUILD_ID, USER_ID, "term", "\u200b\u200b")


async def test_a_term_over_the_length_cap_is_refused(service: BlocklistService) -> None:
    with pytest.raises(InvalidRequest, match=f"at most {MAX_TERM_LENGTH} characters"):
        await service.add(GUILD_ID, USER_ID, "term", "x" * (MAX_TERM_LENGTH + 1))


async def test_a_regex_over_the_length_cap_is_refused(service: BlocklistService) -> None:
    with pytest.raises(InvalidRequest, match=f"at most {MAX_PATTERN_LENGTH} characters"):
        await service.add(GUILD_ID, USER_ID, "regex", "x" * (MAX_PATTERN_LENGTH + 1))


async def test_a_full_blocklist_refuses_one_more_entry(service: BlocklistService) -> None:
    for number in range(MAX_ENTRIES):
        await service.add(GUILD_ID, USER_ID, "term", f"word{number}")

    with pytest.raises(InvalidRequest, match=f"full \\({MAX_ENTRIES} entries\\)"):
        await service.add(GUILD_ID, USER_ID, "term", "one more")

    assert len(await service.entries(GUILD_ID)) == MAX_ENTRIES
