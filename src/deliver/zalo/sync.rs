//! Follower sync: who follows the OA, which village each belongs to, and who a village group
//! already reaches. Pages `user/getlist` (50 at a time) for all followers and once per village
//! tag, `group/getgroupsofoa` for the groups' status, `group/listmember` for each village group
//! that is not disabled, and `user/detail` for the heads (whose last interaction decides between
//! `message/cs` and ZNS). The calls are paced by the same limiter as
//! sends, as routine work. Written to the ledger in one go; followers gone since are unfollowed.
//! Then the names Zalo shows for some followers not named yet are looked up (`names.rs`).

use std::collections::{HashMap, HashSet};

use jiff::Timestamp;
use jiff::civil::Date;

use super::api::ApiError;
use super::channel::ZaloChannel;
use super::wire::{
    GroupList, Member, MemberList, UserDetail, UserDetailQuery, UserList, UserListQuery, path,
};
use crate::announce::model::Commune;
use crate::deliver::targets::Follower;
use crate::ledger::Store;

/// Users per `getlist` page (Zalo's maximum).
const PAGE: u32 = 50;

/// Tries per page before the sync gives up (and the last synced list stays in use).
const TRIES: usize = 6;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SyncReport {
    pub followers: usize,
    pub tagged: usize,
    pub in_groups: usize,
    /// Village groups Zalo lists as disabled: their members are written to one by one.
    pub disabled_groups: usize,
    pub heads_checked: usize,
    /// Followers whose Zalo name was looked up (`user/detail`) after the sync.
    pub names: usize,
    pub requests: usize,
}

impl ZaloChannel {
    /// Syncs the commune's followers into the ledger.
    pub async fn sync_followers(
        &self,
        store: &Store,
        commune_id: &str,
        commune: &Commune,
        now: Timestamp,
    ) -> Result<SyncReport, SyncError> {
        let mut report = SyncReport::default();
        let all = self.list_users(None, &mut report).await?;
        let mut village_of: HashMap<String, String> = HashMap::new();
        for v in &commune.villages {
            for user in self.list_users(Some(v.tag()), &mut report).await? {
                village_of.entry(user).or_insert_with(|| v.id.clone());
            }
        }
        let mut groups_of: HashMap<String, Vec<String>> = HashMap::new();
        // The names Zalo shows, where the sync learns them anyway: group members, heads.
        let mut names: HashMap<String, String> = HashMap::new();
        let village_groups: Vec<&str> = commune
            .villages
            .iter()
            .filter_map(|v| v.zalo_group.as_deref())
            .collect();
        let disabled = if village_groups.is_empty() {
            HashSet::new()
        } else {
            self.disabled_groups(&mut report).await?
        };
        for group in village_groups {
            // A disabled group's message fails (-237): were its members counted as reached by
            // it, nobody in the village would get the message.
            if disabled.contains(group) {
                tracing::warn!(
                    group,
                    "village group disabled: its members are written to one by one"
                );
                report.disabled_groups += 1;
                continue;
            }
            for Member { user_id, name } in self.list_members(group, &mut report).await? {
                if !name.is_empty() {
                    names.insert(user_id.clone(), name);
                }
                let groups = groups_of.entry(user_id).or_default();
                if !groups.iter().any(|g| g == group) {
                    groups.push(group.to_string());
                }
            }
        }
        let mut interaction: HashMap<String, Timestamp> = HashMap::new();
        let following: HashSet<&str> = all.iter().map(String::as_str).collect();
        for head in commune
            .villages
            .iter()
            .flat_map(|v| v.heads.iter())
            .chain(&commune.leaders)
        {
            let Some(user) = head.zalo_user.as_deref() else {
                continue;
            };
            if !following.contains(user) {
                continue;
            }
            report.heads_checked += 1;
            let Some(detail) = self.detail(user, false, &mut report).await? else {
                continue;
            };
            if let Some(t) = last_interaction(&detail, &commune.tz) {
                interaction.insert(user.to_string(), t);
            }
            if !detail.display_name.is_empty() {
                names.insert(user.to_string(), detail.display_name);
            }
        }
        let followers: Vec<Follower> = all
            .into_iter()
            .map(|user_id| Follower {
                village_id: village_of.get(&user_id).cloned(),
                in_group: groups_of.contains_key(&user_id),
                groups: groups_of.get(&user_id).cloned().unwrap_or_default(),
                last_interaction: interaction.get(&user_id).copied(),
                display_name: names.remove(&user_id),
                user_id,
            })
            .collect();
        report.followers = followers.len();
        report.tagged = followers.iter().filter(|f| f.village_id.is_some()).count();
        report.in_groups = followers.iter().filter(|f| f.in_group).count();
        store
            .record_follower_sync(commune_id, &followers, now)
            .await?;
        // After the record: sends go by the new list while the names come in.
        self.look_up_names(store, commune_id, now, &mut report)
            .await?;
        Ok(report)
    }

