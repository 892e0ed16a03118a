//! Generates `kafka-protocol/src/messages/` from Kafka's JSON message schemas.
//!
//! [`generate`] is pure (schemas in, file contents out), so a test can
//! regenerate in memory and compare with the committed files.

mod emit;
mod index;
mod model;
mod schema;
mod versions;

use std::collections::BTreeMap;
use std::path::Path;

pub use emit::HEADER_LINE;

/// Reads every `*.json` schema in `schema_dir` and returns the generated
/// files, keyed by file name (`mod.rs`, `fetch_request.rs`, ...).
pub fn generate(schema_dir: &Path) -> Result<BTreeMap<String, String>, String> {
    let mut paths: Vec<_> = std::fs::read_dir(schema_dir)
        .map_err(|e| format!("{}: {e}", schema_dir.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    paths.sort();
    if paths.is_empty() {
        return Err(format!("no schemas in {}", schema_dir.display()));
    }
    let mut messages = Vec::new();
    for path in &paths {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .ok_or_else(|| format!("{}: bad file name", path.display()))?;
        messages.push(schema::parse(stem, &text)?);
    }
    let mut files = BTreeMap::new();
    for message in &messages {
        files.insert(
            format!("{}.rs", emit::module_name(message)),
            emit::message_file(message)?,
        );
    }
    files.insert("mod.rs".to_string(), index::mod_file(&messages)?);
    Ok(files)
}
