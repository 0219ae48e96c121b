//! Whether a secret's targets can hold a value, asked when the value comes
//! in (`set`, `import`, `rotate`) rather than later at plan time, where a
//! value no target of its kind can hold (a CR for an env file, a newline for
//! a keychain) would block every other key of the target.
//!
//! The answer is each target's own [`Target::check_value`], the same check
//! `plan` makes before anything is written.

use crate::error::Error;
use crate::manifest::Manifest;
use crate::secret::Secret;
use crate::targets::{Context, Target};

/// The targets of secret `name` (those in the manifest plus `extra`, for a
/// new secret) that cannot hold `value`, each with why. Never the value.
pub fn refusals(
    manifest: &Manifest,
    name: &str,
    extra: &[String],
    value: &Secret,
) -> Vec<(String, String)> {
    let mut names: Vec<&String> = manifest
        .secrets
        .get(name)
        .map(|s| s.targets.iter().collect())
        .unwrap_or_default();
    names.extend(
        extra
            .iter()
            .filter(|t| !names.contains(t))
            .collect::<Vec<_>>(),
    );
    // With environments, a target named as written stands for its instances.
    let instances: Vec<&String> = names
        .iter()
        .flat_map(|t| {
            manifest
                .instances
                .iter()
                .filter(move |(_, i)| i.target == **t)
                .map(|(n, _)| n)
        })
        .collect();
    names.extend(
        instances
            .into_iter()
            .filter(|i| !names.contains(i))
            .collect::<Vec<_>>(),
    );
    let ctx = Context::new(manifest.dir());
    let mut out = Vec::new();
    for t in names {
        let Some(spec) = manifest.targets.get(t) else {
            continue;
        };
        // A target that cannot be built here (no HOME for `~/`) is checked
        // at plan time instead.
        let Ok(built) = spec.build(t, &ctx) else {
            continue;
        };
        let built: Box<dyn Target> = built;
        if let Err(why) = built.check_value(value) {
            out.push((t.clone(), why));
        }
    }
    out
}

/// `Err` naming every target of `name` that cannot hold `value`.
pub fn check(
    manifest: &Manifest,
    name: &str,
    extra: &[String],
    value: &Secret,
) -> Result<(), Error> {
    let refused = refusals(manifest, name, extra, value);
    if refused.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = refused
        .iter()
        .map(|(t, why)| format!("  {t}: {why}"))
        .collect();
    Err(Error::usage(
        format!(
            "the value of `{name}` cannot be held by {} of its targets; nothing was stored:\n{}",
            refused.len(),
            list.join("\n")
        ),
        "change the value, keep this secret off those targets, or (env files) set the target's `format:` to the program that reads the file",
    ))
}
