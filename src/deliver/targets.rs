//! Who an announcement reaches, as delivery targets. Residents of a village are reached through
//! its Zalo group (one message reaches every member); followers of the OA whom none of the send's
//! groups reaches (in no village group, or in another village's) are reached one by one
//! (`message/cs`), by their village tag, or all of them for the whole commune. A village without a group is reached through its heads too, who pass it on, as Long
//! Môn's village heads do. Heads are reached by Zalo id while they are inside Zalo's 7-day window,
//! else by phone (ZNS); a head with both carries the phone as a fallback.

use std::collections::{HashMap, HashSet};

use jiff::{SignedDuration, Timestamp};

use super::TargetKind;
use crate::announce::model::{Audience, Commune, Person, Village};

/// How long after a person's last interaction the OA may still write to them (`-230` after).
pub const INTERACTION_WINDOW: SignedDuration = SignedDuration::from_hours(7 * 24);

#[derive(Clone, Debug)]
pub struct Target<'a> {
    /// None for a follower tagged with no village (whole-commune announcements only).
    pub village: Option<&'a Village>,
    pub kind: TargetKind,
    pub address: String,
    pub person: Option<String>,
    pub fallback: Option<String>,
}

/// One follower of the OA, as last synced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Follower {
    pub user_id: String,
    pub village_id: Option<String>,
    pub in_group: bool,
    /// The village groups they are in (Zalo group ids); empty with `in_group` when not known.
    pub groups: Vec<String>,
    pub last_interaction: Option<Timestamp>,
    pub display_name: Option<String>,
}

/// The followers known to the ledger, ready for expansion.
#[derive(Clone, Debug, Default)]
pub struct Followers {
    /// By village tag (None: untagged).
    by_village: HashMap<Option<String>, Vec<usize>>,
    all: Vec<Follower>,
    by_id: HashMap<String, usize>,
}

impl Follower {
    /// Whether one of `groups` (the village groups a send goes to) reaches them already. When
    /// their groups are not known (synced before loa kept them), any group counts.
    fn reached_by(&self, groups: &HashSet<&str>) -> bool {
        self.in_group
            && (self.groups.is_empty() || self.groups.iter().any(|g| groups.contains(g.as_str())))
    }
}

impl Followers {
    pub fn new(all: Vec<Follower>) -> Followers {
        let mut by_village: HashMap<Option<String>, Vec<usize>> = HashMap::new();
        let mut by_id = HashMap::with_capacity(all.len());
        for (i, f) in all.iter().enumerate() {
            by_id.insert(f.user_id.clone(), i);
            by_village.entry(f.village_id.clone()).or_default().push(i);
        }
        Followers {
            by_village,
            all,
            by_id,
        }
    }

    fn last_interaction(&self, user_id: &str) -> Option<Timestamp> {
        self.by_id
            .get(user_id)
            .and_then(|i| self.all[*i].last_interaction)
    }

    /// Whom a send to `group` (the group of `village`) counted on reaching, as last synced: its
    /// members, and the followers of `village` in a group not known (synced before loa kept them).
    pub fn members_of<'s>(
        &'s self,
        group: &'s str,
        village: Option<&'s str>,
    ) -> impl Iterator<Item = &'s Follower> {
        self.all.iter().filter(move |f| {
            f.in_group
                && (f.groups.iter().any(|g| g == group)
                    || (f.groups.is_empty() && f.village_id.as_deref() == village))
        })
    }

    /// The followers tagged `village` whom none of `groups` reaches.
    fn outside<'s>(
        &'s self,
        village: Option<&str>,
        groups: &'s HashSet<&str>,
    ) -> impl Iterator<Item = &'s Follower> {
        self.by_village
            .get(&village.map(str::to_string))
            .into_iter()
            .flatten()
            .map(|i| &self.all[*i])
            .filter(move |f| !f.reached_by(groups))
    }
}

