"""Each server's blocklist: terms and regular expressions refused in prompts (issue 11).

Both the prompts and the terms are compared normalised (``bot.core.text.normalise``), so
"FOO" with zero-width spaces between its letters, and "FOO" in full-width letters, are "foo".
The check runs in ``JobService.submit``, the one path of /imagine and of the result buttons,
before anything is queued or charged.

Choices, and why:

- A term matches as a whole word (``foo`` is refused in "a foo bar", not in "foobar"), so a
  short term does not refuse innocent words that contain it (the Scunthorpe problem). An admin
  who wants substrings writes a regex (``foo\\w*``). Where a term's first or last letter is of
  a script written without spaces (Chinese, Japanese, Thai...), that edge needs no boundary:
  there, words are not set apart.
- A regex runs against the normalised text, case-insensitively, and always with a time bound
  shared by the whole check (``MATCH_BUDGET_SECONDS``), so a pathological pattern cannot stall
  the bot, which checks on its event loop.
- A check that runs out of time counts as a match: the prompt is refused. The admin wrote the
  pattern to keep something out, and a prompt it cannot decide on is not known to be clean;
  letting it through would make any slow pattern a way around the list (a long enough prompt
  would always pass). The member can reword, nothing was charged, and the timeout is logged at
  WARNING with the entry's id so the admin can be told to fix or remove it.
- At most ``MAX_ENTRIES`` entries per server, each at most ``MAX_TERM_LENGTH`` (terms) or
  ``MAX_PATTERN_LENGTH`` (regexes) characters: every submission is checked against every
  entry, so the list's size is the check's cost; and the list must stay readable in Discord.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import regex

from bot.core.domain import Member
from bot.core.errors import InvalidRequest, PromptBlocked
from bot.core.storage.protocols import AuditFields, BlocklistEntry, BlocklistKind, BlocklistStore
from bot.core.text import normalise

log = logging.getLogger(__name__)

MAX_ENTRIES = 100
MAX_TERM_LENGTH = 100
MAX_PATTERN_LENGTH = 300
# The whole check's time for its regexes, prompt and negative prompt together: far above what
# any sane pattern needs on the longest prompt (microseconds), far below Discord's 3 s.
MATCH_BUDGET_SECONDS = 0.05

# Scripts written without spaces between words: a word boundary means nothing there.
_UNSPACED = regex.compile(r"[\p{Han}\p{Hiragana}\p{Katakana}\p{Thai}\p{Lao}\p{Khmer}\p{Myanmar}]")
_LETTER = regex.compile(r"[\p{L}\p{M}]")
# ``{n}``, ``{n,}`` and ``{n,m}``; see _check_repeats.
_COUNTED_REPEAT = regex.compile(r"\{(\d+)(?:,(\d*))?\}")
MAX_REPEAT = 100
MAX_REPEAT_PRODUCT = 10_000
_REGEX_FLAGS = regex.IGNORECASE | regex.FULLCASE


def term_pattern(term: str) -> regex.Pattern[str]:
    """A normalised term as a whole word: no letter (or mark) right before or after it, at an
    edge that is itself a letter, unless that edge is of a script without spaces. Digits and
    underscores are not letters here, so ``_foo_`` and ``foo1`` still say "foo" to the image
    service and are refused, while "foobar" is another word."""

    def bounded(char: str) -> bool:
        return bool(_LETTER.match(char)) and not _UNSPACED.match(char)

    before = r"(?<![\p{L}\p{M}])" if bounded(term[0]) else ""
    after = r"(?![\p{L}\p{M}])" if bounded(term[-1]) else ""
    return regex.compile(before + regex.escape(term) + after)


def _check_repeats(pattern: str) -> None:
    """Refuse counted repeats big enough to make compiling itself slow: compiling runs on the
    event loop with no time bound (``(?:x{4000}){4000}``, 17 characters, takes tens of
    seconds and gigabytes). Each count may be at most MAX_REPEAT and all of them multiplied at
    most MAX_REPEAT_PRODUCT (a bound on nesting that also refuses a few harmless patterns)."""
    product = 1
    for low, high in _COUNTED_REPEAT.findall(pattern):
        biggest = max(int(low), int(high) if high else 0)
        product *= max(biggest, 1)
        if biggest > MAX_REPEAT or product > MAX_REPEAT_PRODUCT:
            raise InvalidRequest(
                f"Repeat counts in a regular expression may be at most {MAX_REPEAT} (and "
                f"{MAX_REPEAT_PRODUCT} multiplied together). Nothing was added."
            )


def compile_regex(pattern: str, *, timeout: float = MATCH_BUDGET_SECONDS) -> regex.Pattern[str]:
    """An admin's pattern compiled as the check runs it, or InvalidRequest saying why not.

    A pattern that matches an empty prompt would refuse every prompt (``.*``, ``x?``): that is
    a mistake, not a rule.
    """
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise InvalidRequest(
            f"A regular expression may be at most {MAX_PATTERN_LENGTH} characters long."
        )
    _check_repeats(pattern)
    try:
        compiled = regex.compile(pattern, _REGEX_FLAGS)
    except (regex.error, ValueError, OverflowError) as error:
        raise InvalidRequest(
            f"That is not a valid regular expression ({error}). Nothing was added."
        ) from error
    try:
        matches_nothing = compiled.search("", timeout=timeout) is not None
    except TimeoutError:
        matches_nothing = True
    if matches_nothing:
        raise InvalidRequest(
            "That regular expression matches an empty prompt, so it would refuse every prompt. "
            "Nothing was added."
        )
    return compiled


@dataclass(frozen=True, slots=True)
class Hit:
    """The entry that refused a text; ``timed_out``: the check ran out of time at it."""

    entry_id: int
    timed_out: bool = False
    kind: str = field(default="term", compare=False)  # the entry's, for the mod log


class Matcher:
    """A guild's entries compiled once, terms first (they are cheap and cannot be slow)."""

    def __init__(self, entries: Iterable[BlocklistEntry]) -> None:
        ordered = sorted(entries, key=lambda entry: (entry.kind != "term", entry.id))
        # Each entry's kind, which the mod log names beside its id.
        self._kinds: dict[int, str] = {entry.id: entry.kind for entry in ordered}
        self._patterns = [
            (
                entry.id,
                term_pattern(entry.text)
                if entry.kind == "term"
                else regex.compile(entry.text, _REGEX_FLAGS),
            )
            for entry in ordered
        ]

    def __len__(self) -> int:
        return len(self._patterns)

    def find(
        self,
        texts: Iterable[str],
        *,
        budget: float = MATCH_BUDGET_SECONDS,
        timer: Callable[[], float] = time.monotonic,
    ) -> Hit | None:
        """The first entry found in one of the (normalised) texts, or None.

        Every search gets the time left of ``budget``, so the whole check ends within it
        however many entries and texts there are; running out counts as a match (see the
        module's docstring).
        """
        deadline = timer() + budget
        for text in texts:
            for entry_id, pattern in self._patterns:
                left = deadline - timer()
                if left <= 0:
                    return Hit(entry_id, timed_out=True, kind=self._kinds[entry_id])
                try:
                    if pattern.search(text, timeout=left) is not None:
                        return Hit(entry_id, kind=self._kinds[entry_id])
                except TimeoutError:
                    return Hit(entry_id, timed_out=True, kind=self._kinds[entry_id])
        return None


