//! How secretsync makes a value: a secret's `generate:` spec
//! (`{bytes: 32, encoding: hex}` or `{chars: 40, alphabet: alnum}`), the
//! random value it yields, and the guess whether a value without a spec is
//! one secretsync could have made at all (`rotate KEY` refuses to replace a
//! URL, a JSON document, a list or a provider's key with random text).
//!
//! The spec is manifest input, so a stranger's pull request may write it:
//! it names only a count and an alphabet from a fixed list, nothing that
//! runs or reaches argv.

use base64::Engine as _;

use crate::secret::Secret;

/// The fewest and most bytes or characters a spec may ask for.
pub const MIN: usize = 8;
pub const MAX: usize = 4096;

/// The characters of a value made of `chars`, or the encoding of `bytes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alphabet {
    /// A-Z a-z 0-9
    Alnum,
    /// 0-9 a-f
    Hex,
    /// The standard base64 alphabet (for bytes: padded base64).
    Base64,
    /// The URL-safe base64 alphabet (for bytes: unpadded).
    Base64url,
    /// Printable ASCII without space, quotes, backslash, backquote and `$`.
    Ascii,
}

impl Alphabet {
    pub const ALL: [Alphabet; 5] = [
        Alphabet::Alnum,
        Alphabet::Hex,
        Alphabet::Base64,
        Alphabet::Base64url,
        Alphabet::Ascii,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Alphabet::Alnum => "alnum",
            Alphabet::Hex => "hex",
            Alphabet::Base64 => "base64",
            Alphabet::Base64url => "base64url",
            Alphabet::Ascii => "ascii",
        }
    }

    pub fn from_name(name: &str) -> Option<Alphabet> {
        Self::ALL.into_iter().find(|a| a.name() == name)
    }

    /// Whether random bytes can be written in it (`encoding:`).
    pub fn encodes_bytes(self) -> bool {
        matches!(self, Alphabet::Hex | Alphabet::Base64 | Alphabet::Base64url)
    }

    fn letters(self) -> Vec<u8> {
        let alnum = || (b'A'..=b'Z').chain(b'a'..=b'z').chain(b'0'..=b'9');
        match self {
            Alphabet::Alnum => alnum().collect(),
            Alphabet::Hex => (b'0'..=b'9').chain(b'a'..=b'f').collect(),
            Alphabet::Base64 => alnum().chain([b'+', b'/']).collect(),
            Alphabet::Base64url => alnum().chain([b'-', b'_']).collect(),
            Alphabet::Ascii => (b'!'..=b'~').filter(|c| !b"\"'\\$`".contains(c)).collect(),
        }
    }
}

/// A secret's `generate:`: how secretsync makes its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spec {
    /// `n` random bytes, written in `encoding` (hex, base64, base64url).
    Bytes { n: usize, encoding: Alphabet },
    /// `n` characters drawn uniformly from `alphabet`.
    Chars { n: usize, alphabet: Alphabet },
}

impl Spec {
    /// Checks counts and alphabets, as the manifest and the command line do.
    pub fn new_bytes(n: usize, encoding: Alphabet) -> Result<Spec, String> {
        range(n, "bytes")?;
        if !encoding.encodes_bytes() {
            return Err(format!(
                "`{}` cannot encode bytes: use hex, base64 or base64url (or chars: N with alphabet {})",
                encoding.name(),
                encoding.name()
            ));
        }
        Ok(Spec::Bytes { n, encoding })
    }

    pub fn new_chars(n: usize, alphabet: Alphabet) -> Result<Spec, String> {
        range(n, "chars")?;
        Ok(Spec::Chars { n, alphabet })
    }

