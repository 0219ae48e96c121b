//! The layers of docs/architecture.md, held against the code: every module
//! path a library file names (`use crate::…`, `crate::…` inline, `super::…`)
//! must point down the declared order or stay in its own layer, and no two
//! components may depend on each other in a circle. There is no list of
//! exceptions: issue #26 removed the last import that pointed up, so any new
//! one fails with its file and line.
//!
//! Paths are read as text, comments and string literals left out; that is
//! all `rustc` itself would resolve here, since the library has no macros
//! that name modules.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layers, lowest first. A component is a module path; a file belongs to
/// the longest component that prefixes its own module path.
const LAYERS: &[(&str, &[&str])] = &[
    (
        "leaves",
        &[
            "secret",
            "environ",
            "envkey",
            "fsutil",
            "notice",
            "ci",
            "lock",
            "time",
            "neutral",
            "signals",
            "writelock",
            "redact",
            "credential",
        ],
    ),
    (
        "services",
        &["crypto", "envfile", "remote", "undecryptable", "liveness"],
    ),
    ("seam", &["targets"]),
    (
        "backends",
        &[
            "targets::env_file",
            "targets::ssh_env",
            "targets::keychain",
            "targets::railway",
            "targets::scripts",
            "targets::live_unit",
        ],
    ),
    ("registry", &["targets::registry"]),
    ("manifest", &["manifest", "error", "generate"]),
    ("plan", &["plan", "selection"]),
    ("run", &["engine", "apply", "saved", "edit", "holdable"]),
    (
        "views",
        &[
            "review",
            "check",
            "lifecycle",
            "render",
            "notify",
            "markdown",
            "gitignore",
            "environments",
            "compare",
        ],
    ),
];

fn layer_of(component: &str) -> usize {
    LAYERS
        .iter()
        .position(|(_, cs)| cs.contains(&component))
        .unwrap_or_else(|| panic!("{component} is in no layer of LAYERS"))
}

/// The component a module path belongs to (the longest that prefixes it).
fn component_of(path: &[String]) -> Option<&'static str> {
    LAYERS
        .iter()
        .flat_map(|(_, cs)| cs.iter().copied())
        .filter(|c| {
            let segs: Vec<&str> = c.split("::").collect();
            segs.len() <= path.len() && segs.iter().zip(path).all(|(a, b)| *a == b)
        })
        .max_by_key(|c| c.len())
}

