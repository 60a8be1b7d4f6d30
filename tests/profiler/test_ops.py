"""OpSpec: canonical keys, JSON, hashing, immutability and validation."""

from __future__ import annotations

import dataclasses
import json

import pytest
from hypothesis import given, settings

from profiler._kinds import KINDS
from profiler.blocks import build
from profiler.ops import OpSpec
from tests.profiler.strategies import EXAMPLES, mk, valid_specs

FAST = settings(max_examples=150, deadline=None)
DOC_KEY = "mbconv|cin=16,cout=24,e=6,g=1,k=3,s=2,se=0|1x16x32x32|float32"


def test_documented_example() -> None:
    spec = OpSpec.make("mbconv", (1, 16, 32, 32), cin=16, cout=24, e=6, k=3, s=2)
    assert spec.key == DOC_KEY
    assert str(spec) == DOC_KEY
    assert spec.out_shape == (1, 24, 16, 16)
    assert spec.p == dict(act="relu6", cin=16, cout=24, e=6, g=1, k=3, s=2, se=0, res=0, pw=0)
    assert OpSpec.from_key(DOC_KEY) == spec


def test_optional_params_appear_in_the_key_only_when_not_default() -> None:
    base = mk("conv", 8, cin=8, cout=8, k=3, s=1)
    assert base.key == "conv|cin=8,cout=8,g=1,k=3,s=1|1x8x8x8|float32"
    assert base.replace(bn=1, act="relu", preact=0) == base
    assert base.replace(act="none", bn=0).key == (
        "conv|act=none,bn=0,cin=8,cout=8,g=1,k=3,s=1|1x8x8x8|float32"
    )
    assert mk("dil_conv", 4, c=4, k=3, s=1, d=3).key == "dil_conv|c=4,d=3,k=3,s=1|1x4x8x8|float32"
    assert "cmid" not in mk("head", 4, cin=4, cout=2).key
    assert "cmid=5," in mk("head", 4, cin=4, cmid=5, cout=2).key


@FAST
@given(valid_specs())
def test_key_round_trip(spec: OpSpec) -> None:
    assert spec.params == tuple(sorted(spec.params))
    assert [name for name, _ in spec.params] == sorted(p.name for p in KINDS[spec.kind].params)
    again = OpSpec.from_key(spec.key)
    assert again == spec
    assert hash(again) == hash(spec)
    assert again.key == spec.key


@FAST
@given(valid_specs())
def test_json_and_dict_round_trip(spec: OpSpec) -> None:
    text = spec.to_json()
    assert json.loads(text) == spec.to_dict()
    assert OpSpec.from_json(text) == spec
    assert OpSpec.from_dict(spec.to_dict()) == spec
    assert OpSpec.from_dict(json.loads(text)).key == spec.key


@FAST
@given(valid_specs())
def test_key_is_canonical(spec: OpSpec) -> None:
    kind, raw, shape, dtype = spec.key.split("|")
    items = raw.split(",")
    assert items == sorted(items, key=lambda item: item.split("=")[0])
    assert len(items) >= 2  # every kind writes at least two parameters
    shuffled = "|".join((kind, ",".join(reversed(items)), shape, dtype))
    with pytest.raises(ValueError, match="canonical"):
        OpSpec.from_key(shuffled)


@FAST
@given(valid_specs())
def test_equality_and_hash_ignore_parameter_order(spec: OpSpec) -> None:
    reordered = OpSpec.make(spec.kind, spec.shape, spec.dtype, **dict(reversed(spec.params)))
    direct = OpSpec(spec.kind, tuple(reversed(spec.params)), list(spec.shape), spec.dtype)
    assert reordered == spec == direct
    assert hash(reordered) == hash(spec) == hash(direct)
    table = {spec: "a"}
    table[reordered] = "b"
    assert table == {direct: "b"}
    assert spec.replace() == spec


def test_different_specs_differ() -> None:
    keys = {spec.key for spec in EXAMPLES}
    assert len(keys) == len(EXAMPLES) == len(set(EXAMPLES))
    spec = EXAMPLES[0]
    assert spec.replace(dtype="float16") != spec
    assert spec.replace(shape=(2, 3, 16, 16)) != spec
    assert spec.replace(cout=17) != spec


def test_frozen() -> None:
    spec = EXAMPLES[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.kind = "mbconv"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.shape = (1, 1, 1, 1)  # type: ignore[misc]
    spec.p["cin"] = 99  # a copy: the spec does not change
    assert spec.p["cin"] == 3


def test_replace_revalidates() -> None:
    spec = mk("mbconv", 16, cin=16, cout=16, e=3, k=5, s=1, res=1)
    assert spec.replace(k=3).p["k"] == 3
    assert spec.replace(dtype="int8").dtype == "int8"
    with pytest.raises(ValueError, match=r"^res:"):
        spec.replace(s=2)


def test_shuffle_mid_is_optional_and_keyed_only_when_set() -> None:
    default = mk("shuffle", 16, cin=16, cout=32, k=3, s=2)
    assert default.key == "shuffle|cin=16,cout=32,k=3,s=2|1x16x8x8|float32"  # as before mid
    assert default.replace(mid=0) == default
    narrow = default.replace(mid=24)
    assert narrow.key == "shuffle|cin=16,cout=32,k=3,mid=24,s=2|1x16x8x8|float32"
    assert OpSpec.from_key(narrow.key) == narrow
    module, x = build(narrow)
    assert tuple(module(x).shape) == narrow.out_shape == (1, 32, 4, 4)
    assert module.main[0][0].out_channels == 24  # type: ignore[index,union-attr]
    xception = mk("xception", 8, cin=8, cout=8, s=1, mid=3)
    module, x = build(xception)
    assert tuple(module(x).shape) == (1, 8, 8, 8)
    assert "mid=3," in xception.key
    assert "mid" not in mk("xception", 8, cin=8, cout=8, s=1).key
    with pytest.raises(ValueError, match=r"^mid: mid=16 is the default cout / 2"):
        default.replace(mid=16)  # one key per block: the default is never written out
    with pytest.raises(ValueError, match=r"^mid: must be in \[0, "):
        default.replace(mid=-1)


def test_pw_is_optional_and_only_at_e1_without_groups() -> None:
    """Keys written before `pw` existed keep their meaning: pw=0 is left out."""
    spec = OpSpec.make("mbconv", (1, 16, 32, 32), cin=16, cout=24, e=6, k=3, s=2)
    assert spec.key == DOC_KEY and spec.replace(pw=0) == spec
    e1 = mk("mbconv", 16, cin=16, cout=16, e=1, k=3, s=1, act="relu", res=1)
    assert e1.key == "mbconv|act=relu,cin=16,cout=16,e=1,g=1,k=3,res=1,s=1,se=0|1x16x8x8|float32"
    pw = e1.replace(pw=1)
    assert pw.key == (
        "mbconv|act=relu,cin=16,cout=16,e=1,g=1,k=3,pw=1,res=1,s=1,se=0|1x16x8x8|float32"
    )
    assert OpSpec.from_key(pw.key) == pw and pw != e1
    # where the block expands anyway, pw=1 would be a second key for the same block
    with pytest.raises(ValueError, match=r"^pw: pw=1 applies only at e=1, g=1"):
        spec.replace(pw=1)
    with pytest.raises(ValueError, match=r"^pw: pw=1 applies only at e=1, g=1"):
        e1.replace(g=2, pw=1)
    with pytest.raises(ValueError, match=r"^pw: must be one of \[0, 1\]"):
        e1.replace(pw=2)
