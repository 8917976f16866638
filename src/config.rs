//! Daemon configuration: defaults, then `loa.toml`, then `LOA_*` environment variables (a nested
//! key `log_channel.path` is `LOA_LOG_CHANNEL_PATH`). `loa config` prints the defaults.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `sqlite://loa.db` (one daemon) or `postgres://user@host/db` (several daemons).
    pub database: String,
    /// The announcement directory (holding commune.yaml).
    pub announcements: PathBuf,
    /// The templates directory; empty: `templates` beside the announcement directory.
    pub templates: PathBuf,
    /// The commune's id in the database: every stored row belongs to one commune.
    pub commune_id: String,
    /// Which channel sends: `log` (JSON lines, no network) or `zalo` (the OA API).
    pub channel: String,
    pub log_channel: LogChannelConfig,
    pub zalo: crate::deliver::zalo::config::ZaloConfig,
    pub web: WebConfig,
    pub confirm: ConfirmConfig,
    /// How far ahead occurrences are written to the database, in hours.
    pub horizon_hours: u32,
    /// How long a claim on due work holds before another daemon may take it over, in seconds.
    pub lease_secs: u32,
    /// The longest the due loop sleeps before looking at the database again, in milliseconds.
    pub max_sleep_ms: u32,
    /// Deliveries sent at once (in flight) per daemon: also the most a crash can leave in doubt.
    pub concurrency: u32,
    /// Attempts per delivery before it fails.
    pub max_attempts: u32,
    /// First retry delay in seconds; each further retry waits four times longer (with jitter).
    pub retry_base_secs: u32,
    /// This daemon's name in claims and logs; empty: host name and process id.
    pub node_id: String,
    /// `text` or `json` logs.
    pub log_format: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogChannelConfig {
    /// Where the log channel writes; `-` is stdout.
    pub path: PathBuf,
    /// Simulated provider latency per message, in milliseconds.
    pub delay_ms: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            database: "sqlite://loa.db".into(),
            announcements: "announcements".into(),
            templates: PathBuf::new(),
            commune_id: "default".into(),
            channel: "log".into(),
            log_channel: LogChannelConfig::default(),
            zalo: Default::default(),
            web: WebConfig::default(),
            confirm: ConfirmConfig::default(),
            horizon_hours: 48,
            lease_secs: 30,
            max_sleep_ms: 5_000,
            concurrency: 256,
            max_attempts: 4,
            retry_base_secs: 30,
            node_id: String::new(),
            log_format: "text".into(),
        }
    }
}

/// The daemon's HTTP server: Zalo's webhooks (and, to come, the dashboard).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebConfig {
    /// Address to listen on, e.g. `0.0.0.0:8080`; empty: no HTTP server.
    pub listen: String,
    /// Larger webhook bodies are refused (413).
    pub max_body_bytes: u32,
    /// Webhook events whose timestamp is further than this from now are refused, in seconds. Zalo
    /// retries an event with its first body (and timestamp) for almost two hours (30 s, 5, 15,
    /// 30 and 60 minutes apart), so the default is three hours: a shorter one refuses the retries
    /// that follow an outage, and the events are lost. Replays are refused by the event's key.
    pub webhook_max_age_secs: u32,
    /// The token that opens the dashboard (`LOA_WEB_DASHBOARD_TOKEN`); empty, and no file: the
    /// dashboard is off.
    pub dashboard_token: crate::deliver::zalo::config::Secret,
    /// A file holding the dashboard token (used when `dashboard_token` is empty).
    pub dashboard_token_file: PathBuf,
}

