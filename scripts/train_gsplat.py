"""Train a scene with gsplat (CUDA) with or without the SOG plugin, compress it with sog, report size and PSNR.

Needs a CUDA machine with `gsplat` installed (and `pycolmap` for COLMAP scenes). Datasets:
  - NeRF-synthetic: a folder with transforms_train.json / transforms_test.json (RGBA PNGs, white background);
  - COLMAP: a folder with images/ and sparse/0/ (every 8th image is held out for testing).

  python scripts/train_gsplat.py DATA --out runs/lego --steps 30000 --sog on
  python scripts/train_gsplat.py DATA --out runs/lego_off --steps 30000 --sog off

With --sog on the plugin sorts every --sort-every steps (until densification stops) and adds its
smoothness loss every step; the result is compressed in its trained order. With --sog off the
trained scene is sorted once by `sog compress`. Prints size and test PSNR and writes result.json.
This script imports gsplat only inside main(), so --help works anywhere.

The loop (`train_loop`) is sog's own training step (`sog.train.loop.training_step`, the one `sog compress
--finetune` runs) with gsplat's rasteriser as the renderer and its densification strategy in the step's hooks;
tests/test_train.py runs the same `train_loop` with sog's CPU renderer (its CPU twin).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data", help="NeRF-synthetic or COLMAP scene folder")
    ap.add_argument("--out", required=True, help="output folder (PLY, .sog, result.json)")
    ap.add_argument("--steps", type=int, default=30000)
    ap.add_argument("--sog", choices=("on", "off"), default="on")
    ap.add_argument("--sort-every", type=int, default=1000)
    ap.add_argument("--sort-until", type=int, default=None, help="last sorting step (default: refine_stop_iter)")
    ap.add_argument("--smooth-weight", type=float, default=None, help="default: SelfOrganizingGrid's")
    ap.add_argument("--method", default="auto", help="sog sort method (auto: shufflesoftsort if present, else morton)")
    ap.add_argument("--sh-degree", type=int, default=3)
    ap.add_argument("--downscale", type=int, default=1, help="image downscale factor (COLMAP)")
    ap.add_argument("--white-background", action="store_true", help="default for NeRF-synthetic")
    ap.add_argument("--seed", type=int, default=0)
    return ap.parse_args(argv)


def load_nerf_synthetic(root, split, device):
    """(images (B, H, W, 3) in [0, 1] on white, viewmats (B, 4, 4) world->camera OpenCV, Ks (B, 3, 3))."""
    import numpy as np
    import torch
    from PIL import Image
    with open(os.path.join(root, f"transforms_{split}.json")) as fh:
        meta = json.load(fh)
    imgs, c2ws = [], []
    for fr in meta["frames"]:
        path = os.path.join(root, fr["file_path"])
        path = path if path.endswith(".png") else path + ".png"
        rgba = np.asarray(Image.open(path).convert("RGBA"), dtype=np.float32) / 255.0
        imgs.append(rgba[..., :3] * rgba[..., 3:] + (1 - rgba[..., 3:]))
        c2ws.append(np.asarray(fr["transform_matrix"], dtype=np.float32))
    images = torch.from_numpy(np.stack(imgs)).to(device)
    c2w = torch.from_numpy(np.stack(c2ws)).to(device)
    c2w[:, :3, 1:3] *= -1  # OpenGL (Blender) -> OpenCV camera axes
    h, w = images.shape[1:3]
    f = 0.5 * w / math.tan(0.5 * meta["camera_angle_x"])
    K = torch.tensor([[f, 0, w / 2], [0, f, h / 2], [0, 0, 1]], dtype=torch.float32, device=device)
    return images, torch.linalg.inv(c2w), K.expand(len(imgs), 3, 3).clone()


def load_colmap(root, downscale, device):
    """(images, viewmats, Ks, points (M, 3), colours (M, 3)) from a COLMAP model via pycolmap."""
    import numpy as np
    import pycolmap
    import torch
    from PIL import Image
    rec = pycolmap.Reconstruction(os.path.join(root, "sparse", "0"))
    imgs, vms, Ks = [], [], []
    for _, im in sorted(rec.images.items(), key=lambda kv: kv[1].name):
        cam = rec.cameras[im.camera_id]
        pil = Image.open(os.path.join(root, "images", im.name)).convert("RGB")
        if downscale > 1:
            pil = pil.resize((pil.width // downscale, pil.height // downscale), Image.LANCZOS)
        imgs.append(np.asarray(pil, dtype=np.float32) / 255.0)
        K = np.asarray(cam.calibration_matrix(), dtype=np.float32)
        K[:2] /= downscale
        Ks.append(K)
        vm = np.eye(4, dtype=np.float32)
        vm[:3] = np.asarray(im.cam_from_world().matrix() if callable(im.cam_from_world) else im.cam_from_world.matrix())
        vms.append(vm)
    pts = np.stack([p.xyz for p in rec.points3D.values()]).astype(np.float32)
    cols = np.stack([p.color for p in rec.points3D.values()]).astype(np.float32) / 255.0
    t = lambda a: torch.from_numpy(np.stack(a) if isinstance(a, list) else a).to(device)  # noqa: E731
    return t(imgs), t(vms), t(Ks), t(pts), t(cols)


def train_loop(params, optimizers, images, render_view, steps: int, plugin=None, strategy=None, state=None,
               sh_degree: int = 3, seed: int = 0, log=print) -> int:
    """Train ``params`` (gsplat's names, a ParameterDict) for ``steps`` steps, each on one view drawn with ``seed``:
    `sog.train.loop.training_step` with ``render_view(params, view index, SH degree) -> (image (H, W, 3), info)``
    against ``images[i]`` (V, H, W, 3), the ``plugin``'s neighbour loss (a `SelfOrganizingGrid`, or None), the
    ``strategy``'s hooks (gsplat's, with its ``state``; None: no densification), and the plugin's re-sort after the
    step (permuting the strategy's state too). The SH degree grows by one every 1000 steps up to ``sh_degree``.
    Returns the number of re-sorts."""
    import torch

    from sog.train.loop import training_step

    gen = torch.Generator().manual_seed(seed)
    sorts = 0
    for step in range(steps):
        i = int(torch.randint(0, len(images), (1,), generator=gen))
        degree = min(step // 1000, sh_degree)
        hooks = {}
        if strategy is not None:
            hooks = {"pre_backward": lambda info: strategy.step_pre_backward(params, optimizers, state, step, info),
                     "post_backward": lambda info: strategy.step_post_backward(params, optimizers, state, step, info,
                                                                               packed=False)}
        photo, smooth = training_step(params, optimizers, plugin, lambda p: render_view(p, i, degree), images[i],
                                      **hooks)
        if plugin is not None and plugin.should_sort(step):
            plugin.sort_(params, optimizers, state, step=step)
            sorts += 1
        if step % 1000 == 0:
            log(f"step {step} loss {float(photo + smooth):.4f} N {params['means'].shape[0]} sorts {sorts}")
    return sorts


def main(argv=None):
    args = parse_args(argv)
    import torch
    import torch.nn.functional as F
    from gsplat import rasterization
    from gsplat.strategy import DefaultStrategy

    from sog.pipeline import CompressOptions, compress, decompress
    from sog.splats import SH_C0, Splats
    from sog.train import SelfOrganizingGrid

    torch.manual_seed(args.seed)
    dev = "cuda"
    os.makedirs(args.out, exist_ok=True)
    if os.path.exists(os.path.join(args.data, "transforms_train.json")):
        tr_img, tr_vm, tr_K = load_nerf_synthetic(args.data, "train", dev)
        te_img, te_vm, te_K = load_nerf_synthetic(args.data, "test", dev)
        background = torch.ones(3, device=dev)
        n0, extent = 100_000, 1.3
        points = (torch.rand(n0, 3, device=dev) * 2 - 1) * extent
        colours = torch.rand(n0, 3, device=dev)
    else:
        img, vm, K, points, colours = load_colmap(args.data, args.downscale, dev)
        test = torch.arange(len(img), device=dev) % 8 == 0
        tr_img, tr_vm, tr_K, te_img, te_vm, te_K = img[~test], vm[~test], K[~test], img[test], vm[test], K[test]
        background = torch.ones(3, device=dev) if args.white_background else torch.zeros(3, device=dev)
    cam_centres = torch.linalg.inv(tr_vm)[:, :3, 3]
    scene_scale = float((cam_centres - cam_centres.mean(0)).norm(dim=1).max()) * 1.1

    n = points.shape[0]
    dists = torch.cdist(points, points).topk(4, largest=False).values[:, 1:].mean(1) if n <= 200_000 else \
        torch.full((n,), 0.01 * scene_scale, device=dev)
    k = (args.sh_degree + 1) ** 2 - 1
    params = torch.nn.ParameterDict({
        "means": torch.nn.Parameter(points.clone()),
        "scales": torch.nn.Parameter(torch.log(dists.clamp(min=1e-7))[:, None].repeat(1, 3)),
        "quats": torch.nn.Parameter(torch.rand(n, 4, device=dev)),
        "opacities": torch.nn.Parameter(torch.logit(torch.full((n,), 0.1, device=dev))),
        "sh0": torch.nn.Parameter(((colours - 0.5) / SH_C0)[:, None, :]),
        "shN": torch.nn.Parameter(torch.zeros(n, k, 3, device=dev)),
    })
    lrs = {"means": 1.6e-4 * scene_scale, "scales": 5e-3, "quats": 1e-3, "opacities": 5e-2, "sh0": 2.5e-3,
           "shN": 2.5e-3 / 20}
    optimizers = {k: torch.optim.Adam([params[k]], lr=lrs[k], eps=1e-15) for k in params}
    strategy = DefaultStrategy(verbose=False)
    strategy.check_sanity(params, optimizers)
    state = strategy.initialize_state(scene_scale=scene_scale)
    method = SelfOrganizingGrid(method=args.method).resolved_method
    sort_until = args.sort_until if args.sort_until is not None else strategy.refine_stop_iter
    plugin = None
    if args.sog == "on":
        plugin = SelfOrganizingGrid(method=method, sort_every=args.sort_every, sort_from=args.sort_every,
                                    sort_until=sort_until, seed=args.seed, device=dev)
        if args.smooth_weight is not None:
            plugin.smooth_weight = args.smooth_weight

    def render(p, vm, K, h, w, sh_degree):
        colors = torch.cat([p["sh0"], p["shN"]], 1)
        out, _, info = rasterization(p["means"], F.normalize(p["quats"], dim=-1), torch.exp(p["scales"]),
                                     torch.sigmoid(p["opacities"]), colors, vm, K, w, h, sh_degree=sh_degree,
                                     backgrounds=background.expand(vm.shape[0], 3))
        return out, info

    h, w = tr_img.shape[1:3]
    t0 = time.time()

    def render_view(p, i, degree):
        img, info = render(p, tr_vm[i:i + 1], tr_K[i:i + 1], h, w, degree)
        return img[0], info

    sorts = train_loop(params, optimizers, tr_img, render_view, args.steps, plugin, strategy, state,
                       args.sh_degree, args.seed, log=lambda line: print(f"{line} {time.time() - t0:.0f}s", flush=True))
    train_s = time.time() - t0

    def test_psnr(p):
        total = 0.0
        with torch.no_grad():
            for j in range(len(te_img)):
                img, _ = render(p, te_vm[j:j + 1], te_K[j:j + 1], *te_img.shape[1:3], args.sh_degree)
                mse = (img[0].clamp(0, 1) - te_img[j]).pow(2).mean()
                total += float(-10 * torch.log10(mse))
        return total / len(te_img)

    p = {k: v.detach() for k, v in params.items()}
    splats = Splats(**{k: p[k].cpu() for k in ("means", "scales", "quats", "opacities", "sh0", "shN")})
    sog_path = os.path.join(args.out, "scene.sog")
    res = compress(splats, sog_path, CompressOptions(profile="playcanvas", sort="none" if plugin else method,
                                                     seed=args.seed, device=dev), overwrite=True)
    dec = decompress(sog_path)
    dp = {k: getattr(dec, k).float().to(dev) for k in ("means", "scales", "quats", "opacities", "sh0", "shN")}
    result = {"data": args.data, "sog": args.sog, "method": method, "steps": args.steps, "sorts": sorts,
              "count": len(splats),
              "train_seconds": round(train_s, 1), "psnr_float": round(test_psnr(p), 2),
              "psnr_sog": round(test_psnr(dp), 2), "sog_bytes": res.bytes}
    print(json.dumps(result, indent=2))
    with open(os.path.join(args.out, "result.json"), "w") as fh:
        json.dump(result, fh, indent=2)


if __name__ == "__main__":
    main()
