//! Rules checked against what the warehouse already holds: keys unique across the
//! stored rows, codes that must exist in other tables, project indicator scores that
//! must add up to their evaluation, and rows a replaced year would leave orphaned.

use std::collections::{HashMap, HashSet};

use datafusion::arrow::array::{Array, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;

use super::validate::{Problems, Rows, Value};
use crate::model::TableDef;
use crate::storage::WriteMode;
use crate::{Engine, Result};

const SEP: char = '\u{1f}';

pub async fn check_stored(
    engine: &Engine,
    def: &TableDef,
    rows: &Rows,
    mode: WriteMode,
    problems: &mut Problems,
) -> Result<()> {
    let years = rows.years(def);
    let year_filter = if def.partitioned() {
        format!("WHERE year IN ({})", join(years.iter()))
    } else {
        String::new()
    };
    let col = |name: &str| def.column_index(name);

    if mode == WriteMode::Append {
        let stored: HashSet<String> = text_rows(
            engine,
            &format!(
                "SELECT {} FROM {} {year_filter}",
                def.key.join(", "),
                def.name
            ),
        )
        .await?
        .into_iter()
        .map(|r| r.join(&SEP.to_string()))
        .collect();
        if !stored.is_empty() {
            let key: Vec<usize> = def.key.iter().filter_map(|k| col(k)).collect();
            for (row, &line) in rows.values.iter().zip(&rows.lines) {
                let k = key.iter().map(|&i| row[i].to_string()).collect::<Vec<_>>();
                if stored.contains(&k.join(&SEP.to_string())) {
                    problems.push(
                        line,
                        &def.key.join(", "),
                        k.join(", "),
                        format!(
                            "duplicate key ({}): the warehouse already holds this row (use --mode replace-year to re-load a year)",
                            def.key.join(", ")
                        ),
                    );
                }
            }
        }
    }

    if let Some(i) = col("dept_code").filter(|_| def.name != "departments") {
        let known = column_set(engine, "SELECT dept_code FROM departments").await?;
        for (row, &line) in rows.values.iter().zip(&rows.lines) {
            if let Value::Text(code) = &row[i] {
                if !known.contains(code) {
                    problems.push(
                        line,
                        "dept_code",
                        code,
                        "unknown dept_code: not in departments",
                    );
                }
            }
        }
    }

    if def.name == "departments" {
        let mut known = column_set(engine, "SELECT dept_code FROM departments").await?;
        let code = col("dept_code").expect("departments.dept_code");
        let parent = col("parent_code").expect("departments.parent_code");
        known.extend(
            rows.values
                .iter()
                .filter_map(|r| r[code].text().map(str::to_string)),
        );
        for (row, &line) in rows.values.iter().zip(&rows.lines) {
            if let Value::Text(p) = &row[parent] {
                if !known.contains(p) {
                    problems.push(
                        line,
                        "parent_code",
                        p,
                        "unknown parent_code: not a dept_code in departments or this file",
                    );
                }
            }
        }
    }

    if let Some(i) = col("indicator_code").filter(|_| def.name != "indicators") {
        let framework = if def.name == "dept_scores" {
            "dept"
        } else {
            "project"
        };
        let known: HashMap<String, String> =
            text_rows(engine, "SELECT indicator_code, framework FROM indicators")
                .await?
                .into_iter()
                .map(|mut r| (r.remove(0), r.remove(0)))
                .collect();
        for (row, &line) in rows.values.iter().zip(&rows.lines) {
            if let Value::Text(code) = &row[i] {
                match known.get(code) {
                    None => problems.push(line, "indicator_code", code, "unknown indicator_code: not in indicators"),
                    Some(f) if f != framework => problems.push(
                        line,
                        "indicator_code",
                        code,
                        format!("indicator belongs to the {f} framework; {} takes {framework} indicators", def.name),
                    ),
                    Some(_) => {}
                }
            }
        }
    }

    if matches!(
        def.name,
        "exante_reviews" | "evaluations" | "project_scores"
    ) {
        let known = column_set(
            engine,
            &format!(
                "SELECT concat(CAST(year AS VARCHAR), '{SEP}', project_code) FROM projects WHERE year IN ({})",
                join(years.iter())
            ),
        )
        .await?;
        let (y, p) = (
            col("year").expect("year"),
            col("project_code").expect("project_code"),
        );
        for (row, &line) in rows.values.iter().zip(&rows.lines) {
            if !known.contains(&format!("{}{SEP}{}", row[y], row[p])) {
                problems.push(
                    line,
                    "project_code",
                    &row[p],
                    format!(
                        "unknown project_code: no such project in projects for year {}",
                        row[y]
                    ),
                );
            }
        }
    }

    if matches!(def.name, "project_scores" | "evaluations") {
        check_score_totals(engine, def, rows, mode, &years, problems).await?;
    }

    if def.name == "projects" && mode == WriteMode::ReplaceYear {
        check_orphans(engine, def, rows, &years, problems).await?;
    }
    Ok(())
}

/// Where a project has both indicator scores and a finance_evaluation total_score,
/// the scores must add up to the total.
async fn check_score_totals(
    engine: &Engine,
    def: &TableDef,
    rows: &Rows,
    mode: WriteMode,
    years: &[i32],
    problems: &mut Problems,
) -> Result<()> {
    let years = join(years.iter());
    let (y, p) = (
        def.column_index("year").expect("year"),
        def.column_index("project_code").expect("project_code"),
    );
    let key = |row: &[Value]| format!("{}{SEP}{}", row[y], row[p]);
    if def.name == "project_scores" {
        let mut sums: HashMap<String, (i128, usize)> = HashMap::new();
        let s = def.column_index("score").expect("score");
        for (row, &line) in rows.values.iter().zip(&rows.lines) {
            let entry = sums.entry(key(row)).or_insert((0, line));
            entry.0 += row[s].dec().unwrap_or(0);
        }
        if mode == WriteMode::Append {
            for r in text_rows(engine, &format!(
                "SELECT concat(CAST(year AS VARCHAR), '{SEP}', project_code), CAST(sum(score) * 100 AS BIGINT) \
                 FROM project_scores WHERE year IN ({years}) GROUP BY 1"
            )).await? {
                if let Some(entry) = sums.get_mut(&r[0]) {
                    entry.0 += r[1].parse::<i128>().unwrap_or(0);
                }
            }
        }
        let totals = finance_totals(engine, &years).await?;
        for (k, (sum, line)) in &sums {
            if let Some(total) = totals.get(k) {
                if sum != total {
                    problems.push(
                        *line,
                        "score",
                        Value::Dec(*sum),
                        format!(
                            "the project's indicator scores add up to {} but its finance_evaluation total_score is {}",
                            Value::Dec(*sum),
                            Value::Dec(*total)
                        ),
                    );
                }
            }
        }
    } else {
        let kind = def.column_index("eval_kind").expect("eval_kind");
        let total = def.column_index("total_score").expect("total_score");
        let sums: HashMap<String, i128> = text_rows(engine, &format!(
            "SELECT concat(CAST(year AS VARCHAR), '{SEP}', project_code), CAST(sum(score) * 100 AS BIGINT) \
             FROM project_scores WHERE year IN ({years}) GROUP BY 1"
        ))
        .await?
        .into_iter()
        .map(|r| (r[0].clone(), r[1].parse().unwrap_or(0)))
        .collect();
        for (row, &line) in rows.values.iter().zip(&rows.lines) {
            if row[kind].text() != Some("finance_evaluation") {
                continue;
            }
            if let (Some(t), Some(sum)) = (row[total].dec(), sums.get(&key(row))) {
                if t != *sum {
                    problems.push(
                        line,
                        "total_score",
                        &row[total],
                        format!(
                            "the project's stored indicator scores add up to {}",
                            Value::Dec(*sum)
                        ),
                    );
                }
            }
        }
    }
    Ok(())
}

async fn finance_totals(engine: &Engine, years: &str) -> Result<HashMap<String, i128>> {
    Ok(text_rows(engine, &format!(
        "SELECT concat(CAST(year AS VARCHAR), '{SEP}', project_code), CAST(total_score * 100 AS BIGINT) \
         FROM evaluations WHERE eval_kind = 'finance_evaluation' AND total_score IS NOT NULL AND year IN ({years})"
    ))
    .await?
    .into_iter()
    .map(|r| (r[0].clone(), r[1].parse().unwrap_or(0)))
    .collect())
}

/// Replacing a year of projects must not drop a project that reviews, evaluations
/// or scores of that year still refer to.
async fn check_orphans(
    engine: &Engine,
    def: &TableDef,
    rows: &Rows,
    years: &[i32],
    problems: &mut Problems,
) -> Result<()> {
    let (y, p) = (
        def.column_index("year").expect("year"),
        def.column_index("project_code").expect("project_code"),
    );
    let kept: HashSet<String> = rows
        .values
        .iter()
        .map(|r| format!("{}{SEP}{}", r[y], r[p]))
        .collect();
    for table in ["exante_reviews", "evaluations", "project_scores"] {
        let referenced = text_rows(engine, &format!(
            "SELECT DISTINCT CAST(year AS VARCHAR), project_code FROM {table} WHERE year IN ({}) ORDER BY 1, 2",
            join(years.iter())
        ))
        .await?;
        for r in referenced {
            if !kept.contains(&format!("{}{SEP}{}", r[0], r[1])) {
                problems.push(
                    1,
                    "project_code",
                    &r[1],
                    format!(
                        "replacing year {} would drop this project, which {table} still refers to",
                        r[0]
                    ),
                );
            }
        }
    }
    Ok(())
}

fn join<T: ToString>(items: impl Iterator<Item = T>) -> String {
    let list: Vec<String> = items.map(|i| i.to_string()).collect();
    if list.is_empty() {
        "NULL".to_string()
    } else {
        list.join(", ")
    }
}

async fn column_set(engine: &Engine, sql: &str) -> Result<HashSet<String>> {
    Ok(text_rows(engine, sql)
        .await?
        .into_iter()
        .map(|mut r| r.remove(0))
        .collect())
}

/// Runs `sql` and returns every row as text cells (NULL as empty).
async fn text_rows(engine: &Engine, sql: &str) -> Result<Vec<Vec<String>>> {
    let mut out = Vec::new();
    for batch in engine.query(sql).await? {
        let columns = batch
            .columns()
            .iter()
            .map(|c| cast(c, &DataType::Utf8))
            .collect::<Result<Vec<_>, _>>()?;
        let columns: Vec<&StringArray> = columns
            .iter()
            .map(|c| {
                c.as_any()
                    .downcast_ref::<StringArray>()
                    .expect("cast to Utf8")
            })
            .collect();
        for i in 0..batch.num_rows() {
            out.push(
                columns
                    .iter()
                    .map(|c| {
                        if c.is_null(i) {
                            String::new()
                        } else {
                            c.value(i).to_string()
                        }
                    })
                    .collect(),
            );
        }
    }
    Ok(out)
}
