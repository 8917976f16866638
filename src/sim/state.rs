//! Everything that changes while the simulator runs: the population with its indexes, the messages
//! accepted, tokens, the rate window, faults and counters. It lives behind the one mutex in
//! [`super::Inner`]; methods here never block or await.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use jiff::tz::TimeZone;
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::SimConfig;
use super::faults::Faults;
use super::population::{Population, SimGroup, SimUser};
use super::tokens::Tokens;
use super::webhook::Job;

pub(crate) struct State {
    pub users: Vec<SimUser>,
    user_index: HashMap<String, u32>,
    phone_index: HashMap<String, u32>,
    pub groups: Vec<SimGroup>,
    group_index: HashMap<String, u32>,
    /// The OA's tags, in creation order.
    pub tags: Vec<String>,
    records: Vec<Record>,
    pub tokens: Tokens,
    pub faults: Faults,
    pub webhook_url: Option<String>,
    /// Faults, people and churn draw from this, so a seed replays the same run for the same
    /// sequence of requests.
    pub rng: StdRng,
    ids: MessageIds,
    pub rate: RateWindow,
    pub counters: Counters,
    pub jobs: mpsc::UnboundedSender<Job>,
    pub tz: TimeZone,
    /// ZNS messages a day, counted by the commune's date (Zalo's `dailyQuota`).
    pub zns_daily_quota: u64,
    pub zns_day: Option<jiff::civil::Date>,
    pub zns_today: u64,
}

/// One accepted message, kept compact: who it reached is resolved when asked for.
pub(crate) struct Record {
    pub message_id: String,
    pub kind: Kind,
    pub to: String,
    pub text: String,
    pub tracking_id: Option<String>,
    pub at: Timestamp,
    pub reached: Reached,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Cs,
    Group,
    Zns,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Cs => "cs",
            Kind::Group => "group",
            Kind::Zns => "zns",
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub(crate) enum Reached {
    User(u32),
    Group(u32),
    Nobody,
}

/// A message the simulator accepted.
#[derive(Clone, Debug, Serialize)]
pub struct SimMessage {
    pub seq: u64,
    pub message_id: String,
    /// `cs`, `group` or `zns`.
    pub kind: &'static str,
    /// The user id, group id or phone it was sent to.
    pub to: String,
    /// The text; for ZNS the template data as JSON.
    pub text: String,
    pub tracking_id: Option<String>,
    pub at: Timestamp,
    /// The user ids it reached: the user, the group's members, the phone's owner if known.
    pub reached: Vec<String>,
}

/// `/_sim/messages` filters.
#[derive(Clone, Debug, Default, Deserialize)]
pub(crate) struct MessageFilter {
    pub to: Option<String>,
    pub kind: Option<String>,
    pub since_seq: Option<u64>,
    pub limit: Option<usize>,
}

/// Counters since start.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SimStats {
    /// OA API and token calls that reached a handler (faulted ones are counted apart).
    pub requests: u64,
    pub requests_by_path: BTreeMap<String, u64>,
    /// By error code, 0 for success; OAuth errors included.
    pub answers_by_error: BTreeMap<i64, u64>,
    pub messages: u64,
    pub zns_sent: u64,
    pub rate_limited: u64,
    /// The most OA API calls counted in any one rate window.
    pub max_requests_in_window: u32,
    pub server_errors: u64,
    pub timeouts: u64,
    pub drops: u64,
    pub token_exchanges: u64,
    pub token_refreshes: u64,
    pub refresh_reuse_rejections: u64,
    /// Webhook deliveries answered 200 (duplicates and retries included).
    pub webhooks_sent: u64,
    /// Webhook deliveries that failed (non-200 or no connection).
    pub webhooks_failed: u64,
    pub webhooks_retried: u64,
    pub webhooks_given_up: u64,
    pub webhooks_duplicated: u64,
    pub replies: u64,
    pub churn_events: u64,
}

impl SimStats {
    /// The calls to `path` (e.g. `/v3.0/oa/user/detail`) that reached a handler.
    pub fn calls(&self, path: &str) -> u64 {
        self.requests_by_path.get(path).copied().unwrap_or(0)
    }
}

