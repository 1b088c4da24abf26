"""Workers that wait for resources other work holds say so (here after 1 s instead of a minute), then run."""
from __future__ import annotations

import threading
import time

import ray

from core.store import EXPLAIN_STAGE, open_store, read_flags
from pipeline.explain import stage as explain
from pipeline.index import stage as index
from pipeline.explain import preflight
from pipeline.cli import store_path
from pipeline.progress import StageProgress
from tests.helpers.images import write_image_folder
from tests.helpers.pipeline import tiny_config


@ray.remote(num_cpus=2)
class Holder:
    """Holds every CPU of the test's Ray until killed, as another job on a shared cluster would."""

    def ready(self) -> bool:
        return True


def test_a_wait_for_resources_is_said_and_the_run_goes_on_once_they_are_free(ray_local, tmp_path, capfd,
                                                                               monkeypatch):
    monkeypatch.setattr(preflight, "WAIT_NOTICE_S", 1.0)
    config = tiny_config(tmp_path, write_image_folder(tmp_path / "data", classes=1, per_class=2),
                         ray={"workers": 1})
    path = store_path(config)
    path.parent.mkdir(parents=True)
    with StageProgress(disable=True) as progress:
        index.run(config, path, progress)
        holder = Holder.remote()
        ray.get(holder.ready.remote())
        done = threading.Event()
        thread = threading.Thread(target=lambda: (explain.run(config, path, progress), done.set()))
        thread.start()
        err, deadline = "", time.monotonic() + 120
        while "explain: waiting" not in err and time.monotonic() < deadline:  # the holder goes once it is said
            time.sleep(0.1)
            err += capfd.readouterr().err
        ray.kill(holder)
        thread.join(timeout=300)
    assert done.is_set()
    err += capfd.readouterr().err
    assert "explain: waiting 1 s for Ray to start a worker (1 CPU each; free now: 0 CPU, 0 GPU); lower " \
           "ray.cpus_per_worker / ray.gpus_per_worker or free the cluster" in err, err
    assert read_flags(open_store(path, mode="r"), EXPLAIN_STAGE, "cnn_a", 1).all()
