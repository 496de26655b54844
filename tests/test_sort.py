"""The sorters (ShuffleSoftSort, SoftSort, Gumbel-Sinkhorn), their operators, losses and metrics."""

from __future__ import annotations

import ast
import hashlib
import itertools
import tempfile
import threading
import time
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import sog
from sog.errors import SogError
from sog.grid import grid_shape
from sog.sort import SORTERS, check_bijection, sort_grid
from sog.sort.features import splat_features, standardise
from sog.sort.losses import (as_grid, dpq, dpq_rank_weights, local_dpq_gain, neighbour_distances, neighbour_ratio,
                             neighbour_sq_dists, neighbour_table, rank_neighbours, ranked_energy, ranked_neighbour_loss,
                             ring_offsets)
from sog.sort.groups import draw_feature_groups, draw_groups
from sog.sort.config import ShuffleSoftSortConfig
from sog.sort.curves import curve_cells, curve_order, hilbert_keys, point_keys
from sog.sort.neighbourhood import log_energy, neighbourhood_mean
from sog.sort.polish import polish, polish_features, rank_polish
from sog.sort.starts import pca_bisection
from sog.sort.sinkhorn import gumbel_sinkhorn, hungarian
from sog.sort.softsort import harden, softsort, softsort_cost_grad

from conftest import ROOT, shared_path


def colours(n: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 3, generator=torch.Generator().manual_seed(seed))


# --- the operators -----------------------------------------------------------------------------

def test_softsort_rows_are_distributions_and_tend_to_the_sorting_permutation():
    w = torch.tensor([[3.0, 0.0, 2.0, 1.0]])
    soft = softsort(w, tau=1.0)
    assert torch.allclose(soft.sum(-1), torch.ones(1, 4))
    sharp = softsort(w, tau=1e-3)
    assert torch.equal(sharp.argmax(-1), torch.tensor([[1, 3, 2, 0]]))


def test_hard_softsort_is_an_exact_permutation_with_a_gradient():
    w = torch.randn(3, 6, requires_grad=True)
    p = softsort(w, tau=0.5, p=2, hard=True)
    assert torch.equal(p.sum(-1), torch.ones(3, 6)) and torch.equal(p.sum(-2), torch.ones(3, 6))
    (p * torch.randn(3, 6, 6)).sum().backward()
    assert w.grad is not None and bool(w.grad.abs().sum() > 0)


@pytest.mark.parametrize("p", [1, 2])
def test_closed_form_softsort_gradient_equals_autograd(p):
    gen = torch.Generator().manual_seed(p)
    w = torch.randn(40, 5, generator=gen, dtype=torch.float64, requires_grad=True)
    cost = torch.rand(40, 5, 5, generator=gen, dtype=torch.float64)
    (softsort(w, 0.7, p) * cost).sum().backward()
    assert torch.allclose(softsort_cost_grad(w.detach(), cost, 0.7, p), w.grad, atol=1e-12)


@given(st.lists(st.integers(-3, 3), min_size=1, max_size=40))
def test_harden_is_a_bijection_even_with_tied_weights(values):
    order = harden(torch.tensor(values, dtype=torch.float32))
    check_bijection(order, len(values))


def test_gumbel_sinkhorn_is_doubly_stochastic_and_hungarian_a_bijection():
    logits = torch.randn(7, 7, generator=torch.Generator().manual_seed(1))
    p = gumbel_sinkhorn(logits, tau=1.0, n_iter=100, generator=torch.Generator().manual_seed(2))
    assert torch.allclose(p.sum(0), torch.ones(7), atol=1e-3) and torch.allclose(p.sum(1), torch.ones(7), atol=1e-3)
    check_bijection(hungarian(logits), 7)


# --- losses and metrics ------------------------------------------------------------------------

def test_neighbour_ratio_is_about_one_for_a_random_grid_and_small_for_a_smooth_one():
    x = colours(4096)
    assert 0.9 < neighbour_ratio(x, torch.randperm(4096), (64, 64)) < 1.1
    yy, xx = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")
    smooth = torch.stack([yy, xx], -1).reshape(-1, 2)
    assert neighbour_ratio(smooth, torch.arange(4096), (64, 64)) < 0.01


