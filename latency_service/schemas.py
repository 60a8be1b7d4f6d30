"""Request and response models of API v1 (pydantic; no FastAPI or SQLAlchemy here)."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from profiler.lutformats.base import MAX_BYTES, check_size

NAME = r"^[a-z0-9][a-z0-9._-]{0,63}$"
IMPORT_MB = MAX_BYTES >> 20  # the largest real table is well under 1 MB
RUN_ID = r"^[A-Za-z0-9._:-]{1,64}$"
# ids are 32-bit integers on PostgreSQL: anything larger is a 422, not a database error
ItemId = Annotated[int, Field(ge=1, le=2**31 - 1)]
ErrorType = Literal[
    "export_error", "runtime_error", "timeout", "out_of_memory", "unavailable", "error"
]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DeviceCreate(Strict):
    name: str = Field(pattern=NAME, description="Unique device name, e.g. 'pixel7-cpu'.")
    runtime: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,31}$", description="e.g. ort-mobile")


class Coverage(BaseModel):
    space: str
    resolution: int
    width: float
    classes: int
    options: dict[str, int] = Field(default_factory=dict)
    measured: int
    predicted: int = Field(0, description="cells filled by a predictor (not measured)")
    total: int
    fraction: float = Field(description="measured / total (predicted cells do not count)")


class ImportOut(BaseModel):
    """One foreign latency table imported into a device: where its numbers came from."""

    id: int
    revision: int
    file_name: str
    sha256: str
    format: str
    space: str
    resolution: int
    width: float
    classes: int
    options: dict[str, int] = Field(default_factory=dict)
    imported_at: datetime
    mapped: int = Field(description="op cells the file filled")
    unfilled: int = Field(description="ops of the space the file has no number for")
    unmapped: int = Field(description="entries of the file no op of the space uses")
    carried_from: int | None = Field(
        None, description="copied into this revision from that import (another file replaced)"
    )


class ImportDetail(ImportOut):
    unfilled_ops: list[tuple[str, str]] = Field(description="[slot, why] per unfilled op")
    unmapped_keys: list[tuple[str, str]] = Field(description="[file key, why] per entry")


class DeviceOut(BaseModel):
    name: str
    runtime: str
    revision: int
    source: Literal["measured", "imported"] = Field(
        "measured", description="imported: its numbers came from files (see provenance)"
    )
    provenance: list[ImportOut] = Field(
        default_factory=list, description="imported: the files of the current revision"
    )
    fingerprint_id: str | None
    created_at: datetime
    last_seen_at: datetime | None
    measurements: int
    work: dict[str, int] = Field(description="work items per state")
    coverage: list[Coverage]


class ImportRequest(Strict):
    """A foreign latency table (ProxylessNAS/OFA yaml, NNI lut.txt, ...) for a space."""

    file_name: str = Field(min_length=1, max_length=255)
    format: str | None = Field(
        None, max_length=32, description="e.g. proxyless-yaml (default: told by content)"
    )
    content: str = Field(description=f"the file's text (UTF-8), at most {IMPORT_MB} MB")
    space: str = Field(max_length=32)
    resolution: int | None = Field(None, ge=1, le=4096)
    width: float = Field(1.0, gt=0, le=8)
    classes: int | None = Field(None, ge=1, le=100_000)
    options: dict[str, int] = Field(default_factory=dict)

    @field_validator("content")
    @classmethod
    def _size(cls, v: str) -> str:
        check_size(len(v.encode()))
        return v


class ImportResult(BaseModel):
    device: str
    revision: int
    created_device: bool
    noop: bool = Field(description="this file was already imported for this configuration")
    mapped: int
    unfilled: list[tuple[str, str]] = Field(description="[slot, why] per unfilled op")
    unmapped: list[tuple[str, str]] = Field(description="[file key, why] per unused entry")
    sha256: str
    format: str


class ImportedRef(BaseModel):
    """A measured value that came from a file: which one, and what statistic it is."""

    file: str
    sha256: str
    format: str
    statistic: str


class TokenOut(BaseModel):
    prefix: str
    token: str | None = Field(None, description="shown once, at creation")


class DeviceCreated(BaseModel):
    device: DeviceOut
    token: str = Field(description="the device's agent token; shown only this once")


class NetworkSpec(Strict):
    """A whole architecture of a space, to be built and measured end to end."""

    space: str
    resolution: int | None = Field(None, ge=1, le=4096)
    width: float = Field(1.0, gt=0, le=8)
    classes: int | None = Field(None, ge=1, le=100_000)
    options: dict[str, int] = Field(default_factory=dict)
    arch: dict[str, Any] | list[Any] = Field(description="the space's architecture JSON")


class JobRequest(Strict):
    """A search space (all of its ops), an explicit list of op keys, or whole networks."""

    space: str | None = None
    resolution: int | None = Field(None, ge=1, le=4096)
    width: float = Field(1.0, gt=0, le=8)
    classes: int | None = Field(None, ge=1, le=100_000)
    options: dict[str, int] = Field(default_factory=dict, description="e.g. darts C, cells")
    ops: list[str] | None = Field(None, max_length=10_000)
    networks: list[NetworkSpec] | None = Field(None, max_length=1000)

    @model_validator(mode="after")
    def _one_source(self) -> JobRequest:
        given = sum(x is not None for x in (self.space, self.ops, self.networks))
        if given != 1:
            raise ValueError("give exactly one of 'space' (with 'resolution'), 'ops' or 'networks'")
        return self


class JobResult(BaseModel):
    total: int
    new: int
    already_measured: int
    already_queued: int


class RefineRequest(Strict):
    """More training ops near those the current predictor of a kind gets most wrong."""

    kind: str = Field(description="op kind of the predictor, e.g. mbconv")
    n: int = Field(ge=1, le=100_000, description="how many new ops to sample")
    seed: int = Field(0, ge=-(2**63), le=2**63 - 1)
    worst_fraction: float = Field(
        0.1, gt=0, le=1, description="share of the training ops (worst held-out error first)"
    )


class RefineResult(JobResult):
    worst: int = Field(description="training ops sampled around")
    worst_mean_abs_error: float = Field(description="their mean |predicted / measured - 1|")


class RemeasureRequest(Strict):
    """Measure again what a device measured while disturbed (the service's rules)."""

    kind: str | None = Field(None, description="only ops of this kind (default: all)")


class RemeasureResult(BaseModel):
    checked: int = Field(description="ops whose newest measurement was looked at")
    disturbed: int = Field(description="of those, measured in a batch beyond the drift rule")
    unstable: int = Field(description="of those, with a CI beyond the CI rule")
    queued: int
    at_limit: int = Field(description="measured 1 + HWLAT_REMEASURE_MAX times already")
    already_queued: int


class RetestRequest(Strict):
    """Measure random, already measured ops of a kind once more (see GET repeatability)."""

    kind: str
    n: int = Field(100, ge=1, le=10_000, description="ops to retest (at most; fewer if fewer)")
    seed: int = Field(0, ge=0, le=2**31 - 1)


class RetestResult(BaseModel):
    measured: int = Field(description="ops of the kind measured at the device's revision")
    already_retested: int
    already_queued: int
    queued: int


class CancelRequest(Strict):
    """Take pending work out of a device's queue: all of it, or what the filters match."""

    kind: str | None = Field(
        None, description="only ops of this op kind (mbconv, conv, ...), or 'network'"
    )
    reason: Literal["queue", "remeasure", "retest"] | None = Field(
        None, description="only items queued for this reason (default: any)"
    )
    newest: int | None = Field(
        None, ge=1, le=10_000_000, description="at most this many, the last queued first"
    )


class CancelResult(BaseModel):
    cancelled: int = Field(description="pending items taken out of the queue")
    pending_left: int = Field(description="matching items still pending (beyond `newest`)")
    leased: int = Field(description="matching items an agent holds now: they finish")


CiBasis = Literal["retests", "panel", "within"]
CI_TOTAL = (
    "95% interval half-width of the op's latency on this device: the measurement's own "
    "(within_ci_half_width_ms) with the between-session term that ci_basis names added in "
    "quadrature, sized so that two measurements' intervals cover their difference 95% of "
    "the time when the op is measured again in another session"
)
CI_WITHIN = "the stored measurement's own 95% half-width: its samples and rounds only"
CI_BASIS = (
    "where the between-session term comes from: retests (of this kind on this device), "
    "panel (the reference panel's spread between batches), within (none: a device "
    "without either, or an imported value, measured on another machine)"
)


class RepeatabilityOut(BaseModel):
    """How well a kind's labels repeat: retests of random measured ops against their
    labels (drift-divided, as training sees them). The ceiling on held-out accuracy."""

    pairs: int
    within_5pct: float
    within_10pct: float
    rmspe: float = Field(description="RMS of retest / label - 1")
    median_ratio: float = Field(description="median retest / label: a shift between times")
    ci_coverage: float | None = Field(
        None,
        description="share of pairs whose raw difference lies within the two measurements' "
        "own combined 95% CIs, as stored (within_ci_half_width_ms; about 0.95 when those "
        "CIs tell the whole story, less when the machine varies more between sessions)",
    )
    nominal: float = Field(0.95, description="the level every reported interval claims")
    reported_ci_coverage: float | None = Field(
        None,
        description="the same share with the intervals lookups report now "
        "(ci_half_width_ms: the between-session term added), each pair judged by a sigma "
        "calibrated without it (leave-one-out); compare with nominal",
    )
    ci_basis: CiBasis | None = Field(
        None, description="where this kind's between-session sigma comes from"
    )
    sigma: float | None = Field(
        None,
        description="the between-session relative standard deviation lookups add for this "
        "kind (null: none, basis within)",
    )


class QuietOut(BaseModel):
    """A predictor's held-out shares on its quiet labels only: the ops whose every
    measurement had a 95% CI half-width within `ci_limit` of its median. A subset, not a
    random sample (quiet ops tend to be the slower ones)."""

    ci_limit: float
    labels: int = Field(description="quiet labels")
    of: int = Field(description="all the predictor's labels")
    rmspe: float
    within_5pct: float
    within_10pct: float


class RepeatabilityReport(BaseModel):
    device: str
    revision: int
    kinds: dict[str, RepeatabilityOut]


class LeaseRequest(Strict):
    max_items: int = Field(16, ge=1, le=256)


class LeaseItem(BaseModel):
    item_id: int
    kind: Literal["op", "network"]
    key: str | None
    op: dict[str, Any] | None
    network: dict[str, Any] | None
    attempts: int


class Lease(BaseModel):
    lease_id: str | None
    expires_at: datetime | None
    items: list[LeaseItem]


class Stats(Strict):
    """The profiler's statistics of one op (milliseconds per call)."""

    median_ms: float = Field(gt=0)
    mean_ms: float = Field(gt=0)
    std_ms: float = Field(ge=0)
    min_ms: float = Field(gt=0)
    p10_ms: float = Field(gt=0)
    p90_ms: float = Field(gt=0)
    iqr_ms: float = Field(ge=0)
    samples: int = Field(ge=1)
    calls_per_sample: int = Field(ge=1)
    ci_half_width_ms: float | None = Field(None, ge=0)
    target_met: bool
    stable: bool
    first_call_ms: float | None = Field(None, ge=0)

    @field_validator("*")
    @classmethod
    def _finite(cls, v: Any) -> Any:
        if isinstance(v, float) and not math.isfinite(v):
            raise ValueError("must be a finite number (failures are errors, not latencies)")
        return v

    @model_validator(mode="after")
    def _ordered(self) -> Stats:
        if not self.min_ms <= self.p10_ms <= self.median_ms <= self.p90_ms:
            raise ValueError("need min_ms <= p10_ms <= median_ms <= p90_ms")
        return self


class UploadResult(Strict):
    item_id: ItemId
    key: str | None = Field(None, description="the op key (op items); omitted for networks")
    stats: Stats
    runtime: dict[str, Any] = Field(default_factory=dict)
    host_state: dict[str, Any] = Field(default_factory=dict)
    extra: dict[str, Any] = Field(default_factory=dict)


class UploadError(Strict):
    item_id: ItemId
    type: ErrorType
    message: str = Field(max_length=4000)


class ReferenceOp(Strict):
    """One panel block's median in a batch (see profiler.reference)."""

    median_ms: float = Field(gt=0, allow_inf_nan=False)
    ci_half_width_ms: float | None = Field(None, ge=0, allow_inf_nan=False)
    stable: bool


class ReferenceReading(Strict):
    """The reference panel as measured in the same interleaved rounds as the batch."""

    panel: str = Field(max_length=32, description="panel version, e.g. 'mbconv3-v1'")
    ops: dict[str, ReferenceOp] = Field(max_length=16, description="panel op key -> median")


class Upload(Strict):
    run_id: str = Field(
        pattern=RUN_ID, description="unique per agent run: makes uploads idempotent"
    )
    results: list[UploadResult] = Field(default_factory=list, max_length=1000)
    errors: list[UploadError] = Field(default_factory=list, max_length=1000)
    reference: ReferenceReading | None = Field(
        None, description="the reference panel measured with this batch (drift check)"
    )


class UploadOut(BaseModel):
    accepted: int
    duplicates: int = Field(description="already stored for this run id: nothing changed")
    rejected: int = Field(description="items whose lease ran out: lease again")
    failed: int = Field(description="errors that used up the item's attempts")
    requeued: int = Field(description="errors (or released items) sent back to the queue")
    remeasure: int = Field(
        0,
        description="accepted ops queued once more: their batch's reference panel ran "
        "beyond HWLAT_REMEASURE_DRIFT of the baseline, or their CI beyond HWLAT_REMEASURE_CI",
    )


class Release(Strict):
    item_ids: list[ItemId] | None = Field(None, description="default: every item of the lease")


class PredictorRef(BaseModel):
    kind: str
    version: int
    model: str
    samples: int
    trained_at: datetime


class LatencyOut(BaseModel):
    """A measured value (statistics, run id) or a predicted one (predictor, error)."""

    key: str
    source: Literal["measured", "predicted"]
    median_ms: float
    ci_half_width_ms: float | None = Field(None, description=CI_TOTAL)
    within_ci_half_width_ms: float | None = Field(None, description=CI_WITHIN)
    ci_basis: CiBasis | None = Field(None, description=CI_BASIS)
    p10_ms: float | None = None
    p90_ms: float | None = None
    std_ms: float | None = None
    samples: int | None = None
    stable: bool | None = None
    run_id: str | None = None
    measured_at: datetime | None = None
    repeat_rel_error: float | None = Field(
        None,
        description="measured: how far a re-measurement of this kind on this device lands "
        "(RMS relative difference of its retests, GET .../repeatability), which "
        "within_ci_half_width_ms does not include; null until the kind has 20 retest pairs",
    )
    error_ms: float | None = Field(None, description="predicted: expected error (RMSPE x ms)")
    rel_error: float | None = Field(None, description="predicted: held-out RMSPE")
    predictor: PredictorRef | None = None
    imported: ImportedRef | None = Field(
        None, description="measured on another machine: the file it was imported from"
    )


class BatchRequest(Strict):
    keys: list[str] = Field(min_length=1)


class BatchOut(BaseModel):
    device: str
    revision: int
    results: dict[str, LatencyOut]
    missing: list[str]


class LutCell(BaseModel):
    key: str
    ms: float | None
    source: Literal["measured", "predicted", "missing"]
    ci_half_width_ms: float | None = Field(None, description=CI_TOTAL)
    within_ci_half_width_ms: float | None = Field(None, description=CI_WITHIN)
    ci_basis: CiBasis | None = Field(None, description=CI_BASIS)
    stable: bool | None = None
    repeat_rel_error: float | None = None
    error_ms: float | None = None
    predictor_version: int | None = None
    imported: ImportedRef | None = None


class LutLayer(BaseModel):
    name: str
    group: str
    cells: dict[str, LutCell | None] = Field(description="candidate -> cell; null = illegal")


class LutOut(BaseModel):
    device: str
    revision: int
    space: str
    resolution: int
    width: float
    classes: int
    candidates: list[str]
    fixed: list[LutCell]
    layers: list[LutLayer]
    coverage: Coverage


class AgentHello(Strict):
    """What an agent says when it starts: the fingerprint of its machine and runtime."""

    fingerprint: dict[str, Any]
    fingerprint_id: str = Field(pattern=r"^[0-9a-f]{8,64}$")
    runtime: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,31}$")
    new_revision: bool = Field(False, description="start a new device revision on mismatch")


