//! A target's definition as written, and the diff shown for one that the
//! change adds, changes or removes.

use super::*;

/// A scalar of a target definition, as written.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(untagged)]
pub(super) enum Field {
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    /// A target's `environments: [..]`.
    List(Vec<String>),
}

/// The definitions of `m`'s targets by the names the plan uses: as written,
/// or per instance (`TARGET@ENV`) the target's fields with its
/// environment's overrides in their place.
pub(super) fn instance_fields(
    m: &Manifest,
    raw: IndexMap<String, IndexMap<String, Field>>,
) -> IndexMap<String, IndexMap<String, Field>> {
    if !m.has_environments() {
        return raw;
    }
    let mut out = IndexMap::new();
    for (name, i) in &m.instances {
        let Some(base) = raw.get(&i.target) else {
            continue;
        };
        let mut fields = base.clone();
        if let Some(o) = m
            .environments
            .get(&i.env)
            .and_then(|e| e.overrides.get(&i.target))
        {
            for (k, v) in o {
                fields.insert(k.clone(), Field::Str(v.clone().unwrap_or_default()));
            }
        }
        out.insert(name.clone(), fields);
    }
    out
}

#[derive(Deserialize)]
pub(super) struct RawTargets {
    #[serde(default)]
    targets: IndexMap<String, IndexMap<String, Field>>,
}

/// Each target's fields as written (the manifest loaded, so this parses).
pub(super) fn raw_fields(source: &str) -> IndexMap<String, IndexMap<String, Field>> {
    serde_saphyr::from_str::<RawTargets>(source)
        .map(|r| r.targets)
        .unwrap_or_default()
}

/// A definition as lines `field: "value"`: values JSON-quoted, so that no
/// newline or control character of the manifest reaches the output raw.
pub(super) fn definition_lines(fields: Option<&IndexMap<String, Field>>) -> String {
    let Some(fields) = fields else {
        return String::new();
    };
    let mut out = String::new();
    for (k, v) in fields {
        let value = match v {
            Field::Str(s) => serde_json::to_string(s).unwrap_or_default(),
            other => serde_json::to_string(other).unwrap_or_default(),
        };
        out.push_str(&format!(
            "{}: {value}\n",
            serde_json::to_string(k)
                .unwrap_or_default()
                .trim_matches('"')
        ));
    }
    out
}

pub(super) fn definition_diff(
    name: &str,
    base: Option<&IndexMap<String, Field>>,
    head: Option<&IndexMap<String, Field>>,
) -> String {
    let (a, b) = (definition_lines(base), definition_lines(head));
    let quoted = serde_json::to_string(name).unwrap_or_default();
    let from = if base.is_some() {
        format!("base targets.{quoted}")
    } else {
        "/dev/null (not in base)".to_string()
    };
    let to = if head.is_some() {
        format!("head targets.{quoted}")
    } else {
        "/dev/null (removed in head)".to_string()
    };
    similar::TextDiff::from_lines(&a, &b)
        .unified_diff()
        .context_radius(100)
        .header(&from, &to)
        .missing_newline_hint(false)
        .to_string()
}
