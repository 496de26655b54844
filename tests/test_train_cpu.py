"""The plugin driving a (tiny) real training loop on CPU with the dense stand-in renderer."""

from __future__ import annotations

import math

import torch

from sog.train import SelfOrganizingGrid, neighbour_ratio
from sog.metrics import psnr
from sog.render.cameras import look_at
from sog.train.dense_render import render

UP = (0.0, -1.0, 0.0)


def scene(n: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    return {"means": torch.randn(n, 3, generator=g) * 0.5, "scales": torch.full((n, 3), -2.5),
            "quats": torch.randn(n, 4, generator=g), "opacities": torch.randn(n, generator=g),
            "sh0": torch.randn(n, 1, 3, generator=g)}


def draw(p, cam):
    return render(p["means"], p["scales"], p["quats"], p["opacities"], p["sh0"], cam)


def test_dense_renderer_is_differentiable_in_every_attribute():
    p = {k: v.requires_grad_() for k, v in scene(30, 0).items()}
    cam = look_at(torch.tensor([0.0, 0.0, -3.0]), torch.zeros(3), UP, 12, 12, fov_deg=40.0)
    draw(p, cam).sum().backward()
    for k, v in p.items():
        assert v.grad is not None and bool(v.grad.abs().sum() > 0), k


def test_training_with_the_plugin_fits_the_target_and_keeps_every_gaussian():
    target = scene(150, 1)
    cams = [look_at(3 * torch.tensor([math.cos(a), 0.3, math.sin(a)]), torch.zeros(3), UP, 16, 16, fov_deg=60.0)
            for a in torch.linspace(0, 2 * math.pi, 5)[:-1].tolist()]
    with torch.no_grad():
        targets = [draw(target, c) for c in cams]
    init = {k: v.clone() for k, v in target.items()}
    init["sh0"] = torch.zeros_like(init["sh0"])
    init["opacities"] = torch.zeros_like(init["opacities"])
    params = torch.nn.ParameterDict({k: torch.nn.Parameter(v) for k, v in init.items()})
    opts = {k: torch.optim.Adam([params[k]], lr=0.002 if k == "means" else 0.05) for k in params}
    grid = SelfOrganizingGrid(method="morton", sort_every=10, smooth_weight=1e-3)
    start = sum(float(psnr(draw(params, c).detach(), t)) for c, t in zip(cams, targets)) / len(cams)
    composed = torch.arange(150)
    for step in range(40):
        if grid.should_sort(step):
            composed = composed[grid.sort_(params, opts, step=step)]
        c = step % len(cams)
        loss = (draw(params, cams[c]) - targets[c]).abs().mean() + grid.smoothness_loss(params)
        for o in opts.values():
            o.zero_grad()
        loss.backward()
        for o in opts.values():
            o.step()
    end = sum(float(psnr(draw(params, c).detach(), t)) for c, t in zip(cams, targets)) / len(cams)
    assert end > start + 3, (start, end)
    assert sorted(composed.tolist()) == list(range(150))
    # positions are (almost) what they were at the start, so each row is traceable to its origin
    torch.testing.assert_close(params["means"].detach(), target["means"][composed], atol=0.1, rtol=0)
    assert neighbour_ratio(params["means"]) < 0.8
