//! What an output path may be (issue 21, items 1, 2 and 9): devices, FIFOs and standard output
//! are written into, never replaced; a symbolic link's target is written; a non-root user writes
//! what they may; an output that is an input is refused before running; two runs writing the same
//! outputs never mix them; an interrupt while a commit waits replaces nothing and says so.
//! Device nodes are made with `mknod` in a temporary directory, never the machine's /dev.

use crate::{Out, SHORT, has, perllm, perllm_cmd, root, s, testkit, tmp};
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Make a character device node `path` (major, minor, mode 0666); false, with a visible note,
/// where that is not allowed.
fn mknod(path: &Path, major: u32, minor: u32) -> bool {
    let ok = Command::new("mknod")
        .args(["-m", "666"])
        .arg(path)
        .args(["c", &major.to_string(), &minor.to_string()])
        .status()
        .is_ok_and(|s| s.success())
        && std::fs::OpenOptions::new().write(true).open(path).is_ok();
    if !ok {
        eprintln!(
            "SKIPPED: cannot make or open the device node {}",
            path.display()
        );
    }
    ok
}

fn is_char_device(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_char_device())
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

const COMPARE: [&str; 9] = crate::SMALL_COMPARE;

fn with(base: &[&str], extra: &[&str]) -> Out {
    let mut a = base.to_vec();
    a.extend(extra);
    perllm(&a)
}

#[test]
fn devices_fifos_stdout_and_links_are_written_into() {
    let dir = tmp();
    let null = dir.path().join("null");
    let full = dir.path().join("full");
    if !mknod(&null, 1, 3) || !mknod(&full, 1, 7) {
        return;
    }
    let run = ["run", "examples/paper.perllm", "--set", SHORT, "-q"];
    // `--decisions /dev/null` turned /dev/null into a regular file.
    with(
        &run,
        &[
            "--decisions",
            s(&null),
            "--requests",
            s(&dir.path().join("r.csv")),
        ],
    )
    .ok();
    assert!(is_char_device(&null));
    let out = with(&COMPARE, &["--out", s(&full)]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    out.stderr_has(&format!(
        "cannot write `{}`: no space left on device",
        s(&full)
    ));
    assert!(is_char_device(&full));
    assert_eq!(
        names(dir.path()),
        ["full", "null", "r.csv"],
        "no temporary left"
    );

    // `-` is standard output: the document alone, no table.
    let out = with(&COMPARE, &["--out", "-"]);
    let v: serde_json::Value = serde_json::from_str(out.ok()).expect("only JSON on stdout");
    assert_eq!(v["schema"], "perllm.results");
    let out = with(&run, &["--decisions", "-"]);
    let lines: Vec<&str> = out.ok().lines().collect();
    assert!(lines.len() > 10);
    for l in lines {
        serde_json::from_str::<serde_json::Value>(l).expect("only JSON lines on stdout");
    }
    let out = with(&run, &["--out", "-"]);
    assert_eq!(out.code, 2);
    out.stderr_has("`--out` of `run` is a directory");

    // A FIFO: a reader gets the CSV, the FIFO stays.
    let fifo = dir.path().join("fifo");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let reader = {
        let f = fifo.clone();
        std::thread::spawn(move || std::fs::read_to_string(f).unwrap())
    };
    with(&COMPARE, &["--csv", s(&fifo)]).ok();
    let csv = reader.join().unwrap();
    assert!(csv.starts_with("run,"), "{csv}");
    assert!(
        std::fs::symlink_metadata(&fifo)
            .unwrap()
            .file_type()
            .is_fifo()
    );

    // `/dev/stdout` is a link to the process's descriptor 1 (here a pipe): made in the
    // temporary directory (`stdout` -> `/proc/self/fd/1`), never the machine's own `/dev`. The
    // document goes down the pipe; the link stays a link.
    if Path::new("/proc/self/fd/1").exists() {
        let stdout = dir.path().join("stdout");
        std::os::unix::fs::symlink("/proc/self/fd/1", &stdout).unwrap();
        let out = with(&COMPARE, &["--out", s(&stdout)]);
        let v: serde_json::Value = serde_json::from_str(out.ok()).expect("JSON on stdout");
        assert_eq!(v["schema"], "perllm.results");
        assert!(
            std::fs::symlink_metadata(&stdout)
                .unwrap()
                .file_type()
                .is_symlink()
        );
    }

    // A symbolic link to a regular file: the target is replaced, the link stays.
    let target = dir.path().join("target.json");
    std::fs::write(&target, "old").unwrap();
    let link = dir.path().join("link.json");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    with(&COMPARE, &["--out", s(&link)]).ok();
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert!(
        std::fs::read_to_string(&target)
            .unwrap()
            .contains("perllm.results")
    );
}

/// As a user without privileges (`setpriv` to nobody when the tests run as root): a device node
/// anyone may write, and a file anyone may write in a directory only root may write, are written
/// (before: "permission denied", since the temporary file could not be made beside them).
#[test]
fn a_non_root_user_writes_writable_paths() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let dir = tmp();
    let root_only = dir.path().join("root-only");
    std::fs::create_dir(&root_only).unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&root_only, std::fs::Permissions::from_mode(0o755)).unwrap();
    let null = root_only.join("null");
    let shared = root_only.join("shared.json");
    std::fs::write(&shared, "old").unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o666)).unwrap();
    let as_root = std::fs::metadata(dir.path()).unwrap().uid() == 0;
    let mut cmd = if as_root {
        let ok = Command::new("setpriv")
            .args([
                "--reuid",
                "65534",
                "--regid",
                "65534",
                "--clear-groups",
                "true",
            ])
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!("SKIPPED: setpriv cannot drop privileges here");
            return;
        }
        let mut c = Command::new("setpriv");
        c.args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
            .arg(env!("CARGO_BIN_EXE_perllm"));
        c
    } else {
        Command::new(env!("CARGO_BIN_EXE_perllm"))
    };
    if !mknod(&null, 1, 3) {
        return;
    }
    let ino = std::fs::metadata(&shared).unwrap().ino();
    let o = cmd
        .args(COMPARE)
        .args(["--out", s(&shared), "--csv", s(&null)])
        .current_dir(root())
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    assert!(is_char_device(&null));
    let text = std::fs::read_to_string(&shared).unwrap();
    has(&text, "perllm.results");
    assert_eq!(
        std::fs::metadata(&shared).unwrap().ino(),
        ino,
        "written in place"
    );
    assert_eq!(names(&root_only), ["null", "shared.json"]);
}