    async fn list_users(
        &self,
        tag: Option<&str>,
        report: &mut SyncReport,
    ) -> Result<Vec<String>, SyncError> {
        let mut out = Vec::new();
        let mut offset = 0;
        loop {
            let query = UserListQuery {
                offset,
                count: PAGE,
                is_follower: Some(true),
                tag_name: tag.map(str::to_string),
                last_interaction_period: None,
            };
            let page: UserList = self
                .get(
                    |token| {
                        let query = query.clone();
                        async move { self.api.get_data(path::USER_LIST, &token, &query).await }
                    },
                    report,
                )
                .await?;
            let n = page.users.len();
            out.extend(page.users.into_iter().map(|u| u.user_id));
            offset += n as u32;
            if n == 0 || u64::from(offset) >= page.total {
                return Ok(out);
            }
        }
    }

    /// The OA's groups Zalo lists as disabled. A refusal of the call (an OA without group
    /// messaging, say) is logged and leaves the set empty: `listmember` still answers for each.
    async fn disabled_groups(&self, report: &mut SyncReport) -> Result<HashSet<String>, SyncError> {
        let mut out = HashSet::new();
        let paged = self
            .group_pages(path::GROUPS_OF_OA, &[], report, |page: GroupList| {
                let n = page.groups.len();
                out.extend(
                    page.groups
                        .into_iter()
                        .filter(|g| g.status.eq_ignore_ascii_case("disabled"))
                        .map(|g| g.group_id),
                );
                (n, page.total)
            })
            .await;
        match paged {
            Ok(()) => Ok(out),
            Err(SyncError::Api(ApiError::Zalo { code, message, .. })) => {
                tracing::warn!(code, %message, "cannot list the OA's groups");
                Ok(out)
            }
            Err(e) => Err(e),
        }
    }

    async fn list_members(
        &self,
        group: &str,
        report: &mut SyncReport,
    ) -> Result<Vec<Member>, SyncError> {
        let mut out = Vec::new();
        let paged = self
            .group_pages(
                path::GROUP_MEMBERS,
                &[("group_id", group.to_string())],
                report,
                |page: MemberList| {
                    let n = page.members.len();
                    out.extend(page.members);
                    (n, page.total)
                },
            )
            .await;
        match paged {
            Ok(()) => Ok(out),
            // A group the OA is not in (or one that was disabled) reaches nobody: its
            // villagers count as outside any group.
            Err(SyncError::Api(ApiError::Zalo { code, message, .. }))
                if code == -403 || code == -237 =>
            {
                tracing::warn!(group, code, %message, "cannot list this group's members");
                Ok(out)
            }
            Err(e) => Err(e),
        }
    }

    /// Pages a group call (plain query parameters, `offset` and `count`) to its end. `take`
    /// keeps a page's items and returns how many it held and the total Zalo gave.
    async fn group_pages<T: serde::de::DeserializeOwned>(
        &self,
        path: &'static str,
        params: &[(&str, String)],
        report: &mut SyncReport,
        mut take: impl FnMut(T) -> (usize, u64),
    ) -> Result<(), SyncError> {
        let mut offset = 0u64;
        loop {
            let mut query = params.to_vec();
            query.push(("offset", offset.to_string()));
            query.push(("count", PAGE.to_string()));
            let page: T = self
                .get(
                    |token| {
                        let query = query.clone();
                        async move { self.api.get_plain(path, &token, &query).await }
                    },
                    report,
                )
                .await?;
            let (n, total) = take(page);
            offset += n as u64;
            if n == 0 || offset >= total {
                return Ok(());
            }
        }
    }

