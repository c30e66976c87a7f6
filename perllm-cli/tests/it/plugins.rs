//! `perllm plugins list`.

use crate::{perllm, settings};
use serde_json::Value;

#[test]
fn list_shows_builtins() {
    let out = perllm(&["plugins", "list"]);
    settings(None).bind(|| insta::assert_snapshot!("plugins_list", out.ok()));
    let out = perllm(&["plugins", "list", "--format", "json"]);
    let v: Value = serde_json::from_str(out.ok()).unwrap();
    let items = v.as_array().unwrap();
    for name in ["perllm", "oracle"] {
        let p = items.iter().find(|i| i["name"] == name).expect(name);
        assert_eq!(p["kind"], "policy");
        assert_eq!(p["source"], "built-in");
        assert_eq!(p["version"], env!("CARGO_PKG_VERSION"));
    }
    assert!(
        items
            .iter()
            .any(|i| i["kind"] == "cost-model" && i["name"] == "roofline")
    );
}