/// An output that is one of the inputs is refused before running (exit 2) and the input is
/// unchanged: by its path, another name for it, or a hard link; scenario (language and JSON),
/// trace, series file, cost-model table, plugin library, merge part, plotted results.
#[test]
fn an_output_that_is_an_input_is_refused() {
    let dir = tmp();
    let d = dir.path();
    let sc = d.join("s.perllm");
    std::fs::copy(root().join("examples/paper.perllm"), &sc).unwrap();
    let json = d.join("s.json");
    std::fs::copy(
        root().join("perllm-cli/tests/fixtures/paper-30s.json"),
        &json,
    )
    .unwrap();
    std::fs::create_dir(d.join("traces")).unwrap();
    let trace = d.join("traces/azure-llm-2023-conv-10min.csv");
    std::fs::copy(
        root().join("examples/traces/azure-llm-2023-conv-10min.csv"),
        &trace,
    )
    .unwrap();
    let azure = d.join("azure.perllm");
    std::fs::copy(root().join("examples/azure-trace.perllm"), &azure).unwrap();
    let kit = d.join("kit.so");
    std::fs::copy(testkit(), &kit).unwrap();
    let hard = d.join("hard.json");
    std::fs::hard_link(&sc, &hard).unwrap();
    let mut parts = Vec::new();
    for k in 1..=2 {
        let p = d.join(format!("p{k}.json"));
        perllm_cmd(&format!(
            "compare {} --set {SHORT} --policies least-loaded,perllm --seeds 1 --shard {k}/2 \
             --out {} -q",
            s(&sc),
            s(&p)
        ))
        .ok();
        parts.push(p);
    }
    let grid = |file: &PathBuf| {
        // (The JSON scenario lasts 30 s already.)
        let short = if file.extension().is_some_and(|e| e == "json") {
            "seed=7"
        } else {
            SHORT
        };
        vec![
            "compare".to_string(),
            s(file).to_string(),
            "--set".into(),
            short.into(),
            "--policies".into(),
            "least-loaded".into(),
            "--seeds".into(),
            "1".into(),
            "-q".into(),
        ]
    };
    let plus = |mut a: Vec<String>, extra: &[&str]| {
        a.extend(extra.iter().map(|x| x.to_string()));
        a
    };
    let dotted = d.join("traces/../s.perllm");
    let series = d.join("lan.csv");
    std::fs::write(&series, "time_s,factor\n0,1\n10,0.5\n").unwrap();
    let with_series = d.join("series.perllm");
    let text = std::fs::read_to_string(&sc).unwrap().replace(
        "link edge-lan { bandwidth = 100 Mbps +/- 20%,",
        "link edge-lan { bandwidth = 100 Mbps, fluctuation = series(\"lan.csv\"),",
    );
    std::fs::write(&with_series, text).unwrap();
    let table = d.join("table.csv");
    std::fs::write(
        &table,
        "model,hardware,batch,prefill_tokens_per_s,decode_tokens_per_s\n\
         llama2-7b,xeon-4214r,1,60,9\nllama2-7b,a100,1,9000,90\nllama-33b,a100,1,2500,30\n",
    )
    .unwrap();
    let cfg = format!("{{\"path\": \"{}\"}}", s(&table));
    let run_azure = |extra: &[&str]| {
        let mut a: Vec<String> = ["run", s(&azure), "--set", "scenario.duration=5s", "-q"]
            .iter()
            .map(|x| x.to_string())
            .collect();
        a.extend(extra.iter().map(|x| x.to_string()));
        a
    };
    let cases: Vec<(Vec<String>, &Path, &str)> = vec![
        (plus(grid(&sc), &["--out", s(&sc)]), &sc, "is the scenario"),
        (
            plus(grid(&sc), &["--csv", s(&dotted)]),
            &sc,
            "is the scenario",
        ),
        (
            plus(grid(&sc), &["--out", s(&hard)]),
            &sc,
            "is the scenario",
        ),
        (
            plus(grid(&json), &["--out", s(&json)]),
            &json,
            "is the scenario",
        ),
        (
            run_azure(&["--requests", s(&trace)]),
            &trace,
            "is the trace",
        ),
        (
            plus(grid(&with_series), &["--csv", s(&series)]),
            &series,
            "is a series file",
        ),
        (
            plus(
                grid(&sc),
                &[
                    "--cost-model",
                    "profile-table",
                    "--cost-config",
                    &cfg,
                    "--out",
                    s(&table),
                ],
            ),
            &table,
            "is the cost model's table",
        ),
        (
            plus(grid(&sc), &["--plugin", s(&kit), "--csv", s(&kit)]),
            &kit,
            "is a plugin library",
        ),
        (
            vec![
                "merge".into(),
                s(&parts[0]).into(),
                s(&parts[1]).into(),
                "--out".into(),
                s(&parts[0]).into(),
            ],
            &parts[0],
            "is a merge part",
        ),
    ];
    for (args, input, needle) in cases {
        let before = std::fs::read(input).unwrap();
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = perllm(&a);
        assert_eq!(out.code, 2, "{a:?}: {}", out.stderr);
        assert!(out.stderr.contains(needle), "{a:?}: {}", out.stderr);
        assert!(out.stderr.contains("refusing to overwrite an input"));
        assert_eq!(
            std::fs::read(input).unwrap(),
            before,
            "{a:?} changed its input"
        );
    }
    let plots = d.join("plots");
    std::fs::create_dir(&plots).unwrap();
    let page = plots.join("index.html");
    std::fs::copy(&parts[1], &page).unwrap();
    let out = perllm(&["plot", s(&page), "--out", s(&plots)]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    out.stderr_has("is the results file");
    // Nothing was left behind by the refused commands.
    assert!(
        names(d).iter().all(|n| !n.ends_with(".tmp")),
        "{:?}",
        names(d)
    );
}

/// Two runs writing the same output directory at once: every round ends with the four files of
/// one of them (each run's requests and decisions are compared with a reference run of its seed).
#[test]
fn concurrent_runs_never_mix_their_outputs() {
    let dir = tmp();
    let args = |out: &Path, seed: &str| -> Vec<String> {
        [
            "run",
            "examples/paper.perllm",
            "--set",
            SHORT,
            "--seed",
            seed,
            "--out",
            s(out),
            "-q",
        ]
        .iter()
        .map(|x| x.to_string())
        .collect()
    };
    let spawn = |a: Vec<String>| {
        Command::new(env!("CARGO_BIN_EXE_perllm"))
            .args(a)
            .current_dir(root())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let files = [
        "report.json",
        "results.json",
        "requests.csv",
        "decisions.jsonl",
    ];
    let read = |d: &Path| -> Vec<Vec<u8>> {
        files
            .iter()
            .map(|f| std::fs::read(d.join(f)).unwrap())
            .collect()
    };
    let mut reference = Vec::new();
    for seed in ["1", "2"] {
        let d = dir.path().join(format!("ref{seed}"));
        let a = args(&d, seed);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        perllm(&a).ok();
        reference.push(read(&d));
    }
    let seed_of = |bytes: &[u8]| -> u64 {
        let v: serde_json::Value = serde_json::from_slice(bytes).unwrap();
        v["seed"].as_u64().or(v["seeds"][0].as_u64()).unwrap()
    };
    let shared = dir.path().join("shared");
    for round in 0..6 {
        let children = [spawn(args(&shared, "1")), spawn(args(&shared, "2"))];
        for c in children {
            let o = c.wait_with_output().unwrap();
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        }
        let got = read(&shared);
        let seed = seed_of(&got[0]);
        assert_eq!(
            seed_of(&got[1]),
            seed,
            "round {round}: report and results differ"
        );
        let r = &reference[seed as usize - 1];
        assert!(
            got[2] == r[2] && got[3] == r[3],
            "round {round}: mixed outputs"
        );
        let mut want = files.to_vec();
        want.sort_unstable();
        assert_eq!(
            names(&shared),
            want,
            "round {round}: a temporary file was left"
        );
    }
}

/// An interrupt while the commit waits for the directory lock (held here, as a reader wanting a
/// consistent set would) replaces nothing and says so; with the lock released, the next run
/// commits.
#[test]
fn an_interrupt_while_the_commit_waits_replaces_nothing() {
    use std::time::{Duration, Instant};
    let dir = tmp();
    let out_dir = dir.path().join("run");
    let args = [
        "run",
        "examples/paper.perllm",
        "--set",
        SHORT,
        "--out",
        s(&out_dir),
        "-q",
    ];
    perllm(&args).ok();
    let before: Vec<(String, Vec<u8>)> = names(&out_dir)
        .into_iter()
        .map(|n| (n.clone(), std::fs::read(out_dir.join(&n)).unwrap()))
        .collect();
    let lock = std::fs::File::open(&out_dir).unwrap();
    lock.lock_shared().unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_perllm"))
        .args(args)
        .current_dir(root())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The report is written into its temporary file just before the commit.
    let start = Instant::now();
    loop {
        let staged = names(&out_dir).into_iter().any(|n| {
            n.starts_with(".report.json.")
                && std::fs::metadata(out_dir.join(&n)).is_ok_and(|m| m.len() > 0)
        });
        if staged {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the run never staged its report"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    crate::signal(&child, "INT");
    let o = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(130), "{stderr}");
    has(&stderr, "interrupted: no output file was replaced");
    let after: Vec<(String, Vec<u8>)> = names(&out_dir)
        .into_iter()
        .map(|n| (n.clone(), std::fs::read(out_dir.join(&n)).unwrap()))
        .collect();
    assert_eq!(after, before);
    drop(lock);
}
