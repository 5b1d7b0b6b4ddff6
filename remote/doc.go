// Package remote is the remote side of tether: `serve`, `ls`, `stop` and `logs`,
// session directories and records, detaching, starting, supervising and stopping the
// app, readiness and idle shutdown. What it says to a launcher is package wire's: the
// ready record, its failures as wire.Failure (serve --json prints one on failure too),
// its notes as wire.Note (--json-notes), batch watch's events; it words them for a
// person here (wire.Text's references as this machine and its own commands), and the
// launcher words the same data for the laptop.
//
// A session lives in a 0700 directory named by its id under a per-user root
// ($TETHER_STATE_DIR, else $XDG_STATE_HOME/tether/sessions, which outlives the login;
// see statedirs.go, also for the places earlier versions used):
// session.json (the record, 0600, written atomically), server.sock (the guarded
// server), app.sock (an app bound by {socket}), app.log and server.log (capped). A
// session is judged alive by its server's pid, start time and boot id, never by the
// pid alone.
//
// A batch session (launch --slurm, --sge, --pbs, --lsf or --batch; `batch submit`,
// `batch watch`, serve --batch-session) lives under $XDG_STATE_HOME/tether/batch (or
// $TETHER_STATE_DIR) on the home the login node shares with the compute nodes; its
// directory also holds job.sh (the batch script) and job.out (the job's output:
// tether's own few lines, capped, since the scheduler holds that file open; the app's
// output is in app.log), its sockets are in a directory on the node, and it is judged
// by its scheduler (its job, named tether-<id>; package batch runs the scheduler's
// commands through runBatch), not by a pid. The record names the scheduler (empty:
// Slurm).
package remote
