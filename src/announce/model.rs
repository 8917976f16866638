//! The validated announcement repository: what every later stage (plan, render, deliver) sees.
//! Values here are trusted: ids resolve, times are instants, crons parse.

use std::path::PathBuf;

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

use super::values::{CronExpr, QuietHours};

/// The commune: villages with their heads, leaders, time zone and quiet hours.
#[derive(Clone, Debug)]
pub struct Commune {
    pub name: String,
    pub tz: TimeZone,
    pub quiet_hours: Option<QuietHours>,
    pub villages: Vec<Village>,
    pub leaders: Vec<Person>,
}

impl Commune {
    pub fn village(&self, id: &str) -> Option<&Village> {
        self.villages.iter().find(|v| v.id == id)
    }

    pub fn leader(&self, id: &str) -> Option<&Person> {
        self.leaders.iter().find(|p| p.id.as_deref() == Some(id))
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Village {
    pub id: String,
    pub name: String,
    pub zalo_group: Option<String>,
    /// The OA tag that marks this village's followers; None: the village's name.
    pub zalo_tag: Option<String>,
    pub heads: Vec<Person>,
}

impl Village {
    /// The tag name followers of this village carry in the OA.
    pub fn tag(&self) -> &str {
        self.zalo_tag.as_deref().unwrap_or(&self.name)
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Person {
    pub id: Option<String>,
    pub name: String,
    /// Normalised to `84…`, the form ZNS expects.
    pub phone: Option<String>,
    pub zalo_user: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    StormWarning,
    IdCardCampaign,
    PowerCut,
    Meeting,
    General,
}

impl Kind {
    pub const NAMES: [&'static str; 5] = [
        "storm_warning",
        "id_card_campaign",
        "power_cut",
        "meeting",
        "general",
    ];

    pub fn parse(s: &str) -> Option<Kind> {
        Some(match s {
            "storm_warning" => Kind::StormWarning,
            "id_card_campaign" => Kind::IdCardCampaign,
            "power_cut" => Kind::PowerCut,
            "meeting" => Kind::Meeting,
            "general" => Kind::General,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::StormWarning => "storm_warning",
            Kind::IdCardCampaign => "id_card_campaign",
            Kind::PowerCut => "power_cut",
            Kind::Meeting => "meeting",
            Kind::General => "general",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    Urgent,
    Normal,
}

/// Who receives an announcement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Audience {
    /// Village ids, in commune order; every village when the file names none.
    pub villages: Vec<String>,
    /// True when the file named no villages: followers outside any village group are included too.
    pub whole_commune: bool,
    /// Only the heads of those villages, rather than everyone.
    pub heads_only: bool,
}

#[derive(Clone, Debug)]
pub struct Event {
    pub starts: Timestamp,
    pub ends: Option<Timestamp>,
    pub place: Option<String>,
}

/// One send rule; `index` is its position in the file's `send` list.
#[derive(Clone, Debug)]
pub struct SendRule {
    pub index: usize,
    pub kind: RuleKind,
}

#[derive(Clone, Debug)]
pub enum RuleKind {
    Once {
        at: Timestamp,
    },
    Cron {
        expr: Box<CronExpr>,
        from: Option<Timestamp>,
        until: Option<Timestamp>,
    },
    BeforeEvent {
        offsets: Vec<SignedDuration>,
    },
}

/// A village-head confirmation request.
#[derive(Clone, Debug)]
pub struct Confirm {
    pub within: SignedDuration,
    pub escalate_to: Vec<String>,
}

/// One validated announcement file.
#[derive(Clone, Debug)]
pub struct Announcement {
    /// The path below the announcement directory without `.yaml`, e.g. `cccd/lang-tre`.
    pub id: String,
    pub path: PathBuf,
    pub title: String,
    pub kind: Kind,
    pub priority: Priority,
    pub audience: Audience,
    pub template: String,
    /// Where the template is named (or the title, when it defaults to the kind): template and
    /// length problems point here.
    pub template_pos: crate::announce::problem::Pos,
    pub event: Option<Event>,
    pub rules: Vec<SendRule>,
    /// Nothing is sent after this; defaults to the event's end (or start).
    pub expires: Option<Timestamp>,
    /// How late a send may still go out after downtime; None: the kind's default.
    pub catch_up: Option<SignedDuration>,
    pub confirm: Option<Confirm>,
    pub data: serde_json::Value,
}

impl Announcement {
    pub fn is_urgent(&self) -> bool {
        self.priority == Priority::Urgent
    }
}