    /// The command line's form: `bytes=32,encoding=hex` or
    /// `chars=40,alphabet=alnum` (the alphabet defaults to alnum, the
    /// encoding to hex).
    pub fn parse(text: &str) -> Result<Spec, String> {
        let mut bytes = None;
        let mut chars = None;
        let mut named = None;
        for part in text.split(',').map(str::trim) {
            let Some((k, v)) = part.split_once('=').or_else(|| part.split_once(':')) else {
                return Err(format!("`{part}` is not FIELD=VALUE"));
            };
            let (k, v) = (k.trim(), v.trim());
            match k {
                "bytes" => bytes = Some(count(v, "bytes")?),
                "chars" => chars = Some(count(v, "chars")?),
                "encoding" | "alphabet" => {
                    named = Some(Alphabet::from_name(v).ok_or_else(|| unknown_alphabet(v))?)
                }
                other => {
                    return Err(format!(
                        "unknown field `{other}`: a spec takes bytes, encoding, chars, alphabet"
                    ))
                }
            }
        }
        match (bytes, chars) {
            (Some(n), None) => Spec::new_bytes(n, named.unwrap_or(Alphabet::Hex)),
            (None, Some(n)) => Spec::new_chars(n, named.unwrap_or(Alphabet::Alnum)),
            _ => Err("give either bytes=N or chars=N".into()),
        }
    }

    /// The spec as the manifest writes it (a YAML flow mapping).
    pub fn yaml(&self) -> String {
        match self {
            Spec::Bytes { n, encoding } => {
                format!("{{bytes: {n}, encoding: {}}}", encoding.name())
            }
            Spec::Chars { n, alphabet } => {
                format!("{{chars: {n}, alphabet: {}}}", alphabet.name())
            }
        }
    }

    /// A short description for messages: "40 alnum characters".
    pub fn describe(&self) -> String {
        match self {
            Spec::Bytes { n, encoding } => format!("{n} random bytes in {}", encoding.name()),
            Spec::Chars { n, alphabet } => format!("{n} {} characters", alphabet.name()),
        }
    }

    /// A new random value from the OS random source.
    pub fn make(&self) -> Secret {
        match *self {
            Spec::Bytes { n, encoding } => {
                let mut raw = zeroize::Zeroizing::new(vec![0u8; n]);
                crate::crypto::getrandom(&mut raw);
                let text = zeroize::Zeroizing::new(match encoding {
                    Alphabet::Base64 => base64::engine::general_purpose::STANDARD.encode(&raw[..]),
                    Alphabet::Base64url => {
                        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&raw[..])
                    }
                    _ => hex::encode(&raw[..]),
                });
                Secret::new(text.to_string())
            }
            Spec::Chars { n, alphabet } => {
                let letters = alphabet.letters();
                // Rejection sampling keeps every character equally likely.
                let limit = 256 - (256 % letters.len());
                let mut out = zeroize::Zeroizing::new(String::with_capacity(n));
                let mut buf = zeroize::Zeroizing::new([0u8; 64]);
                while out.len() < n {
                    crate::crypto::getrandom(&mut buf[..]);
                    for &b in buf.iter() {
                        if (b as usize) < limit && out.len() < n {
                            out.push(letters[b as usize % letters.len()] as char);
                        }
                    }
                }
                Secret::new(out.to_string())
            }
        }
    }

    /// Whether `value` is one this spec could have made.
    pub fn matches(&self, value: &str) -> bool {
        match *self {
            Spec::Chars { n, alphabet } => {
                let letters = alphabet.letters();
                value.len() == n && value.bytes().all(|b| letters.contains(&b))
            }
            Spec::Bytes { n, encoding } => match encoding {
                Alphabet::Base64 => base64::engine::general_purpose::STANDARD
                    .decode(value)
                    .is_ok_and(|b| b.len() == n),
                Alphabet::Base64url => base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(value)
                    .is_ok_and(|b| b.len() == n),
                _ => {
                    value.len() == 2 * n
                        && value
                            .bytes()
                            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
                }
            },
        }
    }
}

fn range(n: usize, what: &str) -> Result<(), String> {
    if (MIN..=MAX).contains(&n) {
        Ok(())
    } else {
        Err(format!("{what}: {n} is out of range ({MIN} to {MAX})"))
    }
}

/// A count written as digits only (no sign, no leading zero, no `0x`).
pub fn count(text: &str, what: &str) -> Result<usize, String> {
    let ok = !text.is_empty()
        && text.len() <= 5
        && text.bytes().all(|b| b.is_ascii_digit())
        && !(text.len() > 1 && text.starts_with('0'));
    let n = ok
        .then(|| text.parse::<usize>().ok())
        .flatten()
        .ok_or_else(|| format!("{what}: `{text}` is not a number"))?;
    range(n, what)?;
    Ok(n)
}

