#!/usr/bin/env python3
"""`drp submit` on a real Slurm cluster on localhost (slurmctld + slurmd + munged).

    release_test.py DRP_EXE [MPIEXEC]

Starts a private cluster (local_cluster.sh: 4 CPUs declared, so that two 2-rank jobs or array
tasks run side by side).

  demo    with DRP_DEMO_FIXTURE set (CTest's demo_release fixture, tests/demo_release_fixture.sh:
          the README's demo sky, simulated, and its release made by `mpirun -np 2 drp run`):
          the same simulated sky is submitted with `drp submit --chunks 2`; every stage runs
          as a Slurm job or array task, the groups one after the other (afterok), every job
          completes with exit code 0, and every output file is byte-identical to the fixture's
          mpirun release.

Then it simulates the `tiny` survey (skymap shrunk to 2x2 small patches, see shrink_skymap: every
stage runs, at a fraction of the multifit cost) and runs it three or four ways, each on its own
copy of the repository:

  plain   `mpirun -np 2 drp run`: the reference outputs.
  chain   (only without DRP_DEMO_FIXTURE) as `demo`, on this small sky.
  cancel  the same, but one array task of the per-patch group is `scancel`led while it runs; the
          release job behind it is then cancelled by Slurm (kill_invalid_depend);
          `drp submit --rerun-failed` resubmits exactly that chunk and the release, and the
          outputs end up identical.
  limit   the whole release as one job with a 1-minute limit and `--signal-seconds 59`: Slurm's
          warning signal reaches the engine mid-run, the engine records its tasks in flight
          "interrupted" (none "failed") and exits 75, the script requeues the job, the next
          attempt resumes from the journal (tasks already done are not redone) and completes;
          outputs identical.

slurmctld checks time limits (and sends --signal warnings) only every 30 s: the test finds the
phase of those checks with a probe job and submits the limit job ~10 s before one, so that the
warning comes ~10 s into the run on a fast or a slow machine. If it comes while the ranks are
still starting up, they ignore it and the script repeats it until the engine stops.

The daemons are stopped by PID when the test ends, also on failure or SIGTERM. Exit code 77 (CTest
SKIP_RETURN_CODE) with a message when the Slurm or munge programs are not installed.
"""

import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time

SKIP = 77
HERE = os.path.dirname(os.path.abspath(__file__))
CLUSTER = os.path.join(HERE, "local_cluster.sh")
# Below the CTest timeout (1800 s), so that the cluster is always stopped by this script. On a
# machine shared with other heavy work, raise both (DRP_SLURM_TEST_SECONDS, ctest --timeout).
DEADLINE = time.monotonic() + float(os.environ.get("DRP_SLURM_TEST_SECONDS", "1700"))
T0 = time.monotonic()
STAGES = "bias,dark,flat,isr,characterize,astrometry,photocal.gather,photocal,coadd,deblend,multifit,release"


class Failure(Exception):
    pass


def log(msg):
    print(f"[{time.monotonic() - T0:6.1f} s] {msg}", flush=True)


def check(cond, msg):
    if not cond:
        raise Failure(msg)


def run(argv, ok=(0,), **kw):
    r = subprocess.run(argv, capture_output=True, text=True, **kw)
    if ok is not None and r.returncode not in ok:
        raise Failure(f"`{' '.join(argv)}` exited {r.returncode}\n--- stdout\n{r.stdout}"
                      f"\n--- stderr\n{r.stderr}")
    return r


def remaining():
    left = DEADLINE - time.monotonic()
    if left <= 0:
        raise Failure("test deadline reached")
    return left


