/*
 * sweep.h: `ibc sweep`, a grid of ordinary trainer runs (sweep.c and the
 * files sweep_impl.h lists), and the pieces of it that the MPI sweep
 * (sweep_mpi.c, bin/ibc-sweep-mpi) shares.
 *
 *   ibc sweep SPEC [--set KEY=V1,V2,...]... [--seeds K] [--seed S] [--jobs N]
 *                  [--out DIR] [--plot M1,M2,...] [--checkpoint-every N]
 *                  [--max-growth F] [--dry-run]
 *
 * A grid point is one value of every --set axis; a run is a grid point and
 * a seed.  Every grid point is the spec with its settings changed in the
 * text (the value replaces the setting's expression, or is inserted where
 * the spec leaves the setting at its default), checked by the same front
 * end as `ibc check`, with diagnostics at the spec's own lines.  Settings
 * the trainer takes on its command line (steps, seed) never change the
 * text: each distinct derived text is one trainer, built once into
 * DIR/models/HASH and run by every grid point and seed that shares it.
 *
 * Every run is the trainer, started by fork/exec from an argument vector
 * (no shell sees a value or a name), in DIR/runs/LABEL/seed_S with
 * --checkpoint-every; its exit status is recorded in that directory's
 * sweep_status when it ends (complete, diverged, check_failed, error,
 * ...).  A run with a sweep_status is never run again; one stopped by a
 * signal (the sweep's SIGINT/SIGTERM is passed on as one SIGTERM) is
 * continued with --resume from its checkpoint by the next sweep over DIR.
 * A failed run never stops the sweep.
 *
 * The outputs (DIR/sweep.csv, summary.csv, summary.json, timings.csv,
 * figures/, sweep.md) are a function of the run directories alone, read
 * in grid order, so that the local sweep and the MPI sweep write the same
 * bytes (timings.csv and sweep.md aside).  docs/sweeps.md describes them.
 *
 * Exit status: 0 every run complete with its checks passing, 1 an error of
 * the sweep itself (a trainer that does not build, an output that cannot
 * be written), 2 usage or a --set the spec refuses (nothing is run), 3
 * every run finished but some diverged or failed, 75 some runs are not
 * finished (rerun to continue them), 128+N stopped by signal N.
 */
#ifndef IBC_SWEEP_H
#define IBC_SWEEP_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

extern const char sweep_usage[], sweep_help[];

/* `ibc sweep ARGS` (argv[0] is "sweep"): the whole local sweep. */
int sweep_main(int argc, char **argv);

typedef struct sweep sweep;

typedef enum {
    SWEEP_PREPARE,   /* check every grid point, build the missing trainers */
    SWEEP_ATTACH     /* the same plan, trainers already built by another process */
} sweep_mode;

/* Parses the command line (argv[0] is the program's name), reads the spec
 * and plans the grid.  NULL after an error message, with *status 1 or 2
 * (0 for a --dry-run, which prints the plan instead). */
sweep *sweep_open(int argc, char **argv, sweep_mode mode, int *status);
void sweep_free(sweep *s);

/* SIGINT, SIGTERM and SIGHUP set the stop flag (sweep_stopping() then
 * returns the signal): no run is started after it, running ones get one
 * SIGTERM and checkpoint. */
void sweep_signals(void);
int sweep_stopping(void);

size_t sweep_nruns(const sweep *s);
/* true when run i has a sweep_status (finished by an earlier process) */
bool sweep_run_finished(const sweep *s, size_t i);
/* Runs run i to its end (or to a stop) in this process; returns 1 when it
 * is now finished (its sweep_status written), 0 when it was stopped. */
int sweep_run_wait(sweep *s, size_t i);
/* Runs every unfinished run, `jobs` at a time, with a progress line. */
void sweep_run_all(sweep *s, int jobs);
/* The progress line, for a scheduler outside this file (MPI rank 0):
 * started with `slots` runs at once; run i handed out; run i ended
 * (finished or not); a redraw; the end of the line. */
void sweep_progress_start(sweep *s, int slots);
void sweep_progress_started(sweep *s, size_t i);
void sweep_progress_ended(sweep *s, size_t i, bool finished);
/* redraws the line on a terminal: now when changed, else once a second */
void sweep_progress_tick(sweep *s, bool changed);
void sweep_progress_end(sweep *s);
/* Reads every run directory and writes the outputs; returns the exit
 * status above (the stop signal, if any, included). */
int sweep_report(sweep *s);

#endif