#[derive(Default)]
pub(crate) struct Counters {
    pub stats: SimStats,
    /// By static path, turned into strings only when stats are asked for.
    by_path: HashMap<&'static str, u64>,
}

impl Counters {
    pub fn request(&mut self, path: &'static str) {
        self.stats.requests += 1;
        *self.by_path.entry(path).or_default() += 1;
    }

    pub fn answer(&mut self, error: i64) {
        *self.stats.answers_by_error.entry(error).or_default() += 1;
    }
}

/// Fixed windows counted from the simulator's start, as a per-minute quota would be.
pub(crate) struct RateWindow {
    start: Instant,
    count: u32,
    pub max: u32,
}

impl RateWindow {
    /// Counts one call; returns the count in the current window, this call included.
    pub fn hit(&mut self, now: Instant, window: Duration) -> u32 {
        let elapsed = now.saturating_duration_since(self.start);
        if elapsed >= window && !window.is_zero() {
            let windows = elapsed.as_nanos() / window.as_nanos();
            self.start += window * u32::try_from(windows).unwrap_or(u32::MAX);
            self.count = 0;
        }
        self.count = self.count.saturating_add(1);
        self.max = self.max.max(self.count);
        self.count
    }
}

/// Message ids: a counter through a bijection of 80-bit numbers (multiply by an odd constant,
/// xor a key drawn from the seed), so they are unique without a set and look like Zalo's.
struct MessageIds {
    next: u128,
    key: u128,
}

const MASK_80: u128 = (1 << 80) - 1;

impl MessageIds {
    fn next(&mut self) -> String {
        self.next += 1;
        let n = (self.next.wrapping_mul(0x9e37_79b9_7f4a_7c15_f39d) ^ self.key) & MASK_80;
        format!("{n:020x}")
    }
}

impl State {
    pub fn new(config: &SimConfig, jobs: mpsc::UnboundedSender<Job>) -> State {
        let mut rng = StdRng::seed_from_u64(config.seed);
        let key = rand::Rng::random::<u128>(&mut rng) & MASK_80;
        let mut state = State {
            users: Vec::new(),
            user_index: HashMap::new(),
            phone_index: HashMap::new(),
            groups: Vec::new(),
            group_index: HashMap::new(),
            tags: Vec::new(),
            records: Vec::new(),
            tokens: Tokens::new(config.seed ^ 0x746f_6b65_6e73),
            faults: config.faults.clone(),
            webhook_url: config.webhook_url.clone(),
            rng,
            ids: MessageIds { next: 0, key },
            rate: RateWindow {
                start: Instant::now(),
                count: 0,
                max: 0,
            },
            counters: Counters::default(),
            jobs,
            tz: TimeZone::get("Asia/Ho_Chi_Minh").unwrap_or(TimeZone::UTC),
            zns_daily_quota: config.zns_daily_quota,
            zns_day: None,
            zns_today: 0,
        };
        for user in config.population.users.iter().cloned() {
            state.set_user(user);
        }
        for group in config.population.groups.iter().cloned() {
            state.set_group(group);
        }
        state
    }

    pub fn message_id(&mut self) -> String {
        self.ids.next()
    }

    pub fn user_at(&self, user_id: &str) -> Option<u32> {
        self.user_index.get(user_id).copied()
    }

    pub fn user(&self, user_id: &str) -> Option<&SimUser> {
        self.users.get(self.user_at(user_id)? as usize)
    }

    pub fn phone_owner(&self, phone: &str) -> Option<u32> {
        self.phone_index.get(phone).copied()
    }

    pub fn group_at(&self, group_id: &str) -> Option<u32> {
        self.group_index.get(group_id).copied()
    }

