//! The format's own tests: parse, edit, render, per-reader forms.

use super::*;
use crate::secret::Secret;

const D: Format = Format::Dotenv;

fn s(v: &str) -> Secret {
    Secret::new(v.to_string())
}

fn parse(text: &str) -> EnvFile {
    EnvFile::parse(text).expect("parses")
}

fn value(doc: &EnvFile, key: &str) -> Option<String> {
    doc.entries().get(key).map(|v| v.expose().to_string())
}

/// An edit in the format's own terms: a key and its new value, or none.
type Change = (String, Option<Secret>);

fn add(key: &str, v: &str) -> Change {
    (key.into(), Some(s(v)))
}

fn update(key: &str, v: &str) -> Change {
    (key.into(), Some(s(v)))
}

fn delete(key: &str) -> Change {
    (key.into(), None)
}

const TRICKY: &[&str] = &[
    "",
    "plain",
    "with \"double\" and 'single' quotes",
    "$HOME and ${HOME} and $(id) and `id`",
    "# not a comment",
    "a #hash after a space",
    "back\\slash\\",
    "\\n is not a newline",
    "\\\"",
    "tab\there",
    "unicode: é ü 漢字 🔑",
    "  leading and trailing spaces  ",
    "line one\nline two\n",
    "\n",
    "multi\n  indented\n\"quoted\"\n$var\\",
    "'",
    "\"",
    "=",
    "x=y # z",
];

/// Whatever form a format writes, the parser reads the value back (so a
/// plan after apply is in sync); values a format refuses are skipped here
/// (tests/integration/readers.rs proves the readers and the refusals).
#[test]
fn every_tricky_value_round_trips_in_every_format() {
    for format in Format::ALL {
        for (i, v) in TRICKY.iter().enumerate() {
            if format.encode(v).is_err() {
                continue;
            }
            let key = format!("K{i}");
            for start in ["", "A=1\n", "A=1", "# c\n\nB='x'\n"] {
                let mut doc = parse(start);
                doc.apply(&[add(&key, v)], format).unwrap();
                let text = doc.render();
                let back = parse(&text);
                assert_eq!(
                    value(&back, &key).as_deref(),
                    Some(*v),
                    "{format}: value #{i} after {start:?}"
                );
                // Updating an existing definition round-trips too.
                let mut doc = back;
                doc.apply(&[update(&key, "other")], format).unwrap();
                doc.apply(&[update(&key, v)], format).unwrap();
                assert_eq!(value(&parse(&doc.render()), &key).as_deref(), Some(*v));
            }
        }
    }
}

#[test]
fn shell_format_single_quotes_or_escapes_for_sh() {
    let mut doc = parse("");
    doc.apply(&[add("K", "a\\b\"c$d\ne\tf")], Format::Shell)
        .unwrap();
    assert_eq!(doc.render(), "K='a\\b\"c$d\ne\tf'\n");
    let mut doc = parse("");
    doc.apply(&[add("K", "it's `id` $(id) \\")], Format::Shell)
        .unwrap();
    assert_eq!(doc.render(), "K=\"it's \\`id\\` \\$(id) \\\\\"\n");
}

#[test]
fn a_value_without_a_form_is_refused_before_anything_changes() {
    let mut doc = parse("A=1\n");
    let err = doc
        .apply(&[add("B", "x"), add("C", "it's $secret")], D)
        .unwrap_err();
    assert!(err.starts_with("C: `format: dotenv`"), "{err}");
    assert!(!err.contains("secret"), "{err}");
    assert_eq!(doc.render(), "A=1\n");
    doc.apply(&[add("C", "it's $secret")], Format::Systemd)
        .unwrap();
}

