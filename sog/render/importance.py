"""Render importance: how much the rendered pictures change when a Gaussian's values do.

For each Gaussian and attribute group (positions, rotation, log-scales, DC colour), `sensitivities`
measures the squared gradient of the rendered pixels w.r.t. its values, summed over a set of views: the
render error that one unit of quantisation error there causes. In trained scenes it is very uneven (on
plant the middle and last thirds of the Gaussians, ranked by it, are 16-64 times less sensitive than the
first third): many Gaussians are hidden behind others, inside surfaces, too faint or too blurred to
show small changes. The pipeline hands these figures to the profile, whose layer plan
(`sog.codec.layers.importance_layers`) splits the scene by them so that the less sensitive layers are stored
with coarser settings, at little cost in render PSNR.

The views (`sog.render.views.importance_views`): tuning views only, never `sog eval`'s: the tuning subset of a
camera file next to the scene, else seeded close views (0.6-1.4 half-diagonals from points near the centre, some
inside the bounds) and orbit views. Sensitivities are kept per view (``per_view``), because what is
unimportant from far away (hidden, faint, small on screen) is not from a camera that comes close: each view
counts the same in the ranking (`sog.codec.layers.importance_score`), and a layer's drop is what its *worst*
view tolerates.
"""

from __future__ import annotations

import torch

from ..splats import Splats
from ..stable import snap
from .cameras import Camera
from .cpu import render_one

#: attribute groups whose render sensitivity `sensitivities` measures (the ones a layer can store coarser)
SENSITIVE = ("means", "quats", "scales", "sh0")


def sensitivities(splats: Splats, cameras: list[Camera], device: str | torch.device = "cpu",
                  seed: int = 0, probes: int = 1, per_view: bool = False) -> dict[str, torch.Tensor]:
    """How much the pictures change when a Gaussian's values do: ``{"means", "quats", "scales", "sh0"}``, each
    (N,) float64 on the CPU, the squared gradient norm of the rendered pixels w.r.t. the Gaussian's values
    (positions, quaternion, log-scales, DC colour), summed over ``cameras``; with ``per_view`` each is (V, N)
    float32, one row per camera (`sog.codec.layers.importance_layers` then judges each view on its own).

    Estimated as ``E[(Jᵀr)²]`` with ``probes`` random ±1 images ``r`` per view (Hutchinson's diagonal
    estimator): a rough figure for one Gaussian (one probe per view: about ±40 % over 12 views), accurate
    for a layer's mean."""
    device = torch.device(device)
    s = splats.to(device)
    gen = torch.Generator().manual_seed(seed)
    # on the CPU a float64 render and gradients: the layers are a ranking of these figures, and float32 ones moved
    # between CPU instruction sets by far more than a `snap` absorbs; float64 ones by a few ulps, which it removes
    dtype = torch.float64 if device.type == "cpu" else torch.float32
    values = {name: getattr(s, name).detach().to(dtype).clone().requires_grad_(True) for name in SENSITIVE}
    shN = s.shN.to(dtype)
    rows = {name: [] for name in SENSITIVE}
    for cam in cameras:
        total = {name: torch.zeros(len(splats), dtype=torch.float64) for name in SENSITIVE}
        image, _ = render_one(values["means"], values["quats"], torch.exp(values["scales"]),
                              torch.sigmoid(s.opacities.to(dtype)), values["sh0"], shN, cam.viewmat.to(dtype),
                              cam.K.to(dtype), cam.width, cam.height)
        for k in range(probes):
            probe = (torch.randint(0, 2, image.shape, generator=gen) * 2 - 1).to(image)
            grads = torch.autograd.grad((image * probe).sum(), list(values.values()), allow_unused=True,
                                        retain_graph=k < probes - 1)
            for name, g in zip(values, grads):
                if g is not None:
                    total[name] += g.detach().double().square().reshape(len(splats), -1).sum(1).cpu() / probes
        for name in SENSITIVE:
            total[name] = torch.from_numpy(snap(total[name].cpu().numpy()))  # 20 bits: exact in float32 too
            rows[name].append(total[name].float() if per_view else total[name])
    if per_view:
        return {name: torch.stack(r) if r else torch.zeros(0, len(splats)) for name, r in rows.items()}
    return {name: sum(r) if r else torch.zeros(len(splats), dtype=torch.float64) for name, r in rows.items()}
