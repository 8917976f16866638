//! Who an announcement reaches, as delivery targets. Residents of a village are reached through
//! its Zalo group; a village without a group is reached through its heads (who pass it on, as
//! Long Môn's village heads do). Heads are reached one by one: by Zalo user id when they have one,
//! else by phone. Followers outside any group join with the Zalo channel's follower sync.

use super::TargetKind;
use crate::announce::model::{Audience, Commune, Person, Village};

#[derive(Clone, Debug)]
pub struct Target<'a> {
    pub village: &'a Village,
    pub kind: TargetKind,
    pub address: String,
    pub person: Option<&'a str>,
}

fn person<'a>(village: &'a Village, p: &'a Person) -> Option<Target<'a>> {
    let (kind, address) = match (&p.zalo_user, &p.phone) {
        (Some(user), _) => (TargetKind::User, user.clone()),
        (None, Some(phone)) => (TargetKind::Phone, phone.clone()),
        (None, None) => return None,
    };
    Some(Target {
        village,
        kind,
        address,
        person: Some(&p.name),
    })
}

/// The targets of an audience, village by village, without duplicates.
pub fn expand<'a>(audience: &Audience, commune: &'a Commune) -> Vec<Target<'a>> {
    let mut out: Vec<Target<'a>> = Vec::new();
    for village in audience
        .villages
        .iter()
        .filter_map(|id| commune.village(id))
    {
        match (&village.zalo_group, audience.heads_only) {
            (Some(group), false) => out.push(Target {
                village,
                kind: TargetKind::Group,
                address: group.clone(),
                person: None,
            }),
            _ => out.extend(village.heads.iter().filter_map(|h| person(village, h))),
        }
    }
    let mut seen = std::collections::HashSet::new();
    out.retain(|t| seen.insert((t.kind, t.address.clone())));
    out
}
