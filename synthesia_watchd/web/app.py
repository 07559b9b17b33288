"""The console's routes: pages (Jinja2, live parts refreshed by htmx) and the JSON API.

Pages only read; every change is a POST that goes through ``lifecycle``. File names and
errors come from the outside world, so templates autoescape everything.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.applications import Starlette
from starlette.datastructures import URL
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from synthesia_watchd.domain.errors import StaleTransition, WatchdError
from synthesia_watchd.domain.states import JobState
from synthesia_watchd.engine import lifecycle

from . import data
from .data import Console
from .security import CsrfError, Guard, allowed_hosts, check_same_origin, check_token

STATIC = Path(__file__).parent / "static"
_STATE_NAMES = frozenset(s.value for s in JobState)


def _age(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h{(seconds % 3600) // 60:02d}m"


def _when(epoch: float | None) -> str:
    import time

    return "" if epoch is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch))


def _states(values: list[str]) -> list[JobState] | None:
    states = [JobState(v) for v in values if v in _STATE_NAMES]
    return states or None


class ConsoleApp:
    """Builds the Starlette app over a ``Console``; one per daemon."""

    def __init__(
        self, console: Console, *, csrf: str, listen: str, token: str | None = None
    ) -> None:
        self.console = console
        self.csrf = csrf
        self.env = Environment(
            loader=PackageLoader("synthesia_watchd.web", "templates"),
            autoescape=select_autoescape(default=True, default_for_string=True),
        )
        self.env.filters["age"] = _age
        self.env.filters["when"] = _when
        routes = [
            Route("/", self.overview),
            Route("/jobs", self.jobs),
            Route("/jobs/{job_id:int}", self.job),
            Route("/failures", self.failures),
            Route("/attention", self.attention),
            Route("/jobs/{job_id:int}/{action:str}", self.job_action, methods=["POST"]),
            Route("/control/{action:str}", self.control, methods=["POST"]),
            Route("/api/v1/status", self.api_status),
            Route("/api/v1/jobs", self.api_jobs, methods=["GET"]),
            Route("/api/v1/jobs", self.api_push, methods=["POST"]),
            Route("/api/v1/jobs/{job_id:int}", self.api_show),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
        ]
        self.starlette = Starlette(routes=routes)
        self.app = Guard(
            self.starlette,
            hosts=allowed_hosts(listen, console.config().web_allowed_hosts),
            token=token,
        )

    # --- rendering ---------------------------------------------------------------------------

    def render(self, request: Request, name: str, status: int = 200, **ctx: Any) -> HTMLResponse:
        ctx.setdefault("holds", lifecycle.holds_data(self.console.ledger))
        ctx.setdefault("pauses", dict(self.console.pauses()))
        ctx.setdefault("watch_names", [w.name for w in self.console.config().watches])
        ctx.setdefault("attention_count", self.console.ledger.count_in((JobState.NEEDS_ATTENTION,)))
        flash = request.cookies.get("flash")
        body = self.env.get_template(name).render(
            request_path=request.url.path,
            live_url=str(
                URL(request.url.path + "?" + request.url.query).include_query_params(live=1)
            ),
            csrf=self.csrf,
            fragment=_fragment(request),
            flash=flash,
            **ctx,
        )
        response = HTMLResponse(body, status_code=status)
        if flash and not _fragment(request):
            response.delete_cookie("flash")
        return response

    # --- pages -------------------------------------------------------------------------------

    async def overview(self, request: Request) -> Response:
        return self.render(request, "overview.html", view=data.overview(self.console))

    async def jobs(self, request: Request) -> Response:
        states = _states(request.query_params.getlist("state"))
        watch = request.query_params.get("watch") or None
        page = _page(request)
        view = data.jobs_page(self.console, states=states, watch=watch, page=page)
        return self.render(
            request,
            "jobs.html",
            view=view,
            selected_states=[s.value for s in states or ()],
            selected_watch=watch or "",
            all_states=[s.value for s in JobState],
            **_page_links(request, page),
        )

    async def job(self, request: Request) -> Response:
        try:
            view = data.job_detail(self.console, request.path_params["job_id"])
        except KeyError:
            return self.render(request, "message.html", 404, title="No such job", message="")
        return self.render(request, "job.html", job=view)

    async def failures(self, request: Request) -> Response:
        page = _page(request)
        view = data.failures(self.console, page)
        return self.render(request, "failures.html", view=view, **_page_links(request, page))

    async def attention(self, request: Request) -> Response:
        page = _page(request)
        view = data.attention(self.console, page)
        return self.render(request, "attention.html", view=view, **_page_links(request, page))

    # --- changes -----------------------------------------------------------------------------

    async def _checked_form(self, request: Request) -> dict[str, str]:
        check_same_origin(request.headers, request.url.scheme)
        form = await request.form()
        given = request.headers.get("x-csrf-token") or form.get("csrf")
        check_token(given if isinstance(given, str) else None, self.csrf)
        return {k: v for k, v in form.items() if isinstance(v, str)}

    async def job_action(self, request: Request) -> Response:
        try:
            await self._checked_form(request)
        except CsrfError as exc:
            return self.render(request, "message.html", 403, title="Refused", message=str(exc))
        job_id = request.path_params["job_id"]
        action = request.path_params["action"]
        ledger = self.console.ledger
        try:
            job = ledger.get(job_id)
            if action == "retry":
                message = lifecycle.retry(ledger, job, now=self.console.now)
            elif action == "resubmit":
                message = lifecycle.resubmit(ledger, job, now=self.console.now)
            elif action == "cancel":
                message = lifecycle.cancel(ledger, job)
            else:
                return self.render(request, "message.html", 404, title="No such action", message="")
        except KeyError:
            return self.render(request, "message.html", 404, title="No such job", message="")
        except (WatchdError, StaleTransition) as exc:
            return self.render(
                request, "message.html", 409, title="Not done", message=str(exc), job_id=job_id
            )
        self.console.wake()
        return _see_other(request.url_for("job", job_id=job_id), message)

    async def control(self, request: Request) -> Response:
        try:
            form = await self._checked_form(request)
        except CsrfError as exc:
            return self.render(request, "message.html", 403, title="Refused", message=str(exc))
        watch = form.get("watch") or None
        if watch is not None and watch not in {w.name for w in self.console.config().watches}:
            return self.render(request, "message.html", 404, title="No such watch", message="")
        action = request.path_params["action"]
        ledger = self.console.ledger
        if action == "pause":
            message = lifecycle.pause(ledger, watch=watch, now=self.console.now)
        elif action == "drain":
            message = lifecycle.drain(ledger, watch=watch, now=self.console.now)
        elif action == "resume":
            message = lifecycle.resume(ledger, watch=watch)
        else:
            return self.render(request, "message.html", 404, title="No such action", message="")
        self.console.wake()
        back = form.get("back") or "/"
        if not back.startswith("/") or back.startswith("//"):
            back = "/"
        return _see_other(URL(back), message)

    # --- API ---------------------------------------------------------------------------------

    async def api_status(self, request: Request) -> Response:
        return JSONResponse(data.api_status(self.console))

    async def api_jobs(self, request: Request) -> Response:
        try:
            limit = int(request.query_params.get("limit", "50"))
        except ValueError:
            return JSONResponse({"error": "limit must be a whole number"}, status_code=400)
        bad = [s for s in request.query_params.getlist("state") if s not in _STATE_NAMES]
        if bad:
            return JSONResponse({"error": f"unknown state {bad[0]!r}"}, status_code=400)
        states = _states(request.query_params.getlist("state"))
        watch = request.query_params.get("watch") or None
        return JSONResponse(data.api_jobs(self.console, states=states, watch=watch, limit=limit))

    async def api_show(self, request: Request) -> Response:
        try:
            return JSONResponse(data.api_show(self.console, request.path_params["job_id"]))
        except KeyError:
            return JSONResponse({"error": "no such job"}, status_code=404)

    async def api_push(self, request: Request) -> Response:
        try:
            check_same_origin(request.headers, request.url.scheme)
        except CsrfError as exc:
            return JSONResponse({"error": str(exc)}, status_code=403)
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            return JSONResponse({"error": "send a JSON body (application/json)"}, status_code=415)
        try:
            body = json.loads(await request.body())
        except ValueError:
            return JSONResponse({"error": "the body is not valid JSON"}, status_code=400)
        if not isinstance(body, dict) or not all(
            isinstance(body.get(k), str) and body.get(k) for k in ("watch", "path")
        ):
            return JSONResponse(
                {"error": 'expected {"watch": NAME, "path": PATH relative to its input}'},
                status_code=400,
            )
        try:
            watch = self.console.config().watch(body["watch"])
        except KeyError:
            return JSONResponse({"error": f"no watch named {body['watch']!r}"}, status_code=404)
        rel = Path(body["path"])
        if rel.is_absolute():
            return JSONResponse(
                {"error": "path must be relative to the watch's input folder"}, status_code=400
            )
        problem = self.console.offer(watch.name, watch.input / rel)
        if problem is not None:
            return JSONResponse({"error": problem}, status_code=422)
        return JSONResponse(
            {
                "accepted": True,
                "watch": watch.name,
                "path": str(rel),
                "note": f"taken once unchanged for {watch.stable_seconds:g}s; "
                "GET /api/v1/jobs?watch=... shows its job",
            },
            status_code=202,
        )


def _page(request: Request) -> int:
    """The list page asked for (``?page=``, 0 the newest); anything odd is the first."""
    try:
        return max(int(request.query_params.get("page", "0")), 0)
    except ValueError:
        return 0


def _page_links(request: Request, page: int) -> dict[str, Any]:
    """Links to a list's newest page and to the next older one, keeping its filters."""
    here = request.url.remove_query_params(["live", "page"])
    path = here.path + ("?" + here.query if here.query else "")
    return {"newest_url": path, "more_url": str(URL(path).include_query_params(page=page + 1))}


def _fragment(request: Request) -> bool:
    """htmx asks for the live part of a page only (no layout around it)."""
    return request.headers.get("hx-request") == "true" and request.query_params.get("live") == "1"


def _see_other(url: URL, message: str) -> Response:
    response = RedirectResponse(str(url), status_code=303)
    response.set_cookie(
        "flash",
        message[:300].encode("ascii", "replace").decode(),
        max_age=30,
        samesite="strict",
        httponly=True,
    )
    return response
