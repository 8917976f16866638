//! The announcement files changing under a running daemon: edits, deletions and broken edits
//! mid-schedule, two files with one id, directories moved in and out, a file restored.

use super::*;

#[tokio::test]
async fn edits_deletions_and_broken_edits_mid_schedule() {
    let v1 = "title: Phiên bản một\naudience: { villages: [a] }\nsend:\n  - cron: \"0 8 * * *\"\n    from: 2026-12-01\n";
    let h = harness(&[("tb.yaml", v1)], "2026-11-30 12:00").await;
    assert_eq!(h.at("2026-12-01 08:00").await.sent, 1);
    // Edited: the next send carries the new text; what was sent stays sent, nothing twice.
    h.edit(
        "tb.yaml",
        Some(&v1.replace("một", "hai")),
        "2026-12-01 09:00",
    )
    .await;
    assert_eq!(h.at("2026-12-02 08:00").await.sent, 1);
    // Broken: the last good version keeps going, and the problem is kept.
    h.edit("tb.yaml", Some("title: [không đóng\n"), "2026-12-02 09:00")
        .await;
    let problems = h.daemon.store.file_problems("thu").await.expect("problems");
    assert_eq!(problems.len(), 1);
    assert_eq!(h.at("2026-12-03 08:00").await.sent, 1);
    // Deleted: nothing more.
    h.edit("tb.yaml", None, "2026-12-03 09:00").await;
    assert_eq!(h.at("2026-12-04 08:00").await.sent, 0);
    let texts: Vec<String> = h.sent().into_iter().map(|(_, t)| t).collect();
    assert_eq!(texts.len(), 3);
    assert!(
        texts[0].starts_with("Phiên bản một")
            && texts[1].starts_with("Phiên bản hai")
            && texts[2].starts_with("Phiên bản hai"),
        "{texts:?}"
    );
    let revisions: i64 = sqlx::query("SELECT COUNT(*) FROM revisions")
        .fetch_one(h.daemon.store.pool())
        .await
        .expect("q")
        .try_get(0)
        .expect("n");
    assert_eq!(revisions, 2, "the broken edit is not a revision");
}

#[tokio::test]
async fn two_files_with_one_id_are_refused_until_one_goes() {
    // `tb.yaml` and `tb.yml` would both be announcement `tb`: neither goes out, both are
    // reported, and once one is removed the other is the announcement.
    let one = "title: Một\naudience: { villages: [a] }\nsend:\n  - at: 2026-12-01 08:00\n";
    let two = one.replace("Một", "Hai");
    let h = harness(&[("tb.yaml", one), ("tb.yml", &two)], "2026-12-01 07:00").await;
    let catalog = loa::announce::load_dir(&h.dir.path().join("announcements")).expect("load");
    let codes: Vec<&str> = catalog.problems.iter().map(|p| p.kind.code()).collect();
    assert_eq!(codes, ["same-id-file", "same-id-file"]);
    assert!(catalog.announcements.is_empty());
    h.edit("tb.yml", None, "2026-12-01 07:30").await;
    assert_eq!(h.at("2026-12-01 08:00").await.sent, 1);
    let sent = h.sent();
    assert!(sent[0].1.starts_with("Một"), "{sent:?}");
}

#[tokio::test]
async fn a_directory_moved_in_is_planned_and_one_moved_out_is_cancelled() {
    let h = harness(
        &[("hop.yaml", "title: Họp\nsend:\n  - at: 2026-12-01 10:00\n")],
        "2026-12-01 08:00",
    )
    .await;
    // `mv ~/soan/cccd announcements/`: the watcher reports the directory alone.
    let moved = h.dir.path().join("announcements/cccd");
    std::fs::create_dir_all(&moved).expect("dir");
    std::fs::write(
        moved.join("dot-1.yaml"),
        "title: Làm CCCD\nsend:\n  - at: 2026-12-01 09:00\n",
    )
    .expect("write");
    h.daemon
        .load_files(std::slice::from_ref(&moved), t("2026-12-01 08:05"))
        .await
        .expect("reload");
    h.at("2026-12-01 09:00").await;
    assert!(
        h.sent().iter().any(|(_, text)| text.contains("Làm CCCD")),
        "{:?}",
        h.sent()
    );
    // And moved out again: the meeting's send is cancelled with the directory holding it.
    let hop = h.dir.path().join("announcements/thon");
    std::fs::create_dir_all(&hop).expect("dir");
    std::fs::rename(h.path("hop.yaml"), hop.join("hop.yaml")).expect("move");
    std::fs::rename(&hop, h.dir.path().join("thon")).expect("move out");
    h.daemon
        .load_files(&[hop], t("2026-12-01 09:05"))
        .await
        .expect("reload");
    h.at("2026-12-01 10:00").await;
    assert!(
        !h.sent().iter().any(|(_, text)| text.contains("Họp")),
        "{:?}",
        h.sent()
    );
}

#[tokio::test]
async fn a_file_deleted_then_restored_unchanged_is_sent_as_planned() {
    // `git checkout` of a branch without the file and back, or a file deleted by mistake and put
    // back: the same content returns, and its sends must too.
    let file = "title: Họp\naudience: { villages: [a] }\nsend:\n  - at: 2026-12-01 10:00\n";
    let h = harness(&[("hop.yaml", file)], "2026-12-01 08:00").await;
    h.edit("hop.yaml", None, "2026-12-01 08:10").await;
    h.edit("hop.yaml", Some(file), "2026-12-01 08:20").await;
    let report = h.at("2026-12-01 10:00").await;
    assert_eq!(report.sent, 1, "{report:?}");
}
