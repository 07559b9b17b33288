"""Config: every key, defaults and overrides, errors with lines, API key resolution, docs."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from synthesia_watchd.config import load as cfgmod
from synthesia_watchd.config.load import (
    REFERENCE,
    Config,
    PostAction,
    RateLimitSpec,
    Secret,
    build_config,
    dump_effective,
    effective_config,
    load_config,
    parse_config,
    render_reference,
    resolve_api_key,
)
from synthesia_watchd.domain.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent
KEY = "sk-test-7f3a9c1e5b"

MINIMAL = """\
defaults:
  targets: [fr-FR]
watches:
  - name: w
    input: drop
"""

FULL = """\
synthesia:
  api_url: http://127.0.0.1:8080/
  api_key_file: key.txt
ledger: db/ledger.sqlite3
state_dir: state
workers: {max_uploads: 3, max_active_jobs: 5, max_downloads: 6}
api:
  tier: tier1
  rate_limits:
    writes: {per_minute: 7, per_hour: 70, per_day: 700}
    reads: {per_minute: 9, per_hour: null, per_day: 900}
  connect_timeout: 2
  read_timeout: 1m
  allowed_download_hosts: ["*.Amazonaws.com", cdn.example.org]
limits: {max_jobs_per_day: 12, max_bytes_per_day: 10GiB}
on_ambiguous_submit: retry
shutdown_timeout: 45s
poll_interval_max: 10m
metrics: {listen: "127.0.0.1:9464"}
log: {level: debug, format: json}
defaults:
  source_language: de
  targets: [fr-FR, es-ES]
  stable_seconds: 2.5
  mode: native
  scan_interval: 1h
  poll_interval: 15
  on_success: delete
  on_failure: {move: failed}
  include: ["*.mp4"]
  exclude: ["*-draft.*"]
  outputs: [video, captions, thumbnail]
  lipsync: true
  video_duration: original
  visibility: public
  title: "{watch}/{stem} [{lang_list}] {name}"
  backfill_new_targets: true
  recursive: false
watches:
  - name: one
    input: in/one
    output: out/one
  - name: two.b-2_x
    input: ~/two
    recursive: true
    source_language: auto
    targets: [de-DE]
    stable_seconds: 30
    mode: polling
    scan_interval: 20
    poll_interval: 5
    on_success: {move: done}
    on_failure: keep
    include: []
    exclude: ["*.tmp"]
    outputs: [video]
    lipsync: false
    video_duration: adaptive
    visibility: private
    title: "{stem}"
    backfill_new_targets: false
