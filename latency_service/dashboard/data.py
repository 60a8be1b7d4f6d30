"""What the dashboard pages show, gathered from the repository and the read cache.

Everything here only reads. The page handlers (views.py) pass these plain dicts to the
templates; the charts' data travels inside the page as JSON for static/dashboard.js.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from latency_service.cache import ReadCache, Snapshot, with_predicted
from latency_service.models import Device
from latency_service.predictors.calibration import assess
from latency_service.repository import devices as devices_repo
from latency_service.repository import imports as imports_repo
from latency_service.repository import latency as latency_repo
from latency_service.repository import predictors as predictors_repo
from latency_service.repository import reference as reference_repo
from latency_service.repository import work as work_repo
from latency_service.repository.ops import space_ops
from searchers.spaces.darts_draw import genotype_svg

WIDE_CI = 0.05  # a measured cell whose CI half-width is over 5% of its median is flagged
FAILED_SHOWN = 50


def fingerprint_summary(fp: dict[str, Any] | None) -> str:
    """One line a person can read: CPU, cores, GPUs and the runtime's library versions."""
    if not fp:
        return "no agent has said hello yet"
    m = fp.get("machine", {})
    parts = [str(m.get("cpu_model") or m.get("arch") or "?")]
    if m.get("cpu_physical_cores"):
        parts.append(f"{m['cpu_physical_cores']} cores")
    parts += [g.get("name", "GPU") for g in m.get("gpus") or []]
    parts += [f"{lib} {m[lib]}" for lib in ("onnxruntime", "torch") if m.get(lib)]
    return " · ".join(parts)


def device_rows(s: Session) -> list[dict[str, Any]]:
    rows = []
    for device in devices_repo.list_devices(s):
        summary = devices_repo.summarize(s, device)
        rows.append(
            {
                "name": device.name,
                "runtime": device.runtime,
                "revision": device.revision,
                "source": device.source,
                "fingerprint": (
                    fingerprint_summary(device.fingerprint)
                    if device.source == "measured"
                    else "imported: "
                    + "; ".join(imports_repo.describe(r) for r in imports_repo.current(s, device))
                ),
                "fingerprint_id": device.fingerprint_id,
                "measurements": summary.measurements,
                "coverage": [{**c, "label": coverage_label(c)} for c in summary.coverage],
                "work": {k: summary.work.get(k, 0) for k in ("pending", "leased", "failed")},
                "last_seen_at": device.last_seen_at,
            }
        )
    return rows


def coverage_label(c: dict[str, Any]) -> str:
    """'fbnet@32 ×1', with the space's options in brackets when it has any."""
    options = ",".join(f"{k}={v}" for k, v in sorted(c["options"].items()))
    return f"{c['space']}@{c['resolution']} ×{c['width']:g}" + (f" ({options})" if options else "")


