//! Who an announcement reaches, as delivery targets. Residents of a village are reached through
//! its Zalo group (one message reaches every member); followers of the OA who are in no village
//! group are reached one by one (`message/cs`), by their village tag, or all of them for the whole
//! commune. A village without a group is reached through its heads too, who pass it on, as Long
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
    pub last_interaction: Option<Timestamp>,
    pub display_name: Option<String>,
}

/// The followers known to the ledger, ready for expansion.
#[derive(Clone, Debug, Default)]
pub struct Followers {
    /// Outside every village group, by village (None: untagged).
    outside_groups: HashMap<Option<String>, Vec<usize>>,
    all: Vec<Follower>,
    by_id: HashMap<String, usize>,
}

impl Followers {
    pub fn new(all: Vec<Follower>) -> Followers {
        let mut outside_groups: HashMap<Option<String>, Vec<usize>> = HashMap::new();
        let mut by_id = HashMap::with_capacity(all.len());
        for (i, f) in all.iter().enumerate() {
            by_id.insert(f.user_id.clone(), i);
            if !f.in_group {
                outside_groups
                    .entry(f.village_id.clone())
                    .or_default()
                    .push(i);
            }
        }
        Followers {
            outside_groups,
            all,
            by_id,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.all.is_empty()
    }

    fn last_interaction(&self, user_id: &str) -> Option<Timestamp> {
        self.by_id
            .get(user_id)
            .and_then(|i| self.all[*i].last_interaction)
    }

    fn outside(&self, village: Option<&str>) -> impl Iterator<Item = &Follower> {
        self.outside_groups
            .get(&village.map(str::to_string))
            .into_iter()
            .flatten()
            .map(|i| &self.all[*i])
    }
}

/// A head (or leader) reached one by one.
fn person(
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

/// The targets of an audience, village by village, without duplicates.
pub fn expand<'a>(
    audience: &Audience,
    commune: &'a Commune,
    followers: &Followers,
    now: Timestamp,
) -> Vec<Target<'a>> {
    let mut out: Vec<Target<'a>> = Vec::new();
    for village in audience
        .villages
        .iter()
        .filter_map(|id| commune.village(id))
    {
        let heads = |out: &mut Vec<Target<'a>>| {
            out.extend(village.heads.iter().filter_map(|h| {
                person(h, followers, now).map(|(kind, address, fallback)| Target {
                    village: Some(village),
                    kind,
                    address,
                    person: Some(h.name.clone()),
                    fallback,
                })
            }))
        };
        if audience.heads_only {
            heads(&mut out);
            continue;
        }
        match &village.zalo_group {
            Some(group) => out.push(Target {
                village: Some(village),
                kind: TargetKind::Group,
                address: group.clone(),
                person: None,
                fallback: None,
            }),
            None => heads(&mut out),
        }
        out.extend(
            followers
                .outside(Some(&village.id))
                .map(|f| follower(Some(village), f)),
        );
    }
    if audience.whole_commune && !audience.heads_only {
        out.extend(followers.outside(None).map(|f| follower(None, f)));
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
