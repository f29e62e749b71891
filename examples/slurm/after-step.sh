# What the example batch scripts (alexnet.sbatch, alexnet-paper.sbatch) do once their job step has ended:
# sourced by them before the step (it checks ALEXNET_GPU_REQUEUES there, before anything starts), then
# `after_step RC` with srun's exit status requeues the job where that continues the run, and exits.
# Slurm ends the script as it requeues the job: exiting first could have the job end as failed instead,
# so after a requeue the script sleeps until Slurm ends it.

# how many times one job is requeued after a lost GPU
GPU_REQUEUES=${ALEXNET_GPU_REQUEUES:-3}
[[ $GPU_REQUEUES =~ ^[0-9]+$ ]] || { echo "ALEXNET_GPU_REQUEUES=$GPU_REQUEUES: give a whole number of requeues (0: none)" >&2; exit 2; }

# whether the training options ask to start over in the run folder (--overwrite, --overwrite=true): the job's first
# attempt does, a requeue never does, and a resubmission would again
wants_overwrite() {
  local a
  for a in "${TRAIN[@]}"; do [[ $a == --overwrite || $a == --overwrite=true ]] && return 0; done
  return 1
}

# how to continue the run by hand
again() {
  if wants_overwrite; then
    echo "sbatch this script again without --overwrite in its training options to continue from the latest checkpoint (with it, the run starts over)"
  else
    echo "sbatch this script again to continue from the latest checkpoint"
  fi
}

after_step() {
  local rc=$1 attempt lost="" f worker node n
  # 75 in a worker's exit file: that worker lost its GPU (a driver reset, an Xid error) and the step was ended
  # (the coordinator exits 143 then, so this comes first). The job goes back in the queue to continue from the
  # latest checkpoint on a fresh device, at most ALEXNET_GPU_REQUEUES times a job (default 3): each lost GPU is
  # a line of RUN_DIR/slurm/gpu-lost (job, restart, time, worker, node).
  attempt="$RUN_DIR/slurm/$SLURM_JOB_ID.${SLURM_RESTART_COUNT:-0}"
  for f in "$attempt".*/worker0.exit "$attempt".*/worker1.exit; do
    [ "$(cat "$f" 2>/dev/null)" = 75 ] || continue
    worker=$(basename "$f" .exit)
    node=$(cat "${f%.exit}.node" 2>/dev/null || hostname)
    lost="${lost:+$lost, }$node ($worker)"
    echo "$SLURM_JOB_ID ${SLURM_RESTART_COUNT:-0} $(date -Is) $worker $node" >>"$RUN_DIR/slurm/gpu-lost"
  done
  if [ -n "$lost" ]; then
    # the runs of this job (restarts) that lost a GPU, this one included
    n=$(awk -v j="$SLURM_JOB_ID" '$1 == j { print $2 }' "$RUN_DIR/slurm/gpu-lost" 2>/dev/null | sort -u | wc -l)
    [ "$n" -ge 1 ] 2>/dev/null || n=1
    if [ "$n" -le "$GPU_REQUEUES" ]; then
      echo "$(date -Is) GPU lost on $lost: requeueing job $SLURM_JOB_ID to continue from the latest checkpoint (requeue $n of at most $GPU_REQUEUES)"
      if scontrol requeue "$SLURM_JOB_ID"; then sleep 600; else
        echo "$(date -Is) scontrol requeue $SLURM_JOB_ID failed (submitted with --no-requeue?): $(again)"
      fi
    else
      echo "$(date -Is) GPU lost on $lost: not requeueing job $SLURM_JOB_ID again ($n of its runs lost a GPU; ALEXNET_GPU_REQUEUES=$GPU_REQUEUES); check those GPUs (nvidia-smi, Xid lines in dmesg), then $(again)"
    fi
    exit 75
  fi
  # 143: the coordinator ended the run on SIGTERM with a checkpoint; from --signal, near the time limit, the job
  # goes back in the queue to continue. (scancel and scontrol requeue signal the script too, which then ends here.)
  # srun gives 143 too when a task failed and --kill-on-bad-exit ended the others: then the job fails, as
  # requeueing would fail the same way again. Requeued only when the coordinator's exit file says 143 and no
  # task's says anything but 0 or 143.
  if [ "$rc" -eq 143 ]; then
    local stopped="" failed="" code
    for f in "$attempt".*/coordinator.exit; do [ "$(cat "$f" 2>/dev/null)" = 143 ] && stopped=1; done
    for f in "$attempt".*/worker0.exit "$attempt".*/worker1.exit "$attempt".*/coordinator.exit; do
      code=$(cat "$f" 2>/dev/null) || continue
      case "$code" in 0 | 143) ;; *) failed="${failed:+$failed, }$(basename "$f" .exit) exited with $code" ;; esac
    done
    if [ -n "$stopped" ] && [ -z "$failed" ]; then
      echo "$(date -Is) stopped with a checkpoint before the time limit: requeueing job $SLURM_JOB_ID"
      scontrol requeue "$SLURM_JOB_ID" && sleep 600
    else
      echo "$(date -Is) the job step ended with 143, but ${failed:-the coordinator did not stop the run with a checkpoint (its exit file under $RUN_DIR/slurm says no 143)}: not requeueing job $SLURM_JOB_ID; the job fails (its output above says why)"
    fi
  elif [ "$rc" -ne 0 ]; then
    # every task failed by itself (all three refused an option at once), or srun could not start the step
    echo "$(date -Is) the job step ended with $rc: not requeueing job $SLURM_JOB_ID; the job fails (its output above says why)"
  fi
  exit "$rc"
}