def normalised_term(term: str) -> str:
    """A term as it is stored and matched, or InvalidRequest when it is empty or too long."""
    text = normalise(term)
    if not text:
        raise InvalidRequest("That term is empty once invisible characters are left out.")
    if len(text) > MAX_TERM_LENGTH:
        raise InvalidRequest(f"A term may be at most {MAX_TERM_LENGTH} characters long.")
    return text


class BlocklistService:
    """Every change to a guild's blocklist goes through here, which is what lets it keep each
    guild's compiled matcher in memory: it is used on every submission and changed only by an
    admin (as for ``QuotaService``'s policies, for one bot process)."""

    def __init__(
        self,
        *,
        repository: BlocklistStore,
        clock: Callable[[], float] = time.time,
        budget: float = MATCH_BUDGET_SECONDS,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        self._repository = repository
        self._clock = clock
        self._budget = budget
        self._timer = timer
        self._matchers: dict[int, Matcher] = {}
        # The read of a guild's list in progress; a change drops it from here so that what it
        # read (which may predate the change) is not cached.
        self._reading: dict[int, asyncio.Task[Matcher]] = {}

    async def check(self, member: Member, *texts: str | None) -> None:
        """Raise PromptBlocked when one of the texts (the prompt, the negative prompt) holds
        one of the guild's entries. The log names the guild, the member and the entry, never
        the prompt."""
        matcher = await self._matcher(member.guild_id)
        if not len(matcher):
            return
        hit = matcher.find(
            (normalise(text) for text in texts if text), budget=self._budget, timer=self._timer
        )
        if hit is None:
            return
        if hit.timed_out:
            log.warning(
                "blocklist entry %d of guild %d ran out of time on a prompt of member %d; "
                "refused as a match (the pattern may need fixing)",
                hit.entry_id,
                member.guild_id,
                member.user_id,
            )
        else:
            log.info(
                "blocklist entry %d of guild %d refused a prompt of member %d",
                hit.entry_id,
                member.guild_id,
                member.user_id,
            )
        raise PromptBlocked(entry_id=hit.entry_id, kind=hit.kind)

    async def entries(self, guild_id: int) -> list[BlocklistEntry]:
        return await self._repository.entries(guild_id)

    async def add(
        self, guild_id: int, actor_id: int, kind: BlocklistKind, text: str
    ) -> BlocklistEntry:
        """Add a term (stored normalised) or a regex (validated); InvalidRequest when it is
        not valid, already listed, or the list is full."""
        entry = normalised_term(text) if kind == "term" else text
        if kind == "regex":
            compile_regex(entry, timeout=self._budget)
        async with self._changing(guild_id):
            added = await self._repository.add(
                guild_id,
                kind,
                entry,
                max_entries=MAX_ENTRIES,
                audit=self._audit(actor_id, "blocklist-add"),
            )
        if added == "full":
            raise InvalidRequest(
                f"This server's blocklist is full ({MAX_ENTRIES} entries). Remove one first, "
                "or combine several terms into one regular expression."
            )
        if added == "duplicate":
            raise InvalidRequest("That is already on this server's blocklist.")
        return added

    async def remove(self, guild_id: int, actor_id: int, entry_id: int) -> BlocklistEntry:
        async with self._changing(guild_id):
            removed = await self._repository.remove(
                guild_id, entry_id, audit=self._audit(actor_id, "blocklist-remove")
            )
        if removed is None:
            raise InvalidRequest(
                f"This server's blocklist has no entry #{entry_id}. "
                "See /imagine-admin blocklist list."
            )
        return removed

    def _audit(self, actor_id: int, action: str) -> AuditFields:
        return AuditFields(actor_id=actor_id, action=action, details={}, now=self._clock())

    async def _matcher(self, guild_id: int) -> Matcher:
        """The guild's compiled entries, read from storage only when not in memory; a burst
        of submissions from a guild not yet cached waits for one read."""
        cached = self._matchers.get(guild_id)
        if cached is not None:
            return cached
        reading = self._reading.get(guild_id)
        if reading is None:
            reading = asyncio.create_task(self._read(guild_id))
            self._reading[guild_id] = reading
        # Shielded: a caller that gives up does not cancel the read others are waiting for.
        return await asyncio.shield(reading)

    async def _read(self, guild_id: int) -> Matcher:
        try:
            matcher = Matcher(await self._repository.entries(guild_id))
            if self._reading.get(guild_id) is asyncio.current_task():
                self._matchers[guild_id] = matcher
            return matcher
        finally:
            if self._reading.get(guild_id) is asyncio.current_task():
                del self._reading[guild_id]

    @asynccontextmanager
    async def _changing(self, guild_id: int) -> AsyncIterator[None]:
        """Around a change: the cached matcher and any read in progress are forgotten once it
        is over, whether it took effect or failed."""
        try:
            yield
        finally:
            self._matchers.pop(guild_id, None)
            self._reading.pop(guild_id, None)
