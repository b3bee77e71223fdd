"""Cluster launches on CPU: simulated ``srun``, ``torchrun``, and SLURM pre-emption + requeue.

The multi-process tests run with ``pytest -m ddp``. The SLURM tests set the variables ``srun``
sets for each task and start the task processes themselves; a stand-in ``scontrol`` on ``PATH``
records the requeue call and then, like SLURM, sends the job SIGTERM. The job script itself is
checked by running it with a stand-in ``srun`` and parsing the command it would start.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import torch
import yaml

from lit_seqcls.cli import main
from lit_seqcls.runtime.resume import RNG_KEY
from lit_seqcls.runtime.shutdown import INTERRUPTED_CKPT

ROOT = Path(__file__).resolve().parents[3]
CONFIGS = ROOT / "configs"
TINY = [
    "--config", str(CONFIGS / "data" / "synthetic.yaml"),
    "--config", str(CONFIGS / "model" / "gru.yaml"),
    "--config", str(CONFIGS / "logger" / "wandb.yaml"),
    "--data.init_args.train_size=200", "--data.init_args.test_size=40",
    "--data.init_args.median_length=10", "--data.init_args.max_text_length=30",
    "--data.init_args.batch_size=16",
    "--model.embedding_dim=16", "--model.encoder.init_args.hidden_size=16",
    "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false",
    "--trainer.max_epochs=2", "--seed_everything=7",
    "--trainer.callbacks+=seen_recorder.Seen",
]  # fmt: skip
DDP_CPU = ["--config", str(CONFIGS / "trainer" / "ddp_cpu.yaml")]
# What scripts/slurm/train.sbatch adds: one directory per job, resume from its newest checkpoint.
JOB_ID = "4242"
RUN_DIR = f"logs/slurm/lit-seqcls-{JOB_ID}"
SBATCH_ARGS = [
    f"--trainer.default_root_dir={RUN_DIR}", f"--checkpoint.dirpath={RUN_DIR}/checkpoints",
    "--ckpt_path=auto",
]  # fmt: skip

RECORDER = '''
import json, os, time
import lightning as L

class Seen(L.Callback):
    """Appends [epoch, batch_idx, sample indices] of each training batch to $SEEN_DIR/rank<R>."""

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        path = os.path.join(os.environ["SEEN_DIR"], f"rank{trainer.global_rank}.jsonl")
        with open(path, "a") as f:
            f.write(json.dumps([trainer.current_epoch, batch_idx, batch.index.tolist()]) + "\\n")
        time.sleep(float(os.environ.get("SEEN_SLEEP", "0")))
'''

SCONTROL = """#!/bin/sh
echo "$@" >> "$REQUEUE_LOG"
kill -TERM $PPID  # as SLURM does to a requeued job (then SIGKILL after KillWait)
"""


@pytest.fixture
def env(tmp_path) -> dict[str, str]:
    """The test's environment minus any real SLURM/torchrun variables, plus the recorder."""
    (tmp_path / "seen_recorder.py").write_text(RECORDER)
    (tmp_path / "bin").mkdir()
    scontrol = tmp_path / "bin" / "scontrol"
    scontrol.write_text(SCONTROL)
    scontrol.chmod(0o755)
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "MASTER_"))}
    return {
        **clean,
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT), clean.get("PYTHONPATH", "")]),
        "PATH": f"{tmp_path / 'bin'}{os.pathsep}{clean['PATH']}",
        "REQUEUE_LOG": str(tmp_path / "requeue.log"),
        "SEEN_DIR": str(tmp_path),
        "OMP_NUM_THREADS": "1",  # tiny model: threads only contend with the other rank
    }


