"""Why a job is where it is, as typed codes; the words beside them are for people only.

Lifecycle rules (which jobs come back by themselves, which retry path the operator gets) and
the spending caps (fresh assets, internal errors) key on these codes, stored in the ledger's
``reason_code`` columns, so rewording a message can never switch a rule or a cap off.
"""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    """The code of one transition's (or one retry's) reason."""

    # intake and work done without the API
    CONTENT_REFUSED = "content_refused"
    REUSED = "reused"
    ADOPTED = "adopted"
    SOURCE_BACK = "source_back"
    # the source under us
    VANISHED = "vanished"
    SOURCE_CHANGED = "source_changed"
    ROOT_UNAVAILABLE = "root_unavailable"
    # waits that spend no retry
    AUTH_REJECTED = "auth_rejected"
    RATE_LIMITED = "rate_limited"
    DAILY_LIMIT = "daily_limit"
    NO_SPACE = "no_space"
    # retries and their caps
    TRANSIENT = "transient"
    FILE_ERROR = "file_error"
    INTERNAL_ERROR = "internal_error"
    CREDENTIALS_LOST = "credentials_lost"
    FRESH_ASSET = "fresh_asset"
    FRESH_ASSET_LIMIT = "fresh_asset_limit"
    INTERNAL_ERROR_LIMIT = "internal_error_limit"
    # outcomes that need a person, or end the job
    PERMANENT = "permanent"
    PROJECT_FAILED = "project_failed"
    UNSAFE_URLS = "unsafe_urls"
    OUTPUT_CONFLICT = "output_conflict"
    AMBIGUOUS_SUBMIT = "ambiguous_submit"
    AUTO_RESUBMIT = "auto_resubmit"
    ORPHAN_PROJECT = "orphan_project"
    LANGUAGES_FAILED = "languages_failed"
    AMBIGUOUS_LANGUAGE = "ambiguous_language"
    TWIN_NEEDS_ATTENTION = "twin_needs_attention"
    # operator operations
    RETRY = "retry"
    RESUBMIT = "resubmit"
    POLL_AGAIN = "poll_again"
    CANCELLED = "cancelled"
    BACKFILL = "backfill"


#: Codes that mean "the engine will try this step again by itself" (status shows their error).
RETRYING: frozenset[Reason] = frozenset(
    {
        Reason.TRANSIENT,
        Reason.FILE_ERROR,
        Reason.INTERNAL_ERROR,
        Reason.AUTH_REJECTED,
        Reason.RATE_LIMITED,
        Reason.DAILY_LIMIT,
        Reason.NO_SPACE,
        Reason.ROOT_UNAVAILABLE,
    }
)