"""


def parse(text: str, tmp_path: Path, **environ: str) -> Config:
    """Parse ``text`` as if it were a file in ``tmp_path``, with only the given environment."""
    return parse_config(
        textwrap.dedent(text),
        filename="watchd.yaml",
        base_dir=tmp_path,
        environ={"HOME": str(tmp_path / "home"), **environ},
    )


def issues_of(text: str, tmp_path: Path, **environ: str) -> list[tuple[str, int | None, str]]:
    """(key path, line, message) of every issue the text raises."""
    with pytest.raises(ConfigError) as info:
        parse(text, tmp_path, **environ)
    return [(i.key, i.line, i.message) for i in info.value.issues]


def test_every_key_is_parsed(tmp_path: Path) -> None:
    """Each key of the file lands in the matching field, converted and resolved."""
    (tmp_path / "key.txt").write_text(f"{KEY}\n")
    cfg = parse(FULL, tmp_path)
    assert cfg.api_url == "http://127.0.0.1:8080"
    assert cfg.api_key == Secret(KEY)
    assert cfg.api_key_source == f"file {tmp_path / 'key.txt'}"
    assert cfg.ledger == tmp_path / "db" / "ledger.sqlite3"
    assert cfg.state_dir == tmp_path / "state"
    assert (cfg.max_uploads, cfg.max_active_jobs, cfg.max_downloads) == (3, 5, 6)
    assert cfg.api_tier == "tier1"
    assert cfg.rate_limits["writes"] == RateLimitSpec(7, 70, 700)
    assert cfg.rate_limits["reads"] == RateLimitSpec(9, None, 900)
    assert (cfg.connect_timeout, cfg.read_timeout) == (2.0, 60.0)
    assert cfg.allowed_download_hosts == ("*.amazonaws.com", "cdn.example.org")
    assert (cfg.max_jobs_per_day, cfg.max_bytes_per_day) == (12, 10 * 1024**3)
    assert cfg.on_ambiguous_submit == "retry"
    assert (cfg.shutdown_timeout, cfg.poll_interval_max) == (45.0, 600.0)
    assert cfg.metrics_listen == "127.0.0.1:9464"
    assert (cfg.log_level, cfg.log_format) == ("debug", "json")
    one, two = cfg.watches
    assert one == cfg.watch("one")
    assert (one.input, one.output, one.output_root) == (
        tmp_path / "in" / "one",
        tmp_path / "out" / "one",
        tmp_path / "out" / "one",
    )
    assert (one.source_language, one.targets, one.stable_seconds) == ("de", ("fr-FR", "es-ES"), 2.5)
    assert (one.mode, one.scan_interval, one.poll_interval) == ("native", 3600.0, 15.0)
    assert one.on_success == PostAction("delete")
    assert one.on_failure == PostAction("move", tmp_path / "failed")
    assert (one.include, one.exclude) == (("*.mp4",), ("*-draft.*",))
    assert one.outputs == ("video", "captions", "thumbnail")
    assert (one.lipsync, one.video_duration, one.visibility) == (True, "original", "public")
    assert one.title == "{watch}/{stem} [{lang_list}] {name}"
    assert (one.backfill_new_targets, one.recursive) == (True, False)
    assert two.name == "two.b-2_x"
    assert (two.input, two.output, two.output_root) == (tmp_path / "home" / "two", None, two.input)
    assert (two.recursive, two.source_language, two.targets) == (True, "auto", ("de-DE",))
    assert (two.stable_seconds, two.mode, two.scan_interval, two.poll_interval) == (
        30.0,
        "polling",
        20.0,
        5.0,
    )
    assert (two.on_success, two.on_failure) == (
        PostAction("move", tmp_path / "done"),
        PostAction("keep"),
    )
    assert (two.include, two.exclude, two.outputs) == ((), ("*.tmp",), ("video",))
    assert (two.lipsync, two.video_duration, two.visibility) == (False, "adaptive", "private")
    assert (two.title, two.backfill_new_targets) == ("{stem}", False)


def test_built_in_defaults(tmp_path: Path) -> None:
    """A minimal file gets the documented defaults, Creator-tier limits and no API key."""
    cfg = parse(MINIMAL, tmp_path)
    assert cfg.api_url == "https://api.synthesia.io"
    assert (cfg.api_key, cfg.api_key_source) == (None, None)
    assert cfg.state_dir == tmp_path / "home" / ".local" / "state" / "synthesia-watchd"
    assert cfg.ledger == cfg.state_dir / "ledger.sqlite3"
    assert (cfg.max_uploads, cfg.max_active_jobs, cfg.max_downloads) == (2, 8, 4)
    assert cfg.rate_limits == {
        "writes": RateLimitSpec(60, 300, 1000),
        "reads": RateLimitSpec(60, None, 20000),
    }
    assert (cfg.connect_timeout, cfg.read_timeout, cfg.shutdown_timeout) == (5.0, 60.0, 30.0)
    assert (cfg.on_ambiguous_submit, cfg.poll_interval_max) == ("needs_attention", 300.0)
    assert (cfg.metrics_listen, cfg.log_level, cfg.log_format) == (None, "info", "auto")
    (w,) = cfg.watches
    assert (w.source_language, w.stable_seconds, w.mode, w.recursive) == (
        "auto",
        10.0,
        "auto",
        True,
    )
    assert (w.on_success, w.on_failure, w.outputs, w.title) == (
        PostAction("keep"),
        PostAction("keep"),
        ("video",),
        "{stem}",
    )
    assert (w.output, w.video_duration, w.visibility, w.lipsync) == (None, None, None, False)


def test_state_dir_from_systemd_then_xdg(tmp_path: Path) -> None:
    """$STATE_DIRECTORY wins over $XDG_STATE_HOME, which wins over the home folder."""
    systemd = parse(MINIMAL, tmp_path, STATE_DIRECTORY="/var/lib/a:/var/lib/b", XDG_STATE_HOME="/x")
    assert systemd.state_dir == Path("/var/lib/a")
    assert parse(MINIMAL, tmp_path, XDG_STATE_HOME="/x").state_dir == Path("/x/synthesia-watchd")


def test_defaults_inherited_and_overridden_per_watch(tmp_path: Path) -> None:
    """A watch takes every default it does not set and keeps every one it does."""
    cfg = parse(
        """\
        defaults:
          targets: [fr-FR, es-ES]
          stable_seconds: 20
          outputs: [video, captions]
        watches:
          - {name: a, input: a}
          - {name: b, input: b, targets: [it], stable_seconds: 1}
        """,
        tmp_path,
    )
    a, b = cfg.watches
    assert (a.targets, a.stable_seconds, a.outputs) == (
        ("fr-FR", "es-ES"),
        20.0,
        ("video", "captions"),
    )
    assert (b.targets, b.stable_seconds, b.outputs) == (("it",), 1.0, ("video", "captions"))


def test_every_error_is_reported_at_once_with_its_line(tmp_path: Path) -> None:
    """Several mistakes in one file come back together, each at its exact line."""
    found = issues_of(
        """\
        workers:
          max_uploads: 0
          max_downloads: two
        api:
          connect_timeout: soon
        defaults:
          targets: [fr-FR, xx-XX, fr-FR]
          stable_seconds: 0.1
          mode: inotify
        watches:
          - name: bad name
            input: drop
          - input: other
        """,
        tmp_path,
    )
    got = {(key, line) for key, line, _ in found}
    assert got == {
        ("workers.max_uploads", 2),
        ("workers.max_downloads", 3),
        ("api.connect_timeout", 5),
        ("defaults.targets[1]", 7),
        ("defaults.targets[2]", 7),
        ("defaults.stable_seconds", 8),
        ("defaults.mode", 9),
        ("watches[0].name", 11),
        ("watches[1]", 13),
    }
    messages = {key: msg for key, _, msg in found}
    assert "at least 1" in messages["workers.max_uploads"]
    assert "listed twice" in messages["defaults.targets[2]"]
    assert "at least 0.5" in messages["defaults.stable_seconds"]
    assert "missing required key `name`" in messages["watches[1]"]


def test_issues_carry_the_file_name(tmp_path: Path) -> None:
    """load_config names the file it read in every issue and in the error text."""
    path = tmp_path / "bad.yaml"
    path.write_text("log: {level: loud}\n" + MINIMAL)
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    (issue,) = info.value.issues
    assert (issue.file, issue.key, issue.line) == (str(path), "log.level", 1)
    assert str(info.value).startswith(f"{path}:1: log.level: must be one of")


def test_unknown_keys_suggest_the_closest_known_key(tmp_path: Path) -> None:
    """Typos are errors, not silent defaults, and name the key that was probably meant."""
    found = issues_of(
        """\
        worker: {max_uploads: 1}
        api: {read_timout: 5}
        defaults:
          target: [fr-FR]
          input: x
        watches:
          - {name: a, input: a, targets: [fr-FR], stabel_seconds: 3}
        """,
        tmp_path,
    )
    assert found == [
        ("worker", 1, "unknown key (did you mean 'workers'?)"),
        ("api.read_timout", 2, "unknown key (did you mean 'read_timeout'?)"),
        ("defaults.target", 4, "unknown key (did you mean 'targets'?)"),
        ("defaults.input", 5, "unknown key (input belongs in each watch, not in defaults)"),
        ("watches[0].stabel_seconds", 7, "unknown key (did you mean 'stable_seconds'?)"),
    ]


def test_languages_must_be_in_the_contract(tmp_path: Path) -> None:
    """Source languages come from the input enum (or auto), targets from the output enum."""
    found = issues_of(
        """\
        defaults:
          source_language: english
          targets: [fr-fr, auto, zu]
        watches:
          - {name: a, input: a, source_language: zu}
        """,
        tmp_path,
    )
    assert ("defaults.source_language", 2) in {(k, ln) for k, ln, _ in found}
    messages = {k: m for k, _, m in found}
    assert "did you mean 'fr-FR'?" in messages["defaults.targets[0]"]
    assert "not a Synthesia target language" in messages["defaults.targets[1]"]
    assert "defaults.targets[2]" not in messages  # zu is an output-only code
    assert "not a Synthesia source language" in messages["watches[0].source_language"]


def test_norwegian_is_not_false(tmp_path: Path) -> None:
    """YAML 1.1 reads a bare `no` as false; for a language it is the code the operator typed."""
    cfg = parse(
        "defaults: {source_language: no, targets: [no, nb]}\nwatches: [{name: w, input: w}]\n",
        tmp_path,
    )
    assert (cfg.watches[0].source_language, cfg.watches[0].targets) == ("no", ("no", "nb"))


def test_overlapping_inputs_are_refused(tmp_path: Path) -> None:
    """Two watches may not share a folder, nest, or reach the same folder through a symlink."""
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    found = issues_of(
        """\
        defaults: {targets: [fr-FR]}
        watches:
          - {name: a, input: drop}
          - {name: b, input: drop/sub}
          - {name: c, input: ./drop}
          - {name: d, input: real}
          - {name: e, input: link}
          - {name: f, input: elsewhere}
        """,
        tmp_path,
    )
    assert [(k, ln) for k, ln, _ in found] == [
        ("watches[1].input", 4),
        ("watches[2].input", 5),
        ("watches[2].input", 5),
        ("watches[4].input", 7),
    ]
    assert "overlaps the input of watches[0]" in found[0][2]


def test_duplicate_watch_names_are_refused(tmp_path: Path) -> None:
    """Names identify watches in the ledger and metrics, so each must be unique."""
    found = issues_of(
        "defaults: {targets: [fr-FR]}\nwatches: [{name: a, input: x}, {name: a, input: y}]\n",
        tmp_path,
    )
    assert found == [("watches[1].name", 2, "duplicate watch name 'a' (also watches[0])")]


def test_output_inside_a_recursive_input_is_refused(tmp_path: Path) -> None:
    """Outputs a recursive watch would see again are refused; beside-the-source is fine."""
    found = issues_of(
        """\
        defaults: {targets: [fr-FR]}
        watches:
          - {name: a, input: a, output: a/dubbed}
          - {name: b, input: b, output: b/dubbed, recursive: false}
          - {name: c, input: c, output: c}
          - {name: d, input: d, output: a}
        """,
        tmp_path,
    )
    assert [(k, ln) for k, ln, _ in found] == [("watches[0].output", 3), ("watches[3].output", 6)]
    assert "inside this watch's input" in found[0][2]
    assert "inside the input of watches[0]" in found[1][2]


def test_move_folder_inside_an_input_is_refused(tmp_path: Path) -> None:
    """A move target inside a watched folder would feed moved files back in, even from defaults."""
    found = issues_of(
        """\
        defaults:
          targets: [fr-FR]
          on_success: {move: a/done}
        watches:
          - {name: a, input: a}
          - {name: b, input: b, on_failure: {move: b}}
        """,
        tmp_path,
    )
    assert [(k, ln) for k, ln, _ in found] == [
        ("defaults.on_success.move", 3),
        ("defaults.on_success.move", 3),
        ("watches[1].on_failure.move", 6),
    ]
    assert "(in watches[1])" in found[1][2]


def test_post_actions(tmp_path: Path) -> None:
    """on_failure never deletes; a move needs a folder; unknown words are refused."""
    found = issues_of(
        """\
        defaults:
          targets: [fr-FR]
          on_success: {move: null}
          on_failure: delete
        watches:
          - {name: a, input: a, on_success: remove, on_failure: {mv: x}}
        """,
        tmp_path,
    )
    keys = [(k, ln) for k, ln, _ in found]
    assert keys == [
        ("defaults.on_success.move", 3),
        ("defaults.on_failure", 4),
        ("watches[0].on_success", 6),
        ("watches[0].on_failure.mv", 6),
    ]
    assert "delete is not offered for failures" in found[1][2]


def test_bad_yaml_syntax_gives_line_and_column(tmp_path: Path) -> None:
    """A syntax error is one issue with its line, and the column in the message."""
    found = issues_of("log:\n  level: info\n  format: [json\nwatches: []\n", tmp_path)
    ((key, line, message),) = found
    assert key == ""
    assert line == 4
    assert "invalid YAML" in message
    assert "line 4, column" in message


def test_duplicate_keys_are_refused_but_merge_keys_may_be_overridden(tmp_path: Path) -> None:
    """A key written twice is an error with both lines; an override of a `<<` merge is not."""
    found = issues_of("log: {level: info}\nlog: {level: debug}\n" + MINIMAL, tmp_path)
    assert found == [("log", 2, "duplicate key (first at line 1)")]
    cfg = parse(
        """\
        defaults: &base {targets: [fr-FR], stable_seconds: 5}
        watches:
          - {<<: *base, name: a, input: a, stable_seconds: 7}
        """,
        tmp_path,
    )
    assert (cfg.watches[0].stable_seconds, cfg.watches[0].targets) == (7.0, ("fr-FR",))


def test_durations_and_sizes(tmp_path: Path) -> None:
    """Durations take numbers and 10s/5m/1h/1h30m; sizes take integers and decimal/binary units."""
    cfg = parse(
        "poll_interval_max: 1h30m\nshutdown_timeout: 90\nlimits: {max_bytes_per_day: 1.5 TB}\n"
        + MINIMAL,
        tmp_path,
    )
    assert (cfg.poll_interval_max, cfg.shutdown_timeout) == (5400.0, 90.0)
    assert cfg.max_bytes_per_day == 1_500_000_000_000
    found = issues_of(
        "poll_interval_max: 5 minutes\nshutdown_timeout: .inf\n"
        "limits: {max_bytes_per_day: 10 gigs, max_jobs_per_day: 1.5}\n" + MINIMAL,
        tmp_path,
    )
    assert [k for k, _, _ in found] == [
        "poll_interval_max",
        "shutdown_timeout",
        "limits.max_bytes_per_day",
        "limits.max_jobs_per_day",
    ]


def test_api_url_is_https_or_loopback_http(tmp_path: Path) -> None:
    """http is allowed only to loopback hosts, so the key never crosses a network in clear."""
    for url in ("http://localhost:8080", "http://127.0.0.5", "http://[::1]:9"):
        assert parse(f"synthesia: {{api_url: '{url}'}}\n" + MINIMAL, tmp_path).api_url == url
    for url in ("http://api.synthesia.io", "ftp://x", "https://u:p@host", "api.synthesia.io"):
        found = issues_of(f"synthesia: {{api_url: '{url}'}}\n" + MINIMAL, tmp_path)
        assert [k for k, _, _ in found] == ["synthesia.api_url"], url


def test_metrics_listen_needs_an_explicit_address(tmp_path: Path) -> None:
    """A bare port would listen everywhere; host:port with an IP or localhost is required."""
    for good in ("127.0.0.1:9464", "[::1]:9464", "0.0.0.0:9464", "localhost:0"):
        assert parse(f"metrics: {{listen: '{good}'}}\n" + MINIMAL, tmp_path).metrics_listen == good
    for bad in ("9464", ":9464", "example.com:80", "127.0.0.1:99999"):
        found = issues_of(f"metrics: {{listen: '{bad}'}}\n" + MINIMAL, tmp_path)
        assert [k for k, _, _ in found] == ["metrics.listen"], bad


def test_tier_presets_and_explicit_limits_win(tmp_path: Path) -> None:
    """api.tier picks a preset; each rate_limits value written in the file replaces its part."""
    cfg = parse("api: {tier: tier2, rate_limits: {reads: {per_day: 5}}}\n" + MINIMAL, tmp_path)
    assert cfg.rate_limits["writes"] == RateLimitSpec(80, 400, 2000)
    assert cfg.rate_limits["reads"] == RateLimitSpec(80, None, 5)
    assert cfg.api_tier == "tier2"


def test_title_template_placeholders(tmp_path: Path) -> None:
    """Only {stem}, {name}, {watch} and {lang_list} may appear in a title template."""
    found = issues_of("defaults: {title: '{stem} {date}'}\n" + MINIMAL, tmp_path)
    assert found[0][0] == "defaults.title"
    assert "unknown placeholder {date}" in found[0][2]
    found = issues_of("defaults: {title: '{stem'}\n" + MINIMAL, tmp_path)
    assert found[0][0] == "defaults.title"


def test_wrong_types_are_named(tmp_path: Path) -> None:
    """Booleans, lists and mappings of the wrong kind are reported with what was found."""
    found = issues_of(
        """\
        workers: 3
        defaults:
          targets: fr-FR
          lipsync: "yes please"
          outputs: [video, audio]
        watches: {name: a}
        """,
        tmp_path,
    )
    assert [(k, ln) for k, ln, _ in found] == [
        ("workers", 1),
        ("defaults.targets", 3),
        ("defaults.lipsync", 4),
        ("defaults.outputs[1]", 5),
        ("watches", 6),
    ]
    assert "expected a list, got a string" in found[1][2]


def test_no_watches_in_a_file_is_an_error(tmp_path: Path) -> None:
    """A file without watches would watch nothing: say so instead of idling."""
    assert [k for k, _, _ in issues_of("log: {level: info}\n", tmp_path)] == ["watches"]
    assert [k for k, _, _ in issues_of("", tmp_path)] == ["watches"]


def test_build_config_validates_data_without_lines(tmp_path: Path) -> None:
    """build_config runs the same checks on data; watches are optional there."""
    cfg = build_config(
        {"defaults": {"targets": ["fr-FR"]}, "watches": [{"name": "d", "input": tmp_path}]},
        environ={},
    )
    assert cfg.watches[0].input == tmp_path
    assert build_config({}, environ={}).watches == ()
    with pytest.raises(ConfigError) as info:
        build_config({"workers": {"max_uploads": True}}, environ={})
    (issue,) = info.value.issues
    assert (issue.file, issue.key, issue.line) == ("<built-in>", "workers.max_uploads", None)
    with pytest.raises(ConfigError):
        build_config({}, environ={}, require_watches=True)


# --- the API key ---------------------------------------------------------------------------------


def test_key_resolution_order(tmp_path: Path) -> None:
    """env, then api_key_file, then $CREDENTIALS_DIRECTORY, then the docker secret, then inline."""
    key_file = tmp_path / "key.txt"
    key_file.write_text("from-file\n")
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "synthesia_api_key").write_text("  from-creds\r\n")
    docker = tmp_path / "docker_secret"
    docker.write_text("from-docker")
    inline = Secret("from-inline")

    def resolve(**kw: object) -> tuple[str | None, str | None]:
        environ = {k: str(v) for k, v in kw.items() if k.isupper()}
        key, source, problems = resolve_api_key(
            api_key_file=kw.get("file"),  # type: ignore[arg-type]
            inline=inline,
            environ=environ,
            docker_secret=docker,
        )
        assert problems == []
        return (key.reveal() if key else None), source

    everything = {"SYNTHESIA_API_KEY": "from-env", "CREDENTIALS_DIRECTORY": creds, "file": key_file}
    assert resolve(**everything) == ("from-env", "env SYNTHESIA_API_KEY")
    del everything["SYNTHESIA_API_KEY"]
    assert resolve(**everything) == ("from-file", f"file {key_file}")
    del everything["file"]
    assert resolve(**everything) == ("from-creds", f"credential {creds / 'synthesia_api_key'}")
    del everything["CREDENTIALS_DIRECTORY"]
    assert resolve(**everything) == ("from-docker", f"file {docker}")
    docker.unlink()
    assert resolve() == ("from-inline", "config synthesia.api_key")


def test_key_from_credentials_directory_through_the_file(tmp_path: Path) -> None:
    """load_config reads a systemd credential and strips its trailing newline."""
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "synthesia_api_key").write_text(KEY + "\n")
    path = tmp_path / "c.yaml"
    path.write_text(MINIMAL)
    cfg = load_config(path, environ={"CREDENTIALS_DIRECTORY": str(creds)})
    assert cfg.api_key is not None
    assert cfg.api_key.reveal() == KEY
    assert cfg.api_key_source == f"credential {creds / 'synthesia_api_key'}"
    assert cfg.source == path


def test_inline_key_is_allowed_with_a_warning(tmp_path: Path) -> None:
    """A key written in the file works, comes last, and check-config output warns about it."""
    cfg = parse(f"synthesia: {{api_key: {KEY}}}\n" + MINIMAL, tmp_path)
    assert cfg.api_key == KEY
    assert cfg.api_key_source == "config synthesia.api_key"
    assert any("api_key" in w for w in cfg.warnings)
    digits = parse("synthesia: {api_key: 0012345}\n" + MINIMAL, tmp_path)
    assert digits.api_key == "0012345"  # as typed, not the integer YAML would make of it
    env = parse(f"synthesia: {{api_key: {KEY}}}\n" + MINIMAL, tmp_path, SYNTHESIA_API_KEY="e")
    assert (env.api_key, env.api_key_source) == (Secret("e"), "env SYNTHESIA_API_KEY")


def test_unreadable_key_file_is_an_error_naming_it(tmp_path: Path) -> None:
    """A configured key file that cannot be read stops the load and names the path."""
    found = issues_of("synthesia:\n  api_key_file: missing/key\n" + MINIMAL, tmp_path)
    ((key, line, message),) = found
    assert (key, line) == ("synthesia.api_key_file", 2)
    assert str(tmp_path / "missing" / "key") in message


def test_key_with_inner_whitespace_or_empty_is_refused(tmp_path: Path) -> None:
    """A key that could not be sent in a header is refused without quoting it."""
    (tmp_path / "k").write_text("abc def\n")
    (tmp_path / "empty").write_text("\n")
    for name, expected in (("k", "spaces or control characters"), ("empty", "is empty")):
        found = issues_of(f"synthesia: {{api_key_file: {name}}}\n" + MINIMAL, tmp_path)
        assert expected in found[0][2]
        assert "abc" not in found[0][2]


def test_the_key_never_shows(tmp_path: Path) -> None:
    """repr, str, effective config, its YAML and every error text leave the key out."""
    cfg = parse(f"synthesia:\n  api_key: {KEY}\n" + MINIMAL, tmp_path)
    shown = [repr(cfg), str(cfg), repr(cfg.api_key), str(cfg.api_key), f"{cfg.api_key}"]
    shown += [str(effective_config(cfg)), dump_effective(cfg)]
    assert all(KEY not in text for text in shown)
    assert effective_config(cfg)["synthesia"]["api_key"] == "***"
    assert effective_config(cfg)["synthesia"]["api_key_source"] == "config synthesia.api_key"
    bad_files = [
        f"synthesia:\n  api_key: [{KEY}\n" + MINIMAL,  # syntax error on the key's line
        f"synthesia:\n  api_key: {{{KEY}: 1}}\n" + MINIMAL,  # wrong type
        f"synthesia:\n  api_key: '{KEY}\x07'\n" + MINIMAL,  # control character
        f"synthesia:\n  api_key: {KEY}\n  api_key: {KEY}\n" + MINIMAL,  # duplicate
    ]
    for text in bad_files:
        with pytest.raises(ConfigError) as info:
            parse(text, tmp_path)
        assert KEY not in str(info.value)
        assert all(KEY not in repr(i) for i in info.value.issues)


def test_secret_behaves_like_a_value() -> None:
    """Secrets compare by value, are falsy when empty, and only reveal() gives the text."""
    assert Secret("a") == Secret("a")
    assert Secret("a") != Secret("b")
    assert not Secret("")
    assert Secret("a").reveal() == "a"
    assert {Secret("a"), Secret("a")} == {Secret("a")}


# --- shipped files -------------------------------------------------------------------------------


def test_example_file_is_valid_and_shows_every_key() -> None:
    """config.example.yaml loads as-is and mentions every documented key."""
    path = REPO / "config.example.yaml"
    cfg = load_config(path, environ={"HOME": "/home/op"})
    assert [w.name for w in cfg.watches] == ["marketing", "nas-training"]
    nas = cfg.watch("nas-training")
    assert (nas.mode, nas.output, nas.stable_seconds) == ("polling", None, 60.0)
    text = path.read_text()
    for doc in REFERENCE:
        assert f"{doc.path.rsplit('.', 1)[-1].removeprefix('watches[].')}:" in text, doc.path


def test_reference_documents_every_key() -> None:
    """Each key has a type, a default and a description; watch keys appear under defaults."""
    paths = [d.path for d in REFERENCE]
    assert len(paths) == len(set(paths))
    assert all(d.type and d.default and d.description for d in REFERENCE)
    watch_fields = set(cfgmod.WatchConfig.__dataclass_fields__)
    documented = {p.split(".", 1)[1] for p in paths if p.startswith(("defaults.", "watches[]."))}
    assert documented == watch_fields


def test_docs_configuration_md_is_generated() -> None:
    """docs/configuration.md is exactly render_reference(), so the docs cannot drift."""
    assert (REPO / "docs" / "configuration.md").read_text() == render_reference()


def test_load_config_reports_unreadable_files(tmp_path: Path) -> None:
    """A missing config file is one issue naming it, not a traceback."""
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nope.yaml", environ={})
    assert info.value.issues[0].file == str(tmp_path / "nope.yaml")
    assert os.strerror(2) in str(info.value)