impl WebConfig {
    /// The dashboard's token, from the value or its file; None: the dashboard is off.
    pub fn dashboard_token(&self) -> anyhow::Result<Option<crate::deliver::zalo::config::Secret>> {
        use crate::deliver::zalo::config::Secret;
        let token = if self.dashboard_token.is_empty()
            && !self.dashboard_token_file.as_os_str().is_empty()
        {
            let text = std::fs::read_to_string(&self.dashboard_token_file).with_context(|| {
                format!(
                    "reading the dashboard token from {}",
                    self.dashboard_token_file.display()
                )
            })?;
            Secret::new(text.trim())
        } else {
            // Typed tokens are compared trimmed: a value with spaces around it could never match.
            Secret::new(self.dashboard_token.expose().trim())
        };
        Ok((!token.is_empty()).then_some(token))
    }
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            listen: String::new(),
            max_body_bytes: 64 * 1024,
            webhook_max_age_secs: 3 * 3600,
            dashboard_token: Default::default(),
            dashboard_token_file: PathBuf::new(),
        }
    }
}

/// How village heads confirm receipt.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConfirmConfig {
    /// Replies that count as "received" (case and diacritics do not matter); empty: the built-in
    /// list ("đã nhận", "nhận", "ok", "1"…).
    pub phrases: Vec<String>,
    /// The reply that thanks a head for confirming.
    pub thanks: String,
    /// The address people reach the daemon's HTTP server at, e.g. `https://loa.xa-an-phu.vn`:
    /// confirm links start with it. Empty: no links; heads confirm by reply only.
    pub public_url: String,
    /// How long a confirm link works after the send, in hours.
    pub link_valid_hours: u32,
}

impl Default for ConfirmConfig {
    fn default() -> Self {
        ConfirmConfig {
            phrases: Vec::new(),
            thanks: "Cảm ơn ông/bà đã xác nhận đã nhận thông báo.".into(),
            public_url: String::new(),
            link_valid_hours: 72,
        }
    }
}

impl Default for LogChannelConfig {
    fn default() -> Self {
        LogChannelConfig {
            path: "loa-sends.jsonl".into(),
            delay_ms: 0,
        }
    }
}

impl Config {
    /// Defaults → the file (if it exists, or an error if it was named and is missing) → environment.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Config> {
        let mut table = toml::Table::try_from(Config::default())?;
        let (path, required) = match file {
            Some(p) => (p.to_path_buf(), true),
            None => (PathBuf::from("loa.toml"), false),
        };
        if path.exists() || required {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            let from_file: toml::Table = text.parse().map_err(|e: toml::de::Error| {
                // Where and what only: toml's own message quotes the line, and the line may be
                // `database = postgres://loa:password@…` written without its quotes.
                let (line, column) = e.span().map_or((0, 0), |s| line_column(&text, s.start));
                anyhow::anyhow!(
                    "parsing {}: line {line}, column {column}: {}",
                    path.display(),
                    e.message()
                )
            })?;
            merge(&mut table, from_file);
        }
        apply_env(&mut table, "LOA", &mut std::env::vars().collect())?;
        let config: Config = table.try_into().context("invalid configuration")?;
        Ok(config)
    }

    pub fn templates_dir(&self) -> PathBuf {
        if self.templates.as_os_str().is_empty() {
            crate::content::default_templates_dir(&self.announcements)
        } else {
            self.templates.clone()
        }
    }

    pub fn defaults_toml() -> String {
        toml::to_string_pretty(&Config::default()).unwrap_or_default()
    }
}

