//! What is wrong with a cron expression, field by field, in both languages.

/// What is wrong with a cron expression, found by trying its fields one at a time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CronFault {
    FieldCount(usize),
    Field { field: CronField, text: String },
    Other(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CronField {
    Second,
    Minute,
    Hour,
    DayOfMonth,
    Month,
    DayOfWeek,
}

impl CronFault {
    pub(super) fn message_vi(&self) -> String {
        match self {
            CronFault::FieldCount(n) => {
                format!("cần 5 trường (phút giờ ngày tháng thứ), đang có {n}")
            }
            CronFault::Field { field, text } => {
                let (name, range) = match field {
                    CronField::Second => ("giây", "0–59"),
                    CronField::Minute => ("phút", "0–59"),
                    CronField::Hour => ("giờ", "0–23"),
                    CronField::DayOfMonth => ("ngày trong tháng", "1–31"),
                    CronField::Month => ("tháng", "1–12 hoặc JAN–DEC"),
                    CronField::DayOfWeek => ("thứ", "0–7 hoặc SUN–SAT, 0 và 7 là Chủ Nhật"),
                };
                format!(
                    "trường {name} \"{text}\" sai; cần giá trị {range}, dạng *, a, a-b, */n hoặc danh sách a,b"
                )
            }
            CronFault::Other(detail) => detail.clone(),
        }
    }

    pub(super) fn message_en(&self) -> String {
        match self {
            CronFault::FieldCount(n) => {
                format!("needs 5 fields (minute hour day month weekday), found {n}")
            }
            CronFault::Field { field, text } => {
                let (name, range) = match field {
                    CronField::Second => ("second", "0–59"),
                    CronField::Minute => ("minute", "0–59"),
                    CronField::Hour => ("hour", "0–23"),
                    CronField::DayOfMonth => ("day-of-month", "1–31"),
                    CronField::Month => ("month", "1–12 or JAN–DEC"),
                    CronField::DayOfWeek => ("day-of-week", "0–7 or SUN–SAT, 0 and 7 are Sunday"),
                };
                format!(
                    "{name} field \"{text}\" is wrong; expected {range}, as *, a, a-b, */n or a list a,b"
                )
            }
            CronFault::Other(detail) => detail.clone(),
        }
    }
}

/// Whether a cron expression's minute field is `*`: the usual mistake behind a too-frequent one
/// ("* 7 * * *" for seven o'clock), worth a hint.
pub(super) fn every_minute(cron: &str) -> bool {
    let fields: Vec<&str> = cron.split(' ').collect();
    let minute = if fields.len() == 6 { 1 } else { 0 };
    fields.get(minute) == Some(&"*")
}
