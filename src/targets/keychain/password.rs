//! What `security find-generic-password -g` prints after `password:`,
//! decoded to the item's exact bytes.

use zeroize::Zeroizing;

/// Decodes what follows `password:` on a `find-generic-password -g` line, in
/// every form Apple's `print_buffer` writes:
/// - nothing: the empty password;
/// - `"text"`: printable ASCII; `\ooo` octal escapes are decoded (older
///   versions print a backslash as `\134` there);
/// - `0xHEX  "text"` or `0xHEX `: the hex digits are the exact bytes (the
///   quoted text, with escapes, is only for people).
///
/// The error never contains the value.
pub fn decode_password(rest: &[u8]) -> Result<Zeroizing<Vec<u8>>, &'static str> {
    let rest = rest.strip_prefix(b" ").unwrap_or(rest);
    let rest = rest.strip_suffix(b"\r").unwrap_or(rest);
    if rest.is_empty() {
        return Ok(Zeroizing::new(Vec::new()));
    }
    if let Some(hex) = rest.strip_prefix(b"0x") {
        let digits = hex.split(|&b| b == b' ').next().unwrap_or_default();
        if digits.len() % 2 != 0 {
            return Err("odd number of hex digits");
        }
        let mut bytes = Zeroizing::new(Vec::with_capacity(digits.len() / 2));
        for pair in digits.chunks(2) {
            let hi = hex_digit(pair[0]).ok_or("not a hex digit")?;
            let lo = hex_digit(pair[1]).ok_or("not a hex digit")?;
            bytes.push(hi << 4 | lo);
        }
        return Ok(bytes);
    }
    if rest.len() >= 2 && rest[0] == b'"' && rest[rest.len() - 1] == b'"' {
        // `"` inside is not escaped: the text runs to the last quote.
        let inner = &rest[1..rest.len() - 1];
        let mut bytes = Zeroizing::new(Vec::with_capacity(inner.len()));
        let mut i = 0;
        while i < inner.len() {
            let b = inner[i];
            if b == b'\\' {
                let oct = inner.get(i + 1..i + 4).ok_or("a cut escape")?;
                let mut v: u32 = 0;
                for &d in oct {
                    if !(b'0'..=b'7').contains(&d) {
                        return Err("not an octal escape");
                    }
                    v = v * 8 + u32::from(d - b'0');
                }
                bytes.push(u8::try_from(v).map_err(|_| "an escape above 255")?);
                i += 4;
            } else {
                bytes.push(b);
                i += 1;
            }
        }
        return Ok(bytes);
    }
    Err("neither quoted text nor 0x hex")
}

fn hex_digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}
