"""The operator console and push API (the `web` extra): Starlette, Jinja2, htmx, uvicorn.

Only modules of this package import those libraries; the daemon imports it only when
``web.listen`` is set, so an install without the extra runs everything else.
"""
