//! The report scheduler: each report with a `schedule` runs at its cron times in its
//! time zone, one run at a time. A failing run is logged and recorded, and the report
//! runs again at its next time; it never stops the other reports or the server.
//! Time comes from a [`Clock`], which tests anchor to tokio's paused clock.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::spec::{Report, Reports};

/// Wall-clock time as the scheduler sees it.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    anchor: Option<(DateTime<Utc>, tokio::time::Instant)>,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Clock { anchor: None }
    }

    /// `start` now, then advancing with tokio's clock (paused in tests).
    pub fn anchored(start: DateTime<Utc>) -> Self {
        Clock {
            anchor: Some((start, tokio::time::Instant::now())),
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        match self.anchor {
            None => Utc::now(),
            Some((start, at)) => {
                start + chrono::Duration::from_std(at.elapsed()).unwrap_or(chrono::Duration::zero())
            }
        }
    }
}

/// What the scheduler knows about one report, as `GET /api/reports` shows it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Status {
    pub next_run: Option<String>,
    pub last_run: Option<String>,
    pub last_ok: Option<bool>,
    pub last_error: Option<String>,
    pub runs: u64,
    pub failures: u64,
}

/// The reports of one `reports.toml` and their run status.
pub struct Scheduler {
    pub reports: Reports,
    status: Mutex<BTreeMap<String, Status>>,
    clock: Clock,
    /// One run at a time per report, scheduled or asked for.
    running: BTreeMap<String, Arc<tokio::sync::Mutex<()>>>,
}

/// Held while a report runs; others wait ([`Scheduler::run_one`]) or are told
/// ([`Scheduler::try_claim`]).
pub type Claim = tokio::sync::OwnedMutexGuard<()>;

impl Scheduler {
    pub fn new(reports: Reports, clock: Clock) -> Arc<Self> {
        let running = reports
            .reports
            .keys()
            .map(|name| (name.clone(), Arc::default()))
            .collect();
        Arc::new(Scheduler {
            reports,
            status: Mutex::new(BTreeMap::new()),
            clock,
            running,
        })
    }

    /// The right to run `report` now, unless a run of it is under way (`None`).
    pub fn try_claim(&self, report: &str) -> Option<Claim> {
        self.running.get(report)?.clone().try_lock_owned().ok()
    }

    /// Whether a run of `report` is under way.
    pub fn is_running(&self, report: &str) -> bool {
        self.running
            .get(report)
            .is_some_and(|lock| lock.try_lock().is_err())
    }

    /// Records a run of `report` that finished now, as the scheduler records its own.
    pub fn record<E: std::fmt::Display>(&self, report: &str, result: &Result<String, E>) {
        let finished = self.clock.now();
        let timezone = self.reports.reports.get(report).map(|r| r.timezone);
        self.update(report, |s| {
            s.last_run = Some(match timezone {
                Some(tz) => finished.with_timezone(&tz).to_rfc3339(),
                None => finished.to_rfc3339(),
            });
            s.runs += 1;
            s.last_ok = Some(result.is_ok());
            match result {
                Ok(_) => s.last_error = None,
                Err(e) => {
                    s.failures += 1;
                    s.last_error = Some(e.to_string());
                }
            }
        });
    }

    pub fn status(&self, report: &str) -> Status {
        self.status
            .lock()
            .map(|s| s.get(report).cloned().unwrap_or_default())
            .unwrap_or_default()
    }

    fn update(&self, report: &str, change: impl FnOnce(&mut Status)) {
        if let Ok(mut status) = self.status.lock() {
            change(status.entry(report.to_string()).or_default());
        }
    }

    /// The reports that have a schedule.
    pub fn scheduled(&self) -> impl Iterator<Item = &Report> {
        self.reports
            .reports
            .values()
            .filter(|r| r.schedule.is_some())
    }

    /// Runs every scheduled report at its times with `job` until `shutdown` resolves.
    /// `job` gets the report and the time it was due.
    pub async fn run<J, F, E>(self: Arc<Self>, job: J, shutdown: impl Future<Output = ()>)
    where
        J: Fn(Report, DateTime<Utc>) -> F,
        F: Future<Output = Result<String, E>> + Send + 'static,
        E: std::fmt::Display + Send + 'static,
    {
        let loops = self
            .scheduled()
            .map(|report| self.clone().run_one(report.clone(), &job));
        let all = futures::future::join_all(loops);
        tokio::select! {
            _ = all => {}
            _ = shutdown => {}
        }
    }

