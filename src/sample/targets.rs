//! The sample city's other half, for the seed year: performance targets of every
//! project and first-level department, monthly budget execution, the mid-year (June)
//! dual monitoring of the 9 finance-monitored projects (F11, 253,300.00 万元), year-end
//! results, rectification items for the 34 monitoring and 73 evaluation suggestions,
//! and the next year's budget decisions that use the results. Drawn from a random
//! stream of its own, so the first half's rows are the same with or without it.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rust_decimal::Decimal;

use super::{split_exact, text, Gen, SEED_YEAR};
use crate::functions::target_points::points;
use crate::functions::GradeScheme;
use crate::ingest::validate::Value;

/// At most this many ordinary projects get targets in scale data; the city's all do.
const MAX_PROJECTS: usize = 600;

/// (indicator, unit, comparator, typical target values): the project targets drawn from.
const PROJECT_TARGETS: &[(&str, &str, &str, &[i64])] = &[
    ("P3101", "个", ">=", &[12, 30, 45, 80, 120, 300]),
    ("P3201", "%", ">=", &[95, 98, 100]),
    ("P3301", "天", "<=", &[30, 60, 90, 180]),
    ("P4101", "元/人", "=", &[600, 1200, 2400]),
    ("P4201", "", "qualitative", &[]),
    ("P4301", "%", ">=", &[85, 90, 95]),
];

/// The first-level departments' targets: key work, quality, timeliness, satisfaction.
const DEPT_TARGETS: &[(&str, &str, &str, &[i64])] = &[
    ("D3101", "%", ">=", &[95, 100]),
    ("D3201", "%", ">=", &[95, 98]),
    ("D3301", "%", ">=", &[90, 95]),
    ("D4101", "", "qualitative", &[]),
    ("D4301", "%", ">=", &[85, 90]),
];

const MONITORING_ISSUES: &[&str] = &[
    "预算执行进度滞后于时间进度，需加快支出",
    "绩效目标完成进度偏慢，需细化推进措施",
    "部分资金未及时拨付到位",
    "项目实施方案调整未及时报备",
    "绩效运行监控台账不完整",
];

const EVALUATION_ISSUES: &[&str] = &[
    "绩效目标设定不够细化量化",
    "资金使用管理制度不健全",
    "项目验收程序不规范",
    "政策受益对象识别不精准",
    "资产管理和后续运维机制缺失",
    "满意度调查覆盖面不足",
    "部分指标佐证资料不充分",
];

const OTHER_ISSUES: &[&str] = &[
    "申报测算依据不充分",
    "部门整体支出绩效目标与职能匹配度不高",
    "结转结余资金规模较大",
];

/// A project of the seed year and its budget in hundredths.
struct Project {
    code: String,
    budget: i128,
}