    /// What Zalo tells of one user; None when they no longer follow the OA (`-213`). `spare`:
    /// only when no send waits for the rate limit.
    pub(super) async fn detail(
        &self,
        user: &str,
        spare: bool,
        report: &mut SyncReport,
    ) -> Result<Option<UserDetail>, SyncError> {
        let query = UserDetailQuery {
            user_id: user.to_string(),
        };
        let call = |token: String| {
            let query = query.clone();
            async move { self.api.get_data(path::USER_DETAIL, &token, &query).await }
        };
        match self.get_as(spare, call, report).await {
            Ok(d) => Ok(Some(d)),
            Err(SyncError::Api(ApiError::Zalo { code: -213, .. })) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// One paced, authorised GET: the token refreshed once if Zalo rejects it, and transient
    /// failures (5xx, timeouts, the rate limit) tried again with backoff — reads are safe to
    /// repeat, and one lost page would count a village's followers as gone.
    async fn get<T, F, Fut>(&self, call: F, report: &mut SyncReport) -> Result<T, SyncError>
    where
        F: Fn(String) -> Fut,
        Fut: std::future::Future<Output = Result<(T, super::api::RateInfo), ApiError>>,
    {
        self.get_as(false, call, report).await
    }

    /// `get`, at spare priority when `spare` (see `Limiter::acquire_spare`).
    async fn get_as<T, F, Fut>(
        &self,
        spare: bool,
        call: F,
        report: &mut SyncReport,
    ) -> Result<T, SyncError>
    where
        F: Fn(String) -> Fut,
        Fut: std::future::Future<Output = Result<(T, super::api::RateInfo), ApiError>>,
    {
        let mut access = self.tokens.access().await?;
        let mut refreshed = false;
        let mut backoff = std::time::Duration::from_millis(100);
        for _ in 0..TRIES {
            if spare {
                self.limiter.acquire_spare().await;
            } else {
                self.limiter.acquire(false).await;
            }
            report.requests += 1;
            let wait = match call(access.token.clone()).await {
                Ok((data, _)) => return Ok(data),
                Err(ApiError::Zalo { code, .. })
                    if !refreshed
                        && super::errors::lookup(code).class == super::errors::Class::Refresh =>
                {
                    refreshed = true;
                    access = self.tokens.rejected(access.generation).await?;
                    continue;
                }
                Err(ApiError::Zalo { code: -32, .. }) => self.limiter.pause(),
                Err(ApiError::Http { status }) if status >= 500 => backoff,
                Err(ApiError::Timeout | ApiError::Connect(_)) => backoff,
                Err(e) => return Err(e.into()),
            };
            tokio::time::sleep(wait).await;
            backoff = (backoff * 4).min(std::time::Duration::from_secs(10));
        }
        Err(SyncError::GaveUp(TRIES))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error(transparent)]
    Auth(#[from] super::auth::AuthError),
    #[error("database: {0}")]
    Store(#[from] sqlx::Error),
    #[error("Zalo did not answer after {0} tries")]
    GaveUp(usize),
}

/// The start of the day of a user's last interaction ("DD/MM/YYYY"), commune time: the 7-day
/// window is judged conservatively.
fn last_interaction(detail: &UserDetail, tz: &jiff::tz::TimeZone) -> Option<Timestamp> {
    let d = detail.user_last_interaction_date.as_deref()?;
    let mut it = d.split('/').map(|p| p.trim().parse::<i32>().ok());
    let (Some(Some(day)), Some(Some(month)), Some(Some(year))) = (it.next(), it.next(), it.next())
    else {
        return None;
    };
    Date::new(
        i16::try_from(year).ok()?,
        i8::try_from(month).ok()?,
        i8::try_from(day).ok()?,
    )
    .ok()?
    .to_zoned(tz.clone())
    .ok()
    .map(|z| z.timestamp())
}
