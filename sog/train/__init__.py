"""Training: the Self-Organizing Gaussians plugin that sorts and smooths while a scene trains.

The fine-tune of a compressed scene belongs here too (the differentiable renderer it needs goes in `sog.render`).
"""

from .permute import permute_params_
from .plugin import SelfOrganizingGrid
from .smoothness import neighbour_ratio, smoothness_loss

__all__ = ["SelfOrganizingGrid", "permute_params_", "smoothness_loss", "neighbour_ratio"]