/// One object's targets: (indicator, unit, comparator, target value in ten-thousandths,
/// max score in hundredths).
type Targets = Vec<(&'static str, &'static str, &'static str, Option<i128>, i128)>;

impl Gen {
    /// The seed year's targets, execution, monitoring, results, rectifications and
    /// the next year's budget decisions.
    pub(super) fn targets_and_results(&mut self) {
        let mut rng = ChaCha8Rng::seed_from_u64(self.opts.seed ^ 0x7461_7267_6574);
        let year = SEED_YEAR;
        let evaluations = self.tables["evaluations"].values.clone();
        let of_kind = |kind: &str| -> Vec<(String, Option<i128>, i32)> {
            evaluations
                .iter()
                .filter(|r| r[0] == Value::Int(year) && r[2].text() == Some(kind))
                .map(|r| {
                    (
                        r[1].text().unwrap_or_default().to_string(),
                        r[3].dec(),
                        r[4].int().unwrap_or(0),
                    )
                })
                .collect()
        };
        let monitored = of_kind("finance_monitoring");
        let evaluated = of_kind("finance_evaluation");
        let special: Vec<&str> = monitored
            .iter()
            .chain(&evaluated)
            .map(|(c, ..)| c.as_str())
            .collect();
        let mut projects: Vec<Project> = Vec::new();
        let mut ordinary = 0;
        for row in &self.tables["projects"].values {
            if row[0] != Value::Int(year) {
                continue;
            }
            let code = row[1].text().unwrap_or_default().to_string();
            let budget = row[6].dec().unwrap_or(0);
            if !special.contains(&code.as_str()) {
                ordinary += 1;
                if ordinary > MAX_PROJECTS
                    && self.opts.departments > super::names::DEPARTMENTS.len()
                {
                    continue;
                }
            }
            projects.push(Project { code, budget });
        }
        let depts: Vec<(String, i128)> = self.tables["unit_budgets"]
            .values
            .iter()
            .filter(|r| r[0] == Value::Int(year) && r[1].text().is_some_and(|c| c.len() == 3))
            .map(|r| {
                (
                    r[1].text().unwrap_or_default().to_string(),
                    r[2].dec().unwrap_or(0),
                )
            })
            .collect();

        let mut scores: Vec<(String, Decimal)> = Vec::new();
        for (kind, code, budget, menu) in projects
            .iter()
            .map(|p| ("project", p.code.clone(), p.budget, PROJECT_TARGETS))
            .chain(
                depts
                    .iter()
                    .map(|(c, b)| ("dept", c.clone(), *b, DEPT_TARGETS)),
            )
            .collect::<Vec<_>>()
        {
            let is_monitored = monitored.iter().any(|(c, ..)| *c == code);
            let targets = self.draw_targets(&mut rng, kind, &code, menu);
            if budget == 0 {
                // Not funded (rejected or returned at review): targets only.
                continue;
            }
            let (june, december) = self.execution(&mut rng, kind, &code, budget, is_monitored);
            if is_monitored {
                self.progress(&mut rng, kind, &code, &targets, june * 2 < budget * 8 / 10);
            }
            let earned = self.year_end(&mut rng, kind, &code, &targets);
            let possible: i128 = targets.iter().map(|t| t.4).sum();
            let scale = |units: i128, dp: u32| Decimal::from_i128_with_scale(units, dp);
            let execution = points(
                Some(scale(december, 2)),
                Some(scale(budget, 2)),
                ">=",
                Some(Decimal::from(10)),
                None,
            )
            .ok()
            .flatten()
            .unwrap_or_default();
            let target = points(
                Some(earned),
                Some(scale(possible, 2)),
                ">=",
                Some(Decimal::from(90)),
                None,
            )
            .ok()
            .flatten()
            .unwrap_or_default();
            if kind == "project" {
                scores.push((code, execution + target));
            }
        }
        self.rectifications(&mut rng, &monitored, &evaluated, &projects, &depts);
        self.decisions(&mut rng, &evaluated, &monitored, &scores, &projects);
    }

    fn draw_targets(
        &mut self,
        rng: &mut ChaCha8Rng,
        kind: &str,
        code: &str,
        menu: &[(&'static str, &'static str, &'static str, &[i64])],
    ) -> Targets {
        let count = rng.random_range(3..=menu.len().min(5));
        let mut chosen: Vec<usize> = (0..menu.len()).collect();
        for i in (1..chosen.len()).rev() {
            chosen.swap(i, rng.random_range(0..=i));
        }
        chosen.truncate(count);
        chosen.sort_unstable();
        // One set in ten still adds up to 100 (the older 100-point sets): scaled to 90.
        let total = if rng.random_bool(0.1) { 100 } else { 90 };
        let weights: Vec<f64> = chosen.iter().map(|_| rng.random_range(1.0..3.0)).collect();
        let fives = split_exact(total / 5 - chosen.len() as i128, &weights, None);
        let mut targets = Targets::new();
        for (&i, five) in chosen.iter().zip(fives) {
            let (indicator, unit, comparator, values) = menu[i];
            let value = (!values.is_empty())
                .then(|| i128::from(values[rng.random_range(0..values.len())]) * 10_000);
            let max = (five + 1) * 5 * 100;
            self.add(
                "perf_targets",
                vec![
                    Value::Int(SEED_YEAR),
                    text(kind),
                    text(code),
                    text(indicator),
                    if unit.is_empty() {
                        Value::Null
                    } else {
                        text(unit)
                    },
                    text(comparator),
                    value.map(Value::Dec).unwrap_or(Value::Null),
                    Value::Dec(max),
                ],
            );
            targets.push((indicator, unit, comparator, value, max));
        }
        targets
    }

    /// Monthly cumulative execution; returns (June, December) in hundredths. Most
    /// objects spend close to time progress, some start slow, a few lag badly; the
    /// finance-monitored projects lag more often, which is why they are monitored.
    fn execution(
        &mut self,
        rng: &mut ChaCha8Rng,
        kind: &str,
        code: &str,
        budget: i128,
        monitored: bool,
    ) -> (i128, i128) {
        let lag = match rng.random_range(0..100) + if monitored { 25 } else { 0 } {
            0..=69 => rng.random_range(0.85..1.15),
            70..=89 => rng.random_range(1.25..1.5),
            _ => rng.random_range(1.6..2.2),
        };
        let year_end = rng.random_range(0.82f64..1.0);
        let mut by_month = (0, 0);
        for month in 1..=12 {
            let share = (f64::from(month) / 12.0).powf(lag) * year_end;
            let executed = (budget as f64 * share).floor() as i128;
            self.add(
                "budget_execution",
                vec![
                    Value::Int(SEED_YEAR),
                    text(kind),
                    text(code),
                    Value::Int(month),
                    Value::Dec(budget),
                    Value::Dec(executed),
                ],
            );
            match month {
                6 => by_month.0 = executed,
                12 => by_month.1 = executed,
                _ => {}
            }
        }
        by_month
    }

    /// June progress of a finance-monitored object's targets, with how likely each is
    /// to be met; a lagging project more often has a target judged unlikely.
    fn progress(
        &mut self,
        rng: &mut ChaCha8Rng,
        kind: &str,
        code: &str,
        targets: &Targets,
        lagging: bool,
    ) {
        for (indicator, _, comparator, value, _) in targets {
            let likelihood = match rng.random_range(0..100) + if lagging { 12 } else { 0 } {
                0..=59 => "certain",
                60..=96 => "likely",
                _ => "unlikely",
            };
            let (actual, achievement) = match value {
                Some(v) if *comparator == ">=" => (Some(v * rng.random_range(35..60) / 100), None),
                Some(v) => (Some(*v), None),
                None => (None, Some("partial")),
            };
            let result = [actual.map(Value::Dec), achievement.map(text), None];
            self.result(kind, code, indicator, 6, result, Some(likelihood));
        }
    }

    /// One row of target_results: [actual_value, achievement, awarded_score].
    fn result(
        &mut self,
        kind: &str,
        code: &str,
        indicator: &str,
        month: i32,
        result: [Option<Value>; 3],
        likelihood: Option<&str>,
    ) {
        let mut row = vec![
            Value::Int(SEED_YEAR),
            text(kind),
            text(code),
            text(indicator),
            Value::Int(month),
        ];
        row.extend(result.into_iter().map(|v| v.unwrap_or(Value::Null)));
        row.push(likelihood.map(text).unwrap_or(Value::Null));
        self.add("target_results", row);
    }

    /// Year-end results; returns the target points earned.
    fn year_end(
        &mut self,
        rng: &mut ChaCha8Rng,
        kind: &str,
        code: &str,
        targets: &Targets,
    ) -> Decimal {
        let mut earned = Decimal::ZERO;
        for (indicator, unit, comparator, value, max) in targets {
            // Mostly met, some not, a few far over (a target set too low).
            let rate: f64 = match rng.random_range(0..100) {
                0..=69 => rng.random_range(1.0..1.12),
                70..=89 => rng.random_range(0.6..0.98),
                _ => rng.random_range(1.35..2.0),
            };
            // A percentage never passes 100%.
            let most = if *unit == "%" { 1_000_000.0 } else { f64::MAX };
            let (actual, achievement, awarded) = match (value, *comparator) {
                (Some(v), ">=") => (
                    Some(round_hundredths((*v as f64 * rate).min(most))),
                    None,
                    None,
                ),
                (Some(v), "<=") => (Some(round_hundredths(*v as f64 / rate)), None, None),
                (Some(v), _) if rate < 1.0 => {
                    (Some(round_hundredths(*v as f64 * rate)), None, None)
                }
                (Some(v), _) => (Some(*v), None, None),
                (None, _) => {
                    let (achievement, share) = match rng.random_range(0..100) {
                        0..=79 => ("achieved", 100),
                        80..=94 => ("partial", 60),
                        _ => ("not_achieved", 20),
                    };
                    (None, Some(achievement), Some(max * share / 100 / 50 * 50))
                }
            };
            let dec = |units: Option<i128>, dp| units.map(|u| Decimal::from_i128_with_scale(u, dp));
            earned += points(
                dec(actual, 4),
                dec(*value, 4),
                comparator,
                dec(Some(*max), 2),
                dec(awarded, 2),
            )
            .ok()
            .flatten()
            .unwrap_or_default();
            let result = [
                actual.map(Value::Dec),
                achievement.map(text),
                awarded.map(Value::Dec),
            ];
            self.result(kind, code, indicator, 12, result, None);
        }
        earned
    }

    /// The monitoring (34) and evaluation (73) suggestions as rectification items, a
    /// few from ex-ante reviews and department evaluations; some closed late, some open.
    fn rectifications(
        &mut self,
        rng: &mut ChaCha8Rng,
        monitored: &[(String, Option<i128>, i32)],
        evaluated: &[(String, Option<i128>, i32)],
        projects: &[Project],
        depts: &[(String, i128)],
    ) {
        let day = |y: i32, m: u32, d: u32| {
            let date = chrono::NaiveDate::from_ymd_opt(y, m, d).expect("a calendar day");
            (date - chrono::NaiveDate::default()).num_days() as i32
        };
        // (kind, code, source, issues, due day, days before it the closing may fall).
        type Item<'a> = (&'a str, String, &'a str, &'a [&'a str], i32, i32);
        let mut items: Vec<Item> = Vec::new();
        for (code, _, n) in monitored {
            for _ in 0..*n {
                items.push((
                    "project",
                    code.clone(),
                    "monitoring",
                    MONITORING_ISSUES,
                    day(SEED_YEAR, 9, 30),
                    92,
                ));
            }
        }
        for (code, _, n) in evaluated {
            for _ in 0..*n {
                items.push((
                    "project",
                    code.clone(),
                    "evaluation",
                    EVALUATION_ISSUES,
                    day(SEED_YEAR + 1, 3, 31),
                    183,
                ));
            }
        }
        for project in projects.iter().filter(|p| p.budget > 0).take(6) {
            items.push((
                "project",
                project.code.clone(),
                "exante",
                OTHER_ISSUES,
                day(SEED_YEAR, 6, 30),
                150,
            ));
        }
        for (code, _) in depts.iter().skip(3).step_by(11) {
            items.push((
                "dept",
                code.clone(),
                "dept_evaluation",
                OTHER_ISSUES,
                day(SEED_YEAR + 1, 6, 30),
                200,
            ));
        }
        let mut seq = std::collections::HashMap::new();
        for (kind, code, source, issues, due, span) in items {
            let n = seq.entry((code.clone(), source)).or_insert(0);
            *n += 1;
            let closed = match rng.random_range(0..100) {
                0..=71 => Some(due - rng.random_range(0..span)),
                72..=87 => Some(due + rng.random_range(1..90)),
                _ => None,
            };
            self.add(
                "rectifications",
                vec![
                    Value::Int(SEED_YEAR),
                    text(kind),
                    text(&code),
                    text(source),
                    Value::Int(*n),
                    text(issues[rng.random_range(0..issues.len())]),
                    Value::Date(due),
                    closed.map(Value::Date).unwrap_or(Value::Null),
                ],
            );
        }
    }

    /// Next year's budget decisions for the finance-evaluated and -monitored projects
    /// and some self-evaluated ones: most follow the grade → action policy, a few not.
    fn decisions(
        &mut self,
        rng: &mut ChaCha8Rng,
        evaluated: &[(String, Option<i128>, i32)],
        monitored: &[(String, Option<i128>, i32)],
        scores: &[(String, Decimal)],
        projects: &[Project],
    ) {
        let budget_of = |code: &str| {
            projects
                .iter()
                .find(|p| p.code == code)
                .map_or(0, |p| p.budget)
        };
        let mut graded: Vec<(String, usize)> = evaluated
            .iter()
            .filter_map(|(c, score, _)| {
                Some((c.clone(), band(Decimal::from_i128_with_scale((*score)?, 2))))
            })
            .collect();
        let own = |c: &str| scores.iter().find(|(s, _)| s == c).map(|(_, v)| band(*v));
        graded.extend(
            monitored
                .iter()
                .filter_map(|(c, ..)| Some((c.clone(), own(c)?))),
        );
        let others: Vec<(String, usize)> = scores
            .iter()
            .filter(|(c, _)| !graded.iter().any(|(g, _)| g == c))
            .step_by(9)
            .map(|(c, v)| (c.clone(), band(*v)))
            .collect();
        graded.extend(others);
        for (i, (code, band)) in graded.into_iter().enumerate() {
            let requested =
                (budget_of(&code) as f64 * rng.random_range(0.95..1.25)).round() as i128;
            // Every seventh decision departs from the policy.
            let follows = i % 7 != 3;
            let action = match (band, follows) {
                (0, true) => "prioritise",
                (1, true) if rng.random_bool(0.5) => "maintain",
                (1, true) | (2, true) => "cut",
                (_, true) => "cancel",
                (0, false) => "cut",
                (1, false) => "prioritise",
                (_, false) => "maintain",
            };
            let approved = match action {
                "prioritise" | "maintain" => requested,
                "cut" => (requested as f64 * rng.random_range(0.6..0.92)).round() as i128,
                _ => 0,
            };
            self.add(
                "budget_decisions",
                vec![
                    Value::Int(SEED_YEAR + 1),
                    text("project"),
                    text(&code),
                    Value::Int(SEED_YEAR),
                    Value::Dec(requested),
                    Value::Dec(approved),
                    text(action),
                ],
            );
        }
    }
}

/// The grade band of a score: 0 best … 3 worst, as perf_grade bands it.
fn band(score: Decimal) -> usize {
    let mut hundredths = score;
    hundredths.rescale(2);
    let label = GradeScheme::Mof.grade(hundredths.mantissa(), 2);
    GradeScheme::Mof
        .labels()
        .iter()
        .position(|l| *l == label)
        .unwrap_or(3)
}

/// A value in ten-thousandths rounded to hundredths (the sample's values have two
/// decimals).
fn round_hundredths(units: f64) -> i128 {
    ((units / 100.0).round() as i128) * 100
}
