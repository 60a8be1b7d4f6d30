"""The dashboard: server-rendered, read-only pages over the service's own data.

GET only, behind the same read policy as the API (`ReaderDep`); charts are drawn in the
browser by Plotly, whose JavaScript the service serves itself (nothing from a CDN).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import plotly
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session

from latency_service import __version__
from latency_service.cache import ReadCache, Snapshot
from latency_service.dashboard import data
from latency_service.deps import READ_COOKIE, PageReaderDep, SessionDep
from latency_service.models import Device, utcnow
from latency_service.repository import devices as devices_repo
from latency_service.repository.devices import no_device
from latency_service.routes._errors import http_errors
from latency_service.routes.estimates import calibration_points, row_scope

HERE = Path(__file__).parent
PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
STATIC = {"dashboard.js": "text/javascript", "dashboard.css": "text/css"}
IMMUTABLE = {"Cache-Control": "public, max-age=31536000, immutable"}  # versioned URLs

templates = Jinja2Templates(directory=HERE / "templates")
templates.env.globals.update(version=__version__, plotly_version=plotly.__version__)
templates.env.filters["ms"] = lambda v: "–" if v is None else f"{v:.4f}"
templates.env.filters["pct"] = lambda v: "–" if v is None else f"{v:.0%}"
templates.env.filters["when"] = lambda v: v.strftime("%Y-%m-%d %H:%M:%S UTC") if v else "never"
# rows for a page's JSON without a bulky field the page shows otherwise (a drawing)
templates.env.filters["without"] = lambda rows, key: [
    {k: v for k, v in r.items() if k != key} for r in rows
]

router = APIRouter(include_in_schema=False, dependencies=[PageReaderDep])
public = APIRouter(include_in_schema=False)  # the login page and static files


def _page(request: Request, name: str, **context: Any) -> HTMLResponse:
    return templates.TemplateResponse(request, name, context)


def _snapshot(request: Request, name: str) -> Snapshot:
    cache: ReadCache = request.app.state.cache
    snap = cache.fresh(name) or cache.load(name)
    if snap is None:
        raise HTTPException(404, no_device(name))
    return snap


@router.get("/", response_class=HTMLResponse)
def index(request: Request, session: SessionDep) -> HTMLResponse:
    """Every device: runtime, machine, revision, measurements, coverage, work, contact."""
    now = utcnow()
    rows = data.device_rows(session)
    for row in rows:
        row["ago"] = data.ago(row["last_seen_at"], now)
    return _page(request, "index.html", devices=rows)


@router.get("/devices/{name}", response_class=HTMLResponse)
def device_page(request: Request, name: str, session: SessionDep) -> HTMLResponse:
    """Each covered space's latency table as a heatmap, and the failed work items."""
    snap = _snapshot(request, name)
    device = _device(session, name)
    tolerance = request.app.state.settings.drift_tolerance
    return _page(
        request,
        "device.html",
        device=device,
        fingerprint=data.fingerprint_summary(device.fingerprint),
        tables=data.tables(request.app.state.cache, snap, session, device),
        failed=data.failed_items(session, device),
        provenance=data.provenance(session, device),
        drift=data.drift_runs(session, device, tolerance),
        tolerance=tolerance,
        predictors=sorted(snap.predictors),
        wide_ci=data.WIDE_CI,
        active="tables",
    )


@router.get("/devices/{name}/predictors", response_class=HTMLResponse)
def predictors_page(request: Request, name: str, session: SessionDep) -> HTMLResponse:
    """Held-out accuracy of each op kind's predictor, and its predicted-vs-measured plot."""
    device = _device(session, name)
    views = data.predictor_views(session, device)
    return _page(request, "predictors.html", device=device, predictors=views, active="predictors")


@router.get("/devices/{name}/validation", response_class=HTMLResponse)
def validation_page(request: Request, name: str, session: SessionDep) -> HTMLResponse:
    """Network estimates (raw table sum, calibrated) against end-to-end measurements."""
    snap = _snapshot(request, name)
    device = _device(session, name)
    points = calibration_points(request, snap)
    view = data.validation_view(points, [row_scope(row) for row, _ in points])
    return _page(request, "validation.html", device=device, view=view, active="validation")


def _device(session: Session, name: str) -> Device:
    with http_errors():
        return devices_repo.get_device(session, name)


@public.get("/login", response_class=HTMLResponse)
def login(request: Request) -> HTMLResponse:
    """Asks for a read token when the service runs with READ_ACCESS=token; the page's
    script keeps it in a cookie (reads only) and nothing is sent until a page is opened."""
    return _page(request, "login.html", cookie=READ_COOKIE)


@public.get(f"/static/plotly-{plotly.__version__}.min.js")
def plotly_js() -> FileResponse:
    """Plotly's bundled JavaScript, from the installed `plotly` package."""
    return FileResponse(PLOTLY_JS, media_type="text/javascript", headers=IMMUTABLE)


@public.get("/static/{version}/{filename}")
def static(version: str, filename: str) -> FileResponse:
    if filename not in STATIC or version != __version__:
        raise HTTPException(404, f"no static file {version}/{filename}")
    return FileResponse(HERE / "static" / filename, media_type=STATIC[filename], headers=IMMUTABLE)
