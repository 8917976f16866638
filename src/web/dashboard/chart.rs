//! Reach over time after a send as an inline SVG (no script, no external file): one step line
//! each for sent, delivered, seen and heads confirmed, against minutes since the send. Built as
//! text here because it is pure arithmetic on the timeline; the template only places it.

use std::fmt::Write as _;

use crate::ledger::report::Timeline;

const W: f64 = 640.0;
const H: f64 = 260.0;
const LEFT: f64 = 44.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 14.0;
const BOTTOM: f64 = 56.0;

/// (label, colour, value of a point) per series.
type Series = (
    &'static str,
    &'static str,
    fn(&crate::ledger::report::ReachPoint) -> i64,
);

const SERIES: [Series; 4] = [
    ("Đã gửi", "#1d4ed8", |p| p.sent),
    ("Đã đến", "#059669", |p| p.delivered),
    ("Đã xem", "#d97706", |p| p.seen),
    ("Xác nhận", "#7c3aed", |p| p.confirmed),
];

/// The SVG, or None when nothing has happened yet.
pub fn svg(t: &Timeline) -> Option<String> {
    let last = t.points.last()?;
    let start = t.send_at.as_second();
    let span = (last.at.as_second() - start).max(60) as f64;
    let top = t.targeted.max(t.heads_asked).max(1) as f64;
    let x = |secs: i64| LEFT + (secs - start).max(0) as f64 / span * (W - LEFT - RIGHT);
    let y = |n: i64| TOP + (1.0 - n as f64 / top) * (H - TOP - BOTTOM);
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg class="chart" viewBox="0 0 {W} {H}" role="img" aria-label="Số người nhận theo thời gian sau khi gửi" xmlns="http://www.w3.org/2000/svg">"#
    );
    // Axes and their labels: the count on the left, minutes since the send below.
    let _ = write!(
        out,
        r##"<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{b}" stroke="#888"/><line x1="{LEFT}" y1="{b}" x2="{r}" y2="{b}" stroke="#888"/>"##,
        b = H - BOTTOM,
        r = W - RIGHT
    );
    let _ = write!(
        out,
        r#"<text x="{lx}" y="{ty}" font-size="11" text-anchor="end">{top}</text><text x="{lx}" y="{by}" font-size="11" text-anchor="end">0</text>"#,
        lx = LEFT - 4.0,
        ty = TOP + 4.0,
        by = H - BOTTOM,
        top = top as i64
    );
    let minutes = (span / 60.0).round() as i64;
    let _ = write!(
        out,
        r#"<text x="{LEFT}" y="{y0}" font-size="11">0</text><text x="{r}" y="{y0}" font-size="11" text-anchor="end">{minutes} phút sau khi gửi</text>"#,
        y0 = H - BOTTOM + 14.0,
        r = W - RIGHT
    );
    for (i, (label, colour, value)) in SERIES.iter().enumerate() {
        // A step line: hold each count until the next change, starting from 0 at the send.
        let mut points = format!("{:.1},{:.1}", x(start), y(0));
        let mut prev = 0;
        for p in &t.points {
            let px = x(p.at.as_second());
            let _ = write!(points, " {px:.1},{:.1} {px:.1},{:.1}", y(prev), y(value(p)));
            prev = value(p);
        }
        let _ = write!(points, " {:.1},{:.1}", W - RIGHT, y(prev));
        let _ = write!(
            out,
            r#"<polyline data-series="{i}" data-final="{prev}" fill="none" stroke="{colour}" stroke-width="2" points="{points}"/>"#
        );
        let lx = LEFT + (i as f64) * 145.0;
        let ly = H - 14.0;
        let _ = write!(
            out,
            r#"<rect x="{lx}" y="{ry}" width="10" height="10" fill="{colour}"/><text x="{tx}" y="{ly}" font-size="11">{label}: {prev}</text>"#,
            ry = ly - 9.0,
            tx = lx + 14.0
        );
    }
    out.push_str("</svg>");
    Some(out)
}

#[cfg(test)]
mod tests {
    use crate::ledger::report::{ReachPoint, Timeline};
    use jiff::Timestamp;

    #[test]
    fn lines_end_at_the_last_counts() {
        let at = |s| Timestamp::from_second(s).expect("time");
        let t = Timeline {
            send_at: at(1000),
            targeted: 4,
            heads_asked: 4,
            points: vec![
                ReachPoint {
                    at: at(1000),
                    sent: 2,
                    ..Default::default()
                },
                ReachPoint {
                    at: at(1600),
                    sent: 2,
                    delivered: 2,
                    seen: 1,
                    confirmed: 1,
                },
            ],
        };
        let svg = super::svg(&t).expect("svg");
        assert_eq!(svg.matches("<polyline").count(), 4);
        assert!(svg.contains(r#"data-series="0" data-final="2""#));
        assert!(svg.contains(r#"data-series="3" data-final="1""#));
        assert!(svg.contains("10 phút sau khi gửi"));
    }
}
