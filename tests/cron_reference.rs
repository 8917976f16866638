//! Cron next-times from croner (through loa's parser) checked against an independent, brute-force
//! reading of Vixie cron semantics on thousands of random expressions. The reference here shares
//! no code with loa: it expands each field to a set and walks the calendar day by day.
//!
//! Vixie's day rule: when day-of-month and day-of-week are both restricted (neither starts with
//! `*`), a day matches if EITHER matches; otherwise both must (the `*` one matches everything).

use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;

/// A small deterministic generator (xorshift64*), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn range(&mut self, lo: u32, hi: u32) -> u32 {
        lo + self.below(u64::from(hi - lo + 1)) as u32
    }
}

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// One random field between lo and hi: `*`, `*/n`, `a`, `a-b`, `a-b/n` or a list of those.
fn field(rng: &mut Rng, lo: u32, hi: u32, names: Option<&[&str]>, star_weight: u64) -> String {
    if rng.below(100) < star_weight {
        return "*".into();
    }
    let items = 1 + rng.below(3) as usize;
    let mut parts = Vec::new();
    for _ in 0..items {
        let name = |v: u32, rng: &mut Rng| match names {
            Some(ns) if rng.below(3) == 0 && ((v - lo) as usize) < ns.len() => {
                ns[(v - lo) as usize].to_string()
            }
            _ => v.to_string(),
        };
        let part = match rng.below(5) {
            0 => format!("*/{}", rng.range(2, (hi - lo).max(2))),
            1 | 2 => {
                let v = rng.range(lo, hi);
                name(v, rng)
            }
            3 => {
                let a = rng.range(lo, hi);
                let b = rng.range(a, hi);
                // croner reads SUN at the end of a range as 7 (`MON-SUN` is the whole week, which
                // Vixie rejects); that friendlier reading is kept, so it is not compared here.
                let end = if names == Some(&DAYS[..]) && b == 0 {
                    b.to_string()
                } else {
                    name(b, rng)
                };
                format!("{}-{}", name(a, rng), end)
            }
            _ => {
                let a = rng.range(lo, hi);
                let b = rng.range(a, hi);
                format!("{a}-{b}/{}", rng.range(1, 6))
            }
        };
        parts.push(part);
    }
    parts.join(",")
}

/// Expands one field to the set of values it allows (as a bitmask).
fn expand(f: &str, lo: u32, hi: u32, names: &[&str]) -> u128 {
    let value = |s: &str| -> u32 {
        names
            .iter()
            .position(|n| n.eq_ignore_ascii_case(s))
            .map(|i| i as u32 + lo)
            .unwrap_or_else(|| s.parse().expect("number"))
    };
    let mut set = 0u128;
    for part in f.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (r, s.parse::<u32>().expect("step")),
            None => (part, 1),
        };
        let (a, b) = if range == "*" {
            (lo, hi)
        } else if let Some((a, b)) = range.split_once('-') {
            (value(a), value(b))
        } else {
            (value(range), value(range))
        };
        let mut v = a;
        while v <= b {
            set |= 1 << v;
            v += step;
        }
    }
    set
}

struct Reference {
    minutes: u128,
    hours: u128,
    doms: u128,
    months: u128,
    dows: u128,
    dom_star: bool,
    dow_star: bool,
}

impl Reference {
    fn new(expr: &str) -> Reference {
        let f: Vec<&str> = expr.split(' ').collect();
        let mut dows = expand(f[4], 0, 7, &DAYS);
        if dows & (1 << 7) != 0 {
            dows |= 1; // 7 is Sunday too
        }
        Reference {
            minutes: expand(f[0], 0, 59, &[]),
            hours: expand(f[1], 0, 23, &[]),
            doms: expand(f[2], 1, 31, &[]),
            months: expand(f[3], 1, 12, &MONTHS),
            dows,
            dom_star: f[2].starts_with('*'),
            dow_star: f[4].starts_with('*'),
        }
    }