/// `src/targets/railway/api.rs` → `targets::railway::api`.
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut segs: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if segs.last().is_some_and(|s| s == "mod" || s == "lib") {
        segs.pop();
    }
    segs
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code with comments, string and char literals blanked (newlines kept,
/// so line numbers stay right).
fn code_only(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let blank = |out: &mut String, c: u8| out.push(if c == b'\n' { '\n' } else { ' ' });
    while i < b.len() {
        if b[i..].starts_with(b"//") {
            while i < b.len() && b[i] != b'\n' {
                out.push(' ');
                i += 1;
            }
        } else if b[i..].starts_with(b"/*") {
            let mut depth = 0;
            while i < b.len() {
                if b[i..].starts_with(b"/*") {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if b[i..].starts_with(b"*/") {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    blank(&mut out, b[i]);
                    i += 1;
                }
            }
        } else if b[i] == b'r' && (b[i + 1..].starts_with(b"\"") || b[i + 1..].starts_with(b"#")) {
            // A raw string r"…" or r#"…"#.
            let hashes = b[i + 1..].iter().take_while(|&&c| c == b'#').count();
            if b.get(i + 1 + hashes) != Some(&b'"') {
                out.push('r');
                i += 1;
                continue;
            }
            let close: Vec<u8> = std::iter::once(b'"')
                .chain(std::iter::repeat_n(b'#', hashes))
                .collect();
            let start = i + 2 + hashes;
            let end = b[start..]
                .windows(close.len())
                .position(|w| w == close.as_slice())
                .map_or(b.len(), |p| start + p + close.len());
            for &c in &b[i..end] {
                blank(&mut out, c);
            }
            i = end;
        } else if b[i] == b'"' {
            out.push(' ');
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' {
                    blank(&mut out, b[i]);
                    i += 1;
                }
                if i < b.len() {
                    blank(&mut out, b[i]);
                    i += 1;
                }
            }
            out.push(' ');
            i += 1;
        } else if b[i] == b'\'' && b.get(i + 2) == Some(&b'\'') {
            out.push_str("   ");
            i += 3;
        } else if b[i] == b'\'' && b.get(i + 1) == Some(&b'\\') {
            // '\n', '\'', '\u{…}'
            let end = b[i + 2..]
                .iter()
                .position(|&c| c == b'\'')
                .map_or(b.len(), |p| i + 3 + p);
            for &c in &b[i..end] {
                blank(&mut out, c);
            }
            i = end;
        } else {
            // Keep multi-byte characters whole.
            let ch = text[i..].chars().next().unwrap();
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Expands a use tree (`a::{b, c::{d, e}}`) into its paths.
fn expand_use(tree: &str) -> Vec<Vec<String>> {
    fn parse(s: &[char], i: &mut usize, prefix: &[String], out: &mut Vec<Vec<String>>) {
        let mut path = prefix.to_vec();
        loop {
            while *i < s.len() && s[*i].is_whitespace() {
                *i += 1;
            }
            if *i < s.len() && s[*i] == '{' {
                *i += 1;
                loop {
                    parse(s, i, &path, out);
                    while *i < s.len() && s[*i].is_whitespace() {
                        *i += 1;
                    }
                    if *i < s.len() && s[*i] == ',' {
                        *i += 1;
                        continue;
                    }
                    if *i < s.len() && s[*i] == '}' {
                        *i += 1;
                    }
                    return;
                }
            }
            let start = *i;
            while *i < s.len() && (is_ident(s[*i]) || s[*i] == '*') {
                *i += 1;
            }
            let seg: String = s[start..*i].iter().collect();
            if seg.is_empty() {
                // `}` of an empty group, or the end.
                if path.len() > prefix.len() {
                    out.push(path);
                }
                return;
            }
            path.push(seg);
            while *i < s.len() && s[*i].is_whitespace() {
                *i += 1;
            }
            if s[*i..].starts_with(&[':', ':']) {
                *i += 2;
                continue;
            }
            // `as name`, then `,` `}` or the end.
            let rest: String = s[*i..].iter().take(3).collect();
            if rest.starts_with("as") && rest.chars().nth(2).is_some_and(char::is_whitespace) {
                *i += 2;
                while *i < s.len() && s[*i].is_whitespace() {
                    *i += 1;
                }
                while *i < s.len() && is_ident(s[*i]) {
                    *i += 1;
                }
            }
            out.push(path);
            return;
        }
    }
    let chars: Vec<char> = tree.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        parse(&chars, &mut i, &[], &mut out);
        while i < chars.len() && (chars[i] == ',' || chars[i].is_whitespace()) {
            i += 1;
        }
        if i < chars.len() && !is_ident(chars[i]) && chars[i] != '{' {
            break;
        }
    }
    out
}

/// Every module path a file names, absolute, with its line.
fn paths_named(module: &[String], code: &str) -> Vec<(usize, Vec<String>)> {
    let line_of = |pos: usize| code[..pos].matches('\n').count() + 1;
    let absolute = |mut segs: Vec<String>| -> Option<Vec<String>> {
        let mut base: Vec<String> = match segs.first()?.as_str() {
            "crate" => Vec::new(),
            "super" | "self" => module.to_vec(),
            _ => return None,
        };
        if segs[0] == "crate" {
            segs.remove(0);
        }
        while segs.first().is_some_and(|s| s == "super" || s == "self") {
            if segs.remove(0) == "super" {
                base.pop()?;
            }
        }
        base.extend(segs);
        Some(base)
    };
    let mut found = Vec::new();
    // `use` items (their trees may span lines).
    let mut rest = 0;
    while let Some(p) = code[rest..].find("use ") {
        let at = rest + p;
        rest = at + 4;
        if at > 0 && is_ident(code[..at].chars().last().unwrap()) {
            continue;
        }
        let Some(end) = code[at..].find(';') else {
            break;
        };
        let tree = &code[at + 4..at + end];
        for path in expand_use(tree) {
            if let Some(abs) = absolute(path).filter(|a| !a.is_empty()) {
                found.push((line_of(at), abs));
            }
        }
    }
    // Inline paths: `crate::a::b`, `super::x`.
    for anchor in ["crate::", "super::"] {
        let mut rest = 0;
        while let Some(p) = code[rest..].find(anchor) {
            let at = rest + p;
            rest = at + anchor.len();
            if at > 0 && is_ident(code[..at].chars().last().unwrap()) {
                continue;
            }
            let tail: String = code[at..]
                .chars()
                .take_while(|&c| is_ident(c) || c == ':')
                .collect();
            let segs: Vec<String> = tail
                .split("::")
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect();
            if let Some(abs) = absolute(segs).filter(|a| !a.is_empty()) {
                found.push((line_of(at), abs));
            }
        }
    }
    found.sort();
    found.dedup();
    found
}

/// A file's code without its unit tests: a `mod tests` resolves `super::`
/// from one level deeper, and tests may use what they like.
fn without_tests(code: &str) -> &str {
    code.find("#[cfg(test)]\nmod ")
        .map_or(code, |at| &code[..at])
}

struct Edge {
    from: &'static str,
    to: &'static str,
    at: String,
}

fn library_edges() -> Vec<Edge> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut edges = Vec::new();
    for file in files {
        let module = module_of(&src, &file);
        // The binary (main.rs, cli.rs, commands/) is the face above every
        // layer: see `no_command_imports_another`.
        if matches!(
            module.first().map(String::as_str),
            Some("main" | "cli" | "commands" | "complete")
        ) || module.is_empty()
        {
            continue;
        }
        let from = component_of(&module)
            .unwrap_or_else(|| panic!("{} is in no component of LAYERS", file.display()));
        let code = code_only(&std::fs::read_to_string(&file).unwrap());
        for (line, path) in paths_named(&module, without_tests(&code)) {
            let Some(to) = component_of(&path) else {
                continue;
            };
            if to != from {
                let rel = file.strip_prefix(src.parent().unwrap()).unwrap();
                edges.push(Edge {
                    from,
                    to,
                    at: format!("{}:{line}", rel.display()),
                });
            }
        }
    }
    edges
}

#[test]
fn imports_point_down_the_layers() {
    let edges = library_edges();
    let mut wrong = Vec::new();
    for e in &edges {
        if layer_of(e.to) > layer_of(e.from) {
            wrong.push(format!(
                "{}: {} ({}) imports {} ({}), a higher layer",
                e.at,
                e.from,
                LAYERS[layer_of(e.from)].0,
                e.to,
                LAYERS[layer_of(e.to)].0
            ));
        }
    }
    wrong.dedup();
    assert!(
        wrong.is_empty(),
        "imports must point down (docs/architecture.md):\n{}",
        wrong.join("\n")
    );
}

#[test]
fn no_components_depend_on_each_other_in_a_circle() {
    let mut graph: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    let mut first_at: BTreeMap<(&str, &str), String> = BTreeMap::new();
    for e in library_edges() {
        graph.entry(e.from).or_default().insert(e.to);
        first_at.entry((e.from, e.to)).or_insert(e.at);
    }
    // A cycle exists iff some edge's target reaches its source.
    let reaches = |from: &str, to: &str| {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from];
        while let Some(n) = todo.pop() {
            if n == to {
                return true;
            }
            if seen.insert(n) {
                todo.extend(graph.get(n).into_iter().flatten().copied());
            }
        }
        false
    };
    let circular: Vec<String> = first_at
        .iter()
        .filter(|((a, b), _)| reaches(b, a))
        .map(|((a, b), at)| format!("{at}: {a} imports {b}, which leads back to {a}"))
        .collect();
    assert!(
        circular.is_empty(),
        "components in a circle:\n{}",
        circular.join("\n")
    );
}

