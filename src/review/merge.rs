//! The review's manifest: the base's target definitions and fingerprint
//! key with the head's secrets; which targets may be contacted and why the
//! others are not.

use super::*;

/// Opens the engine for a review of the manifest in `opts` against `base`:
/// it reads only the targets whose definition is the same in both.
pub fn open(opts: &Options, base: &str) -> Result<(Engine, Review), Error> {
    let source = BaseSource::parse(base)?;
    let head = manifest::load(&opts.manifest)?;
    let Base {
        manifest: base_manifest,
        label,
        commit,
    } = load_base(&source, &opts.manifest)?;
    let checkout = checkout_of(&opts.manifest);

    // A target removed by the change is still one to review.
    // With environments, a target's name stands for its every instance.
    let names: Vec<String> = opts
        .targets
        .iter()
        .flat_map(|t| {
            let mut instances: Vec<String> = head
                .instances
                .iter()
                .chain(base_manifest.instances.iter())
                .filter(|(_, i)| i.target == *t)
                .map(|(n, _)| n.clone())
                .collect();
            instances.dedup();
            if instances.is_empty() {
                vec![t.clone()]
            } else {
                instances
            }
        })
        .collect();
    let selection = crate::selection::Selection::checked(
        &names,
        |t| head.targets.contains_key(t) || base_manifest.targets.contains_key(t),
        head.targets.keys().map(String::as_str),
        crate::selection::Wording::InFile(&opts.manifest),
    )?;
    let selected = |name: &str| selection.contains(name);

    // With environments, an instance's definition is its target's fields
    // and its environment's overrides, each side's own (#27).
    let head_fields = instance_fields(&head, raw_fields(&head.source));
    let base_fields = instance_fields(&base_manifest, raw_fields(&base_manifest.source));
    let mut contacted: IndexMap<String, TargetSpec> = IndexMap::new();
    let mut not_contacted = Vec::new();
    let secrets_on = |name: &str| -> Vec<String> {
        head.secrets
            .values()
            .filter(|s| s.targets.iter().any(|t| t == name))
            .map(|s| s.name.clone())
            .collect()
    };
    for (name, spec) in &head.targets {
        if !selected(name) {
            continue;
        }
        let before = base_manifest.targets.get(name);
        let (h, b) = (head_fields.get(name), base_fields.get(name));
        let same = before == Some(spec) && h.is_some() && h == b;
        if same {
            // The definition is the base's; the files it reads must be too.
            let files = checkout.as_deref().map_or_else(Vec::new, |root| {
                head_written_files(spec, &head.dir(), root, commit.as_deref())
            });
            if files.is_empty() {
                contacted.insert(name.clone(), spec.clone());
            } else {
                not_contacted.push(NotContacted {
                    name: name.clone(),
                    kind: spec.type_name(),
                    change: TargetChange::FilesChanged,
                    secrets: secrets_on(name),
                    files,
                    diff: String::new(),
                });
            }
            continue;
        }
        not_contacted.push(NotContacted {
            name: name.clone(),
            kind: spec.type_name(),
            change: if before.is_none() {
                TargetChange::New
            } else {
                TargetChange::Changed
            },
            secrets: secrets_on(name),
            files: Vec::new(),
            diff: definition_diff(name, b, h),
        });
    }
    for (name, spec) in &base_manifest.targets {
        if selected(name) && !head.targets.contains_key(name) {
            not_contacted.push(NotContacted {
                name: name.clone(),
                kind: spec.type_name(),
                change: TargetChange::Removed,
                secrets: Vec::new(),
                files: Vec::new(),
                diff: definition_diff(name, base_fields.get(name), None),
            });
        }
    }

    let identities = crypto::find_identities(opts.identity.as_deref()).ok();
    let fingerprints_hidden = fingerprint_key_change(&base_manifest, &head, identities.as_ref());
    // A value per environment is compared as `NAME@ENV` (a value moved
    // from one environment to another is a copy of the other's ciphertext).
    let (secrets, head_clear) = value_changes(
        &base_manifest.values_split(),
        &head.values_split(),
        identities.as_ref(),
    )?;
    // The values this change chose: no fingerprint of theirs under the
    // base's key may be shown (it would test the author's guesses).
    let chosen: BTreeSet<String> = secrets
        .iter()
        .filter(|s| !matches!(s.value, ValueChange::Unchanged | ValueChange::Removed))
        .map(|s| manifest::environments::secret_of(&s.name, &head, &base_manifest))
        .collect();

    // The manifest the engine plans: the base's definitions of the targets
    // both agree on, the head's secrets on those targets.
    let planned = Manifest {
        path: head.path.clone(),
        source: head.source.clone(),
        recipients: head.recipients.clone(),
        // Like `previous`, keyed fingerprints the head's author cannot
        // compute without the base's key.
        removed: head.removed.clone(),
        rotate_every: head.rotate_every,
        fingerprint_key: if fingerprints_hidden.is_some() {
            None
        } else {
            base_manifest.fingerprint_key.clone()
        },
        secrets: head
            .secrets
            .values()
            .map(|s| {
                let def = SecretDef {
                    targets: s
                        .targets
                        .iter()
                        .filter(|t| contacted.contains_key(t.as_str()))
                        .cloned()
                        .collect(),
                    ..s.clone()
                };
                (s.name.clone(), def)
            })
            .collect(),
        targets: contacted,
        // Who can read each environment is the base's word, as targets are.
        environments: base_manifest.environments.clone(),
        instances: head.instances.clone(),
    };
    let engine_opts = Options {
        targets: Vec::new(),
        ..opts.clone()
    };
    // Each value decrypted once: those compared above are handed over.
    let mut engine = Engine::with_values(&engine_opts, planned, head_clear)?;
    engine.hide_fingerprints_of(chosen.clone());
    Ok((
        engine,
        Review {
            base: label,
            base_kind: match source {
                BaseSource::Git(_) => "git",
                BaseSource::File(_) => "file",
            },
            base_commit: commit,
            fingerprints_hidden,
            chosen,
            recipients_added: recipients_diff(&head, &base_manifest)
                .into_iter()
                .chain(manifest::environments::recipients_diff(
                    &head,
                    &base_manifest,
                ))
                .collect(),
            recipients_removed: recipients_diff(&base_manifest, &head)
                .into_iter()
                .chain(manifest::environments::recipients_diff(
                    &base_manifest,
                    &head,
                ))
                .collect(),
            not_contacted,
            secrets,
        },
    ))
}