def test_dpq_is_one_when_the_grid_is_the_feature_space_and_low_when_random():
    yy, xx = torch.meshgrid(torch.arange(16.0), torch.arange(16.0), indexing="ij")
    coords = torch.stack([yy, xx], -1).reshape(-1, 2)
    assert dpq(coords, torch.arange(256), (16, 16)) == pytest.approx(1.0, abs=1e-9)
    x = colours(1024)
    assert 0.25 < dpq(x, torch.randperm(1024, generator=torch.Generator().manual_seed(0)), (32, 32)) < 0.45


# --- ShuffleSoftSort ---------------------------------------------------------------------------

@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 300), seed=st.integers(0, 10_000), group=st.sampled_from([2, 4, 8]),
       rank_runs=st.sampled_from([0, 15]), objective=st.sampled_from(["smooth", "codec"]))
def test_shufflesoftsort_returns_every_item_exactly_once_for_any_size_and_seed(n, seed, group, rank_runs, objective):
    shape = grid_shape(n)
    perm = sort_grid(colours(n, seed), shape, "shufflesoftsort", seed=seed, device="cpu", objective=objective,
                     group=group, max_runs=3, radius_decay=0.5, rank_polish_runs=rank_runs)
    assert perm.shape == (shape[0] * shape[1],)
    check_bijection(perm[:n], n)
    assert bool((perm[n:] == -1).all())


def test_shufflesoftsort_on_a_256x256_grid_loses_nobody_over_many_runs():
    # the failure that motivated argsort hardening: many runs on a 256x256 grid
    n = 256 * 256 - 77  # a ragged last row as well
    x = colours(n, 5)
    perm = sort_grid(x, grid_shape(n), "shufflesoftsort", seed=3, device="cpu", radius_start=4, max_runs=25,
                     improvement_break=0, polish_runs=20)
    check_bijection(perm[:n], n)


def test_shufflesoftsort_sorts_colours_far_better_than_random():
    x = colours(1024)
    perm = sort_grid(x, (32, 32), "shufflesoftsort", seed=0, device="cpu")
    assert neighbour_ratio(x, perm, (32, 32)) < 0.06
    assert dpq(x, perm, (32, 32)) > 0.9


def test_shufflesoftsort_dpq_options_keep_a_permutation_and_do_not_lose_quality():
    # fixed targets per radius step, feature-space groups and warm restarts (the bench's -dpq row), cut short
    x = colours(300, 2)
    shape = grid_shape(300)
    plain = sort_grid(x, shape, "shufflesoftsort", seed=0, device="cpu")
    perm = sort_grid(x, shape, "shufflesoftsort", seed=0, device="cpu", radius_decay=0.9, assign_runs=8,
                     improvement_break=0, window_factor=1, feature_groups=2, polish_runs=0, restarts=2)
    check_bijection(perm[:300], 300)
    assert dpq(x, perm, shape) > dpq(x, plain, shape) - 0.02


def test_feature_groups_hold_each_cell_at_most_once_and_alike_cells_together():
    x = colours(1000, 4)
    target = torch.zeros_like(x)
    groups = draw_feature_groups(x, target, 4, torch.Generator().manual_seed(0))
    assert groups.shape[1] == 4 and groups.shape[0] >= 249
    assert torch.unique(groups).numel() == groups.numel() and int(groups.max()) < 1000
    # a k-d tree groups near neighbours in feature space: far closer than random groups of 4
    spread = lambda g: float((x[g] - x[g].mean(1, keepdim=True)).norm(dim=2).mean())  # noqa: E731
    assert spread(groups) < 0.5 * spread(torch.randperm(1000)[:groups.numel()].reshape(-1, 4))


def test_local_dpq_gain_ranks_arrangements_as_dpq_does():
    x = colours(1024, 3)
    sorted_ = sort_grid(x, (32, 32), "shufflesoftsort", seed=0, device="cpu")
    shuffled = torch.randperm(1024, generator=torch.Generator().manual_seed(1))
    half = sorted_.clone()
    half[:512] = sorted_[:512][torch.randperm(512, generator=torch.Generator().manual_seed(2))]
    gains = [local_dpq_gain(x, p, (32, 32)) for p in (shuffled, half, sorted_)]
    assert gains[0] < gains[1] < gains[2]


def test_shufflesoftsort_refinement_improves_its_start_and_a_warm_start():
    x = colours(4096, 1)
    xs = standardise(x, torch.device("cpu"), torch.float32)
    start = pca_bisection(xs, (64, 64))
    refined = sort_grid(x, (64, 64), "shufflesoftsort", seed=0, device="cpu", max_runs=5)
    assert neighbour_ratio(x, refined, (64, 64)) < 0.7 * neighbour_ratio(x, start, (64, 64))
    warm = torch.randperm(4096, generator=torch.Generator().manual_seed(9))
    again = sort_grid(x, (64, 64), "shufflesoftsort", seed=1, device="cpu", init=warm, radius_start=2, max_runs=3)
    assert neighbour_ratio(x, again, (64, 64)) < neighbour_ratio(x, warm, (64, 64))


