//! Hiding values in text a server sends back (#24).
//!
//! An error message may quote the request: graphql-js style validation
//! errors embed the variables (`Variable "$input" got invalid value {…}`).
//! Two defences, both applied by [`scrub`]:
//!
//! 1. [`cut_echo`]: the text is cut where it starts quoting what was sent
//!    (the variables, a value "found"), so the server's words stay and the
//!    request does not.
//! 2. Every value is replaced in each form it may travel in: raw,
//!    JSON-escaped (`\n`, `\"`, `\\`, `\uXXXX`), URL-encoded (`%20` or `+`),
//!    base64 (standard and URL-safe, with or without padding), and every
//!    line of a multi-line value on its own ([`forms`]).
//!
//! Forms shorter than [`MIN_LEN`] characters are left: hiding every "a"
//! would make messages unreadable, and such text cannot be told from
//! ordinary words anyway.

use base64::Engine as _;

/// The marker a hidden value becomes.
pub const MARK: &str = "<redacted>";
/// What replaces the part of a message that quoted the request.
pub const CUT: &str = "<request echo removed>";
/// The shortest form that is hidden.
pub const MIN_LEN: usize = 3;

/// Phrases after which a GraphQL server quotes the value it was sent.
const ECHO_AFTER: &[&str] = &[
    "got invalid value",
    "has invalid value",
    "invalid value:",
    ", found ",
    "expected value of type",
];

/// `message` cut where it starts quoting the request: after the first of
/// the phrases above, or at the first `{` or `[` that opens a quoted JSON
/// document. The words before are kept.
pub fn cut_echo(message: &str) -> String {
    let lower = message.to_ascii_lowercase();
    let mut at = message.len();
    for p in ECHO_AFTER {
        if let Some(i) = lower.find(p) {
            at = at.min(i + p.len());
        }
    }
    if let Some(i) = message.find(['{', '[']) {
        at = at.min(i);
    }
    if at >= message.len() {
        return message.to_string();
    }
    // `at` is on a char boundary: it follows an ASCII phrase or is an ASCII
    // bracket.
    format!("{} {CUT}", message[..at].trim_end())
}

/// The forms `value` may take in a server's text, longest first.
pub fn forms(value: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut add = |s: String| {
        if s.chars().count() >= MIN_LEN && !out.contains(&s) {
            out.push(s);
        }
    };
    let one = |v: &str, add: &mut dyn FnMut(String)| {
        add(v.to_string());
        let json = serde_json::to_string(v).unwrap_or_default();
        add(json[1..json.len().saturating_sub(1).max(1)].to_string());
        add(url_encoded(v, false));
        add(url_encoded(v, true));
        for engine in [
            &base64::engine::general_purpose::STANDARD,
            &base64::engine::general_purpose::STANDARD_NO_PAD,
            &base64::engine::general_purpose::URL_SAFE,
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        ] {
            add(engine.encode(v.as_bytes()));
        }
    };
    one(value, &mut add);
    if value.contains(['\n', '\r']) {
        for line in value.split(['\n', '\r']) {
            one(line, &mut add);
        }
    }
    out.sort_by_key(|s| std::cmp::Reverse(s.len()));
    out
}

/// Percent-encoding of every byte but the unreserved ones; `plus`: a space
/// is `+` (HTML forms).
fn url_encoded(v: &str, plus: bool) -> String {
    let mut s = String::with_capacity(v.len());
    for b in v.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                s.push(b as char)
            }
            b' ' if plus => s.push('+'),
            _ => s.push_str(&format!("%{b:02X}")),
        }
    }
    s
}

/// `text` cut before any request it echoes, with every form of every
/// secret replaced by [`MARK`] (case-insensitively for URL-encoding's hex).
pub fn scrub(text: &str, secrets: &[&str]) -> String {
    let mut out = cut_echo(text);
    let mut all: Vec<String> = secrets.iter().flat_map(|s| forms(s)).collect();
    all.sort_by_key(|s| std::cmp::Reverse(s.len()));
    for f in &all {
        out = out.replace(f.as_str(), MARK);
        if f.contains('%') {
            out = out.replace(f.to_ascii_lowercase().as_str(), MARK);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const V: &str = "CANARY line one \"quoted\"\nsecond \\ line\tend";

    #[test]
    fn every_encoding_and_every_line_is_hidden() {
        let json = serde_json::to_string(V).unwrap();
        let b64 = base64::engine::general_purpose::STANDARD.encode(V);
        let texts = [
            format!("raw {V}"),
            format!("json {json}"),
            format!("url {}", url_encoded(V, false)),
            format!("url {}", url_encoded(V, false).to_ascii_lowercase()),
            format!("form {}", url_encoded(V, true)),
            format!("b64 {b64}"),
            "one line: second \\ line\tend".to_string(),
            "the other: CANARY line one \"quoted\"".to_string(),
        ];
        for t in texts {
            let s = scrub(&t, &[V]);
            assert!(!s.contains("CANARY") && !s.contains("second"), "{t} -> {s}");
            assert!(s.contains(MARK), "{s}");
        }
    }

    #[test]
    fn graphql_echoes_are_cut_before_the_variables() {
        let m = r#"Variable "$input" got invalid value { "value": "x" }; Field "name" of required type "String!" was not provided."#;
        assert_eq!(
            cut_echo(m),
            format!("Variable \"$input\" got invalid value {CUT}")
        );
        assert_eq!(
            cut_echo("Expected type String!, found \"abc\"."),
            format!("Expected type String!, found {CUT}")
        );
        assert_eq!(cut_echo("Not Authorized"), "Not Authorized");
        assert_eq!(cut_echo("bad input {\"a\":1}"), format!("bad input {CUT}"));
    }

    #[test]
    fn short_values_are_left_alone() {
        assert_eq!(scrub("a b c", &["a"]), "a b c");
    }
}