#[test]
fn systemd_and_dotenv_edits_drop_export_and_move_inline_comments() {
    let text = "export A=1 # keep me\nB='x'   # too\n";
    for format in [Format::Systemd, D] {
        let mut doc = parse(text);
        doc.apply(&[update("A", "2"), update("B", "y z")], format)
            .unwrap();
        assert_eq!(doc.render(), "# keep me\nA=2\n# too\nB='y z'\n", "{format}");
    }
    let mut doc = parse(text);
    doc.apply(&[update("A", "2")], Format::Shell).unwrap();
    assert_eq!(doc.render(), "export A=2 # keep me\nB='x'   # too\n");
}

#[test]
fn a_bom_is_read_and_kept() {
    let mut doc = parse("\u{feff}A=1\r\nB=2\r\n");
    assert_eq!(value(&doc, "A").as_deref(), Some("1"));
    assert!(doc.managed().notes[0].contains("byte order mark"));
    doc.apply(&[update("B", "3")], D).unwrap();
    assert_eq!(doc.render(), "\u{feff}A=1\r\nB=3\r\n");
}

#[test]
fn keys_that_are_not_names_are_noted_and_left_alone() {
    let text = "a.b=1\nA-B=2\n1A=3\nOK=4\n";
    let doc = parse(text);
    let Managed { entries, notes, .. } = doc.managed();
    assert_eq!(entries.keys().collect::<Vec<_>>(), ["OK"]);
    assert_eq!(notes.len(), 3, "{notes:?}");
    assert!(
        notes[0].starts_with("line 1: `a.b` is not a variable name"),
        "{notes:?}"
    );
    assert!(notes[2].starts_with("line 3: `1A`"), "{notes:?}");
    let mut doc = doc;
    doc.apply(&[update("OK", "5")], D).unwrap();
    assert_eq!(doc.render(), "a.b=1\nA-B=2\n1A=3\nOK=5\n");
}

#[test]
fn a_key_defined_twice_is_noted_not_in_sync_and_left_once() {
    let text = "K=old\nA=1\n\nK=current\n";
    let doc = parse(text);
    let m = doc.managed();
    assert_eq!(m.entries["K"].expose(), "current");
    assert_eq!(m.duplicated.iter().collect::<Vec<_>>(), ["K"]);
    let notes = m.notes;
    assert_eq!(
            notes,
            ["`K` is defined on lines 1 and 4; readers disagree which wins (apply leaves one definition)"]
        );
    let mut doc = doc;
    doc.apply(&[update("K", "current")], D).unwrap();
    assert_eq!(doc.render(), "A=1\n\nK=current\n");
    // Identical definitions: still noted and collapsed by apply.
    let m = parse("K=x\nK=x\n").managed();
    assert_eq!(m.entries["K"].expose(), "x");
    assert_eq!((m.notes.len(), m.duplicated.len()), (1, 1));
}

#[test]
fn unedited_render_is_the_input() {
    for text in [
        "",
        "\n",
        "A=1",
        "A=1\n",
        "A=1\r\nB=2\r\n",
        "A=1\r\nB=2",
        "# comment\n\n  \t\nexport A = 'x'  # c\nB=\"m\nl\"\n",
        "A=1\n\n\n",
        "  # indented comment\nA=\"x\" \t",
        "#\r\n\r\n",
    ] {
        assert_eq!(parse(text).render(), text);
    }
}