def test_shufflesoftsort_is_reproducible_with_a_seed():
    x = colours(500)
    a = sort_grid(x, grid_shape(500), "shufflesoftsort", seed=4, device="cpu", max_runs=4)
    b = sort_grid(x, grid_shape(500), "shufflesoftsort", seed=4, device="cpu", max_runs=4)
    assert torch.equal(a, b)


def test_shufflesoftsort_rejects_unknown_options_and_a_bad_warm_start():
    with pytest.raises(SogError, match="unknown shufflesoftsort option"):
        sort_grid(colours(10), (4, 4), "shufflesoftsort", device="cpu", grup=4)
    with pytest.raises(SogError, match="permutation"):
        sort_grid(colours(10), (4, 4), "shufflesoftsort", device="cpu", init=torch.zeros(10, dtype=torch.long))


def test_pca_bisection_fills_exactly_the_first_n_cells():
    for n in (1, 2, 3, 5, 31, 100, 1000):
        check_bijection(pca_bisection(colours(n), grid_shape(n)), n)


def test_groups_hold_distinct_filled_cells_from_one_window():
    n, shape, window = 1000, (32, 32), 6
    groups = draw_groups(shape, n, window, 4, torch.Generator().manual_seed(0), torch.device("cpu"))
    cells = groups.reshape(-1)
    assert cells.unique().numel() == cells.numel() and int(cells.max()) < n
    rows, cols = groups // 32, groups % 32
    assert int((rows.max(1).values - rows.min(1).values).max()) < window
    assert int((cols.max(1).values - cols.min(1).values).max()) < window


def test_polish_groups_never_hold_two_neighbours():
    # the polish stage's cost is exact only if no two cells of a group touch
    n, shape = 1000, (32, 32)
    for parity in (0, 1):
        groups = draw_groups(shape, n, 8, 6, torch.Generator().manual_seed(parity), torch.device("cpu"), parity)
        rows, cols = groups // 32, groups % 32
        assert bool(((rows + cols) % 2 == parity).all()) and int(groups.max()) < n
        gap = (rows.unsqueeze(2) - rows.unsqueeze(1)).abs() + (cols.unsqueeze(2) - cols.unsqueeze(1)).abs()
        assert int(gap.min()) == 0 and bool((gap != 1).all())  # 0 only on the diagonal


def test_polish_lowers_the_exact_neighbour_loss_by_what_it_reports():
    n, shape = 1000, (32, 32)  # a ragged last row: border and empty cells count too
    x = colours(n, 3)
    xs = standardise(x, torch.device("cpu"), torch.float32)
    order = pca_bisection(xs, shape)
    before, _ = neighbour_sq_dists(*as_grid(xs, order, shape))
    xg = xs[order]
    tracked = polish(xs, xg, order, shape, ShuffleSoftSortConfig(polish_runs=40, polish_break=0),
                      torch.Generator().manual_seed(0))
    check_bijection(order, n)
    assert torch.equal(xg, xs[order])
    after, _ = neighbour_sq_dists(*as_grid(xs, order, shape))
    assert float(after) < 0.9 * float(before)
    assert tracked == pytest.approx(float(after), rel=1e-4)


def test_ranked_energy_ranks_nearer_rings_first_then_by_distance():
    # four ring-0 slots (one missing) and a ring-1 slot: the ring-1 neighbour ranks after every
    # ring-0 one however close it is, and the missing slot ranks last
    d = torch.tensor([[0.3, 0.1, float("inf"), 0.2, 0.05]], dtype=torch.float64)
    ring = torch.tensor([0, 0, 0, 0, 1])
    ranked, rank_of = rank_neighbours(d, ring)
    assert ranked.tolist() == [[0.1, 0.2, 0.3, 0.05, 0.0]]
    assert rank_of.tolist() == [[2, 0, 4, 1, 3]]
    w = torch.tensor([1.0, 0.5, 0.25, 0.125, 0.0625], dtype=torch.float64)
    assert float(ranked_energy(d, ring, w)) == pytest.approx(0.1 + 0.1 + 0.075 + 0.05 * 0.125)
    far = torch.tensor([[3e6, 1.0, 2.0]], dtype=torch.float64)  # however far, a ring-0 neighbour stays in ring 0
    assert rank_neighbours(far, torch.tensor([0, 0, 1]))[0].tolist() == [[1.0, 3e6, 2.0]]
    offsets, rings = ring_offsets(4)
    assert len(offsets) == 20 and rings[:4] == [0] * 4 and rings[-8:] == [3] * 8