/// A head (or leader) reached one by one.
pub fn person(
    p: &Person,
    followers: &Followers,
    now: Timestamp,
) -> Option<(TargetKind, String, Option<String>)> {
    match (&p.zalo_user, &p.phone) {
        (Some(user), phone) => {
            let window_closed = followers
                .last_interaction(user)
                .is_some_and(|t| now.duration_since(t) > INTERACTION_WINDOW);
            match phone {
                Some(phone) if window_closed => Some((TargetKind::Phone, phone.clone(), None)),
                _ => Some((TargetKind::User, user.clone(), phone.clone())),
            }
        }
        (None, Some(phone)) => Some((TargetKind::Phone, phone.clone(), None)),
        (None, None) => None,
    }
}

/// The targets of an audience: village groups and heads first, village by village, then the
/// followers no group of the send reaches; without duplicates.
pub fn expand<'a>(
    audience: &Audience,
    commune: &'a Commune,
    followers: &Followers,
    now: Timestamp,
) -> Vec<Target<'a>> {
    let villages: Vec<&'a Village> = audience
        .villages
        .iter()
        .filter_map(|id| commune.village(id))
        .collect();
    let mut out: Vec<Target<'a>> = Vec::new();
    // Heads reached one by one (by phone when Zalo's window has closed) are not also written to
    // as followers: one person, one message.
    let mut heads_reached: HashSet<&str> = HashSet::new();
    for &village in &villages {
        match (&village.zalo_group, audience.heads_only) {
            (Some(group), false) => out.push(Target {
                village: Some(village),
                kind: TargetKind::Group,
                address: group.clone(),
                person: None,
                fallback: None,
            }),
            _ => {
                for h in &village.heads {
                    if let Some((kind, address, fallback)) = person(h, followers, now) {
                        heads_reached.extend(h.zalo_user.as_deref());
                        out.push(Target {
                            village: Some(village),
                            kind,
                            address,
                            person: Some(h.name.clone()),
                            fallback,
                        });
                    }
                }
            }
        }
    }
    if !audience.heads_only {
        // A follower in a group this send goes to has it already; one in another village's group
        // (or in none) is reached one by one.
        let sent_groups: HashSet<&str> = villages
            .iter()
            .filter_map(|v| v.zalo_group.as_deref())
            .collect();
        let outside = |id: Option<&str>| {
            followers
                .outside(id, &sent_groups)
                .filter(|f| !heads_reached.contains(f.user_id.as_str()))
                .collect::<Vec<_>>()
        };
        for &village in &villages {
            out.extend(
                outside(Some(&village.id))
                    .into_iter()
                    .map(|f| follower(Some(village), f)),
            );
        }
        if audience.whole_commune {
            out.extend(outside(None).into_iter().map(|f| follower(None, f)));
        }
    }
    let mut seen = HashSet::new();
    out.retain(|t| seen.insert((t.kind, t.address.clone())));
    out
}

