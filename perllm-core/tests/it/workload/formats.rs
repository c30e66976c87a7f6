//! The trace formats: cell parsing, Azure, Mooncake, BurstGPT, plain CSV and JSONL, with their
//! malformed rows.

use super::*;

// ------------------------------------------------------------------------------------------------
// Field parsing
// ------------------------------------------------------------------------------------------------

#[test]
fn datetime_parsing() {
    // 2023-11-16 00:00:00 UTC is 1700092800 s after the epoch.
    assert_eq!(
        parse_datetime_ns("2023-11-16 00:00:00").unwrap(),
        1_700_092_800 * SECOND
    );
    assert_eq!(
        parse_datetime_ns("2023-11-16 18:15:46.6805900").unwrap(),
        (1_700_092_800 + 65_746) * SECOND + 680_590_000
    );
    // The 2024 release's style: microseconds and a UTC offset; T separator; Z.
    assert_eq!(
        parse_datetime_ns("2024-05-10 00:00:00.009930+00:00").unwrap(),
        1_715_299_200 * SECOND + 9_930_000
    );
    assert_eq!(
        parse_datetime_ns("2024-05-10T02:00:00+02:00").unwrap(),
        1_715_299_200 * SECOND
    );
    assert_eq!(
        parse_datetime_ns("2024-05-10T00:00:00Z").unwrap(),
        1_715_299_200 * SECOND
    );
    assert_eq!(
        parse_datetime_ns("2024-02-29 00:00:00").unwrap() + 86_400 * SECOND,
        parse_datetime_ns("2024-03-01 00:00:00").unwrap()
    );
    assert_eq!(
        parse_datetime_ns("1970-01-01 00:00:00.123456789123").unwrap(),
        123_456_789
    );
    for bad in [
        "",
        "2023-11-16",
        "2023/11/16 00:00:00",
        "2023-13-01 00:00:00",
        "2023-02-29 00:00:00",
        "2023-11-16 24:00:00",
        "2023-11-16 00:00:00.",
        "2023-11-16 00:00:00 x",
        "1969-12-31 23:59:59",
        "abcd-ef-gh ij:kl:mn",
    ] {
        assert!(parse_datetime_ns(bad).is_err(), "{bad:?} parsed");
    }
}

// ------------------------------------------------------------------------------------------------
// Azure
// ------------------------------------------------------------------------------------------------

#[test]
fn azure_rows_map_to_offsets_and_tokens() {
    let v = replay(&spec(TraceFormat::Azure), AZURE).unwrap();
    assert_eq!(
        arrivals(&v),
        vec![0, 4_314_579_000, 4_541_877_000, 5_319_410_000]
    );
    assert_eq!(
        v.iter()
            .map(|r| (r.prompt_tokens, r.output_tokens))
            .collect::<Vec<_>>(),
        vec![(374, 44), (396, 109), (879, 55), (91, 16)]
    );
    assert_eq!(v.iter().map(|r| r.id).collect::<Vec<_>>(), vec![0, 1, 2, 3]);
    // Output bytes follow the workload's bytes per token; payloads are drawn from the workload's distribution.
    assert!(
        v.iter()
            .all(|r| r.output_bytes == r.output_tokens as u64 * 4 && r.input_bytes >= 1)
    );
}

#[test]
fn azure_2024_style_timestamps() {
    let t = "TIMESTAMP,ContextTokens,GeneratedTokens\n\
             2024-05-10 00:00:00.009930+00:00,2048,28\n\
             2024-05-10 00:00:00.018725+00:00,1,1\n";
    let v = replay(&spec(TraceFormat::Azure), t).unwrap();
    assert_eq!(arrivals(&v), vec![0, 8_795_000]);
}