    fn day_matches(&self, d: Date) -> bool {
        let dom = self.doms & (1 << d.day()) != 0;
        let dow = self.dows & (1 << d.weekday().to_sunday_zero_offset()) != 0;
        let day = if self.dom_star || self.dow_star {
            dom && dow
        } else {
            dom || dow
        };
        day && self.months & (1 << d.month()) != 0
    }

    /// The first matching minute strictly after `t`, within ten years.
    fn next_after(&self, t: DateTime) -> Option<DateTime> {
        let mut day = t.date();
        for _ in 0..3660 {
            if self.day_matches(day) {
                for h in 0..24 {
                    if self.hours & (1 << h) == 0 {
                        continue;
                    }
                    for m in 0..60 {
                        if self.minutes & (1 << m) == 0 {
                            continue;
                        }
                        let candidate = day.at(h, m, 0, 0);
                        if candidate > t {
                            return Some(candidate);
                        }
                    }
                }
            }
            day = day.tomorrow().ok()?;
        }
        None
    }
}

#[test]
fn croner_agrees_with_vixie_on_random_expressions() {
    let tz = TimeZone::get("Asia/Ho_Chi_Minh").expect("tz");
    let mut rng = Rng(0x10a_5eed_u64.wrapping_add(0x9e37_79b9_7f4a_7c15));
    let mut compared = 0;
    for case in 0..2000 {
        let expr = [
            field(&mut rng, 0, 59, None, 10),
            field(&mut rng, 0, 23, None, 25),
            field(&mut rng, 1, 31, None, 55),
            field(&mut rng, 1, 12, Some(&MONTHS), 65),
            field(&mut rng, 0, 6, Some(&DAYS), 55),
        ]
        .join(" ");
        let reference = Reference::new(&expr);
        let start = Date::new(2026, 1, 1).expect("date").at(0, 0, 0, 0)
            + jiff::SignedDuration::from_mins(rng.below(3 * 365 * 1440) as i64);
        let expected: Vec<DateTime> =
            std::iter::successors(reference.next_after(start), |t| reference.next_after(*t))
                .take(5)
                .collect();
        let parsed = loa::announce::values::parse_cron(&expr)
            .unwrap_or_else(|e| panic!("case {case}: {expr} rejected: {e:?}"));
        let zoned = start.to_zoned(tz.clone()).expect("zoned");
        let got: Vec<DateTime> = parsed
            .cron
            .iter_after(zoned)
            .take(expected.len())
            .map(|z| z.datetime())
            .collect();
        assert_eq!(got, expected, "case {case}: \"{expr}\" after {start}");
        compared += expected.len();
    }
    assert!(compared > 5000, "too few occurrences compared: {compared}");
}

#[test]
fn vixie_day_rule_examples() {
    let tz = TimeZone::get("Asia/Ho_Chi_Minh").expect("tz");
    let after = |expr: &str, n: usize| -> Vec<String> {
        let start = Date::new(2026, 11, 30)
            .expect("date")
            .at(23, 59, 0, 0)
            .to_zoned(tz.clone())
            .expect("zoned");
        loa::announce::values::parse_cron(expr)
            .expect("valid")
            .cron
            .iter_after(start)
            .take(n)
            .map(|z| z.strftime("%a %d/%m").to_string())
            .collect()
    };
    // Both restricted: the 1st of the month OR any Monday.
    assert_eq!(
        after("0 8 1 * MON", 3),
        ["Tue 01/12", "Mon 07/12", "Mon 14/12"]
    );
    // Day-of-month `*`: Mondays only.
    assert_eq!(after("0 8 * * MON", 2), ["Mon 07/12", "Mon 14/12"]);
    // `*/10` starts with `*`, so as in Vixie cron the two fields are ANDed: Mondays that fall on
    // the 1st, 11th, 21st or 31st (croner alone would OR them).
    assert_eq!(
        after("0 8 */10 * MON", 3),
        ["Mon 21/12", "Mon 11/01", "Mon 01/02"]
    );
}