fn follower<'a>(village: Option<&'a Village>, f: &Follower) -> Target<'a> {
    Target {
        village,
        kind: TargetKind::User,
        address: f.user_id.clone(),
        person: f.display_name.clone(),
        fallback: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::announce::model::Person;

    fn person(name: &str, phone: Option<&str>, user: Option<&str>) -> Person {
        Person {
            id: None,
            name: name.into(),
            phone: phone.map(str::to_string),
            zalo_user: user.map(str::to_string),
        }
    }

    fn commune() -> Commune {
        let village = |id: &str, group: Option<&str>, heads: Vec<Person>| Village {
            id: id.into(),
            name: id.to_uppercase(),
            zalo_group: group.map(str::to_string),
            zalo_tag: None,
            heads,
        };
        Commune {
            name: "Xã Thử".into(),
            tz: jiff::tz::TimeZone::UTC,
            quiet_hours: None,
            villages: vec![
                village(
                    "a",
                    Some("ga"),
                    vec![person("Trưởng A", Some("84900000001"), Some("u-ha"))],
                ),
                village(
                    "b",
                    None,
                    vec![
                        person("Trưởng B", Some("84900000002"), Some("u-hb")),
                        person("Phó B", Some("84900000003"), None),
                    ],
                ),
            ],
            leaders: vec![],
        }
    }

    fn follower(
        id: &str,
        village: Option<&str>,
        in_group: bool,
        last: Option<Timestamp>,
    ) -> Follower {
        Follower {
            user_id: id.into(),
            village_id: village.map(str::to_string),
            in_group,
            groups: if in_group { vec!["ga".into()] } else { vec![] },
            last_interaction: last,
            display_name: None,
        }
    }

    #[test]
    fn a_follower_in_another_villages_group_is_reached_one_by_one() {
        let now = Timestamp::from_second(1_800_000_000).unwrap();
        let c = commune();
        // u5 is tagged B but is a member of A's group; u6's groups are not known yet (synced
        // before loa kept them): any group counts, as before.
        let mut u6 = follower("u6", Some("b"), true, None);
        u6.groups.clear();
        let followers = Followers::new(vec![follower("u5", Some("b"), true, None), u6]);
        let to = |villages: &[&str]| {
            let audience = Audience {
                villages: villages.iter().map(|v| v.to_string()).collect(),
                whole_commune: false,
                heads_only: false,
            };
            addresses(&expand(&audience, &c, &followers, now))
        };
        let u5 = (TargetKind::User, "u5".to_string(), None);
        assert!(
            to(&["b"]).contains(&u5),
            "B's own announcement reaches them"
        );
        assert!(!to(&["a", "b"]).contains(&u5), "A's group does, once");
        assert!(!to(&["b"]).contains(&(TargetKind::User, "u6".to_string(), None)));
    }

    fn addresses(targets: &[Target<'_>]) -> Vec<(TargetKind, String, Option<String>)> {
        targets
            .iter()
            .map(|t| (t.kind, t.address.clone(), t.fallback.clone()))
            .collect()
    }

    #[test]
    fn groups_then_followers_outside_them_then_heads_by_window() {
        let now = Timestamp::from_second(1_800_000_000).unwrap();
        let c = commune();
        let followers = Followers::new(vec![
            follower("u1", Some("a"), true, None),  // reached by group A
            follower("u2", Some("a"), false, None), // village A, not in the group
            follower("u3", Some("b"), false, None), // village B (no group)
            follower("u4", None, false, None),      // untagged
            // Head B last wrote 8 days ago: the OA may no longer write to them.
            follower(
                "u-hb",
                Some("b"),
                false,
                Some(now - SignedDuration::from_hours(8 * 24)),
            ),
        ]);
        let whole = Audience {
            villages: vec!["a".into(), "b".into()],
            whole_commune: true,
            heads_only: false,
        };
        let got = addresses(&expand(&whole, &c, &followers, now));
        let user = |s: &str| (TargetKind::User, s.to_string(), None);
        let phone = |s: &str| (TargetKind::Phone, s.to_string(), None);
        assert_eq!(
            got,
            vec![
                (TargetKind::Group, "ga".to_string(), None),
                phone("84900000002"), // head B: window closed, by phone (and not also by cs)
                phone("84900000003"),
                user("u2"),
                user("u3"),
                user("u4"), // whole commune: untagged followers too
            ]
        );
        // One village: no untagged followers.
        let only_b = Audience {
            villages: vec!["b".into()],
            whole_commune: false,
            heads_only: false,
        };
        let got = addresses(&expand(&only_b, &c, &followers, now));
        assert!(!got.contains(&user("u4")) && got.contains(&user("u3")));
        // Heads only: head A by Zalo id with the phone behind it (window unknown: try Zalo first).
        let heads = Audience {
            villages: vec!["a".into()],
            whole_commune: false,
            heads_only: true,
        };
        assert_eq!(
            addresses(&expand(&heads, &c, &followers, now)),
            vec![(
                TargetKind::User,
                "u-ha".to_string(),
                Some("84900000001".to_string())
            )]
        );
    }
}
