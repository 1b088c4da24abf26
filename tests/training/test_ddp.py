"""Two processes on CPU (gloo, env:// as torchrun sets it up): the replicas stay identical."""
from __future__ import annotations

import os
import socket

import torch
import torch.multiprocessing as mp

from tests.helpers.training import augment_section, tiny_pretrain_net, train_section, write_store
from training.datasets import PsslStoreDataset
from training.datasets.transforms import build_transforms
from training.distributed import init_distributed, shutdown_distributed
from training.loss import SegmentationLoss
from core.schema import TrainSection
from training.trainer import Trainer

CLASSES, WORLD = 64, 2


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def train_one_rank(rank: int, port: int, store: str, out_dir: str, results: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(WORLD),
                      RANK=str(rank), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    ctx = init_distributed()
    try:
        torch.manual_seed(100 + rank)  # different initial weights: DDP must start every rank from rank 0's
        dataset = PsslStoreDataset(store, CLASSES, CLASSES, build_transforms(augment_section(crop=32), CLASSES))
        loss = SegmentationLoss(CLASSES, background_index=CLASSES - 1, ignore_index=CLASSES)
        settings = TrainSection.model_validate(train_section(epochs=2, accumulate=2, batch_size=1))
        trainer = Trainer(tiny_pretrain_net(CLASSES), loss, dataset, settings, out_dir, ctx)
        trainer.fit()
        torch.save({"params": {k: v.detach() for k, v in trainer.model.named_parameters()},
                    "seen": trainer.step}, os.path.join(results, f"rank{rank}.pt"))
    finally:
        shutdown_distributed()


def test_two_process_ddp_keeps_replicas_identical(tmp_path):
    store = write_store(tmp_path, n=8)
    out_dir, results = tmp_path / "out", tmp_path / "results"
    results.mkdir()
    mp.spawn(train_one_rank, args=(free_port(), str(store), str(out_dir), str(results)), nprocs=WORLD, join=True)
    ranks = [torch.load(results / f"rank{r}.pt", weights_only=True) for r in range(WORLD)]
    assert ranks[0]["seen"] == ranks[1]["seen"] == 4  # 4 samples per rank per epoch / (batch 1 x accumulate 2)
    for name, value in ranks[0]["params"].items():
        assert torch.equal(value, ranks[1]["params"][name]), name
    torch.manual_seed(100)
    initial = tiny_pretrain_net(CLASSES).head.weight
    assert not torch.equal(initial, ranks[0]["params"]["head.weight"])  # it trained
    state = torch.load(out_dir / "checkpoints" / "last.pt", weights_only=True)
    assert state["progress"] == {"epoch": 2, "position": 0, "step": 4, "world_size": 2}
    assert sorted(p.name for p in (out_dir / "checkpoints").iterdir()) == ["epoch_001.pt", "epoch_002.pt", "last.pt"]