#[test]
fn parse_forms() {
    let doc = parse(concat!(
        "# comment\n",
        "\n",
        "PLAIN=value\n",
        "export EXPORTED=yes\n",
        "SPACED = around  \n",
        "TRAILING=trailing spaces   \n",
        "INLINE=value # comment\n",
        "HASH=a#b\n",
        "EMPTY=\n",
        "EMPTYQ=\"\"\n",
        "SINGLE='lit $x \\n \"q\"'\n",
        "DOUBLE=\"esc \\\\ \\\" \\$ \\n \\t \\r \\q\"\n",
        "MULTI=\"one\ntwo\"\n",
        "MULTIS='one\ntwo'\n",
        "AFTER=\"x\"   # comment\n",
        "  INDENTED=i\n",
        "\tTABBED=t\n",
        "export=kw\n",
        "DOT.KEY=d\n",
        "COMMENT_ONLY= # nothing\n",
    ));
    let want: &[(&str, &str)] = &[
        ("PLAIN", "value"),
        ("EXPORTED", "yes"),
        ("SPACED", "around"),
        ("TRAILING", "trailing spaces"),
        ("INLINE", "value"),
        ("HASH", "a#b"),
        ("EMPTY", ""),
        ("EMPTYQ", ""),
        ("SINGLE", "lit $x \\n \"q\""),
        ("DOUBLE", "esc \\ \" $ \n \t \r \\q"),
        ("MULTI", "one\ntwo"),
        ("MULTIS", "one\ntwo"),
        ("AFTER", "x"),
        ("INDENTED", "i"),
        ("TABBED", "t"),
        ("export", "kw"),
        ("DOT.KEY", "d"),
        ("COMMENT_ONLY", ""),
    ];
    for (k, v) in want {
        assert_eq!(value(&doc, k).as_deref(), Some(*v), "{k}");
    }
    assert_eq!(doc.entries().len(), want.len());
}

#[test]
fn crlf_line_ends_are_accepted_and_kept() {
    let text = "A=1\r\nB=\"two\"\r\n# c\r\n";
    let mut doc = parse(text);
    assert_eq!(value(&doc, "A").as_deref(), Some("1"));
    assert_eq!(value(&doc, "B").as_deref(), Some("two"));
    doc.apply(&[update("A", "x"), add("C", "y")], D).unwrap();
    assert_eq!(doc.render(), "A=x\r\nB=\"two\"\r\n# c\r\nC=y\r\n");
}

#[test]
fn last_definition_wins() {
    let doc = parse("A=1\nA=2\n");
    assert_eq!(value(&doc, "A").as_deref(), Some("2"));
}

#[test]
fn errors_name_the_line_never_the_value() {
    let cases: &[(&str, usize, &str)] = &[
        (
            "A=1\nsecret-ish garbage\n",
            2,
            "expected `=` after the key name",
        ),
        (
            "A=1\n\nKEY secretvalue\n",
            3,
            "expected `=` after the key name",
        ),
        ("A=1\nsecretvalue\n", 2, "expected `=` after the key name"),
        (
            "A=\"secretvalue\n\nmore",
            1,
            "double-quoted value of `A` is never closed",
        ),
        (
            "# c\nA='secretvalue",
            2,
            "single-quoted value of `A` is never closed",
        ),
        (
            "A=\"secret\" value\n",
            1,
            "unexpected text after the closing quote of `A`",
        ),
        (
            "A=\"multi\nline\" secretvalue\n",
            2,
            "unexpected text after",
        ),
        ("A=secret\rvalue\n", 1, "carriage return"),
        ("A=\"secret\r\nvalue\"\r\n", 1, "carriage return"),
        ("A=1\n=secretvalue\n", 2, "expected `KEY=value`"),
    ];
    for (text, line, msg) in cases {
        let err = EnvFile::parse(text).unwrap_err();
        assert_eq!(err.line, *line, "{text:?}: {err}");
        assert!(err.message.contains(msg), "{text:?}: {err}");
        assert!(!err.to_string().contains("secret"), "{text:?}: {err}");
    }
}

#[test]
fn update_rewrites_the_last_definition_in_place_and_drops_the_others() {
    let text = "# top\nexport A=1 # keep me\nB=2\n  A='old' # c\nC=3";
    let mut doc = parse(text);
    doc.apply(&[update("A", "new value")], Format::Shell)
        .unwrap();
    assert_eq!(doc.render(), "# top\nB=2\n  A='new value' # c\nC=3");
}

#[test]
fn update_of_multiline_entry_keeps_following_lines() {
    let mut doc = parse("A=\"one\ntwo\"\nB=2\n");
    doc.apply(&[update("A", "x")], D).unwrap();
    assert_eq!(doc.render(), "A=x\nB=2\n");
}

