"""Specification of the in-training SOG plugin (sog.train)."""

from __future__ import annotations

import pytest
import torch

from sog.train import SelfOrganizingGrid, neighbour_ratio, permute_params_
from sog.train.smoothness import smoothness_loss

NAMES = ("means", "scales", "quats", "opacities", "sh0", "shN")


def make_params(n: int, seed: int = 0) -> torch.nn.ParameterDict:
    g = torch.Generator().manual_seed(seed)
    shapes = {"means": (n, 3), "scales": (n, 3), "quats": (n, 4), "opacities": (n,), "sh0": (n, 1, 3),
              "shN": (n, 3, 3)}
    return torch.nn.ParameterDict({k: torch.nn.Parameter(torch.randn(*s, generator=g)) for k, s in shapes.items()})


def make_optimizers(params, lr: float = 1e-2) -> dict[str, torch.optim.Optimizer]:
    return {k: torch.optim.Adam([params[k]], lr=lr, eps=1e-15) for k in params}


def toy_loss(params, target) -> torch.Tensor:
    """A per-Gaussian loss (row order does not matter), like a renderer's."""
    return sum(((params[k] - target[k]) ** 2 * (1 + target[k].abs())).sum() for k in params)


def adam_step(params, optimizers, target) -> None:
    loss = toy_loss(params, target)
    for o in optimizers.values():
        o.zero_grad()
    loss.backward()
    for o in optimizers.values():
        o.step()


def test_sort_then_step_equals_step_then_permute():
    n = 257
    params_a, params_b = make_params(n), make_params(n)
    opt_a, opt_b = make_optimizers(params_a), make_optimizers(params_b)
    target = {k: torch.randn_like(v) for k, v in params_a.items()}
    for _ in range(3):  # build up non-trivial Adam moments
        adam_step(params_a, opt_a, target)
        adam_step(params_b, opt_b, target)
    grid = SelfOrganizingGrid(method="morton")
    order = grid.sort_(params_a, opt_a)
    assert not torch.equal(order, torch.arange(n))
    target_a = {k: v[order] for k, v in target.items()}
    adam_step(params_a, opt_a, target_a)
    adam_step(params_b, opt_b, target)
    for k in NAMES:
        torch.testing.assert_close(params_a[k].detach(), params_b[k].detach()[order], rtol=0, atol=0)
        for key in ("exp_avg", "exp_avg_sq"):
            torch.testing.assert_close(opt_a[k].state[params_a[k]][key], opt_b[k].state[params_b[k]][key][order],
                                       rtol=0, atol=0)


def test_sort_replaces_parameters_inside_the_optimizers():
    params = make_params(50)
    opts = make_optimizers(params)
    adam_step(params, opts, {k: torch.zeros_like(v) for k, v in params.items()})
    SelfOrganizingGrid(method="morton").sort_(params, opts)
    for k in NAMES:
        assert opts[k].param_groups[0]["params"][0] is params[k]
        assert set(opts[k].state) == {params[k]}


def test_one_optimizer_for_all_parameters_is_permuted_too():
    params = make_params(40)
    opt = torch.optim.Adam(list(params.values()), lr=1e-2)
    adam_step(params, {"all": opt}, {k: torch.randn_like(v) for k, v in params.items()})
    before = {k: opt.state[params[k]]["exp_avg"].clone() for k in NAMES}
    order = SelfOrganizingGrid(method="morton").sort_(params, opt)
    for k in NAMES:
        assert torch.equal(opt.state[params[k]]["exp_avg"], before[k][order])


