//! The Zalo simulator over real HTTP: tokens, sends and their refusals, the directory and tags,
//! the rate limit, faults and webhooks. Each test starts its own simulator on 127.0.0.1:0 with a
//! small fixed population; delays are milliseconds.

#[path = "sim/directory.rs"]
mod directory;
#[path = "sim/faults.rs"]
mod faults;
#[path = "sim/send.rs"]
mod send;
#[path = "sim/tokens.rs"]
mod tokens;
#[path = "sim/webhooks.rs"]
mod webhooks;

use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};
use loa::deliver::zalo::wire::{Envelope, TokenReply, header, path};
use loa::sim::{Population, Sim, SimConfig, SimGroup, SimUser};
use serde_json::{Value, json};

pub const FRESH: &str = "1000000000000000001";
pub const BLOCKED: &str = "1000000000000000002";
pub const BANNED: &str = "1000000000000000003";
pub const STALE: &str = "1000000000000000004";
pub const NOT_FOLLOWER: &str = "1000000000000000005";
pub const HEAD: &str = "1000000000000000006";
pub const NO_ZNS: &str = "1000000000000000007";
pub const HEAD_PHONE: &str = "84900000006";
pub const NO_ZNS_PHONE: &str = "84900000007";
pub const GROUP: &str = "00000000000000000a01";
pub const DISABLED_GROUP: &str = "00000000000000000a02";
pub const FOREIGN_GROUP: &str = "00000000000000000a03";

fn user(id: &str, tag: &str) -> SimUser {
    SimUser {
        user_id: id.into(),
        display_name: format!("Người {}", &id[id.len() - 2..]),
        phone: Some(format!("849000000{}", &id[id.len() - 2..])),
        tags: vec![tag.into()],
        last_interaction: Timestamp::now() - SignedDuration::from_hours(2),
        follower: true,
        blocked: false,
        banned: false,
        head: false,
        silent: false,
        zns_reachable: true,
    }
}

pub fn population() -> Population {
    let mut users: Vec<SimUser> = [FRESH, BLOCKED, BANNED, STALE, NOT_FOLLOWER, HEAD, NO_ZNS]
        .iter()
        .map(|id| user(id, if *id == HEAD { "Gò Da" } else { "Làng Trê" }))
        .collect();
    users[1].blocked = true;
    users[2].banned = true;
    users[3].last_interaction = Timestamp::now() - SignedDuration::from_hours(10 * 24);
    users[4].follower = false;
    users[5].head = true;
    users[6].zns_reachable = false;
    let group = |id: &str, disabled, member, members: &[&str]| SimGroup {
        group_id: id.into(),
        name: format!("Nhóm {id}"),
        disabled,
        oa_is_member: member,
        members: members.iter().map(|m| m.to_string()).collect(),
    };
    Population {
        users,
        groups: vec![
            group(GROUP, false, true, &[FRESH, HEAD]),
            group(DISABLED_GROUP, true, true, &[FRESH]),
            group(FOREIGN_GROUP, false, false, &[FRESH]),
        ],
    }
}

/// A config with the test population and quick, silent people.
pub fn config() -> SimConfig {
    SimConfig {
        population: population(),
        seed: 7,
        ..SimConfig::default()
    }
}

pub struct Harness {
    pub sim: Sim,
    pub http: reqwest::Client,
    pub tokens: TokenReply,
}

pub async fn start(config: SimConfig) -> Harness {
    let listener = loa::listen::bind("127.0.0.1:0").await.unwrap();
    let sim = loa::sim::start(config, listener).await.unwrap();
    let tokens = sim.issue_tokens();
    // The simulator installed reqwest's crypto provider (needed even for http://) in `start`.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    Harness { sim, http, tokens }
}

/// A reply: HTTP status, the envelope, and the rate headers.
pub struct Reply {
    pub status: u16,
    pub body: Envelope<Value>,
    pub limit: Option<u32>,
    pub remain: Option<u32>,
}

impl Reply {
    pub fn error(&self) -> i64 {
        self.body.error
    }

    pub fn data(&self) -> &Value {
        self.body.data.as_ref().expect("data")
    }
}

impl Harness {
    pub fn url(&self, p: &str) -> String {
        format!("{}{p}", self.sim.base_url())
    }

    pub async fn post(&self, p: &str, body: Value) -> Reply {
        let token = self.tokens.access_token.clone();
        self.post_with(p, &token, body).await
    }

    pub async fn post_with(&self, p: &str, token: &str, body: Value) -> Reply {
        let r = self
            .http
            .post(self.url(p))
            .header(header::ACCESS_TOKEN, token)
            .json(&body)
            .send()
            .await
            .unwrap();
        reply(r).await
    }

    pub async fn get(&self, p: &str, query: &[(&str, String)]) -> Reply {
        let r = self
            .http
            .get(self.url(p))
            .header(header::ACCESS_TOKEN, &self.tokens.access_token)
            .query(query)
            .send()
            .await
            .unwrap();
        reply(r).await
    }

    /// A `/_sim/*` control or inspection call (no token), its JSON answer.
    pub async fn control<T: serde::de::DeserializeOwned>(&self, post: bool, p: &str) -> T {
        let req = if post {
            self.http.post(self.url(p))
        } else {
            self.http.get(self.url(p))
        };
        req.send().await.unwrap().json().await.unwrap()
    }

    pub async fn cs(&self, user_id: &str, text: &str) -> Reply {
        self.post(path::MESSAGE_CS, cs_body(user_id, text)).await
    }
}

pub fn cs_body(user_id: &str, text: &str) -> Value {
    json!({"recipient": {"user_id": user_id}, "message": {"text": text}})
}

async fn reply(r: reqwest::Response) -> Reply {
    let status = r.status().as_u16();
    let num = |name: &str| {
        r.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
    };
    let (limit, remain) = (num(header::RATE_LIMIT), num(header::RATE_REMAIN));
    let bytes = r.bytes().await.unwrap();
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&bytes)));
    Reply {
        status,
        body,
        limit,
        remain,
    }
}

/// Polls `check` until it holds, for at most five seconds.
pub async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