#[test]
fn azure_malformed_rows_name_file_row_and_problem() {
    let cases = [
        (
            "2023-11-16 18:15:51.2224670,abc,55",
            "prompt tokens: `abc` is not a non-negative integer",
        ),
        (
            "2023-11-16 18:15:51.2224670,1,-3",
            "output tokens: `-3` is not a non-negative integer",
        ),
        (
            "not a time,1,1",
            "timestamp: `not a time` is not a timestamp",
        ),
        (
            "2023-11-16 18:15:51.2224670,1",
            "has 2 fields, the header has 3",
        ),
        (
            "2023-11-16 18:15:51.2224670,4294967296,1",
            "prompt tokens 4294967296 is more than the largest supported 4294967295",
        ),
        (
            "2023-11-16 18:15:51.2224670,99999999999999999999999,1",
            "is too large",
        ),
        ("2023-11-16 18:15:51.2224670,0,1", "prompt tokens is 0"),
        ("2023-11-16 18:15:51.2224670,5,0", "output tokens is 0"),
    ];
    for (row, want) in cases {
        let text = format!(
            "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46.6805900,374,44\n{row}\n2023-11-16 18:15:52.0,1,1\n"
        );
        let e = err_of(replay(&spec(TraceFormat::Azure), &text));
        assert_eq!(e.source_name, "fixture.txt");
        assert_eq!(e.row, 3, "{row}: {e}");
        assert!(e.message.contains(want), "{row}: got `{}`", e.message);
        assert!(e.to_string().starts_with("fixture.txt: row 3: "), "{e}");

        // With skip_bad_rows the row is skipped and counted.
        let mut sp = spec(TraceFormat::Azure);
        sp.skip_bad_rows = true;
        let w = world(Some(sp.clone()));
        let mut src = TraceSource::new(&sp, "fixture.txt", reader(&text), &w).unwrap();
        let v = drain(&mut src).unwrap();
        assert_eq!(v.len(), 2, "{row}");
        assert_eq!(src.skipped(), 1);
        assert_eq!(src.malformed_rows(), 1);
    }
}

#[test]
fn wrong_header_is_an_error_on_row_1() {
    let e = TraceSource::new(
        &spec(TraceFormat::Azure),
        "x.csv",
        reader("time,a,b\n1,2,3\n"),
        &world(None),
    )
    .err()
    .unwrap();
    assert_eq!(e.row, 1);
    assert!(
        e.message.contains("no `TIMESTAMP` column") && e.message.contains("time, a, b"),
        "{e}"
    );
    let e = open_err(&spec(TraceFormat::Azure), "x.csv", "");
    assert!(e.message.contains("found: nothing"), "{e}");
}

#[test]
fn empty_trace_and_empty_window_are_errors() {
    replay_err(
        &spec(TraceFormat::Azure),
        "TIMESTAMP,ContextTokens,GeneratedTokens\n",
        None,
        "the trace has no rows",
    );
    let mut sp = spec(TraceFormat::Azure);
    sp.window_ns = Some((100 * SECOND, 200 * SECOND));
    replay_err(&sp, AZURE, None, "no rows in its window");
}

// ------------------------------------------------------------------------------------------------
// Mooncake
// ------------------------------------------------------------------------------------------------

const MOONCAKE: &str = r#"{"timestamp": 0, "input_length": 6955, "output_length": 52, "hash_ids": [46, 47, 48]}
{"timestamp": 0, "input_length": 6472, "output_length": 26, "hash_ids": [46, 47]}

{"timestamp": 3052, "input_length": 2000, "output_length": 7, "hash_ids": []}
{"timestamp": 3052.5, "input_length": 10, "output_length": 1, "hash_ids": [1]}
"#;

#[test]
fn mooncake_rows() {
    let v = replay(&spec(TraceFormat::Mooncake), MOONCAKE).unwrap();
    assert_eq!(arrivals(&v), vec![0, 0, 3_052_000_000, 3_052_500_000]);
    assert_eq!(
        v.iter().map(|r| r.prompt_tokens).collect::<Vec<_>>(),
        vec![6955, 6472, 2000, 10]
    );
    assert_eq!(
        v.iter().map(|r| r.output_tokens).collect::<Vec<_>>(),
        vec![52, 26, 7, 1]
    );
}

#[test]
fn mooncake_malformed_rows() {
    let cases = [
        (
            r#"{"timestamp": 5, "input_length": 1}"#,
            "missing field `output_length`",
        ),
        (
            r#"{"timestamp": 5, "input_length": -1, "output_length": 1}"#,
            "invalid Mooncake JSON",
        ),
        (
            r#"{"timestamp": 5, "input_length": 1, "output_length": 8589934592}"#,
            "output_length 8589934592 is more than",
        ),
        (
            r#"{"timestamp": 18446744073709551615, "input_length": 1, "output_length": 1}"#,
            "overflows",
        ),
        (
            r#"{"timestamp": 5, "input_length": 1, "output_length": 1"#,
            "invalid Mooncake JSON",
        ),
        ("\u{1}garbage", "invalid Mooncake JSON"),
    ];
    for (row, want) in cases {
        let text =
            format!("{{\"timestamp\": 0, \"input_length\": 1, \"output_length\": 1}}\n\n{row}\n");
        let e = err_of(replay(&spec(TraceFormat::Mooncake), &text));
        assert_eq!((e.row, e.source_name.as_str()), (3, "fixture.txt"), "{row}");
        assert!(e.message.contains(want), "{row}: got `{}`", e.message);
    }
}

// ------------------------------------------------------------------------------------------------
// BurstGPT
// ------------------------------------------------------------------------------------------------

