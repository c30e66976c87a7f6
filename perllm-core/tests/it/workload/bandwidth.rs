//! Bandwidth series files.

use super::*;

// ------------------------------------------------------------------------------------------------
// Bandwidth series
// ------------------------------------------------------------------------------------------------

#[test]
fn bandwidth_factor_series() {
    let s = bandwidth_series_from_csv(
        "time_s,factor\n10,1.0\n10.5,0.8\n12,1.2\n".as_bytes(),
        "bw.csv",
    )
    .unwrap();
    assert_eq!(
        s,
        vec![(0, 1.0), (500 * MILLISECOND, 0.8), (2 * SECOND, 1.2)]
    );
}

#[test]
fn bandwidth_comments_blank_lines_crlf_and_no_header() {
    let want = vec![(0, 1.0), (500 * MILLISECOND, 0.8), (2 * SECOND, 1.2)];
    for text in [
        "# a comment\ntime_s,factor\n# another\n10,1.0\n\n10.5,0.8\n12,1.2",
        "# a comment\r\n\r\ntime_s,factor\r\n10,1.0\r\n10.5,0.8\r\n#\r\n12,1.2\r\n",
        "10,1.0\n10.5,0.8\n12,1.2\n",
    ] {
        let r = read_bandwidth_csv(text.as_bytes(), "bw.csv").unwrap();
        assert_eq!((&r.points, r.absolute), (&want, false), "{text:?}");
        let lines: Vec<u64> = text
            .split('\n')
            .enumerate()
            .filter(|(_, l)| l.starts_with("10") || l.starts_with("12"))
            .map(|(i, _)| i as u64 + 1)
            .collect();
        assert_eq!(r.lines, lines, "{text:?}");
    }
}

#[test]
fn bandwidth_absolute_series_is_normalised() {
    // 100 Mbps for 1 s, 50 Mbps for 3 s: time-weighted mean 62.5 Mbps.
    let r = read_bandwidth_csv(
        "time_s,bandwidth_mbps\n0,100\n1,50\n4,100\n".as_bytes(),
        "bw.csv",
    )
    .unwrap();
    assert!(r.absolute);
    assert_eq!(
        r.points,
        vec![(0, 100e6), (SECOND, 50e6), (4 * SECOND, 100e6)]
    );
    assert!((r.time_weighted_mean() - 62.5e6).abs() < 1e-3);
    let f = r.factors(None);
    assert!((f[0].1 - 1.6).abs() < 1e-12 && (f[1].1 - 0.8).abs() < 1e-12);
    let f = r.factors(Some(100e6));
    assert_eq!(f[1], (SECOND, 0.5));
    // The result is a valid Fluctuation::Series for a scenario.
    let w = world_with(None, |s| {
        s.links[0].fluctuation = Fluctuation::Series {
            points: r.factors(None),
        }
    });
    assert!(matches!(w.links[0].fluctuation, Fluctuation::Series { .. }));
}

#[test]
fn bandwidth_errors() {
    let cases = [
        ("time,factor\n0,1\n", 1, "expected the header"),
        ("time_s,bandwidth_furlongs\n0,1\n", 1, "expected the header"),
        ("time_s,factor\n0,1\n1,0\n", 3, "positive"),
        ("time_s,factor\n0,1\n1,abc\n", 3, "not a number"),
        ("time_s,factor\n0,1\n1,2\n1,3\n", 4, "increase strictly"),
        ("time_s,factor\n5,1\n4,2\n", 3, "increase strictly"),
        ("time_s,factor\n0,1\n1\n", 3, "has 1 fields"),
        ("time_s,factor\n", 0, "no rows"),
        ("", 0, "no rows"),
        ("# only a comment\n\n", 0, "no rows"),
        (
            "# c\r\ntime_s,factor\r\n# c\r\n0,1\r\n\r\n1,x\r\n",
            6,
            "not a number",
        ),
        ("0,1\n1,-2\n", 2, "factor must be a positive"),
        ("0,1,2\n", 1, "expected the header"),
        (
            " # a comment starts at the line's first byte\n0,1\n",
            1,
            "expected the header",
        ),
        (
            "time_s,factor\n0,1\n1,2000\n",
            3,
            "factor 2000, outside [0.001, 1000]",
        ),
        (
            "time_s,bandwidth_kbps\n0,1\n1,1e7\n2,1\n",
            2,
            "1e3 bits/s is ",
        ),
    ];
    for (text, row, want) in cases {
        let e = bandwidth_series_from_csv(text.as_bytes(), "bw.csv").unwrap_err();
        assert_eq!(
            (e.row, e.source_name.as_str()),
            (row, "bw.csv"),
            "{text:?}: {e}"
        );
        assert!(e.message.contains(want), "{text:?}: {e}");
    }
}
