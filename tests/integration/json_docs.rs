//! docs/json-output.md held against the binary: every JSON example in it is
//! JSON, and each names only fields the real document of its kind has (with
//! the same `format_version`); the top-level members of a real document are
//! all in its example (or in a documented member's own example). The saved
//! plan's version is the one `plan --out` writes. So the doc cannot rot.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

use crate::support::cli::{run, secretsync_cmd, Sandbox};

/// Members that only some runs have (`review`: with `plan --base`), not
/// held against this fixture.
const ONLY_WITH_BASE: &[&str] = &["review"];

/// Fields the example leaves out: members with an example of their own
/// (`lifecycle`) or only in some runs (`review`).
const OPTIONAL: &[&str] = &["lifecycle", "review"];

fn doc() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/json-output.md"))
        .unwrap()
}

/// The ```json blocks of the doc, parsed: a whole document, or a member
/// (`"lifecycle": {…}`) as a one-member object.
fn examples(text: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("```json\n") {
        let body = &rest[start + 8..];
        let end = body.find("\n```").expect("a closed json block");
        let block = &body[..end];
        rest = &body[end..];
        let parsed = serde_json::from_str::<Value>(block)
            .or_else(|_| serde_json::from_str::<Value>(&format!("{{{block}}}")));
        match parsed {
            Ok(v) => out.push(v),
            Err(e) => panic!("a JSON example of docs/json-output.md is not JSON ({e}):\n{block}"),
        }
    }
    out
}

/// The keys an object (or every object of an array) has, merged: arrays
/// hold items of one shape, some of whose fields are optional.
fn merged(v: &Value) -> Option<serde_json::Map<String, Value>> {
    match v {
        Value::Object(o) => Some(o.clone()),
        Value::Array(items) => {
            let mut all = serde_json::Map::new();
            for item in items {
                for (k, v) in merged(item)? {
                    match all.get_mut(&k) {
                        // Merge nested shapes too (a `rotation` in one item,
                        // `expires` in another).
                        Some(have) if have.is_object() || have.is_array() => {
                            let mut both = vec![have.clone(), v];
                            if let (Some(a), Some(b)) = (merged(&both[0]), merged(&both[1])) {
                                let mut m = a;
                                m.extend(b);
                                *have = Value::Object(m);
                            } else {
                                *have = both.remove(0);
                            }
                        }
                        Some(_) => {}
                        None => {
                            all.insert(k, v);
                        }
                    }
                }
            }
            Some(all)
        }
        _ => None,
    }
}

/// The example and the real document have the same fields at every place
/// (items of an array merged), but for [`OPTIONAL`] ones; an object whose
/// example holds `…` elides the rest.
fn names_only_real_fields(example: &Value, real: &Value, at: &str, wrong: &mut Vec<String>) {
    let (Some(ex), Some(re)) = (merged(example), merged(real)) else {
        return;
    };
    if !ex.contains_key("…") {
        for k in re.keys() {
            if !ex.contains_key(k) && !OPTIONAL.contains(&k.as_str()) {
                wrong.push(format!("{at}.{k}: in the output, not in the doc's example"));
            }
        }
    }
    for (k, v) in &ex {
        if k == "…" {
            continue;
        }
        match re.get(k) {
            None => wrong.push(format!("{at}.{k}: in the doc, not in the output")),
            Some(r) => names_only_real_fields(v, r, &format!("{at}.{k}"), wrong),
        }
    }
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default()
}

