//! The `zalo` channel: one delivery → one or more API calls (a long text goes in numbered parts),
//! each paced by the rate limiter and authorised with the current token, and the answer
//! classified. A rejected token is refreshed and the call tried once more; a head whose Zalo
//! window has closed (`-230`…) is reached by phone (ZNS) when their phone is known.

use std::sync::Arc;

use jiff::SignedDuration;

use super::api::{Api, ApiError, Base, RateInfo};
use super::auth::{AuthError, Tokens};
use super::config::ZaloConfig;
use super::errors::{self, Class};
use super::halt::{Gate, HALT_RETRY, Halt, Probe};
use super::quota::QuotaWatch;
use super::ratelimit::Limiter;
use super::request;
use super::sent_id::SentId;
use super::wire::path;
use crate::clock::Clock;
use crate::deliver::{Channel, Outgoing, SendError, Sent, TargetKind};
use crate::ledger::Store;

/// The id recorded for a part Zalo accepted without one.
const NO_ID: &str = "-";

/// Codes after which a head is tried by phone instead: Zalo will not carry a message to this id
/// now (not a follower, outside the window, or inactive for 45 days, `-227`, which the reference
/// lists with the others as final for the id), but a ZNS to the head's phone may still arrive.
/// `-217` (the head blocked the OA) is not here: they said no to the OA itself.
const WINDOW_CLOSED: &[i64] = &[-213, -227, -230, -232];

pub struct ZaloChannel {
    pub api: Arc<Api>,
    pub tokens: Arc<Tokens>,
    pub limiter: Arc<Limiter>,
    config: ZaloConfig,
    /// For the end of Zalo's night ban or day (`errors::Until`), and the OA's probes.
    clock: Clock,
    /// Whether Zalo refuses the OA itself, and when to try it again.
    halt: Halt,
    /// What Zalo says is left of the OA's ZNS quota.
    quota: QuotaWatch,
}

impl ZaloChannel {
    /// The channel for one commune; seeds the token row from the configuration when empty.
    pub async fn open(
        config: ZaloConfig,
        store: Store,
        commune: &str,
        node: &str,
        clock: Clock,
    ) -> anyhow::Result<ZaloChannel> {
        let config = config.resolve()?;
        let api = Arc::new(Api::new(&config)?);
        // Messages waited for the OA when the last run stopped: one probe goes first.
        let halt = Halt::default();
        if let Some(code) = store.waiting_for_the_operator(commune).await? {
            let code = code.parse().unwrap_or(-204);
            halt.probe_first(code, errors::lookup(code).meaning);
        }
        let quota = QuotaWatch::start(store.clone(), commune, node);
        let tokens = Arc::new(Tokens::new(
            store,
            api.clone(),
            commune,
            node,
            clock.clone(),
            SignedDuration::from_secs(i64::from(config.refresh_margin_secs)),
        ));
        if tokens.seed(config.refresh_token.expose()).await? {
            tracing::info!("Zalo refresh token taken from the configuration");
        }
        let limiter = Arc::new(Limiter::new(
            config.rate_limit,
            std::time::Duration::from_millis(u64::from(config.rate_window_ms.max(1))),
        ));
        Ok(ZaloChannel {
            api,
            tokens,
            limiter,
            config,
            clock,
            halt,
            quota,
        })
    }

    pub fn config(&self) -> &ZaloConfig {
        &self.config
    }

    /// One API call, unless nothing can be sent from the OA for now (`halt.rs`). Returns the
    /// provider's message id. `(delivery, part)`: the delivery's id and the text's part number
    /// (from 1), which a ZNS send carries as its tracking id.
    async fn call(
        &self,
        kind: TargetKind,
        target: &str,
        text: &str,
        which: (i64, usize),
        urgent: bool,
    ) -> Result<String, ApiError> {
        let probe = match self.halt.gate(&self.clock).await {
            Gate::Open => None,
            Gate::Probe(probe) => Some(probe),
            Gate::Closed { code, reason, .. } => {
                return Err(ApiError::Halted { code, reason });
            }
        };
        let result = self.call_open(kind, target, text, which, urgent).await;
        if let Some(probe) = probe {
            self.settle(probe, &result);
        }
        result
    }

