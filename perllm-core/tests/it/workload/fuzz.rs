//! No input panics: property tests over arbitrary trace bytes and timestamps.

use super::*;

use proptest::prelude::*;

fn formats() -> impl Strategy<Value = TraceFormat> {
    prop_oneof![
        Just(TraceFormat::Azure),
        Just(TraceFormat::Mooncake),
        Just(TraceFormat::Burstgpt),
        Just(TraceFormat::Csv),
        Just(TraceFormat::Jsonl),
    ]
}

/// Plausible-looking rows with random corruption: headers of every format, numbers of every
/// size, quotes, separators, JSON fragments, non-UTF-8 bytes.
fn text() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(b"TIMESTAMP,ContextTokens,GeneratedTokens\n".to_vec()),
        Just(b"Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n".to_vec()),
        Just(b"arrival_s,prompt_tokens,output_tokens,slo,model,payload_bytes\n".to_vec()),
        Just(b"2023-11-16 18:15:46.6805900,".to_vec()),
        Just(b"{\"timestamp\": ".to_vec()),
        Just(b"{\"arrival_s\": ".to_vec()),
        Just(b", \"input_length\": 5, \"output_length\": 0}\n".to_vec()),
        Just(b"\"prompt_tokens\": 1, \"output_tokens\": 1, \"slo\": \"batch\"}\n".to_vec()),
        Just(b"interactive,llama2-7b,".to_vec()),
        Just(b"ChatGPT,".to_vec()),
        any::<u64>().prop_map(|v| v.to_string().into_bytes()),
        any::<f64>().prop_map(|v| v.to_string().into_bytes()),
        prop::sample::select(vec![
            b",".to_vec(),
            b"\n".to_vec(),
            b"\r\n".to_vec(),
            b"\"".to_vec(),
            b"".to_vec(),
            vec![0xff, 0xfe],
            b"-".to_vec(),
            b"e999".to_vec()
        ]),
        prop::collection::vec(any::<u8>(), 0..8),
    ];
    prop::collection::vec(piece, 0..40).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, .. ProptestConfig::default() })]

    #[test]
    fn parsers_never_panic(format in formats(), bytes in text(), skip in any::<bool>(), from_col in any::<bool>(), speed in 0.01f64..100.0) {
        let mut sp = spec(format);
        sp.skip_bad_rows = skip;
        sp.speedup = speed;
        if from_col && matches!(format, TraceFormat::Csv | TraceFormat::Jsonl) {
            sp.slo_assign = Assign::FromColumn;
            sp.model_assign = Assign::FromColumn;
        }
        let w = world(Some(sp.clone()));
        let r: Reader = Box::new(Cursor::new(bytes.clone()));
        if let Ok(mut src) = TraceSource::new(&sp, "fuzz", r, &w) {
            let mut last = 0;
            let mut n = 0;
            while let Some(x) = src.next_request() {
                match x {
                    Ok(req) => {
                        prop_assert!(req.arrival_ns >= last);
                        prop_assert!(req.prompt_tokens >= 1 && req.output_tokens >= 1);
                        last = req.arrival_ns;
                    }
                    Err(e) => prop_assert!(!e.message.is_empty()),
                }
                n += 1;
                prop_assert!(n < 10_000);
            }
        }
        let _ = trace::summarize(format, "fuzz", Box::new(Cursor::new(bytes.clone())), skip);
        let _ = read_bandwidth_csv(&bytes[..], "fuzz");
    }

    #[test]
    fn datetime_parser_never_panics(s in "\\PC{0,40}") {
        let _ = parse_datetime_ns(&s);
    }

    #[test]
    fn datetime_matches_day_arithmetic(days in 0u64..100_000, secs in 0u64..86_400, frac in 0u64..1_000_000_000) {
        // Render the instant independently (civil-from-days) and parse it back.
        let z = days as i64 + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = doy - (153 * mp + 2) / 5 + 1;
        let m = if mp < 10 { mp + 3 } else { mp - 9 };
        let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
        let s = format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{frac:09}", secs / 3600, secs / 60 % 60, secs % 60);
        prop_assert_eq!(parse_datetime_ns(&s).unwrap(), (days * 86_400 + secs) * SECOND + frac);
    }
}
