//! Dynamic shell completions (clap_complete's environment-driven engine:
//! `COMPLETE=bash secretsync` prints the shell's hook, and the shell then
//! asks the binary itself): secret and target names come from the manifest
//! (`-f`/`--manifest` on the line being completed, else
//! `SECRETSYNC_MANIFEST`, else `secrets.yaml`). Only names are read: the
//! manifest is never decrypted, and nothing is contacted.

use std::path::PathBuf;

use clap_complete::engine::CompletionCandidate;

/// The manifest the line being completed names.
fn manifest_path() -> PathBuf {
    let args: Vec<String> = std::env::args().collect();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "-f" || a == "--manifest" {
            if let Some(p) = it.next() {
                return PathBuf::from(p);
            }
        } else if let Some(p) = a.strip_prefix("--manifest=") {
            return PathBuf::from(p);
        }
    }
    std::env::var_os("SECRETSYNC_MANIFEST")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("secrets.yaml"))
}

fn manifest() -> Option<secretsync::manifest::Manifest> {
    secretsync::manifest::load(&manifest_path()).ok()
}

/// The manifest's secret names.
pub(crate) fn secrets() -> Vec<CompletionCandidate> {
    manifest()
        .map(|m| {
            m.secrets
                .values()
                .map(|s| CompletionCandidate::new(&s.name).help(Some(s.targets.join(", ").into())))
                .collect()
        })
        .unwrap_or_default()
}

/// The manifest's target names.
pub(crate) fn targets() -> Vec<CompletionCandidate> {
    manifest()
        .map(|m| {
            m.targets
                .iter()
                .map(|(name, spec)| {
                    CompletionCandidate::new(name).help(Some(spec.type_name().to_string().into()))
                })
                .collect()
        })
        .unwrap_or_default()
}