    /// What a probe's answer says of the OA. Only a probe's: a success from a request that left
    /// before the refusal says nothing of now.
    fn settle(&self, probe: Probe<'_>, result: &Result<String, ApiError>) {
        match result {
            // Refused again, or no token to be had (`oa_refused` has set the next probe).
            Err(ApiError::Zalo { code, .. }) if errors::lookup(*code).class == Class::Halt => {
                tracing::warn!(code, "still nothing can be sent from this OA");
            }
            Err(ApiError::Halted { code, reason, .. }) => {
                tracing::warn!(code, reason, "still nothing can be sent from this OA");
            }
            // Any other answer from Zalo (a success, or a refusal of this recipient alone, the
            // rate limit…) means it takes the OA's sends again.
            Ok(_) | Err(ApiError::Zalo { .. }) => {
                probe.through();
                tracing::info!("Zalo takes this OA's sends again");
            }
            // No answer (a timeout, a gateway's status, no token for a minute): no verdict. The
            // next probe in a minute, rather than each waiting send probing in turn.
            Err(_) => probe.no_verdict(self.clock.now()),
        }
    }

    /// `call` once the gate is open: with the current token; a rejected token is refreshed and
    /// the call repeated once.
    async fn call_open(
        &self,
        kind: TargetKind,
        target: &str,
        text: &str,
        (delivery, part): (i64, usize),
        urgent: bool,
    ) -> Result<String, ApiError> {
        let mut access = match self.tokens.access().await {
            Ok(access) => access,
            Err(e) => return Err(self.auth_failure(e)),
        };
        for attempt in 0..2 {
            self.limiter.acquire(urgent).await;
            let result = match kind {
                TargetKind::Phone => {
                    if self.config.zns_template_id.is_empty() {
                        return Err(ApiError::Zalo {
                            code: -109,
                            message: "no ZNS template configured (zalo.zns_template_id)".into(),
                            rate: RateInfo::default(),
                        });
                    }
                    let body = request::zns_body(
                        target,
                        &self.config.zns_template_id,
                        &self.config.zns_text_param,
                        text,
                        &format!("loa-{delivery}-{part}"),
                    );
                    self.api
                        .post::<_, SentId>(Base::Zns, path::ZNS_TEMPLATE, &access.token, &body)
                        .await
                }
                TargetKind::Group | TargetKind::User => {
                    let group = kind == TargetKind::Group;
                    let body = request::text_body(group, target, text);
                    let p = if group {
                        path::GROUP_MESSAGE
                    } else {
                        path::MESSAGE_CS
                    };
                    self.api
                        .post::<_, SentId>(Base::Api, p, &access.token, &body)
                        .await
                }
            };
            match result {
                Ok((SentId { id, quota }, rate)) => {
                    if let (TargetKind::Phone, Some(quota)) = (kind, quota) {
                        self.quota.seen(quota, self.clock.now());
                    }
                    // Sent: without an id its receipts cannot be matched, but it is not sent
                    // again. Recorded as "-", not as nothing: a long text's accepted parts are
                    // counted by their ids, and an empty one would have its part sent again.
                    let id = id.unwrap_or_else(|| {
                        tracing::warn!(
                            delivery,
                            part,
                            "Zalo accepted a message without a readable id"
                        );
                        NO_ID.to_string()
                    });
                    // Zalo says the window's budget is spent: wait for the next one rather than
                    // collect -32s (several daemons, or another app on the same OA, share it).
                    if rate.remain == Some(0) && rate.limit.is_some_and(|l| l > 0) {
                        self.limiter.pause();
                    }
                    return Ok(id);
                }
                Err(ApiError::Zalo { code, .. })
                    if attempt == 0 && errors::lookup(code).class == Class::Refresh =>
                {
                    access = self
                        .tokens
                        .rejected(access.generation)
                        .await
                        .map_err(|e| self.auth_failure(e))?;
                }
                Err(e) => {
                    if let ApiError::Zalo { code, .. } = &e
                        && errors::lookup(*code).class == Class::Halt
                    {
                        self.oa_refused(*code, errors::lookup(*code).meaning);
                    }
                    return Err(e);
                }
            }
        }
        Err(ApiError::Zalo {
            code: -216,
            message: "access token refused right after a refresh".into(),
            rate: RateInfo::default(),
        })
    }

