//! `perllm plugins list`.

use crate::catalog::Catalog;
use crate::cli::{ListFormat, PluginArgs};
use crate::error::Result;
use crate::table::Table;
use crate::term::print_stdout;

/// List policies and cost models.
pub fn list(args: PluginArgs, format: ListFormat) -> Result<()> {
    let catalog = Catalog::discover(&args.plugins)?;
    let items = catalog.list();
    match format {
        ListFormat::Json => {
            let mut s = serde_json::to_string_pretty(&items).expect("serialises");
            s.push('\n');
            print_stdout(&s)
        }
        ListFormat::Table => {
            let mut t = Table::new(&["name", "kind", "version", ">abi", "source"]);
            for i in items {
                t.row(vec![
                    i.name,
                    i.kind,
                    i.version,
                    i.abi.map_or_else(|| "-".into(), |a| a.to_string()),
                    i.source,
                ]);
            }
            print_stdout(&t.render())
        }
    }
}
