//! The deterministic sample city. It reproduces every figure of the seed report
//! (seed-facts.md F1–F15) by construction: exact totals are split over rows with
//! [`split_exact`], so any seed gives the same published figures with different
//! individual rows. Scale options grow departments and indicators for benchmarks.

mod names;
mod scores;
pub mod shipped;
mod targets;

use std::collections::BTreeMap;
use std::path::Path;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::ingest::check_rows;
use crate::ingest::validate::{Problems, Rows, Value};
use crate::model::{self, TableDef};
use crate::storage::{Location, StoreSettings, Warehouse, WriteMode};
use crate::Result;
use datafusion::arrow::record_batch::RecordBatch;

/// (code, level1, level2, level3, max points, direction): the whole-department tree.
pub const DEPT_TREE: &[(&str, &str, &str, &str, i128, &str)] = &[
    ("D1101", "决策", "目标设定", "绩效目标合理性", 5, "higher"),
    ("D1102", "决策", "目标设定", "绩效指标明确性", 5, "higher"),
    ("D1201", "决策", "决策过程", "预算编制科学性", 5, "higher"),
    ("D1202", "决策", "决策过程", "资金分配合理性", 5, "higher"),
    ("D2101", "过程", "资金管理", "预算执行率", 8, "higher"),
    ("D2102", "过程", "资金管理", "结转结余控制", 5, "lower"),
    ("D2103", "过程", "资金管理", "资金使用合规性", 5, "higher"),
    ("D2201", "过程", "组织实施", "管理制度健全性", 6, "higher"),
    ("D2202", "过程", "组织实施", "资产管理规范性", 6, "higher"),
    ("D3101", "产出", "产出数量", "重点工作完成率", 9, "higher"),
    ("D3201", "产出", "产出质量", "质量达标率", 8, "higher"),
    ("D3301", "产出", "产出时效", "完成及时率", 8, "higher"),
    ("D4101", "效益", "社会效益", "履职效益", 10, "higher"),
    ("D4201", "效益", "可持续影响", "长效机制建设", 5, "higher"),
    ("D4301", "效益", "满意度", "服务对象满意度", 10, "higher"),
];

/// The project evaluation tree.
pub const PROJECT_TREE: &[(&str, &str, &str, &str, i128, &str)] = &[
    ("P1101", "决策", "项目立项", "立项依据充分性", 5, "higher"),
    ("P1102", "决策", "项目立项", "立项程序规范性", 5, "higher"),
    ("P1201", "决策", "绩效目标", "绩效目标合理性", 5, "higher"),
    ("P1202", "决策", "绩效目标", "绩效指标明确性", 5, "higher"),
    ("P2101", "过程", "资金管理", "资金到位率", 5, "higher"),
    ("P2102", "过程", "资金管理", "预算执行率", 5, "higher"),
    ("P2201", "过程", "组织实施", "管理制度健全性", 5, "higher"),
    ("P2202", "过程", "组织实施", "制度执行有效性", 5, "higher"),
    ("P3101", "产出", "产出数量", "实际完成率", 10, "higher"),
    ("P3201", "产出", "产出质量", "质量达标率", 10, "higher"),
    ("P3301", "产出", "产出时效", "完成及时性", 10, "higher"),
    ("P4101", "效益", "经济效益", "经济效益指标", 10, "higher"),
    ("P4201", "效益", "社会效益", "社会效益指标", 10, "higher"),
    ("P4301", "效益", "满意度", "服务对象满意度", 10, "higher"),
];

/// The year the seed report describes; its figures are fixed whatever the options.
pub const SEED_YEAR: i32 = 2023;

#[derive(Debug, Clone)]
pub struct SampleOptions {
    pub seed: u64,
    /// First-level departments (the city has 62; more for scale data).
    pub departments: usize,
    /// First year of whole-department evaluation (the report: five years, 2019–2023).
    pub first_year: i32,
    /// Each level-3 indicator of the department tree repeated this many times
    /// (its points split among the copies), for scale data.
    pub indicator_fanout: usize,
}

impl Default for SampleOptions {
    fn default() -> Self {
        SampleOptions {
            seed: 2023,
            departments: names::DEPARTMENTS.len(),
            first_year: 2019,
            indicator_fanout: 1,
        }
    }
}

