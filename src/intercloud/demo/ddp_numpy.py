"""Data-parallel training of a small MLP with numpy across the nodes of a gang.

Run on every node of a gang (``python -m intercloud.demo.ddp_numpy``). It reads the
torchrun-style environment intercloud sets (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``,
``MASTER_PORT``, ``INTERCLOUD_CHECKPOINT_DIR``): rank 0 listens on MASTER_ADDR:MASTER_PORT,
every other rank connects; each step every rank computes the gradient on its shard,
rank 0 averages them (an all-reduce through a hub) and sends the mean back. Rank 0
checkpoints parameters and the step every ``--checkpoint-every`` steps (write + rename)
and, after a restart, starts from the last checkpoint, so a preempted or failed job
resumes instead of starting over.

``--fail-once-at N`` makes the last rank exit with code 17 at step N, once per job (a
marker in the checkpoint directory remembers), to show restart and resume.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from multiprocessing.connection import Client, Connection, Listener
from pathlib import Path
from typing import Any

import numpy as np

Params = dict[str, np.ndarray]


def make_data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaved spirals: not linearly separable, so the hidden layer matters."""
    rng = np.random.default_rng(seed)
    t = rng.uniform(0.5, 2.5 * np.pi, n)
    label = rng.integers(0, 2, n)
    sign = np.where(label == 1, 1.0, -1.0)
    x = np.stack([sign * t * np.cos(t), sign * t * np.sin(t)], axis=1) / 4.0
    x += rng.normal(0, 0.03, x.shape)
    return x, label.astype(np.float64)


def init_params(hidden: int, seed: int = 1) -> Params:
    rng = np.random.default_rng(seed)
    return {
        "w1": rng.normal(0, 1.0, (2, hidden)),
        "b1": np.zeros(hidden),
        "w2": rng.normal(0, 1.0 / np.sqrt(hidden), (hidden, 1)),
        "b2": np.zeros(1),
    }


def loss_and_grad(p: Params, x: np.ndarray, y: np.ndarray) -> tuple[float, Params, float]:
    h = np.tanh(x @ p["w1"] + p["b1"])
    logits = (h @ p["w2"] + p["b2"])[:, 0]
    prob = 1.0 / (1.0 + np.exp(-logits))
    eps = 1e-9
    loss = float(-np.mean(y * np.log(prob + eps) + (1 - y) * np.log(1 - prob + eps)))
    acc = float(np.mean((prob > 0.5) == (y > 0.5)))
    d_logits = (prob - y)[:, None] / len(y)
    d_h = (d_logits @ p["w2"].T) * (1 - h**2)
    grads = {
        "w2": h.T @ d_logits,
        "b2": d_logits.sum(0),
        "w1": x.T @ d_h,
        "b1": d_h.sum(0),
    }
    return loss, grads, acc


def save_checkpoint(ckpt_dir: Path, params: Params, step: int) -> None:
    tmp = ckpt_dir / "model.tmp.npz"
    arrays: dict[str, Any] = {"step": np.asarray(step), **params}
    np.savez(tmp, **arrays)
    os.replace(tmp, ckpt_dir / "model.npz")


def load_checkpoint(ckpt_dir: Path) -> tuple[Params, int] | None:
    path = ckpt_dir / "model.npz"
    if not path.exists():
        return None
    with np.load(path) as z:
        return {k: z[k] for k in ("w1", "b1", "w2", "b2")}, int(z["step"])


class Hub:
    """Gradient averaging through rank 0 (fine for a demo; real jobs use NCCL/Gloo)."""

    def __init__(self, rank: int, world: int, addr: str, port: int, key: bytes) -> None:
        self.rank, self.world = rank, world
        self.peers: list[Connection] = []
        self.conn: Connection | None = None
        if world == 1:
            return
        if rank == 0:
            listener = Listener((addr, port), authkey=key)
            while len(self.peers) < world - 1:
                self.peers.append(listener.accept())
            listener.close()
        else:
            deadline = time.monotonic() + 60
            while True:
                try:
                    self.conn = Client((addr, port), authkey=key)
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)

    def broadcast(self, obj: Any) -> Any:
        if self.world == 1:
            return obj
        if self.rank == 0:
            for c in self.peers:
                c.send(obj)
            return obj
        assert self.conn is not None
        return self.conn.recv()

    def mean(self, grads: Params, loss: float) -> tuple[Params, float]:
        if self.world == 1:
            return grads, loss
        if self.rank == 0:
            total = {k: v.copy() for k, v in grads.items()}
            total_loss = loss
            for c in self.peers:
                g, lo = c.recv()
                for k in total:
                    total[k] += g[k]
                total_loss += lo
            mean = {k: v / self.world for k, v in total.items()}
            self.broadcast((mean, total_loss / self.world))
            return mean, total_loss / self.world
        assert self.conn is not None
        self.conn.send((grads, loss))
        result: tuple[Params, float] = self.conn.recv()
        return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--samples", type=int, default=4000)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--lr", type=float, default=2.0)
    ap.add_argument("--checkpoint-every", type=int, default=50)
    ap.add_argument("--fail-once-at", type=int, default=0)
    ap.add_argument("--step-sleep", type=float, default=0.0, help="seconds per step (demos)")
    args = ap.parse_args(argv)

    rank = int(os.environ.get("RANK", "0"))
    world = int(os.environ.get("WORLD_SIZE", "1"))
    addr = os.environ.get("MASTER_ADDR", "127.0.0.1")
    port = int(os.environ.get("MASTER_PORT", "29500"))
    key = os.environ.get("INTERCLOUD_JOB_ID", "demo").encode()
    ckpt_dir = Path(os.environ.get("INTERCLOUD_CHECKPOINT_DIR", "."))
    ckpt_dir.mkdir(parents=True, exist_ok=True)

    x, y = make_data(args.samples)
    x, y = x[rank::world], y[rank::world]
    hub = Hub(rank, world, addr, port, key)

    start = None
    if rank == 0:
        start = load_checkpoint(ckpt_dir)
        if start:
            print(f"rank 0: resuming from checkpoint at step {start[1]}", flush=True)
    params, step = hub.broadcast(start or (init_params(args.hidden), 0))
    print(f"rank {rank}/{world}: {len(y)} samples, starting at step {step}", flush=True)

    marker = ckpt_dir / "failed-once"
    acc = 0.0
    while step < args.steps:
        failing = args.fail_once_at and rank == world - 1 and step == args.fail_once_at
        if failing and not marker.exists():
            marker.write_text(str(step))
            print(f"rank {rank}: simulated failure at step {step}", flush=True)
            return 17
        loss, grads, acc = loss_and_grad(params, x, y)
        try:
            grads, loss = hub.mean(grads, loss)
        except (EOFError, ConnectionError):
            # A peer died. Like a collective under torchrun, notice it only after a timeout
            # (short here), so the peer's own failure is the first one recorded.
            time.sleep(1.0)
            print(f"rank {rank}: lost a peer at step {step}; exiting", flush=True)
            return 1
        for k in params:
            params[k] = params[k] - args.lr * grads[k]
        step += 1
        if rank == 0 and (step % args.checkpoint_every == 0 or step == args.steps):
            save_checkpoint(ckpt_dir, params, step)
        if rank == 0 and step % 50 == 0:
            print(f"step {step:4d}  loss {loss:.4f}  accuracy(rank 0 shard) {acc:.3f}", flush=True)
        if args.step_sleep:
            time.sleep(args.step_sleep)
    print(f"rank {rank}: done at step {step}, shard accuracy {acc:.3f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
