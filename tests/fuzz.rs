//! Fuzzing in CI, bounded: the announcement parser and the webhook parser get the committed corpus
//! (`fuzz/corpus/`), random mutations of it, and arbitrary bytes, and must never panic. The same
//! entry points (`loa::fuzzing`) back the coverage-guided cargo-fuzz targets in `fuzz/` for longer
//! runs. `LOA_FUZZ_CASES` sets the cases per property (default 5000).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use loa::announce::model::Commune;
use proptest::prelude::*;

fn corpus(kind: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(kind);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("corpus directory")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| std::fs::read(p).expect("read"))
        .collect()
}

fn commune() -> &'static Commune {
    static COMMUNE: OnceLock<Commune> = OnceLock::new();
    COMMUNE.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/valid/announcements");
        loa::announce::load_commune(&dir).expect("the valid fixture commune")
    })
}

fn announcements() -> &'static Vec<Vec<u8>> {
    static C: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    C.get_or_init(|| corpus("announcement"))
}

fn webhooks() -> &'static Vec<Vec<u8>> {
    static C: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    C.get_or_init(|| corpus("webhook"))
}

fn cases() -> u32 {
    std::env::var("LOA_FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5000)
}

/// One edit of a seed: overwrite, insert or delete a byte, or splice in a YAML/JSON token.
#[derive(Clone, Debug)]
enum Edit {
    Set(usize, u8),
    Insert(usize, u8),
    Delete(usize),
    Token(usize, usize),
}

const TOKENS: &[&str] = &[
    ":",
    "- ",
    "{",
    "}",
    "[",
    "]",
    "\"",
    "'",
    "*a",
    "&a ",
    "\n",
    "\n  ",
    "\t",
    "#",
    "null",
    "~",
    "2026-02-30",
    "25:61",
    "0x1F",
    "1e309",
    "!!binary",
    "<<: *a",
    "\u{feff}",
    "đ",
    "\\u0000",
    "\"msg_ids\":",
    "\"timestamp\":",
    "-1",
    "99999999999999999999",
];

fn edits() -> impl Strategy<Value = Vec<Edit>> {
    prop::collection::vec(
        prop_oneof![
            (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Set(i, b)),
            (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Insert(i, b)),
            any::<usize>().prop_map(Edit::Delete),
            (any::<usize>(), 0..TOKENS.len()).prop_map(|(i, t)| Edit::Token(i, t)),
        ],
        1..8,
    )
}

fn mutate(seed: &[u8], edits: &[Edit]) -> Vec<u8> {
    let mut out = seed.to_vec();
    for e in edits {
        let at = |i: usize, len: usize| if len == 0 { 0 } else { i % (len + 1) };
        match *e {
            Edit::Set(i, b) if !out.is_empty() => {
                let n = out.len();
                out[i % n] = b;
            }
            Edit::Insert(i, b) => {
                let i = at(i, out.len());
                out.insert(i, b);
            }
            Edit::Delete(i) if !out.is_empty() => {
                let n = out.len();
                out.remove(i % n);
            }
            Edit::Token(i, t) => {
                let i = at(i, out.len());
                out.splice(i..i, TOKENS[t].bytes());
            }
            _ => {}
        }
    }
    out
}

#[test]
fn the_corpus_parses_without_panics() {
    let parsed: Vec<usize> = announcements()
        .iter()
        .map(|b| loa::fuzzing::announcement(b, Some(commune())))
        .collect();
    assert!(parsed.contains(&0), "the corpus holds valid announcements");
    assert!(parsed.iter().any(|n| *n > 0), "and invalid ones");
    let accepted = webhooks()
        .iter()
        .filter(|b| loa::fuzzing::webhook("mac=00", b))
        .count();
    assert!(accepted >= 5, "the sample events are events: {accepted}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn announcements_never_panic(seed in 0..1000usize, edits in edits()) {
        let seeds = announcements();
        let input = mutate(&seeds[seed % seeds.len()], &edits);
        loa::fuzzing::announcement(&input, Some(commune()));
        loa::fuzzing::announcement(&input, None);
    }

    #[test]
    fn arbitrary_bytes_as_an_announcement(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        loa::fuzzing::announcement(&bytes, Some(commune()));
    }

    #[test]
    fn webhooks_never_panic(seed in 0..1000usize, edits in edits(), sig in "\\PC{0,80}") {
        let seeds = webhooks();
        let input = mutate(&seeds[seed % seeds.len()], &edits);
        loa::fuzzing::webhook(&sig, &input);
    }

    #[test]
    fn arbitrary_bytes_as_a_webhook(bytes in prop::collection::vec(any::<u8>(), 0..512), sig in "mac=[0-9a-f]{0,70}") {
        loa::fuzzing::webhook(&sig, &bytes);
    }
}