def test_dpq_rank_weights_fall_with_the_rank():
    x = colours(1024, 1)
    order = sort_grid(x, (32, 32), "shufflesoftsort", seed=0, device="cpu", max_runs=5)
    offsets, rings = ring_offsets(4)
    d = neighbour_distances(x.double()[order], neighbour_table((32, 32), 1024, offsets))
    w = dpq_rank_weights(d, torch.tensor(rings), float(torch.cdist(x, x).mean()))
    assert w[0] == 1 and bool((w[1:] < w[:-1]).all()) and 0.3 < float(w[1]) < 0.7


def test_spaced_groups_take_one_group_per_window_and_keep_their_distance():
    # the rank polish checks each group's move exactly only if no cell's loss sees two groups
    n, shape, gap = 1000, (32, 32), 4
    groups = draw_groups(shape, n, 3, 4, torch.Generator().manual_seed(0), torch.device("cpu"), gap=gap)
    assert groups.shape[0] >= 16 and groups.unique().numel() == groups.numel() and int(groups.max()) < n
    rows, cols = groups // 32, groups % 32
    cheb = torch.maximum((rows.reshape(-1, 1) - rows.reshape(1, -1)).abs(), (cols.reshape(-1, 1) - cols.reshape(1, -1)).abs())
    same = torch.arange(groups.shape[0]).repeat_interleave(4)
    other = same.unsqueeze(1) != same.unsqueeze(0)
    assert int(cheb[other].min()) > gap and int(cheb[~other].max()) < 3


def test_rank_polish_lowers_the_ranked_loss_and_raises_dpq():
    n, shape = 1000, (32, 32)  # a ragged last row
    x = colours(n, 3)
    xs = standardise(x, torch.device("cpu"), torch.float32)
    start = sort_grid(x, shape, "shufflesoftsort", seed=0, device="cpu", max_runs=5)[:n]
    order = rank_polish(xs, start, shape, ShuffleSoftSortConfig(rank_polish_runs=300), torch.Generator().manual_seed(0))
    check_bijection(order, n)
    assert ranked_neighbour_loss(x, order, shape) < 0.97 * ranked_neighbour_loss(x, start, shape)
    assert dpq(x, order, shape) > dpq(x, start, shape) + 0.002


