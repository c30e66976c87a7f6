//! A sharded sweep through a real batch system: the test starts its own one-node Slurm cluster
//! (munged, slurmctld and slurmd from Debian's `slurm-wlm` and `munge`, with its own key, socket,
//! state directories, ports and `SLURM_CONF`), runs `perllm sweep --shard` as a job array whose
//! tasks work in different directories, merges the parts in a job that depends on the array
//! (`--dependency=afterok`, as docs/scale-out.md shows), checks that the merged files are
//! byte-identical to one machine's run, and stops every daemon it started.
//!
//! Needs the Slurm and munge programs: without them when the tests are built, the test is compiled
//! as ignored and `cargo test` says so (build.rs); `.ci/run` installs Debian's packages and sets
//! `PERLLM_REQUIRE_SLURM=1`, which makes it run (and fail if they are missing).

use crate::{perllm, root, s, tmp};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The whole sweep (array and merge) must finish within this; then the test fails with the logs.
const JOBS_DEADLINE: Duration = Duration::from_secs(180);
/// The daemons must be up within this.
const START_DEADLINE: Duration = Duration::from_secs(60);
/// Every client command (sbatch, squeue, ...) is killed after this many seconds.
const CLIENT_TIMEOUT: &str = "60";

/// The sweep of docs/scale-out.md in small: 2 points x 2 policies x 2 seeds = 8 runs.
const SWEEP: &str = "--set scenario.duration=30s --set workload.arrivals.rate=2/s,5/s \
     --policies perllm,least-loaded --seeds 1..2";
const SHARDS: usize = 3;

/// `name` on `PATH`, or in the sbin directories a non-root `PATH` may lack.
fn program(name: &str) -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.extend(["/usr/sbin", "/sbin"].map(PathBuf::from));
    dirs.iter()
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "`{name}` is not installed (PERLLM_REQUIRE_SLURM is set, or the Slurm programs \
                 were found when this test was built): install Debian's `slurm-wlm` and `munge` \
                 (as .ci/run does)"
            )
        })
}

/// A port nobody listens on right now (the daemons bind it a moment later).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

/// The last `n` lines of a file, for failure messages.
fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| format!("({e})"));
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// This machine's short host name (slurmd's node name).
fn short_hostname() -> String {
    let o = Command::new("hostname")
        .arg("-s")
        .output()
        .expect("hostname runs");
    let name = String::from_utf8(o.stdout).unwrap().trim().to_string();
    assert!(o.status.success() && !name.is_empty(), "no host name");
    name
}