    /// Sends the parts of the text after those an earlier attempt got accepted. On failure,
    /// the ids of every part accepted so far come back with the error.
    async fn send_parts(
        &self,
        kind: TargetKind,
        target: &str,
        msg: &Outgoing<'_>,
    ) -> Result<String, (Vec<String>, ApiError)> {
        let parts = request::split_text(msg.text, self.part_chars(kind, msg));
        let mut ids: Vec<String> = msg
            .sent_parts
            .filter(|s| !s.is_empty())
            .map(|s| s.split(',').map(str::to_string).collect())
            .unwrap_or_default();
        for (i, part) in parts.iter().enumerate().skip(ids.len()) {
            // Boxed: the call's future is most of a send's. Each delivery's send future, which a
            // lane holds for the whole chunk, stays at 352 bytes instead of 1.4 KB, and both
            // blocks stay within the sizes glibc serves from its per-thread cache (the gain in
            // the fan-out was below what the benchmark can resolve).
            let which = (msg.delivery_id, i + 1);
            match Box::pin(self.call(kind, target, part, which, msg.urgent)).await {
                Ok(id) => ids.push(id),
                Err(e) => return Err((ids, e)),
            }
        }
        // One part, one id: returned as it is rather than joined into a new string.
        Ok(match ids.len() {
            1 => ids.swap_remove(0),
            _ => ids.join(","),
        })
    }

    /// How long a text's parts may be. A text that may go by phone (to a phone, or to a head
    /// whose phone is the fallback) is split to fit the ZNS template's parameter whichever way
    /// it goes: its parts are counted alike on Zalo and by phone, so that a text cut off on
    /// Zalo carries on by phone after the parts already in.
    fn part_chars(&self, kind: TargetKind, msg: &Outgoing<'_>) -> usize {
        let by_phone = kind == TargetKind::Phone || msg.fallback.is_some();
        let chars = if by_phone && !self.config.zns_template_id.is_empty() {
            self.config.max_text_chars.min(self.config.zns_text_max)
        } else {
            self.config.max_text_chars
        };
        chars as usize
    }

    /// Nothing can be sent from the OA until the operator mends it (Zalo refused the OA itself,
    /// or there is no token to be had): no more sends but a probe every `HALT_RETRY`. Told
    /// once; the probes that find it so are told by `settle`, the other sends on the wire then
    /// only at debug level.
    fn oa_refused(&self, code: i64, reason: &str) {
        if self.halt.refused(code, reason, self.clock.now()) {
            tracing::error!(
                code,
                reason,
                retry_secs = HALT_RETRY.as_secs(),
                "no message can be sent from this OA until the operator mends it; one is tried every 10 minutes (see the README: connecting a real OA)"
            );
        } else {
            tracing::debug!(code, reason, "refused, as the OA is");
        }
    }

    /// No token to call with. A transient failure (a refresh timed out or met a server error,
    /// or is under way in another daemon) is waited out for a minute. A failure only the
    /// operator can mend (no tokens, a spent or revoked refresh token) stops the channel's calls
    /// as a refusal of the OA does: every message waits, not counted as an attempt, and a probe
    /// every 10 minutes takes a new pair from `loa zalo auth`. Counted, a fan-out's messages
    /// failed after `max_attempts` while the operator authorised the OA again.
    fn auth_failure(&self, e: AuthError) -> ApiError {
        let reason = e.to_string();
        if e.needs_operator() {
            self.oa_refused(-216, &reason);
            return ApiError::Halted { code: -216, reason };
        }
        ApiError::NoToken {
            reason,
            after: std::time::Duration::from_secs(60),
        }
    }

