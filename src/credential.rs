//! What a value says about its own validity, read offline: a JWT's `exp`
//! and `nbf`, the `notAfter` (and `notBefore`) of the X.509 certificates it
//! holds in PEM. A leaf: the lifecycle judges these dates, and `generate`
//! recognises a JWT with the same reader.
//!
//! Nothing here prints or returns a value: only dates and where they came from.

use base64::Engine as _;
use serde::Serialize;
use serde_json::Value;

use crate::secret::Secret;
use crate::time::{Time, LAST_SECOND};

/// Where an expiry date came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// The value is a JWT: its `exp` claim.
    Jwt,
    /// The value holds a PEM certificate: its `notAfter`.
    Certificate,
    /// `expires:` in the manifest.
    Manifest,
}

impl Source {
    /// Where the date came from, in words ("the value's JWT `exp`").
    pub fn describe(self) -> &'static str {
        match self {
            Source::Jwt => "the value's JWT `exp`",
            Source::Certificate => "the value's certificate notAfter",
            Source::Manifest => "`expires:` in the manifest",
        }
    }
}

/// What the value says about its validity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Validity {
    /// The value is a JWT or holds a certificate: issued by someone else.
    pub issued: Option<Source>,
    pub not_after: Option<Time>,
    pub not_before: Option<Time>,
}

/// Reads the validity a value carries: a JWT's `exp`/`nbf`, or the
/// earliest `notAfter` (and latest `notBefore`) of the PEM certificates in it.
pub fn validity(value: &Secret) -> Validity {
    let v = value.expose();
    if let Some(found) = jwt(v.trim()) {
        return found;
    }
    certificates(v).unwrap_or_default()
}

/// A JWS in compact form: three base64url parts whose first two are JSON
/// objects (the header naming an `alg`).
fn jwt(v: &str) -> Option<Validity> {
    let mut parts = v.split('.');
    let (Some(h), Some(p), Some(_sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    let decode = |s: &str| -> Option<serde_json::Map<String, Value>> {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(s.trim_end_matches('='))
            .ok()?;
        let bytes = zeroize::Zeroizing::new(bytes);
        match serde_json::from_slice::<Value>(&bytes).ok()? {
            Value::Object(o) => Some(o),
            _ => None,
        }
    };
    let header = decode(h)?;
    if !header.contains_key("alg") {
        return None;
    }
    let claims = decode(p)?;
    // NumericDate: seconds, possibly with a fraction; a date outside years
    // 1970 to 9999 is no date (and keeps every sum below from overflowing).
    let time = |k: &str| {
        claims
            .get(k)
            .and_then(Value::as_f64)
            .filter(|f| (0.0..=LAST_SECOND).contains(f))
            .map(|f| f as Time)
    };
    Some(Validity {
        issued: Some(Source::Jwt),
        not_after: time("exp"),
        not_before: time("nbf"),
    })
}

fn certificates(v: &str) -> Option<Validity> {
    use x509_cert::der::DecodePem;
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let mut found: Option<Validity> = None;
    let mut rest = v;
    while let Some(start) = rest.find(BEGIN) {
        let Some(len) = rest[start..].find(END) else {
            break;
        };
        let block = &rest[start..start + len + END.len()];
        rest = &rest[start + len + END.len()..];
        let Ok(cert) = x509_cert::Certificate::from_pem(block.as_bytes()) else {
            continue;
        };
        let validity = &cert.tbs_certificate.validity;
        let after = validity.not_after.to_unix_duration().as_secs() as Time;
        let before = validity.not_before.to_unix_duration().as_secs() as Time;
        let f = found.get_or_insert(Validity {
            issued: Some(Source::Certificate),
            not_after: Some(after),
            not_before: Some(before),
        });
        f.not_after = f.not_after.map(|a| a.min(after));
        f.not_before = f.not_before.map(|b| b.max(before));
    }
    found
}