def _srun_env(env: dict[str, str], rank: int, ntasks: int, port: int) -> dict[str, str]:
    """The variables ``srun`` gives task ``rank`` of a one-node job (as Lightning reads them)."""
    return {
        **env,
        "SLURM_JOB_ID": JOB_ID, "SLURM_JOB_NAME": "lit-seqcls", "SLURM_NNODES": "1",
        "SLURM_NTASKS": str(ntasks), "SLURM_NTASKS_PER_NODE": str(ntasks),
        "SLURM_PROCID": str(rank), "SLURM_LOCALID": str(rank), "SLURM_NODEID": "0",
        "SLURM_NODELIST": "127.0.0.1", "SLURM_JOB_NODELIST": "127.0.0.1",
        "MASTER_PORT": str(port),
    }  # fmt: skip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _srun(args: list[str], env, cwd: Path, ntasks: int = 1) -> list[subprocess.Popen]:
    port = _free_port()
    return [
        subprocess.Popen(
            [sys.executable, "-m", "lit_seqcls", "fit", *args],
            cwd=cwd,
            env=_srun_env(env, rank, ntasks, port),
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for rank in range(ntasks)
    ]


def _finish(procs: list[subprocess.Popen], ok: bool = True) -> str:
    out = ""
    for proc in procs:
        out += proc.communicate(timeout=600)[0]
        if ok:
            assert proc.returncode == 0, out[-4000:]
    return out


def _seen(path: Path) -> list[list]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _by_epoch(rows) -> dict[int, Counter]:
    epochs: dict[int, Counter] = {}
    for epoch, _, indices in rows:
        epochs.setdefault(epoch, Counter()).update(indices)
    return epochs


def _assert_one_checkpoint_and_one_run(cwd: Path, out: str, run_ids: list[str]) -> None:
    assert out.count("Best checkpoint") == 1, out[-4000:]  # rank zero only
    ckpts = sorted(p.name for p in (cwd / RUN_DIR / "checkpoints").glob("*.ckpt"))
    assert len(ckpts) == 2 and "last.ckpt" in ckpts, ckpts  # the best one and last.ckpt
    assert len(run_ids) == 1


@pytest.mark.ddp
def test_two_tasks_under_simulated_srun(tmp_path, env, wandb_run_ids):
    out = _finish(_srun([*TINY, *DDP_CPU, *SBATCH_ARGS], env, tmp_path, ntasks=2))
    _assert_one_checkpoint_and_one_run(tmp_path, out, wandb_run_ids(tmp_path))
    assert "--ckpt_path auto: no checkpoint" in out
    last = torch.load(tmp_path / RUN_DIR / "checkpoints" / "last.ckpt", weights_only=True)
    assert len(last[RNG_KEY]) == 2  # each rank's generator states, gathered
    rank0, rank1 = (_by_epoch(_seen(tmp_path / f"rank{r}.jsonl")) for r in (0, 1))
    assert not set(rank0[0]) & set(rank1[0])  # disjoint shards: really two ranks of one job


@pytest.mark.ddp
def test_two_processes_under_torchrun(tmp_path, env, wandb_run_ids):
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         "-m", "lit_seqcls", "fit", *TINY, *DDP_CPU, *SBATCH_ARGS],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-4000:]
    _assert_one_checkpoint_and_one_run(tmp_path, out, wandb_run_ids(tmp_path))
    assert (tmp_path / "rank1.jsonl").is_file()