const BURST: &str = "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n\
5,ChatGPT,472,18,490,Conversation log\n\
45,ChatGPT,1087,0,1087,Conversation log\n\
118,GPT-4,417,276,693,API log\n\
126,ChatGPT,1360,0,1360,API log\n\
130.25,GPT-4,30,12,42,Conversation log\n";

#[test]
fn burstgpt_skips_and_counts_failed_requests() {
    let sp = spec(TraceFormat::Burstgpt);
    let w = world(Some(sp.clone()));
    let mut src = TraceSource::new(&sp, "burst.csv", reader(BURST), &w).unwrap();
    let v = drain(&mut src).unwrap();
    assert_eq!(arrivals(&v), vec![0, 113 * SECOND, 125_250_000_000]);
    assert_eq!(
        v.iter()
            .map(|r| (r.prompt_tokens, r.output_tokens))
            .collect::<Vec<_>>(),
        vec![(472, 18), (417, 276), (30, 12)]
    );
    assert_eq!(
        (src.failed_rows(), src.malformed_rows(), src.skipped()),
        (2, 0, 2)
    );
}

#[test]
fn burstgpt_model_from_column() {
    let mut sp = spec(TraceFormat::Burstgpt);
    sp.model_assign = Assign::FromColumn;
    // Name the scenario's models after BurstGPT's.
    let w = world_with(Some(sp.clone()), |s| {
        let rename = |n: &mut String| {
            *n = match n.as_str() {
                "llama2-7b" => "ChatGPT".into(),
                "llama-33b" => "GPT-4".into(),
                o => o.into(),
            }
        };
        s.models.iter_mut().for_each(|m| rename(&mut m.name));
        s.servers
            .iter_mut()
            .for_each(|sv| sv.models.iter_mut().for_each(rename));
        s.workload.models.iter_mut().for_each(|m| rename(&mut m.0));
    });
    let mut src = TraceSource::new(&sp, "burst.csv", reader(BURST), &w).unwrap();
    let v = drain(&mut src).unwrap();
    let (chat, gpt4) = (w.model_id("ChatGPT").unwrap(), w.model_id("GPT-4").unwrap());
    assert_eq!(
        v.iter().map(|r| r.model).collect::<Vec<_>>(),
        vec![chat, gpt4, gpt4]
    );

    // With the paper's model names the column's names are unknown: a row error.
    let w = world(Some(sp.clone()));
    let mut src = TraceSource::new(&sp, "burst.csv", reader(BURST), &w).unwrap();
    let e = drain(&mut src).unwrap_err();
    assert_eq!(e.row, 2);
    assert!(e.message.contains("unknown model `ChatGPT`"), "{e}");
}

#[test]
fn burstgpt_has_no_slo_column() {
    let mut sp = spec(TraceFormat::Burstgpt);
    sp.slo_assign = Assign::FromColumn;
    let e = open_err(&sp, "burst.csv", BURST);
    assert!(e.message.contains("no slo column"), "{e}");
}

// ------------------------------------------------------------------------------------------------
// Plain CSV and JSONL
// ------------------------------------------------------------------------------------------------

#[test]
fn plain_csv_with_columns() {
    let text = "arrival_s,prompt_tokens,output_tokens,slo,model,payload_bytes\n\
                0.5,100,20,batch,llama-33b,2048\n\
                1.25,200,30,interactive,llama2-7b,\n\
                2,300,40,standard,llama2-7b,1e3\n";
    let mut sp = spec(TraceFormat::Csv);
    sp.slo_assign = Assign::FromColumn;
    sp.model_assign = Assign::FromColumn;
    sp.payload = Some(SizeDist::Fixed { value: 777.0 });
    replay_err(
        &sp,
        text,
        Some(4),
        "payload_bytes: `1e3` is not a non-negative integer",
    );

    let text = text.replace("1e3", "1000");
    let v = replay(&sp, &text).unwrap();
    let w = world(None);
    assert_eq!(arrivals(&v), vec![0, 750_000_000, 1_500_000_000]);
    assert_eq!(
        v.iter()
            .map(|r| (r.slo, r.model, r.input_bytes))
            .collect::<Vec<_>>(),
        vec![
            (
                w.slo_id("batch").unwrap(),
                w.model_id("llama-33b").unwrap(),
                2048
            ),
            (
                w.slo_id("interactive").unwrap(),
                w.model_id("llama2-7b").unwrap(),
                777
            ),
            (
                w.slo_id("standard").unwrap(),
                w.model_id("llama2-7b").unwrap(),
                1000
            ),
        ]
    );
}

