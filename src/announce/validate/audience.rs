//! Who an announcement goes to, and who must confirm it.

use super::*;

pub(super) fn audience(
    c: &mut Checker,
    raw: Option<&Sp<RawAudience>>,
    commune: Option<&Commune>,
) -> Option<Audience> {
    let all_villages = || {
        commune
            .map(|k| k.villages.iter().map(|v| v.id.clone()).collect())
            .unwrap_or_default()
    };
    let Some(raw) = raw else {
        return Some(Audience {
            villages: all_villages(),
            whole_commune: true,
            heads_only: false,
        });
    };
    let ra = raw.get();
    // Heads only when they are the only role named: `[village_head, residents]` is everyone
    // (the heads are residents, reached with the others).
    let (mut heads, mut residents) = (false, false);
    for (i, role) in ra.roles.iter().flat_map(|r| r.get().iter()).enumerate() {
        match role.get().as_str() {
            "village_head" => heads = true,
            "residents" => residents = true,
            v => c.report(
                role.pos(),
                format!("audience.roles[{i}]"),
                unknown_value(v, &["village_head", "residents"]),
            ),
        }
    }
    let heads_only = heads && !residents;
    let named: Vec<&Sp<String>> = ra.villages.iter().flat_map(|v| v.get().iter()).collect();
    let mut villages = Vec::new();
    for (i, v) in named.iter().enumerate() {
        let id = v.get().trim();
        if let Some(k) = commune
            && k.village(id).is_none()
        {
            let suggestion = suggest(id, k.villages.iter().map(|v| v.id.as_str()));
            c.report(
                v.pos(),
                format!("audience.villages[{i}]"),
                ProblemKind::UnknownVillage {
                    id: id.into(),
                    suggestion,
                },
            );
            continue;
        }
        if !villages.iter().any(|x| x == id) {
            villages.push(id.to_string());
        }
    }
    let whole_commune = named.is_empty();
    if whole_commune {
        villages = all_villages();
    }
    if let (true, Some(roles)) = (heads_only, &ra.roles) {
        no_heads(c, roles.pos(), "audience.roles", &villages, commune);
    }
    Some(Audience {
        villages,
        whole_commune,
        heads_only,
    })
}

/// Heads are needed when the file sends to them or asks them to confirm.
pub(super) fn no_heads(
    c: &mut Checker,
    pos: Pos,
    field: &str,
    villages: &[String],
    commune: Option<&Commune>,
) {
    let Some(k) = commune else { return };
    let missing: Vec<String> = villages
        .iter()
        // A head with neither a phone nor a Zalo id cannot be written to: as good as none.
        .filter(|id| {
            k.village(id).is_some_and(|v| {
                v.heads
                    .iter()
                    .all(|h| h.phone.is_none() && h.zalo_user.is_none())
            })
        })
        .cloned()
        .collect();
    if !missing.is_empty() {
        c.report(pos, field, ProblemKind::NoHeads { villages: missing });
    }
}

pub(super) fn confirm(
    c: &mut Checker,
    raw: &Sp<RawConfirm>,
    commune: Option<&Commune>,
    audience: Option<&Audience>,
) -> Option<Confirm> {
    let rc = raw.get();
    let within = c.value(&rc.within, "confirm.within", parse_duration);
    let by: Vec<&Sp<String>> = rc.by.iter().flat_map(|b| b.get().iter()).collect();
    if let Some(b) = rc.by.as_ref().filter(|b| b.get().is_empty()) {
        c.report(b.pos(), "confirm.by", ProblemKind::NobodyToConfirm);
    }
    for (i, role) in by.iter().enumerate() {
        if role.get() != "village_head" {
            c.report(
                role.pos(),
                format!("confirm.by[{i}]"),
                unknown_value(role.get(), &["village_head"]),
            );
        }
    }
    if let Some(a) = audience {
        let at = rc.by.as_ref().map_or(raw.pos(), |b| b.pos());
        no_heads(c, at, "confirm.by", &a.villages, commune);
    }
    let mut escalate_to = Vec::new();
    for (i, l) in rc
        .escalate_to
        .iter()
        .flat_map(|e| e.get().iter())
        .enumerate()
    {
        let id = l.get().trim();
        if let Some(k) = commune
            && k.leader(id).is_none()
        {
            let suggestion = suggest(id, k.leaders.iter().filter_map(|p| p.id.as_deref()));
            c.report(
                l.pos(),
                format!("confirm.escalate_to[{i}]"),
                ProblemKind::UnknownLeader {
                    id: id.into(),
                    suggestion,
                },
            );
            continue;
        }
        if let Some(leader) = commune.and_then(|k| k.leader(id))
            && leader.phone.is_none()
            && leader.zalo_user.is_none()
        {
            c.report(
                l.pos(),
                format!("confirm.escalate_to[{i}]"),
                ProblemKind::NoContact {
                    name: leader.name.clone(),
                },
            );
            continue;
        }
        escalate_to.push(id.to_string());
    }
    Some(Confirm {
        within: within?,
        escalate_to,
    })
}