class Test:
    def __init__(self, drp, mpiexec, work):
        self.drp = drp
        self.mpiexec = mpiexec
        self.work = work
        self.cluster = os.path.join(work, "cluster")
        self.env = dict(os.environ)
        self.env["SLURM_CONF"] = os.path.join(self.cluster, "slurm.conf")
        self.env["OMPI_ALLOW_RUN_AS_ROOT"] = "1"
        self.env["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
        # A job inherits the submitter's environment: keep the ranks from binding to cores
        # (several jobs share this machine's few cores).
        self.env["OMPI_MCA_hwloc_base_binding_policy"] = "none"

    # ---- Slurm helpers -------------------------------------------------------------------
    def slurm(self, *argv, ok=(0,)):
        return run(list(argv), ok=ok, env=self.env)

    def drp_cmd(self, *argv, ok=(0,)):
        return run([self.drp, *argv], ok=ok, env=self.env)

    def submissions(self, repo):
        path = os.path.join(repo, "runs", "slurm", "submissions.jsonl")
        with open(path) as f:
            return [json.loads(line) for line in f if line.strip()]

    def job_ids(self, repo):
        return sorted({e["job"] for e in self.submissions(repo) if e["event"] == "job"})

    def states(self, ids):
        """Slurm state of each job / array task ("123", "123_1"): squeue -t all."""
        r = self.slurm("squeue", "-h", "-r", "-t", "all", "--jobs=" + ",".join(ids), "-o",
                       "%i|%T|%r")
        out = {}
        for line in r.stdout.splitlines():
            jid, state, reason = line.strip().split("|")
            out[jid] = (state, reason)
        return out

    def wait_idle(self, repo, what):
        """Waits until no job of the repository's submissions is pending or running."""
        active = {"PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "REQUEUED", "SUSPENDED",
                  "REQUEUE_HOLD", "RESIZING", "SIGNALING", "STAGE_OUT"}
        t = time.monotonic()
        while True:
            st = self.states(self.job_ids(repo))
            busy = {k: v for k, v in st.items() if v[0] in active}
            if not busy:
                log(f"{what}: all jobs finished after {time.monotonic() - t:.0f} s: "
                    + ", ".join(f"{k} {v[0]}" for k, v in sorted(st.items())))
                return st
            if remaining() < 1:
                raise Failure(f"{what}: jobs still active at the deadline: {busy}")
            time.sleep(1)

    def jobcomp(self):
        """The job-completion log: {"123" or "123_1": [fields of each record, in order]}."""
        out = {}
        with open(os.path.join(self.cluster, "log", "jobcomp.txt")) as f:
            for line in f:
                kv = dict(w.split("=", 1) for w in line.split() if "=" in w)
                key = kv["JobId"]
                aj, at = kv.get("ArrayJobId", ""), kv.get("ArrayTaskId", "")
                if aj.isdigit() and aj != "0" and at.isdigit() and int(at) < 4294967294:
                    key = f"{aj}_{at}"
                out.setdefault(key, []).append(kv)
        return out

    # ---- repository helpers --------------------------------------------------------------
    @staticmethod
    def journals(repo):
        """[(run_start event, [task events])] of every engine journal in the repository."""
        out = []
        runs = os.path.join(repo, "runs")
        for name in sorted(os.listdir(runs)):
            if not name.endswith(".jsonl"):
                continue
            events = []
            with open(os.path.join(runs, name)) as f:
                for line in f:
                    try:
                        events.append(json.loads(line))
                    except ValueError:
                        pass  # a line cut by a killed run
            starts = [e for e in events if e.get("event") == "run_start"]
            if starts:
                out.append((starts[0], events))
        return out

    @staticmethod
    def snapshot(repo):
        """SHA-256 of every file except the journals, the Slurm scripts/logs and validation
        outputs (validate_release_test may write them into the fixture's release). A temporary
        left by a task killed mid-write (the engine removes them before the next attempt)
        would show up as an extra file."""
        out = {}
        for root, dirs, files in os.walk(repo):
            rel_root = os.path.relpath(root, repo)
            if rel_root.split(os.sep)[0] in ("runs", "slurm", "validate"):
                continue
            for name in files:
                path = os.path.join(root, name)
                with open(path, "rb") as f:
                    out[os.path.relpath(path, repo)] = hashlib.sha256(f.read()).hexdigest()
        return out

    def task_states(self, repo):
        """Final state of every task over all journals (latest event wins)."""
        events = [e for _, evs in self.journals(repo) for e in evs
                  if e.get("event") == "task" and e.get("state") != "running"]
        events.sort(key=lambda e: e["time"])
        return {f"{e['stage']}:{e['id']}": e["state"] for e in events}

    def expect_same_outputs(self, repo, what):
        states = self.task_states(repo)
        differ = sorted(k for k in set(states) | set(self.reference_states)
                        if states.get(k) != self.reference_states.get(k))
        check(not differ, f"{what}: task states differ from the plain run: "
              + ", ".join(f"{k} {states.get(k)} vs {self.reference_states.get(k)}"
                          for k in differ[:8]))
        got = self.snapshot(repo)
        missing = sorted(set(self.reference) - set(got))
        extra = sorted(set(got) - set(self.reference))
        differ = sorted(k for k in self.reference if k in got and got[k] != self.reference[k])
        check(not missing and not extra and not differ,
              f"{what}: outputs differ from the plain mpirun run: missing {missing[:5]}, "
              f"extra {extra[:5]}, different {differ[:5]}")
        check("release/object.h5" in got, f"{what}: no release catalog")
        log(f"{what}: {len(got)} files byte-identical to the plain run "
            f"(release/object.h5 sha256 {got['release/object.h5'][:16]}...)")

    @staticmethod
    def slurm_job_of(run_start):
        m = re.search(r"\(slurm job ([0-9_]+)(?:, restart (\d+))?\)", run_start.get("command", ""))
        return (m.group(1), int(m.group(2) or 0)) if m else (None, 0)

    def chunks_with_failures(self, repo):
        """(group, chunk) of the chunks holding a task that failed or was blocked in the plain
        run: they stay incomplete however the release is run."""
        out = set()
        for d, _, files in os.walk(os.path.join(repo, "slurm")):
            for f in files:
                m = re.fullmatch(r"chunk-(\d+)\.txt", f)
                if not m:
                    continue
                keys = [l.strip() for l in open(os.path.join(d, f)) if l.strip()
                        and not l.startswith("#")]
                if any(self.reference_states.get(k) not in ("done", "degraded") for k in keys):
                    out.add((os.path.basename(d), int(m.group(1))))
        return out

    def incomplete_chunks(self, repo):
        r = self.drp_cmd("status", "--repo", repo, "--json", ok=(0, 1))
        j = json.loads(r.stdout)["slurm"]
        check(j["chunks"], f"drp status --json: no chunks: {j}")
        return {(c["group"], c["chunk"]) for c in j["chunks"] if c["done"] < c["tasks"]}, j

    def expect_status_complete(self, repo, what):
        text = self.drp_cmd("status", "--repo", repo, ok=(0, 1)).stdout
        check("Slurm jobs of submission sub-0001" in text, f"{what}: drp status:\n{text}")
        incomplete, j = self.incomplete_chunks(repo)
        expected = self.chunks_with_failures(repo)
        check(incomplete == expected, f"{what}: incomplete chunks {sorted(incomplete)}, expected "
              f"only those with failed tasks {sorted(expected)}: {j}")

    # ---- phases --------------------------------------------------------------------------
    def plain(self, repo):
        t = time.monotonic()
        # Exit code 1: some task failed or is blocked (a science outcome, recorded in the
        # journal); the Slurm runs must reach exactly the same task states.
        r = run([self.mpiexec, "-np", "2", "--oversubscribe", "--bind-to", "none", self.drp,
                 "run", "--repo", repo, "--progress", "0"], ok=(0, 1), env=self.env)
        self.plain_seconds = time.monotonic() - t
        log("plain: " + r.stdout.strip().splitlines()[-1])
        self.reference = self.snapshot(repo)
        self.reference_states = self.task_states(repo)
        bad = sorted(k for k, v in self.reference_states.items() if v not in ("done", "degraded"))
        log(f"plain: {len(self.reference_states)} tasks; not done: {bad}")

    def reference_from(self, repo):
        """The reference outputs and task states of a release made elsewhere (the fixture)."""
        self.reference = self.snapshot(repo)
        self.reference_states = self.task_states(repo)
        bad = sorted(k for k, v in self.reference_states.items() if v not in ("done", "degraded"))
        log(f"reference {repo}: {len(self.reference)} files, {len(self.reference_states)} tasks; "
            f"not done: {bad}")

    def submit(self, repo, *extra):
        r = self.drp_cmd("submit", "--repo", repo, "--time", "10", "--signal-seconds", "30",
                         *extra)
        log(f"submit {os.path.basename(repo)}: " + " | ".join(r.stdout.strip().splitlines()))
        return r

    def chain(self, repo):
        self.submit(repo, "--chunks", "2")
        self.wait_idle(repo, "chain")
        subs = self.submissions(repo)
        plan = [e for e in subs if e["event"] == "plan"][0]
        groups = {g["name"]: g for g in plan["groups"]}
        check(list(groups) == ["visit", "calibrate", "patch", "release"],
              f"chain: groups {list(groups)}")
        check(groups["visit"]["chunks"] == 2 and groups["patch"]["chunks"] == 2,
              f"chain: expected 2-chunk arrays: {plan['groups']}")
        jobs = [e for e in subs if e["event"] == "job"]
        check([j["group"] for j in jobs] == list(groups), f"chain: jobs {jobs}")
        for prev, j in zip(jobs, jobs[1:]):
            check(j["after"] == [prev["job"]], f"chain: {j['group']} not afterok {prev['job']}")
        # Every job and array task completed with exit code 0 (the job-completion log).
        comp = self.jobcomp()
        stage_group, slurm_group, times = {}, {}, {}
        for j in jobs:
            for s in groups[j["group"]]["stages"]:
                stage_group[s] = j["group"]
            ids = [f"{j['job']}_{c}" for c in j["chunks"]] if j["array"] else [j["job"]]
            for sid in ids:
                check(sid in comp, f"chain: no completion record for job {sid}")
                rec = comp[sid][-1]
                check(rec["JobState"] == "COMPLETED" and rec["ExitCode"] == "0:0",
                      f"chain: job {sid} ({j['group']}) ended {rec['JobState']} "
                      f"{rec['ExitCode']}")
                slurm_group[sid] = j["group"]
                times.setdefault(j["group"], []).append((rec["StartTime"], rec["EndTime"]))
        # The groups ran one after the other (second resolution: equal times are allowed).
        order = list(groups)
        for a, b in zip(order, order[1:]):
            last_end = max(e for _, e in times[a])
            first_start = min(s for s, _ in times[b])
            check(first_start >= last_end,
                  f"chain: group {b} started at {first_start} before {a} ended at {last_end}")
        # Every task was done by a `drp run` inside the Slurm job of its stage's group.
        seen_jobs, done = set(), 0
        for start, events in self.journals(repo):
            sid, _ = self.slurm_job_of(start)
            check(sid in slurm_group, f"chain: journal of run {start['run']} is from no job of "
                                      f"the submission: {start.get('command')}")
            seen_jobs.add(sid)
            for e in events:
                if e.get("event") == "task" and e.get("state") in ("done", "degraded"):
                    check(stage_group.get(e["stage"]) == slurm_group[sid],
                          f"chain: {e['stage']}:{e['id']} done in job {sid} of group "
                          f"{slurm_group[sid]}")
                    done += 1
        check(seen_jobs == set(slurm_group), f"chain: jobs without a run: "
                                             f"{set(slurm_group) - seen_jobs}")
        log(f"chain: {len(slurm_group)} jobs/array tasks in order "
            + " -> ".join(f"{g} ({len(times[g])})" for g in order) + f", {done} tasks done")
        self.expect_status_complete(repo, "chain")
        self.expect_same_outputs(repo, "chain")

    def cancel(self, repo):
        self.submit(repo, "--chunks", "2")
        jobs = {e["group"]: e for e in self.submissions(repo) if e["event"] == "job"}
        target = f"{jobs['patch']['job']}_1"
        # Wait until the chunk's engine has started a task, then cancel that array task.
        while True:
            st = self.states([jobs["patch"]["job"]]).get(target, ("?", ""))[0]
            running = [ev for s, evs in self.journals(repo)
                       if self.slurm_job_of(s)[0] == target for ev in evs
                       if ev.get("event") == "task" and ev.get("state") == "running"]
            if st == "RUNNING" and running:
                break
            check(st in ("PENDING", "RUNNING", "?"), f"cancel: {target} already {st}")
            remaining()
            time.sleep(0.3)
        self.slurm("scancel", target)
        log(f"cancel: scancel {target} while it ran {running[0]['stage']}:{running[0]['id']}")
        st = self.wait_idle(repo, "cancel")
        check(st[target][0] == "CANCELLED", f"cancel: {target} ended {st[target]}")
        rel = jobs["release"]["job"]
        check(st[rel][0] == "CANCELLED", f"cancel: the release job {rel} ended {st[rel]} "
                                          "(expected cancelled: its dependency failed)")
        status = self.drp_cmd("status", "--repo", repo, ok=None).stdout
        check("neither queued nor running (resubmit with --rerun-failed)" in status,
              "cancel: drp status does not offer a rerun:\n" + status)
        log("cancel: drp status:\n" + status[status.index("Slurm jobs"):])
        incomplete, j = self.incomplete_chunks(repo)
        expected = self.chunks_with_failures(repo) | {("patch", 1), ("release", 0)}
        check(incomplete == expected,
              f"cancel: incomplete chunks {sorted(incomplete)}, expected {sorted(expected)}")
        r = self.drp_cmd("submit", "--repo", repo, "--rerun-failed")
        log("cancel: rerun: " + " | ".join(r.stdout.strip().splitlines()))
        rerun = [e for e in self.submissions(repo) if e["event"] == "job"][len(jobs):]
        want = {}
        for g in ("visit", "calibrate", "patch", "release"):  # pipeline order
            if any(eg == g for eg, _ in expected):
                want[g] = sorted(c for eg, c in expected if eg == g)
        check([(e["group"], e["chunks"]) for e in rerun] == list(want.items())
              and rerun[-1]["group"] == "release",
              f"cancel: rerun submitted {rerun}, expected the chunks {want}")
        self.wait_idle(repo, "cancel rerun")
        comp = self.jobcomp()
        for e in rerun:
            sid = f"{e['job']}_{e['chunks'][0]}" if e["array"] else e["job"]
            rec = comp[sid][-1]
            check(rec["JobState"] == "COMPLETED", f"cancel: rerun job {sid} {rec['JobState']}")
        self.expect_status_complete(repo, "cancel")
        self.expect_same_outputs(repo, "cancel")

    def next_time_limit_check(self):
        """When slurmctld will next check time limits and send `--signal` warnings. It does so
        every 30 s (PERIODIC_TIMEOUT, fixed in slurmctld), so a probe job with a 1-minute limit
        and a 59 s warning gets its signal at the first check after it starts: the next check
        is 30 s after that."""
        stamp = os.path.join(self.work, "probe.txt")
        script = f"trap 'date +%s.%N > {shlex.quote(stamp)}; exit 0' USR1; " \
                 "while :; do sleep 0.1; done"
        self.slurm("sbatch", "--parsable", "--job-name=probe", "--time=1", "--signal=B:USR1@59",
                   "--output=/dev/null", "--wrap", script)
        while True:
            text = open(stamp).read().strip() if os.path.exists(stamp) else ""
            if re.fullmatch(r"\d+\.\d+", text):
                return float(text) + 30
            remaining()
            time.sleep(0.1)

    def limit(self, repo):
        # Submitted ~10 s before slurmctld's next time-limit check, the job gets the warning
        # ~10 s into its run: early enough that the (small) release cannot finish first on a
        # fast machine, late enough that the engine has done some tasks.
        # On an idle machine the whole small release takes ~8 s, so one characterize task is
        # made slow (40 s, then it completes normally: DRP_JOBS_INJECT_FAULTS kind "slow"): it is
        # in flight when the warning comes while the other rank finishes tasks, on any machine.
        faults = os.path.join(os.path.dirname(repo), "limit-slow-task.faults")  # not an output
        with open(faults, "w") as f:
            f.write("characterize visit=1000,det=0 slow\n")
        check_at = self.next_time_limit_check()
        time.sleep(max(0.0, check_at - 10 - time.time()))
        self.drp_cmd("submit", "--repo", repo, "--groups", "all=" + STAGES, "--time", "1",
                     "--signal-seconds", "59", "--max-requeues", "2",
                     "--env", "DRP_JOBS_INJECT_FAULTS=" + faults)
        job = self.job_ids(repo)[0]
        log(f"limit: job {job} submitted {check_at - time.time():.1f} s before slurmctld's next "
            "time-limit check")
        logfile = None
        while True:  # until the first attempt has requeued itself
            logs = [os.path.join(d, f) for d, _, fs in os.walk(os.path.join(repo, "slurm"))
                    for f in fs if f.endswith(".out")]
            text = open(logs[0]).read() if logs else ""
            if "interrupted; requeueing" in text:
                logfile = logs[0]
                break
            st = self.states([job]).get(job, ("?", ""))[0]
            # SIGNALING: slurmctld is delivering a signal to the job — the warning itself, caught
            # before the batch shell has written its requeue line.
            check(st in ("PENDING", "RUNNING", "SIGNALING", "COMPLETING", "?"),
                  f"limit: job {job} ended {st} before the warning:\n{text}")
            remaining()
            time.sleep(0.5)
        # Give the next attempt a sensible limit, as an operator would after seeing the job
        # interrupted (the requeued job waits cred_expire before it may start).
        self.slurm("scontrol", "update", f"JobId={job}", "TimeLimit=10")
        log("limit: first attempt interrupted and requeued; next attempt's limit set to 10 min")
        st = self.wait_idle(repo, "limit")
        check(st[job][0] == "COMPLETED", f"limit: job {job} ended {st[job]}")
        runs = sorted(((self.slurm_job_of(s)[1], s, evs) for s, evs in self.journals(repo)),
                      key=lambda r: r[0])
        check(len(runs) >= 2, f"limit: {len(runs)} run(s) in the journals")
        # Under srun the warning reaches every process of the step, task children included:
        # the tasks in flight are recorded interrupted, never failed (a child killed by it).
        first_tasks = [e for e in runs[0][2] if e.get("event") == "task"]
        failed = [e for e in first_tasks if e.get("state") == "failed"]
        interrupted = sum(1 for e in first_tasks if e.get("state") == "interrupted")
        check(not failed and interrupted > 0,
              f"limit: first attempt: {interrupted} task(s) interrupted, failed: {failed[:3]}")
        first_end = [e for e in runs[0][2] if e.get("event") == "run_end"]
        check(first_end and first_end[0]["exit_code"] == 75
              and first_end[0]["status"] == "interrupted",
              f"limit: first attempt did not end interrupted/75: {first_end}")
        done_first = sum(1 for e in runs[0][2]
                         if e.get("event") == "task" and e.get("state") == "done")
        last_start, last_events = runs[-1][1], runs[-1][2]
        check(runs[-1][0] >= 1 and last_start["prior_done"] >= done_first > 0,
              f"limit: last attempt (restart {runs[-1][0]}) resumed with prior_done "
              f"{last_start['prior_done']}, first attempt did {done_first} tasks")
        last_end = [e for e in last_events if e.get("event") == "run_end"]
        check(last_end and last_end[0]["exit_code"] in (0, 1),  # 1: as the plain run's
              f"limit: last run ended {last_end}")
        log(f"limit: attempt 1 did {done_first} tasks, {interrupted} interrupted, and exited 75; attempt "
            f"{runs[-1][0] + 1} resumed with {last_start['prior_done']} done and completed")
        self.expect_status_complete(repo, "limit")
        self.expect_same_outputs(repo, "limit")


def shrink_skymap(repo):
    """Shrinks the tiny survey's work, keeping every stage: the simulated visits stay (24 detector
    images: characterization, astrometry and photometric calibration as simulated), but the
    skymap covers only the central ~24" of the field, cut into 2x2 patches of 60 px (12") with
    20 px borders, instead of 3x3 patches of 400 px. The per-patch stages (coadd, deblend,
    multifit) then process ~1/40 of the area: multifit, which dominates the full tiny release
    (~600 CPU s for ~1500 objects), costs a few seconds, and a Slurm array still has 4 patches
    to cut into chunks."""
    path = os.path.join(repo, "skymap.ini")
    with open(path) as f:
        keep = [l for l in f if l.split("=")[0].strip() in ("type", "ra", "dec", "pixel_scale")]
    with open(path, "w") as f:
        f.write("# tiny survey, skymap shrunk by slurm/tests/cluster/release_test.py\n")
        f.writelines(keep)
        f.write("radius = 0.003\npatch_inner = 60\npatch_border = 20\n")


def link_inputs(src, dst):
    """copytree's copy function: the raw exposures under input/ are hard-linked, not copied.

    No stage writes into an input file (outputs go to a temporary and are renamed), so a link
    is as good as a copy and saves the demo's 0.7 GB per repository on the CI machine's disk.
    Falls back to a copy where a link is impossible (another file system).
    """
    if f"{os.sep}input{os.sep}" in src:
        try:
            os.link(src, dst)
            return dst
        except OSError:
            pass
    return shutil.copy2(src, dst)


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    drp = os.path.abspath(sys.argv[1])
    mpiexec = sys.argv[2] if len(sys.argv) > 2 and sys.argv[2] else "mpirun"
    need = ["slurmctld", "slurmd", "munged", "mungekey", "sbatch", "squeue", "scontrol",
            "scancel", "srun", mpiexec]
    path = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
    missing = [p for p in need if not shutil.which(p, path=path)]
    if missing:
        print(f"SKIP: Slurm test needs {', '.join(missing)} (Debian: apt-get install slurm-wlm "
              "munge openmpi-bin; scripts/setup.sh installs them)")
        return SKIP
    os.environ["PATH"] = path
    base = os.environ.get("DRP_BUILD_DIR") or tempfile.gettempdir()
    work = tempfile.mkdtemp(prefix="slurm-e2e-", dir=base)
    test = Test(drp, mpiexec, work)

    def stop_cluster():
        r = subprocess.run(["bash", CLUSTER, "stop", test.cluster], capture_output=True,
                           text=True)
        if r.returncode != 0:
            print(r.stdout + r.stderr, file=sys.stderr)

    def on_signal(signum, _frame):
        raise Failure(f"killed by signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    code = 1
    try:
        run(["bash", CLUSTER, "start", test.cluster, "4"])
        log(f"cluster up in {test.cluster}")
        fixture = os.environ.get("DRP_DEMO_FIXTURE")
        if fixture:
            if not os.path.isdir(os.path.join(fixture, "repo", "release")):
                raise Failure(f"the demo_release fixture in {fixture} has no release")
            demo = os.path.join(work, "demo")
            shutil.copytree(os.path.join(fixture, "sim"), demo, symlinks=True,
                            copy_function=link_inputs)
            test.reference_from(os.path.join(fixture, "repo"))
            t = time.monotonic()
            test.chain(demo)
            log(f"demo: the demo release through Slurm took {time.monotonic() - t:.0f} s")
            shutil.rmtree(demo, ignore_errors=True)
        sim = os.path.join(work, "sim")
        run([mpiexec, "-np", "2", "--oversubscribe", "--bind-to", "none", drp, "simulate",
             "--preset", "tiny", "--out", sim], env=test.env)
        shrink_skymap(sim)
        repos = {}
        names = ("plain", "cancel", "limit") if fixture else ("plain", "chain", "cancel", "limit")
        for name in names:
            repos[name] = os.path.join(work, name)
            shutil.copytree(sim, repos[name], symlinks=True, copy_function=link_inputs)
        log("simulated the tiny survey")
        test.plain(repos["plain"])
        if not fixture:
            test.chain(repos["chain"])
        test.cancel(repos["cancel"])
        test.limit(repos["limit"])
        log("PASS")
        code = 0
    except Failure as e:
        print(f"FAIL: {e}", file=sys.stderr)
        for name in ("slurmctld.log", "slurmd.log"):
            p = os.path.join(test.cluster, "log", name)
            if os.path.exists(p):
                print(f"--- tail of {p}", file=sys.stderr)
                print("".join(open(p).readlines()[-15:]), file=sys.stderr)
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stop_cluster()
        log("cluster stopped")
        if code == 0 and not os.environ.get("DRP_KEEP_TEST_DIRS"):
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"test directory kept: {work}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
