//! The simulated people and groups: generated from a spec, built from a commune's villages, or
//! loaded from a scenario file.
//!
//! # Scenario files
//! YAML (or JSON when the file ends in `.json`), the serialised [`Population`]:
//! ```yaml
//! users:
//!   - user_id: "2468458835296197922"      # 19 digits
//!     display_name: Đinh Văn Hùng
//!     phone: "84912345678"                # optional; ZNS to this phone reaches this user
//!     tags: [Làng Trê]
//!     last_interaction: 2026-05-01T08:00:00Z   # default: now
//!     follower: true          # default true; false → -213
//!     blocked: false          # → -217
//!     banned: false           # → -227
//!     head: true              # a village head: replies to what reaches them
//!     zns_reachable: true     # default true; false → -114
//! groups:
//!   - group_id: "f414c8f76fa586fbdfb4"   # 20 hex
//!     name: Làng Trê
//!     disabled: false         # → -237
//!     oa_is_member: true      # default true; false → -403
//!     members: ["2468458835296197922"]
//! ```

use std::path::Path;

use anyhow::Context as _;
use jiff::{SignedDuration, Timestamp};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::announce::model::{Commune, Person};

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Population {
    #[serde(default)]
    pub users: Vec<SimUser>,
    #[serde(default)]
    pub groups: Vec<SimGroup>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimUser {
    pub user_id: String,
    #[serde(default)]
    pub display_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default = "Timestamp::now")]
    pub last_interaction: Timestamp,
    #[serde(default = "yes")]
    pub follower: bool,
    #[serde(default)]
    pub blocked: bool,
    #[serde(default)]
    pub banned: bool,
    #[serde(default)]
    pub head: bool,
    /// Never answers a message (a village head who ignores it): tests of reminders and escalation.
    #[serde(default)]
    pub silent: bool,
    #[serde(default = "yes")]
    pub zns_reachable: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimGroup {
    pub group_id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub disabled: bool,
    #[serde(default = "yes")]
    pub oa_is_member: bool,
    #[serde(default)]
    pub members: Vec<String>,
}

fn yes() -> bool {
    true
}

/// What [`Population::generate`] makes: villages with a group each and followers spread across.
#[derive(Clone, Debug)]
pub struct GenerateSpec {
    pub villages: usize,
    pub followers: usize,
    /// Share of a village's followers who are in its group.
    pub group_share: f64,
    /// Share of followers whose last interaction is more than 7 days ago (cs answers -230).
    pub stale_share: f64,
    /// Share of users who do not (or no longer) follow the OA (cs answers -213).
    pub non_follower_share: f64,
    pub seed: u64,
}

impl Default for GenerateSpec {
    fn default() -> GenerateSpec {
        GenerateSpec {
            villages: 5,
            followers: 200,
            group_share: 0.8,
            stale_share: 0.1,
            non_follower_share: 0.0,
            seed: 1,
        }
    }
}

const FAMILY: &[&str] = &[
    "Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng", "Bùi", "Đỗ",
    "Hồ", "Ngô", "Dương", "Lý", "Đinh",
];
const MIDDLE: &[&str] = &["Văn", "Thị", "Hữu", "Đức", "Minh", "Thanh", "Ngọc", "Quốc"];
const GIVEN: &[&str] = &[
    "An", "Bình", "Cường", "Dũng", "Hà", "Hải", "Hạnh", "Hoa", "Hùng", "Lan", "Linh", "Long",
    "Mai", "Nam", "Nga", "Phúc", "Quang", "Sơn", "Tâm", "Thảo", "Trang", "Tuấn", "Vy", "Yến",
    "Lợi",
];
const VILLAGE: &[&str] = &[
    "Làng Trê",
    "Gò Da",
    "Yên Ngựa",
    "Biều Qua",
    "Ba Liên",
    "Thôn Đông",
    "Thôn Tây",
    "Bến Đò",
    "Xóm Chùa",
    "Cầu Tre",
    "Phú Mỹ",
    "An Lạc",
];

/// Draws ids and names; one per population so a seed always yields the same people.
pub(crate) struct Draw {
    rng: StdRng,
}

impl Draw {
    pub(crate) fn new(seed: u64) -> Draw {
        Draw {
            rng: StdRng::seed_from_u64(seed),
        }
    }

    pub(crate) fn chance(&mut self, p: f64) -> bool {
        self.rng.random::<f64>() < p
    }

