//! The channel named by the configuration (`channel = "log"` or `"zalo"`), as one type the daemon
//! is built with.

use std::time::Duration;

use anyhow::Context as _;

use super::log::LogChannel;
use super::zalo::channel::ZaloChannel;
use super::{Channel, Outgoing, SendError, Sent};
use crate::clock::Clock;
use crate::config::Config;
use crate::ledger::Store;

pub enum AnyChannel {
    Log(LogChannel),
    Zalo(Box<ZaloChannel>),
}

impl AnyChannel {
    pub async fn open(
        config: &Config,
        store: &Store,
        node: &str,
        clock: Clock,
    ) -> anyhow::Result<AnyChannel> {
        match config.channel.as_str() {
            "log" => {
                let path = (config.log_channel.path.as_os_str() != "-")
                    .then_some(&config.log_channel.path);
                let channel = LogChannel::open(
                    path,
                    Duration::from_millis(u64::from(config.log_channel.delay_ms)),
                )
                .with_context(|| {
                    format!(
                        "opening the log channel {}",
                        config.log_channel.path.display()
                    )
                })?;
                Ok(AnyChannel::Log(channel))
            }
            "zalo" => Ok(AnyChannel::Zalo(Box::new(
                ZaloChannel::open(
                    config.zalo.clone(),
                    store.clone(),
                    &config.commune_id,
                    node,
                    clock,
                )
                .await?,
            ))),
            other => anyhow::bail!("unknown channel {other:?}: use `log` or `zalo`"),
        }
    }

    pub fn zalo(&self) -> Option<&ZaloChannel> {
        match self {
            AnyChannel::Zalo(z) => Some(z),
            AnyChannel::Log(_) => None,
        }
    }
}

impl Channel for AnyChannel {
    fn name(&self) -> &'static str {
        match self {
            AnyChannel::Log(c) => c.name(),
            AnyChannel::Zalo(c) => c.name(),
        }
    }

    async fn send(&self, msg: &Outgoing<'_>) -> Result<Sent, SendError> {
        match self {
            AnyChannel::Log(c) => c.send(msg).await,
            AnyChannel::Zalo(c) => c.send(msg).await,
        }
    }

    fn paused_until(&self) -> Option<jiff::Timestamp> {
        match self {
            AnyChannel::Log(c) => c.paused_until(),
            AnyChannel::Zalo(c) => c.paused_until(),
        }
    }
}