/// The files on this machine that `spec` reads and the change under review
/// could have written: inside the checkout (or reached through a link in
/// it) and not byte for byte the base's. Each as `PATH: why`.
pub(super) fn head_written_files(
    spec: &TargetSpec,
    dir: &Path,
    root: &Path,
    commit: Option<&str>,
) -> Vec<String> {
    spec.local_files(dir)
        .into_iter()
        .filter_map(|p| {
            file_change(&p, root, commit).map(|why| format!("{}: {why}", neutral::path(&p)))
        })
        .collect()
}

/// `.` and `..` taken out of an absolute path, without touching the disk.
pub(super) fn lexical(p: &Path) -> PathBuf {
    let abs = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(p)
    };
    let mut out = PathBuf::new();
    for c in abs.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            c => out.push(c),
        }
    }
    out
}

/// Why the file at `p` is the change's rather than the base's, if it is.
pub(super) fn file_change(p: &Path, root: &Path, commit: Option<&str>) -> Option<&'static str> {
    let lex = lexical(p);
    let real = std::fs::canonicalize(&lex).ok();
    let lex_inside = lex.starts_with(root);
    let real_inside = real.as_ref().is_some_and(|r| r.starts_with(root));
    if !lex_inside && !real_inside {
        return None;
    }
    if real.as_ref().is_some_and(|r| *r != lex) {
        return Some("a symlink (or under one) in the checkout");
    }
    let rel = lex.strip_prefix(root).ok()?.to_string_lossy().into_owned();
    let exists = std::fs::symlink_metadata(&lex).is_ok();
    let Some(commit) = commit else {
        return exists
            .then_some("in the checkout, and a file base gives nothing to compare it with");
    };
    let entry = git(root, &["ls-tree", commit, "--", &rel], "").unwrap_or_default();
    let entry = String::from_utf8_lossy(&entry);
    match (exists, entry.trim().is_empty()) {
        (false, true) => None,
        (false, false) => Some("removed by this change"),
        (true, true) => Some("added by this change"),
        (true, false) => {
            if !entry.starts_with("100") {
                return Some("not a regular file at the base");
            }
            let Ok(head) = crate::targets::file::read_regular(&lex) else {
                return Some("not a regular file of at most 16 MiB");
            };
            let Ok(base) = git(root, &["cat-file", "blob", &format!("{commit}:{rel}")], "") else {
                return Some("not readable at the base");
            };
            let base = zeroize::Zeroizing::new(base);
            (head.as_deref().map(|h| h.as_slice()) != Some(base.as_slice()))
                .then_some("modified by this change")
        }
    }
}

/// The recipients of `a` that `b` does not list.
pub(super) fn recipients_diff(a: &Manifest, b: &Manifest) -> Vec<String> {
    let theirs: BTreeSet<String> = b.recipients.iter().map(ToString::to_string).collect();
    a.recipients
        .iter()
        .map(ToString::to_string)
        .filter(|r| !theirs.contains(r))
        .collect()
}
