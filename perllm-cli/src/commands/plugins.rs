//! `perllm plugins list`.

use crate::catalog::Catalog;
use crate::catalog::PluginArgs;
use crate::cli::ListFormat;
use crate::error::{CliError, Result};
use crate::table::Table;
use crate::term::print_stdout;

/// Show one policy or cost model in detail.
pub fn info(name: &str, args: PluginArgs, format: ListFormat) -> Result<()> {
    let catalog = Catalog::discover(&args.plugins)?;
    let i = catalog.details(name)?;
    match format {
        ListFormat::Json => {
            let mut s = serde_json::to_string_pretty(&i).expect("serialises");
            s.push('\n');
            print_stdout(&s)
        }
        ListFormat::Table => {
            let mut out = String::new();
            let flags = if i.flags.is_empty() {
                "-".to_string()
            } else {
                i.flags.join(", ")
            };
            for (k, v) in [
                ("name", i.name.as_str()),
                ("kind", i.kind.as_str()),
                ("version", i.version.as_str()),
                ("abi", i.abi_version.as_str()),
                ("source", i.source.as_str()),
                ("description", i.description.as_str()),
                ("flags", flags.as_str()),
            ] {
                out.push_str(&format!("{k:<12} {v}\n"));
            }
            out.push_str("parameters\n");
            if i.params.trim().is_empty() {
                out.push_str(if i.abi.is_some() {
                    "  (not declared: the plugin predates ABI 1.2 or leaves `params` empty)\n"
                } else {
                    "  (none)\n"
                });
            } else {
                for l in i.params.lines() {
                    out.push_str(&format!("  {}\n", l.trim()));
                }
            }
            print_stdout(&out)
        }
    }
}

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