impl SampleOptions {
    /// The options of a named scale: `city` (the sample), `1m` / `province`, `10m`, `50m`,
    /// `100m` / `national`, for dept_scores of about that many rows; the other tables
    /// grow with the departments. A size may name a shape, as in `10m-wide`: the same
    /// rows made of many departments and few indicators (`wide`), few departments and
    /// many indicators (`deep`), or twenty years (`long`).
    pub fn scale(name: &str) -> Option<Self> {
        let city = SampleOptions::default();
        let (size, shape) = match name.split_once('-') {
            Some((size, shape)) => (size, Some(shape)),
            None => (name, None),
        };
        let (departments, first_year, indicator_fanout) = match size {
            "city" if shape.is_none() => (city.departments, city.first_year, 1),
            // 3,334 departments × 60 indicators × 5 years.
            "1m" | "province" => (3_334, 2019, 4),
            // 6,667 departments × 150 indicators × 10 years.
            "10m" => (6_667, 2014, 10),
            // 33,334 departments × 150 indicators × 10 years.
            "50m" => (33_334, 2014, 10),
            // 66,667 departments × 150 indicators × 10 years.
            "100m" | "national" => (66_667, 2014, 10),
            _ => return None,
        };
        let standard = SampleOptions {
            departments,
            first_year,
            indicator_fanout,
            ..city
        };
        let Some(shape) = shape else {
            return Some(standard);
        };
        // The standard tree has 15 level-3 indicators; each shape keeps the rows.
        let (indicator_fanout, years) = match shape {
            // 30 indicators, 10 years: at 10m, 33,334 departments.
            "wide" => (2, 10),
            // 600 indicators, 10 years: at 10m, 1,667 departments.
            "deep" => (40, 10),
            // 150 indicators, 20 years: at 10m, 3,334 departments.
            "long" => (10, 20),
            _ => return None,
        };
        let rows = standard.departments * 15 * standard.indicator_fanout * standard.years();
        let departments = rows.div_ceil(15 * indicator_fanout * years);
        if departments > MAX_DEPARTMENTS {
            return None;
        }
        Some(SampleOptions {
            departments,
            first_year: SEED_YEAR - years as i32 + 1,
            indicator_fanout,
            ..standard
        })
    }

    /// Years of whole-department evaluation, `first_year` to the last.
    pub fn years(&self) -> usize {
        (SEED_YEAR - self.first_year + 1).max(0) as usize
    }

    pub const SCALES: &'static str = "city, 1m (province), 10m, 50m, 100m (national), \
                                      each but city also as SIZE-wide, SIZE-deep, SIZE-long \
                                      (50m-wide and 100m-wide need more departments than codes)";
}

/// Up to this many departments × indicator copies, dept_scores are generated up
/// front, between the departments and the projects; beyond it, a year at a time
/// while writing.
const EAGER_SCORES: usize = 1_000;

/// First-level departments are coded from 101; past this many a code would have six
/// digits and equal a unit's (a department's code and three digits).
pub const MAX_DEPARTMENTS: usize = 100_899;

/// Every table's rows, but dept_scores, which [`Sample::dept_scores`] streams by year.
pub struct Sample {
    pub tables: Vec<(&'static TableDef, Rows)>,
    pub dept_scores: scores::DeptScores,
}

/// Budget units per year (first-level departments included); 417 in the seed year.
const UNITS_BY_YEAR: &[(i32, usize)] = &[
    (2019, 392),
    (2020, 398),
    (2021, 405),
    (2022, 411),
    (2023, 417),
];
/// Σ unit budgets in 万元 per year; 71.29 亿元 in the seed year.
const UNIT_BUDGET_TOTAL: &[(i32, i128)] = &[
    (2019, 59_820_000),
    (2020, 63_145_000),
    (2021, 65_580_000),
    (2022, 68_830_000),
    (2023, 71_290_000),
];

struct Gen {
    rng: ChaCha8Rng,
    opts: SampleOptions,
    tables: BTreeMap<&'static str, Rows>,
}

pub fn generate(opts: &SampleOptions) -> Result<Sample> {
    if opts.departments > MAX_DEPARTMENTS {
        return Err(crate::Error::usage(format!(
            "{} first-level departments are more than the generator can code: at most \
             {MAX_DEPARTMENTS}, beyond which a department's code (101, 102, …) would be \
             the code of another's unit (its code and three digits)",
            opts.departments
        )));
    }
    let mut g = Gen {
        rng: ChaCha8Rng::seed_from_u64(opts.seed),
        opts: opts.clone(),
        tables: BTreeMap::new(),
    };
    let first_level = g.departments();
    g.indicators();
    let mut dept_scores = scores::DeptScores::new(opts, &first_level, g.rng.clone());
    if opts.departments * opts.indicator_fanout <= EAGER_SCORES {
        // The city: scores drawn before the projects, as the shipped sample was.
        dept_scores.generate_all()?;
        g.rng = dept_scores.rng.clone();
    }
    let projects_by_dept = first_level.iter().map(|d| d.0.clone()).collect::<Vec<_>>();
    g.projects_and_evaluations(&projects_by_dept);
    g.targets_and_results();
    let mut tables = g.tables;
    Ok(Sample {
        tables: model::TABLES
            .iter()
            .filter(|def| def.name != "dept_scores")
            .map(|def| (*def, tables.remove(def.name).unwrap_or_default()))
            .collect(),
        dept_scores,
    })
}

fn text(s: impl Into<String>) -> Value {
    Value::Text(s.into())
}

impl Gen {
    fn rows(&mut self, table: &'static str) -> &mut Rows {
        self.tables.entry(table).or_default()
    }

