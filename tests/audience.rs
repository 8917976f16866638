//! Who an announcement file addresses, as `loa check` and the daemon read it.

use loa::announce;

const COMMUNE: &str = "commune: Xã Thử\nvillages:\n  - id: a\n    name: Thôn A\n    zalo_group: \"aaaaaaaaaaaaaaaaaaa1\"\n    heads: [{ name: Trưởng A, phone: \"0912345678\" }]\n";

fn audience(roles: &str) -> announce::model::Audience {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("commune.yaml"), COMMUNE).expect("write");
    let file = format!(
        "title: T\nsend:\n  - at: 2026-12-01 08:00\naudience: {{ villages: [a], roles: {roles} }}\n"
    );
    std::fs::write(dir.path().join("t.yaml"), file).expect("write");
    let catalog = announce::load_dir(dir.path()).expect("load");
    assert!(catalog.problems.is_empty(), "{:#?}", catalog.problems);
    catalog.announcements[0].audience.clone()
}

#[test]
fn heads_alone_are_heads_only_and_heads_with_residents_are_everyone() {
    assert!(audience("[village_head]").heads_only);
    assert!(!audience("[residents]").heads_only);
    assert!(!audience("[village_head, residents]").heads_only);
    assert!(!audience("[residents, village_head]").heads_only);
}

#[test]
fn heads_who_cannot_be_reached_count_as_no_heads() {
    let dir = tempfile::tempdir().expect("tempdir");
    let commune = "commune: Xã Thử\nvillages:\n  - id: x\n    name: Xóm Mới\n    heads: [{ name: Trưởng xóm }]\n";
    std::fs::write(dir.path().join("commune.yaml"), commune).expect("write");
    let file = "title: T\nsend:\n  - at: 2026-12-01 08:00\naudience: { villages: [x], roles: [village_head] }\n";
    std::fs::write(dir.path().join("t.yaml"), file).expect("write");
    let catalog = announce::load_dir(dir.path()).expect("load");
    let problems: Vec<String> = catalog
        .problems
        .iter()
        .map(|p| p.render(announce::problem::Lang::En))
        .collect();
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert!(
        problems[0].contains("has no head (with a phone or zalo_user)"),
        "{problems:#?}"
    );
}
