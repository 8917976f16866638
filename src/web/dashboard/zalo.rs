//! The dashboard's word on the Zalo OA itself, above everything else when there is one: Zalo
//! refusing every message of the OA (they wait for the operator), and what is left of the day's
//! ZNS quota, the only way to a head outside Zalo's 7-day window.

use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::Serialize;

use crate::announce::problem::Lang;
use crate::deliver::zalo::quota;
use crate::ledger::StoredQuota;
use crate::ledger::report::words;

/// Ready sentences; `None` from `view` when there is nothing to say.
#[derive(Serialize, Debug, PartialEq, Eq)]
pub struct ZaloView {
    /// Zalo refuses the OA, and why.
    pub blocked: Option<String>,
    pub quota: Option<String>,
    /// A tenth or less of today's quota is left.
    pub quota_low: bool,
}

/// What to show, from the code the waiting messages were refused with and the latest quota.
pub fn view(
    waiting: Option<&str>,
    quota: Option<&StoredQuota>,
    now: Timestamp,
    tz: &TimeZone,
) -> Option<ZaloView> {
    let blocked = waiting.map(|code| {
        format!(
            "Zalo đang từ chối mọi tin của OA ({}): tin nhắn chờ đến khi người vận hành khắc phục.",
            words::failure("retrying", Some(code), None, Lang::Vi)
        )
    });
    let mut quota_low = false;
    let quota = quota.map(|q| {
        let daily = q.daily;
        match quota::today(q, now) {
            Some((left, low)) => {
                quota_low = low;
                let at = q.seen_at.to_zoned(tz.clone()).strftime("%H:%M");
                let warning = if low {
                    " Sắp hết: khi hết, trưởng thôn quá 7 ngày không tương tác với OA sẽ không nhận được tin qua số điện thoại đến hết ngày."
                } else {
                    ""
                };
                format!(
                    "Tin ZNS (gửi đến số điện thoại) hôm nay: còn {left}/{daily} tin (Zalo báo lúc {at}).{warning}"
                )
            }
            None => format!(
                "Tin ZNS (gửi đến số điện thoại): {daily} tin mỗi ngày; hôm nay chưa gửi tin nào."
            ),
        }
    });
    (blocked.is_some() || quota.is_some()).then_some(ZaloView {
        blocked,
        quota,
        quota_low,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oa_is_described_only_when_there_is_something_to_say() {
        let tz = TimeZone::get("Asia/Ho_Chi_Minh").expect("tz");
        let at = |s: &str| s.parse::<Timestamp>().expect("time");
        let now = at("2026-11-25T03:00:00Z");
        assert_eq!(view(None, None, now, &tz), None);
        let q = StoredQuota {
            daily: 500,
            remaining: 37,
            seen_at: at("2026-11-25T02:13:00Z"),
            node: "vm-1".into(),
        };
        let v = view(Some("-204"), Some(&q), now, &tz).expect("a view");
        assert!(v.quota_low);
        assert_eq!(
            v.blocked.as_deref(),
            Some(
                "Zalo đang từ chối mọi tin của OA (OA đã bị vô hiệu hóa): tin nhắn chờ đến khi người vận hành khắc phục."
            )
        );
        let quota = v.quota.expect("the quota");
        assert!(
            quota.starts_with("Tin ZNS (gửi đến số điện thoại) hôm nay: còn 37/500 tin (Zalo báo lúc 09:13). Sắp hết"),
            "{quota}"
        );
        // The next day, only the day's quota.
        let v = view(None, Some(&q), at("2026-11-25T18:00:00Z"), &tz).expect("a view");
        assert!(!v.quota_low);
        assert_eq!(
            v.quota.as_deref(),
            Some("Tin ZNS (gửi đến số điện thoại): 500 tin mỗi ngày; hôm nay chưa gửi tin nào.")
        );
    }
}