    fn add(&mut self, table: &'static str, row: Vec<Value>) {
        let rows = self.rows(table);
        let line = rows.len() + 2;
        rows.push(line, row);
    }

    fn last_year(&self) -> i32 {
        SEED_YEAR
    }

    /// First-level departments (code, name, first year evaluated) and their units,
    /// with unit budgets per year.
    fn departments(&mut self) -> Vec<(String, String, i32)> {
        let n = self.opts.departments.max(3);
        let mut first_level = Vec::with_capacity(n);
        for i in 0..n {
            let code = format!("{}", 101 + i);
            let (name, sector) = names::DEPARTMENTS
                .get(i)
                .map(|(n, s)| (n.to_string(), s.to_string()))
                .unwrap_or_else(|| (format!("市第{}部门", i + 1), "综合".to_string()));
            // The last department was formed in the seed year: it has one year of scores.
            let since = if i == n - 1 {
                SEED_YEAR
            } else {
                self.opts.first_year
            };
            self.add(
                "departments",
                vec![text(&code), text(&name), Value::Null, text(&sector)],
            );
            first_level.push((code, name, since));
        }
        // Budget units below the first level, each with the year it first had a budget.
        let seed_units = UNITS_BY_YEAR
            .iter()
            .find(|(y, _)| *y == SEED_YEAR)
            .map(|u| u.1)
            .unwrap_or(417);
        let sub_units = seed_units.saturating_sub(n).max(n);
        let mut units: Vec<(String, usize, i32)> = Vec::with_capacity(sub_units);
        let mut per_dept = vec![0usize; n];
        for u in 0..sub_units {
            // Every department gets one unit first, the rest go to random departments
            // other than the newest, which starts small.
            let d = if u < n {
                u
            } else {
                self.rng.random_range(0..n - 1)
            };
            per_dept[d] += 1;
            let (code, name, since) = &first_level[d];
            let suffix = names::UNIT_SUFFIXES[(per_dept[d] - 1) % names::UNIT_SUFFIXES.len()];
            let unit_code = format!("{code}{:03}", per_dept[d]);
            let unit_name = if per_dept[d] > names::UNIT_SUFFIXES.len() {
                format!(
                    "{name}{suffix}{}",
                    per_dept[d] / names::UNIT_SUFFIXES.len() + 1
                )
            } else {
                format!("{name}{suffix}")
            };
            self.add(
                "departments",
                vec![text(&unit_code), text(unit_name), text(code), Value::Null],
            );
            units.push((unit_code, d, *since));
        }
        // Units join over the years so the count per year matches UNITS_BY_YEAR.
        let mut order: Vec<usize> = (0..units.len())
            .filter(|&u| units[u].2 < SEED_YEAR)
            .collect();
        shuffle(&mut self.rng, &mut order);
        for (year, target) in UNITS_BY_YEAR.iter().rev().filter(|(y, _)| *y < SEED_YEAR) {
            let present = first_level.iter().filter(|d| d.2 <= *year).count()
                + units.iter().filter(|u| u.2 <= *year).count();
            let mut excess = present.saturating_sub(*target);
            for &u in &order {
                if excess == 0 {
                    break;
                }
                if units[u].2 <= *year {
                    units[u].2 = year + 1;
                    excess -= 1;
                }
            }
        }
        for year in self.opts.first_year..=self.last_year() {
            let mut codes: Vec<String> = first_level
                .iter()
                .filter(|d| d.2 <= year)
                .map(|d| d.0.clone())
                .collect();
            codes.extend(units.iter().filter(|u| u.2 <= year).map(|u| u.0.clone()));
            let weights: Vec<f64> = codes
                .iter()
                .map(|c| if c.len() == 3 { 6.0 } else { 0.3 } * self.rng.random_range(0.4..2.5))
                .collect();
            let total = UNIT_BUDGET_TOTAL
                .iter()
                .find(|(y, _)| *y == year)
                .map(|t| t.1)
                .unwrap_or(40_000_000 + 1_500_000 * (year - 2000).max(0) as i128);
            let amounts = split_exact(total, &weights, None);
            let coverage = 1.0 - (SEED_YEAR - year).clamp(0, 5) as f64 * 0.025;
            for (code, amount) in codes.into_iter().zip(amounts) {
                let has_targets = year >= SEED_YEAR || self.rng.random_bool(coverage);
                let reviewed = has_targets && (year >= SEED_YEAR || self.rng.random_bool(coverage));
                self.add(
                    "unit_budgets",
                    vec![
                        Value::Int(year),
                        text(code),
                        Value::Dec(amount),
                        Value::Bool(has_targets),
                        Value::Bool(reviewed),
                    ],
                );
            }
        }
        first_level
    }

