//! Reading and sorting the OA's audience: followers (`user/getlist`, `user/detail`), groups
//! (`getgroupsofoa`, `listmember`) and tags (v2.0). Pure functions of the state, run under its
//! lock after the token and rate checks.

use jiff::{SignedDuration, Timestamp};
use serde::Deserialize;

use super::state::State;
use crate::deliver::zalo::wire::{
    GroupInfo, GroupList, Member, MemberList, RemoveTagBody, SharedInfo, TagFollowerBody,
    TagsAndNotes, UserDetail, UserDetailQuery, UserList, UserListQuery, UserRef,
};

/// `user/getlist` refuses pages larger than this.
pub const MAX_PAGE: u32 = 50;

/// Plain `offset`/`count` query parameters (the group endpoints).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Page {
    #[serde(default)]
    pub offset: Option<u32>,
    #[serde(default)]
    pub count: Option<u32>,
    #[serde(default)]
    pub group_id: Option<String>,
}

impl Page {
    fn range(&self, total: usize) -> std::ops::Range<usize> {
        let from = (self.offset.unwrap_or(0) as usize).min(total);
        let count = self.count.unwrap_or(MAX_PAGE) as usize;
        from..from.saturating_add(count).min(total)
    }
}

pub(crate) fn user_list(
    st: &State,
    q: Option<UserListQuery>,
    now: Timestamp,
) -> Result<UserList, i64> {
    let q = q.ok_or(-201)?;
    if q.count > MAX_PAGE {
        return Err(-201);
    }
    let today = now.to_zoned(st.tz.clone()).date();
    let since = |days: i64| now - SignedDuration::from_hours(24 * days);
    let period: Box<dyn Fn(Timestamp) -> bool> = match q.last_interaction_period.as_deref() {
        None => Box::new(|_| true),
        Some("TODAY") => Box::new(move |t: Timestamp| t.to_zoned(st.tz.clone()).date() == today),
        Some("YESTERDAY") => {
            let yesterday = today.yesterday().map_err(|_| -201)?;
            Box::new(move |t: Timestamp| t.to_zoned(st.tz.clone()).date() == yesterday)
        }
        Some("L7D") => Box::new(move |t| t >= since(7)),
        Some("L30D") => Box::new(move |t| t >= since(30)),
        Some(_) => return Err(-201),
    };
    let matching: Vec<&str> = st
        .users
        .iter()
        .filter(|u| q.is_follower.is_none_or(|f| u.follower == f))
        .filter(|u| q.tag_name.as_ref().is_none_or(|t| u.tags.contains(t)))
        .filter(|u| period(u.last_interaction))
        .map(|u| u.user_id.as_str())
        .collect();
    let from = (q.offset as usize).min(matching.len());
    let to = from.saturating_add(q.count as usize).min(matching.len());
    let users: Vec<UserRef> = matching[from..to]
        .iter()
        .map(|id| UserRef {
            user_id: (*id).to_string(),
        })
        .collect();
    Ok(UserList {
        total: matching.len() as u64,
        count: users.len() as u64,
        offset: u64::from(q.offset),
        users,
    })
}

pub(crate) fn user_detail(st: &State, q: Option<UserDetailQuery>) -> Result<UserDetail, i64> {
    let q = q.ok_or(-201)?;
    let user = st.user(&q.user_id).filter(|u| u.follower).ok_or(-213)?;
    let date = user.last_interaction.to_zoned(st.tz.clone()).date();
    Ok(UserDetail {
        user_id: user.user_id.clone(),
        display_name: user.display_name.clone(),
        user_is_follower: true,
        user_last_interaction_date: Some(format!(
            "{:02}/{:02}/{:04}",
            date.day(),
            date.month(),
            date.year()
        )),
        tags_and_notes_info: Some(TagsAndNotes {
            tag_names: user.tags.clone(),
            notes: Vec::new(),
        }),
        shared_info: user.phone.as_ref().map(|phone| SharedInfo {
            phone: phone.clone(),
            name: user.display_name.clone(),
            address: String::new(),
        }),
    })
}

/// The groups the OA is in (disabled ones too, with their status); `count` is clamped, not refused.
pub(crate) fn groups(st: &State, page: Page) -> GroupList {
    let mine: Vec<_> = st.groups.iter().filter(|g| g.oa_is_member).collect();
    let groups = mine[page.range(mine.len())]
        .iter()
        .map(|g| GroupInfo {
            group_id: g.group_id.clone(),
            name: g.name.clone(),
            status: if g.disabled { "disabled" } else { "enabled" }.into(),
            total_member: g.members.len() as u64,
        })
        .collect();
    GroupList {
        total: mine.len() as u64,
        groups,
    }
}

pub(crate) fn members(st: &State, page: Page) -> Result<MemberList, i64> {
    let id = page.group_id.as_deref().ok_or(-201)?;
    let group = st
        .group_at(id)
        .map(|g| &st.groups[g as usize])
        .filter(|g| g.oa_is_member)
        .ok_or(-403)?;
    let members = group.members[page.range(group.members.len())]
        .iter()
        .map(|id| Member {
            user_id: id.clone(),
            name: st
                .user(id)
                .map(|u| u.display_name.clone())
                .unwrap_or_default(),
        })
        .collect();
    Ok(MemberList {
        total: group.members.len() as u64,
        members,
    })
}

/// `tag/tagfollower`: tags a follower, creating the tag if new.
pub(crate) fn tag_follower(st: &mut State, body: Option<TagFollowerBody>) -> Result<(), i64> {
    let body = body.filter(|b| !b.tag_name.trim().is_empty()).ok_or(-201)?;
    let at = st
        .user_at(&body.user_id)
        .filter(|&i| st.users[i as usize].follower)
        .ok_or(-213)?;
    if !st.tags.contains(&body.tag_name) {
        st.tags.push(body.tag_name.clone());
    }
    let tags = &mut st.users[at as usize].tags;
    if !tags.contains(&body.tag_name) {
        tags.push(body.tag_name);
    }
    Ok(())
}

/// `tag/rmfollowerfromtag`: unknown tags are refused (-201); untagging an untagged user is fine.
pub(crate) fn untag_follower(st: &mut State, body: Option<TagFollowerBody>) -> Result<(), i64> {
    let body = body.ok_or(-201)?;
    if !st.tags.contains(&body.tag_name) {
        return Err(-201);
    }
    let at = st.user_at(&body.user_id).ok_or(-213)?;
    st.users[at as usize].tags.retain(|t| *t != body.tag_name);
    Ok(())
}

/// `tag/rmtag`: removes the tag from the OA and from everyone who had it.
pub(crate) fn remove_tag(st: &mut State, body: Option<RemoveTagBody>) -> Result<(), i64> {
    let body = body.ok_or(-201)?;
    let before = st.tags.len();
    st.tags.retain(|t| *t != body.tag_name);
    if st.tags.len() == before {
        return Err(-201);
    }
    for user in &mut st.users {
        user.tags.retain(|t| *t != body.tag_name);
    }
    Ok(())
}
