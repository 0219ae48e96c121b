//! What an environment variable's name may be: the one rule env files,
//! shells, `run` and Railway share (`^[A-Za-z_][A-Za-z0-9_]*$`).

/// Whether `key` is a portable environment variable name
/// (`^[A-Za-z_][A-Za-z0-9_]*$`).
pub fn is_env_key(key: &str) -> bool {
    let mut chars = key.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_portable_names() {
        for ok in ["A", "_", "_x", "A_1", "abc"] {
            assert!(is_env_key(ok), "{ok}");
        }
        for bad in ["", "1A", "A-B", "A B", "A.B", "É", "A\n"] {
            assert!(!is_env_key(bad), "{bad:?}");
        }
    }
}
