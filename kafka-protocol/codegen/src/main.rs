//! `cargo run -p kafka-protocol-codegen [SCHEMA_DIR [OUT_DIR]]`
//!
//! Defaults: `../shared/kafka-protocol/messages` beside the workspace, and
//! `kafka-protocol/src/messages`. Generated files that no schema produces
//! any more are removed.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut args = std::env::args_os().skip(1);
    let schemas = args
        .next()
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("../shared/kafka-protocol/messages"));
    let out = args
        .next()
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("kafka-protocol/src/messages"));
    let files = match kafka_protocol_codegen::generate(&schemas) {
        Ok(files) => files,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = write(&out, &files) {
        eprintln!("error: {}: {e}", out.display());
        return ExitCode::FAILURE;
    }
    println!("wrote {} files to {}", files.len(), out.display());
    ExitCode::SUCCESS
}

fn write(
    out: &std::path::Path,
    files: &std::collections::BTreeMap<String, String>,
) -> std::io::Result<()> {
    std::fs::create_dir_all(out)?;
    for entry in std::fs::read_dir(out)? {
        let path = entry?.path();
        let stale = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|name| name.ends_with(".rs") && !files.contains_key(name));
        if stale && std::fs::read_to_string(&path)?.contains(kafka_protocol_codegen::HEADER_LINE) {
            std::fs::remove_file(&path)?;
        }
    }
    for (name, text) in files {
        std::fs::write(out.join(name), text)?;
    }
    Ok(())
}
