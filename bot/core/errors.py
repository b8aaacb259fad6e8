"""The bot's error vocabulary.

Every error the core raises on purpose carries a ``user_message`` written for the member who
ran the command. The Discord boundary has exactly one table that turns these into replies; any
other exception is a bug and gets a generic reply with a reference id.
"""

from __future__ import annotations

from datetime import datetime


class BotError(Exception):
    """An expected failure with a message that is safe and useful to show in Discord."""

    user_message: str = "Something went wrong."

    def __init__(self, user_message: str | None = None, *, detail: str | None = None) -> None:
        if user_message is not None:
            self.user_message = user_message
        # ``detail`` is for logs only: it may hold provider text the member should not see.
        self.detail = detail
        super().__init__(detail or self.user_message)


class InvalidRequest(BotError):
    """The member's input cannot be accepted; nothing was stored or spent."""


class QueueFull(InvalidRequest):
    """A queue limit refused the job; nothing was stored or spent."""


class TierRestricted(InvalidRequest):
    """The guild opened this tier only to some roles."""

    def __init__(self, user_message: str, *, role_ids: frozenset[int]) -> None:
        super().__init__(user_message)
        self.role_ids = role_ids


class QuotaExceeded(InvalidRequest):
    """Not enough credits left in a period; ``resets_at`` says when more become available."""

    def __init__(self, user_message: str, *, resets_at: datetime | None) -> None:
        super().__init__(user_message)
        self.resets_at = resets_at


class PromptBlocked(InvalidRequest):
    """A server's blocklist refused the prompt or the negative prompt, before anything was
    queued or charged. The reply never says which entry matched: echoing it would teach the
    member how to get around it, and the entry is the admins' own text."""

    user_message = (
        "Your prompt uses a word this server does not allow. Please reword it. Nothing was "
        "queued or charged."
    )

    def __init__(self, *, entry_id: int, kind: str = "term") -> None:
        super().__init__(detail=f"blocklist entry {entry_id}")
        self.entry_id = entry_id
        # "term" or "regex": named in the mod log, never to the member.
        self.kind = kind


class ChannelNotAllowed(InvalidRequest):
    """The server lets /imagine and the result buttons work only in some channels, and this
    is not one of them; nothing was queued or charged. The message points at a few allowed
    channels as ``<#id>`` mentions, which Discord shows as links and which never ping."""

    # Enough to find one nearby; the whole list is for /imagine-admin channels list.
    NAMED = 3

    def __init__(self, *, allowed: frozenset[int]) -> None:
        named = sorted(allowed)[: self.NAMED]
        where = ", ".join(f"<#{channel}>" for channel in named)
        more = len(allowed) - len(named)
        if more:
            where += f" (and {more} more)"
        super().__init__(
            f"Images can't be made in this channel on this server. Please use {where}. "
            "Nothing was queued or charged."
        )
        self.allowed = allowed


class NotAllowed(BotError):
    user_message = "You need the Manage Server permission to do that."


class ProviderError(BotError):
    """A provider call failed. Subclasses say whether another provider could do better.

    ``provider_fault`` errors are about the provider (busy, down, misconfigured): they count
    against its health and a create moves on to the tier's next provider. The others are
    about the request (validation, safety): they would fail everywhere (issue 4).
    """

    user_message = "The image service had a problem. Please try again in a few minutes."
    provider_fault = True


class ProviderAuthError(ProviderError):
    user_message = (
        "The image service rejected the bot's API key. A server admin needs to check the "
        "bot's configuration."
    )


class ProviderOutOfCredits(ProviderAuthError):
    """The bot's own account at the provider ran dry (AIML 403, Apikley 402): nothing made."""

    user_message = (
        "The bot's account at the image service is out of credits. A server admin needs to "
        "top it up; you were not charged."
    )


class ProviderMisconfigured(ProviderError):
    """The provider does not serve this model or feature (a retired Imagen model, a feature
    disabled on the account: providers.md §0, §3.2); another provider may."""

    user_message = (
        "The image service is not set up for this request. A server admin needs to check the "
        "bot's configuration."
    )


class ProviderRejected(ProviderError):
    """The provider refused the request itself (HTTP 4xx validation); retrying cannot help."""

    user_message = "The image service refused this request."
    provider_fault = False


class ProviderRateLimited(ProviderError):
    """HTTP 429: nothing was created, so the same create may be sent again (providers.md §1.8)."""

    user_message = "The image service is busy right now. Please try again in a minute."

    def __init__(self, retry_after: float | None = None, *, detail: str | None = None) -> None:
        super().__init__(detail=detail)
        self.retry_after = retry_after


class ProviderUnavailable(ProviderError):
    """HTTP 5xx, an HTML error page or a refused connection."""

    def __init__(self, *, detail: str | None = None, request_was_sent: bool = True) -> None:
        super().__init__(detail=detail)
        # A refused connection means the request never reached the provider, so a create can
        # be retried without risking a second charge; anything else may have been processed.
        self.request_was_sent = request_was_sent


class ProviderTimeout(ProviderError):
    """The provider did not answer in time; whatever was sent may still have been processed."""

    user_message = "The image service did not answer in time. Please try again later."


class CreatesNotListed(ProviderError):
    """The provider cannot say whether it made a job whose create answer was lost (it keeps no
    list of jobs, or the list does not reach back far enough)."""


class GenerationFailed(ProviderError):
    """The provider accepted the job and then reported that it failed."""

    user_message = "The image service could not generate this image. Please try again."
    provider_fault = False


class SafetyBlocked(GenerationFailed):
    user_message = (
        "The image service's safety filter blocked this prompt or its result. Try rewording "
        "it, or ask for a more lenient safety level if the server allows it."
    )


class DeadlineExceeded(ProviderError):
    user_message = "The image took too long to generate and was canceled. Please try again."
    provider_fault = False


class ResultUnavailable(ProviderError):
    """The image finished but could not be fetched (expired after the provider's retention)."""

    user_message = (
        "The image was generated but could not be downloaded before the service deleted it."
    )


class NotAnImage(ResultUnavailable):
    """The provider's answer named a file that is not a whole JPEG, PNG or WebP image."""

    user_message = (
        "The image service sent back something that is not an image, so nothing was posted. "
        "You were not charged."
    )


class UnsafeImageSource(ResultUnavailable):
    """The provider's answer pointed at an address the bot never fetches from (issue 8)."""

    user_message = (
        "The image service pointed the bot at an address it does not fetch images from, so "
        "nothing was fetched. You were not charged; the bot's operator can see why in the log."
    )


class ChannelUnavailable(BotError):
    """The job's channel is gone or closed to the bot; the member may still be reached."""


class DeliveryFailed(BotError):
    """No Discord destination accepted the result (deleted channel, missing permissions...)."""

    user_message = "The result could not be posted in Discord."


class CallbackRejected(Exception):
    """A provider callback that must change nothing; ``status`` is the HTTP answer.

    Not a BotError: nobody in Discord ever sees it, the provider gets the status code.
    """

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