    fn indicators(&mut self) {
        for (code, l1, l2, l3, _, direction) in dept_tree(self.opts.indicator_fanout) {
            self.add(
                "indicators",
                vec![
                    text(code),
                    text("dept"),
                    text(l1),
                    text(l2),
                    text(l3),
                    text(direction),
                ],
            );
        }
        for (code, l1, l2, l3, _, direction) in PROJECT_TREE {
            self.add(
                "indicators",
                vec![
                    text(*code),
                    text("project"),
                    text(*l1),
                    text(*l2),
                    text(*l3),
                    text(*direction),
                ],
            );
        }
    }

    fn project(
        &mut self,
        year: i32,
        seq: usize,
        name: String,
        dept: &str,
        kind: &str,
        amount: i128,
    ) -> String {
        let code = format!("P{year}{seq:04}");
        let book = match self.rng.random_range(0..100) {
            0..=79 => "general",
            80..=91 => "gov_fund",
            92..=95 => "soe_capital",
            _ => "social_insurance",
        };
        let disclosed = self
            .rng
            .random_bool(if year >= SEED_YEAR { 0.96 } else { 0.9 });
        let has_targets = year >= SEED_YEAR || self.rng.random_bool(0.95);
        self.add(
            "projects",
            vec![
                Value::Int(year),
                text(&code),
                text(name),
                text(dept),
                text(book),
                text(kind),
                Value::Dec(amount),
                Value::Bool(has_targets),
                Value::Bool(disclosed),
            ],
        );
        code
    }

    fn evaluation(
        &mut self,
        year: i32,
        code: &str,
        kind: &str,
        score: Option<i128>,
        suggestions: i32,
    ) {
        self.add(
            "evaluations",
            vec![
                Value::Int(year),
                text(code),
                text(kind),
                score.map(Value::Dec).unwrap_or(Value::Null),
                Value::Int(suggestions),
            ],
        );
    }

    /// A finance key evaluation with indicator scores adding up to its total.
    fn finance_evaluation(&mut self, year: i32, code: &str, total: i128, suggestions: i32) {
        self.evaluation(year, code, "finance_evaluation", Some(total), suggestions);
        let caps: Vec<i128> = PROJECT_TREE.iter().map(|t| t.4 * 100).collect();
        let weights: Vec<f64> = caps
            .iter()
            .map(|c| *c as f64 * self.rng.random_range(0.7..1.0))
            .collect();
        let scores = split_exact(total, &weights, Some(&caps));
        for (t, score) in PROJECT_TREE.iter().zip(scores) {
            self.add(
                "project_scores",
                vec![
                    Value::Int(year),
                    text(code),
                    text(t.0),
                    Value::Dec(score),
                    Value::Dec(t.4 * 100),
                ],
            );
        }
    }