class AgentDeviceOut(BaseModel):
    device: str
    runtime: str
    revision: int
    fingerprint_id: str | None
    pending: int
    leased: int = Field(description="items held by agents now (expired leases included)")
    reference_panel: str | None = Field(
        None, description="the reference panel to measure with every batch (drift check)"
    )


class WorkItemOut(BaseModel):
    item_id: int
    kind: str
    key: str | None
    network: dict[str, Any] | None
    state: str
    attempts: int
    last_error: str | None
    updated_at: datetime


class TrainRequest(Strict):
    kinds: list[str] | None = Field(None, description="default: every measured kind")
    models: list[str] | None = Field(
        None,
        description="candidates to cross-validate (default: the default set of the "
        "predictor registry; ['all']: every candidate)",
    )


class PredictorOut(BaseModel):
    kind: str
    version: int
    model: str
    dtype: str
    samples: int
    metrics: dict[str, dict[str, float]] = Field(
        description="held-out (k-fold) RMSPE and ±5%/±10% shares of every candidate"
    )
    sklearn_version: str
    trained_at: datetime
    drift: dict[str, Any] | None = Field(
        None,
        description="how the labels were made: divided by their batch's reference-panel "
        "drift factor against this baseline (none: as measured), and an op's measurements "
        "combined as `repeats` says (metrics and held-out pairs are on those labels); "
        "`kernels`: the measured conv ops a kernel-table model was fitted on (newest id "
        "used, and how their labels were made)",
    )
    heldout: list[tuple[float, float]] | None = None