    pub fn set_user(&mut self, user: SimUser) {
        for tag in &user.tags {
            if !self.tags.contains(tag) {
                self.tags.push(tag.clone());
            }
        }
        let at = match self.user_at(&user.user_id) {
            Some(at) => {
                let old = &self.users[at as usize];
                if let Some(phone) = &old.phone {
                    self.phone_index.remove(phone);
                }
                self.users[at as usize] = user;
                at
            }
            None => {
                let at = u32::try_from(self.users.len()).unwrap_or(u32::MAX);
                self.user_index.insert(user.user_id.clone(), at);
                self.users.push(user);
                at
            }
        };
        if let Some(phone) = &self.users[at as usize].phone {
            self.phone_index.insert(phone.clone(), at);
        }
    }

    pub fn set_group(&mut self, group: SimGroup) {
        match self.group_at(&group.group_id) {
            Some(at) => self.groups[at as usize] = group,
            None => {
                let at = u32::try_from(self.groups.len()).unwrap_or(u32::MAX);
                self.group_index.insert(group.group_id.clone(), at);
                self.groups.push(group);
            }
        }
    }

    pub fn set_interaction(&mut self, user_id: &str, at: Timestamp) -> bool {
        match self.user_at(user_id) {
            Some(i) => {
                self.users[i as usize].last_interaction = at;
                true
            }
            None => false,
        }
    }

    /// Records an accepted message; returns its sequence number (1-based).
    pub fn record(&mut self, record: Record) -> u64 {
        self.records.push(record);
        self.counters.stats.messages += 1;
        self.records.len() as u64
    }

    pub fn record_at(&self, seq: u64) -> Option<&Record> {
        self.records.get(usize::try_from(seq).ok()?.checked_sub(1)?)
    }

    /// The user ids a message reached.
    pub fn reached(&self, reached: Reached) -> Vec<String> {
        match reached {
            Reached::User(i) => self
                .users
                .get(i as usize)
                .map(|u| vec![u.user_id.clone()])
                .unwrap_or_default(),
            Reached::Group(g) => self
                .groups
                .get(g as usize)
                .map(|g| g.members.clone())
                .unwrap_or_default(),
            Reached::Nobody => Vec::new(),
        }
    }

    pub fn messages(&self, filter: &MessageFilter) -> Vec<SimMessage> {
        let from = filter.since_seq.unwrap_or(0);
        let from = usize::try_from(from)
            .unwrap_or(usize::MAX)
            .min(self.records.len());
        self.records[from..]
            .iter()
            .enumerate()
            .filter(|(_, r)| filter.to.as_deref().is_none_or(|to| r.to == to))
            .filter(|(_, r)| filter.kind.as_deref().is_none_or(|k| r.kind.name() == k))
            .take(filter.limit.unwrap_or(usize::MAX))
            .map(|(i, r)| SimMessage {
                seq: (from + i + 1) as u64,
                message_id: r.message_id.clone(),
                kind: r.kind.name(),
                to: r.to.clone(),
                text: r.text.clone(),
                tracking_id: r.tracking_id.clone(),
                at: r.at,
                reached: self.reached(r.reached),
            })
            .collect()
    }

    pub fn stats(&self) -> SimStats {
        let mut stats = self.counters.stats.clone();
        stats.max_requests_in_window = self.rate.max;
        stats.requests_by_path = self
            .counters
            .by_path
            .iter()
            .map(|(p, n)| ((*p).to_string(), *n))
            .collect();
        stats
    }

    pub fn population(&self, limit: usize) -> Population {
        Population {
            users: self.users.iter().take(limit).cloned().collect(),
            groups: self.groups.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_are_unique_hex_20() {
        let mut ids = MessageIds {
            next: 0,
            key: 12345,
        };
        let mut seen = std::collections::HashSet::new();
        for _ in 0..10_000 {
            let id = ids.next();
            assert_eq!(id.len(), 20);
            assert!(id.chars().all(|c| c.is_ascii_hexdigit()));
            assert!(seen.insert(id));
        }
    }

    #[test]
    fn fixed_windows_reset_and_keep_the_max() {
        let t0 = Instant::now();
        let mut w = RateWindow {
            start: t0,
            count: 0,
            max: 0,
        };
        let win = Duration::from_secs(1);
        for _ in 0..5 {
            w.hit(t0, win);
        }
        assert_eq!(w.hit(t0 + Duration::from_millis(2500), win), 1);
        assert_eq!(w.max, 5);
    }
}