def test_no_row_is_lost_or_duplicated_across_many_sorts_with_changing_n():
    g = torch.Generator().manual_seed(1)
    params = make_params(100)
    # tag every Gaussian with a unique id in a column we can track
    ids = torch.arange(100, dtype=torch.float32)
    opts = make_optimizers(params)
    adam_step(params, opts, {k: torch.randn_like(v) for k, v in params.items()})
    with torch.no_grad():
        params["means"][:, 2] = ids
    # Adam state tagged with the same ids, strategy state too (gsplat-like), plus a scalar that must stay
    for k in NAMES:
        opts[k].state[params[k]]["exp_avg"] = ids.view(-1, *[1] * (params[k].dim() - 1)).expand_as(params[k]).clone()
    state = {"grad2d": ids.clone(), "count": ids.clone(), "scene_scale": 3.0}
    next_id = 100
    grid = SelfOrganizingGrid(method="morton")
    for round_ in range(12):
        grid.sort_(params, opts, state, step=round_)
        n = params["means"].shape[0]
        for k in NAMES:
            assert torch.equal(opts[k].state[params[k]]["exp_avg"].reshape(n, -1)[:, 0], params["means"][:, 2].detach())
        assert torch.equal(state["grad2d"], params["means"][:, 2].detach())
        assert torch.equal(state["count"], params["means"][:, 2].detach())
        assert state["scene_scale"] == 3.0
        # densify/prune: drop a random few, add a random few (as a strategy would, with fresh ids)
        keep = torch.randperm(n, generator=g)[: n - int(torch.randint(0, 20, (1,), generator=g))].sort().values
        add = int(torch.randint(0, 40, (1,), generator=g))
        new_ids = torch.arange(next_id, next_id + add, dtype=torch.float32)
        next_id += add
        for k in NAMES:
            old = params[k]
            extra = torch.randn(add, *old.shape[1:], generator=g)
            if k == "means":
                extra[:, 2] = new_ids
            new = torch.nn.Parameter(torch.cat([old.detach()[keep], extra]))
            st = opts[k].state.pop(old)
            tag = torch.cat([st["exp_avg"][keep], new_ids.view(-1, *[1] * (old.dim() - 1)).expand(add, *old.shape[1:])])
            opts[k].state[new] = {"step": st["step"], "exp_avg": tag.clone(), "exp_avg_sq": torch.cat(
                [st["exp_avg_sq"][keep], torch.zeros(add, *old.shape[1:])])}
            opts[k].param_groups[0]["params"][0] = new
            params[k] = new
        state["grad2d"] = torch.cat([state["grad2d"][keep], new_ids])
        state["count"] = torch.cat([state["count"][keep], new_ids])
        expected = params["means"][:, 2].detach().sort().values
        grid.sort_(params, opts, state, step=round_)
        assert torch.equal(params["means"][:, 2].detach().sort().values, expected)  # a bijection: same multiset
        assert torch.equal(params["means"][:, 2].detach().unique().numel() * torch.ones(()),
                           params["means"].shape[0] * torch.ones(()))


def test_permute_params_leaves_non_per_gaussian_state_alone():
    params = make_params(10)
    opts = make_optimizers(params)
    adam_step(params, opts, {k: torch.randn_like(v) for k, v in params.items()})
    state = {"binoms": torch.ones(7, 7), "radii": None, "grad2d": torch.arange(10.0)}
    order = torch.arange(10).flip(0)
    permute_params_(params, opts, order, state)
    assert torch.equal(state["binoms"], torch.ones(7, 7))
    assert state["radii"] is None
    assert torch.equal(state["grad2d"], torch.arange(10.0).flip(0))
    assert all(float(opts[k].state[params[k]]["step"]) == 1.0 for k in NAMES)


def test_smoothness_loss_alone_lowers_the_neighbour_ratio():
    params = make_params(400, seed=3)
    before = {k: neighbour_ratio(params[k].detach()) for k in ("quats", "opacities", "sh0")}
    assert all(0.8 < r < 1.2 for r in before.values())  # random data: neighbours no closer than random pairs
    opt = torch.optim.Adam(params.parameters(), lr=0.05)
    grid = SelfOrganizingGrid(method="morton")
    for _ in range(60):
        opt.zero_grad()
        grid.smoothness_loss(params).backward()
        opt.step()
    after = {k: neighbour_ratio(params[k].detach()) for k in before}
    for k in before:
        assert after[k] < 0.7 * before[k], (k, before[k], after[k])