@pytest.mark.ddp
def test_sigusr1_checkpoints_requeues_and_the_restart_resumes_with_the_same_coverage(
    tmp_path, env, wandb_run_ids
):
    args = [*TINY, *SBATCH_ARGS]
    whole = tmp_path / "whole"
    whole.mkdir()
    _finish(_srun(args, {**env, "SEEN_DIR": str(whole)}, whole))

    # Pre-empted in the middle of the second epoch.
    (proc,) = _srun(args, {**env, "SEEN_SLEEP": "0.2"}, tmp_path)
    deadline = time.monotonic() + 300
    while not any(e == 1 and b >= 2 for e, b, _ in _seen(tmp_path / "rank0.jsonl")):
        assert proc.poll() is None and time.monotonic() < deadline, _finish([proc], ok=False)
        time.sleep(0.1)
    proc.send_signal(signal.SIGUSR1)
    first = _finish([proc], ok=False)
    # The SIGTERM that follows the requeue stops training (Lightning exits without an error).
    assert "Requeued SLURM job" in first and "Best checkpoint" not in first, first[-4000:]
    assert (tmp_path / "requeue.log").read_text().split() == ["requeue", JOB_ID]
    hpc = tmp_path / RUN_DIR / "hpc_ckpt_1.ckpt"
    checkpoint = torch.load(hpc, weights_only=True)  # plain data only
    assert len(checkpoint[RNG_KEY]) == 1
    assert checkpoint.get("wandb_run_id") in wandb_run_ids(tmp_path)
    # The SIGTERM after the requeue also saved the last finished step (GracefulShutdown), at or
    # after the SIGUSR1 one: the requeued job resumes from that newest checkpoint.
    newest = f"{RUN_DIR}/checkpoints/{INTERRUPTED_CKPT}"
    checkpoint = torch.load(tmp_path / newest, weights_only=True)
    assert checkpoint["global_step"] >= torch.load(hpc, weights_only=True)["global_step"]
    progress = checkpoint["loops"]["fit_loop"]["epoch_loop.batch_progress"]["current"]
    cut = (checkpoint["epoch"], progress["processed"])
    assert cut[0] == 1 and cut[1] > 0  # really mid-epoch
    before = [row for row in _seen(tmp_path / "rank0.jsonl") if tuple(row[:2]) < cut]
    (tmp_path / "rank0.jsonl").unlink()

    # The requeued job: the same command, the same SLURM job id.
    second = _finish(_srun(args, env, tmp_path))
    assert f"--ckpt_path auto: resuming from {newest}" in second
    after = _seen(tmp_path / "rank0.jsonl")
    assert after[0][:2] == list(cut)  # continues with the first batch not yet trained on
    assert _by_epoch(before + after) == _by_epoch(_seen(whole / "rank0.jsonl"))
    assert len(set(wandb_run_ids(tmp_path))) == 1  # the requeued job continued the same run


def test_sbatch_script_runs_a_command_the_cli_accepts(tmp_path, env, monkeypatch, capsys):
    # A stand-in `srun` records the command; LightningCLI must parse it (configs, keys, values).
    (tmp_path / "bin" / "srun").write_text('#!/bin/sh\nprintf "%s\\n" "$@" > "$SRUN_ARGS"\n')
    (tmp_path / "bin" / "srun").chmod(0o755)
    slurm = {"SLURM_JOB_ID": "77", "SLURM_JOB_NAME": "lit-seqcls", "SLURM_NNODES": "2",
             "SLURM_NTASKS_PER_NODE": "4", "SLURM_GPUS_PER_NODE": "h100:4",
             "SLURM_JOB_NODELIST": "n[1-2]", "SRUN_ARGS": str(tmp_path / "srun_args")}  # fmt: skip
    subprocess.run(
        ["bash", str(ROOT / "scripts" / "slurm" / "train.sbatch")],
        cwd=tmp_path, env={**env, **slurm}, check=True, capture_output=True,
    )  # fmt: skip
    program, *args = (tmp_path / "srun_args").read_text().splitlines()
    assert program == "lit-seqcls" and args[-2:] == ["--ckpt_path", "auto"]
    monkeypatch.chdir(ROOT)  # configs are relative to the project root; nothing is written
    monkeypatch.setattr(sys, "argv", [program])
    with pytest.raises(SystemExit):
        main([*args, "--print_config"])
    config = yaml.safe_load(capsys.readouterr().out)
    trainer = config["trainer"]
    # devices arrives as the string "4", which Lightning reads as 4 devices (not device 4).
    assert (trainer["num_nodes"], str(trainer["devices"])) == (2, "4")
    assert trainer["strategy"]["class_path"] == "lightning.pytorch.strategies.DDPStrategy"
    assert trainer["precision"] == "bf16-mixed"
    assert trainer["default_root_dir"] == "logs/slurm/lit-seqcls-77"
    assert config["checkpoint"]["dirpath"] == "logs/slurm/lit-seqcls-77/checkpoints"
