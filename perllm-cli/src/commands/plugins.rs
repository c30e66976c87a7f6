//! `perllm plugins list`.

use crate::catalog::Catalog;
use crate::cli::{ListFormat, PluginArgs};
use crate::error::{CliError, Result};
use crate::table::Table;
use crate::term::print_stdout;

/// List policies and cost models.
pub fn list(args: PluginArgs, format: ListFormat) -> Result<()> {
    let catalog = Catalog::discover(&args.plugins)?;
    let items = catalog.list();
    let listed = match format {
        ListFormat::Json => {
            let v: Vec<serde_json::Value> = items
                .iter()
                .map(|(i, shadowed)| {
                    let mut v = serde_json::to_value(i).expect("serialises");
                    v["shadowed"] = (*shadowed).into();
                    v
                })
                .collect();
            let mut s = serde_json::to_string_pretty(&v).expect("serialises");
            s.push('\n');
            print_stdout(&s)
        }
        ListFormat::Table => {
            let mut t = Table::new(&["name", "kind", "version", "abi", "source", "description"]);
            let mut any_shadowed = false;
            for (i, shadowed) in items {
                any_shadowed |= *shadowed;
                let name = if *shadowed {
                    format!("{}*", i.name)
                } else {
                    i.name.clone()
                };
                t.row(vec![
                    name,
                    i.kind.clone(),
                    i.version.clone(),
                    i.abi.clone().unwrap_or_else(|| "-".into()),
                    i.source.clone(),
                    i.description.clone(),
                ]);
            }
            let mut out = t.render();
            if any_shadowed {
                out.push_str(
                    "\n* hidden by a built-in of the same name; select it as `plugin:NAME`\n",
                );
            }
            print_stdout(&out)
        }
    };
    listed?;
    match catalog.skipped_libraries() {
        0 => Ok(()),
        n => Err(CliError::input(format!(
            "{n} plugin librar{} failed to load (see the warnings above); the others are listed",
            if n == 1 { "y" } else { "ies" }
        ))),
    }
}
