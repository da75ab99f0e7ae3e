/* Ending an Open MPI launcher that waits for a lost node, once this rank is done. */
#ifndef TF_NET_LAUNCHER_H
#define TF_NET_LAUNCHER_H

/*
 * Called as a process that saw a rank lost leaves the runtime, with
 * everything it must write written. If the parent is Open MPI's launcher
 * (mpirun, or orted on another host), a watchdog process is left behind
 * that ends it grace_ms later if it has not ended by then (mpirun with
 * SIGKILL, orted with SIGTERM), and the launcher's name is returned. The
 * watchdog ends as soon as the launcher does. Under any other parent
 * (srun's slurmstepd, a shell) nothing is done and NULL returned: Slurm
 * ends a job on a dead node itself.
 * Why: Open MPI 4.1 learns of a rank's end only from that rank's daemon,
 * and the daemon of a node that died (or was cut off) never reports, even
 * with TCP keepalives set: mpirun then waits until the walltime. And when
 * rank 0's node dies, the daemons on the others wait for mpirun forever.
 */
const char *tf_launcher_release(int grace_ms);

#endif