def test_smoothness_loss_is_zero_for_constant_planes_and_ignores_empty_cells():
    n = 10  # 4x3 grid: two empty cells
    params = {"opacities": torch.full((n,), 2.0, requires_grad=True)}
    loss = smoothness_loss(params, {"opacities": 1.0})
    assert float(loss.detach()) == pytest.approx(0.0, abs=1e-6)


def test_default_plugin_is_constructible_and_schedules_sorts():
    grid = SelfOrganizingGrid()
    assert grid.resolved_method == "shufflesoftsort"
    assert SelfOrganizingGrid(method="none").resolved_method == "none"
    grid.sort_(make_params(30), None)  # works out of the box, with or without optimizers
    g = SelfOrganizingGrid(sort_every=100, sort_from=500, sort_until=1000)
    assert [s for s in range(0, 1500, 100) if g.should_sort(s)] == [500, 600, 700, 800, 900, 1000]


def test_default_plugin_sorts_with_shufflesoftsort_keeping_every_row_as_n_changes():
    grid = SelfOrganizingGrid(sort_options={"max_runs": 3})
    for n in (300, 410, 257):  # densify, then prune
        params = make_params(n, seed=n)
        tag = params["means"].detach().clone()
        before = neighbour_ratio(grid.features(params))
        order = grid.sort_(params, make_optimizers(params))
        assert torch.equal(torch.sort(order).values, torch.arange(n))
        assert torch.equal(params["means"].detach(), tag[order])
        assert neighbour_ratio(grid.features(params)) < 0.8 * before


def test_train_gsplat_loop_is_the_shared_step_and_runs_on_sogs_cpu_renderer():
    """`scripts/train_gsplat.py`'s loop is `sog.train.loop.training_step` with a renderer passed in: its CPU twin
    (sog's differentiable tiled renderer in place of gsplat) lowers the loss, re-sorts on schedule and keeps every
    Gaussian. The script imports without gsplat."""
    import importlib.util
    from pathlib import Path

    from conftest import small_scene
    from sog.device import one_cpu_thread
    from sog.render import RasterConfig, orbit_cameras, render, tiles
    from sog.train.finetune import render_params

    if not tiles.available():
        pytest.skip("the differentiable renderer needs numba")
    path = Path(__file__).parent.parent / "scripts" / "train_gsplat.py"
    spec = importlib.util.spec_from_file_location("train_gsplat", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)

    teacher = small_scene(250, seed=2, sh_degree=0)
    cams = orbit_cameras(teacher.means, 4, 32)
    images = render(teacher, cams, backend="cpu", device="cpu")
    gen = torch.Generator().manual_seed(0)
    params = torch.nn.ParameterDict({name: torch.nn.Parameter(value.detach().clone().float())
                                     for name, value in teacher.tensors().items()})
    params["sh0"].data += 0.3 * torch.randn(params["sh0"].shape, generator=gen)
    optimizers = {name: torch.optim.Adam([params[name]], lr=2e-2 if name == "sh0" else 1e-4, eps=1e-15)
                  for name in params}
    plugin = SelfOrganizingGrid(sort_every=4, sort_from=4, method="morton", seed=0, device="cpu")

    def render_view(p, i, degree):
        return render_params(p, cams[i], RasterConfig()), None

    def loss() -> float:
        with torch.no_grad():
            return sum(float((render_view(params, i, 0)[0] - images[i]).abs().mean()) for i in range(len(cams)))

    before = loss()
    with one_cpu_thread():
        sorts = script.train_loop(params, optimizers, images, render_view, 12, plugin, sh_degree=0,
                                  log=lambda line: None)
    assert sorts == 2                                                     # at steps 4 and 8 of 0..11
    assert loss() < 0.7 * before
    assert params["means"].shape[0] == len(teacher)
    # a re-sort is a bijection: the positions (barely trained) are the teacher's, in another order
    assert torch.allclose(torch.sort(params["means"].detach()[:, 0]).values, torch.sort(teacher.means[:, 0]).values,
                          atol=1e-2)
