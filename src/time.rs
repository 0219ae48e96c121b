//! Dates without a calendar crate: seconds since the epoch (UTC), civil
//! dates, RFC 3339, rotation periods, and "now" (which tests fix with
//! [`NOW_VAR`]). A leaf: the manifest's validation, the file writer's
//! temp names and the lifecycle all use it, and it uses nothing of theirs.

/// Seconds since the Unix epoch, UTC.
pub type Time = i64;

pub const DAY: i64 = 86_400;

/// 9999-12-31T23:59:59Z, the last second a certificate can name.
pub const LAST_SECOND: f64 = 253_402_300_799.0;

/// The variable that fixes "now", for tests (and for asking "what if" in a
/// dry run): `2026-12-01` or `2026-12-01T10:00:00Z`.
pub const NOW_VAR: &str = "SECRETSYNC_NOW";

// ---- dates ---------------------------------------------------------------------

/// Days since 1970-01-01 of a civil date (Howard Hinnant's days_from_civil).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day count (civil_from_days).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// `YYYY-MM-DD` of a time.
pub fn date(t: Time) -> String {
    let (y, m, d) = civil_from_days(t.div_euclid(DAY));
    format!("{y:04}-{m:02}-{d:02}")
}

/// `YYYY-MM-DD`, with ` HH:MM UTC` unless the time is midnight.
pub fn shown(t: Time) -> String {
    let secs = t.rem_euclid(DAY);
    if secs == 0 {
        date(t)
    } else {
        format!("{} {:02}:{:02} UTC", date(t), secs / 3600, secs % 3600 / 60)
    }
}

/// RFC 3339 in UTC, for JSON.
pub fn rfc3339(t: Time) -> String {
    let secs = t.rem_euclid(DAY);
    format!(
        "{}T{:02}:{:02}:{:02}Z",
        date(t),
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// A date, period or clock that cannot be read; the text quoted is what was
/// written (a manifest's field, `--warn-within`, [`NOW_VAR`]), never a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    #[error("`{0}` is not a date: write YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ (UTC)")]
    NotADate(String),
    #[error("`{0}` is not a period: write days or weeks, such as 90d or 12w (or `never`)")]
    NotAPeriod(String),
    #[error("`{0}` is out of range: between 1d and 36500d")]
    OutOfRange(String),
    /// [`NOW_VAR`] is set to something that is not a date.
    #[error("{NOW_VAR}: {0}")]
    Now(Box<TimeError>),
}

/// Reads `YYYY-MM-DD` (midnight UTC) or `YYYY-MM-DDTHH:MM:SSZ`.
pub fn parse_time(text: &str) -> Result<Time, TimeError> {
    let bad = || TimeError::NotADate(text.to_string());
    let t = text.trim();
    let (day, clock) = match t.split_once(['T', ' ']) {
        Some((d, c)) => (d, Some(c)),
        None => (t, None),
    };
    let num = |s: &str, len: usize| -> Option<i64> {
        (s.len() == len && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    let mut parts = day.split('-');
    let (Some(y), Some(m), Some(d), None) = (
        parts.next().and_then(|s| num(s, 4)),
        parts.next().and_then(|s| num(s, 2)),
        parts.next().and_then(|s| num(s, 2)),
        parts.next(),
    ) else {
        return Err(bad());
    };
    if !(1..=12).contains(&m) || d < 1 || d > days_in_month(y, m) {
        return Err(bad());
    }
    let mut secs = days_from_civil(y, m, d) * DAY;
    if let Some(c) = clock {
        let c = c.strip_suffix('Z').ok_or_else(bad)?;
        let mut hms = c.split(':');
        let (Some(h), Some(mi), s, None) = (
            hms.next().and_then(|s| num(s, 2)),
            hms.next().and_then(|s| num(s, 2)),
            hms.next(),
            hms.next(),
        ) else {
            return Err(bad());
        };
        let s = match s {
            Some(s) => num(s, 2).ok_or_else(bad)?,
            None => 0,
        };
        if h > 23 || mi > 59 || s > 59 {
            return Err(bad());
        }
        secs += h * 3600 + mi * 60 + s;
    }
    Ok(secs)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Now: the clock, or [`NOW_VAR`] when set; `Err` says what is wrong with
/// the variable.
pub fn clock() -> Result<Time, TimeError> {
    match std::env::var(NOW_VAR) {
        Ok(v) if !v.is_empty() => parse_time(&v).map_err(|why| TimeError::Now(Box::new(why))),
        _ => Ok(system_now()),
    }
}

fn system_now() -> Time {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Today's date, `YYYY-MM-DD` (what the editor records).
pub fn today() -> String {
    date(clock().unwrap_or_else(|_| system_now()))
}

/// A rotation period: `90d`, `12w`, or `never` (`None`).
pub fn parse_period(text: &str) -> Result<Option<i64>, TimeError> {
    let t = text.trim();
    if t == "never" {
        return Ok(None);
    }
    let bad = || TimeError::NotAPeriod(text.to_string());
    let (num, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?);
    let n: i64 = num.parse().map_err(|_| bad())?;
    let days = match unit {
        "d" => n,
        "w" => n * 7,
        _ => return Err(bad()),
    };
    if !(1..=36_500).contains(&days) {
        return Err(TimeError::OutOfRange(text.to_string()));
    }
    Ok(Some(days))
}

/// A period as written back: `90d`.
pub fn period(days: i64) -> String {
    if days % 7 == 0 && days >= 7 {
        format!("{}w", days / 7)
    } else {
        format!("{days}d")
    }
}

/// `3 days`, `5 hours`, `1 day`.
pub fn span(secs: i64) -> String {
    let secs = secs.abs();
    let (n, unit) = if secs >= DAY {
        (secs / DAY, "day")
    } else if secs >= 3600 {
        (secs / 3600, "hour")
    } else {
        ((secs / 60).max(1), "minute")
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}