    fn random_dept<'a>(&mut self, depts: &'a [String]) -> &'a str {
        // The newest department has no projects before it was formed.
        &depts[self.rng.random_range(0..depts.len() - 1)]
    }

    fn projects_and_evaluations(&mut self, depts: &[String]) {
        for year in self.opts.first_year..=self.last_year() + 1 {
            let mut seq = 0;
            let mut next = || {
                seq += 1;
                seq
            };
            if year <= self.last_year() {
                // Ordinary projects: self-evaluated; monitored by the department over 200万元.
                // Scale data has proportionally more.
                let per_city = (self.opts.departments / names::DEPARTMENTS.len()).max(1);
                let count = (240 + 12 * (year - self.opts.first_year).max(0) as usize) * per_city;
                for _ in 0..count {
                    let dept = self.random_dept(depts).to_string();
                    let subject = names::PROJECT_SUBJECTS
                        [self.rng.random_range(0..names::PROJECT_SUBJECTS.len())];
                    let name = format!("{}{}", dept_name_of(self, &dept), subject);
                    let kind = if self.rng.random_bool(0.12) {
                        "policy"
                    } else {
                        "project"
                    };
                    let amount = (self.rng.random_range(3.0f64..8.2).exp() * 100.0).round() as i128;
                    let code = self.project(year, next(), name, &dept, kind, amount);
                    let self_rate = if year >= SEED_YEAR { 1.0 } else { 0.95 };
                    if self.rng.random_bool(self_rate) {
                        let score = self.rng.random_range(150..197) as i128 * 50;
                        let n = self.rng.random_range(0..3);
                        self.evaluation(year, &code, "self", Some(score), n);
                    }
                    let monitor_rate = if year >= SEED_YEAR { 1.0 } else { 0.9 };
                    if amount > 20_000 && self.rng.random_bool(monitor_rate) {
                        let n = self.rng.random_range(0..3);
                        self.evaluation(year, &code, "monitoring", None, n);
                    }
                }
                self.finance_year(year, depts, &mut next);
            }
            self.exante_year(year, depts, &mut next);
        }
    }

    /// Finance mid-year monitoring and finance key evaluations of one year.
    fn finance_year(&mut self, year: i32, depts: &[String], next: &mut dyn FnMut() -> usize) {
        let seed = year == SEED_YEAR;
        // Mid-year monitoring: 9 projects, 25.33 亿元, 34 suggestions in the seed year.
        let (count, total, suggestions) = if seed {
            (9, 25_330_000i128, 34)
        } else {
            (6, 14_000_000 + 900_000 * (year % 7) as i128, 20)
        };
        let amounts = self.weights_split(total, count, 0.5..1.5, None);
        let advice = self.int_split(suggestions, count, 2);
        for k in 0..count {
            let dept = self.random_dept(depts).to_string();
            let name = names::MONITORED_2023[k % names::MONITORED_2023.len()].to_string();
            let kind = if k % 3 == 0 { "policy" } else { "project" };
            let code = self.project(year, next(), name, &dept, kind, amounts[k]);
            let score = self.rng.random_range(170..196) as i128 * 50;
            self.evaluation(year, &code, "self", Some(score), 1);
            self.evaluation(year, &code, "finance_monitoring", None, advice[k]);
        }
        // Key evaluations: 9 policies + 7 projects, about 169 亿元, 73 suggestions;
        // graded 2 优秀, 13 良好, 1 一般 (boundary scores 90.00 and 80.00 included).
        let (policies, projects, total, suggestions) = if seed {
            (9, 7, 169_000_000i128, 73)
        } else if year == SEED_YEAR - 1 {
            (4, 6, 18_800_000, 41)
        } else {
            (3, 5, 12_000_000 + 1_000_000 * (year % 5) as i128, 30)
        };
        let count = policies + projects;
        let scores: Vec<i128> = if seed {
            let mut s = vec![
                9000,
                self.rng.random_range(181..192) as i128 * 50,
                8000,
                8999,
            ];
            s.extend((0..11).map(|_| self.rng.random_range(8050..8950) as i128));
            s.push(self.rng.random_range(6600..7900) as i128);
            s
        } else {
            (0..count)
                .map(|_| self.rng.random_range(7000..9600) as i128)
                .collect()
        };
        let amounts = self.weights_split(total, count, 0.3..2.0, None);
        let advice = self.int_split(suggestions, count, 2);
        for k in 0..count {
            let dept = self.random_dept(depts).to_string();
            let (kind, name) = if k < policies {
                (
                    "policy",
                    names::EVALUATED_POLICIES[k % names::EVALUATED_POLICIES.len()],
                )
            } else {
                (
                    "project",
                    names::EVALUATED_PROJECTS[(k - policies) % names::EVALUATED_PROJECTS.len()],
                )
            };
            let code = self.project(year, next(), name.to_string(), &dept, kind, amounts[k]);
            let score = self.rng.random_range(170..197) as i128 * 50;
            self.evaluation(year, &code, "self", Some(score), 2);
            self.finance_evaluation(year, &code, scores[k], advice[k]);
        }
    }

    /// Ex-ante reviews of the projects requested for `year`'s budget.
    /// Seed year: 59 reviewed, 24,053.22 requested, 14,892.89 approved, 4 rejected,
    /// 1 returned. The following year: 47 reviewed at an average cut rate of 37.44%.
    fn exante_year(&mut self, year: i32, depts: &[String], next: &mut dyn FnMut() -> usize) {
        let (reviewed, requested_total, approved_total, rejects, returned) = if year == SEED_YEAR {
            (59, 2_405_322i128, 1_489_289i128, 4, 1)
        } else if year == SEED_YEAR + 1 {
            let requested = 1_987_640i128;
            let cut = (requested * 3744 + 5000) / 10000;
            (47, requested, requested - cut, 3, 2)
        } else {
            return;
        };
        let requested = self.weights_split(requested_total, reviewed, 0.3..2.2, None);
        // Rejected first, then fully supported, then partly supported.
        let supported = 12;
        let support_sum: i128 = requested[rejects..rejects + supported].iter().sum();
        let partial = &requested[rejects + supported..];
        let residual = approved_total - support_sum;
        let caps: Vec<i128> = partial.iter().map(|r| r - 1).collect();
        let weights: Vec<f64> = partial
            .iter()
            .map(|r| *r as f64 * self.rng.random_range(0.4..0.9))
            .collect();
        let partial_approved = split_exact(residual, &weights, Some(&caps));
        for k in 0..reviewed {
            let (conclusion, approved) = if k < rejects {
                ("reject", 0)
            } else if k < rejects + supported {
                ("support", requested[k])
            } else {
                ("partial", partial_approved[k - rejects - supported])
            };
            let dept = self.random_dept(depts).to_string();
            let subject =
                names::PROJECT_SUBJECTS[self.rng.random_range(0..names::PROJECT_SUBJECTS.len())];
            let name = format!("{}{}（{}年新增）", dept_name_of(self, &dept), subject, year);
            let code = self.project(year, next(), name, &dept, "project", approved);
            self.add(
                "exante_reviews",
                vec![
                    Value::Int(year),
                    text(code),
                    Value::Dec(requested[k]),
                    Value::Dec(approved),
                    text(conclusion),
                ],
            );
        }
        for _ in 0..returned {
            let dept = self.random_dept(depts).to_string();
            let name = format!(
                "{}前期工作经费（{}年申报）",
                dept_name_of(self, &dept),
                year
            );
            let code = self.project(year, next(), name, &dept, "project", 0);
            let amount = self.rng.random_range(5_000..60_000) as i128;
            self.add(
                "exante_reviews",
                vec![
                    Value::Int(year),
                    text(code),
                    Value::Dec(amount),
                    Value::Null,
                    text("returned"),
                ],
            );
        }
    }

    fn weights_split(
        &mut self,
        total: i128,
        n: usize,
        range: std::ops::Range<f64>,
        caps: Option<&[i128]>,
    ) -> Vec<i128> {
        let weights: Vec<f64> = (0..n)
            .map(|_| self.rng.random_range(range.clone()))
            .collect();
        split_exact(total, &weights, caps)
    }

    /// Splits a count over `n` items, each getting at least `min`.
    fn int_split(&mut self, total: i32, n: usize, min: i32) -> Vec<i32> {
        let spare = (total - min * n as i32).max(0) as i128;
        self.weights_split(spare, n, 0.2..1.8, None)
            .into_iter()
            .map(|x| x as i32 + min)
            .collect()
    }
}

