"""Chunk tasks on Dask (`sog.distributed`): a 2-worker LocalCluster writes the serial run's bytes, a worker killed
mid-run is re-run and the bytes are still the same, and a scheduler that cannot be reached is one line, exit 2.
The cluster tests start worker processes (10-30 s on a loaded machine): they are marked slow."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

pytest.importorskip("distributed")

from sog.cli import main  # noqa: E402
from sog.datasets import synthetic_scene  # noqa: E402
from sog.distributed import compress_lod, dask_runner  # noqa: E402
from sog.io import write_ply  # noqa: E402
from sog.io.lod_format import META_NAME  # noqa: E402
from sog.pipeline import CompressOptions  # noqa: E402
from sog.stream import compress_chunked  # noqa: E402

N = 2000
OPTIONS = CompressOptions(sort="morton", format_options={"levels": 2, "chunk_gaussians": 400})  # five leaves


def files_of(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def ply(tmp_path_factory):
    path = tmp_path_factory.mktemp("dask") / "scene.ply"
    write_ply(synthetic_scene(N, seed=3), path)
    return path


@pytest.fixture(scope="module")
def serial_files(ply):
    compress_chunked(ply, ply.parent / "serial" / META_NAME, OPTIONS, quiet=True)
    return files_of(ply.parent / "serial")


@pytest.mark.slow
def test_two_workers_write_the_serial_bytes(ply, serial_files, tmp_path):
    result = compress_lod(ply, tmp_path / "out" / META_NAME, OPTIONS, workers=2, quiet=True)
    assert files_of(tmp_path / "out") == serial_files
    assert result.count == N


@pytest.mark.slow
def test_a_worker_killed_mid_run_is_rerun_and_the_bytes_are_the_same(ply, serial_files, tmp_path):
    killed = []
    with dask_runner(workers=2) as run:
        def run_and_kill(function, tasks, progress):
            def after_each():
                progress()
                busy = [addr for addr, keys in run.client.processing().items() if keys]
                if not killed and busy:  # a worker in the middle of a chunk
                    pid = run.client.run(os.getpid, workers=busy[:1])[busy[0]]
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
            return run(function, tasks, after_each)

        compress_chunked(ply, tmp_path / "out" / META_NAME, OPTIONS, quiet=True, run=run_and_kill)
    assert killed, "a worker was killed while it held a chunk"
    assert files_of(tmp_path / "out") == serial_files, "complete and identical: no stale temporaries either"


def test_an_unreachable_scheduler_is_one_line_exit_2(ply, tmp_path, capsys, monkeypatch):
    import sog.distributed

    monkeypatch.setattr(sog.distributed, "CONNECT_SECONDS", 1)
    code = main(["compress", str(ply), str(tmp_path / "out" / META_NAME), "--scheduler", "tcp://127.0.0.1:9",
                 "--sort", "morton", "-q"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in err[0], err
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_a_worker_lost_more_often_than_allowed_is_a_clean_error_leaving_nothing(ply, tmp_path):
    import dask

    from sog.errors import SogError

    with dask.config.set({"distributed.scheduler.allowed-failures": 0}), dask_runner(workers=2) as run:
        def run_and_kill(function, tasks, progress):
            def after_each():
                progress()
                busy = [addr for addr, keys in run.client.processing().items() if keys]
                if busy:
                    os.kill(run.client.run(os.getpid, workers=busy[:1])[busy[0]], signal.SIGKILL)
            return run(function, tasks, after_each)

        with pytest.raises(SogError, match="Dask workers died"):
            compress_chunked(ply, tmp_path / "out" / META_NAME, OPTIONS, quiet=True, run=run_and_kill)
    assert not (tmp_path / "out").exists(), "no tree, no chunk folders"
