"""The distillation fine-tune (`sog.train.finetune`, `sog compress --finetune`): it lowers its loss, it is
deterministic, it keeps every Gaussian, it trains on tuning views only, and Ctrl-C writes nothing."""

from __future__ import annotations

import pytest
import torch

import sog
from conftest import small_scene
from sog.device import one_cpu_thread
from sog.pipeline import CompressOptions
from sog.render import orbit_cameras, render
from sog.render import tiles
from sog.train.finetune import FinetuneConfig, distillation_loss, finetune

pytestmark = pytest.mark.skipif(not tiles.available(), reason="the differentiable renderer needs numba")


def perturbed(seed: int = 0):
    """(teacher, student): a small scene and a copy with noisy colours and opacities."""
    teacher = small_scene(300, seed=1, sh_degree=1)
    gen = torch.Generator().manual_seed(seed)
    student = teacher.permute(torch.arange(len(teacher)))
    student.sh0 = student.sh0 + 0.3 * torch.randn(student.sh0.shape, generator=gen)
    student.opacities = student.opacities + 0.5 * torch.randn(student.opacities.shape, generator=gen)
    return teacher, student


def test_a_few_steps_lower_the_distillation_loss_and_keep_every_gaussian():
    teacher, student = perturbed()
    cams = orbit_cameras(teacher.means, 4, 40)
    targets = render(teacher, cams, backend="cpu", device="cpu")
    config = FinetuneConfig(steps=16, sort_every=6, sort="morton", lr_scale=1.0, lr_sh0=2e-2, lr_opacities=5e-2)
    with one_cpu_thread():
        before, _ = distillation_loss(student, targets, cams, config)
        result = finetune(student, cams, config, seed=0, teacher=teacher)
        after, _ = distillation_loss(result.splats.permute(result.order), targets, cams, config)
    assert after < 0.6 * before
    assert result.sorts == 2                                             # at steps 6 and 12
    assert torch.equal(torch.sort(result.order).values, torch.arange(len(student)))   # a bijection
    assert len(result.splats) == len(student)
    # row i is still input Gaussian i: its position moved by far less than the scene's spacing
    assert float((result.splats.means - student.means).abs().max()) < 1e-2


def test_the_fine_tune_is_deterministic():
    _, student = perturbed()
    cams = orbit_cameras(student.means, 3, 32)
    config = FinetuneConfig(steps=6, sort_every=3, sort="morton")
    with one_cpu_thread():
        runs = [finetune(student, cams, config, seed=5) for _ in range(2)]
    assert torch.equal(runs[0].order, runs[1].order)
    for name, value in runs[0].splats.tensors().items():
        assert torch.equal(value, getattr(runs[1].splats, name)), name


#: the child: compress a small scene with a short fine-tune (neighbour loss, a re-sort, quantisation-aware steps)
CROSS_CPU_CHILD = r"""
import hashlib, tempfile
from pathlib import Path
import sog
from sog.datasets import synthetic_scene
out = Path(tempfile.mkdtemp()) / "out.sog"
sog.compress(synthetic_scene(300, seed=3).with_sh_degree(3), out,
             sog.CompressOptions(sort="morton", finetune=12, finetune_qat=True), quiet=True)
print(hashlib.sha256(out.read_bytes()).hexdigest())
"""


@pytest.mark.parametrize("variant", ["aten default", "onednn sse41"])
def test_the_fine_tune_gives_the_same_bytes_on_other_cpu_code_paths(variant):
    """Before `sog.stable`'s training ops and `PortableAdam`, torch's default kernels gave another file."""
    from test_determinism import VARIANTS, child_output

    assert child_output(CROSS_CPU_CHILD, VARIANTS[variant], timeout=900) == child_output(CROSS_CPU_CHILD, {},
                                                                                       timeout=900)


def test_compress_finetune_trains_on_tuning_views_only_and_changes_the_file(tmp_path, monkeypatch):
    import sog.render.cameras as cameras
    import sog.render.views as views

    def refuse(*args, **kwargs):
        raise AssertionError("the fine-tune read a judging camera")

    scene_views = cameras.scene_views

    def tuning_only(*args, seed=0, **kwargs):
        if seed == views.JUDGING_SEED:
            refuse()
        return scene_views(*args, seed=seed, **kwargs)

    monkeypatch.setattr(views, "judging_cameras", refuse)
    monkeypatch.setattr(views, "scene_views", tuning_only)
    s = small_scene(400, seed=2, sh_degree=1)
    plain = sog.compress(s, tmp_path / "plain.sog", CompressOptions(sort_budget=2), quiet=True)
    tuned = sog.compress(s, tmp_path / "tuned.sog", CompressOptions(sort_budget=2, finetune=3), quiet=True)
    assert "finetune" in tuned.seconds and tuned.count == plain.count == len(s)
    assert (tmp_path / "tuned.sog").read_bytes() != (tmp_path / "plain.sog").read_bytes()
    back = sog.load(tmp_path / "tuned.sog")
    assert len(back) == len(s)


def test_finetune_is_refused_for_other_formats_and_negative_steps(tmp_path):
    s = small_scene(50)
    with pytest.raises(sog.SogError, match="finetune"):
        sog.compress(s, tmp_path / "out.spz", CompressOptions(finetune=3), quiet=True)
    with pytest.raises(sog.SogError, match="finetune"):
        CompressOptions(finetune=-1)


