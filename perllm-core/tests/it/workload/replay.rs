//! Replay options: assignment rules and the time mapping (order, window, speed-up, target rate,
//! repeat, duration, max_requests).

use super::*;

// Assignment rules
// ------------------------------------------------------------------------------------------------

#[test]
fn by_size_assignment() {
    let mut sp = spec(TraceFormat::Csv);
    sp.slo_assign = Assign::BySize {
        rules: vec![
            (100, "interactive".into()),
            (1000, "standard".into()),
            (5000, "batch".into()),
        ],
    };
    sp.model_assign = Assign::BySize {
        rules: vec![(500, "llama2-7b".into()), (600, "llama-33b".into())],
    };
    let text = "arrival_s,prompt_tokens,output_tokens\n0,50,50\n1,51,50\n2,900,100\n3,9000,1\n";
    let v = replay(&sp, text).unwrap();
    let w = world(None);
    let s = |n| w.slo_id(n).unwrap();
    let m = |n| w.model_id(n).unwrap();
    assert_eq!(
        v.iter().map(|r| (r.slo, r.model)).collect::<Vec<_>>(),
        vec![
            (s("interactive"), m("llama2-7b")),
            (s("standard"), m("llama2-7b")),
            (s("standard"), m("llama-33b")),
            (s("batch"), m("llama-33b"))
        ]
    );

    let mut bad = spec(TraceFormat::Csv);
    bad.slo_assign = Assign::BySize {
        rules: vec![(100, "gold".into())],
    };
    let e = open_err(&bad, "f", text);
    assert!(e.message.contains("unknown slo `gold`"), "{e}");
    bad.slo_assign = Assign::BySize {
        rules: vec![(100, "batch".into()), (100, "standard".into())],
    };
    let e = open_err(&bad, "f", text);
    assert!(e.message.contains("increasing"), "{e}");
}

#[test]
fn by_share_assignment_follows_shares() {
    // 20,000 rows, SLO shares 50/35/15 and model shares 70/30.
    let mut text = String::from("arrival_s,prompt_tokens,output_tokens\n");
    for i in 0..20_000 {
        text.push_str(&format!("{},10,10\n", i as f64 * 0.01));
    }
    let v = replay(&spec(TraceFormat::Csv), &text).unwrap();
    let w = world(None);
    let n = v.len() as f64;
    for (i, slo) in w.slos.iter().enumerate() {
        let f = v.iter().filter(|r| r.slo as usize == i).count() as f64 / n;
        assert!((f - slo.share).abs() < 0.015, "slo {} share {f}", slo.name);
    }
    let f = v
        .iter()
        .filter(|r| r.model == w.model_id("llama2-7b").unwrap())
        .count() as f64
        / n;
    assert!((f - 0.7).abs() < 0.015, "model share {f}");
}

// ------------------------------------------------------------------------------------------------
// Time mapping: order, window, speed-up, target rate, repeat, duration, max_requests
// ------------------------------------------------------------------------------------------------

fn csv_times(times: &[f64]) -> String {
    let mut s = String::from("arrival_s,prompt_tokens,output_tokens\n");
    for (i, t) in times.iter().enumerate() {
        s.push_str(&format!("{t},{},1\n", i + 1));
    }
    s
}

#[test]
fn small_disorder_is_resorted_larger_is_an_error() {
    let v = replay(
        &spec(TraceFormat::Csv),
        &csv_times(&[10.0, 10.5, 10.2, 10.2, 12.0, 11.5]),
    )
    .unwrap();
    assert_eq!(
        arrivals(&v),
        vec![
            0,
            200_000_000,
            200_000_000,
            500_000_000,
            1_500_000_000,
            2_000_000_000
        ]
    );
    // Equal times keep file order (prompt tokens are the 1-based row index).
    assert_eq!(
        v.iter().map(|r| r.prompt_tokens).collect::<Vec<_>>(),
        vec![1, 3, 4, 2, 6, 5]
    );
    // The first row may be preceded by a later one within the tolerance: time 0 is the earliest.
    let v = replay(&spec(TraceFormat::Csv), &csv_times(&[10.0, 9.5, 11.0])).unwrap();
    assert_eq!(arrivals(&v), vec![0, 500_000_000, 1_500_000_000]);

    let tol = REORDER_TOLERANCE_NS as f64 / 1e9;
    let e = err_of(replay(
        &spec(TraceFormat::Csv),
        &csv_times(&[10.0, 12.0, 12.0 - tol - 0.5, 13.0]),
    ));
    assert_eq!(e.row, 4);
    assert!(
        e.message.contains("1.500 s earlier than a previous row"),
        "{e}"
    );
    let mut sp = spec(TraceFormat::Csv);
    sp.skip_bad_rows = true;
    let (v, skipped) = replay_opener(
        &world(None),
        &sp,
        &csv_times(&[10.0, 12.0, 12.0 - tol - 0.5, 13.0]),
    )
    .unwrap();
    assert_eq!(
        (arrivals(&v), skipped),
        (vec![0, 2 * SECOND, 3 * SECOND], 1)
    );
}

