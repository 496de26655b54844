"""The same bits on every CPU (`sog.stable`, `sog.train.adam`): snapping, and the ops of a training step.

torch's own sigmoid, small reductions, oneDNN's conv2d and Adam's kernels round the last bit by the CPU's vector
instructions; the replacements must equal them up to rounding, stay differentiable, and give the same bytes in
child processes that run other kernels (torch's portable ones, ``ATEN_CPU_CAPABILITY=default``, and oneDNN's
SSE4.1 ones: the variants of `test_determinism` that separated them).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from sog import stable
from sog.train.adam import PortableAdam
from sog.train.permute import permute_params_

from test_determinism import VARIANTS, child_output


def test_portable_ops_equal_torchs_up_to_rounding():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(1000, 4, generator=gen, dtype=torch.float64) * 5
    assert torch.allclose(stable.sigmoid(x), torch.sigmoid(x), rtol=1e-14, atol=0)
    assert torch.allclose(stable.normalize(x), torch.nn.functional.normalize(x, dim=-1), rtol=1e-14, atol=1e-15)
    w, c = torch.randn(50, 9, generator=gen, dtype=torch.float64), torch.randn(50, 9, 3, generator=gen,
                                                                              dtype=torch.float64)
    assert torch.allclose(stable.weighted_sum(w, c), (w.unsqueeze(-1) * c).sum(1), rtol=1e-12, atol=1e-14)
    assert torch.equal(stable.normalize(torch.zeros(2, 3)), torch.zeros(2, 3))


def test_snap_keeps_the_bits_it_is_asked_for():
    x = np.array([1.0 + 2.0 ** -30, -3.0, 0.0, np.inf])
    assert stable.snap(x, 20).tolist() == [1.0, -3.0, 0.0, np.inf]
    assert stable.snap(np.array([1.0 + 2.0 ** -10]), 20)[0] == 1.0 + 2.0 ** -10


def test_blur_is_two_grouped_convolutions():
    x = torch.rand(2, 3, 40, 37, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    taps = stable.gaussian_taps(5, 1.5, torch.float64)
    assert taps.shape == (11,) and abs(float(taps.sum()) - 1) < 1e-15 and torch.equal(taps, taps.flip(0))
    k = taps.view(1, 1, 1, -1).expand(3, 1, 1, -1)
    ref = torch.nn.functional.conv2d(torch.nn.functional.conv2d(x, k, padding=(0, 5), groups=3),
                                     k.transpose(2, 3), padding=(5, 0), groups=3)
    assert torch.allclose(stable.blur(x, taps), ref, rtol=1e-13, atol=1e-15)


def test_portable_ops_have_torchs_gradients():
    x = torch.randn(20, 3, dtype=torch.float64, requires_grad=True)
    torch.autograd.gradcheck(stable.sigmoid, (x,))
    torch.autograd.gradcheck(stable.normalize, (x,))
    w = torch.randn(6, 4, dtype=torch.float64, requires_grad=True)
    c = torch.randn(6, 4, 3, dtype=torch.float64, requires_grad=True)
    torch.autograd.gradcheck(stable.weighted_sum, (w, c))
    img = torch.randn(1, 9, 8, dtype=torch.float64, requires_grad=True)
    torch.autograd.gradcheck(lambda t: stable.blur(t, stable.gaussian_taps(2, 1.0, torch.float64)), (img,))


def _steps(opt_cls, steps=5, **kw):
    p = torch.nn.Parameter(torch.linspace(-2, 2, 64).reshape(16, 4))
    opt = opt_cls([p], lr=0.05, **kw)
    for i in range(steps):
        p.grad = torch.cos(p.detach() * (i + 1)) * 1e-3
        opt.step()
    return p.detach(), opt


def test_portable_adam_is_torchs_adam_up_to_rounding():
    ours, opt = _steps(PortableAdam, eps=1e-15)
    theirs, _ = _steps(torch.optim.Adam, eps=1e-15)
    assert torch.allclose(ours, theirs, rtol=1e-5, atol=1e-6)
    state = opt.state[opt.param_groups[0]["params"][0]]
    assert set(state) == {"step", "exp_avg", "exp_avg_sq"} and state["step"] == 5


def test_portable_adam_state_follows_a_permutation():
    params = torch.nn.ParameterDict({"x": torch.nn.Parameter(torch.arange(8.0).reshape(4, 2))})
    opt = {"x": PortableAdam([params["x"]], lr=0.1)}
    params["x"].grad = torch.arange(8.0).reshape(4, 2)
    opt["x"].step()
    before = opt["x"].state[params["x"]]["exp_avg"].clone()
    order = torch.tensor([2, 0, 3, 1])
    permute_params_(params, opt, order)
    assert torch.equal(opt["x"].state[params["x"]]["exp_avg"], before[order])
    assert opt["x"].param_groups[0]["params"][0] is params["x"]


def test_portable_adam_refuses_a_closure_and_a_negative_rate():
    p = torch.nn.Parameter(torch.zeros(2))
    with pytest.raises(ValueError):
        PortableAdam([p], lr=-1)
    with pytest.raises(ValueError):
        PortableAdam([p]).step(lambda: 0.0)


#: the child: hash a training step's pieces (portable ops, a gradient through the tiled renderer, Adam steps)
CHILD = r"""
import hashlib, json, torch
torch.set_num_threads(1)
from sog.datasets import synthetic_scene
from sog import stable
from sog.metrics import ssim
from sog.render.views import tuning_cameras
from sog.splats import FIELDS
from sog.train.adam import PortableAdam
from sog.train.finetune import FinetuneConfig, render_params
from sog.train.loop import photometric_loss
h = lambda t: hashlib.sha256(t.detach().contiguous().numpy().tobytes()).hexdigest()
out = {}
import numpy as np
from sog import stable
x = torch.from_numpy(np.random.default_rng(0).uniform(-30, 30, 100_000).astype(np.float32))
out["exp"] = h(torch.exp(x))               # torch's own: the module relies on it rounding the same
out["sigmoid"] = h(stable.sigmoid(x))
out["normalize"] = h(stable.normalize(x.reshape(-1, 4)))
img = stable.sigmoid(x[:3 * 64 * 64].reshape(64, 64, 3))
out["ssim"] = h(ssim(img, img.flip(0)))
out["weighted_sum"] = h(stable.weighted_sum(x[:900].reshape(100, 9), x[:2700].reshape(100, 9, 3)))
s = synthetic_scene(300, seed=3).with_sh_degree(3)
cams = tuning_cameras(s, views=2, size=64)
with torch.no_grad():
    target = render_params({k: getattr(s, k).float() for k in FIELDS}, cams[0], FinetuneConfig().raster)
params = {k: torch.nn.Parameter(getattr(s, k).detach().float().clone()) for k in FIELDS}
opts = [PortableAdam([p], lr=0.01, eps=1e-15) for p in params.values()]
for step in range(3):
    with torch.no_grad():
        params["opacities"] += 0.1
    photometric_loss(render_params(params, cams[step % 2], FinetuneConfig().raster), target, 0.2).backward()
    for o in opts:
        o.step(); o.zero_grad()
out["target"] = h(target)
out["trained"] = h(torch.cat([p.detach().flatten() for p in params.values()]))
print(json.dumps(out))
"""


def _child(env: dict) -> dict:
    return json.loads(child_output(CHILD, env, timeout=600))


@pytest.fixture(scope="module")
def plain_child():
    return _child({})


@pytest.mark.parametrize("variant", ["aten default", "onednn sse41"])
def test_a_training_step_is_the_same_bytes_on_other_cpu_code_paths(variant, plain_child):
    assert _child(VARIANTS[variant]) == plain_child