#[test]
fn add_appends_with_a_newline_first_when_missing() {
    let mut doc = parse("A=1");
    doc.apply(&[add("B", "2")], D).unwrap();
    assert_eq!(doc.render(), "A=1\nB=2\n");
    let mut doc = parse("");
    doc.apply(&[add("B", "2")], D).unwrap();
    assert_eq!(doc.render(), "B=2\n");
    let mut doc = parse("# only a comment");
    doc.apply(&[update("B", "2")], D).unwrap();
    assert_eq!(doc.render(), "# only a comment\nB=2\n");
}

#[test]
fn delete_removes_every_definition_with_its_lines() {
    let mut doc = parse("A=1\nB=\"x\ny\"\n# c\nB=2\nC=3");
    doc.apply(&[delete("B"), delete("ABSENT")], D).unwrap();
    assert_eq!(doc.render(), "A=1\n# c\nC=3");
    doc.apply(&[delete("C")], D).unwrap();
    assert_eq!(doc.render(), "A=1\n# c\n");
}

#[test]
fn invalid_changes_change_nothing_and_name_no_value() {
    let text = "A=1\n";
    let mut doc = parse(text);
    let err = doc
        .apply(&[add("B", "fine"), add("C", "secret\rcr")], D)
        .unwrap_err();
    assert!(
        err.contains("C") && err.contains("carriage return"),
        "{err}"
    );
    assert!(!err.contains("secret"), "{err}");
    let err = doc.apply(&[add("C", "secret\0")], D).unwrap_err();
    assert!(err.contains("NUL") && !err.contains("secret"), "{err}");
    let err = doc.apply(&[add("BAD-KEY", "secret")], D).unwrap_err();
    assert!(err.contains("BAD-KEY") && !err.contains("secret"), "{err}");
    assert_eq!(doc.render(), text);
}

#[test]
fn check_value_refuses_nul_and_cr_only() {
    for f in Format::ALL {
        assert!(check_value(f, &s("a\nb\t\"\\x")).is_ok(), "{f}");
        assert!(check_value(f, &s("a\0")).is_err());
        assert!(check_value(f, &s("a\r\n")).is_err());
    }
}

#[test]
fn redacted_keeps_layout_and_hides_values() {
    let doc = parse("# c\n\nexport A=\"secret\nmore\"\nB=secret2 # note\r\n");
    let out = doc.redacted(&|k, v| format!("<{k}:{}>", v.len()));
    assert_eq!(out, "# c\n\nexport A=<A:11>\nB=<B:7>\r\n");
}

#[test]
fn debug_shows_keys_not_values() {
    let doc = parse("A=secretvalue\n");
    let dbg = format!("{doc:?}");
    assert!(
        dbg.contains("\"A\"") && !dbg.contains("secretvalue"),
        "{dbg}"
    );
}

mod props {
    use super::*;
    use proptest::prelude::*;

    /// Any value the format can hold: no NUL, no CR.
    fn value_strategy() -> impl Strategy<Value = String> {
        prop::collection::vec(
            prop_oneof![
                4 => prop::sample::select(vec![
                    '\\', '"', '\'', '$', '#', '\n', '\t', ' ', '=', '`', 'n', 'é', '🔑',
                ]),
                // Mapped, not filtered: a filter hits proptest's cap on
                // rejections (65,536) in long runs.
                4 => any::<char>().prop_map(|c| if c == '\0' || c == '\r' { 'x' } else { c }),
            ],
            0..40,
        )
        .prop_map(|cs| cs.into_iter().collect())
    }

