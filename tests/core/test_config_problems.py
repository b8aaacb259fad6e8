"""Each kind of configuration problem, as the sentence an operator reads."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
from pydantic import BaseModel, Field, ValidationError, field_validator

from bot.core.config_loading import ConfigInvalid, load_settings
from bot.core.config_problems import describe_errors


def problems_of(tmp_path: Path, toml: str) -> tuple[Path, list[str]]:
    path = tmp_path / "config.toml"
    path.write_text(toml, encoding="utf-8")
    with pytest.raises(ConfigInvalid) as caught:
        load_settings(path)
    return path, caught.value.problems


def test_an_unknown_table_name_is_one_problem_with_a_suggestion(tmp_path: Path) -> None:
    # [tiers.fastt] lacks credits too; that is no second problem to fix.
    path, problems = problems_of(tmp_path, '[tiers.fastt]\nproviders = ["replicate"]\n')
    assert problems == [
        f'{path}, table [tiers.fastt]: unknown name "fastt" — did you mean "fast"? '
        "(known: fast, standard, ultra)"
    ]


@pytest.mark.parametrize(
    ("toml", "problem"),
    [
        pytest.param(
            "[webhook]\nlisten_prot = 1",
            ', table [webhook]: unknown key "listen_prot" — did you mean "listen_port"?',
            id="extra_forbidden",
        ),
        pytest.param(
            "[databse]\npath = 'x'",
            ": unknown table [databse] — did you mean [database]?",
            id="extra_forbidden-table",
        ),
        pytest.param(
            "[providers.a]\ntype = 'apikley'\npoll_intervals_seconds = [1, 2]",
            ", table [providers.a], key poll_intervals_seconds (item 3): is missing",
            id="missing",
        ),
        pytest.param(
            "[webhook]\nlisten_port = 'http'",
            ', table [webhook], key listen_port: must be a whole number (it is "http")',
            id="int_parsing",
        ),
        pytest.param(
            "[discord]\nmax_prompt_length = 1.5",
            ", table [discord], key max_prompt_length: must be a whole number (it is 1.5)",
            id="int_from_float",
        ),
        pytest.param(
            "[jobs]\npoll_max_seconds = 'soon'",
            ', table [jobs], key poll_max_seconds: must be a number (it is "soon")',
            id="float_parsing",
        ),
        pytest.param(
            "[discord]\nsync_commands = 'maybe'",
            ', table [discord], key sync_commands: must be true or false (it is "maybe")',
            id="bool_parsing",
        ),
        pytest.param(
            "[discord]\ntoken_env = 5",
            ", table [discord], key token_env: must be a string in double quotes (it is 5)",
            id="string_type",
        ),
        pytest.param(
            "webhook = 5",
            ", table [webhook]: must be a table (it is 5)",
            id="model_type",
        ),
        pytest.param(
            "[providers.a]\nimage_hosts = 'cdn.example.com'",
            ', table [providers.a], key image_hosts: must be a list (it is "cdn.example.com")',
            id="list_type",
        ),
        pytest.param(
            "[webhook]\nmax_body_bytes = 0",
            ", table [webhook], key max_body_bytes: must be more than 0 (it is 0)",
            id="greater_than",
        ),
        pytest.param(
            "[queue]\nmax_running_per_guild = 0",
            ", table [queue], key max_running_per_guild: must be at least 1 (it is 0)",
            id="greater_than_equal",
        ),
        pytest.param(
            "[queue]\nmax_queued_per_member = 5000",
            ", table [queue], key max_queued_per_member: must be at most 1000 (it is 5000)",
            id="less_than_equal",
        ),
        pytest.param(
            "[providers.a]\nwebhook_mode = 'sign'",
            ', table [providers.a], key webhook_mode: must be "signed" or "token" (it is "sign") '
            '— did you mean "signed"?',
            id="literal_error",
        ),
        pytest.param(
            "[providers.a]\nmodels = {fastt = 'm'}",
            ', table [providers.a], key models: unknown name "fastt" — did you mean "fast"? '
            "(known: fast, standard, ultra)",
            id="enum",
        ),
        pytest.param(
            "[providers.a]\ntype = 'aiml'",
            ', table [providers.a]: unknown type "aiml" — did you mean "aimlapi"? '
            "(known: replicate, aimlapi, apikley)",
            id="union_tag_invalid",
        ),
        pytest.param(
            "[webhook]\npublic_url = 'bot.example.com'",
            ', table [webhook], key public_url: must be a URL such as "https://example.com/v1" '
            '(it is "bot.example.com"): relative URL without a base',
            id="url_parsing",
        ),
        pytest.param(
            "[providers.a]\nbase_url = 'ftp://example.com'",
            ', table [providers.a], key base_url: must start with "http://" or "https://" '
            '(it is "ftp://example.com")',
            id="url_scheme",
        ),
        pytest.param(
            "[tiers.fast]\nproviders = []",
            ", table [tiers.fast], key providers: must have at least 1 item (it has 0)",
            id="too_short",
        ),
        pytest.param(
            "[providers.a]\ntype = 'apikley'\npoll_intervals_seconds = [1, 2, 3, 4]",
            ", table [providers.a], key poll_intervals_seconds: must have at most 3 items "
            "(it has 4)",
            id="too_long",
        ),
        pytest.param(
            "[providers.a]\nimage_hosts = ['cdn.example.com', 'BAD HOST']",
            ", table [providers.a], key image_hosts (item 2): must be a lowercase host name such "
            'as "cdn.example.com", "*.example.com" or "example.com:8443" (it is "BAD HOST")',
            id="string_pattern_mismatch",
        ),
    ],
)
def test_a_problem_is_a_sentence_naming_the_file_table_and_key(
    tmp_path: Path, toml: str, problem: str
) -> None:
    path, problems = problems_of(tmp_path, toml)
    assert problems == [f"{path}{problem}"]


class Limits(BaseModel):
    """Constraints the bot's settings do not use today, for the sentences they would get."""

    ratio: float = Field(default=0.5, lt=1)
    name: str = "bot"
    since: datetime.date = datetime.date(2025, 1, 1)

    @field_validator("name")
    @classmethod
    def _one_word(cls, value: str) -> str:
        if " " in value:
            raise ValueError("must be one word")
        return value


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        pytest.param({"ratio": 1}, "bot.toml, key ratio: must be less than 1 (it is 1)", id="lt"),
        pytest.param({"name": "my bot"}, "bot.toml, key name: must be one word", id="value_error"),
        pytest.param(
            {"since": "soon"},
            "bot.toml, key since: input should be a valid date or datetime, input is too short "
            '(it is "soon")',
            id="fallback",
        ),
    ],
)
def test_other_constraints_read_as_sentences_too(raw: dict[str, object], problem: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Limits.model_validate(raw)
    assert describe_errors(caught.value.errors(), Limits, "bot.toml") == [problem]


@pytest.mark.parametrize("value", ["5", '"x"', "[]", "[1]"])
def test_tiers_that_are_not_a_table_are_a_problem(tmp_path: Path, value: str) -> None:
    path, problems = problems_of(tmp_path, f"tiers = {value}\n")
    assert problems == [f"{path}, key tiers: must be a table (it is {value})"]


def test_a_key_removed_in_this_release_says_it_can_be_deleted(tmp_path: Path) -> None:
    path, problems = problems_of(
        tmp_path, '[providers.apikley]\ntype = "apikley"\ncallback_grace_seconds = 30\n'
    )
    assert problems == [
        f"{path}, table [providers.apikley], key callback_grace_seconds: was removed in this "
        "release and can be deleted (Apikley is polled on poll_intervals_seconds from the "
        "start, and a callback only cuts the wait short)"
    ]


WEBHOOK_KEYS = "(known keys: listen_host, listen_port, public_url, max_body_bytes)"
NOT_A_PORT = ', table [webhook], key listen_port: must be a whole number (it is "x")'
NOT_HTTP = (
    ', table [providers.b], key base_url: must start with "http://" or "https://" '
    '(it is "ftp://example.com")'
)


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        pytest.param(
            '[webhook]\n"[key]" = 1\nlisten_port = "x"\n',
            [f', table [webhook]: unknown key "[key]" {WEBHOOK_KEYS}', NOT_A_PORT],
            id="an-unknown-key",
        ),
        pytest.param(
            '[webhook]\n"[key]" = "webhook"\nlisten_port = "x"\n',
            [f', table [webhook]: unknown key "[key]" {WEBHOOK_KEYS}', NOT_A_PORT],
            id="an-unknown-key-whose-value-is-its-tables-name",
        ),
        pytest.param(
            '[providers."[key]"]\ntype = "nope"\n[providers.b]\nbase_url = "ftp://example.com"\n',
            [
                ', table [providers."[key]"]: unknown type "nope" (known: replicate, aimlapi, '
                "apikley)",
                NOT_HTTP,
            ],
            id="a-provider-of-unknown-type",
        ),
        pytest.param(
            'providers."[key]" = "providers"\n[providers.b]\nbase_url = "ftp://example.com"\n',
            [', table [providers."[key]"]: must be a table (it is "providers")', NOT_HTTP],
            id="a-provider-that-is-no-table",
        ),
    ],
)
def test_a_key_named_like_pydantics_key_marker_hides_no_other_problem(
    tmp_path: Path, toml: str, expected: list[str]
) -> None:
    path, problems = problems_of(tmp_path, toml)
    assert sorted(problems) == sorted(f"{path}{problem}" for problem in expected)