class TrainOut(BaseModel):
    trained: list[PredictorOut]
    skipped: dict[str, str]
    repeatability: dict[str, RepeatabilityOut] = Field(
        default_factory=dict,
        description="per trained kind with retests: how well its labels repeat, the "
        "ceiling on the held-out shares (queue retests with POST .../jobs:retest)",
    )
    quiet_labels: dict[str, QuietOut] = Field(
        default_factory=dict,
        description="per trained kind with at least 20 quiet labels: the chosen model's "
        "held-out shares on them alone, how much of a shortfall noisy labels explain",
    )


class EstimateRequest(Strict):
    """An architecture of a space (`space`, `resolution`, ..., `arch`) or an op list."""

    space: str = "fbnet"
    resolution: int | None = Field(None, ge=1, le=4096)
    width: float = Field(1.0, gt=0, le=8)
    classes: int | None = Field(None, ge=1, le=100_000)
    options: dict[str, int] = Field(default_factory=dict)
    arch: dict[str, Any] | list[Any] | None = None
    ops: list[str] | None = Field(None, max_length=10_000)

    @model_validator(mode="after")
    def _one(self) -> EstimateRequest:
        if (self.arch is None) == (self.ops is None):
            raise ValueError("give either 'arch' (with 'space', 'resolution') or 'ops'")
        return self