    /// Lines of a well-formed file: entries of every form and other text.
    fn line_strategy() -> impl Strategy<Value = String> {
        prop_oneof![
            Just(String::new()),
            Just("# a comment".to_string()),
            Just("  # indented $comment \"".to_string()),
            "[A-Z]{1,3}=[a-z0-9]{0,5}",
            "export [A-Z]{1,3}='[a-z $\"]{0,5}'",
            r#"[A-Z]{1,3} = "([a-z$ ]|\\\\|\\"|\\\$){0,5}" # c"#,
            "[A-Z]{1,3}=\"[a-z]{0,3}\n[a-z]{0,3}\"",
        ]
    }

    fn file_strategy() -> impl Strategy<Value = String> {
        (prop::collection::vec(line_strategy(), 0..8), any::<bool>()).prop_map(
            |(lines, final_newline)| {
                let mut t = lines.join("\n");
                if final_newline && !t.is_empty() {
                    t.push('\n');
                }
                t
            },
        )
    }

    proptest! {
        #[test]
        fn values_round_trip(file in file_strategy(), v in value_strategy(), key in "[A-Z_]{1,4}") {
            let mut doc = EnvFile::parse(&file).unwrap();
            // Shell can hold every value; the others are covered in
            // `every_tricky_value_round_trips_in_every_format`.
            doc.apply(&[update(&key, &v)], Format::Shell).unwrap();
            let back = EnvFile::parse(&doc.render()).unwrap();
            prop_assert_eq!(back.entries().get(&key).map(|s| s.expose().to_string()), Some(v));
        }

        #[test]
        fn every_format_reads_back_what_it_writes(v in value_strategy()) {
            for format in Format::ALL {
                let mut doc = EnvFile::parse("A=1\n").unwrap();
                match doc.apply(&[update("K", &v)], format) {
                    Ok(()) => {
                        let back = EnvFile::parse(&doc.render()).unwrap();
                        prop_assert_eq!(back.entries().get("K").map(|s| s.expose().to_string()), Some(v.clone()));
                    }
                    // Only the portable and reader-specific formats refuse.
                    Err(_) => prop_assert!(!matches!(format, Format::Shell | Format::Systemd)),
                }
            }
        }

        #[test]
        fn edits_never_touch_other_lines(file in file_strategy(), v in value_strategy(), delete_it in any::<bool>()) {
            // `ZZ_NEW` never occurs in generated files: its edit only appends.
            let key = "ZZ_NEW";
            let mut doc = EnvFile::parse(&file).unwrap();
            let value = if delete_it { None } else { Some(Secret::new(v)) };
            doc.apply(&[(key.to_string(), value)], Format::Shell).unwrap();
            let out = doc.render();
            prop_assert!(out.starts_with(&file));
            if delete_it {
                prop_assert_eq!(&out, &file);
            }

            // Editing an existing key keeps every segment of other keys.
            let mut doc = EnvFile::parse(&file).unwrap();
            let keys: Vec<String> = doc.entries().into_keys().collect();
            if let Some(k) = keys.first() {
                let before: Vec<String> = EnvFile::parse(&file).unwrap().segments.iter()
                    .filter(|s| s.entry.as_ref().is_none_or(|e| &e.key != k))
                    .map(|s| format!("{}{}", s.raw.expose(), s.eol)).collect();
                doc.apply(&[update(k, "x")], Format::Shell).unwrap();
                let after: Vec<String> = EnvFile::parse(&doc.render()).unwrap().segments.iter()
                    .filter(|s| s.entry.as_ref().is_none_or(|e| &e.key != k))
                    .map(|s| format!("{}{}", s.raw.expose(), s.eol)).collect();
                prop_assert_eq!(before, after);
            }
        }

        #[test]
        fn parse_never_panics(text in any::<String>()) {
            if let Ok(doc) = EnvFile::parse(&text) {
                prop_assert_eq!(doc.render(), text);
            }
        }

        #[test]
        fn parse_never_panics_on_env_like_text(text in "[A-Z=\"'\\\\# \t\r\n$a-z]{0,60}") {
            if let Ok(doc) = EnvFile::parse(&text) {
                prop_assert_eq!(doc.render(), text);
            }
        }
    }
}
