//! A case as a scenario file: the base scenario's text, comments and all, with the generated
//! faults among its own.
//!
//! The runner fires a scenario's faults in file order, each waiting for its trigger (a `when`
//! is watched from the moment the fault before it fired). So the generated faults go in time
//! order, each just before the first scripted `at` fault that fires later, and never inside a
//! chain of `when` faults: what a scripted `when` watches from is unchanged. A generated fault
//! placed after a `when` chain fires at its time or when the chain has fired, whichever is
//! later.

use toml_edit::{ArrayOfTables, DocumentMut, Item, Table, Value};

use super::fault::Fault;
use crate::scenario::{Scenario, Trigger};

/// What a case's file says besides its faults.
#[derive(Clone, Debug, Default)]
pub struct Header {
    /// Comment lines at the top, without their `# `.
    pub comment: Vec<String>,
    /// A new `name` (the minimal file names its own reports' folder).
    pub name: Option<String>,
    /// The run's seed, so `samsa run FILE` alone reproduces it.
    pub seed: Option<u64>,
    /// Switch the cluster's fault points on (`buggify = true`); off leaves the base's own.
    pub buggify: bool,
}

/// The base scenario (its text and what it parsed to) with `faults` added.
pub fn render_case(
    base_text: &str,
    base: &Scenario,
    faults: &[Fault],
    header: &Header,
) -> Result<String, String> {
    let mut doc: DocumentMut = base_text
        .parse()
        .map_err(|e| format!("the scenario is not TOML: {e}"))?;
    let scripted = match doc.remove("fault") {
        None => Vec::new(),
        Some(item) => fault_tables(item)?,
    };
    if scripted.len() != base.faults.len() {
        return Err(format!(
            "the scenario has {} [[fault]] tables, parsed as {} faults",
            scripted.len(),
            base.faults.len()
        ));
    }
    if let Some(name) = &header.name {
        doc["name"] = toml_edit::value(name.as_str());
    }
    if header.buggify {
        doc["buggify"] = toml_edit::value(true);
    }
    if let Some(seed) = header.seed {
        let seed = i64::try_from(seed).map_err(|_| format!("seed {seed} is above i64::MAX"))?;
        doc["seed"] = toml_edit::value(seed);
    }

    let mut generated: Vec<&Fault> = faults.iter().collect();
    generated.sort_by_key(|f| f.at_ms);
    let mut generated = generated.into_iter().peekable();
    let mut blocks = Vec::new();
    for (table, spec) in scripted.into_iter().zip(&base.faults) {
        if let Trigger::At(at_ms) = spec.trigger {
            while let Some(fault) = generated.next_if(|f| f.at_ms < at_ms) {
                blocks.push(fault.to_toml());
            }
        }
        blocks.push(table_text(table));
    }
    blocks.extend(generated.map(Fault::to_toml));

    let mut text = String::new();
    for line in &header.comment {
        text.push_str(format!("# {line}").trim_end());
        text.push('\n');
    }
    if !header.comment.is_empty() {
        text.push('\n');
    }
    text.push_str(doc.to_string().trim_end());
    text.push('\n');
    for block in blocks {
        text.push('\n');
        text.push_str(block.trim_start_matches('\n'));
    }
    Ok(text)
}

/// The `[[fault]]` tables of the base, in file order.
fn fault_tables(item: Item) -> Result<Vec<Table>, String> {
    match item {
        Item::ArrayOfTables(tables) => Ok(tables.into_iter().collect()),
        Item::Value(Value::Array(array)) => array
            .into_iter()
            .map(|value| match value {
                Value::InlineTable(table) => Ok(table.into_table()),
                _ => Err("`fault` must be an array of tables".to_string()),
            })
            .collect(),
        _ => Err("`fault` must be an array of tables".into()),
    }
}

/// One scripted fault as it was written: its comments, then `[[fault]]` and its keys.
fn table_text(table: Table) -> String {
    let mut tables = ArrayOfTables::new();
    tables.push(table);
    let mut doc = DocumentMut::new();
    doc.insert("fault", Item::ArrayOfTables(tables));
    doc.to_string()
}
