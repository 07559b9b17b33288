"""Conformance with the published API document: each request and answer the real service may
treat more strictly than a lenient simulator, tested against the simulator in its strict reading.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from synthesia_watchd.simulator import Simulator


@pytest.fixture
def http() -> Iterator[requests.Session]:
    """A requests session closed after the test."""
    with requests.Session() as session:
        yield session


@pytest.fixture
def strict(sim_factory: Callable[..., Simulator]) -> Simulator:
    """The simulator in the document's strict reading: repeated-key filter, exact language
    match, bare key only, 403 for a missing header."""
    return sim_factory(
        filter_encoding="repeated",
        filter_base_match=False,
        accept_bearer=False,
        missing_auth_status=403,
    )


def _auth(sim: Simulator) -> dict[str, str]:
    return {"Authorization": sim.api_key}


# --- item 8: the simulator type-checks every field before using it -----------------------------


@pytest.mark.parametrize(
    ("path", "method", "body", "field"),
    [
        (
            "/v2/assets",
            "POST",
            {"contentType": {}, "configuration": {"name": "dubbing"}},
            "contentType",
        ),
        (
            "/v2/assets",
            "POST",
            {"contentType": "video/mp4", "configuration": {"name": {}}},
            "configuration.name",
        ),
        (
            "/v2/dubbing",
            "POST",
            {
                "title": "t",
                "targetLanguages": ["es-ES"],
                "sourceAssetId": "a",
                "sourceLanguage": {},
            },
            "sourceLanguage",
        ),
        (
            "/v2/dubbing",
            "POST",
            {"title": "t", "targetLanguages": [{}], "sourceAssetId": "a", "sourceLanguage": "en"},
            "targetLanguages",
        ),
        (
            "/v2/dubbing",
            "POST",
            {
                "title": "t",
                "targetLanguages": ["es-ES"],
                "sourceAssetId": "a",
                "sourceLanguage": "en",
                "videoDuration": [],
            },
            "videoDuration",
        ),
        (
            "/v2/dubbing",
            "POST",
            {
                "title": "t",
                "targetLanguages": ["es-ES"],
                "sourceAssetId": "a",
                "sourceLanguage": "en",
                "visibility": {},
            },
            "visibility",
        ),
        ("/v2/dubbing/{pid}", "PUT", {"targetLanguages": [{}]}, "targetLanguages"),
        ("/v2/dubbing/{pid}", "PUT", {"targetLanguages": [["es-ES"]]}, "targetLanguages"),
    ],
)
def test_unhashable_fields_are_400_not_a_dropped_connection(
    strict: Simulator,
    http: requests.Session,
    path: str,
    method: str,
    body: dict[str, Any],
    field: str,
) -> None:
    """Objects and arrays where a string belongs get a 400 naming the field (item 8)."""
    url = strict.url + path.format(pid="00000000-0000-4000-8000-000000000000")
    resp = http.request(method, url, json=body, headers=_auth(strict))
    assert resp.status_code == 400
    assert resp.headers["Content-Type"] == "application/json"
    assert field in resp.json()["context"]


# --- item 9: the document's reading of the filter by default; 405 for wrong methods ------------


def test_default_filter_reading_is_repeated_keys(
    sim_factory: Callable[..., Simulator], http: requests.Session
) -> None:
    """A default simulator reads targetLanguages as repeated keys only; 'both' stays an option."""
    from test_simulator import ready_project

    sim = sim_factory()
    pid = ready_project(http, sim, ["es-ES", "fr-FR"])
    url = f"{sim.url}/v2/dubbing/{pid}"
    repeated = http.get(url, params={"targetLanguages": ["es-ES", "fr-FR"]}, headers=_auth(sim))
    assert repeated.status_code == 200
    assert sorted(a["language"] for a in repeated.json()["dubbedAssets"]) == ["es-ES", "fr-FR"]
    comma = http.get(url, params={"targetLanguages": "es-ES,fr-FR"}, headers=_auth(sim))
    assert comma.status_code == 404
    lenient = sim_factory(filter_encoding="both")
    pid = ready_project(http, lenient, ["es-ES", "fr-FR"])
    url = f"{lenient.url}/v2/dubbing/{pid}"
    both = http.get(url, params={"targetLanguages": "es-ES,fr-FR"}, headers=_auth(lenient))
    assert both.status_code == 200 and len(both.json()["dubbedAssets"]) == 2


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("GET", "/v2/assets", "POST"),
        ("DELETE", "/v2/assets/00000000-0000-4000-8000-000000000000", "GET"),
        ("PUT", "/v2/assets/00000000-0000-4000-8000-000000000000", "GET"),
        ("GET", "/v2/dubbing", "POST"),
        ("DELETE", "/v2/dubbing/00000000-0000-4000-8000-000000000000", "GET, PUT"),
        ("POST", "/v2/dubbing/00000000-0000-4000-8000-000000000000", "GET, PUT"),
    ],
)
def test_wrong_method_on_known_path_is_405(
    strict: Simulator, http: requests.Session, method: str, path: str, allow: str
) -> None:
    """A known path with a method it does not serve answers 405 with an Allow header."""
    resp = http.request(method, strict.url + path, headers=_auth(strict))
    assert resp.status_code == 405
    assert resp.headers["Allow"] == allow
    assert resp.json()["error"] == "Method Not Allowed"
    unknown = http.get(strict.url + "/v2/nothing", headers=_auth(strict))
    assert unknown.status_code == 404
