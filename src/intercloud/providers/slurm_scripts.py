"""The scripts an intercloud gang runs on a Slurm cluster, all in the gang's folder on
the cluster's shared filesystem:

- ``batch.sh``: the ``sbatch`` script; one ``srun`` step, one task per node, each
  task's output in ``rank-<task>.log`` (Slurm writes it);
- ``rank.sh``: each task says it runs (``rank-<r>.ready``, holding its node's name),
  waits for its rank's command (``rank-<r>.sh``, written by
  ``start_node``), runs it in its own process group and records the exit code in
  ``rank-<r>.exit``. It stops the command on a kill request (``rank-<r>.kill``), on
  Slurm's own signal (the job cancelled, its node failing: no exit file, so the
  provider reads Slurm's verdict), and when the controller has not answered
  ``scontrol ping`` for ``fence_s`` seconds (``rank-<r>.fenced``): the provider
  reports such a node lost only after a longer outage, so a gang restarted
  elsewhere never overlaps the old one;
- ``rank-<r>.sh``: the rank's command with the same environment as on the local
  provider (``node_env``), nothing of the caller's environment but ``BASE_ENV_NAMES``.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping

from intercloud.providers.node_env import BASE_ENV_NAMES
from intercloud.providers.slurm_cli import env_assignments

#: Variables of the Slurm task passed to the command as they are (when set).
SLURM_PASSED = ("SLURM_JOB_ID", "SLURM_PROCID", "SLURMD_NODENAME")

RANK_WAITER = r"""#!/bin/bash
# One task of an intercloud gang (module intercloud.providers.slurm_scripts).
d=$1 fence=$2 ping=$3 grace=$4 wait_s=$5
r=$SLURM_PROCID
finish() {
  echo "$1" >"$d/rank-$r.exit.tmp" && mv -f "$d/rank-$r.exit.tmp" "$d/rank-$r.exit"
  exit "$1"
}
# ready: this task runs, on this node (the provider hands out the gang once all are)
echo "${SLURMD_NODENAME:-}" >"$d/.rank-$r.ready" && mv -f "$d/.rank-$r.ready" "$d/rank-$r.ready"
start=$SECONDS
while [ ! -f "$d/rank-$r.sh" ]; do
  [ -f "$d/rank-$r.kill" ] && finish 143
  [ $((SECONDS - start)) -ge "$wait_s" ] && { echo "== no command within ${wait_s}s =="; exit 1; }
  sleep 0.02
done
setsid bash "$d/rank-$r.sh" & pid=$!
echo "$pid" >"$d/rank-$r.pid"
alive() { kill -0 "$pid" 2>/dev/null && ! grep -qs '^State:.*Z' "/proc/$pid/status"; }
stop() {
  kill -TERM -- "-$pid" 2>/dev/null
  local t=0
  while alive && [ "$t" -lt $((grace * 10)) ]; do sleep 0.1; t=$((t + 1)); done
  kill -KILL -- "-$pid" 2>/dev/null
}
trap 'stop; exit 143' TERM INT
ok=$SECONDS next=$SECONDS why=
while alive; do
  if [ -f "$d/rank-$r.kill" ]; then why=killed; stop; break; fi
  if [ "$fence" -gt 0 ] && [ "$SECONDS" -ge "$next" ]; then
    next=$((SECONDS + ping))
    if timeout "$ping" scontrol ping 2>/dev/null | grep -q ' is UP'; then
      ok=$SECONDS
    elif [ $((SECONDS - ok)) -ge "$fence" ]; then
      echo "== the slurm controller did not answer for ${fence}s: stopping =="
      why=fenced; stop; break
    fi
  fi
  sleep 0.05
done
wait "$pid"; code=$?
if [ "$why" = fenced ]; then touch "$d/rank-$r.fenced"; exit 143; fi
echo "== exit $code =="
finish "$code"
"""


def batch_script(job_dir: str, ranks: int, fence_s: int, grace_s: int, wait_s: int) -> str:
    """The ``sbatch`` script of one gang."""
    d = shlex.quote(job_dir)
    ping = max(1, fence_s // 5)
    return (
        "#!/bin/bash\n"
        f"exec srun --ntasks={ranks} --ntasks-per-node=1 --kill-on-bad-exit=0 "
        f"--output={d}/rank-%t.log bash {d}/rank.sh {d} {fence_s} {ping} {grace_s} {wait_s}\n"
    )


def rank_script(
    *,
    workdir: str,
    checkpoint_dir: str,
    env: Mapping[str, str],
    setup: str | None,
    run: str,
    keep_slurm_gpus: bool,
) -> str:
    """The command of one rank: ``setup`` then ``run`` (bash) in ``workdir`` with
    ``env`` over the node's ``BASE_ENV_NAMES`` (and Slurm's ``CUDA_VISIBLE_DEVICES``
    when the gang has GPUs: the ones Slurm gave this task)."""
    passed = [*BASE_ENV_NAMES, *SLURM_PASSED]
    if keep_slurm_gpus:
        passed.append("CUDA_VISIBLE_DEVICES")
    inherit = " ".join(f'${{{n}+"{n}=${n}"}}' for n in passed)
    assigned = " ".join(shlex.quote(a) for a in env_assignments(env))
    if setup:
        body = 'echo "== setup =="; bash -c "$0" || exit $?; echo "== run =="; exec bash -c "$1"'
        args = f"{shlex.quote(setup)} {shlex.quote(run)}"
    else:
        body = 'echo "== run =="; exec bash -c "$0"'
        args = shlex.quote(run)
    lines = ["#!/bin/bash", f"mkdir -p -m 700 {shlex.quote(workdir)} || exit 1"]
    if checkpoint_dir:
        lines.append(f"mkdir -p -m 700 {shlex.quote(checkpoint_dir)} || exit 1")
    lines.append(f"cd {shlex.quote(workdir)} || exit 1")
    lines.append(f"exec env -i {inherit} {assigned} bash -c {shlex.quote(body)} {args}")
    return "\n".join(lines) + "\n"
