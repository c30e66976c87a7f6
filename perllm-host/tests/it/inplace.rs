//! ABI 1.3's in-place path (`PolicyVTable::decide`): the plugin reads the simulator's own
//! pending requests and writes its own decisions. It decides exactly as the copying path
//! (`schedule`) does; a plugin built for it runs under a host of any 1.x; what the host checks
//! and what the simulator checks.

use super::*;
use perllm_plugin_abi as abi;
use perllm_plugin_abi_1_0 as v1_0;

/// Every bundled policy (all of them use `decide`) makes the same decisions in place and
/// through `schedule`, which a 1.3 host calls when told to, as an older host does: whole
/// reports are equal.
#[test]
fn bundled_policies_decide_the_same_in_place_and_through_schedule() {
    let world = paper(6.0, 8);
    let cost = Roofline::default();
    let mut copying = bundled();
    copying.set_in_place(false);
    let in_place = bundled();
    for name in perllm_plugins::POLICY_NAMES {
        let report = |r: &Registry| {
            let mut p = r.policy(&spec(name, &[]), &world, 5).unwrap();
            deterministic_json(&run(&world, &mut *p, &cost).unwrap())
        };
        assert_eq!(report(&in_place), report(&copying), "{name}");
    }
    in_place.check().unwrap();
    copying.check().unwrap();
}

fn in_place_testkit() -> Registry {
    let mut r = Registry::new();
    r.load_library_with_symbols(
        &lib("perllm_plugin_testkit"),
        perllm_host::Symbols {
            abi_version: abi::ABI_VERSION_SYMBOL,
            declare: "testkit_declare_in_place",
        },
    )
    .expect("the in-place test kit loads");
    r
}

fn run_mode(mode: &str) -> (Result<Report, SimError>, Registry) {
    let r = in_place_testkit();
    let world = paper(4.0, 3);
    let s = spec(
        "testkit-in-place",
        &[
            ("mode", ParamValue::Text(mode.into())),
            ("after", ParamValue::Number(2.0)),
        ],
    );
    let mut p = r.policy(&s, &world, 1).unwrap();
    let rep = run(&world, &mut *p, &Roofline::default());
    drop(p);
    (rep, r)
}

/// An unknown action code fails the call in the host (it is not a value of the core's
/// `Decision`), naming the plugin, the library, `decide` and the request.
#[test]
fn an_unknown_action_fails_the_call_in_the_host() {
    let (rep, r) = run_mode("bad-action");
    let e = rep.unwrap_err().to_string();
    assert!(
        e.contains("plugin `testkit-in-place`")
            && e.contains("libperllm_plugin_testkit")
            && e.contains("`decide` returned an invalid result")
            && e.contains(
                "has action 77, not ACTION_DEFER (0), ACTION_ASSIGN (1) or ACTION_REJECT (2)"
            ),
        "{e}"
    );
    assert!(r.check().is_err(), "the registry records the failure");
}

/// A server that does not exist or does not host the model is refused where the decision is
/// applied, by the simulator (as for any core policy), naming the policy and the request.
#[test]
fn an_impossible_server_is_refused_by_the_simulator() {
    for (mode, what) in [
        ("bad-server", "does not exist"),
        ("unhosted", "does not host model"),
    ] {
        let (rep, _) = run_mode(mode);
        match rep {
            Err(e @ SimError::InvalidDecision { .. }) => {
                let e = e.to_string();
                assert!(
                    e.contains("testkit-in-place") && e.contains(what),
                    "{mode}: {e}"
                );
            }
            other => panic!("{mode}: {other:?}"),
        }
    }
}

/// Errors and panics of `decide` are reported like those of `schedule`.
#[test]
fn errors_and_panics_of_decide_name_the_entry_point() {
    let (rep, r) = run_mode("error");
    let e = rep.unwrap_err().to_string();
    assert!(
        e.contains("`decide`") && e.contains("testkit fails in decide (slot"),
        "{e}"
    );
    assert!(r.check().is_err());
    let (rep, _) = run_mode("panic");
    let e = rep.unwrap_err().to_string();
    assert!(
        e.contains("`decide`") && e.contains("testkit panics in decide"),
        "{e}"
    );
    let (rep, r) = run_mode("ok");
    let rep = rep.unwrap();
    assert_eq!(rep.completed + rep.rejected, rep.arrived);
    r.check().unwrap();
}

/// An in-place policy built with this SDK.
#[derive(Default)]
struct Probe;

static SEEN: std::sync::Mutex<Vec<(u64, u32, u64)>> = std::sync::Mutex::new(Vec::new());

impl abi::GuestPolicy for Probe {
    const NAME: &'static str = "probe";
    const VERSION: &'static str = "0";
    const DESCRIPTION: &'static str = "records what it reads in place";
    const IN_PLACE: bool = true;
    fn create(_: &str, _: u64) -> Result<Self, String> {
        Ok(Probe)
    }
    fn decide(&mut self, slot: &abi::Slot<'_>, out: &mut [abi::Decision]) -> Result<(), String> {
        *SEEN.lock().unwrap() = slot
            .pending()
            .iter()
            .map(|p| (p.request.id, p.defers, slot.deadline_ns(p)))
            .collect();
        for (i, d) in out.iter_mut().enumerate() {
            *d = match i % 3 {
                0 => abi::Decision::assign(1),
                1 => abi::Decision::REJECT,
                _ => abi::Decision::DEFER,
            };
        }
        Ok(())
    }
}