/// A one-node Slurm cluster private to this test; dropping it stops every daemon it started.
struct Cluster {
    dir: PathBuf,
    conf: PathBuf,
    /// (name, process), in start order.
    daemons: Vec<(&'static str, Child)>,
}

impl Cluster {
    /// Writes the munge key and slurm.conf under `dir`, starts munged, slurmctld and slurmd in
    /// the foreground as children of the test, and waits until the node is idle.
    fn start(dir: &Path) -> Cluster {
        let sub = |name: &str, mode: u32| {
            let p = dir.join(name);
            std::fs::create_dir_all(&p).unwrap();
            set_mode(&p, mode);
            p
        };
        // munged requires a private key directory and a socket directory everyone can enter.
        set_mode(dir, 0o755);
        let key_dir = sub("munge-key", 0o700);
        let run = sub("run", 0o755);
        let log = sub("log", 0o755);
        let state = sub("state", 0o700);
        let spool = sub("spool", 0o755);
        let key = key_dir.join("munge.key");
        let mut bytes = vec![0u8; 1024];
        std::fs::File::open("/dev/urandom")
            .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
            .expect("random bytes for the munge key");
        std::fs::write(&key, &bytes).unwrap();
        set_mode(&key, 0o600);
        let munge_socket = run.join("munge.sock");

        let host = short_hostname();
        let user = String::from_utf8(
            Command::new("id")
                .arg("-un")
                .output()
                .expect("id runs")
                .stdout,
        )
        .unwrap()
        .trim()
        .to_string();
        // The node as slurmd sees the hardware (`slurmd -C`), reachable on loopback.
        let probe = Command::new(program("slurmd"))
            .arg("-C")
            .output()
            .expect("slurmd -C runs");
        let node_line = String::from_utf8_lossy(&probe.stdout)
            .lines()
            .find(|l| l.starts_with("NodeName="))
            .unwrap_or_else(|| panic!("`slurmd -C` printed no node: {probe:?}"))
            .replace(&format!("NodeName={host} "), "");
        let conf = dir.join("slurm.conf");
        let d = |p: &Path| p.display().to_string();
        let text = format!(
            "# Written by perllm-cli/tests/it/slurm.rs: a one-node cluster private to one test.\n\
             ClusterName=perllmtest\n\
             SlurmctldHost={host}(127.0.0.1)\n\
             SlurmctldPort={ctld_port}\n\
             SlurmdPort={slurmd_port}\n\
             SlurmUser={user}\n\
             SlurmdUser={user}\n\
             AuthType=auth/munge\n\
             CredType=cred/munge\n\
             AuthInfo=socket={socket}\n\
             StateSaveLocation={state}\n\
             SlurmdSpoolDir={spool}\n\
             SlurmctldPidFile={run}/slurmctld.pid\n\
             SlurmdPidFile={run}/slurmd.pid\n\
             SlurmctldLogFile={log}/slurmctld.log\n\
             SlurmdLogFile={log}/slurmd.log\n\
             ProctrackType=proctrack/linuxproc\n\
             TaskPlugin=task/none\n\
             JobAcctGatherType=jobacct_gather/none\n\
             AccountingStorageType=accounting_storage/none\n\
             JobCompType=jobcomp/none\n\
             MpiDefault=none\n\
             SelectType=select/cons_tres\n\
             SelectTypeParameters=CR_Core\n\
             SchedulerParameters=kill_invalid_depend\n\
             ReturnToService=2\n\
             MinJobAge=600\n\
             NodeName={host} NodeAddr=127.0.0.1 {node_line} State=UNKNOWN\n\
             PartitionName=perllm Nodes={host} Default=YES MaxTime=10 State=UP\n",
            ctld_port = free_port(),
            slurmd_port = free_port(),
            socket = d(&munge_socket),
            state = d(&state),
            spool = d(&spool),
            run = d(&run),
            log = d(&log),
        );
        std::fs::write(&conf, text).unwrap();

        let mut cluster = Cluster {
            dir: dir.to_path_buf(),
            conf,
            daemons: Vec::new(),
        };
        cluster.spawn(
            "munged",
            Command::new(program("munged"))
                .arg("--foreground")
                .arg(format!("--socket={}", munge_socket.display()))
                .arg(format!("--key-file={}", key.display()))
                .arg(format!("--pid-file={}", run.join("munged.pid").display()))
                .arg(format!("--log-file={}", log.join("munged.log").display()))
                .arg(format!("--seed-file={}", key_dir.join("seed").display())),
        );
        cluster.wait_for("munged to answer", |_| {
            Command::new(program("munge"))
                .arg("--no-input")
                .arg(format!("--socket={}", munge_socket.display()))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        });
        // -D: foreground; -i: ignore any saved state (there is none).
        let mut ctld = Command::new(program("slurmctld"));
        ctld.args(["-D", "-i"]);
        cluster.with_env(&mut ctld);
        cluster.spawn("slurmctld", &mut ctld);
        let mut slurmd = Command::new(program("slurmd"));
        slurmd.args(["-D", "-N", &host]);
        cluster.with_env(&mut slurmd);
        cluster.spawn("slurmd", &mut slurmd);
        cluster.wait_for("the node to be idle", |c| {
            let o = c.client("sinfo", &["-h", "-N", "-o", "%T"]);
            o.status.success() && String::from_utf8_lossy(&o.stdout).trim() == "idle"
        });
        cluster
    }

    /// Start a daemon in the foreground, its output in `log/<name>.out`.
    fn spawn(&mut self, name: &'static str, cmd: &mut Command) {
        let out = std::fs::File::create(self.dir.join("log").join(format!("{name}.out"))).unwrap();
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("{name} does not start: {e}"));
        self.daemons.push((name, child));
    }