    fn classify(&self, e: ApiError) -> SendError {
        match e {
            ApiError::Zalo {
                code,
                message,
                rate,
            } => {
                let known = errors::lookup(code);
                // Zalo's own words add to ours, unless they say the same thing.
                let same = message.trim().eq_ignore_ascii_case(known.meaning);
                let reason = if message.is_empty() || same {
                    known.meaning.to_string()
                } else {
                    format!("{}: {message}", known.meaning)
                };
                match known.class {
                    Class::Final => SendError::Final {
                        code: code.to_string(),
                        reason,
                    },
                    Class::Refresh => SendError::RefreshCredentials {
                        code: code.to_string(),
                        reason,
                    },
                    // Not counted, and due again at once: this daemon claims nothing until
                    // its probe (`Channel::paused_until`), so waiting costs no request per
                    // message, and another daemon whose calls Zalo takes may send it now.
                    Class::Halt => SendError::NotNow {
                        code: code.to_string(),
                        reason,
                        after: std::time::Duration::ZERO,
                    },
                    Class::RetryLater { after } => SendError::RetryLater {
                        code: code.to_string(),
                        reason,
                        after,
                        in_doubt: false,
                    },
                    Class::NotNow(until) => {
                        let after = if until == errors::Until::RateWindow {
                            tracing::warn!(limit = ?rate.limit, remain = ?rate.remain, "Zalo rate limit reached; pausing");
                            self.limiter.pause()
                        } else {
                            until.after(self.clock.now())
                        };
                        SendError::NotNow {
                            code: code.to_string(),
                            reason,
                            after,
                        }
                    }
                }
            }
            // 502 and 504 are a gateway's answers: the request reached it, and Zalo behind it
            // may have taken the message before the gateway gave up. The retry is flagged as a
            // possible duplicate, as after a timeout. Other statuses were not acted on.
            ApiError::Http { status } => {
                let gateway = matches!(status, 502 | 504);
                SendError::RetryLater {
                    code: format!("http-{status}"),
                    reason: if gateway {
                        format!(
                            "HTTP {status} from a gateway in front of Zalo; it may have been delivered"
                        )
                    } else {
                        format!("HTTP {status} from Zalo")
                    },
                    after: None,
                    in_doubt: gateway,
                }
            }
            ApiError::Timeout => SendError::RetryLater {
                code: "timeout".into(),
                reason: "no answer from Zalo in time; it may have been delivered".into(),
                after: None,
                in_doubt: true,
            },
            ApiError::Connect(e) => SendError::RetryLater {
                code: "connect".into(),
                reason: e,
                after: None,
                in_doubt: false,
            },
            ApiError::Halted { code, reason } => SendError::NotNow {
                code: code.to_string(),
                reason: format!("{reason}; not sent until the OA is mended"),
                after: std::time::Duration::ZERO,
            },
            ApiError::NoToken { reason, after } => SendError::NotNow {
                code: "-216".into(),
                reason,
                after,
            },
            ApiError::Body(e) => SendError::RetryLater {
                code: "reply".into(),
                reason: e,
                after: None,
                in_doubt: true,
            },
        }
    }
}

impl Channel for ZaloChannel {
    fn name(&self) -> &'static str {
        "zalo"
    }

    fn paused_until(&self) -> Option<jiff::Timestamp> {
        self.halt.paused_until()
    }

    async fn send(&self, msg: &Outgoing<'_>) -> Result<Sent, SendError> {
        let partly = |(sent, e): (Vec<String>, ApiError)| {
            let e = self.classify(e);
            if sent.is_empty() {
                e
            } else {
                SendError::PartlySent {
                    sent: sent.join(","),
                    then: Box::new(e),
                }
            }
        };
        match self.send_parts(msg.kind, msg.target, msg).await {
            Ok(message_id) => Ok(Sent {
                message_id,
                note: None,
            }),
            // Also when some parts are in already: by Zalo before the window closed, or by
            // phone at an earlier attempt (a night ban cut the text off). The retry tries the
            // Zalo id first, and the rest then goes by phone after the parts already accepted,
            // instead of the head keeping the first part alone.
            Err((sent, ApiError::Zalo { code, message, .. }))
                if msg.kind == TargetKind::User
                    && WINDOW_CLOSED.contains(&code)
                    && msg.fallback.is_some() =>
            {
                let phone = msg.fallback.unwrap_or_default();
                let why = errors::lookup(code).meaning;
                tracing::info!(delivery = msg.delivery_id, code, %message, parts_in = sent.len(), "Zalo id unreachable; sending by phone");
                let joined = sent.join(",");
                let rest = Outgoing {
                    sent_parts: Some(joined.as_str()),
                    ..msg.clone()
                };
                match self.send_parts(TargetKind::Phone, phone, &rest).await {
                    Ok(message_id) => Ok(Sent {
                        message_id,
                        note: Some(format!(
                            "sent by ZNS to {phone}: Zalo answered {code} ({why})"
                        )),
                    }),
                    Err(failed) => Err(partly(failed)),
                }
            }
            Err(failed) => Err(partly(failed)),
        }
    }
}