fn expected_actions(n: usize) -> Vec<(u32, u32)> {
    (0..n)
        .map(|i| match i % 3 {
            0 => (abi::ACTION_ASSIGN, 1),
            1 => (abi::ACTION_REJECT, abi::NO_SERVER),
            _ => (abi::ACTION_DEFER, abi::NO_SERVER),
        })
        .collect()
}

/// Under a 1.0 host (views built with the frozen copy's types), which calls `schedule`, the
/// SDK builds the pending list and the SLO deadlines from the request views and writes the
/// decisions into the placements.
#[test]
fn an_in_place_policy_runs_under_a_1_0_host() {
    let models = [0u16, 1];
    let servers: Vec<v1_0::ServerView> = (0..2)
        .map(|i| v1_0::ServerView {
            id: i,
            models: v1_0::Slice::new(&models),
            ..Default::default()
        })
        .collect();
    let requests: Vec<v1_0::RequestView> = (0..4)
        .map(|i| v1_0::RequestView {
            id: 700 + i,
            slo: (i % 2) as u16,
            deadline_ns: 1000 * (1 + i % 2),
            defers: i as u32,
            ..Default::default()
        })
        .collect();
    let slot = v1_0::SlotView {
        servers: v1_0::Slice::new(&servers),
        requests: v1_0::Slice::new(&requests),
        ..Default::default()
    };
    let mut out = vec![v1_0::Placement::default(); 4];
    let status = abi::policy_schedule::<Probe>(
        abi::policy_create::<Probe>(abi::StrRef::EMPTY, 0, std::ptr::null()),
        (&raw const slot).cast(),
        out.as_mut_ptr().cast(),
        out.len(),
        std::ptr::null(),
    );
    assert_eq!(status, abi::STATUS_OK);
    assert_eq!(
        *SEEN.lock().unwrap(),
        [
            (700, 0, 1000),
            (701, 1, 2000),
            (702, 2, 1000),
            (703, 3, 2000)
        ]
    );
    let got: Vec<(u32, u32)> = out.iter().map(|p| (p.action, p.server)).collect();
    assert_eq!(got, expected_actions(4));
    assert!(
        out.iter()
            .all(|p| p.struct_size as usize == size_of::<v1_0::Placement>())
    );
}

/// Under a newer host whose pending requests and decisions are larger than this SDK's (a
/// later minor appended fields), `decide` reads the prefix it knows and writes back only the
/// fields it knows.
#[test]
fn an_in_place_policy_reads_a_newer_hosts_larger_elements() {
    // Pending requests of 64 bytes (8 appended), decisions of 12 bytes (4 appended).
    #[derive(Clone, Copy, Default)]
    #[repr(C)]
    struct PendingNext {
        p: abi::Pending,
        extra: u64,
    }
    #[derive(Clone, Copy)]
    #[repr(C)]
    struct DecisionNext {
        d: abi::Decision,
        extra: u32,
    }
    let pending: Vec<PendingNext> = (0..5)
        .map(|i| PendingNext {
            p: abi::Pending {
                request: abi::PendingRequest {
                    id: 900 + i,
                    slo: 1,
                    ..Default::default()
                },
                defers: 7,
            },
            extra: u64::MAX,
        })
        .collect();
    let deadlines = [5u64, 6];
    let mut out = vec![
        DecisionNext {
            d: abi::Decision::DEFER,
            extra: 0xABCD,
        };
        5
    ];
    let slot = abi::SlotView {
        pending: abi::Slice::new_raw(pending.as_ptr().cast(), pending.len()),
        slo_deadlines: abi::Slice::new(&deadlines),
        pending_size: size_of::<PendingNext>() as u32,
        decision_size: size_of::<DecisionNext>() as u32,
        ..Default::default()
    };
    assert_eq!((slot.pending_size, slot.decision_size), (64, 12));
    let status = abi::policy_decide::<Probe>(
        abi::policy_create::<Probe>(abi::StrRef::EMPTY, 0, std::ptr::null()),
        &slot,
        out.as_mut_ptr().cast(),
        out.len(),
        std::ptr::null(),
    );
    assert_eq!(status, abi::STATUS_OK);
    assert_eq!(
        *SEEN.lock().unwrap(),
        (900..905).map(|id| (id, 7, 6)).collect::<Vec<_>>()
    );
    let got: Vec<(u32, u32)> = out.iter().map(|d| (d.d.action, d.d.server)).collect();
    assert_eq!(got, expected_actions(5));
    assert!(
        out.iter().all(|d| d.extra == 0xABCD),
        "the tail is the host's"
    );
}