    /// Slurm's environment: this cluster's configuration and none of an enclosing job's variables.
    fn with_env<'a>(&self, cmd: &'a mut Command) -> &'a mut Command {
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy();
            if ["SLURM_", "SBATCH_", "SQUEUE_", "SINFO_", "SCONTROL_"]
                .iter()
                .any(|p| k.starts_with(p))
            {
                cmd.env_remove(&*k);
            }
        }
        cmd.env("SLURM_CONF", &self.conf)
    }

    /// Run a Slurm client program in the cluster's directory, bounded in time.
    fn client(&self, name: &str, args: &[&str]) -> Output {
        let mut cmd = Command::new("timeout");
        cmd.arg(CLIENT_TIMEOUT)
            .arg(program(name))
            .args(args)
            .current_dir(&self.dir);
        self.with_env(&mut cmd)
            .output()
            .unwrap_or_else(|e| panic!("{name} does not run: {e}"))
    }

    /// [`Self::client`], which must succeed; its standard output.
    fn ok(&self, name: &str, args: &[&str]) -> String {
        let o = self.client(name, args);
        assert!(
            o.status.success(),
            "{name} {args:?} failed ({}): {}\n{}",
            o.status,
            String::from_utf8_lossy(&o.stderr),
            self.logs()
        );
        String::from_utf8(o.stdout).unwrap()
    }

    /// Poll `ready` until it holds; fail with the daemons' logs if one exits or after
    /// [`START_DEADLINE`].
    fn wait_for(&mut self, what: &str, ready: impl Fn(&Cluster) -> bool) {
        let start = Instant::now();
        while !ready(self) {
            let exited: Vec<String> = self
                .daemons
                .iter_mut()
                .filter_map(|(name, child)| {
                    let status = child.try_wait().ok().flatten()?;
                    Some(format!("{name} exited ({status})"))
                })
                .collect();
            assert!(
                exited.is_empty(),
                "{} waiting for {what}\n{}",
                exited.join(", "),
                self.logs()
            );
            assert!(
                start.elapsed() < START_DEADLINE,
                "timed out waiting for {what}\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The end of every daemon's log, for failure messages.
    fn logs(&self) -> String {
        let log = self.dir.join("log");
        [
            "munged.log",
            "slurmctld.log",
            "slurmd.log",
            "slurmctld.out",
            "slurmd.out",
        ]
        .iter()
        .map(|f| format!("--- {f}:\n{}", tail(&log.join(f), 15)))
        .collect::<Vec<_>>()
        .join("\n")
    }
}

impl Drop for Cluster {
    /// Cancel what is left, ask each daemon to stop (SIGTERM), newest first; kill what is still
    /// running after 10 s. Every daemon is a child of the test, so none outlives it.
    fn drop(&mut self) {
        if self.daemons.iter().any(|(n, _)| *n == "slurmctld") {
            let jobs = self.client("squeue", &["-h", "-o", "%A"]);
            for id in String::from_utf8_lossy(&jobs.stdout).split_whitespace() {
                self.client("scancel", &[id]);
            }
        }
        while let Some((_, mut child)) = self.daemons.pop() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let start = Instant::now();
            while child.try_wait().ok().flatten().is_none() {
                if start.elapsed() > Duration::from_secs(10) {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

fn set_mode(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// `key=value` fields of one line of `scontrol show job -o`.
fn field<'a>(line: &'a str, key: &str) -> &'a str {
    line.split_whitespace()
        .find_map(|f| f.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
        .unwrap_or_else(|| panic!("no {key} in `{line}`"))
}

#[test]
#[cfg_attr(
    not(perllm_slurm),
    ignore = "no Slurm (slurmctld, slurmd, sbatch) or munged when the tests were built: \
              `apt-get install slurm-wlm munge` (as .ci/run does)"
)]
fn sharded_sweep_through_slurm_merges_to_the_single_machine_result() {
    let tmp = tmp();
    let dir = tmp.path();
    let cluster = Cluster::start(dir);

    // The reference: the same sweep on one machine, from the workspace root.
    let full = dir.join("full.json");
    let full_csv = dir.join("full.csv");
    let mut args = vec!["sweep", "examples/paper.perllm"];
    args.extend(SWEEP.split_whitespace());
    args.extend(["--out", s(&full), "--csv", s(&full_csv), "-q"]);
    perllm(&args).ok();

    // Each array task works in its own directory with its own copy of the scenario; the parts
    // go to a shared directory.
    for k in 1..=SHARDS {
        let wd = dir.join(format!("wd-{k}"));
        std::fs::create_dir_all(&wd).unwrap();
        std::fs::copy(
            root().join("examples/paper.perllm"),
            wd.join("paper.perllm"),
        )
        .unwrap();
    }
    std::fs::create_dir_all(dir.join("parts")).unwrap();
    std::fs::create_dir_all(dir.join("logs")).unwrap();
    let bin = env!("CARGO_BIN_EXE_perllm");
    let script = format!(
        "#!/bin/bash\n\
         #SBATCH --job-name=perllm-sweep\n\
         #SBATCH --array=1-{SHARDS}\n\
         #SBATCH --cpus-per-task=1\n\
         #SBATCH --time=5\n\
         #SBATCH --output=logs/%A_%a.out\n\
         \n\
         set -euo pipefail\n\
         cd \"wd-$SLURM_ARRAY_TASK_ID\"\n\
         echo \"task $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT on $(hostname -s) in $PWD\"\n\
         '{bin}' sweep paper.perllm {SWEEP} \\\n    \
             --jobs \"$SLURM_CPUS_PER_TASK\" \\\n    \
             --shard \"$SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT\" \\\n    \
             --out \"../parts/part-$SLURM_ARRAY_TASK_ID.json\" -q\n"
    );
    std::fs::write(dir.join("sweep.sbatch"), script).unwrap();

    let array = cluster.ok("sbatch", &["--parsable", "sweep.sbatch"]);
    let array = array.trim().split(';').next().unwrap().to_string();
    let merge_cmd = format!("'{bin}' merge parts/part-*.json --out results.json --csv results.csv");
    let merge = cluster.ok(
        "sbatch",
        &[
            "--parsable",
            &format!("--dependency=afterok:{array}"),
            "--job-name=perllm-merge",
            "--output=logs/merge.out",
            "--time=5",
            "--wrap",
            &merge_cmd,
        ],
    );
    let merge = merge.trim().split(';').next().unwrap().to_string();

    // Wait until neither job is queued or running.
    let start = Instant::now();
    loop {
        let q = cluster.ok(
            "squeue",
            &["-h", "-j", &format!("{array},{merge}"), "-o", "%i %T %r"],
        );
        // A failed task leaves the merge pending forever: stop waiting and report below.
        if q.trim().is_empty() || q.contains("DependencyNeverSatisfied") {
            break;
        }
        assert!(
            start.elapsed() < JOBS_DEADLINE,
            "the jobs did not finish in {JOBS_DEADLINE:?}:\n{q}\n{}",
            cluster.logs()
        );
        std::thread::sleep(Duration::from_millis(500));
    }

    let task_logs = || {
        (1..=SHARDS)
            .map(|k| {
                let p = dir.join(format!("logs/{array}_{k}.out"));
                format!("--- {}:\n{}", p.display(), tail(&p, 20))
            })
            .collect::<Vec<_>>()
            .join("\n")
            + &format!("\n--- merge:\n{}", tail(&dir.join("logs/merge.out"), 20))
    };
    // Every array task and the merge completed with exit code 0; the merge started after the
    // last task ended (afterok).
    let tasks = cluster.ok("scontrol", &["show", "job", "-o", &array]);
    let tasks: Vec<&str> = tasks.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(tasks.len(), SHARDS, "{tasks:#?}");
    let merged_job = cluster.ok("scontrol", &["show", "job", "-o", &merge]);
    for line in tasks.iter().chain([&merged_job.trim()]) {
        assert_eq!(
            (field(line, "JobState"), field(line, "ExitCode")),
            ("COMPLETED", "0:0"),
            "{line}\n{}\n{}",
            task_logs(),
            cluster.logs()
        );
    }
    let last_end = tasks.iter().map(|l| field(l, "EndTime")).max().unwrap();
    assert!(
        field(&merged_job, "StartTime") >= last_end,
        "the merge started before the array ended:\n{merged_job}\n{tasks:#?}"
    );
    // Each part was written from a different working directory.
    for k in 1..=SHARDS {
        let log = std::fs::read_to_string(dir.join(format!("logs/{array}_{k}.out"))).unwrap();
        let wd = dir.join(format!("wd-{k}"));
        assert!(
            log.contains(&format!(
                "task {k}/{SHARDS} on {} in {}",
                short_hostname(),
                wd.display()
            )),
            "{log}"
        );
    }
    let merge_log = std::fs::read_to_string(dir.join("logs/merge.out")).unwrap();
    assert!(
        merge_log.contains(&format!("merged {SHARDS} parts (8 runs)")),
        "{merge_log}"
    );

    // Byte-identical to the single machine's results.
    assert!(
        std::fs::read(&full).unwrap() == std::fs::read(dir.join("results.json")).unwrap(),
        "the merged results.json differs from the single-machine run"
    );
    assert!(
        std::fs::read(&full_csv).unwrap() == std::fs::read(dir.join("results.csv")).unwrap(),
        "the merged results.csv differs from the single-machine run"
    );

    // Stop the daemons; none of them is left.
    let pids: Vec<u32> = cluster.daemons.iter().map(|(_, c)| c.id()).collect();
    drop(cluster);
    for pid in pids {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "daemon {pid} is still running"
        );
    }
}