def test_neighbourhood_mean_matches_a_direct_average():
    n, shape = 23, (5, 5)
    x = colours(n, 2)
    got = neighbourhood_mean(x, shape, 1, include_self=False)
    grid = {(i // 5, i % 5): x[i] for i in range(n)}
    for i in range(n):
        r, c = divmod(i, 5)
        near = [grid[(r + dr, c + dc)] for dr in (-1, 0, 1) for dc in (-1, 0, 1)
                if (dr or dc) and (r + dr, c + dc) in grid]
        assert torch.allclose(got[i], torch.stack(near).mean(0), atol=1e-5)


# --- baselines and the registry ----------------------------------------------------------------

@pytest.mark.parametrize("method", ["softsort", "sinkhorn"])
def test_baselines_are_registered_and_return_permutations(method):
    x = colours(64)
    perm = sort_grid(x, (8, 8), method, seed=0, device="cpu", steps=30)
    check_bijection(perm, 64)
    assert neighbour_ratio(x, perm, (8, 8)) < 1.0


def test_every_registered_sorter_keeps_every_item(tmp_path):
    x = colours(50)
    for method in SORTERS:
        options = {"steps": 5} if method in ("softsort", "sinkhorn") else {}
        check_bijection(sort_grid(x, grid_shape(50), method, device="cpu", **options)[:50], 50)


def test_each_sorter_checks_its_options_once_on_the_way_in():
    with pytest.raises(SogError, match="unknown softsort option"):
        sort_grid(colours(10), (4, 4), "softsort", device="cpu", stepz=3)
    with pytest.raises(SogError, match="morton sorter takes no options"):
        sort_grid(colours(10), (4, 4), "morton", budget=3)
    cfg = SORTERS["shufflesoftsort"].configure({"objective": "codec", "budget": 3})
    assert (cfg.start, cfg.polish_loss, cfg.budget) == ("hilbert", "log", 3)  # resolved by the objective
    x = colours(200)
    assert torch.equal(sort_grid(x, grid_shape(200), config=cfg, device="cpu"),
                       sort_grid(x, grid_shape(200), device="cpu", objective="codec", budget=3))
    with pytest.raises(SogError, match="not both"):
        sort_grid(x, grid_shape(200), config=cfg, budget=3)


@pytest.mark.parametrize("method,options", [("shufflesoftsort", {"budget": 6}), ("softsort", {"steps": 5})])
def test_learning_sorters_see_standardised_features_so_the_scale_does_not_matter(method, options):
    # a power-of-two scale is exact in floats, so the standardised features, and the orders, are bitwise the same
    x = colours(150, 3)
    orders = [sort_grid(x * scale, grid_shape(150), method, seed=1, device="cpu", **options) for scale in (1, 64)]
    assert torch.equal(*orders)
    xs = standardise(x, torch.device("cpu"), torch.float64)
    assert float(xs.mean(0).abs().max()) < 1e-12 and float(xs.var(0, unbiased=False).sum()) == pytest.approx(1)


def test_compress_options_check_the_sort_options_once_and_build_the_sorters_config():
    from dataclasses import replace

    from sog.pipeline import SORT_BUDGET

    cfg = sog.CompressOptions().sort_config
    assert (cfg.objective, cfg.budget, cfg.start) == ("codec", SORT_BUDGET, "hilbert")
    assert replace(sog.CompressOptions(), sort_budget=7).sort_config.budget == 7  # rebuilt from the new options
    assert sog.CompressOptions(sort_options={"objective": "smooth"}).sort_config.objective == "smooth"
    assert sog.CompressOptions(sort="morton").sort_config is None
    for bad, match in ((dict(sort_budget=-1), "--sort-budget must be 0 or more"),
                       (dict(sort_seconds=float("nan")), "--sort-seconds must be a positive"),
                       (dict(sort="quick"), "unknown sort method"),
                       (dict(sort_options={"grup": 4}), "unknown shufflesoftsort option"),
                       (dict(sort="morton", sort_options={"budget": 3}), "takes no options")):
        with pytest.raises(SogError, match=match):
            sog.CompressOptions(**bad)


def test_sorting_real_splats_beats_morton_order():
    scene = sog.load(shared_path("plant"))
    keep = torch.randperm(len(scene), generator=torch.Generator().manual_seed(0))[:16384]
    x = splat_features(scene.permute(keep))
    shape = grid_shape(len(x))
    ours = sort_grid(x, shape, "shufflesoftsort", device="cpu", max_runs=4)
    morton = sort_grid(x, shape, "morton")
    assert neighbour_ratio(x, ours, shape) < 0.5 * neighbour_ratio(x, morton, shape)


def test_an_exhausted_time_budget_still_returns_a_valid_order():
    x = colours(3000)
    perm = sort_grid(x, grid_shape(3000), "shufflesoftsort", device="cpu", max_seconds=0.0)
    check_bijection(perm[:3000], 3000)


# --- the anytime, deterministic sorter ---------------------------------------------------------

@pytest.mark.parametrize("dims,bits", [(2, 4), (3, 3)])
def test_hilbert_keys_number_every_cell_once_and_step_to_a_neighbour(dims, bits):
    cells = torch.stack(torch.meshgrid(*[torch.arange(2 ** bits)] * dims, indexing="ij"), -1).reshape(-1, dims)
    keys = hilbert_keys(cells, bits)
    assert torch.equal(torch.sort(keys).values, torch.arange(2 ** (bits * dims)))
    path = cells[torch.argsort(keys)]
    assert int((path[1:] - path[:-1]).abs().sum(1).max()) == 1


@given(st.integers(1, 300))
@settings(max_examples=25, deadline=None)
def test_curve_layouts_fill_exactly_the_first_n_cells_of_any_grid(n):
    shape = grid_shape(n)
    cells = curve_cells(shape, n)
    check_bijection(cells, n)
    check_bijection(curve_order(colours(n), shape), n)


@pytest.mark.parametrize("objective", ["codec", "smooth"])
def test_a_work_budget_gives_the_same_order_however_slow_the_machine(objective, monkeypatch):
    x = colours(4000, seed=3)
    shape = grid_shape(4000)
    quiet = sort_grid(x, shape, "shufflesoftsort", seed=5, device="cpu", objective=objective, budget=12)
    # a machine that is busy (a thread burning CPU) and a clock that jumps an hour at every look
    stop = threading.Event()
    burner = threading.Thread(target=lambda: [sum(range(10_000)) for _ in iter(stop.is_set, True)], daemon=True)
    burner.start()
    ticks = itertools.count()
    monkeypatch.setattr(time, "perf_counter", lambda: 3600.0 * next(ticks))
    try:
        busy = sort_grid(x, shape, "shufflesoftsort", seed=5, device="cpu", objective=objective, budget=12)
    finally:
        stop.set()
        burner.join()
    assert torch.equal(quiet, busy)


def test_a_larger_budget_buys_more_runs_and_budget_zero_is_the_start_order():
    x = colours(3000, seed=4)
    shape = grid_shape(3000)
    start = torch.argsort(point_keys(x, "hilbert"))
    assert torch.equal(sort_grid(x, shape, "shufflesoftsort", device="cpu", objective="codec", budget=0)[:3000], start)
    loss = lambda order: log_energy(polish_features(x, 8)[order], shape)  # noqa: E731
    few = sort_grid(x, shape, "shufflesoftsort", device="cpu", objective="codec", budget=2)[:3000]
    many = sort_grid(x, shape, "shufflesoftsort", device="cpu", objective="codec", budget=20)[:3000]
    assert loss(many) < loss(few) < loss(start)


def test_the_codec_polish_only_accepts_moves_that_lower_its_log_loss_by_what_it_reports():
    x = colours(2500, seed=6)
    shape = grid_shape(2500)
    xq = polish_features(x, 6)
    order = torch.argsort(point_keys(x, "hilbert"))
    cfg = ShuffleSoftSortConfig(objective="codec", polish_bits=0, polish_runs=1).resolved()
    gen = torch.Generator().manual_seed(0)
    losses = [log_energy(xq[order], shape)]
    for _ in range(6):
        xg = xq[order]
        reported = polish(xq, xg, order, shape, cfg, gen)
        losses.append(log_energy(xq[order], shape))
        assert reported == pytest.approx(losses[-1], rel=1e-4)
    assert all(b <= a for a, b in zip(losses, losses[1:])) and losses[-1] < losses[0]


def test_compress_writes_the_same_bytes_when_the_clock_jumps(tmp_path, sample_ply, monkeypatch):
    scene = sog.load(sample_ply)
    options = sog.CompressOptions(sort_budget=4, seed=1, device="cpu", profile_options={"layers": 1})
    sog.compress(scene, tmp_path / "a.sog", options, quiet=True)
    ticks = itertools.count()
    monkeypatch.setattr(time, "perf_counter", lambda: 3600.0 * next(ticks))
    sog.compress(scene, tmp_path / "b.sog", options, quiet=True)
    assert (tmp_path / "a.sog").read_bytes() == (tmp_path / "b.sog").read_bytes()


def test_compress_writes_the_same_bytes_for_any_torch_thread_count(tmp_path):
    """torch splits its parallel reductions by the thread count; with one thread and with two, tarot's default
    file once came out 1,189,133 and 1,188,703 B. The same input must give the same bytes on any machine."""
    scene = sog.load(shared_path("tarot"))
    before = torch.get_num_threads()
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            sog.compress(scene, tmp_path / f"{threads}.sog", sog.CompressOptions(device="cpu"), quiet=True)
    finally:
        torch.set_num_threads(before)
    assert torch.get_num_threads() == before
    assert (tmp_path / "1.sog").read_bytes() == (tmp_path / "2.sog").read_bytes()


def test_bad_budget_and_objective_are_one_line_errors():
    with pytest.raises(SogError, match="budget"):
        sort_grid(colours(100), (10, 10), "shufflesoftsort", device="cpu", budget=-1)
    with pytest.raises(SogError, match="objective"):
        sort_grid(colours(100), (10, 10), "shufflesoftsort", device="cpu", objective="fast")
    with pytest.raises(SogError, match="start"):
        sort_grid(colours(100), (10, 10), "shufflesoftsort", device="cpu", start="random")


# --- frozen orders: a refactor of the sorters must not change what they return ------------------

#: case -> (features, sorter, options). Features: "sample" is `splat_features` of data/sample.ply (10,000 rows,
#: positions only), ("mix", n) its first n rows with the weights means 1, sh0 1, scales 0.5, opacities 0.25, and
#: ("colours", n, seed) `colours`. ``init`` "shuffled" is a seeded random warm start.
ORDER_CASES = {
    "shufflesoftsort codec": ("sample", "shufflesoftsort", dict(objective="codec", budget=8)),
    "shufflesoftsort smooth": ("sample", "shufflesoftsort", dict(budget=10)),
    "shufflesoftsort smooth mix": (("mix", 2000), "shufflesoftsort", dict(budget=30)),
    "shufflesoftsort colours": (("colours", 700, 1), "shufflesoftsort", {}),
    "shufflesoftsort dpq options": (("colours", 300, 2), "shufflesoftsort",
                                    dict(radius_decay=0.7, assign_runs=3, feature_groups=2, restarts=1,
                                         rank_polish_runs=10, budget=80)),
    "shufflesoftsort warm start": (("colours", 500, 3), "shufflesoftsort",
                                   dict(init="shuffled", radius_start=2, max_runs=3)),
    "shufflesoftsort morton start": (("colours", 400, 4), "shufflesoftsort",
                                     dict(start="morton", polish_loss="log", budget=6)),
    "shufflesoftsort hilbert2d start": (("colours", 400, 5), "shufflesoftsort",
                                        dict(objective="codec", start="hilbert2d", polish_bits=0, budget=6)),
    "morton": ("sample", "morton", {}),
    "none": ("sample", "none", {}),
    "softsort": (("colours", 64, 6), "softsort", dict(steps=30)),
    "sinkhorn": (("colours", 64, 7), "sinkhorn", dict(steps=20)),
}

#: sha256 of each case's order (int64 bytes), recorded before the sorter's modules were split up
FROZEN_ORDERS = {
    "shufflesoftsort codec": "40ba9788c62c94741f2d2d99ffd10fd60cae5e12240a5de0b35402f7ee8f9613",
    "shufflesoftsort smooth": "1b62179a43a754e2f71ce9f00274671ab6525fd2f2f3c6daeaf8d8b603ae2402",
    "shufflesoftsort smooth mix": "f85ac3d26bb812b64534818a76623e1fa677efa2f0f5f31834962a35968ce7e5",
    "shufflesoftsort colours": "bc656c05a606f32c8a503f7afa6a82c2fa2f893286c298df6e1bce53f16d5e7d",
    "shufflesoftsort dpq options": "7d9459123b076bea41704bd49209ee7a50f3715e7f60705ba0db1b3c5c626034",
    "shufflesoftsort warm start": "e58e98805a71e899a0d97c0c1853d0d9c2be3c1e0da8d2e7d942f6cdfa695526",
    "shufflesoftsort morton start": "5f27475cb2901c5a011b3e02ac063d057210d5a904739ee3bbfcb0e4d49f2b73",
    "shufflesoftsort hilbert2d start": "6eb0ec6419d518bb2941500106117d8748d10d31efde9ee14bbb9a43c0045a7d",
    "morton": "a297da81dfc7d0aa5819c1dc330994d5fd441daeb1573f9c03939a6c328dda48",
    "none": "9e1c19b3fdc185411bd1a987deb6a9fda2531116aac060a84c4d878854d1c099",
    "softsort": "83ea43408d3a78167367883ff0845601c33d48603eed6299c7b69f7d6390fc09",
    "sinkhorn": "87b0422e0424b7327676eda67d58c68e1f409a22bd64f70555d24d4a216287b4",
}
#: sha256 of the order `test_compress_sorts_to_its_frozen_order` compresses data/sample.ply to
FROZEN_COMPRESS_ORDER = "7ed2d98a39dea34957b7016b1b65b71a683ceab0fb3fc1fbd6389757e64bfebe"


def order_case(case: str) -> torch.Tensor:
    """The order (H*W,) that ``ORDER_CASES[case]`` gives, on one CPU thread with seed 3."""
    from sog.device import one_cpu_thread

    features, method, options = ORDER_CASES[case]
    if features == "sample" or features[0] == "mix":
        scene = sog.load(ROOT / "data" / "sample.ply")
        x = splat_features(scene) if features == "sample" else splat_features(
            scene.permute(torch.arange(features[1])), {"means": 1, "sh0": 1, "scales": 0.5, "opacities": 0.25})
    else:
        x = colours(features[1], features[2])
    options = dict(options)
    if options.get("init") == "shuffled":
        options["init"] = torch.randperm(len(x), generator=torch.Generator().manual_seed(8))
    with one_cpu_thread("cpu"):
        return sort_grid(x, grid_shape(len(x)), method, seed=3, device="cpu", **options)


@pytest.mark.parametrize("case", list(ORDER_CASES))
def test_every_sorter_returns_its_frozen_order(case):
    got = hashlib.sha256(order_case(case).to(torch.int64).numpy().tobytes()).hexdigest()
    assert got == FROZEN_ORDERS[case]


def test_compress_sorts_to_its_frozen_order(sample_ply):
    """The pipeline's way into the sorter (features, weights, objective "codec", the budget) on data/sample.ply."""
    options = sog.CompressOptions(sort_budget=6, seed=2, device="cpu", sort_weights={"sh0": 0.5},
                                  sort_options={"polish_group": 4, "objective": "codec"})
    with tempfile.TemporaryDirectory() as tmp:
        order = sog.compress(sample_ply, Path(tmp) / "o.sog", options, quiet=True).order
    assert hashlib.sha256(order.to(torch.int64).numpy().tobytes()).hexdigest() == FROZEN_COMPRESS_ORDER


def test_sort_weights_on_other_attributes_are_sorted_on_or_refused(sample_ply):
    """The codec objective sorts on positions alone, so weights on other attributes select the smooth objective
    (they used to change nothing); a sorter that orders by position only refuses them."""
    scene = sog.load(sample_ply)
    orders = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, weights in [("positions", {}), ("colour", {"sh0": 1.0}), ("colour 2", {"sh0": 1.0}),
                               ("zero colour", {"sh0": 0.0})]:
            options = sog.CompressOptions(sort_budget=4, device="cpu", sort_weights=weights)
            orders[label] = sog.compress(scene, Path(tmp) / "o.sog", options, quiet=True, overwrite=True).order
    assert not torch.equal(orders["positions"], orders["colour"])
    assert torch.equal(orders["colour"], orders["colour 2"])
    assert torch.equal(orders["positions"], orders["zero colour"])
    assert sog.CompressOptions(sort_weights={"sh0": 1.0}).sort_config.objective == "smooth"
    with pytest.raises(sog.SogError, match="morton sorter does not sort on features .* cannot weight opacities, sh0"):
        sog.CompressOptions(sort="morton", sort_weights={"sh0": 1.0, "opacities": 0.5, "means": 2.0})



# --- the package's structure -------------------------------------------------------------------

def sort_imports() -> dict[str, set[str]]:
    """module -> the modules of sog/sort it imports ("__init__" is the package), read from the source (every
    import statement, also inside functions and ``if TYPE_CHECKING:``)."""
    package = ROOT / "sog" / "sort"
    modules = {p.stem for p in package.glob("*.py")}
    found: dict[str, set[str]] = {}
    for path in package.glob("*.py"):
        edges = found.setdefault(path.stem, set())
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                parts = (node.module or "").split(".") if node.level == 0 else \
                    ["sog", "sort"][:3 - node.level] + (node.module.split(".") if node.module else [])
                if parts[:2] != ["sog", "sort"]:
                    continue
                if len(parts) == 2:  # from sog.sort import x / from . import x: a submodule or the package
                    edges.update(a.name if a.name in modules else "__init__" for a in node.names)
                else:
                    edges.add(parts[2])
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    parts = alias.name.split(".")
                    if parts[:2] == ["sog", "sort"]:
                        edges.add(parts[2] if len(parts) > 2 else "__init__")
        edges.discard(path.stem)
    return found


def import_circle(graph: dict[str, set[str]]) -> list[str] | None:
    """One circle of ``graph`` (module -> modules it imports) as [a, b, ..., a], or None."""
    state: dict[str, str] = {}

    def visit(module: str, path: list[str]) -> list[str] | None:
        state[module] = "open"
        for other in sorted(graph.get(module, ())):
            if state.get(other) == "open":
                return path[path.index(other):] + [other]
            if other not in state and (circle := visit(other, path + [other])):
                return circle
        state[module] = "done"
        return None

    return next((c for m in sorted(graph) if m not in state and (c := visit(m, [m]))), None)


def test_sog_sort_has_no_import_circle():
    graph = sort_imports()
    assert {"config", "polish", "starts"} <= graph["shuffle_softsort"]  # the reader sees the imports
    assert import_circle(graph) is None, " -> ".join(import_circle(graph))
    assert import_circle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
