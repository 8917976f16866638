//! commune.yaml: villages, heads, leaders, time zone and quiet hours.

use super::*;

pub fn commune(path: &Path, raw: &RawCommune) -> Result<Commune, Vec<Problem>> {
    let mut c = Checker {
        path,
        problems: Vec::new(),
    };
    let name = c.non_empty(&raw.commune, "commune");
    let tz = match &raw.timezone {
        None => TimeZone::get(DEFAULT_TZ).ok(),
        Some(tz) => c.value(tz, "timezone", |v| {
            TimeZone::get(v).map_err(|_| ProblemKind::InvalidTimeZone { value: v.into() })
        }),
    };
    let quiet_hours = raw
        .quiet_hours
        .as_ref()
        .and_then(|q| c.value(q, "quiet_hours", parse_quiet_hours));
    let mut seen = HashSet::new();
    let mut villages = Vec::new();
    for (i, v) in raw.villages.get().iter().enumerate() {
        let field = format!("villages[{i}]");
        let rv = v.get();
        let id = village_or_leader_id(&mut c, &rv.id, &format!("{field}.id"), &mut seen);
        let name = c.non_empty(&rv.name, &format!("{field}.name"));
        if let Some(g) = &rv.zalo_group {
            c.value(g, format!("{field}.zalo_group"), check_zalo_id);
        }
        let heads = people(
            &mut c,
            &rv.heads,
            &format!("{field}.heads"),
            false,
            &mut HashSet::new(),
        );
        if let (Some(id), Some(name)) = (id, name) {
            villages.push(Village {
                id,
                name,
                zalo_group: rv.zalo_group.as_ref().map(|g| g.get().clone()),
                zalo_tag: rv
                    .zalo_tag
                    .as_ref()
                    .map(|t| t.get().trim().to_string())
                    .filter(|t| !t.is_empty()),
                heads,
            });
        }
    }
    if raw.villages.get().is_empty() {
        c.report(raw.villages.pos(), "villages", ProblemKind::Empty);
    }
    let leaders = people(&mut c, &raw.leaders, "leaders", true, &mut seen);
    match (c.problems.is_empty(), name, tz) {
        (true, Some(name), Some(tz)) => Ok(Commune {
            name,
            tz,
            quiet_hours,
            villages,
            leaders,
        }),
        _ => Err(c.problems),
    }
}

/// Ids are compared as written; village and leader ids share one namespace so that an id in a
/// file can never mean two things.
fn village_or_leader_id(
    c: &mut Checker,
    raw: &Sp<String>,
    field: &str,
    seen: &mut HashSet<String>,
) -> Option<String> {
    let id = c.non_empty(raw, field)?;
    if !seen.insert(id.clone()) {
        c.report(raw.pos(), field, ProblemKind::DuplicateId { id });
        return None;
    }
    Some(id)
}

fn people(
    c: &mut Checker,
    raw: &[Sp<RawPerson>],
    field: &str,
    need_id: bool,
    seen: &mut HashSet<String>,
) -> Vec<Person> {
    let mut out = Vec::new();
    for (i, p) in raw.iter().enumerate() {
        let field = format!("{field}[{i}]");
        let rp = p.get();
        let id = match &rp.id {
            Some(id) => village_or_leader_id(c, id, &format!("{field}.id"), seen),
            None if need_id => {
                c.report(
                    p.pos(),
                    &field,
                    ProblemKind::MissingField { field: "id".into() },
                );
                None
            }
            None => None,
        };
        let name = c.non_empty(&rp.name, &format!("{field}.name"));
        let phone = rp
            .phone
            .as_ref()
            .and_then(|ph| c.value(ph, format!("{field}.phone"), parse_phone));
        if let Some(z) = &rp.zalo_user {
            c.value(z, format!("{field}.zalo_user"), check_zalo_id);
        }
        if let Some(name) = name {
            out.push(Person {
                id,
                name,
                phone,
                zalo_user: rp.zalo_user.as_ref().map(|z| z.get().clone()),
            });
        }
    }
    out
}