/// Files, not only components, form no circle: inside a folder such as
/// `remote/` or `targets/keychain/`, one file may use another, and never
/// the other way round too. A folder's `mod.rs` is its face (it declares its
/// files and hands their names on), so a file reaching its own folder's
/// `mod.rs`, or `mod.rs` reaching its files, is not an edge here.
#[test]
fn no_files_depend_on_each_other_in_a_circle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let modules: BTreeMap<Vec<String>, PathBuf> = files
        .iter()
        .map(|f| (module_of(&src, f), f.clone()))
        .collect();
    let mut graph: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    let mut first_at: BTreeMap<(Vec<String>, Vec<String>), String> = BTreeMap::new();
    for (module, file) in &modules {
        let code = code_only(&std::fs::read_to_string(file).unwrap());
        for (line, path) in paths_named(module, without_tests(&code)) {
            // The file the path lands in: the longest module that prefixes it.
            let Some(to) = (1..=path.len())
                .rev()
                .map(|n| path[..n].to_vec())
                .find(|m| modules.contains_key(m))
            else {
                continue;
            };
            let face = to.len() <= module.len() && module.starts_with(&to);
            let child = module.len() < to.len() && to.starts_with(module);
            if to == *module || face || child {
                continue;
            }
            let rel = file.strip_prefix(src.parent().unwrap()).unwrap();
            graph.entry(module.clone()).or_default().insert(to.clone());
            first_at
                .entry((module.clone(), to))
                .or_insert(format!("{}:{line}", rel.display()));
        }
    }
    let reaches = |from: &Vec<String>, to: &Vec<String>| {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from.clone()];
        while let Some(n) = todo.pop() {
            if n == *to {
                return true;
            }
            if seen.insert(n.clone()) {
                todo.extend(graph.get(&n).into_iter().flatten().cloned());
            }
        }
        false
    };
    let circular: Vec<String> = first_at
        .iter()
        .filter(|((a, b), _)| reaches(b, a))
        .map(|((a, b), at)| {
            format!(
                "{at}: {} uses {}, which leads back to it",
                a.join("::"),
                b.join("::")
            )
        })
        .collect();
    assert!(
        circular.is_empty(),
        "files in a circle:\n{}",
        circular.join("\n")
    );
}