fn merge(base: &mut toml::Table, over: toml::Table) {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

/// The 1-based line and column of byte `at` in `text`.
fn line_column(text: &str, at: usize) -> (usize, usize) {
    let before = text.get(..at).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// Overrides each key present in `table` from `PREFIX_KEY`, keeping the key's type: a number or a
/// yes/no that does not read as one is an error naming the variable (a silently ignored
/// `LOA_ZALO_APPSECRET_PROOF=1` left the proof off), and a list is given comma-separated.
fn apply_env(
    table: &mut toml::Table,
    prefix: &str,
    env: &mut std::collections::HashMap<String, String>,
) -> anyhow::Result<()> {
    for (key, value) in table.iter_mut() {
        let name = format!("{prefix}_{}", key.to_uppercase());
        if let toml::Value::Table(t) = value {
            apply_env(t, &name, env)?;
            continue;
        }
        let Some(given) = env.remove(&name) else {
            continue;
        };
        let text = given.trim();
        match value {
            toml::Value::Integer(i) => {
                *i = text
                    .parse()
                    .map_err(|_| anyhow::anyhow!("{name}={text:?} is not a whole number"))?;
            }
            toml::Value::Boolean(b) => {
                *b = match text.to_ascii_lowercase().as_str() {
                    "true" | "1" | "yes" | "on" => true,
                    "false" | "0" | "no" | "off" => false,
                    _ => anyhow::bail!("{name}={text:?} is not true or false"),
                };
            }
            toml::Value::Array(items) => {
                *items = text
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| toml::Value::String(s.to_string()))
                    .collect();
            }
            other => *other = toml::Value::String(given),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_then_environment_override_defaults() {
        let mut table = toml::Table::try_from(Config::default()).expect("defaults");
        merge(
            &mut table,
            "database = \"postgres://db/loa\"\n[log_channel]\ndelay_ms = 5\n"
                .parse()
                .expect("toml"),
        );
        let mut env = std::collections::HashMap::from([
            ("LOA_LEASE_SECS".to_string(), "90".to_string()),
            ("LOA_LOG_CHANNEL_PATH".to_string(), "-".to_string()),
            ("LOA_ZALO_APPSECRET_PROOF".to_string(), "1".to_string()),
            (
                "LOA_CONFIRM_PHRASES".to_string(),
                "đã nhận, ok ,rõ".to_string(),
            ),
        ]);
        apply_env(&mut table, "LOA", &mut env).expect("env");
        let c: Config = table.try_into().expect("valid");
        assert_eq!(c.database, "postgres://db/loa");
        assert_eq!(c.log_channel.delay_ms, 5);
        assert_eq!(c.lease_secs, 90);
        assert_eq!(c.log_channel.path, PathBuf::from("-"));
        assert!(c.zalo.appsecret_proof, "1 is yes");
        assert_eq!(c.confirm.phrases, ["đã nhận", "ok", "rõ"]);
    }

    #[test]
    fn a_value_that_does_not_read_is_an_error_naming_its_variable() {
        for (name, value) in [
            ("LOA_CONCURRENCY", "64k"),
            ("LOA_ZALO_APPSECRET_PROOF", "có"),
        ] {
            let mut table = toml::Table::try_from(Config::default()).expect("defaults");
            let mut env = std::collections::HashMap::from([(name.to_string(), value.to_string())]);
            let err = apply_env(&mut table, "LOA", &mut env).expect_err("refused");
            assert!(err.to_string().contains(name), "{err}");
        }
    }

    #[test]
    fn a_broken_file_is_reported_without_its_text() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("loa.toml");
        std::fs::write(
            &path,
            "commune_id = \"xa\"\ndatabase = postgres://loa:hunter2@db/loa\n",
        )
        .expect("write");
        // As `loa` prints it: the whole chain.
        let err = format!("{:#}", Config::load(Some(&path)).expect_err("refused"));
        assert!(err.contains("line 2"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn a_dashboard_token_is_trimmed_and_blank_is_off() {
        let web = |t: &str| WebConfig {
            dashboard_token: crate::deliver::zalo::config::Secret::new(t),
            ..WebConfig::default()
        };
        let token = web(" abc\n").dashboard_token().expect("ok").expect("on");
        assert_eq!(token.expose(), "abc");
        assert!(web("  ").dashboard_token().expect("ok").is_none());
    }

    #[test]
    fn unknown_keys_are_refused() {
        let mut table = toml::Table::try_from(Config::default()).expect("defaults");
        merge(&mut table, "databse = \"x\"\n".parse().expect("toml"));
        assert!(table.try_into::<Config>().is_err());
    }
}