/// A manifest with something for every field: drift and a failing target,
/// an expired secret and one due for rotation, a plain value that looks
/// like a token.
fn fixture() -> Sandbox {
    let sb = Sandbox::new();
    std::fs::create_dir(sb.path("dir.env")).unwrap();
    sb.write("drift.env", "A=old\nEXTRA=1\n");
    sb.write(
        "secrets.yaml",
        &format!(
            "{}targets:\n  drift: {{ type: env_file, path: drift.env, prune: true }}\n  broken: {{ type: env_file, path: dir.env }}\nsecrets:\n  A:\n    targets: [drift, broken]\n    expires: 2020-01-01\n    encrypted: |\n{}  B:\n    targets: [drift]\n    rotate_every: 30d\n    set_on: \"2020-01-01\"\n    encrypted: |\n{}  LOG_LEVEL:\n    targets: [drift]\n    value: ghp_NotARealTokenBody0123456789abcdefXYZ\n",
            sb.header(),
            sb.encrypted("new-a", 6),
            sb.encrypted("new-b", 6),
        ),
    );
    sb
}

fn json_of(sb: &Sandbox, args: &[&str]) -> Value {
    let out = sb.run(args);
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{args:?}: {e}: {out:?}"))
}

#[test]
fn the_json_examples_name_the_real_fields() {
    let text = doc();
    let sb = fixture();
    let plan = json_of(&sb, &["plan", "--format", "json"]);
    let doctor = json_of(&sb, &["doctor", "--format", "json"]);
    let list = json_of(&sb, &["list", "--format", "json"]);
    let check = {
        let mut cmd = secretsync_cmd(sb.dir.path());
        cmd.args(["check", "--format", "json"]);
        let out = run(cmd);
        serde_json::from_str::<Value>(&out.stdout).unwrap()
    };
    let apply = json_of(&sb, &["apply", "--auto-approve", "--format", "json"]);
    sb.write("secrets.yaml", "version: 1\nrecipents: []\n");
    let error = json_of(&sb, &["plan", "--format", "json"]);
    let reals = [&plan, &doctor, &list, &check, &apply, &error];
    // The members with a section of their own, and where they are.
    let members = [("lifecycle", &plan["lifecycle"])];

    let mut wrong = Vec::new();
    let mut seen = BTreeSet::new();
    for example in examples(&text) {
        if let Some(kind) = example["kind"].as_str() {
            let real = reals
                .iter()
                .find(|r| r["kind"] == kind)
                .unwrap_or_else(|| panic!("no real `{kind}` document to hold the doc against"));
            seen.insert(kind.to_string());
            if example["format_version"] != real["format_version"] {
                wrong.push(format!(
                    "{kind}: format_version {} in the doc, {} in the output",
                    example["format_version"], real["format_version"]
                ));
            }
            names_only_real_fields(&example, real, kind, &mut wrong);
        } else {
            let name = keys(&example).into_iter().next().unwrap();
            if ONLY_WITH_BASE.contains(&name.as_str()) {
                continue;
            }
            let (_, real) = members
                .iter()
                .find(|(m, _)| *m == name)
                .unwrap_or_else(|| panic!("the doc's member `{name}` is held against nothing"));
            seen.insert(name.clone());
            names_only_real_fields(&example[&name], real, &name, &mut wrong);
        }
    }
    assert!(
        wrong.is_empty(),
        "docs/json-output.md is not true:\n{}",
        wrong.join("\n")
    );
    for kind in ["plan", "lifecycle", "error", "apply", "doctor", "check"] {
        assert!(
            seen.contains(kind),
            "the doc has no `{kind}` example any more"
        );
    }
    // The kinds the doc lists are those the output uses.
    assert_eq!(error["error"]["kind"], "manifest");
    assert!(error["error"]["hint"].is_string(), "{error}");
}

#[test]
fn the_saved_plan_version_is_the_one_written() {
    let text = doc();
    let said = text
        .split("its own `format_version`, now `")
        .nth(1)
        .and_then(|r| r.split('`').next())
        .expect("the doc says the saved plan's version");
    let sb = fixture();
    let out = sb.run(&["plan", "-t", "drift", "--out", "saved.json"]);
    assert!(sb.path("saved.json").exists(), "{out:?}");
    let saved: Value = serde_json::from_str(&sb.read("saved.json")).unwrap();
    assert_eq!(saved["kind"], "saved_plan");
    assert_eq!(saved["format_version"].to_string(), said);
}
