"""Adam whose step rounds the same on every CPU, for the fine-tune's parameters.

`torch.optim.Adam` updates with fused kernels (``lerp_``, ``addcmul_``, ``addcdiv_``) that use fused multiply-adds
on some CPUs and not on others, so the same gradients give parameters that differ in the last bit, and a training
loop grows that into different scenes. `PortableAdam` is the same algorithm (torch's defaults: bias-corrected
moments, no weight decay, ``eps`` added to the corrected root) written with exactly rounded elementwise ops only
(``*``, ``+``, ``/``, ``sqrt``), each its own kernel, in a fixed order. Its state has torch's keys (``step``,
``exp_avg``, ``exp_avg_sq``), so `sog.train.permute` reorders it like torch's.

    opt = PortableAdam([param], lr=1e-3, eps=1e-15)
    loss.backward(); opt.step(); opt.zero_grad()
"""

from __future__ import annotations

import torch


class PortableAdam(torch.optim.Optimizer):
    """Adam over ``params`` with learning rate ``lr``, ``betas`` and ``eps`` (see the module docstring)."""

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        if not lr >= 0:
            raise ValueError(f"lr must be 0 or more, not {lr}")
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps))

    @torch.no_grad()
    def step(self, closure=None):
        """One update of every parameter that has a gradient (``closure`` is not supported)."""
        if closure is not None:
            raise ValueError("PortableAdam.step takes no closure")
        for group in self.param_groups:
            lr, (b1, b2), eps = group["lr"], group["betas"], group["eps"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                state["step"] += 1
                t = state["step"]
                g = p.grad
                m = state["exp_avg"] * b1 + g * (1 - b1)
                v = state["exp_avg_sq"] * b2 + (g * g) * (1 - b2)
                state["exp_avg"], state["exp_avg_sq"] = m, v
                denom = v.sqrt() / (1 - b2 ** t) ** 0.5 + eps
                p.sub_(m / denom * (lr / (1 - b1 ** t)))
        return None
