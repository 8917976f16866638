//! Who was reached, from Zalo's side: webhook events applied to the ledger. A receipt moves a
//! delivery forward (sent → delivered → seen, never back), follows and unfollows keep the follower
//! list current between syncs, and what people write to the OA is kept for staff (and reopens
//! Zalo's 7-day window for writing to them). Village heads confirm by reply or by a signed link;
//! those who do not are reminded, then reported to the commune's leaders (`follow_up`).

pub mod events;
pub mod follow_up;
pub mod link;
pub mod phrases;

use crate::announce::model::{Announcement, Commune};

/// The heads asked to confirm who have no way to: without confirm links, a head confirms only by
/// replying on Zalo, which a head known by phone alone cannot be matched by. As "name (village)",
/// each once, for the operator's log.
pub fn unable_to_confirm<'a>(
    commune: &Commune,
    announcements: impl IntoIterator<Item = &'a Announcement>,
) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for ann in announcements.into_iter().filter(|a| a.confirm.is_some()) {
        for village in ann
            .audience
            .villages
            .iter()
            .filter_map(|v| commune.village(v))
        {
            for head in village.heads.iter().filter(|h| h.zalo_user.is_none()) {
                let who = format!("{} ({})", head.name, village.name);
                if !out.contains(&who) {
                    out.push(who);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn heads_known_by_phone_alone_cannot_confirm_without_links() {
        let dir = tempfile::tempdir().expect("dir");
        std::fs::write(
            dir.path().join("commune.yaml"),
            "commune: Xã Thử\nvillages:\n  - id: a\n    name: Thôn A\n    heads: [{ name: Trưởng A, zalo_user: \"100001\" }]\n  - id: b\n    name: Thôn B\n    heads:\n      - { name: Trưởng B, zalo_user: \"200001\" }\n      - { name: Phó B, phone: \"0912345678\" }\n",
        )
        .expect("write");
        let commune = crate::announce::load_commune(dir.path()).expect("commune");
        let parse = |name: &str, text: &str| {
            crate::announce::announcement_from_text(
                dir.path(),
                &dir.path().join(name),
                text,
                Some(&commune),
            )
            .expect("valid")
        };
        let asks = parse(
            "hop.yaml",
            "title: Họp\nsend:\n  - at: 2026-12-01 08:00\nconfirm: { by: [village_head], within: 1h }\n",
        );
        let tells = parse("tb.yaml", "title: Tin\nsend:\n  - at: 2026-12-01 08:00\n");
        assert_eq!(
            super::unable_to_confirm(&commune, [&asks, &asks]),
            ["Phó B (Thôn B)"]
        );
        assert!(super::unable_to_confirm(&commune, [&tells]).is_empty());
    }
}