/// The name of a first-level department: its row is the code's offset from 101.
/// The level-3 department indicators: (code, level1, level2, level3, max points in
/// hundredths, direction), each standard item repeated `fanout` times for scale data.
pub(crate) fn dept_tree(fanout: usize) -> Vec<Indicator> {
    let fanout = fanout.max(1);
    let mut tree = Vec::new();
    for (code, l1, l2, l3, points, direction) in DEPT_TREE {
        let shares = split_exact(points * 100, &vec![1.0; fanout], None);
        for (k, share) in shares.into_iter().enumerate() {
            let (code, l3) = if fanout == 1 {
                (code.to_string(), l3.to_string())
            } else {
                (format!("{code}-{k:03}"), format!("{l3}（{}）", k + 1))
            };
            tree.push((code, *l1, *l2, l3, share, *direction));
        }
    }
    tree
}

/// (code, level1, level2, level3, max points in hundredths, direction).
pub(crate) type Indicator = (
    String,
    &'static str,
    &'static str,
    String,
    i128,
    &'static str,
);

fn dept_name_of(g: &Gen, code: &str) -> String {
    let rows = &g.tables["departments"].values;
    code.parse::<usize>()
        .ok()
        .and_then(|n| rows.get(n.checked_sub(101)?))
        .filter(|r| r[0].text() == Some(code))
        .and_then(|r| r[1].text())
        .unwrap_or("")
        .to_string()
}

