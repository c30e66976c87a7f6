//! Forward compatibility within ABI major 1: a plugin built against the frozen 1.0 copy
//! (`perllm-plugin-compat`) runs in this host although this host's views are larger (1.1 added
//! `ServerView::hardware_kind`), and a plugin built with this SDK runs under a host that hands it
//! 1.0 views (built here with the frozen copy's types), seeing the documented defaults.

use super::*;
use perllm_plugin_abi as abi;
use perllm_plugin_abi_1_0 as v1_0;

fn compat_registry() -> Registry {
    let mut r = bundled();
    r.load_library(&lib("perllm_plugin_compat"))
        .expect("the 1.0 plugin loads");
    r
}

/// The report without the names of its policy and cost model and without statistics.
fn comparable(rep: &Report) -> serde_json::Value {
    let mut rep = rep.clone();
    rep.policy_stats.values.clear();
    let mut v = deterministic_json(&rep);
    v["policy"] = serde_json::Value::Null;
    v["cost_model"] = serde_json::Value::Null;
    v
}

#[test]
fn the_frozen_copy_is_abi_1_0_and_this_host_is_a_later_minor() {
    assert_eq!(v1_0::ABI_VERSION, 0x0001_0000);
    assert_eq!(abi::abi_major(abi::ABI_VERSION), 1);
    assert!(abi::abi_minor(abi::ABI_VERSION) >= 1);
    // A field was appended since 1.0: the views really differ in size.
    assert!(size_of::<abi::ServerView>() > size_of::<v1_0::ServerView>());
    assert_eq!(
        <abi::ServerView as abi::Versioned>::MIN_SIZE,
        size_of::<v1_0::ServerView>()
    );
}

#[test]
fn a_plugin_built_for_1_0_runs_in_this_host_like_the_bundled_one() {
    let r = compat_registry();
    let info = r
        .list()
        .into_iter()
        .find(|i| i.name == "compat-least-loaded")
        .expect("listed");
    assert!(info.source.contains("perllm_plugin_compat"), "{info:?}");
    let world = paper(4.0, 6);
    let mut old = r
        .policy(&spec("compat-least-loaded", &[]), &world, 3)
        .unwrap();
    let mut new = r.policy(&spec("least-loaded", &[]), &world, 3).unwrap();
    let old_rep = run(&world, &mut *old, &Roofline::default()).unwrap();
    let new_rep = run(&world, &mut *new, &Roofline::default()).unwrap();
    r.check().unwrap();
    assert!(old_rep.completed > 10, "{}", old_rep.completed);
    assert_eq!(comparable(&old_rep), comparable(&new_rep));
    let v = &old_rep.policy_stats.values;
    // Every outcome reached the old plugin's `observe`, through the newer OutcomeView.
    assert_eq!(v["compat.observed"], old_rep.completed as f64);
    // It was handed this host's larger server views and read the prefix it knows.
    assert_eq!(
        v["compat.host_server_size"],
        size_of::<abi::ServerView>() as f64
    );
    assert_eq!(
        v["compat.own_server_size"],
        size_of::<v1_0::ServerView>() as f64
    );
    assert_eq!(
        v["compat.host_slot_size"],
        size_of::<abi::SlotView>() as f64
    );
}

#[test]
fn a_cost_model_built_for_1_0_prices_like_the_same_formulas_built_now() {
    let r = compat_registry();
    let mut t = bundled();
    t.load_library(&lib("perllm_plugin_testkit")).unwrap();
    let world = paper(4.0, 4);
    let old = r.cost_model("compat-cost", "").unwrap();
    let new = t.cost_model("testkit-cost", "").unwrap();
    let mut p1 = r.policy(&spec("greedy", &[]), &world, 1).unwrap();
    let mut p2 = t.policy(&spec("greedy", &[]), &world, 1).unwrap();
    let a = run(&world, &mut *p1, &*old).unwrap();
    let b = run(&world, &mut *p2, &*new).unwrap();
    r.check().unwrap();
    t.check().unwrap();
    assert!(a.completed > 10, "{}", a.completed);
    assert_eq!(comparable(&a), comparable(&b));
}

