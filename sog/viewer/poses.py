"""sog's cameras (`sog.render.cameras.Camera`, OpenCV axes) as viewer-page poses, so the page renders the same
view `sog eval` does: the camera's world position, its rotation columns right / up / back (PlayCanvas cameras
look down -Z, y up) and the vertical field of view in degrees."""

from __future__ import annotations

import math


def camera_pose(camera) -> dict:
    """``{"position", "right", "camUp", "back", "fov"}`` of ``camera`` (viewmat (4, 4) world->camera, x right, y
    down, z forward; principal point at the image centre) for ``sogViewer.setPose``."""
    R = camera.viewmat[:3, :3].double()
    position = camera.position.double()
    fy = float(camera.K[1, 1])
    return {"position": position.tolist(), "right": R[0].tolist(), "camUp": (-R[1]).tolist(),
            "back": (-R[2]).tolist(), "fov": math.degrees(2 * math.atan(camera.height / (2 * fy)))}
