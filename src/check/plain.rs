//! Plain `value:`s that look like secrets: known prefixes, JWTs, URL
//! passwords, random-looking tokens (by their entropy).

use super::*;

// ---- plain values that look like secrets ----------------------------------------

/// Prefixes of well-known credentials, with what they are.
pub(super) const PREFIXES: &[(&str, &str)] = &[
    ("ghp_", "GitHub token prefix `ghp_`"),
    ("gho_", "GitHub token prefix `gho_`"),
    ("ghu_", "GitHub token prefix `ghu_`"),
    ("ghs_", "GitHub token prefix `ghs_`"),
    ("ghr_", "GitHub token prefix `ghr_`"),
    ("github_pat_", "GitHub token prefix `github_pat_`"),
    ("glpat-", "GitLab token prefix `glpat-`"),
    ("sk_live_", "Stripe key prefix `sk_live_`"),
    ("sk_test_", "Stripe key prefix `sk_test_`"),
    ("rk_live_", "Stripe key prefix `rk_live_`"),
    ("rk_test_", "Stripe key prefix `rk_test_`"),
    ("whsec_", "Stripe webhook secret prefix `whsec_`"),
    ("xoxb-", "Slack token prefix `xoxb-`"),
    ("xoxa-", "Slack token prefix `xoxa-`"),
    ("xoxp-", "Slack token prefix `xoxp-`"),
    ("xapp-", "Slack token prefix `xapp-`"),
    ("AKIA", "AWS access key id prefix `AKIA`"),
    ("ASIA", "AWS access key id prefix `ASIA`"),
    ("AIza", "Google API key prefix `AIza`"),
    ("npm_", "npm token prefix `npm_`"),
    ("sk-", "API key prefix `sk-`"),
    ("AGE-SECRET-KEY-", "an age identity"),
];

/// Entropy bars, by the kind of token: values of people (names, paths,
/// identifiers with separators) stay under them; random keys are over.
/// Mixed case and digits: base64 and most generated keys.
pub(super) const MIXED_MIN_LEN: usize = 20;
pub(super) const MIXED_BITS: f64 = 3.5;
/// One case and digits, judged per part between `_` and `-`, which people
/// put in identifiers and generators do not.
pub(super) const ONE_CASE_MIN_LEN: usize = 24;
pub(super) const ONE_CASE_BITS: f64 = 3.8;
/// Hex digits carry at most 4 bits per character: their own bar.
pub(super) const HEX_MIN_LEN: usize = 32;
pub(super) const HEX_BITS: f64 = 3.0;

/// Why a plain value looks like a secret, if it does. The reason never
/// quotes the value.
pub fn looks_secret(value: &str) -> Option<String> {
    if value.contains("-----BEGIN") {
        return Some("a PEM block `-----BEGIN`".into());
    }
    if has_url_password(value) {
        return Some("a URL with a password".into());
    }
    for token in value.split(|c: char| c.is_whitespace() || "\"'`,;".contains(c)) {
        let token = token.trim_start_matches(|c: char| "([{<".contains(c));
        for (prefix, what) in PREFIXES {
            // A bare prefix or a word that merely starts with it is not a key.
            if token.starts_with(prefix) && token.len() >= prefix.len() + 12 {
                return Some((*what).into());
            }
        }
        if is_jwt(token) {
            return Some("a JSON Web Token `eyJ…`".into());
        }
        if let Some(why) = random_looking(token) {
            return Some(why);
        }
    }
    None
}

/// `scheme://user:password@host`.
pub(super) fn has_url_password(value: &str) -> bool {
    value.split_whitespace().any(|word| {
        let Some((_, rest)) = word.split_once("://") else {
            return false;
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        match authority.rsplit_once('@') {
            Some((userinfo, _)) => userinfo.split_once(':').is_some_and(|(_, p)| !p.is_empty()),
            None => false,
        }
    })
}

/// Three base64url parts, the first a JSON object (`eyJ` is `{"`).
pub(super) fn is_jwt(token: &str) -> bool {
    let parts: Vec<&str> = token.split('.').collect();
    parts.len() == 3
        && parts[0].starts_with("eyJ")
        && parts[0].len() >= 10
        && parts[1].len() >= 10
        && parts.iter().all(|p| {
            p.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '=')
        })
}

/// A long token of high Shannon entropy. URLs and paths are cut at their
/// punctuation first so that their words are judged, not the whole.
pub(super) fn random_looking(token: &str) -> Option<String> {
    let high = |part: &str, bar: f64| {
        let bits = shannon(part);
        (bits >= bar).then(|| {
            format!(
                "high entropy: {bits:.1} bits per character over {} characters",
                part.chars().count()
            )
        })
    };
    for part in token.split(|c: char| ":/@?&=.#".contains(c)) {
        let len = part.chars().count();
        if len < MIXED_MIN_LEN.min(ONE_CASE_MIN_LEN) || is_uuid(part) {
            continue;
        }
        let upper = part.chars().any(|c| c.is_ascii_uppercase());
        let lower = part.chars().any(|c| c.is_ascii_lowercase());
        let digit = part.chars().any(|c| c.is_ascii_digit());
        if !digit {
            continue;
        }
        if part.chars().all(|c| c.is_ascii_hexdigit()) {
            if len >= HEX_MIN_LEN {
                if let Some(why) = high(part, HEX_BITS) {
                    return Some(why);
                }
            }
        } else if upper && lower {
            if let Some(why) = high(part, MIXED_BITS) {
                return Some(why);
            }
        } else {
            for word in part.split(['_', '-']) {
                if word.chars().count() >= ONE_CASE_MIN_LEN
                    && word.chars().any(|c| c.is_ascii_digit())
                {
                    if let Some(why) = high(word, ONE_CASE_BITS) {
                        return Some(why);
                    }
                }
            }
        }
    }
    None
}

pub(super) fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit()))
}

/// Shannon entropy in bits per character.
pub fn shannon(s: &str) -> f64 {
    let mut counts: BTreeMap<char, usize> = BTreeMap::new();
    let mut n = 0usize;
    for c in s.chars() {
        *counts.entry(c).or_default() += 1;
        n += 1;
    }
    if n == 0 {
        return 0.0;
    }
    counts
        .values()
        .map(|&k| {
            let p = k as f64 / n as f64;
            -p * p.log2()
        })
        .sum()
}
