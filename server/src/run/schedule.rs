//! The weekly schedule: at a set day and time in `BILLING_TZ` the last complete week's run is
//! due. A scheduled run stops at the approval gate: it starts once a person approved the week
//! (or at once when auto-approval is on). Every `billing serve` checks; starting and approving
//! are idempotent, so several servers start one run.

use chrono::{NaiveTime, TimeZone, Utc, Weekday};
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::db::alerts::NewAlert;
use crate::db::audit::Actor;
use crate::db::Db;
use app::model::alerts::{AlertKind, AlertSettings};
use app::model::week::BillingWeek;

/// The `run_schedule` setting.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSchedule {
    pub enabled: bool,
    /// `mon` … `sun`.
    pub weekday: String,
    /// `HH:MM`, local time in `BILLING_TZ`.
    pub time: String,
    /// Approve the week's preview without a person (off by default).
    pub auto_approve: bool,
}

impl Default for RunSchedule {
    fn default() -> Self {
        RunSchedule { enabled: false, weekday: "sat".into(), time: "06:00".into(), auto_approve: false }
    }
}

impl RunSchedule {
    /// The setting's key.
    pub const KEY: &'static str = "run_schedule";

    /// The day and time, or the field that is wrong and why.
    pub fn parse(&self) -> Result<(Weekday, NaiveTime), (&'static str, String)> {
        let weekday = self
            .weekday
            .parse::<Weekday>()
            .map_err(|_| ("weekday", format!("{:?} is not a day: write mon, tue, … sun", self.weekday)))?;
        let time = NaiveTime::parse_from_str(&self.time, "%H:%M")
            .map_err(|_| ("time", format!("{:?} is not a time: write HH:MM, such as 06:00", self.time)))?;
        Ok((weekday, time))
    }

    /// The stored schedule, or the default (off).
    pub async fn load(db: &Db) -> Result<RunSchedule, sqlx::Error> {
        db.setting_or_default(Self::KEY).await
    }
}

/// The week whose run is due at `now`, if the schedule says one is (the last complete week,
/// once this week's scheduled moment has passed), and that moment.
pub fn due(
    schedule: &RunSchedule,
    tz: chrono_tz::Tz,
    now: chrono::DateTime<Utc>,
) -> Option<(BillingWeek, chrono::DateTime<Utc>)> {
    if !schedule.enabled {
        return None;
    }
    let (weekday, time) = schedule.parse().ok()?;
    let current = BillingWeek::containing(now, tz);
    let day = current.monday() + chrono::Duration::days(i64::from(weekday.num_days_from_monday()));
    let moment = tz.from_local_datetime(&day.and_time(time)).earliest()?.with_timezone(&Utc);
    (now >= moment).then(|| (current.previous(), moment))
}

/// One check of the schedule: when a week's run is due and has none, start it if the week is
/// approved (approving it first when auto-approval is on). Returns the run started, if any. A
/// run still not started `not_started_after_minutes` after its moment raises an alert.
pub async fn tick(db: &Db, config: &Config) -> anyhow::Result<Option<i64>> {
    let schedule = RunSchedule::load(db).await?;
    let now = Utc::now();
    let Some((week, moment)) = due(&schedule, config.time_zone, now) else { return Ok(None) };
    if db.run_of_week(&week.to_string()).await?.is_some() {
        return Ok(None);
    }
    let started = start_if_approved(db, config, &schedule, week).await;
    // Auto-approval never approves a week with flagged anomalies: a person looks first, and is
    // told why at once.
    if let Ok(Gate::Flagged(flagged)) = &started {
        let why = format!(
            "{flagged} invoice(s) of {week} are flagged as anomalies, so auto-approval left the week for a \
             person to look at and approve"
        );
        let alert = not_started(config, week, moment, "was not approved automatically", &why);
        db.raise_alert(&alert).await?;
        return Ok(None);
    }
    let started = started.map(|gate| match gate {
        Gate::Started(run) => Some(run),
        Gate::Flagged(_) | Gate::Waiting => None,
    });
    if !matches!(started, Ok(Some(_))) {
        let settings: AlertSettings = db.setting_or_default(AlertSettings::KEY).await?;
        let late = moment + chrono::Duration::minutes(i64::from(settings.not_started_after_minutes));
        if now >= late {
            let why = match &started {
                Err(e) => format!("starting it failed: {e:#}"),
                Ok(_) => "the week is waiting for approval".to_owned(),
            };
            db.raise_alert(&not_started(config, week, moment, "has not started", &why)).await?;
        }
    }
    started
}