def test_ctrl_c_during_the_fine_tune_writes_nothing(tmp_path, monkeypatch, sample_ply, capsys):
    import sog.train.finetune as ft
    from sog.cli import main

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(ft, "render_params", interrupt)
    out = tmp_path / "out.sog"
    assert main(["compress", str(sample_ply), str(out), "--finetune", "5", "--quiet"]) == 130
    assert not out.exists() and list(tmp_path.iterdir()) == []
    assert "nothing was written" in capsys.readouterr().err


def test_after_a_fine_tune_the_psnr_search_judges_against_the_input(tmp_path):
    """``--psnr`` with ``--finetune``: the PSNR reported (and searched on) is the file's against the *input*'s
    renders on the search cameras, not against the fine-tuned scene's."""
    from sog.metrics import psnr
    from sog.render.views import search_cameras

    s = small_scene(400, seed=2, sh_degree=1)
    result = sog.compress(s, tmp_path / "q.sog", CompressOptions(sort_budget=2, finetune=3, target_psnr=30),
                          quiet=True)
    cams = search_cameras(s, None)
    with one_cpu_thread():
        measured = psnr(render(sog.load(tmp_path / "q.sog"), cams, device="cpu"), render(s, cams, device="cpu"))
    assert float(measured.mean()) == pytest.approx(result.psnr, abs=0.05)


def test_quantisation_aware_steps_render_what_the_file_decodes_to():
    """Straight-through: the forward values are exactly the quantiser's, the gradient reaches the float values as
    if it were the identity."""
    from sog.codec import sogv2
    from sog.splats import FIELDS
    from sog.codec.rotation import canonical_splats as canonical
    from sog.train.loop import straight_through

    scene = canonical(small_scene(200, seed=3, sh_degree=1))
    quantise = sogv2.PROFILE.quantiser(sogv2.Options(**sogv2.LEVELS[15]))
    params = {name: torch.nn.Parameter(getattr(scene, name).detach().clone()) for name in FIELDS}
    shown = straight_through(params, quantise)
    expected = quantise(scene)
    for name in ("means", "scales", "opacities", "sh0", "shN"):
        assert torch.allclose(shown[name], getattr(expected, name).reshape(shown[name].shape), atol=1e-6), name
    # a rotation is the decoded one up to sign and the raw norm
    dot = (torch.nn.functional.normalize(shown["quats"].detach(), dim=1) * expected.quats).sum(1).abs()
    assert float(dot.min()) > 1 - 1e-6
    sum(shown[name].sum() for name in FIELDS if shown[name].numel()).backward()
    for name in FIELDS:
        if params[name].numel():
            assert torch.equal(params[name].grad, torch.ones_like(params[name])), name


def test_only_the_last_qat_steps_call_the_quantiser():
    _, student = perturbed()
    cams = orbit_cameras(student.means, 3, 32)
    calls = []

    def quantise(splats):
        from sog.codec import sogv2
        calls.append(len(splats))
        return sogv2.quantise(splats)

    with one_cpu_thread():
        finetune(student, cams, FinetuneConfig(steps=5, qat_steps=2, sort_every=0, sort="morton"), seed=0,
                 quantise=quantise)
        finetune(student, cams, FinetuneConfig(steps=5, qat_steps=2, sort_every=0, sort="morton"), seed=0)
    assert calls == [len(student)] * 2          # steps 3 and 4 only; without a quantiser the steps are plain


def test_qat_is_checked_and_asks_for_a_fine_tune():
    from sog.errors import SogError
    with pytest.raises(SogError, match="--finetune"):
        CompressOptions(finetune_qat=10)
    with pytest.raises(SogError, match="0 to the 20"):
        CompressOptions(finetune=20, finetune_qat=21)
    with pytest.raises(SogError, match="must be 0"):
        FinetuneConfig(steps=4, qat_steps=5)


def test_a_reduced_scene_is_fine_tuned_towards_the_whole_scene(tmp_path, monkeypatch):
    """After --reduce the fine-tune distils the scene it came from (what the reduction cost is what it can win
    back), not the reduced scene itself."""
    import sog.pipeline as pipeline

    seen = {}
    real = pipeline.finetune

    def spy(splats, cameras, config=None, seed=0, progress=False, teacher=None, quantise=None):
        seen["student"], seen["teacher"] = len(splats), None if teacher is None else len(teacher)
        return real(splats, cameras, config, seed=seed, progress=progress, teacher=teacher, quantise=quantise)

    monkeypatch.setattr(pipeline, "finetune", spy)
    s = small_scene(400, seed=2, sh_degree=1)
    result = sog.compress(s, tmp_path / "r.sog", CompressOptions(sort_budget=2, reduce=0.5, finetune=2), quiet=True)
    assert result.count == 200 and seen == {"student": 200, "teacher": 400}
    sog.compress(s, tmp_path / "w.sog", CompressOptions(sort_budget=2, finetune=2), quiet=True)
    assert seen == {"student": 400, "teacher": None}                    # no reduction: itself


def test_qat_with_a_profile_without_quantisers_is_refused_before_any_work(tmp_path, monkeypatch):
    import sog.pipeline as pipeline

    monkeypatch.setattr(pipeline, "_scene", lambda *a, **k: (_ for _ in ()).throw(AssertionError("loaded")))
    with pytest.raises(sog.SogError, match="playcanvas profile has no quantisers"):
        sog.compress(small_scene(50), tmp_path / "q.sog",
                     CompressOptions(profile="playcanvas", finetune=2, finetune_qat=1), quiet=True)
    assert not (tmp_path / "q.sog").exists()
