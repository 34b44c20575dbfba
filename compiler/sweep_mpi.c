/*
 * sweep_mpi.c: bin/ibc-sweep-mpi, `ibc sweep` over the ranks of an MPI job
 * (built by the Makefile only where mpicc is found; docs/sweeps.md).
 *
 *   mpirun -np K bin/ibc-sweep-mpi SPEC [the options of ibc sweep]
 *
 * Rank 0 plans the grid and builds the trainers (sweep_open with
 * SWEEP_PREPARE, exactly as `ibc sweep`), then hands out runs one at a
 * time to whichever rank asks (dynamic assignment: a rank that finishes
 * early gets the next run); every other rank plans the same grid without
 * building (SWEEP_ATTACH) and runs what it is given with sweep_run_wait,
 * which writes each run's sweep_status itself.  When every run has ended,
 * rank 0 reads the run directories and writes the outputs with
 * sweep_report: the same function, on the same directories, as the local
 * sweep, hence the same sweep.csv, summary.csv and summary.json.  DIR must
 * be on a file system every rank sees.  With one rank, rank 0 runs
 * everything itself, one run at a time.  --jobs is ignored: one trainer
 * per rank (start as many ranks per node as it has cores).
 *
 * Messages (tag 1, two longs): a worker sends {run, finished} (run -1 when
 * it asks for its first), rank 0 answers {run, 0} or {-1, 0} for "no more"
 * (all done, or the sweep was stopped by a signal).  Rank 0 waits with
 * MPI_Test and short sleeps, not in a busy MPI_Recv, so that it leaves
 * its core to the trainers.
 */
#include "sweep.h"

#include <mpi.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

enum { TAG = 1 };

static void nap(void)
{
    struct timespec t = { 0, 20 * 1000000L };
    nanosleep(&t, NULL);
}

/* rank 0: hand out the unfinished runs to ranks 1..size-1 */
static void dispatch(sweep *s, int size)
{
    size_t next = 0, n = sweep_nruns(s);
    int active = size - 1;
    sweep_progress_start(s, size - 1);
    while (active > 0) {
        long msg[2];
        MPI_Request rq;
        MPI_Status st;
        int done = 0;
        MPI_Irecv(msg, 2, MPI_LONG, MPI_ANY_SOURCE, TAG, MPI_COMM_WORLD, &rq);
        while (MPI_Test(&rq, &done, &st), !done) {
            nap();
            sweep_progress_tick(s, false);
        }
        if (msg[0] >= 0)
            sweep_progress_ended(s, (size_t)msg[0], msg[1] != 0);
        while (next < n && sweep_run_finished(s, next))
            next++;
        long reply[2] = { -1, 0 };
        if (next < n && !sweep_stopping()) {
            reply[0] = (long)next;
            sweep_progress_started(s, next);
            next++;
        } else
            active--;
        MPI_Send(reply, 2, MPI_LONG, st.MPI_SOURCE, TAG, MPI_COMM_WORLD);
        sweep_progress_tick(s, true);
    }
    sweep_progress_end(s);
}

/* ranks 1..size-1: ask, run, report */
static void work(sweep *s)
{
    long msg[2] = { -1, 0 };
    for (;;) {
        MPI_Send(msg, 2, MPI_LONG, 0, TAG, MPI_COMM_WORLD);
        long run[2];
        MPI_Recv(run, 2, MPI_LONG, 0, TAG, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        if (run[0] < 0)
            return;
        msg[0] = run[0];
        msg[1] = sweep_run_wait(s, (size_t)run[0]);
    }
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        if (rank == 0)
            printf("usage: mpirun -np K bin/ibc-sweep-mpi SPEC [--set KEY=V1,V2,...]... [--seeds K] [--seed S]\n"
                   "                 [--out DIR] [--plot M1,M2,...] [--checkpoint-every N] [--max-growth F] [--dry-run]\n\n"
                   "`ibc sweep` over the ranks of an MPI job: rank 0 builds the trainers and hands out the runs,\n"
                   "the other ranks run one trainer each (--jobs is ignored).  The options and the outputs are\n"
                   "those of `ibc sweep --help`; DIR must be on a file system every rank sees (docs/sweeps.md).\n");
        MPI_Finalize();
        return 0;
    }
    sweep_signals();
    int status = 0;
    sweep *s = NULL;
    if (rank == 0)
        s = sweep_open(argc, argv, SWEEP_PREPARE, &status);
    /* the plan and the trainers are ready (or the sweep ends here for all) */
    int ready = rank == 0 ? (s != NULL) : 0;
    MPI_Bcast(&ready, 1, MPI_INT, 0, MPI_COMM_WORLD);
    if (!ready) {
        MPI_Bcast(&status, 1, MPI_INT, 0, MPI_COMM_WORLD);
        MPI_Finalize();
        return status;
    }
    if (rank != 0) {
        s = sweep_open(argc, argv, SWEEP_ATTACH, &status);
        if (!s) {
            fprintf(stderr, "ibc-sweep-mpi: rank %d: error: cannot attach to the sweep (above)\n", rank);
            MPI_Abort(MPI_COMM_WORLD, status ? status : 1);
        }
    }
    if (size == 1) {
        sweep_progress_start(s, 1);
        for (size_t i = 0; i < sweep_nruns(s) && !sweep_stopping(); i++)
            if (!sweep_run_finished(s, i)) {
                sweep_progress_started(s, i);
                sweep_progress_tick(s, true);
                sweep_progress_ended(s, i, sweep_run_wait(s, i) != 0);
            }
        sweep_progress_end(s);
    } else if (rank == 0)
        dispatch(s, size);
    else
        work(s);
    if (rank == 0)
        status = sweep_report(s);
    sweep_free(s);
    MPI_Bcast(&status, 1, MPI_INT, 0, MPI_COMM_WORLD);
    MPI_Finalize();
    return status;
}