/// Commands that import a sibling today: none (what they share is in
/// commands/mod.rs). Kept so that a new one is a deliberate, visible entry.
const KNOWN_COMMAND_IMPORTS: &[(&str, &str)] = &[];

/// Commands are siblings: what two of them share lives in commands/mod.rs
/// or in the library, never in one command that the other imports.
#[test]
fn no_command_imports_another() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/commands");
    let mut files = Vec::new();
    rust_files(&dir, &mut files);
    let names: BTreeSet<String> = files
        .iter()
        .map(|f| f.file_stem().unwrap().to_string_lossy().into_owned())
        .filter(|n| n != "mod")
        .collect();
    let mut wrong = Vec::new();
    let mut used = BTreeSet::new();
    for file in &files {
        let me = file.file_stem().unwrap().to_string_lossy().into_owned();
        if me == "mod" {
            continue;
        }
        let module = vec!["commands".to_string(), me.clone()];
        let code = code_only(&std::fs::read_to_string(file).unwrap());
        for (line, path) in paths_named(&module, &code) {
            if path.len() >= 2 && path[0] == "commands" && path[1] != me && names.contains(&path[1])
            {
                if KNOWN_COMMAND_IMPORTS.contains(&(me.as_str(), path[1].as_str())) {
                    used.insert((me.clone(), path[1].clone()));
                    continue;
                }
                wrong.push(format!(
                    "src/commands/{me}.rs:{line}: imports commands::{}",
                    path[1]
                ));
            }
        }
    }
    for (a, b) in KNOWN_COMMAND_IMPORTS {
        if !used.contains(&(a.to_string(), b.to_string())) {
            wrong.push(format!(
                "commands::{a} no longer imports commands::{b}: strike it"
            ));
        }
    }
    wrong.dedup();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn the_path_reader_reads_what_rustc_reads() {
    let code = code_only(
        "use crate::{a::{B, c::D}, e as f};\n// use crate::comment;\nlet s = \"crate::string\";\nsuper::g::h();\n",
    );
    let found = paths_named(&["x".into(), "y".into()], &code);
    let got: Vec<(usize, String)> = found.into_iter().map(|(l, p)| (l, p.join("::"))).collect();
    assert_eq!(
        got,
        vec![
            (1, "a::B".to_string()),
            (1, "a::c::D".to_string()),
            (1, "e".to_string()),
            (4, "x::g::h".to_string()),
        ]
    );
    assert_eq!(
        component_of(&["targets".into(), "railway".into(), "api".into()]),
        Some("targets::railway")
    );
    assert_eq!(
        component_of(&["targets".into(), "Context".into()]),
        Some("targets")
    );
}
