"""The config file's schema: the key table, the walk that checks a file against it, its docs.

The operator's YAML file is a public interface. Every key lives in one table (``TOP_KEYS`` and
``WATCH_KEYS``): its check, its default and its entry in docs/configuration.md all come from it,
so no key exists without a description and a default. ``walk`` checks parsed data against the
table and collects every problem with file, key path and line, so a file is fixed in one pass.

Imports point one way: yamlmarks.py (YAML with lines) <- checks.py, netchecks.py and
watchchecks.py (one check per value type) <- this module <- build.py, which assembles the
checked values into the daemon's settings (model.py).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from synthesia_watchd.domain import contract
from synthesia_watchd.domain.errors import ConfigIssue
from synthesia_watchd.domain.outputs import OUTPUT_OPTIONS

from . import yamlmarks
from .checks import (
    Check,
    Context,
    Invalid,
    Reported,
    boolean,
    bytesize,
    duration,
    filepath,
    integer,
    kind_of,
    list_of,
    nonempty_text,
    nullable,
    one_of,
    secret,
    suggest,
)
from .model import PostAction, Secret
from .netchecks import host_pattern, ledger_location, listen_address, url
from .watchchecks import language, post_action, schedule_window, title_template, watch_name
from .yamlmarks import Doc, KeyPath

_SECRET_PATH: KeyPath = ("synthesia", "api_key")

#: Rate-limit presets per tier: (per_minute, per_hour, per_day) for writes and reads.
TIERS: Mapping[str, Mapping[str, tuple[int | None, int | None, int | None]]] = {
    "creator": {"writes": (60, 300, 1000), "reads": (60, None, 20000)},
    "tier2": {"writes": (80, 400, 2000), "reads": (80, None, 40000)},
    "tier1": {"writes": (120, 600, 3000), "reads": (120, None, 80000)},
}


def parse_yaml(text: str, filename: str) -> tuple[Doc, list[ConfigIssue]]:
    """The config file read with lines (see yamlmarks.parse_yaml); the API key arrives sealed."""
    return yamlmarks.parse_yaml(text, filename, sealed={_SECRET_PATH: Secret})


# --- the schema ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyDoc:
    """One documented key: what docs/configuration.md says about it."""

    path: str
    type: str
    default: str
    description: str
    example: str | None = None


REQUIRED = object()


@dataclass(frozen=True)
class _Key:
    """One key: what it is and how it is checked, then (``about``) what the docs say of it."""

    path: str  # dotted below the top (or below a watch for WATCH_KEYS)
    type: str
    default: Any
    check: Check
    description: str = ""
    example: str | None = None
    default_doc: str | None = None

    def about(
        self, description: str, example: str | None = None, *, default_doc: str | None = None
    ) -> _Key:
        """This key with its documentation; keeps each table entry a few lines long."""
        return dataclasses.replace(
            self, description=description, example=example, default_doc=default_doc
        )

    def doc(self, prefix: str = "") -> KeyDoc:
        return KeyDoc(
            prefix + self.path,
            self.type,
            self.default_doc or _yaml_value(self.default),
            self.description,
            self.example,
        )


def _yaml_value(value: Any) -> str:
    if value is REQUIRED:
        return "required"
    if isinstance(value, PostAction):
        return value.kind
    if isinstance(value, tuple):
        value = list(value)
    return yamlmarks.flow(value)


_DURATION_T = "duration (seconds, or '10s', '5m', '1h')"


def _per_second(value: Any, path: KeyPath, ctx: Context) -> int:
    """Bytes per second: a byte size as ``bytesize`` reads it, with an optional ``/s``."""
    text = value.strip() if isinstance(value, str) else value
    if isinstance(text, str) and text.lower().endswith("/s"):
        text = text[:-2]
    try:
        return bytesize(text, path, ctx)
    except Invalid:
        shown = repr(value) if isinstance(value, str) else kind_of(value)
        raise Invalid(
            "expected bytes per second (a whole number or a string like '20MB/s', "
            f"'2MiB/s'; null for no cap), got {shown}"
        ) from None


TOP_KEYS: tuple[_Key, ...] = (
    _Key("synthesia.api_url", "URL", contract.DEFAULT_API_URL, url).about(
        "Base URL of the Synthesia API. https, or http only for loopback hosts (a local "
        "simulator), so the key never crosses a network in clear.",
        "http://127.0.0.1:8080",
    ),
    _Key("synthesia.api_key_file", "path", None, nullable(filepath)).about(
        "File holding the API key (surrounding whitespace and the trailing newline are "
        "stripped). Used when SYNTHESIA_API_KEY is not set. An unreadable file is an error.",
        "/run/secrets/synthesia",
    ),
    _Key("synthesia.api_key", "string (secret)", None, nullable(secret)).about(
        "The API key written in the config file itself. Allowed but discouraged: prefer "
        "SYNTHESIA_API_KEY, api_key_file or a systemd credential. Lowest in the resolution "
        "order; never shown by check-config."
    ),
    _Key("state_dir", "path", None, nullable(filepath)).about(
        "Folder for the daemon's own state (ledger, heartbeat). Must be on a local disk.",
        "/var/lib/synthesia-watchd",
        default_doc="$STATE_DIRECTORY (systemd), else $XDG_STATE_HOME/synthesia-watchd, "
        "else ~/.local/state/synthesia-watchd",
    ),
    _Key("ledger", "path or PostgreSQL URL", None, nullable(ledger_location)).about(
        "The job ledger: what was seen, sent, paid for and written. A SQLite file on a "
        "local disk (SQLite locking is unsafe on NFS/SMB), or a PostgreSQL database "
        "(postgresql://user@host:port/db, libpq URL: sslmode and the other parameters are "
        "honoured; no password in it) shared by several hosts.",
        "/var/lib/synthesia-watchd/ledger.sqlite3",
        default_doc="<state_dir>/ledger.sqlite3",
    ),
    _Key("ledger_password_file", "path", None, nullable(filepath)).about(
        "File holding the PostgreSQL ledger's password. Without it: "
        "$CREDENTIALS_DIRECTORY/ledger_password (systemd LoadCredential=), "
        "/run/secrets/ledger_password (Docker), then libpq's PGPASSWORD and ~/.pgpass.",
        "/run/secrets/ledger_password",
    ),
    _Key("node_name", "string", None, nullable(nonempty_text)).about(
        "This host's name in a shared ledger (status, metrics). Unique per host.",
        "nas-office-2",
        default_doc="the host name",
    ),
    _Key("workers.max_uploads", "integer >= 1", 2, integer(1)).about(
        "Uploads to S3 running at once (each one reads a whole video)."
    ),
    _Key("workers.max_active_jobs", "integer >= 1", 8, integer(1)).about(
        "Projects dubbing at Synthesia at once; new submits wait beyond it, first come first "
        "served (a job downloading its results no longer holds a slot)."
    ),
    _Key("workers.max_downloads", "integer >= 1", 4, integer(1)).about(
        "Downloads of dubbed files running at once."
    ),
    _Key(
        "upload.max_bandwidth",
        "bytes per second or null ('20MB/s', '2MiB/s')",
        None,
        nullable(_per_second),
    ).about(
        "Cap on this node's upload bandwidth to S3, shared evenly by its "
        "workers.max_uploads upload slots (each upload is throttled to its share); null for "
        "no cap. Per node: several hosts on one shared ledger each get their own.",
        "20MB/s",
    ),
    _Key("api.tier", "creator | tier2 | tier1", "creator", one_of(*TIERS)).about(
        "Your Synthesia API tier; selects the preset for api.rate_limits. Explicit "
        "api.rate_limits values win over the preset."
    ),
    *(
        _Key(
            f"api.rate_limits.{cls}.{window}", "integer >= 1 or null", None, nullable(integer(1))
        ).about(
            f"Most {cls[:-1]} requests per endpoint {label}; null for no limit in this window.",
            default_doc=f"from api.tier (creator: {_yaml_value(TIERS['creator'][cls][i])})",
        )
        for cls in ("writes", "reads")
        for i, (window, label) in enumerate(
            (("per_minute", "per minute"), ("per_hour", "per hour"), ("per_day", "per day"))
        )
    ),
    _Key("api.connect_timeout", _DURATION_T, 5.0, duration(0.1)).about(
        "Seconds to wait for a TCP/TLS connection to the API."
    ),
    _Key("api.read_timeout", _DURATION_T, 60.0, duration(0.1)).about(
        "Seconds to wait for the API (or a download) to send the next bytes."
    ),
    _Key("api.allowed_download_hosts", "list of host names", (), list_of(host_pattern)).about(
        "Hosts dubbed files may be downloaded from. Empty: any https host. Else exact host "
        "names or '*.suffix' patterns; a URL elsewhere fails the language as unsafe.",
        "['*.amazonaws.com', 'cdn.synthesia.io']",
    ),
    _Key("api.send_content_md5", "boolean", False, boolean).about(
        "Send the file's MD5 (base64 of the digest) as contentMD5 when creating an asset, so "
        "Synthesia can check the upload. Off by default: the official guide never sends it and "
        "the API document names no encoding, so the API might fail assets it reads differently."
    ),
    _Key("limits.max_jobs_per_day", "integer >= 1 or null", None, nullable(integer(1))).about(
        "Spending guard: most dubbing projects submitted per local calendar day (resets at "
        "local midnight); null for no limit. "
        "Jobs over the limit wait for the next day.",
        "50",
    ),
    _Key(
        "limits.max_bytes_per_day", "bytes or null ('50GB', '10GiB')", None, nullable(bytesize)
    ).about(
        "Most source bytes submitted per local calendar day; null for no limit. "
        "Decimal (KB, MB, GB, TB) "
        "and binary (KiB, MiB, GiB, TiB) units.",
        "50GB",
    ),
    _Key(
        "on_ambiguous_submit",
        "needs_attention | retry",
        "needs_attention",
        one_of("needs_attention", "retry"),
    ).about(
        "When the daemon cannot know whether a dubbing submit reached Synthesia (it died or "
        "the connection broke after sending): needs_attention waits for a human; retry "
        "submits again and may pay twice."
    ),
    _Key("shutdown_timeout", _DURATION_T, 30.0, duration(1)).about(
        "Seconds a stop waits for running steps to finish before cutting them off. Match "
        "systemd's TimeoutStopSec and docker's stop timeout to it."
    ),
    _Key("poll_interval_max", _DURATION_T, 300.0, duration(1)).about(
        "Cap of the gap between two status polls of a job (a dub running long, a spent budget)."
    ),
    _Key("lease_duration", _DURATION_T, 60.0, duration(15)).about(
        "How long a job this node works on stays its own without a heartbeat renewing it. "
        "In a shared ledger, another node takes over a dead node's jobs once it expires."
    ),
    _Key("metrics.listen", "host:port or null", None, nullable(listen_address)).about(
        "Address of the Prometheus /metrics and /healthz listener; null disables it. An "
        "explicit address is required (a bare port is refused). Read at start: a change "
        "takes effect at the next restart, not on reload.",
        "127.0.0.1:9464",
    ),
    _Key("web.listen", "host:port or null", None, nullable(listen_address)).about(
        "Address of the operator console and push API (/, /api/v1/...); null disables it. "
        "An address other than loopback requires web.token_file, or the daemon refuses to "
        "start. A reload (SIGHUP) moves the console to a changed address.",
        "127.0.0.1:8080",
    ),
    _Key("web.token_file", "path or null", None, nullable(filepath)).about(
        "File holding the console's access token. API clients send it as "
        "'Authorization: Bearer TOKEN'; browsers log in with basic auth (any user name, the "
        "token as password). Unset: no login, allowed only on a loopback address.",
        "/run/secrets/synthesia-watchd-web",
    ),
    _Key("web.allowed_hosts", "list of host names", (), list_of(host_pattern)).about(
        "Host header values the console answers to, besides the listen address, localhost, "
        "127.0.0.1 and ::1 (a guard against DNS rebinding). Add the NAS's name here.",
        "[nas.local]",
    ),
    _Key("notify.apprise", "list of Apprise URLs", (), list_of(secret)).about(
        "Where to send notifications through Apprise (the `notify` extra): "
        "'mailto://...', 'tgram://...', 'ntfy://...'. Treated as secrets: never shown.",
        "['ntfy://ntfy.sh/my-dubbing']",
    ),
    _Key("notify.webhook.url", "URL or null", None, nullable(url)).about(
        "A URL that receives each notification as a JSON POST; null: no webhook.",
        "https://hooks.example.com/dubbing",
    ),
    _Key("notify.webhook.secret_file", "path or null", None, nullable(filepath)).about(
        "File holding the key of the webhook's signature: the header "
        "X-Synthesia-Watchd-Signature is 'sha256=' + hex HMAC-SHA256 of the body.",
        "/run/secrets/webhook-key",
    ),
    _Key(
        "notify.events",
        "list of done | partial | failed | needs_attention | paused | resumed",
        ("done", "partial", "failed", "needs_attention", "paused", "resumed"),
        list_of(
            one_of("done", "partial", "failed", "needs_attention", "paused", "resumed"),
            unique=True,
        ),
    ).about("Which events are sent."),
    _Key(
        "log.level",
        "debug | info | warning | error",
        "info",
        one_of("debug", "info", "warning", "error"),
    ).about("Lowest log level written."),
    _Key("log.format", "auto | json | console", "auto", one_of("auto", "json", "console")).about(
        "auto: console on a terminal, JSON lines otherwise (journald, docker)."
    ),
)

#: Keys every watch has; `defaults` sets them for all, a watch may override any of them.
WATCH_KEYS: tuple[_Key, ...] = (
    _Key(
        "source_language",
        "language code or auto",
        "auto",
        language(contract.INPUT_LANGUAGES, "source", ("auto",)),
    ).about(
        "Language spoken in the source videos, a DubbingInputLanguage code; auto lets "
        "Synthesia detect it.",
        "en",
    ),
    _Key(
        "targets",
        "list of language codes",
        REQUIRED,
        list_of(language(contract.OUTPUT_LANGUAGES, "target"), non_empty=True, unique=True),
    ).about(
        "Languages to dub into (DubbingOutputLanguage codes), in this order. Required here "
        "or on every watch: there is no built-in default, so nothing is paid for by accident.",
        "[fr-FR, es-ES]",
    ),
    _Key("stable_seconds", _DURATION_T, 10.0, duration(0.5)).about(
        "A file is taken only after its size and mtime stayed unchanged this long (at least "
        "0.5), so half-copied files are never sent."
    ),
    _Key("incomplete_timeout", _DURATION_T, 3600.0, duration(1)).about(
        "A settled file whose container structure is not whole (an mp4 cut inside a box or "
        "without its moov, a WebM whose Segment does not end at the end of the file) waits as "
        "incomplete; after this long without any change it fails with that reason."
    ),
    _Key("mode", "auto | native | polling", "auto", one_of("auto", "native", "polling")).about(
        "How changes are noticed. auto: inotify on local disks, polling on network and FUSE "
        "mounts (NFS/SMB changes made elsewhere never reach inotify)."
    ),
    _Key("scan_interval", _DURATION_T, 30.0, duration(1)).about(
        "Seconds between full catch-up scans (and the polling observer's period)."
    ),
    _Key("poll_interval", _DURATION_T, 10.0, duration(1)).about(
        "First delay between status polls of a dubbing job while no dub has finished yet; it "
        "backs off up to poll_interval_max. Once the ledger holds finished dubs, polls follow "
        "their history (first near the expected finish, then closely) within the read budget."
    ),
    _Key(
        "on_success",
        "keep | delete | {move: folder}",
        PostAction("keep"),
        post_action(allow_delete=True),
    ).about(
        "What happens to a source once every language is written. A move keeps the "
        "subfolder layout under the target folder.",
        "{move: /srv/drop/done}",
    ),
    _Key(
        "on_failure", "keep | {move: folder}", PostAction("keep"), post_action(allow_delete=False)
    ).about("What happens to a source whose job failed for good.", "{move: /srv/drop/failed}"),
    _Key("include", "list of globs", (), list_of(nonempty_text)).about(
        "When non-empty, only file names matching one of these globs are taken.", "['*.mp4']"
    ),
    _Key("exclude", "list of globs", (), list_of(nonempty_text)).about(
        "File names matching any of these globs are ignored (on top of the built-in temp, "
        "partial and NAS-metadata patterns and our own outputs).",
        "['*-draft.*']",
    ),
    _Key(
        "outputs",
        "list of video | captions | thumbnail",
        ("video",),
        list_of(one_of(*OUTPUT_OPTIONS), non_empty=True, unique=True),
    ).about(
        "What to download for each language: the dubbed video, its captions (srt, vtt), "
        "its thumbnail.",
        "[video, captions]",
    ),
    _Key("lipsync", "boolean", False, boolean).about("Ask Synthesia for lip-synced dubbing."),
    _Key(
        "video_duration",
        "adaptive | original | null",
        None,
        nullable(one_of("adaptive", "original")),
    ).about(
        "Whether the dub may change the video's length; null leaves Synthesia's default (adaptive)."
    ),
    _Key(
        "visibility", "private | public | null", None, nullable(one_of("private", "public"))
    ).about("Visibility of the dubbed videos at Synthesia; null leaves its default (private)."),
    _Key("title", "template", "{stem}", title_template).about(
        "Project title at Synthesia. Placeholders: {stem}, {name}, {watch}, {lang_list}. "
        "Cut to 256 characters.",
        "'{watch}: {stem} ({lang_list})'",
    ),
    _Key("backfill_new_targets", "boolean", False, boolean).about(
        "When targets gain a language, also dub the files already done into it (adds the "
        "language to the existing project; only the new language is paid for)."
    ),
    _Key("recursive", "boolean", True, boolean).about("Also watch subfolders of input."),
    _Key("schedule", "list of windows", (), list_of(schedule_window)).about(
        "Local-time windows in which new paid work may start: '[days] HH:MM-HH:MM' (a window "
        "past midnight belongs to the day it starts on) or days alone. Outside every window "
        "files are queued and nothing is uploaded or submitted; jobs already dubbing finish. "
        "Empty: always.",
        "['mon-fri 22:00-06:00', 'sat,sun']",
    ),
)

#: Keys only a watch has: they name and place it, so `defaults` cannot set them.
WATCH_ONLY: tuple[_Key, ...] = (
    _Key("name", "string [A-Za-z0-9_.-]+", REQUIRED, watch_name).about(
        "Unique name of the watch, used in logs, metrics and titles. Nodes sharing a ledger "
        "match watches by this name (each with its own folders).",
        "marketing",
    ),
    _Key("input", "path", REQUIRED, filepath).about(
        "The drop folder. Absolute, or relative to the config file's folder. It need not "
        "exist yet: a missing folder is reported at run time and watched once it appears. "
        "Inputs of two watches may not overlap.",
        "/srv/drop/marketing",
    ),
    _Key("output", "path or null", None, nullable(filepath)).about(
        "Where dubbed files go, mirroring subfolders. null: beside each source (our outputs "
        "are never taken as new sources). A folder inside a recursive watch's input is "
        "refused.",
        "/srv/dubbed/marketing",
        default_doc="null (beside the source)",
    ),
)

#: Sections of the reference, in order: id -> (heading, what the section is for).
_SECTIONS: dict[str, tuple[str, str]] = {
    "synthesia": ("`synthesia`", "Where the API is and how the key is found."),
    "daemon": ("Daemon", "The daemon's own state and its behaviour around a job."),
    "workers": ("`workers`", "How much runs at once."),
    "upload": ("`upload`", "The upload of each source to S3."),
    "api": ("`api`", "Talking to the API: pacing, timeouts, download hosts."),
    "limits": ("`limits`", "Spending guards."),
    "metrics": ("`metrics`", "The Prometheus listener."),
    "web": ("`web`", "The operator console and push API (off by default)."),
    "notify": ("`notify`", "Notifications of finished jobs and pauses (Apprise, a webhook)."),
    "log": ("`log`", "Logs go to stdout: journald or docker collect them."),
    "defaults": (
        "`defaults` and watch settings",
        "Every watch inherits these; a watch may override any of them.",
    ),
    "watches[]": (
        "`watches`",
        "A list of drop folders. Each entry has the keys below plus any key of `defaults`.",
    ),
}


def _section(path: str) -> str:
    return path.split(".")[0] if "." in path else "daemon"


REFERENCE: tuple[KeyDoc, ...] = (
    *sorted((k.doc() for k in TOP_KEYS), key=lambda d: list(_SECTIONS).index(_section(d.path))),
    *(k.doc("defaults.") for k in WATCH_KEYS),
    *(k.doc("watches[].") for k in WATCH_ONLY),
)


def _tree(keys: Sequence[_Key]) -> dict[str, Any]:
    """Nested mapping spec from dotted key paths: leaves are _Key, branches dicts."""
    root: dict[str, Any] = {}
    for key in keys:
        node = root
        *parents, leaf = key.path.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = key
    return root


WATCH_TREE = _tree((*WATCH_ONLY, *WATCH_KEYS))
TOP_TREE = {**_tree(TOP_KEYS), "defaults": _tree(WATCH_KEYS), "watches": None}


def walk(
    value: Any, path: KeyPath, spec: dict[str, Any], ctx: Context, out: dict[str, Any]
) -> None:
    """Check a mapping against ``spec``: unknown keys, then each leaf; good values land in out."""
    if value is None:
        return
    if not isinstance(value, dict):
        ctx.error(path, f"expected a mapping with keys {', '.join(spec)}; got {kind_of(value)}")
        return
    for key, item in value.items():
        sub = (*path, key)
        if key not in spec:
            hint = suggest(key, list(spec))
            if not hint and path == ("defaults",) and key in ("name", "input", "output"):
                hint = f" ({key} belongs in each watch, not in defaults)"
            ctx.error(sub, f"unknown key{hint}")
        elif isinstance(spec[key], dict):
            walk(item, sub, spec[key], ctx, out)
        elif spec[key] is not None:
            try:
                out[".".join(str(p) for p in sub)] = spec[key].check(item, sub, ctx)
            except Invalid as exc:
                ctx.error(sub, str(exc))
            except Reported:
                pass


_INTRO = """\
# Configuration reference