    async fn run_one<J, F, E>(self: Arc<Self>, report: Report, job: &J)
    where
        J: Fn(Report, DateTime<Utc>) -> F,
        F: Future<Output = Result<String, E>> + Send + 'static,
        E: std::fmt::Display + Send + 'static,
    {
        let Some(schedule) = report.schedule.clone() else {
            return;
        };
        let mut last = self.clock.now();
        loop {
            let now = self.clock.now();
            let Some(due) = schedule.next_after(last.max(now), report.timezone) else {
                log::warn!(
                    "report {}: schedule '{}' has no further run",
                    report.name,
                    schedule.expression
                );
                self.update(&report.name, |s| s.next_run = None);
                return;
            };
            // Times as the report's readers keep them: in its time zone, with the offset.
            let local = |t: DateTime<Utc>| t.with_timezone(&report.timezone).to_rfc3339();
            self.update(&report.name, |s| s.next_run = Some(local(due)));
            // Sleep in short steps against the clock, so a suspended machine or a
            // stepped clock still runs the report at its wall-clock time.
            loop {
                let left = due - self.clock.now();
                if left <= chrono::Duration::zero() {
                    break;
                }
                let step = left.min(chrono::Duration::seconds(60));
                tokio::time::sleep(step.to_std().unwrap_or_default()).await;
            }
            log::info!("report {}: running (due {})", report.name, local(due));
            // A run asked for over HTTP finishes first.
            let claim = match self.running.get(&report.name) {
                Some(lock) => Some(lock.clone().lock_owned().await),
                None => None,
            };
            // Its own task: a panic in a run is a failed run, not the end of the schedule.
            let result = match tokio::spawn(job(report.clone(), due)).await {
                Ok(Ok(done)) => Ok(done),
                Ok(Err(e)) => Err(e.to_string()),
                Err(e) => Err(format!("the run stopped: {e}")),
            };
            drop(claim);
            match &result {
                Ok(done) => log::info!("report {}: {done}", report.name),
                Err(e) => log::error!(
                    "report {}: failed, will run again at its next time: {e}",
                    report.name
                ),
            }
            self.record(&report.name, &result);
            last = due;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reports(schedules: &[(&str, &str)]) -> Reports {
        let mut text = String::new();
        for (name, schedule) in schedules {
            text.push_str(&format!(
                "[report.{name}]\ntitle = \"{name}\"\nschedule = \"{schedule}\"\ntimezone = \"UTC\"\n\
                 [[report.{name}.sections]]\ntitle = \"s\"\nsql = \"SELECT 1\"\n"
            ));
        }
        Reports::parse(&text, std::path::Path::new("reports.toml")).unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn fires_on_time_and_survives_a_failing_report() {
        let start: DateTime<Utc> = "2026-11-29T07:59:30Z".parse().unwrap();
        let scheduler = Scheduler::new(
            reports(&[
                ("daily", "0 8 * * *"),
                ("often", "*/20 * * * * *"),
                ("broken", "*/30 * * * * *"),
            ]),
            Clock::anchored(start),
        );
        // (report, due, when it ran)
        type Fired = Vec<(String, DateTime<Utc>, DateTime<Utc>)>;
        let fired: Arc<Mutex<Fired>> = Arc::default();
        let clock = Clock::anchored(start);
        let log = fired.clone();
        let job = move |report: Report, due: DateTime<Utc>| {
            let log = log.clone();
            async move {
                log.lock()
                    .unwrap()
                    .push((report.name.clone(), due, clock.now()));
                if report.name == "broken" {
                    Err(format!("{} is broken", report.name))
                } else {
                    Ok("done".to_string())
                }
            }
        };
        let shutdown = tokio::time::sleep(std::time::Duration::from_secs(91));
        scheduler.clone().run(job, shutdown).await;

        let fired = fired.lock().unwrap().clone();
        let times = |name: &str| -> Vec<String> {
            fired
                .iter()
                .filter(|(n, _, _)| n == name)
                .map(|(_, due, at)| {
                    assert_eq!(due, at, "{name} ran at {at}, due {due}");
                    due.format("%H:%M:%S").to_string()
                })
                .collect()
        };
        assert_eq!(times("daily"), ["08:00:00"]);
        assert_eq!(
            times("often"),
            ["07:59:40", "08:00:00", "08:00:20", "08:00:40", "08:01:00"]
        );
        assert_eq!(
            times("broken"),
            ["08:00:00", "08:00:30", "08:01:00"],
            "a failure is retried at the next time"
        );
        let broken = scheduler.status("broken");
        assert_eq!(
            (broken.runs, broken.failures, broken.last_ok),
            (3, 3, Some(false))
        );
        assert_eq!(broken.last_error.as_deref(), Some("broken is broken"));
        let often = scheduler.status("often");
        assert_eq!((often.runs, often.failures), (5, 0));
        assert_eq!(often.next_run.as_deref(), Some("2026-11-29T08:01:20+00:00"));
    }
}
