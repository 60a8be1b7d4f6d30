"""OpSpec validation: bad specs, keys and JSON raise ValueError naming the field first."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from profiler._kinds import KINDS
from profiler.ops import DTYPES, OpSpec
from tests.profiler.strategies import EXAMPLES, valid_specs

DOC_KEY = "mbconv|cin=16,cout=24,e=6,g=1,k=3,s=2,se=0|1x16x32x32|float32"


CONV = {"cin": 16, "cout": 16, "k": 3, "s": 1}
MB = {"cin": 16, "cout": 16, "e": 6, "k": 3, "s": 1}
S16 = (1, 16, 8, 8)


@pytest.mark.parametrize(
    ("field", "kind", "shape", "dtype", "params"),
    [
        ("kind", "nope", S16, "float32", CONV),
        ("foo", "conv", S16, "float32", {**CONV, "foo": 1}),
        ("cin", "conv", S16, "float32", {"cout": 16, "k": 3, "s": 1}),
        ("mode", "pool", S16, "float32", {"c": 16, "k": 3, "s": 1}),
        ("cout", "conv", S16, "float32", {**CONV, "cout": 0}),
        ("k", "conv", S16, "float32", {**CONV, "k": -3}),
        ("cmid", "head", S16, "float32", {"cin": 16, "cmid": -1, "cout": 10}),
        ("cin", "conv", S16, "float32", {**CONV, "cin": True}),
        ("cin", "conv", S16, "float32", {**CONV, "cin": 16.0}),
        ("cin", "conv", S16, "float32", {**CONV, "cin": "16"}),
        ("bn", "conv", S16, "float32", {**CONV, "bn": True}),
        ("act", "conv", S16, "float32", {**CONV, "act": "gelu"}),
        ("mode", "pool", S16, "float32", {"c": 16, "k": 3, "s": 1, "mode": "min"}),
        ("mode", "pool", S16, "float32", {"c": 16, "k": 3, "s": 1, "mode": 1}),
        ("k", "conv", S16, "float32", {**CONV, "k": 4}),
        ("k", "mbconv", S16, "float32", {**MB, "k": 2}),
        ("k", "pool", S16, "float32", {"c": 16, "k": 2, "s": 1, "mode": "max"}),
        ("dtype", "conv", S16, "float64", CONV),
        ("shape", "conv", (1, 16, 8), "float32", CONV),
        ("shape", "conv", (1, 16, 8, 8, 1), "float32", CONV),
        ("shape", "conv", (0, 16, 8, 8), "float32", CONV),
        ("shape", "conv", (1, 16, -8, 8), "float32", CONV),
        ("shape", "conv", (1, 16, 8.0, 8), "float32", CONV),
        ("shape", "conv", (1, 8, 8, 8), "float32", CONV),
        ("shape", "zero", S16, "float32", {"c": 8, "s": 1}),
        ("shape", "linear", S16, "float32", {"cin": 16, "cout": 10}),
        ("shape", "skip", (1, 16, 7, 8), "float32", {"cin": 16, "cout": 32, "s": 2}),
        ("res", "mbconv", S16, "float32", {**MB, "s": 2, "res": 1}),
        ("res", "mbconv", S16, "float32", {**MB, "cout": 24, "res": 1}),
        ("s", "mbconv", S16, "float32", {**MB, "s": 3}),
        ("k", "shuffle", S16, "float32", {**CONV, "k": 4}),
        ("k", "shuffle", S16, "float32", {**CONV, "k": 9}),
        ("cout", "shuffle", S16, "float32", {**CONV, "cout": 24}),
        ("cin", "shuffle", (1, 15, 8, 8), "float32", {**CONV, "cin": 15, "cout": 15}),
        ("cout", "xception", S16, "float32", {"cin": 16, "cout": 16, "s": 2}),
        ("cout", "xception", S16, "float32", {"cin": 16, "cout": 33, "s": 2}),
        ("k", "sep_conv", S16, "float32", {"c": 16, "k": 7, "s": 1}),
        ("cout", "skip", S16, "float32", {"cin": 16, "cout": 32, "s": 1}),
        ("cout", "skip", S16, "float32", {"cin": 16, "cout": 31, "s": 2}),
        ("g", "conv", S16, "float32", {**CONV, "g": 3}),
        ("g", "conv", S16, "float32", {**CONV, "cout": 12, "g": 8}),
        ("g", "mbconv", S16, "float32", {**MB, "cout": 15, "g": 2}),
    ],
)
def test_invalid_specs_name_the_field(
    field: str, kind: str, shape: tuple, dtype: str, params: dict
) -> None:
    with pytest.raises(ValueError, match=rf"^{field}:"):
        OpSpec.make(kind, shape, dtype, **params)


def _size_fields() -> list[tuple[OpSpec, str, int]]:
    """(spec, field, minimum) for every integer size parameter of every example spec."""
    return [
        (spec, p.name, p.minimum)
        for spec in EXAMPLES
        for p in KINDS[spec.kind].params
        if p.type is int and not p.choices
    ]


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(_size_fields()), st.integers(max_value=0), st.integers(0, 3))
def test_out_of_range_sizes_name_the_field(case: tuple, value: int, dim: int) -> None:
    spec, name, minimum = case
    with pytest.raises(ValueError, match=rf"^{name}:"):
        spec.replace(**{name: value + minimum - 1})
    shape = list(spec.shape)
    shape[dim] = value
    with pytest.raises(ValueError, match=r"^shape:"):
        spec.replace(shape=tuple(shape))


@settings(max_examples=50, deadline=None)
@given(valid_specs(), st.sampled_from(["float64", "int32", "", "Float32", "fp16"]))
def test_unknown_dtype(spec: OpSpec, dtype: str) -> None:
    assert dtype not in DTYPES
    with pytest.raises(ValueError, match=r"^dtype:"):
        spec.replace(dtype=dtype)


@pytest.mark.parametrize(
    ("key", "field"),
    [
        ("mbconv|cin=16|1x16x32x32", "key"),
        (DOC_KEY + "|", "key"),
        ("", "key"),
        (DOC_KEY.replace("mbconv", "mbconv2"), "kind"),
        (DOC_KEY.replace("k=3", "k=x"), "k"),
        (DOC_KEY.replace("k=3", "k=3.0"), "k"),
        (DOC_KEY.replace("k=3", "k=3,k=3"), "params"),
        (DOC_KEY.replace("k=3", "k"), "params"),
        (DOC_KEY.replace("k=3", "K=3"), "params"),
        (DOC_KEY.replace("1x16x32x32", "1x16x32"), "shape"),
        (DOC_KEY.replace("1x16x32x32", "1x16xax32"), "shape"),
        (DOC_KEY.replace("1x16x32x32", "1x16x32x-32"), "shape"),
        (DOC_KEY.replace("float32", "float64"), "dtype"),
        (DOC_KEY.replace("1x16x", "01x16x"), "key"),
        (DOC_KEY.replace("k=3", "k=+3"), "k"),
        (DOC_KEY.replace(",se=0", ""), "key"),
        (DOC_KEY.replace("s=2,se=0", "res=0,s=2,se=0"), "key"),
        (DOC_KEY.replace("se=0", "foo=1,se=0"), "foo"),
        (DOC_KEY.replace("s=2", "s=1").replace("se=0", "res=1,se=0"), "res"),
    ],
)
def test_malformed_keys(key: str, field: str) -> None:
    with pytest.raises(ValueError, match=rf"^{field}:"):
        OpSpec.from_key(key)


@pytest.mark.parametrize("name", ["dtype", "shape", "kind"])
def test_key_with_a_param_named_like_a_make_argument(name: str) -> None:
    with pytest.raises(ValueError, match=rf"^{name}:"):
        OpSpec.from_key(f"conv|cin=1,cout=1,{name}=1,k=1,s=1|1x1x1x1|float32")


def test_replace_with_a_param_named_like_a_make_argument() -> None:
    spec = OpSpec.make("zero", (1, 1, 1, 1), c=1, s=1)
    with pytest.raises(ValueError, match=r"^kind:"):
        spec.replace(kind=1)


def test_constructor_with_malformed_params() -> None:
    with pytest.raises(ValueError, match=r"^params/shape:"):
        OpSpec("conv", (1, 2))  # type: ignore[arg-type]


def test_json_with_a_param_named_like_a_make_argument() -> None:
    text = '{"kind":"conv","shape":[1,1,1,1],"params":{"cin":1,"cout":1,"k":1,"s":1,"kind":1}}'
    with pytest.raises(ValueError, match=r"^kind:"):
        OpSpec.from_json(text)


def test_malformed_json() -> None:
    for text, field in [
        ("{", "spec"),
        ("[]", "spec"),
        ('{"kind": "conv"}', "spec"),
        ('{"kind": "zero", "shape": [1, 1, 1, 1], "params": {"c": 1, "s": 1}, "x": 1}', "x"),
        ('{"kind": "zero", "shape": 5, "params": {"c": 1, "s": 1}}', "shape"),
        ('{"kind": "zero", "shape": [1, 1, 1, 1], "params": [1]}', "params"),
        ('{"kind": "zero", "shape": [1, 1, 1, 1], "params": {"c": 1}}', "s"),
    ]:
        with pytest.raises(ValueError, match=rf"^{field}:"):
            OpSpec.from_json(text)
    zero = OpSpec.from_json('{"kind": "zero", "shape": [1, 2, 3, 4], "params": {"c": 2, "s": 2}}')
    assert zero.key == "zero|c=2,s=2|1x2x3x4|float32"


def _mutate(key: str, data: st.DataObject) -> str:
    alphabet = st.sampled_from("|,=x-0123456789abceklmnopsrtuvz_ ")
    start = data.draw(st.integers(0, len(key)))
    stop = data.draw(st.integers(start, min(len(key), start + 4)))
    return key[:start] + data.draw(st.text(alphabet, max_size=4)) + key[stop:]


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_from_key_raises_value_error_or_round_trips(data: st.DataObject) -> None:
    if data.draw(st.booleans()):
        text = data.draw(st.text(max_size=60))
    else:
        text = _mutate(data.draw(valid_specs()).key, data)
    try:
        spec = OpSpec.from_key(text)
    except ValueError:
        return
    assert spec.key == text
