"""Self-Organizing Gaussians inside a training loop: sort and smooth while a scene trains."""

from .permute import permute_params_
from .plugin import SelfOrganizingGrid
from .smoothness import neighbour_ratio, smoothness_loss

__all__ = ["SelfOrganizingGrid", "permute_params_", "smoothness_loss", "neighbour_ratio"]