def ago(when: datetime | None, now: datetime) -> str:
    if when is None:
        return "never"
    s = max(0, int((now - when).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if s >= size:
            return f"{s // size} {unit} ago"
    return f"{s} s ago"


def tables(cache: ReadCache, snap: Snapshot, s: Session, device: Device) -> list[dict[str, Any]]:
    """The latency table of every space the device was asked to cover, as heatmaps."""
    out = []
    for row in devices_repo.coverage(s, device):
        c: dict[str, Any] = dict(row)
        options = tuple(sorted(c["options"].items()))
        ops = space_ops(c["space"], c["resolution"], c["width"], c["classes"], options)
        found = with_predicted(cache, snap, [op.key for op in ops])
        table = latency_repo.lut(
            found, device.name, snap.revision, c["space"], c["resolution"], c["width"],
            c["classes"], options,
        )  # fmt: skip
        out.append(heatmap(table, coverage_label(c)))
    return out


def heatmap(table: dict[str, Any], label: str) -> dict[str, Any]:
    """A LUT as a [layers x candidates] grid of ms, with each cell's state:
    measured, predicted, missing (legal, no value yet), or illegal (None)."""
    candidates = table["candidates"]
    z: list[list[float | None]] = []
    state: list[list[str | None]] = []
    hover: list[list[str]] = []
    for layer in table["layers"]:
        cells = [layer["cells"].get(name) for name in candidates]
        z.append([c["ms"] if c else None for c in cells])
        state.append([_state(c) for c in cells])
        pairs = zip(candidates, cells, strict=True)
        hover.append([_hover(layer["name"], name, c) for name, c in pairs])
    counts = {k: sum(row.count(k) for row in state) for k in _STATES}
    return {
        "label": label,
        "space": table["space"],
        "resolution": table["resolution"],
        "layers": [layer["name"] for layer in table["layers"]],
        "candidates": candidates,
        "z": z,
        "state": state,
        "hover": hover,
        "counts": counts,
        "legal": sum(counts.values()),
        "fixed": table["fixed"],
        "coverage": table["coverage"],
    }


_STATES = ("measured", "flagged", "predicted", "missing")


def _state(cell: dict[str, Any] | None) -> str | None:
    if cell is None:
        return None
    if cell["source"] != "measured":
        return str(cell["source"])
    return "flagged" if flagged(cell) else "measured"


def flagged(cell: dict[str, Any]) -> bool:
    """An unstable measurement, or one whose CI is missing or wide. An imported cell is
    flagged only by a wide CI: many files give no spread, which says nothing against it.
    The measurement's own CI: the between-session term a reported one adds is the
    device's, and measuring the op again would not narrow it."""
    ci = cell.get("within_ci_half_width_ms")
    if cell.get("imported"):
        return ci is not None and ci > WIDE_CI * cell["ms"]
    return not cell.get("stable", True) or ci is None or ci > WIDE_CI * cell["ms"]


def provenance(s: Session, device: Device) -> list[dict[str, Any]]:
    """The files an imported device's current revision holds, with what they filled."""
    return [
        {
            "file_name": r.file_name,
            "format": r.format,
            "sha256": r.sha256,
            "imported_at": r.imported_at,
            "config": coverage_label(
                {
                    "space": r.space,
                    "resolution": r.resolution,
                    "width": r.width,
                    "options": _options(r.options),
                }
            ),
            "classes": r.classes,
            "entries": len(r.entries),
            "mapped": r.mapped,
            "unfilled": r.unfilled,
            "unmapped": r.unmapped,
            "carried": r.carried_from is not None,
        }
        for r in imports_repo.current(s, device)
    ]


def _options(text: str) -> dict[str, int]:
    return dict(devices_repo.parse_options(text))


def _hover(layer: str, candidate: str, c: dict[str, Any] | None) -> str:
    if c is None:
        return f"{layer} · {candidate}: not allowed here"
    head = f"{layer} · {candidate}<br>{c['key']}<br>"
    if c["source"] == "missing":
        return head + "not measured yet"
    if c["source"] == "predicted":
        version = c["predictor_version"]
        return head + f"{c['ms']:.4f} ms ± {c['error_ms']:.4f} (predicted, v{version})"
    ci = c.get("ci_half_width_ms")
    ci_text = f"± {ci:.4f}" if ci is not None else "(no CI)"
    imported = c.get("imported")
    if imported:
        return head + (f"{c['ms']:.4f} ms {ci_text} (the {imported['statistic']} in "
                       f"{imported['file']}, {imported['format']})")  # fmt: skip
    note = "" if c.get("stable", True) else " · unstable"
    return head + f"{c['ms']:.4f} ms {ci_text} (measured{note})"


def failed_items(s: Session, device: Device) -> list[dict[str, Any]]:
    return [
        {
            "id": i.id,
            "what": i.op.key if i.op else _network_label(i.network),
            "attempts": i.attempts,
            "error": i.last_error or "",
            "updated_at": i.updated_at,
        }
        for i in work_repo.list_work(s, device, "failed", FAILED_SHOWN)
    ]


def drift_runs(s: Session, device: Device, tolerance: float) -> list[dict[str, Any]]:
    """Per agent run at the current revision: the reference panel's drift, newest first."""
    runs = reference_repo.drift_by_run(s, reference_repo.readings(s, device), tolerance)
    return [vars(r) for r in sorted(runs, key=lambda r: r.last_at, reverse=True)]


def _network_label(net: dict[str, Any] | None) -> str:
    if not net:
        return "network"
    return f"network {net.get('space')}@{net.get('resolution')} {net.get('arch_hash', '')[:12]}"


def predictor_views(s: Session, device: Device) -> list[dict[str, Any]]:
    """The current predictor of every op kind, with its held-out metrics and pairs."""
    out = []
    for kind, row in sorted(predictors_repo.latest(s, device).items()):
        pairs = row.heldout or []
        out.append(
            {
                "kind": kind,
                "model": row.model,
                "version": row.version,
                "dtype": row.dtype,
                "samples": row.samples,
                "trained_at": row.trained_at,
                "chosen": row.metrics[row.model],
                "candidates": sorted(row.metrics.items(), key=lambda kv: kv[1]["rmspe"]),
                "measured": [float(p[0]) for p in pairs],
                "predicted": [float(p[1]) for p in pairs],
            }
        )
    return out


def validation_view(points: list[tuple[Any, dict[str, Any]]], scopes: list[str]) -> dict[str, Any]:
    """Network estimates against end-to-end measurements: the raw table sum, and the
    calibrated estimate of each network from a calibration fitted without it (LOO), on
    the networks of its scope (space, resolution, width, classes) as estimates are."""
    rows = [
        {
            "arch_hash": r.arch_hash[:12],
            "space": f"{r.space}@{r.resolution} ×{r.width:g}",
            "scope": scope,
            "measured_ms": r.median_ms,
            "ci_half_width_ms": r.ci_half_width_ms,
            "table_sum_ms": t["table_sum_ms"],
            "ops": t["ops"],
            "predicted_ops": t["predicted_ops"],
            "calibrated_ms": None,
            "genotype_svg": genotype_drawing(r),
        }
        for (r, t), scope in zip(points, scopes, strict=True)
    ]
    if not rows:
        note = "no end-to-end network measurements yet; queue some with `hwlat validate`"
        return {"rows": rows, "raw": None, "calibrated": None, "note": note}
    return {"rows": rows, **assess(rows)}


def genotype_drawing(r: Any) -> str | None:
    """A darts network's two cells as SVG; None for other spaces, and for an arch that
    cannot be drawn (an old or malformed one): a drawing never fails the page."""
    if r.space != "darts":
        return None
    try:
        return genotype_svg(dict(r.arch))
    except Exception:  # decoration only: whatever the stored arch holds, show nothing
        return None