/// A policy built with this SDK that records what it saw.
#[derive(Clone, Default)]
struct Probe {
    kinds: Vec<u32>,
    ids: Vec<u64>,
    names: Vec<String>,
}

static SEEN: std::sync::Mutex<Option<Probe>> = std::sync::Mutex::new(None);

impl abi::GuestPolicy for Probe {
    const NAME: &'static str = "probe";
    const VERSION: &'static str = "0";
    const DESCRIPTION: &'static str = "records its views";
    fn create(_: &str, _: u64) -> Result<Self, String> {
        Ok(Probe::default())
    }
    fn schedule(&mut self, slot: &abi::Slot<'_>, out: &mut [abi::Placement]) -> Result<(), String> {
        self.kinds = slot.servers().iter().map(|s| s.hardware_kind).collect();
        self.ids = slot.requests().iter().map(|r| r.id).collect();
        self.names = (0..slot.servers().len())
            .map(|s| slot.server_name(s).to_string())
            .collect();
        for (r, p) in slot.requests().iter().zip(out.iter_mut()) {
            if slot.hosts(1, r.model) {
                p.action = abi::ACTION_ASSIGN;
                p.server = 1;
            }
        }
        *SEEN.lock().unwrap() = Some(self.clone());
        Ok(())
    }
}

#[test]
fn a_plugin_built_now_runs_under_a_1_0_host_with_the_documented_defaults() {
    // The views a 1.0 host builds, with the frozen copy's types and sizes.
    let models = [0u16, 1];
    let names = ["edge0", "cloud0"];
    let servers: Vec<v1_0::ServerView> = (0..2)
        .map(|i| v1_0::ServerView {
            id: i,
            max_batch: 8,
            models: v1_0::Slice::new(&models),
            name: v1_0::StrRef::new(names[i as usize]),
            ..Default::default()
        })
        .collect();
    let requests: Vec<v1_0::RequestView> = (0..3)
        .map(|i| v1_0::RequestView {
            id: 500 + i,
            model: (i % 2) as u16,
            ..Default::default()
        })
        .collect();
    let slot = v1_0::SlotView {
        servers: v1_0::Slice::new(&servers),
        requests: v1_0::Slice::new(&requests),
        ..Default::default()
    };
    assert_eq!(slot.server_size as usize, size_of::<v1_0::ServerView>());
    let mut out = vec![v1_0::Placement::default(); 3];
    let status = abi::policy_schedule::<Probe>(
        abi::policy_create::<Probe>(abi::StrRef::EMPTY, 0, std::ptr::null()),
        (&raw const slot).cast(),
        out.as_mut_ptr().cast(),
        out.len(),
        std::ptr::null(),
    );
    assert_eq!(status, abi::STATUS_OK);
    let seen = SEEN.lock().unwrap().take().unwrap();
    // The 1.1 field a 1.0 host does not provide takes its documented default.
    assert_eq!(seen.kinds, [abi::HW_UNKNOWN, abi::HW_UNKNOWN]);
    assert_eq!(seen.ids, [500, 501, 502]);
    assert_eq!(seen.names, ["edge0", "cloud0"]);
    assert!(
        out.iter()
            .all(|p| p.action == v1_0::ACTION_ASSIGN && p.server == 1)
    );
}

#[test]
fn declarations_of_a_later_minor_with_larger_structs_load() {
    let mut r = Registry::new();
    r.load_library_with_symbols(
        &lib("perllm_plugin_testkit"),
        perllm_host::Symbols {
            abi_version: "testkit_future_minor",
            declare: "testkit_declare_future",
        },
    )
    .expect("a 1.x library with larger structs loads");
    // (A struct smaller than 1.0's is refused: `errors::malformed_declarations`, short list.)
    let world = paper(2.0, 2);
    let mut p = r.policy(&spec("testkit-future", &[]), &world, 1).unwrap();
    let rep = run(&world, &mut *p, &Roofline::default()).unwrap();
    assert_eq!(rep.completed, rep.arrived);
    r.check().unwrap();
}
