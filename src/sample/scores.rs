//! The sample's dept_scores, generated a year at a time straight into Arrow batches,
//! so a 100-million-row national warehouse streams through memory one year at a time.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Decimal128Builder, Int32Builder, StringBuilder};
use datafusion::arrow::record_batch::RecordBatch;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::{dept_tree, Indicator, SampleOptions, SEED_YEAR};
use crate::model::{self, SCORE};
use crate::Result;

/// Rows per generated batch.
const BATCH_ROWS: usize = 1 << 20;

pub struct DeptScores {
    pub(super) rng: ChaCha8Rng,
    /// Years generated ahead of time (see [`DeptScores::generate_all`]).
    ready: BTreeMap<i32, Vec<RecordBatch>>,
    first_year: i32,
    tree: Vec<Indicator>,
    /// (dept_code, first year evaluated, level, trend) of each first-level department.
    departments: Vec<(String, i32, f64, f64)>,
}

impl DeptScores {
    /// `first_level`: (code, name, first year evaluated) of each first-level department;
    /// `rng`: where the random numbers continue from.
    pub fn new(
        opts: &SampleOptions,
        first_level: &[(String, String, i32)],
        mut rng: ChaCha8Rng,
    ) -> Self {
        let departments = first_level
            .iter()
            .enumerate()
            .map(|(i, (code, _, since))| {
                let level = rng.random_range(0.74..0.95);
                let trend = match i % 7 {
                    0 => rng.random_range(0.012..0.03),   // improving
                    3 => -rng.random_range(0.012..0.03),  // declining
                    _ => rng.random_range(-0.006..0.006), // stable
                };
                (code.clone(), *since, level, trend)
            })
            .collect();
        DeptScores {
            rng,
            ready: BTreeMap::new(),
            first_year: opts.first_year,
            tree: dept_tree(opts.indicator_fanout),
            departments,
        }
    }

    pub fn years(&self) -> std::ops::RangeInclusive<i32> {
        self.first_year..=SEED_YEAR
    }

    /// Generates every year now, in order, so the random numbers that follow in
    /// [`DeptScores::rng`] are those after all the scores (the city sample is thus the
    /// same whatever order its tables are written in).
    pub fn generate_all(&mut self) -> Result<()> {
        for year in self.years() {
            let batches = self.generate(year)?;
            self.ready.insert(year, batches);
        }
        Ok(())
    }

    /// One year's scores.
    pub fn year(&mut self, year: i32) -> Result<Vec<RecordBatch>> {
        match self.ready.remove(&year) {
            Some(batches) => Ok(batches),
            None => self.generate(year),
        }
    }

    /// One year's scores, in half points so ties in the totals happen as they do in
    /// real rankings. Each department has a level and a trend; one year of one
    /// department misses an indicator.
    fn generate(&mut self, year: i32) -> Result<Vec<RecordBatch>> {
        let mut batches = Vec::new();
        let mut builder = Builder::new();
        let t = (year - self.first_year) as f64;
        for (i, (code, since, level, trend)) in self.departments.iter().enumerate() {
            if *since > year {
                continue; // not yet formed
            }
            for (k, (indicator, _, _, _, max, _)) in self.tree.iter().enumerate() {
                if i == 5 && year == SEED_YEAR - 3 && k == 8 {
                    continue; // an indicator left unscored
                }
                let noise = self.rng.random_range(-0.09..0.07);
                let quality = (level + trend * t + noise).clamp(0.3, 1.0);
                let score = ((*max as f64) * quality / 50.0).round() as i128 * 50;
                builder.push(year, code, indicator, score.min(*max), *max);
                if builder.rows == BATCH_ROWS {
                    batches.push(std::mem::replace(&mut builder, Builder::new()).finish()?);
                }
            }
        }
        if builder.rows > 0 {
            batches.push(builder.finish()?);
        }
        Ok(batches)
    }
}

struct Builder {
    rows: usize,
    year: Int32Builder,
    dept: StringBuilder,
    indicator: StringBuilder,
    score: Decimal128Builder,
    max: Decimal128Builder,
}

impl Builder {
    fn new() -> Self {
        Builder {
            rows: 0,
            year: Int32Builder::with_capacity(BATCH_ROWS),
            dept: StringBuilder::with_capacity(BATCH_ROWS, BATCH_ROWS * 6),
            indicator: StringBuilder::with_capacity(BATCH_ROWS, BATCH_ROWS * 8),
            score: Decimal128Builder::with_capacity(BATCH_ROWS),
            max: Decimal128Builder::with_capacity(BATCH_ROWS),
        }
    }

    fn push(&mut self, year: i32, dept: &str, indicator: &str, score: i128, max: i128) {
        self.rows += 1;
        self.year.append_value(year);
        self.dept.append_value(dept);
        self.indicator.append_value(indicator);
        self.score.append_value(score);
        self.max.append_value(max);
    }

    fn finish(mut self) -> Result<RecordBatch> {
        let def = model::table_or_err("dept_scores")?;
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.year.finish()),
            Arc::new(self.dept.finish()),
            Arc::new(self.indicator.finish()),
            Arc::new(self.score.finish().with_data_type(SCORE)),
            Arc::new(self.max.finish().with_data_type(SCORE)),
        ];
        Ok(RecordBatch::try_new(def.schema(), columns)?)
    }
}
