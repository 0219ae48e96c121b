//! The keychain target's own tests: decoding, quoting, the read protocol,
//! line lengths.

use super::errors::is_returned_line;
use super::line::{command_line, quoted_len};
use super::read::{lookup, parse_read, Item, Lookup};
use super::*;
use crate::remote::Output;
use crate::secret::Secret;
use crate::targets::{Context, Op, Target};
use zeroize::Zeroizing;

fn decode(s: &str) -> Result<Vec<u8>, &'static str> {
    decode_password(s.as_bytes()).map(|v| v.to_vec())
}

#[test]
fn decodes_every_form_of_the_g_output() {
    assert_eq!(decode(r#" "plain text""#).unwrap(), b"plain text");
    assert_eq!(
        decode(r#" "with "quotes" inside""#).unwrap(),
        b"with \"quotes\" inside"
    );
    assert_eq!(decode(r#" "back\134slash""#).unwrap(), b"back\\slash");
    assert_eq!(
        decode(r#" 0x6261636B5C736C617368  "back\134slash""#).unwrap(),
        b"back\\slash"
    );
    assert_eq!(
        decode(" 0xC3A9E6BCA2 ").unwrap(),
        "é漢".as_bytes(),
        "all bytes unprintable: hex and one space"
    );
    assert_eq!(decode(" 0x7461620968 ").unwrap(), b"tab\th");
    assert_eq!(
        decode(" 0xc3a9 ").unwrap(),
        "é".as_bytes(),
        "lower-case hex"
    );
    assert_eq!(decode(" ").unwrap(), b"");
    assert_eq!(decode("").unwrap(), b"");
    assert_eq!(decode(r#" "  spaces  ""#).unwrap(), b"  spaces  ");
}

#[test]
fn malformed_lines_are_errors_without_the_value() {
    for bad in [
        " 0xABC",
        " 0xZZ",
        " plain",
        " \"open",
        r#" "\9""#,
        r#" "\12""#,
    ] {
        let err = decode(bad).unwrap_err();
        assert!(!err.contains("plain") && !err.contains("open"), "{err}");
    }
}

#[test]
fn quoting_escapes_backslash_and_double_quote_only() {
    assert_eq!(quote(r#"a"b\c 'd' $e"#), r#""a\"b\\c 'd' $e""#);
    assert_eq!(quote(""), r#""""#);
    assert_eq!(quoted_len(r#"a"b\c"#), quote(r#"a"b\c"#).len());
}

#[test]
fn command_lines_never_ask_for_a_dialog() {
    let v = Secret::new("s3cr\"t".into());
    let line = command_line("svc", Some("/k.db"), "ACCT", &Op::Update(v));
    assert_eq!(
        line.as_str(),
        r#"add-generic-password -U -a "ACCT" -s "svc" -w "s3cr\"t" "/k.db""#
    );
    assert!(!line.contains(" -T") && !line.contains(" -A"));
    let del = command_line("svc", None, "ACCT", &Op::Delete);
    assert_eq!(
        del.as_str(),
        r#"delete-generic-password -a "ACCT" -s "svc""#
    );
}

#[test]
fn returned_lines_are_recognised() {
    assert!(is_returned_line("add-generic-password: returned -25308"));
    assert!(is_returned_line("add-generic-password: returned 2"));
    assert!(!is_returned_line("security: returned to sender maybe"));
    assert!(!is_returned_line("password: \"x: returned 1\""));
}

fn output(code: i32, stdout: &str) -> Output {
    Output {
        code: Some(code),
        stdout: Zeroizing::new(stdout.as_bytes().to_vec()),
        stderr: Zeroizing::new(Vec::new()),
    }
}

fn item(account: &str) -> Item {
    Item {
        security: "security".into(),
        keychain: String::new(),
        service: "svc".into(),
        account: account.into(),
    }
}

#[test]
fn the_read_output_is_split_per_item() {
    let m = "secretsync-00";
    let text = format!(
            "{m} home /Users/me\n\
             {m} item 0\npassword: \"one\"\n\n{m} end 0 0\n\
             {m} item 1\nsecurity: SecKeychainSearchCopyNext: The specified item could not be found in the keychain.\n\n{m} end 1 44\n\
             {m} item 2\n\n{m} end 2 36\n\
             {m} item 3\npassword: 0xFF \n\n{m} end 3 0\n"
        );
    let items = [item("A"), item("B"), item("C"), item("D")];
    let read = parse_read(m, &items, &output(0, &text)).unwrap();
    assert_eq!(read.home, "/Users/me");
    assert!(matches!(&read.lookups[&items[0]], Lookup::Found(v) if v.expose() == "one"));
    assert!(matches!(read.lookups[&items[1]], Lookup::Absent));
    assert!(matches!(
        read.lookups[&items[2]],
        Lookup::Failed { code: Some(36), .. }
    ));
    assert!(matches!(read.lookups[&items[3]], Lookup::NotText));
}

#[test]
fn a_cut_read_is_an_error() {
    let m = "secretsync-00";
    let text = format!("{m} home /h\n{m} item 0\npassword: \"x\"\n");
    assert!(parse_read(m, &[item("A")], &output(0, &text)).is_err());
    assert!(parse_read(m, &[item("A")], &output(0, "")).is_err());
    assert!(parse_read(m, &[], &output(2, "")).is_err());
}

#[test]
fn a_failure_diagnostic_never_shows_a_password_line() {
    let said: Vec<&[u8]> = vec![b"password: \"canary\"", b"security: something broke"];
    let l = lookup(51, &said);
    assert!(matches!(l, Lookup::Failed { ref said, .. } if said == "security: something broke"));
    let only: Vec<&[u8]> = vec![b"password: \"canary\""];
    assert!(
        matches!(lookup(51, &only), Lookup::Failed { ref said, .. } if !said.contains("canary"))
    );
}

fn target(keychain: Option<&str>) -> KeychainTarget {
    let spec = KeychainSpec {
        ssh: None,
        service: "svc".into(),
        keychain: keychain.map(String::from),
    };
    KeychainTarget::new("mac", &spec, &Context::new(".".into())).unwrap()
}

#[test]
fn check_value_refuses_what_security_i_cannot_carry() {
    let t = target(None);
    for bad in ["a\nb", "a\rb", "a\0b", "end\n"] {
        assert!(t.check_value(&Secret::new(bad.into())).is_err(), "{bad:?}");
    }
    for ok in ["", "tab\there", "quote \" back \\ $x 'y'", "é 漢字 🔑"] {
        assert!(t.check_value(&Secret::new(ok.into())).is_ok(), "{ok:?}");
    }
}

#[test]
fn check_value_measures_the_whole_line() {
    let t = target(Some("/k.db"));
    t.remember("/Users/me", &["ACCOUNT".to_string()]);
    let fixed = r#"add-generic-password -U -a "ACCOUNT" -s "svc" -w  "/k.db""#.len();
    let fits = "x".repeat(MAX_LINE - fixed - 2);
    assert!(t.check_value(&Secret::new(fits.clone())).is_ok());
    let line = command_line("svc", Some("/k.db"), "ACCOUNT", &Op::Add(Secret::new(fits)));
    assert_eq!(line.len(), MAX_LINE);
    let over = "x".repeat(MAX_LINE - fixed - 1);
    let err = t.check_value(&Secret::new(over)).unwrap_err();
    assert!(err.contains("4095"), "{err}");
    // Escapes count: every `"` takes two bytes on the line.
    let quotes = "\"".repeat((MAX_LINE - fixed - 2) / 2 + 1);
    assert!(t.check_value(&Secret::new(quotes)).is_err());
}

#[test]
fn describe_names_service_keychain_and_host() {
    assert_eq!(target(None).describe(), "keychain service svc");
    assert_eq!(
        target(Some("~/k.db")).describe(),
        "keychain service svc in ~/k.db"
    );
}

#[test]
fn tilde_is_expanded_with_the_hosts_home() {
    let t = target(Some("~/Library/Keychains/x.keychain-db"));
    assert_eq!(
        t.keychain_on_host("/Users/admin/").as_deref(),
        Some("/Users/admin/Library/Keychains/x.keychain-db")
    );
    assert_eq!(target(None).keychain_on_host("/h"), None);
}