<!-- Generated by `synthesia_watchd.config.load.render_reference()` from the schema table in
synthesia_watchd/config/schema.py. Edit the table, then regenerate this file;
a test keeps them equal. -->

The daemon reads one YAML file (`synthesia-watchd run --config FILE`; `check-config` validates it
and prints every setting after defaults). [config.example.yaml](../config.example.yaml) shows every
key with comments.

- Every error is reported at once, each with file, key path and line. Unknown keys are errors
  (with the closest known key suggested), so a typo never silently falls back to a default.
- Relative paths resolve against the config file's folder; `~` expands to the home folder.
- Durations are seconds: a number, or a string like `"10s"`, `"5m"`, `"1h"`, `"1h30m"`.
- Byte sizes are a whole number or a string like `"50GB"` (powers of 1000) or `"10GiB"` (1024).
- `defaults` holds watch settings every watch inherits; each entry of `watches` may override
  any of them.

## The API key

The key is looked up in this order, and the first one found is used:

1. the environment variable `SYNTHESIA_API_KEY`;
2. the file named by `synthesia.api_key_file`;
3. `$CREDENTIALS_DIRECTORY/synthesia_api_key` (systemd `LoadCredential=`);
4. `/run/secrets/synthesia_api_key` (Docker secrets), when readable;
5. `synthesia.api_key` in the config file (discouraged).

Whitespace and the trailing newline around a key read from a file are stripped. Having no key is
not a config error (the simulator, the demo and `--dry-run` need none). The key is never logged
and never shown: `check-config` prints `***` and where the key came from. An unreadable key file
is an error that names the file.
"""


def render_reference() -> str:
    """Markdown of every key, from the schema table; docs/configuration.md is exactly this."""
    parts = [_INTRO]
    section = None
    for doc in REFERENCE:
        if _section(doc.path) != section:
            section = _section(doc.path)
            heading, blurb = _SECTIONS[section]
            parts.append(f"\n## {heading}\n\n{blurb}\n")
        parts.append(f"\n### `{doc.path}`\n\n- type: {doc.type}\n- default: `{doc.default}`\n")
        if doc.example is not None:
            parts.append(f"- example: `{doc.path.rsplit('.', 1)[-1]}: {doc.example}`\n")
        parts.append(f"\n{doc.description}\n")
    return "".join(parts)