fn shuffle(rng: &mut ChaCha8Rng, items: &mut [usize]) {
    for i in (1..items.len()).rev() {
        items.swap(i, rng.random_range(0..=i));
    }
}

/// Splits `total` into integer parts proportional to `weights` that add up to exactly
/// `total`, none above its cap. This is how the generator hits the report's totals.
pub fn split_exact(total: i128, weights: &[f64], caps: Option<&[i128]>) -> Vec<i128> {
    let n = weights.len();
    if n == 0 {
        return Vec::new();
    }
    let cap = |i: usize| caps.map(|c| c[i]).unwrap_or(i128::MAX);
    let sum: f64 = weights.iter().sum();
    let mut parts: Vec<i128> = weights
        .iter()
        .enumerate()
        .map(|(i, w)| ((total as f64 * w / sum).floor() as i128).clamp(0, cap(i)))
        .collect();
    let mut rest = total - parts.iter().sum::<i128>();
    while rest != 0 {
        let room: Vec<usize> = (0..n)
            .filter(|&i| {
                if rest > 0 {
                    parts[i] < cap(i)
                } else {
                    parts[i] > 0
                }
            })
            .collect();
        assert!(
            !room.is_empty(),
            "split_exact: the caps cannot hold the total"
        );
        let step = (rest.abs() / room.len() as i128).max(1);
        for i in room {
            if rest == 0 {
                break;
            }
            let change = if rest > 0 {
                step.min(cap(i) - parts[i]).min(rest)
            } else {
                -step.min(parts[i]).min(-rest)
            };
            parts[i] += change;
            rest -= change;
        }
    }
    parts
}

/// dept_scores rows per Delta commit while streaming scale data; the city sample is
/// one commit, so every sample table starts at version 0.
const COMMIT_ROWS: usize = 4 << 20;

/// Writes the sample as a new warehouse at `out` and, when `csv_dir` is given, as one
/// CSV per table; then builds the rollups. The rows of every table but dept_scores
/// (correct by construction, and streamed) are checked by the same rules as ingest first.
pub async fn write(
    out: &Path,
    opts: &SampleOptions,
    csv_dir: Option<&Path>,
) -> Result<Vec<(String, usize)>> {
    let out = Location::parse(&out.to_string_lossy(), &StoreSettings::default())?;
    write_to(out, opts, csv_dir).await
}

