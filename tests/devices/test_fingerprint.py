"""Device fingerprints are stable on one machine and change with runtime settings."""

from __future__ import annotations

from devices.fingerprint import fingerprint, fingerprint_id, machine_facts
from devices.runtimes import create_runtime


def test_same_machine_same_settings_same_id() -> None:
    a = fingerprint_id(fingerprint(create_runtime("ort-cpu", threads=2)))
    b = fingerprint_id(fingerprint(create_runtime("ort-cpu", threads=2)))
    assert a == b and len(a) == 16


def test_threads_precision_and_runtime_change_the_id() -> None:
    ids = {
        fingerprint_id(fingerprint(create_runtime("ort-cpu", threads=1))),
        fingerprint_id(fingerprint(create_runtime("ort-cpu", threads=2))),
        fingerprint_id(fingerprint(create_runtime("torch-cpu", threads=1))),
        fingerprint_id(fingerprint(create_runtime("torch-cpu", threads=1, precision="bfloat16"))),
        fingerprint_id(fingerprint(create_runtime("ort-mobile"))),
        fingerprint_id(fingerprint(create_runtime("ort-mobile-int8"))),
    }
    assert len(ids) == 6


def test_machine_facts_hold_hardware_and_versions_but_nothing_volatile() -> None:
    facts = machine_facts()
    for key in (
        "cpu_model",
        "cpu_logical_cores",
        "memory_gib",
        "os",
        "python",
        "torch",
        "onnxruntime",
        "gpus",
    ):
        assert key in facts
    assert "loadavg" not in facts and "mhz" not in facts
