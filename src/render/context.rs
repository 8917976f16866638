//! The one struct templates see. Every field is always present (null when absent) so that
//! `{% if event %}` works; times are already formatted in Vietnamese. The README documents it.

use serde::Serialize;

use super::vi_time;
use crate::announce::model::{Announcement, Commune, Village};
use crate::schedule::Trigger;
use jiff::Timestamp;

#[derive(Serialize)]
pub struct View<'a> {
    pub commune: CommuneView<'a>,
    pub title: &'a str,
    pub kind: &'static str,
    pub urgent: bool,
    /// The village this message goes to; null for followers outside any village group.
    pub village: Option<VillageView<'a>>,
    pub event: Option<EventView<'a>>,
    pub send: SendView,
    pub expires: Option<String>,
    pub confirm: Option<ConfirmView>,
    pub data: &'a serde_json::Value,
}

#[derive(Serialize)]
pub struct CommuneView<'a> {
    pub name: &'a str,
}

#[derive(Serialize)]
pub struct VillageView<'a> {
    pub id: &'a str,
    pub name: &'a str,
}

#[derive(Serialize)]
pub struct EventView<'a> {
    /// "Thứ Hai, 01/12/2026 lúc 07:30"
    pub starts: String,
    /// "01/12/2026"
    pub starts_date: String,
    /// "07:30"
    pub starts_time: String,
    /// "Thứ Hai"
    pub starts_weekday: &'static str,
    pub ends: Option<String>,
    pub ends_time: Option<String>,
    pub place: Option<&'a str>,
}

#[derive(Serialize)]
pub struct SendView {
    /// When this message goes out, formatted.
    pub at: String,
    /// "once", "cron" or "before_event".
    pub rule: &'static str,
    /// For reminders: how long before the event, in words ("1 ngày", "2 giờ").
    pub before_event: Option<String>,
}

#[derive(Serialize)]
pub struct ConfirmView {
    /// "2 giờ"
    pub within: String,
    /// The time by which heads should confirm, formatted.
    pub deadline: String,
}

impl<'a> View<'a> {
    pub fn new(
        ann: &'a Announcement,
        commune: &'a Commune,
        village: Option<&'a Village>,
        at: Timestamp,
        trigger: &Trigger,
    ) -> View<'a> {
        let tz = &commune.tz;
        let event = ann.event.as_ref().map(|e| {
            let s = vi_time::parts(e.starts, tz);
            EventView {
                starts: s.full,
                starts_date: s.date,
                starts_time: s.time,
                starts_weekday: s.weekday,
                ends: e.ends.map(|t| vi_time::datetime(t, tz)),
                ends_time: e.ends.map(|t| vi_time::parts(t, tz).time),
                place: e.place.as_deref(),
            }
        });
        let (rule, before_event) = match trigger {
            Trigger::Once => ("once", None),
            Trigger::Cron { .. } => ("cron", None),
            Trigger::BeforeEvent { offset } => (
                "before_event",
                crate::announce::values::parse_duration(offset)
                    .ok()
                    .map(vi_time::duration),
            ),
        };
        View {
            commune: CommuneView {
                name: &commune.name,
            },
            title: &ann.title,
            kind: ann.kind.name(),
            urgent: ann.is_urgent(),
            village: village.map(|v| VillageView {
                id: &v.id,
                name: &v.name,
            }),
            event,
            send: SendView {
                at: vi_time::datetime(at, tz),
                rule,
                before_event,
            },
            expires: ann.expires.map(|t| vi_time::datetime(t, tz)),
            confirm: ann.confirm.as_ref().map(|c| ConfirmView {
                within: vi_time::duration(c.within),
                deadline: at
                    .checked_add(c.within)
                    .map(|d| vi_time::datetime(d, tz))
                    .unwrap_or_default(),
            }),
            data: &ann.data,
        }
    }
}
