"""The kernel networks: a block as the sum of its kernels' learned times."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.model_selection import KFold

from latency_service.predictors.kernel_net import KernelNet, encode
from latency_service.predictors.models import SEED
from latency_service.predictors.registry import NET_MIN, make
from latency_service.predictors.training import metrics, one_thread, train
from profiler.features import kernels
from profiler.ops import OpSpec
from profiler.sampling import sample_ops


def cache_law(spec: OpSpec) -> float:
    """Per kernel: MACs at a rate of its type, up to 2.5x slower as its activations
    outgrow a 2 MiB cache, plus 4 µs a call; 10 µs a block. No block-level feature says
    how much each kernel spills: only a per-kernel view can."""
    rate = {"pw": 1e-9, "conv": 1e-9, "gconv": 2e-9, "dw": 6e-9, "fc": 1e-9}
    total = 0.01
    for k in kernels(spec):
        spill = 1.0 + 1.5 / (1.0 + 2**21 / (4 * (k.inp + k.out)))
        total += rate[k.kernel] * k.macs * spill + 0.004
    return total


def test_every_kind_encodes_to_finite_features() -> None:
    for kind in ("mbconv", "shuffle", "sep_conv", "dil_conv", "conv"):
        specs = sample_ops(kind, 20, seed=1)
        feats, types, rows, blocks = encode(specs)
        assert np.isfinite(feats).all() and np.isfinite(blocks).all()
        assert len(types) == len(rows) == len(feats) == sum(len(kernels(s)) for s in specs)
        assert blocks.shape[0] == len(specs)


def test_the_backward_pass_is_the_gradient() -> None:
    """The hand-written backpropagation against finite differences of the loss."""
    specs = sample_ops("mbconv", 12, seed=2)
    y = np.array([cache_law(s) for s in specs])
    net = KernelNet(steps=1, hidden=4, dtype=np.float64).fit(specs, y)
    inputs, target = net._inputs(specs), np.log(y / net.scale)

    def loss() -> float:
        total, _ = net._forward(inputs, len(y))
        return float(np.mean((np.log(total) - target) ** 2))

    grads = net._grads(inputs, target)
    params = [p for n in net.nets for p in n.params]
    rng = np.random.default_rng(0)
    for p, g in zip(params, grads, strict=True):
        i = tuple(rng.integers(0, d) for d in p.shape)
        keep, eps = p[i], 1e-6
        p[i] = keep + eps
        up = loss()
        p[i] = keep - eps
        down = loss()
        p[i] = keep
        assert (up - down) / (2 * eps) == pytest.approx(g[i], rel=1e-4, abs=1e-9)


@pytest.mark.slow
def test_a_per_kernel_law_is_learned_and_the_blend_needs_no_refit() -> None:
    specs = sample_ops("mbconv", 240, seed=3)
    y = [cache_law(s) for s in specs]
    models = ("kernel_gbm_mlas", "kernel_net", "kernel_net_blend")
    trained = train("mbconv", specs, y, models=models)
    assert trained.cv["kernel_net"]["within_10pct"] >= 0.9  # held out, 5 folds
    assert trained.cv["kernel_net"]["rmspe"] < 0.1
    # the blend's held-out predictions came from its parts'; refitting it gives the same
    pred, truth = np.empty(len(specs)), np.asarray(y)
    with one_thread():
        for tr, te in KFold(5, shuffle=True, random_state=SEED).split(specs):
            fitted = make("kernel_net_blend").fit([specs[i] for i in tr], truth[tr])
            pred[te] = fitted.predict([specs[i] for i in te])
    assert trained.cv["kernel_net_blend"] == metrics(pred, truth)


def test_the_networks_wait_for_enough_rows() -> None:
    specs = sample_ops("mbconv", NET_MIN - 50, seed=4)
    y = [cache_law(s) for s in specs]
    assert "kernel_net" not in train("mbconv", specs, y, models=("roofline", "kernel_net")).cv
    with pytest.raises(ValueError, match=rf"^models: kernel_net: at least {NET_MIN} measured"):
        train("mbconv", specs, y, models=("kernel_net",))
    blend = train("mbconv", specs, y, models=("kernel_net_blend",))  # its tree part is offered
    assert set(blend.cv) == {"kernel_gbm_mlas"}