#[test]
fn window_and_speedup() {
    let text = csv_times(&[100.0, 101.0, 103.0, 106.0, 110.0, 115.0]);
    let mut sp = spec(TraceFormat::Csv);
    sp.window_ns = Some((2 * SECOND, 10 * SECOND));
    let v = replay(&sp, &text).unwrap();
    // Rows at offsets 3 and 6 s; the window start is time 0.
    assert_eq!(arrivals(&v), vec![SECOND, 4 * SECOND]);
    sp.speedup = 4.0;
    let v = replay(&sp, &text).unwrap();
    assert_eq!(arrivals(&v), vec![250_000_000, SECOND]);
    // Scenario::build rejects these too; the replayer checks them again for specs it is handed
    // directly (the world here is built from a valid spec).
    let valid = world(Some(spec(TraceFormat::Csv)));
    let direct = |sp: &TraceSpec| {
        TraceSource::new(sp, "fixture.txt", reader(&text), &valid).and_then(|mut s| drain(&mut s))
    };
    sp.speedup = 0.0;
    let e = err_of(direct(&sp));
    assert!(
        e.message.contains("speedup must be a positive number"),
        "{e}"
    );
    let mut bad = world(Some(spec(TraceFormat::Csv))).scenario;
    bad.workload.trace = Some(sp.clone());
    let errs = bad.build().unwrap_err();
    assert!(
        errs.iter().any(|e| e.path == "workload.trace.speedup"),
        "{errs:?}"
    );
    sp.speedup = 1.0;
    sp.window_ns = Some((5 * SECOND, 5 * SECOND));
    let e = err_of(direct(&sp));
    assert!(e.message.contains("window"), "{e}");
}

#[test]
fn repeat_plays_back_to_back() {
    // Offsets 0, 1, 3 s: the mean gap is 1.5 s, so a pass lasts 4.5 s.
    let text = csv_times(&[50.0, 51.0, 53.0]);
    let mut sp = spec(TraceFormat::Csv);
    sp.repeat = 3;
    let (v, _) = replay_opener(&world(None), &sp, &text).unwrap();
    let ms = |x: f64| (x * 1e9) as Nanos;
    assert_eq!(
        arrivals(&v),
        vec![
            0,
            ms(1.0),
            ms(3.0),
            ms(4.5),
            ms(5.5),
            ms(7.5),
            ms(9.0),
            ms(10.0),
            ms(12.0)
        ]
    );
    assert_eq!(
        v.iter().map(|r| r.id).collect::<Vec<_>>(),
        (0..9).collect::<Vec<u64>>()
    );
    // A single reader cannot repeat.
    replay_err(&sp, &text, None, "with_opener");
}

#[test]
fn repeat_counts_skipped_rows_once() {
    let text = "arrival_s,prompt_tokens,output_tokens\n0,1,1\nx,1,1\n1,1,1\n";
    let mut sp = spec(TraceFormat::Csv);
    sp.repeat = 4;
    sp.skip_bad_rows = true;
    let (v, skipped) = replay_opener(&world(None), &sp, text).unwrap();
    assert_eq!((v.len(), skipped), (8, 1));
}

#[test]
fn target_rate_rescales_time() {
    // 101 rows one second apart: 1 request/s. Target 4/s: four times faster.
    let times: Vec<f64> = (0..101).map(|i| i as f64).collect();
    let text = csv_times(&times);
    let mut sp = spec(TraceFormat::Csv);
    sp.target_rate = Some(4.0);
    sp.speedup = 100.0; // ignored when target_rate is set
    let opens = Cell::new(0);
    let w = world(None);
    let mut src = TraceSource::with_opener(
        &sp,
        "f",
        || {
            opens.set(opens.get() + 1);
            Ok(reader(&text))
        },
        &w,
    )
    .unwrap();
    assert!(
        (src.time_scale() - 4.0).abs() < 1e-12,
        "{}",
        src.time_scale()
    );
    let v = drain(&mut src).unwrap();
    assert_eq!(opens.get(), 2, "one pre-pass and one replay pass");
    assert_eq!(v.len(), 101);
    assert_eq!(v[100].arrival_ns, 25 * SECOND);
    let rate = (v.len() - 1) as f64 / (v[100].arrival_ns as f64 / 1e9);
    assert!((rate - 4.0).abs() < 1e-9);
    assert_eq!(src.first_pass().rows, 101);
}

