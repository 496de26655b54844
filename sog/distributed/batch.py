"""Batch jobs: many scenes into one output folder (``sog compress A.ply B.ply OUTDIR/``, or a folder of scenes),
one task per scene, serially or on Dask (`sog.distributed.dask_runner`).

Each input ``NAME.EXT`` becomes ``OUTDIR/NAME.sog`` (the default compress), or with ``lod`` the streamed SOG
``OUTDIR/NAME/lod-meta.json`` (chunked for a binary PLY, `sog.distributed.compress_lod`, its chunks run inside the
scene's task). Every destination is checked before any work (two inputs of one name, an output that is an input,
an existing output without ``--force``); each output is written atomically, so a failed scene leaves nothing of
itself, and the scenes done before it stay whole. The results come back in the inputs' order whatever ran where."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

from ..errors import SogError
from ..io.atomic import check_destination, is_sog_folder
from ..io.lod_format import META_NAME
from ..io.lod_writer import prepare_folder
from ..pipeline import CompressOptions

#: the endings of the scene files a folder input contributes (a SOG folder inside it is one scene too)
SCENE_ENDINGS = (".ply", ".splat", ".spz", ".sog", ".glb")


@dataclass(frozen=True)
class SceneJob:
    """One scene of a batch: ``source`` to ``output`` with ``options``."""

    source: str
    output: str
    options: CompressOptions
    overwrite: bool


@dataclass
class SceneDone:
    source: str
    output: str
    count: int
    bytes: int
    sh_degree: int


def expand_inputs(inputs: list[str]) -> list[Path]:
    """The scenes of ``inputs``: each a scene file or SOG folder, or a folder whose scene files (`SCENE_ENDINGS`) and
    SOG folders, in name order, are the scenes; a `SogError` for none, or a missing path."""
    scenes: list[Path] = []
    for name in inputs:
        path = Path(name)
        if not path.exists():
            raise SogError(f"{path}: no such file or folder")
        if path.is_dir() and not is_sog_folder(path) and not (path / "meta.json").exists():
            found = sorted(p for p in path.iterdir() if (p.is_file() and p.name.lower().endswith(SCENE_ENDINGS))
                           or is_sog_folder(p))
            if not found:
                raise SogError(f"{path}: a folder of inputs holds no scene ({', '.join(SCENE_ENDINGS)} or SOG folder)")
            scenes.extend(found)
        else:
            scenes.append(path)
    return scenes


def _stem(path: Path) -> str:
    name = path.name
    for end in (".compressed.ply", *SCENE_ENDINGS):
        if name.lower().endswith(end):
            return name[: -len(end)]
    return name


def plan_batch(inputs: list[str], outdir: str | os.PathLike, options: CompressOptions, *, lod: bool,
               overwrite: bool) -> list[SceneJob]:
    """The jobs of a batch, every destination checked before any work (the output folder may be new: its parent
    must exist)."""
    outdir = Path(outdir)
    if outdir.exists() and not outdir.is_dir():
        raise SogError(f"{outdir}: a batch of several inputs writes into a folder, and this is a file")
    if not outdir.exists() and not outdir.parent.is_dir():
        raise SogError(f"output folder {outdir.parent} does not exist")
    scenes = expand_inputs(inputs)
    jobs, seen = [], {}
    for scene in scenes:
        stem = _stem(scene)
        if stem in seen:
            raise SogError(f"{seen[stem]} and {scene} would both write {outdir / stem}: rename one")
        seen[stem] = scene
        output = outdir / stem / META_NAME if lod else outdir / f"{stem}.sog"
        if output.parent.exists():
            check_destination(output, [str(s) for s in scenes], overwrite)
        # absolute paths: a worker's working folder may differ from this one's
        jobs.append(SceneJob(os.path.abspath(scene), os.path.abspath(output), options, overwrite))
    return jobs


def run_scene(job: SceneJob) -> SceneDone:
    """One scene of a batch (a task): the whole scene compressed as `sog compress` would, on this process."""
    from . import compress_lod
    from ..pipeline import compress

    output = Path(job.output)
    if output.name == META_NAME:
        result = compress_lod(job.source, output, job.options, overwrite=job.overwrite, quiet=True)
    else:
        result = compress(job.source, output, replace(job.options), overwrite=job.overwrite, quiet=True)
    return SceneDone(job.source, job.output, result.count, result.bytes, result.sh_degree)


def is_batch(inputs: list[str]) -> bool:
    """True for several inputs, or one folder that is not itself a scene (a SOG folder is one scene)."""
    if len(inputs) != 1:
        return True
    path = Path(inputs[0])
    return path.is_dir() and not is_sog_folder(path) and not (path / "meta.json").exists()


def run_batch(inputs: list[str], outdir: str | os.PathLike, options: CompressOptions | None = None, *,
              lod: bool = False, workers: int | None = None, scheduler: str | None = None, overwrite: bool = False,
              quiet: bool = False) -> list[SceneDone]:
    """Compress every scene of ``inputs`` into ``outdir`` (see the module docstring), one task per scene: here one
    after another, or on Dask with ``workers`` or ``scheduler``. Returns each scene's result, in the inputs' order."""
    from tqdm.auto import tqdm

    from . import check_workers, dask_runner
    from ..stream import serial

    options = options or CompressOptions()
    check_workers(workers, scheduler)
    jobs = plan_batch(inputs, outdir, options, lod=lod, overwrite=overwrite)
    outdir = Path(outdir)
    made = prepare_folder(outdir, [], overwrite)  # plan_batch checked every destination in it
    try:
        with tqdm(total=len(jobs), desc="scenes", unit="scene", disable=quiet, leave=False) as bar:
            if workers is None and scheduler is None:
                return serial(run_scene, jobs, lambda: bar.update(1))
            with dask_runner(workers, scheduler, quiet=quiet) as run:
                return run(run_scene, jobs, lambda: bar.update(1))
    except BaseException:
        if made and not any(outdir.iterdir()):
            outdir.rmdir()
        raise