/// Writes the sample as a new warehouse at `out` (a directory or a bucket prefix), as
/// [`write`] does.
pub async fn write_to(
    out: Location,
    opts: &SampleOptions,
    csv_dir: Option<&Path>,
) -> Result<Vec<(String, usize)>> {
    let mut sample = generate(opts)?;
    for (def, rows) in &sample.tables {
        let mut problems = Problems::new(&format!("sample {}", def.name), def);
        check_rows(def, rows, &mut problems)?;
        problems.into_result()?;
    }
    let warehouse = Warehouse::create(out).await?;
    if let Some(dir) = csv_dir {
        std::fs::create_dir_all(dir).map_err(|e| crate::Error::io(dir, e))?;
    }
    let mut counts = Vec::new();
    for def in model::TABLES {
        let mut csv = match csv_dir {
            Some(dir) => {
                let path = dir.join(format!("{}.csv", def.name));
                let file = std::fs::File::create(&path).map_err(|e| crate::Error::io(&path, e))?;
                Some(
                    datafusion::arrow::csv::WriterBuilder::new()
                        .with_header(true)
                        .build(std::io::BufWriter::new(file)),
                )
            }
            None => None,
        };
        let mut created = false;
        let mut rows = 0;
        let mut pending: Vec<RecordBatch> = Vec::new();
        let mut years = Vec::new();
        let chunks: Box<dyn Iterator<Item = Result<(i32, Vec<RecordBatch>)>>> =
            if def.name == "dept_scores" {
                let scores = &mut sample.dept_scores;
                Box::new(scores.years().map(move |y| Ok((y, scores.year(y)?))))
            } else {
                let table = sample.tables.iter().find(|(d, _)| d.name == def.name);
                let batches = match table {
                    Some((_, rows)) => rows.to_batches(def, 256 * 1024)?,
                    None => vec![RecordBatch::new_empty(def.schema())],
                };
                Box::new(std::iter::once(Ok((0, batches))))
            };
        for chunk in chunks {
            let (year, batches) = chunk?;
            for batch in &batches {
                if let Some(writer) = csv.as_mut() {
                    writer.write(batch)?;
                }
            }
            rows += batches.iter().map(|b| b.num_rows()).sum::<usize>();
            pending.extend(batches);
            years.push(year);
            if pending.iter().map(|b| b.num_rows()).sum::<usize>() >= COMMIT_ROWS {
                commit(
                    &warehouse,
                    def,
                    std::mem::take(&mut pending),
                    &years,
                    &mut created,
                )
                .await?;
                years.clear();
            }
        }
        if !pending.is_empty() || !created {
            commit(&warehouse, def, pending, &years, &mut created).await?;
        }
        counts.push((def.name.to_string(), rows));
    }
    crate::rollup::rebuild_all(&warehouse).await?;
    Ok(counts)
}

/// Creates `def`'s table with `batches`, or appends them once it exists.
async fn commit(
    warehouse: &Warehouse,
    def: &TableDef,
    batches: Vec<RecordBatch>,
    years: &[i32],
    created: &mut bool,
) -> Result<()> {
    if *created {
        warehouse
            .commit(def, batches, WriteMode::Append, years, "gen-sample")
            .await?;
    } else {
        warehouse.create_table(def, batches, "gen-sample").await?;
        *created = true;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_exact_hits_the_total_within_caps() {
        let parts = split_exact(1_489_289, &[1.0, 2.0, 3.5, 0.2], None);
        assert_eq!(parts.iter().sum::<i128>(), 1_489_289);
        let caps = [500, 500, 1000];
        let parts = split_exact(1999, &[5.0, 5.0, 0.1], Some(&caps));
        assert_eq!(parts.iter().sum::<i128>(), 1999);
        assert!(parts.iter().zip(caps).all(|(p, c)| *p <= c));
    }

    #[test]
    fn a_shape_keeps_the_rows_of_its_size() {
        let slots = |o: &SampleOptions| o.departments * 15 * o.indicator_fanout * o.years();
        for size in ["1m", "10m", "100m"] {
            let standard = SampleOptions::scale(size).unwrap();
            for (shape, indicators, years) in
                [("wide", 30, 10), ("deep", 600, 10), ("long", 150, 20)]
            {
                if size == "100m" && shape == "wide" {
                    // 333,334 departments: more than their codes allow.
                    assert!(SampleOptions::scale("100m-wide").is_none());
                    continue;
                }
                let o = SampleOptions::scale(&format!("{size}-{shape}")).unwrap();
                assert_eq!(
                    (15 * o.indicator_fanout, o.years()),
                    (indicators, years),
                    "{size}-{shape}"
                );
                let (a, b) = (slots(&standard) as f64, slots(&o) as f64);
                assert!(
                    (b / a - 1.0).abs() < 0.01,
                    "{size}-{shape}: {b} slots, {a} standard"
                );
                assert_eq!(dept_tree(o.indicator_fanout).len(), indicators);
            }
        }
        for name in ["city-wide", "10m-tall", "10m-", "-wide"] {
            assert!(SampleOptions::scale(name).is_none(), "{name}");
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_rows() {
        let mut a = generate(&SampleOptions::default()).unwrap();
        let mut b = generate(&SampleOptions::default()).unwrap();
        for ((_, x), (_, y)) in a.tables.iter().zip(&b.tables) {
            assert_eq!(x.values, y.values);
        }
        for year in a.dept_scores.years() {
            assert_eq!(
                a.dept_scores.year(year).unwrap(),
                b.dept_scores.year(year).unwrap()
            );
        }
    }
}
