"""The device agent: lease work from the service, measure it, upload it, lose nothing.

One loop: lease a batch -> heartbeat while measuring it (the profiler's engine, rounds
interleaved across the batch) -> spool the results locally -> upload them -> drop them
from the spool. A stop request (SIGINT/SIGTERM) finishes the measurement visit in hand,
uploads what is complete and releases the rest of the lease.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from devices.fingerprint import fingerprint, fingerprint_id
from devices.runtimes.base import Prepared, Runtime
from devices.spool import Spool
from latency_service.client import ClientError, HwlatClient, ServiceUnavailable
from latency_service.schemas import AgentDeviceOut, Lease, LeaseItem
from profiler import reference
from profiler.errors import MeasureError, classify
from profiler.hoststate import host_state
from profiler.ops import OpSpec
from profiler.timing import Engine, Measurement, TimingConfig

log = logging.getLogger("hwlat.agent")
STATS = (
    "median_ms",
    "mean_ms",
    "std_ms",
    "min_ms",
    "p10_ms",
    "p90_ms",
    "iqr_ms",
    "samples",
    "calls_per_sample",
    "ci_half_width_ms",
    "target_met",
    "stable",
    "first_call_ms",
)
NetworkBuilder = Callable[[dict[str, Any]], tuple[Any, Any]]  # network JSON -> (module, x)


@dataclass
class AgentOptions:
    batch: int = 16
    max_items: int | None = None  # stop after this many items (results + errors)
    once: bool = False  # drain the queue and exit instead of polling
    heartbeat_s: float = 30.0
    poll_s: float = 5.0
    new_revision: bool = False
    reference: bool = True  # measure the service's reference panel
    reference_every: int = 1  # ... with every Nth batch (the first of a run always)


class Heartbeat(threading.Thread):
    """Extends a lease every `every_s` seconds until stopped; failures are only logged."""

    def __init__(self, client: HwlatClient, lease_id: str, every_s: float):
        super().__init__(daemon=True)
        self.client, self.lease_id, self.every_s = client, lease_id, every_s
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(self.every_s):
            try:
                self.client.heartbeat(self.lease_id)
            except Exception as exc:  # the lease may still be fine; the upload will tell
                log.warning("heartbeat for lease %s failed: %s", self.lease_id, exc)

    def stop(self) -> None:
        self.done.set()
        self.join(timeout=5)


class Agent:
    def __init__(
        self,
        client: HwlatClient,
        runtime: Runtime,
        timing: TimingConfig,
        options: AgentOptions,
        spool: Spool,
        run_id: str,
        build_network: NetworkBuilder | None = None,
        progress: Callable[[int], None] | None = None,
    ):
        self.client, self.runtime, self.timing = client, runtime, timing
        self.options, self.spool, self.run_id = options, spool, run_id
        self.build_network = build_network
        self.progress = progress or (lambda n: None)
        self.requeued: Callable[[int], None] = lambda n: None  # the service queued n again
        self.stop_event = threading.Event()
        self._describe: dict[str, Any] | None = None
        self.panel: str | None = None  # the reference panel the service asked for
        self._panel_ops: dict[str, Prepared] | None = None  # prepared once, reloaded per batch
        self._batches = 0  # batches measured in this run

    @property
    def stopping(self) -> bool:
        return self.stop_event.is_set()

    def hello(self) -> AgentDeviceOut:
        """Send this machine's fingerprint; the service refuses a different machine."""
        fp = fingerprint(self.runtime)
        out = self.client.hello(
            fp, fingerprint_id(fp), self.runtime.name, self.options.new_revision
        )
        # only a panel this agent knows: an older service asks for none and would refuse it
        wanted = out.reference_panel if self.options.reference else None
        self.panel = wanted if wanted == reference.PANEL else None
        return out

    def run(self) -> int:
        """Work until stopped, or (with --once) until the queue is empty. Returns how many
        items were finished (measured or failed)."""
        self.replay_spool()
        done = 0
        while not self.stopping:
            room = self.options.batch
            if self.options.max_items is not None:
                room = min(room, self.options.max_items - done)
                if room <= 0:
                    break
            lease = self.client.lease(room)
            if not lease.items:
                # --once drains: wait while other agents (or dead ones, until their leases
                # expire) still hold items that may come back to the queue
                if self.options.once and self.client.me().leased == 0:
                    break
                self.stop_event.wait(self.options.poll_s)
                continue
            done += self.work(lease)
        self.replay_spool()
        return done

    def work(self, lease: Lease) -> int:
        assert lease.lease_id is not None  # a lease with items has an id
        beat = Heartbeat(self.client, lease.lease_id, self.options.heartbeat_s)
        beat.start()
        try:
            results, errors, untouched, reading = self.measure(lease.items)
        finally:
            beat.stop()
        if results or errors:
            entry = self.spool.add(lease.lease_id, self.run_id, results, errors, reading)
            self.upload(entry)
        if untouched:
            self.client.release(lease.lease_id, untouched)
        return len(results) + len(errors)

    def measure(
        self, items: list[LeaseItem]
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[int], dict[str, Any] | None]:
        """(results, errors, item ids left unmeasured, the reference reading or None)."""
        prepared: dict[int, Prepared] = {}
        errors: list[dict[str, Any]] = []
        for item in items:
            if self.stopping:
                break
            try:
                prepared[item.item_id] = self.prepare(item)
            except (MeasureError, ValueError) as exc:
                errors.append(self._error(item.item_id, classify(exc)))
        self.progress(len(errors))
        before = host_state()
        engine = Engine(self.timing)
        panel = self.reference_ops() if prepared and self._panel_due() else {}
        self._batches += bool(prepared)
        outcome = engine.measure(
            [(str(i), p.runnable) for i, p in prepared.items()]
            + [(f"ref:{key}", p.runnable) for key, p in panel.items()],
            stop=lambda: self.stopping,
        )
        reading = self._reading(outcome, panel)
        host = {"before": before, "after": host_state()}
        results = []
        by_id = {item.item_id: item for item in items}
        outcome = {k: v for k, v in outcome.items() if not k.startswith("ref:")}
        for key, res in outcome.items():
            item_id = int(key)
            if isinstance(res, Measurement):
                results.append(self._result(by_id[item_id], res, prepared[item_id], host))
            else:
                errors.append(self._error(item_id, res))
        self.progress(len(outcome))
        finished = {r["item_id"] for r in results} | {e["item_id"] for e in errors}
        left = [i.item_id for i in items if i.item_id not in finished]
        return results, errors, left, reading

    def _panel_due(self) -> bool:
        """Every Nth batch, starting with the run's first: the service divides a batch
        without a reading of its own by its run's median factor."""
        return self._batches % self.options.reference_every == 0

    def reference_ops(self) -> dict[str, Prepared]:
        """The panel's blocks, prepared once and reloaded for every batch (a fresh session
        per batch, like the batch's own ops). Empty without a panel; a panel block that
        cannot be prepared turns the panel off with a warning, never the agent."""
        if self.panel is None:
            return {}
        if self._panel_ops is None:
            try:
                ops = reference.panel_ops(self.runtime.precision)
                self._panel_ops = {op.key: self.runtime.prepare(op) for op in ops}
            except (MeasureError, ValueError) as exc:
                log.warning("reference panel off: cannot prepare it (%s)", exc)
                self.panel, self._panel_ops = None, {}
                return {}
        else:
            for p in self._panel_ops.values():
                p.runnable.reload()
        return self._panel_ops

    def _reading(
        self, outcome: dict[str, Measurement | MeasureError], panel: dict[str, Prepared]
    ) -> dict[str, Any] | None:
        """The panel as measured in this batch; None unless every block was measured."""
        got = {key: outcome.get(f"ref:{key}") for key in panel}
        if not panel or not all(isinstance(m, Measurement) for m in got.values()):
            return None
        ops = {}
        for key, m in got.items():
            assert isinstance(m, Measurement)  # checked just above
            stats = m.stats.to_dict()  # an infinite CI (too few samples) becomes None
            ops[key] = {k: stats[k] for k in ("median_ms", "ci_half_width_ms", "stable")}
        return {"panel": self.panel, "ops": ops}

    def prepare(self, item: LeaseItem) -> Prepared:
        if item.kind == "op":
            assert item.op is not None  # op items carry their spec
            return self.runtime.prepare(OpSpec.from_dict(item.op))
        if self.build_network is None or item.network is None:
            raise MeasureError("this agent cannot build whole networks")
        module, x = self.build_network(item.network)
        return self.runtime.prepare_network(module, x, item.network.get("arch_hash", ""))

    def _result(
        self, item: LeaseItem, m: Measurement, prep: Prepared, host: dict[str, Any]
    ) -> dict[str, Any]:
        if self._describe is None:
            self._describe = self.runtime.describe()
        data = m.to_dict()
        extra = {k: v for k, v in data.items() if k not in STATS}
        return {
            "item_id": item.item_id,
            "key": item.key,
            "stats": {k: data[k] for k in STATS},
            "runtime": self._describe,
            "host_state": host,
            "extra": {**extra, "export_s": prep.export_s, "info": prep.info},
        }

    @staticmethod
    def _error(item_id: int, exc: MeasureError) -> dict[str, Any]:
        return {"item_id": item_id, "type": exc.kind, "message": str(exc)[:4000]}

    def upload(self, entry: dict[str, Any]) -> bool:
        """Upload a spooled batch; keep it spooled if the service cannot be reached."""
        try:
            out = self.client.upload(
                entry["lease_id"],
                entry["run_id"],
                entry["results"],
                entry["errors"],
                entry.get("reference"),  # spools written before the panel have none
            )
            if out.remeasure:  # the service judged the machine disturbed for these
                log.info("the service queued %d ops of this batch again", out.remeasure)
                self.requeued(out.remeasure)
        except ServiceUnavailable as exc:
            log.warning("upload failed, kept in %s: %s", self.spool.path, exc)
            return False
        except ClientError as exc:  # it can never succeed: say so and drop it
            log.error("service refused a spooled batch (%s); dropping it", exc)
        self.spool.remove(entry)
        return True

    def replay_spool(self) -> None:
        for entry in list(self.spool.entries):
            self.upload(entry)