class EstimateOut(BaseModel):
    ops: int
    table_sum_ms: float
    table_error_ms: float = Field(description="root-sum-square of per-op CIs / errors")
    measured_ops: int
    predicted_ops: int
    missing: list[str]
    calibrated_ms: float | None
    calibrated_error_ms: float | None
    calibration: dict[str, Any]


class NetworkOut(BaseModel):
    arch_hash: str
    arch: dict[str, Any]
    median_ms: float
    ci_half_width_ms: float | None
    stable: bool
    run_id: str
    measured_at: datetime


class Health(BaseModel):
    status: Literal["ok"]
    database: str


class DriftRunOut(BaseModel):
    run_id: str
    readings: int = Field(description="agent batches of this run with a reference reading")
    flagged: int = Field(description="batches whose factor is out of tolerance")
    first_at: datetime
    last_at: datetime
    median_factor: float = Field(description=">1: the machine ran slower than its baseline")
    min_factor: float
    max_factor: float
    measurements: int = Field(description="op measurements taken in these batches")


class DriftOut(BaseModel):
    """How steady the machine was: the reference panel per agent run, against the
    median of every reading at this device revision."""

    device: str
    revision: int
    panel: str
    tolerance: float
    baseline_ms: dict[str, float]
    readings: int
    flagged: int
    runs: list[DriftRunOut]