pub fn unknown_alphabet(name: &str) -> String {
    format!(
        "unknown alphabet `{name}`: one of {}",
        Alphabet::ALL.map(Alphabet::name).join(", ")
    )
}

/// Why `value` does not look like random text secretsync could replace
/// with random text, if it does not: a URL, JSON, a list, a provider's key,
/// a JWT, a certificate or key. The reason names the shape, never the value.
pub fn not_random(value: &str) -> Option<&'static str> {
    let v = value.trim();
    if v.contains("://") {
        return Some("it looks like a URL");
    }
    if v.starts_with('{') || v.starts_with('[') {
        return Some("it looks like JSON");
    }
    if v.starts_with("-----BEGIN") || v.contains("\n-----BEGIN") {
        return Some("it holds a PEM block (a certificate or key)");
    }
    if crate::credential::validity(&Secret::new(v.to_string())).issued
        == Some(crate::credential::Source::Jwt)
    {
        return Some("it is a JWT, issued by someone else");
    }
    if PREFIXES.iter().any(|p| v.starts_with(p)) {
        return Some("it starts like a provider's key (issued by the provider)");
    }
    if v.contains(',') || v.contains(';') || v.chars().any(char::is_whitespace) {
        return Some("it looks like a list or a sentence");
    }
    if v.contains('@') {
        return Some("it looks like an address (`user@host`)");
    }
    None
}

/// Prefixes of keys that providers issue (Stripe, GitHub, Slack, AWS,
/// GitLab, SendGrid, Google, OpenAI, Anthropic, npm, PyPI, Doppler).
const PREFIXES: &[&str] = &[
    "sk_live_",
    "sk_test_",
    "rk_live_",
    "rk_test_",
    "pk_live_",
    "pk_test_",
    "whsec_",
    "ghp_",
    "gho_",
    "ghu_",
    "ghs_",
    "ghr_",
    "github_pat_",
    "xox",
    "AKIA",
    "ASIA",
    "glpat-",
    "SG.",
    "AIza",
    "sk-",
    "npm_",
    "pypi-",
    "dp.",
    "shpat_",
    "key-",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_write_and_make_what_they_say() {
        let s = Spec::parse("bytes=32,encoding=base64").unwrap();
        assert_eq!(s.yaml(), "{bytes: 32, encoding: base64}");
        let v = s.make();
        assert_eq!(v.len(), 44);
        assert!(s.matches(v.expose()));
        let s = Spec::parse("chars=24").unwrap();
        assert_eq!(
            s,
            Spec::Chars {
                n: 24,
                alphabet: Alphabet::Alnum
            }
        );
        let v = s.make();
        assert!(s.matches(v.expose()) && v.expose().bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(s.make(), s.make());
        let h = Spec::parse("bytes:16").unwrap();
        assert!(h.matches(h.make().expose()));
        assert!(!h.matches("zz"));
        for bad in [
            "bytes=4",
            "chars=01",
            "chars=+9",
            "bytes=9,encoding=alnum",
            "x=1",
            "",
            "chars=1e3",
        ] {
            assert!(Spec::parse(bad).is_err(), "{bad}");
        }
        let a = Spec::new_chars(500, Alphabet::Ascii).unwrap().make();
        assert!(!a.expose().contains(['"', '\'', '\\', '$', '`', ' ']));
    }

    #[test]
    fn values_that_are_not_random_are_named() {
        for (v, why) in [
            ("postgres://u:p@db:5432/app", "URL"),
            ("{\"a\":1}", "JSON"),
            ("a,b,c", "list"),
            ("sk_live_abcdefghijklmnop", "provider"),
            ("ghp_abcdefghijklmnopqrstuvwxyz0123456789", "provider"),
            ("xoxb-123-456", "provider"),
            ("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln", "JWT"),
            ("-----BEGIN PRIVATE KEY-----\nx\n", "PEM"),
        ] {
            let got = not_random(v).unwrap_or_else(|| panic!("{v}"));
            assert!(got.contains(why), "{v}: {got}");
        }
        for v in [
            "CANARY-auth",
            "q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQ",
            "0123456789abcdef",
            "a+b/c=",
        ] {
            assert_eq!(not_random(v), None, "{v}");
        }
    }
}