    /// 19 decimal digits, no leading zero, like Zalo user ids.
    pub(crate) fn user_id(&mut self) -> String {
        self.rng
            .random_range(1_000_000_000_000_000_000u64..10_000_000_000_000_000_000)
            .to_string()
    }

    /// 20 lowercase hex digits, like Zalo group ids.
    pub(crate) fn group_id(&mut self) -> String {
        let n: u128 = self.rng.random::<u128>() >> 48;
        format!("{n:020x}")
    }

    fn name(&mut self) -> String {
        fn pick(rng: &mut StdRng, list: &[&'static str]) -> &'static str {
            list[rng.random_range(0..list.len())]
        }
        let family = pick(&mut self.rng, FAMILY);
        let middle = pick(&mut self.rng, MIDDLE);
        let given = pick(&mut self.rng, GIVEN);
        format!("{family} {middle} {given}")
    }

    /// `84` + a Vietnamese mobile number without its leading 0.
    fn phone(&mut self) -> String {
        let prefix = [3, 5, 7, 8, 9][self.rng.random_range(0..5)];
        format!("84{prefix}{:08}", self.rng.random_range(0..100_000_000u32))
    }

    /// Within the last `days` days (from `min_days` ago).
    fn ago(&mut self, now: Timestamp, min_days: i64, days: i64) -> Timestamp {
        let secs = self.rng.random_range(min_days * 86_400..days * 86_400);
        now - SignedDuration::from_secs(secs.max(60))
    }

    fn follower(&mut self, now: Timestamp, tag: &str, stale_share: f64) -> SimUser {
        let stale = self.chance(stale_share);
        SimUser {
            user_id: self.user_id(),
            display_name: self.name(),
            phone: self.chance(0.9).then(|| self.phone()),
            tags: vec![tag.to_string()],
            last_interaction: if stale {
                self.ago(now, 8, 60)
            } else {
                self.ago(now, 0, 6)
            },
            follower: true,
            blocked: false,
            banned: false,
            head: false,
            silent: false,
            zns_reachable: self.chance(0.95),
        }
    }
}

fn village_name(i: usize) -> String {
    match (VILLAGE.get(i), i / VILLAGE.len()) {
        (Some(name), _) => (*name).to_string(),
        (None, round) => format!("{} {}", VILLAGE[i % VILLAGE.len()], round + 1),
    }
}

impl Population {
    /// The head of the village named `village` (whose followers carry its name as their tag).
    pub fn head_of(&self, village: &str) -> Option<&SimUser> {
        self.users
            .iter()
            .find(|u| u.head && u.tags.iter().any(|t| t == village))
    }

    /// Villages with one group each (the OA a member), one head per village, and followers spread
    /// across the villages, tagged with their village's name.
    pub fn generate(spec: &GenerateSpec) -> Population {
        let mut draw = Draw::new(spec.seed);
        let now = Timestamp::now();
        let villages = spec.villages.max(1);
        let mut pop = Population::default();
        for v in 0..villages {
            pop.groups.push(SimGroup {
                group_id: draw.group_id(),
                name: village_name(v),
                disabled: false,
                oa_is_member: true,
                members: Vec::new(),
            });
        }
        for i in 0..spec.followers {
            let v = i % villages;
            let mut user = draw.follower(now, &village_name(v), spec.stale_share);
            // The first person of each village is its head: recent, reachable, in the group.
            let head = i < villages;
            if head {
                user.head = true;
                user.last_interaction = draw.ago(now, 0, 2);
                user.zns_reachable = true;
            } else {
                user.follower = !draw.chance(spec.non_follower_share);
            }
            if head || draw.chance(spec.group_share) {
                pop.groups[v].members.push(user.user_id.clone());
            }
            pop.users.push(user);
        }
        pop
    }

    /// The commune's villages as groups (with their configured ids), its heads and leaders with
    /// their configured ids and phones, and `followers` more people spread across the villages.
    /// A head with only a phone is a Zalo user who does not follow the OA: ZNS reaches them, cs
    /// answers -213.
    pub fn from_commune(commune: &Commune, followers: usize, seed: u64) -> Population {
        let mut draw = Draw::new(seed);
        let now = Timestamp::now();
        let mut pop = Population::default();
        let mut village_group = Vec::new();
        for village in &commune.villages {
            let group = village.zalo_group.as_ref().map(|id| {
                pop.groups.push(SimGroup {
                    group_id: id.clone(),
                    name: village.name.clone(),
                    disabled: false,
                    oa_is_member: true,
                    members: Vec::new(),
                });
                pop.groups.len() - 1
            });
            village_group.push(group);
            for head in &village.heads {
                let user = person(&mut draw, now, head, Some(village.tag()), true);
                if let (Some(g), true) = (group, user.follower) {
                    pop.groups[g].members.push(user.user_id.clone());
                }
                pop.users.push(user);
            }
        }
        for leader in &commune.leaders {
            pop.users.push(person(&mut draw, now, leader, None, false));
        }
        let villages = commune.villages.len();
        for i in 0..followers {
            let Some(village) = commune.villages.get(i % villages.max(1)) else {
                break;
            };
            let user = draw.follower(now, village.tag(), 0.1);
            if let Some(g) = village_group[i % villages]
                && draw.chance(0.8)
            {
                pop.groups[g].members.push(user.user_id.clone());
            }
            pop.users.push(user);
        }
        pop
    }

    /// Reads a scenario file (see the module doc).
    pub fn load(path: &Path) -> anyhow::Result<Population> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read scenario {}", path.display()))?;
        let pop: Population = if path.extension().is_some_and(|e| e == "json") {
            serde_json::from_str(&text)
                .with_context(|| format!("scenario {} is not valid", path.display()))?
        } else {
            serde_saphyr::from_str(&text)
                .with_context(|| format!("scenario {} is not valid", path.display()))?
        };
        Ok(pop)
    }
}

fn person(
    draw: &mut Draw,
    now: Timestamp,
    p: &Person,
    village: Option<&str>,
    head: bool,
) -> SimUser {
    SimUser {
        user_id: p.zalo_user.clone().unwrap_or_else(|| draw.user_id()),
        display_name: p.name.clone(),
        phone: p.phone.clone(),
        tags: village.map(|v| vec![v.to_string()]).unwrap_or_default(),
        last_interaction: now - SignedDuration::from_hours(1),
        follower: p.zalo_user.is_some(),
        blocked: false,
        banned: false,
        head,
        silent: false,
        zns_reachable: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generate_is_deterministic_and_shaped() {
        let spec = GenerateSpec {
            villages: 4,
            followers: 400,
            ..GenerateSpec::default()
        };
        let a = Population::generate(&spec);
        let b = Population::generate(&spec);
        // Same people (times are relative to now, which moves between the two calls).
        let ids = |p: &Population| -> Vec<(String, String)> {
            p.users
                .iter()
                .map(|u| (u.user_id.clone(), u.display_name.clone()))
                .collect()
        };
        assert_eq!(ids(&a), ids(&b));
        assert_eq!(a.groups, b.groups);
        assert_eq!(a.groups.len(), 4);
        assert_eq!(a.users.iter().filter(|u| u.head).count(), 4);
        for u in &a.users {
            assert_eq!(u.user_id.len(), 19, "{}", u.user_id);
            if let Some(p) = &u.phone {
                assert!(p.starts_with("84") && p.len() == 11, "{p}");
            }
        }
        for g in &a.groups {
            assert_eq!(g.group_id.len(), 20);
            assert!(g.group_id.chars().all(|c| c.is_ascii_hexdigit()));
        }
        let in_groups: usize = a.groups.iter().map(|g| g.members.len()).sum();
        assert!((280..=360).contains(&in_groups), "{in_groups}");
        let stale_cut = Timestamp::now() - SignedDuration::from_hours(7 * 24);
        let stale = a
            .users
            .iter()
            .filter(|u| u.last_interaction < stale_cut)
            .count();
        assert!((20..=70).contains(&stale), "{stale}");
    }

    #[test]
    fn scenario_yaml_with_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.yaml");
        std::fs::write(
            &path,
            "users:\n  - user_id: \"1234567890123456789\"\n    display_name: Lê Thị Mai\n    head: true\ngroups:\n  - group_id: \"00000000000000000001\"\n    members: [\"1234567890123456789\"]\n",
        )
        .unwrap();
        let pop = Population::load(&path).unwrap();
        assert!(pop.users[0].follower && pop.users[0].head && pop.users[0].zns_reachable);
        assert!(pop.groups[0].oa_is_member);
    }
}
