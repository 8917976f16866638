//! The `[zalo]` section of loa.toml. The three base URLs are the only thing between the simulator
//! and the real Zalo: point them at `oauth.zaloapp.com`, `openapi.zalo.me` and
//! `business.openapi.zalo.me` (the defaults) or at `loa sim`. Secrets come from the environment
//! (`LOA_ZALO_APP_SECRET`…) or from files (`app_secret_file`…), and never print.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

/// A secret string: serialised as itself (so the environment can set it), printed as `***`.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_empty() { "\"\"" } else { "***" })
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ZaloConfig {
    /// The Zalo app's id (developers.zalo.me).
    pub app_id: String,
    /// The app secret: the token endpoint's `secret_key`. Prefer `LOA_ZALO_APP_SECRET` or a file.
    pub app_secret: Secret,
    pub app_secret_file: PathBuf,
    /// The key webhooks are signed with; empty: the app secret (which one Zalo uses is unconfirmed).
    pub oa_secret: Secret,
    pub oa_secret_file: PathBuf,
    /// A refresh token to start from when the database has none (from `loa zalo auth` or Zalo's
    /// API explorer). Used once: refresh tokens are single-use, the database keeps the newest.
    pub refresh_token: Secret,
    pub refresh_token_file: PathBuf,
    pub oauth_url: String,
    pub api_url: String,
    pub zns_url: String,
    /// The approved ZNS template for announcements by phone; empty: no ZNS sends.
    pub zns_template_id: String,
    /// The template parameter that carries the text.
    pub zns_text_param: String,
    /// The most characters that parameter takes, as approved with the template (Zalo sets it
    /// by the parameter's type; a custom template's paragraph takes 400). Texts that may go by
    /// phone are split into parts this long.
    pub zns_text_max: u32,
    /// Requests per window for the whole app (Zalo: 4,000 per minute); 0: no limit.
    pub rate_limit: u32,
    pub rate_window_ms: u32,
    /// Per request, in milliseconds.
    pub timeout_ms: u32,
    /// Refresh the access token this long before it expires (it lives 25 hours).
    pub refresh_margin_secs: u32,
    /// Send `appsecret_proof` with every call.
    pub appsecret_proof: bool,
    /// How often followers are synced from `user/getlist`, in minutes; 0: only at start.
    pub sync_minutes: u32,
    /// Followers whose Zalo name is not known yet looked up (`user/detail`) after each sync,
    /// only when no send is waiting for the rate limit; 0: none. A group's members and the
    /// heads are named by the sync itself.
    pub names_per_sync: u32,
    /// Longest text per message; longer ones go out in numbered parts.
    pub max_text_chars: u32,
    /// A read (`user_seen_message`) counts as an interaction with the OA, reopening the 7-day
    /// window in which heads are written to by `cs`. Zalo does not document which events count:
    /// if reading does not, a head who only reads meets `-230` once and is reached by phone.
    pub seen_opens_window: bool,
}

impl Default for ZaloConfig {
    fn default() -> Self {
        ZaloConfig {
            app_id: String::new(),
            app_secret: Secret::default(),
            app_secret_file: PathBuf::new(),
            oa_secret: Secret::default(),
            oa_secret_file: PathBuf::new(),
            refresh_token: Secret::default(),
            refresh_token_file: PathBuf::new(),
            oauth_url: "https://oauth.zaloapp.com".into(),
            api_url: "https://openapi.zalo.me".into(),
            zns_url: "https://business.openapi.zalo.me".into(),
            zns_template_id: String::new(),
            zns_text_param: "content".into(),
            zns_text_max: 400,
            rate_limit: 4000,
            rate_window_ms: 60_000,
            timeout_ms: 10_000,
            refresh_margin_secs: 6 * 3600,
            appsecret_proof: false,
            sync_minutes: 360,
            names_per_sync: 2000,
            max_text_chars: 2000,
            seen_opens_window: true,
        }
    }
}

impl ZaloConfig {
    /// Reads the secrets named by `*_file` (a file wins over an empty value) and checks that what
    /// the channel needs is there.
    pub fn resolve(mut self) -> anyhow::Result<ZaloConfig> {
        fn read(target: &mut Secret, file: &Path, what: &str) -> anyhow::Result<()> {
            if target.is_empty() && !file.as_os_str().is_empty() {
                let text = std::fs::read_to_string(file)
                    .with_context(|| format!("reading the {what} from {}", file.display()))?;
                *target = Secret::new(text.trim());
            }
            Ok(())
        }
        read(&mut self.app_secret, &self.app_secret_file, "app secret")?;
        read(&mut self.oa_secret, &self.oa_secret_file, "OA secret")?;
        read(
            &mut self.refresh_token,
            &self.refresh_token_file,
            "refresh token",
        )?;
        if self.app_id.is_empty() || self.app_secret.is_empty() {
            anyhow::bail!(
                "the zalo channel needs zalo.app_id and zalo.app_secret (or LOA_ZALO_APP_SECRET / zalo.app_secret_file)"
            );
        }
        if self.oa_secret.is_empty() {
            self.oa_secret = self.app_secret.clone();
        }
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let c = ZaloConfig {
            app_secret: Secret::new("s3cr3t"),
            refresh_token: Secret::new("r3fr3sh"),
            ..ZaloConfig::default()
        };
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("s3cr3t") && !shown.contains("r3fr3sh"),
            "{shown}"
        );
    }
}