#[test]
fn plain_csv_errors() {
    let mut sp = spec(TraceFormat::Csv);
    replay_err(
        &sp,
        "arrival_s,prompt_tokens,output_tokens,colour\n0,1,1,red\n",
        Some(1),
        "unknown column `colour`",
    );
    replay_err(
        &sp,
        "arrival_s,prompt_tokens\n0,1\n",
        None,
        "no `output_tokens` column",
    );
    replay_err(
        &sp,
        "arrival_s,prompt_tokens,output_tokens\n0,1,1\n-1,1,1\n",
        Some(3),
        "not a finite non-negative time",
    );
    replay_err(
        &sp,
        "arrival_s,prompt_tokens,output_tokens\n0,1,1\n1e300,1,1\n",
        Some(3),
        "overflows",
    );
    sp.slo_assign = Assign::FromColumn;
    replay_err(
        &sp,
        "arrival_s,prompt_tokens,output_tokens\n0,1,1\n",
        None,
        "no `slo` column",
    );
    replay_err(
        &sp,
        "arrival_s,prompt_tokens,output_tokens,slo\n0,1,1,gold\n",
        Some(2),
        "unknown SLO class `gold`",
    );
    replay_err(
        &sp,
        "arrival_s,prompt_tokens,output_tokens,slo\n0,1,1,\n",
        Some(2),
        "slo column is empty",
    );
}

#[test]
fn plain_jsonl() {
    let text = r#"{"arrival_s": 0, "prompt_tokens": 10, "output_tokens": 5, "slo": "batch", "payload_bytes": 99}
{"arrival_s": 0.001, "prompt_tokens": 11, "output_tokens": 6, "slo": "interactive"}
"#;
    let mut sp = spec(TraceFormat::Jsonl);
    sp.slo_assign = Assign::FromColumn;
    sp.payload = Some(SizeDist::Fixed { value: 5.0 });
    let v = replay(&sp, text).unwrap();
    let w = world(None);
    assert_eq!(arrivals(&v), vec![0, 1_000_000]);
    assert_eq!(
        v.iter().map(|r| (r.slo, r.input_bytes)).collect::<Vec<_>>(),
        vec![
            (w.slo_id("batch").unwrap(), 99),
            (w.slo_id("interactive").unwrap(), 5)
        ]
    );

    replay_err(
        &sp,
        "{\"arrival_s\": 0, \"prompt_tokens\": 1, \"output_tokens\": 1, \"slo\": \"batch\", \"colour\": 1}\n",
        Some(1),
        "unknown field `colour`",
    );
    replay_err(
        &sp,
        "{\"arrival_s\": 0, \"prompt_tokens\": 1, \"output_tokens\": 1}\n",
        None,
        "the row has no `slo`",
    );
    sp.slo_assign = Assign::ByShare;
    replay_err(
        &sp,
        "{\"arrival_s\": 0, \"prompt_tokens\": 1.5, \"output_tokens\": 1}\n",
        None,
        "invalid JSON row",
    );
}

#[test]
fn model_not_hosted_is_a_row_error() {
    let mut sp = spec(TraceFormat::Csv);
    sp.model_assign = Assign::FromColumn;
    let w = world_with(Some(sp.clone()), |s| {
        s.models.push(ModelSpec {
            name: "orphan".into(),
            params: 1e9,
            precision: Precision::Int8,
            kv_bytes_per_token: 1024,
        });
    });
    let mut src = TraceSource::new(
        &sp,
        "f.csv",
        reader("arrival_s,prompt_tokens,output_tokens,model\n0,1,1,orphan\n"),
        &w,
    )
    .unwrap();
    let e = drain(&mut src).unwrap_err();
    assert!(
        e.message
            .contains("model `orphan` is not hosted by any server"),
        "{e}"
    );
}

// ------------------------------------------------------------------------------------------------

#[test]
fn burstgpt_extra_columns_are_ignored() {
    let text = "Timestamp,Session ID,Elapsed time,Model,Request tokens,Response tokens,Total tokens,Log Type\n\
                0.5,17,1.2,ChatGPT,100,20,120,Conversation log\n\
                2.0,18,0.9,GPT-4,50,0,50,API log\n\
                3.5,17,2.5,ChatGPT,70,30,100,Conversation log\n";
    let sp = spec(TraceFormat::Burstgpt);
    let w = world(Some(sp.clone()));
    let mut src = TraceSource::new(&sp, "burst.csv", reader(text), &w).unwrap();
    let v = drain(&mut src).unwrap();
    assert_eq!(arrivals(&v), vec![0, 3 * SECOND]);
    assert_eq!(
        v.iter().map(|r| r.prompt_tokens).collect::<Vec<_>>(),
        vec![100, 70]
    );
    assert_eq!(src.failed_rows(), 1);
}