/// The alert of a week's run that did not start at `moment`: "The run of W {what}", and why
/// (one open alert per week: a repeat is grouped).
fn not_started(
    config: &Config,
    week: BillingWeek,
    moment: chrono::DateTime<Utc>,
    what: &str,
    why: &str,
) -> NewAlert {
    let local = moment.with_timezone(&config.time_zone).format("%a %d %b %H:%M %Z");
    NewAlert {
        kind: AlertKind::RunNotStarted,
        group_key: format!("run_not_started:{week}"),
        run_id: None,
        week: Some(week.to_string()),
        title: format!("The run of {week} {what}"),
        detail: format!("It was due {local}; {why}."),
        link: Some(format!("/weeks/{week}")),
    }
}

/// What the approval gate came to for a due week.
enum Gate {
    /// The run was started.
    Started(i64),
    /// The week waits for a person to approve it.
    Waiting,
    /// Auto-approval is on, but this many invoices of the week are flagged as anomalies.
    Flagged(u64),
}

async fn start_if_approved(
    db: &Db,
    config: &Config,
    schedule: &RunSchedule,
    week: BillingWeek,
) -> anyhow::Result<Gate> {
    // Keep the preview current, so the people at the gate see the week as it will be charged.
    let stored = crate::preview::refresh(db, config, week).await?;
    let actor = Actor { kind: "system", name: "scheduler".into(), staff_id: None, source: "schedule".into() };
    let approved = match stored.status {
        app::model::preview::WeekStatus::Approved => true,
        _ if schedule.auto_approve && (stored.flagged > 0 || !stored.anomalies.is_empty()) => {
            return Ok(Gate::Flagged(stored.flagged));
        }
        _ if schedule.auto_approve => {
            crate::preview::approve(db, config, &actor, week, &stored.content_hash).await?;
            true
        }
        _ => false,
    };
    if !approved {
        return Ok(Gate::Waiting); // the approval gate: a person approves, the next tick starts the run
    }
    let settings = super::load_settings(db).await?;
    let run = db.start_run(week, &actor, settings.canary_size).await?;
    tracing::info!(run = run.id, %week, "scheduled run started");
    Ok(Gate::Started(run.id))
}

/// Checks the schedule every 30 seconds, forever (`billing serve`).
pub async fn run_forever(db: Db, config: Config) {
    loop {
        if let Err(e) = tick(&db, &config).await {
            tracing::warn!(error = %e, "the run schedule could not be checked");
        }
        tokio::time::sleep(std::time::Duration::from_secs(30)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_is_due_after_the_scheduled_moment_for_the_last_complete_week() {
        let on = RunSchedule { enabled: true, ..Default::default() };
        let tz: chrono_tz::Tz = "Europe/Paris".parse().unwrap();
        // Saturday 28 November 2026, 05:59 and 06:00 in Paris (UTC+1).
        let before = Utc.with_ymd_and_hms(2026, 11, 28, 4, 59, 0).unwrap();
        let after = Utc.with_ymd_and_hms(2026, 11, 28, 5, 0, 0).unwrap();
        assert_eq!(due(&on, tz, before), None);
        assert_eq!(due(&on, tz, after), Some((BillingWeek::parse("2026-W47").unwrap(), after)));
        assert_eq!(due(&RunSchedule::default(), tz, after), None, "off by default");
        let bad = RunSchedule { weekday: "someday".into(), ..on.clone() };
        assert_eq!(bad.parse().unwrap_err().0, "weekday");
        let bad = RunSchedule { time: "6am".into(), ..on };
        assert_eq!(bad.parse().unwrap_err().0, "time");
    }
}