#[test]
fn duration_and_max_requests_end_the_replay() {
    let times: Vec<f64> = (0..100).map(|i| i as f64).collect();
    let mut sp = spec(TraceFormat::Csv);
    sp.repeat = 5;
    let w = world_with(Some(sp.clone()), |s| s.duration_ns = 150 * SECOND);
    let (v, _) = replay_opener(&w, &sp, &csv_times(&times)).unwrap();
    // Pass period 100 s: arrivals 0..99 and 100..149.
    assert_eq!(v.len(), 150);
    assert!(v.iter().all(|r| r.arrival_ns < 150 * SECOND));
    let w = world_with(Some(sp.clone()), |s| s.workload.max_requests = Some(7));
    let (v, _) = replay_opener(&w, &sp, &csv_times(&times)).unwrap();
    assert_eq!(v.len(), 7);
}

#[test]
fn replay_is_deterministic_and_seeded() {
    let text = csv_times(&(0..200).map(|i| i as f64 * 0.1).collect::<Vec<_>>());
    let sp = spec(TraceFormat::Csv);
    let a = replay(&sp, &text).unwrap();
    let b = replay(&sp, &text).unwrap();
    assert_eq!(a, b);
    let w = world_with(Some(sp.clone()), |s| s.seed = 99);
    let c = drain(&mut TraceSource::new(&sp, "f", reader(&text), &w).unwrap()).unwrap();
    assert_eq!(arrivals(&a), arrivals(&c));
    assert_ne!(
        a.iter().map(|r| (r.slo, r.input_bytes)).collect::<Vec<_>>(),
        c.iter().map(|r| (r.slo, r.input_bytes)).collect::<Vec<_>>()
    );
}

#[test]
fn io_errors_are_reported() {
    struct Broken;
    impl std::io::Read for Broken {
        fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
            Err(std::io::Error::other("disk on fire"))
        }
    }
    let sp = spec(TraceFormat::Mooncake);
    let mut src = TraceSource::new(
        &sp,
        "m.jsonl",
        Box::new(std::io::BufReader::new(Broken)),
        &world(None),
    )
    .unwrap();
    let e = drain(&mut src).unwrap_err();
    assert!(e.message.contains("disk on fire"), "{e}");
    assert!(src.next_request().is_none(), "a failed source stays ended");
    let e = TraceSource::with_opener(
        &sp,
        "m.jsonl",
        || Err(std::io::Error::other("no such file")),
        &world(None),
    )
    .err()
    .unwrap();
    assert!(e.message.contains("cannot open: no such file"), "{e}");
}

/// A reader that produces a long CSV on the fly, so the test holds no file in memory.
struct GeneratedCsv {
    rows: u64,
    next: u64,
    pending: Vec<u8>,
    pos: usize,
}

impl std::io::Read for GeneratedCsv {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.pos == self.pending.len() {
            self.pending.clear();
            self.pos = 0;
            if self.next == 0 {
                self.pending
                    .extend_from_slice(b"arrival_s,prompt_tokens,output_tokens\n");
            }
            while self.pending.len() < 8192 && self.next < self.rows {
                let i = self.next;
                self.pending.extend_from_slice(
                    format!(
                        "{}.{:03},{},{}\n",
                        i / 1000,
                        i % 1000,
                        1 + i % 500,
                        1 + i % 70
                    )
                    .as_bytes(),
                );
                self.next += 1;
            }
        }
        let n = buf.len().min(self.pending.len() - self.pos);
        buf[..n].copy_from_slice(&self.pending[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[test]
fn long_generated_trace_streams() {
    let rows = 200_000u64;
    let sp = spec(TraceFormat::Csv);
    let w = world(None);
    let r: Reader = Box::new(std::io::BufReader::new(GeneratedCsv {
        rows,
        next: 0,
        pending: Vec::new(),
        pos: 0,
    }));
    let mut src = TraceSource::new(&sp, "gen", r, &w).unwrap();
    let (mut n, mut last, mut out_sum) = (0u64, 0, 0u64);
    while let Some(req) = src.next_request() {
        let req = req.unwrap();
        assert!(req.arrival_ns >= last);
        last = req.arrival_ns;
        out_sum += req.output_tokens as u64;
        n += 1;
    }
    assert_eq!(n, rows);
    assert_eq!(last, (rows - 1) * MILLISECOND);
    assert_eq!(out_sum, (0..rows).map(|i| 1 + i % 70).sum::<u64>());
}
