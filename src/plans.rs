//! Repeated SQL planned once. A dashboard, a scheduled report or an analyst re-running
//! a query sends the same statement again and again; parsing is cheap, but turning it
//! into an optimised logical plan (table functions expanded, rollups chosen, the
//! optimizer's passes) costs a few milliseconds, more than answering a small question.
//! [`PlanCache`] keeps the optimised plan of each query statement and hands it back
//! while nothing it was planned from has changed:
//!
//! - the statement itself (the parsed SQL, not its spelling of white space);
//! - the session's settings, every one of them (a session's own `SET`s included);
//! - every relation the statement names, resolved again on each use and compared by
//!   identity (a view dropped and created again, a table registered over another);
//! - the caller's `generation`: what the caller knows changes plans, for the Engine the
//!   Delta version of every warehouse table and of every rollup in use.
//!
//! A plan that folds a value of the moment (`now()`, `current_date`) or of the session
//! (a `Stable` function, a variable) or that takes parameters is never kept, nor is
//! anything but a query (DDL, `SET`, `EXPLAIN`).
//!
//! A kept plan comes back as a [`Kept`] node at the root of the frame's plan. Over few
//! rows, its physical plan too is made once, by its first run, and every later run
//! executes a fresh copy of it ([`crate::sizing`]): physical planning (the scans' file
//! lists, the physical optimizer's passes) costs more than answering such a question.

use std::cmp::Ordering;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{self, AtomicU64};
use std::sync::{Arc, Mutex, OnceLock};

use datafusion::catalog::TableProvider;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::common::{internal_err, DFSchemaRef, Result};
use datafusion::dataframe::DataFrame;
use datafusion::execution::context::SessionState;
use datafusion::logical_expr::{
    Expr, Extension, LogicalPlan, UserDefinedLogicalNodeCore, Volatility,
};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::sql::parser::Statement;
use datafusion::sql::sqlparser::ast;

/// How many plans a cache keeps; the least recently used goes first.
pub const CAPACITY: usize = 256;

/// The longest text whose parsed statements [`Parsed`] keeps.
pub const PARSED_TEXT: usize = 8 << 10;

/// Statements parsed before, by their text: a text sent again is not tokenized and
/// parsed again (for a long report query, most of what a repeat costs before its kept
/// plan is found). Parsing depends on the text alone, so a copy is always what parsing
/// would give. Keeps [`CAPACITY`] texts of at most [`PARSED_TEXT`] bytes; the least
/// recently used goes first.
pub struct Parsed {
    texts: Mutex<lru::LruCache<String, Vec<Statement>>>,
}

impl Default for Parsed {
    fn default() -> Self {
        Parsed {
            texts: Mutex::new(lru::LruCache::new(
                std::num::NonZeroUsize::new(CAPACITY).expect("not zero"),
            )),
        }
    }
}

impl Parsed {
    /// The statements of `sql`: kept ones, or those `parse` gives (kept if it succeeds).
    pub fn get_or_parse<E>(
        &self,
        sql: &str,
        parse: impl FnOnce(&str) -> std::result::Result<Vec<Statement>, E>,
    ) -> std::result::Result<Vec<Statement>, E> {
        if sql.len() > PARSED_TEXT {
            return parse(sql);
        }
        if let Some(statements) = self.lock().get(sql) {
            return Ok(statements.clone());
        }
        let statements = parse(sql)?;
        self.lock().put(sql.to_string(), statements.clone());
        Ok(statements)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, lru::LruCache<String, Vec<Statement>>> {
        // A put or a get leaves the map whole even if a panic follows.
        self.texts.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Plans with more expression nodes than this (in them and the views and table
/// functions they read) are not kept: repeated SQL is a report's or a dashboard's,
/// and a few generated giants must not hold the memory 256 plans may take.
pub const MAX_EXPRESSIONS: usize = 1_000;

pub struct PlanCache {
    inner: Mutex<Inner>,
    /// Whether kept plans carry their physical plan ([`Kept`]): not where another
    /// planner (a cluster's) plans them.
    physical: bool,
    /// How many times a kept physical plan was run again.
    physical_hits: Arc<AtomicU64>,
}

impl Default for PlanCache {
    fn default() -> Self {
        PlanCache {
            inner: Mutex::default(),
            physical: true,
            physical_hits: Arc::default(),
        }
    }
}

/// The plans kept, least recently used first out.
struct Inner {
    entries: lru::LruCache<Key, Entry>,
    hits: u64,
}

impl Default for Inner {
    fn default() -> Self {
        Inner {
            entries: lru::LruCache::new(capacity()),
            hits: 0,
        }
    }
}

fn capacity() -> std::num::NonZeroUsize {
    std::num::NonZeroUsize::new(CAPACITY).expect("not zero")
}

/// The statement and the settings it was planned under (all of them, as text, one
/// copy shared by the plans kept under the same settings).
#[derive(PartialEq, Eq, Hash)]
struct Key {
    statement: ast::Statement,
    settings: Arc<str>,
}

struct Entry {
    generation: Vec<Option<u64>>,
    relations: Vec<Option<Arc<dyn TableProvider>>>,
    plan: LogicalPlan,
}

/// What a statement's plan was, or will be, made from: looked up before planning.
pub struct Lookup {
    key: Option<Key>,
    generation: Vec<Option<u64>>,
    relations: Vec<Option<Arc<dyn TableProvider>>>,
}

impl std::fmt::Debug for PlanCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let entries = self.lock().entries.len();
        f.debug_struct("PlanCache")
            .field("entries", &entries)
            .finish()
    }
}

impl PlanCache {
    pub fn new() -> Self {
        Self::default()
    }

    /// A cache of optimised logical plans only, for sessions whose physical plans
    /// another planner makes (a cluster's, which knows no [`Kept`] node).
    pub fn logical_only() -> Self {
        PlanCache {
            physical: false,
            ..Self::default()
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How many plans are kept now.
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many times a kept plan was handed back.
    pub fn hits(&self) -> u64 {
        self.lock().hits
    }

    /// How many times a kept physical plan was run again, not planned.
    pub fn physical_hits(&self) -> u64 {
        self.physical_hits.load(atomic::Ordering::Relaxed)
    }

    /// Forgets every plan.
    pub fn clear(&self) {
        self.lock().entries.clear();
    }

    /// Resolves what `statement` would be planned from in `state` now, and the kept
    /// plan if it was made from exactly that. Only query statements are looked up.
    pub async fn lookup(
        &self,
        state: &SessionState,
        statement: &Statement,
        generation: Vec<Option<u64>>,
    ) -> (Lookup, Option<LogicalPlan>) {
        let key = match statement {
            Statement::Statement(inner) if matches!(inner.as_ref(), ast::Statement::Query(_)) => {
                Some(Key {
                    statement: inner.as_ref().clone(),
                    settings: format!("{:?}", state.config_options()).into(),
                })
            }
            _ => None,
        };
        let mut lookup = Lookup {
            key,
            generation,
            relations: Vec::new(),
        };
        if lookup.key.is_none() {
            return (lookup, None);
        }
        match relations(state, statement).await {
            Some(relations) => lookup.relations = relations,
            None => {
                lookup.key = None;
                return (lookup, None);
            }
        }
        let mut inner = self.lock();
        let key = lookup.key.as_ref().expect("checked above");
        let plan = inner.entries.get_mut(key).and_then(|entry| {
            let same = entry.generation == lookup.generation
                && entry.relations.len() == lookup.relations.len()
                && entry
                    .relations
                    .iter()
                    .zip(&lookup.relations)
                    .all(|(kept, now)| match (kept, now) {
                        (Some(kept), Some(now)) => Arc::ptr_eq(kept, now),
                        (None, None) => true,
                        _ => false,
                    });
            same.then(|| entry.plan.clone())
        });
        inner.hits += u64::from(plan.is_some());
        (lookup, plan)
    }

    /// Keeps `optimized`, the plan made from what `lookup` found, if it may be reused:
    /// `planned` (the plan before optimisation) folds nothing of the moment and
    /// `generation_after` (the caller's generation once planning ended) is unchanged.
    /// Plans of other generations are dropped: they can no longer be used. Returns the
    /// plan to run now: the kept one, so that this run's physical plan is kept too.
    pub fn keep(
        &self,
        lookup: Lookup,
        planned: &LogicalPlan,
        optimized: LogicalPlan,
        generation_after: &[Option<u64>],
    ) -> LogicalPlan {
        let Some(mut key) = lookup.key else {
            return optimized;
        };
        if lookup.generation != generation_after || !reusable(planned) {
            return optimized;
        }
        let plan = match self.physical {
            true => Kept::wrap(optimized, &self.physical_hits),
            false => optimized,
        };
        let mut inner = self.lock();
        // Plans of another generation can no longer be used: the tables they were
        // planned from have changed. (Every keep leaves one generation, so they go
        // all together.)
        if inner
            .entries
            .iter()
            .any(|(_, entry)| entry.generation != lookup.generation)
        {
            inner.entries.clear();
        }
        if let Some((shared, _)) = inner
            .entries
            .iter()
            .find(|(kept, _)| kept.settings == key.settings)
        {
            key.settings = Arc::clone(&shared.settings);
        }
        // The least recently used goes when the cache is full.
        inner.entries.put(
            key,
            Entry {
                generation: lookup.generation,
                relations: lookup.relations,
                plan: plan.clone(),
            },
        );
        plan
    }
}

/// A kept plan at the root of a frame: the optimised plan, and its physical plan once
/// a run has made one ([`crate::sizing::physical_plan`]). To DataFusion it is a leaf:
/// the analyzer, which checks a frame's plan before each run, has nothing to walk
/// again; what reads the plan itself looks inside with [`Kept::unwrap`].
#[derive(Debug, Clone)]
pub struct Kept {
    plan: LogicalPlan,
    physical: Arc<OnceLock<Arc<dyn ExecutionPlan>>>,
    hits: Arc<AtomicU64>,
}

impl Kept {
    fn wrap(plan: LogicalPlan, hits: &Arc<AtomicU64>) -> LogicalPlan {
        LogicalPlan::Extension(Extension {
            node: Arc::new(Kept {
                plan,
                physical: Arc::default(),
                hits: Arc::clone(hits),
            }),
        })
    }

    /// The kept plan `plan` is, if it is one.
    pub fn of(plan: &LogicalPlan) -> Option<&Kept> {
        match plan {
            LogicalPlan::Extension(extension) => extension.node.as_any().downcast_ref(),
            _ => None,
        }
    }

    /// The optimised plan.
    pub fn plan(&self) -> &LogicalPlan {
        &self.plan
    }

    /// `plan`, or the plan it keeps if it is a kept plan.
    pub fn unwrap(plan: &LogicalPlan) -> &LogicalPlan {
        Kept::of(plan).map_or(plan, Kept::plan)
    }

    /// The physical plan a run made and kept ([`Kept::keep_physical`]), counted as
    /// reused. It is never executed itself: each run executes a copy with fresh state.
    pub fn physical(&self) -> Option<Arc<dyn ExecutionPlan>> {
        let physical = self.physical.get().cloned();
        if physical.is_some() {
            self.hits.fetch_add(1, atomic::Ordering::Relaxed);
        }
        physical
    }

    /// Keeps `physical`, made from this plan, for the runs after this one (the first
    /// of simultaneous runs wins).
    pub fn keep_physical(&self, physical: Arc<dyn ExecutionPlan>) {
        let _ = self.physical.set(physical);
    }
}

impl PartialEq for Kept {
    fn eq(&self, other: &Self) -> bool {
        self.plan == other.plan
    }
}

impl Eq for Kept {}

impl Hash for Kept {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.plan.hash(state);
    }
}

impl PartialOrd for Kept {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        self.plan.partial_cmp(&other.plan)
    }
}

impl UserDefinedLogicalNodeCore for Kept {
    fn name(&self) -> &str {
        "KeptPlan"
    }

    fn inputs(&self) -> Vec<&LogicalPlan> {
        Vec::new()
    }

    fn schema(&self) -> &DFSchemaRef {
        self.plan.schema()
    }

    fn expressions(&self) -> Vec<Expr> {
        Vec::new()
    }

    fn fmt_for_explain(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("KeptPlan")
    }

    fn with_exprs_and_inputs(&self, _exprs: Vec<Expr>, inputs: Vec<LogicalPlan>) -> Result<Self> {
        if !inputs.is_empty() {
            return internal_err!("a kept plan has no inputs");
        }
        Ok(self.clone())
    }
}

/// The provider each relation `statement` names resolves to in `state` now (`None`:
/// not a table, e.g. a table function's name); `None` when the names cannot be read.
async fn relations(
    state: &SessionState,
    statement: &Statement,
) -> Option<Vec<Option<Arc<dyn TableProvider>>>> {
    let references = state.resolve_table_references(statement).ok()?;
    let mut providers = Vec::with_capacity(references.len());
    for reference in references {
        let provider = match state.schema_for_ref(reference.clone()) {
            Ok(schema) => schema.table(reference.table()).await.ok()?,
            Err(_) => None,
        };
        providers.push(provider);
    }
    Some(providers)
}

/// Whether a plan's optimised form depends only on what [`PlanCache`] compares, and
/// it is worth keeping: a query, without parameters, without functions that are not
/// `Immutable` (the optimizer folds `now()` to the moment it ran) or variables, in it
/// or in the views and table functions it reads, of at most [`MAX_EXPRESSIONS`].
pub fn reusable(plan: &LogicalPlan) -> bool {
    let mut expressions = 0;
    reusable_within(plan, &mut expressions)
}

/// [`reusable`], counting the expression nodes met into `expressions`.
fn reusable_within(plan: &LogicalPlan, expressions: &mut usize) -> bool {
    if !is_query(plan) {
        return false;
    }
    let mut fixed = true;
    let _ = plan.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node {
            if let Some(inner) = scan.source.get_logical_plan() {
                if !reusable_within(&inner, expressions) {
                    fixed = false;
                    return Ok(TreeNodeRecursion::Stop);
                }
            }
        }
        node.apply_expressions(|expr| {
            expr.apply(|e| {
                *expressions += 1;
                let of_the_moment = *expressions > MAX_EXPRESSIONS
                    || match e {
                        Expr::ScalarFunction(f) => {
                            f.func.signature().volatility != Volatility::Immutable
                        }
                        Expr::Placeholder(_) | Expr::ScalarVariable(..) => true,
                        _ => false,
                    };
                if of_the_moment {
                    fixed = false;
                    return Ok(TreeNodeRecursion::Stop);
                }
                Ok(TreeNodeRecursion::Continue)
            })
        })
    });
    fixed
}

/// Whether `plan` answers a query, as opposed to DDL, `SET`, `EXPLAIN` or a write.
pub fn is_query(plan: &LogicalPlan) -> bool {
    !matches!(
        plan,
        LogicalPlan::Ddl(_)
            | LogicalPlan::Dml(_)
            | LogicalPlan::Copy(_)
            | LogicalPlan::Statement(_)
            | LogicalPlan::Explain(_)
            | LogicalPlan::Analyze(_)
            | LogicalPlan::DescribeTable(_)
    )
}

/// A DataFrame over `optimized`, a plan that [`SessionState::optimize`] made: its
/// state runs no optimizer pass again (the analyzer's checks still run).
pub fn frame(mut state: SessionState, optimized: LogicalPlan) -> DataFrame {
    state.config_mut().options_mut().optimizer.max_passes = 0;
    DataFrame::new(state, optimized)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::parser::DFParser;

    fn parse(calls: &std::cell::Cell<usize>, sql: &str) -> Result<Vec<Statement>> {
        calls.set(calls.get() + 1);
        Ok(DFParser::parse_sql(sql)?.into_iter().collect())
    }

    /// Plans `sql` through `cache` under `generation`; whether it was a kept plan.
    async fn run(cache: &PlanCache, sql: &str, generation: u64) -> bool {
        let state = datafusion::prelude::SessionContext::new().state();
        let statement = DFParser::parse_sql(sql).unwrap().pop_front().unwrap();
        let generation = vec![Some(generation)];
        let (lookup, kept) = cache.lookup(&state, &statement, generation.clone()).await;
        if kept.is_some() {
            return true;
        }
        let plan = state.statement_to_plan(statement).await.unwrap();
        let optimized = state.optimize(&plan).unwrap();
        cache.keep(lookup, &plan, optimized, &generation);
        false
    }

    #[tokio::test]
    async fn the_least_recently_used_plan_goes_and_a_new_generation_drops_all() {
        let cache = PlanCache::new();
        for i in 0..CAPACITY {
            assert!(!run(&cache, &format!("SELECT {i}"), 1).await);
        }
        // The first is used again, so the second is the least recently used.
        assert!(run(&cache, "SELECT 0", 1).await);
        assert!(!run(&cache, &format!("SELECT {CAPACITY}"), 1).await);
        assert_eq!(cache.len(), CAPACITY);
        assert!(run(&cache, "SELECT 0", 1).await);
        assert!(!run(&cache, "SELECT 1", 1).await);
        assert!(run(&cache, &format!("SELECT {CAPACITY}"), 1).await);
        // Another generation: nothing kept is used, and the old plans go.
        assert!(!run(&cache, "SELECT 0", 2).await);
        assert_eq!(cache.len(), 1);
        assert!(run(&cache, "SELECT 0", 2).await);
    }

    #[test]
    fn a_text_is_parsed_once_and_only_what_parses_is_kept() {
        let parsed = Parsed::default();
        let calls = std::cell::Cell::new(0);
        let sql = "SELECT dept_code, sum(score) FROM dept_scores GROUP BY 1; SELECT 1";
        let first = parsed.get_or_parse(sql, |s| parse(&calls, s)).unwrap();
        let again = parsed.get_or_parse(sql, |s| parse(&calls, s)).unwrap();
        assert_eq!(first, again);
        assert_eq!(first.len(), 2);
        assert_eq!(calls.get(), 1);
        // Another spelling is another text.
        parsed
            .get_or_parse(&sql.to_lowercase(), |s| parse(&calls, s))
            .unwrap();
        assert_eq!(calls.get(), 2);
        // An error is not kept: the next try parses again.
        for _ in 0..2 {
            assert!(parsed
                .get_or_parse("SELEC 1", |s| parse(&calls, s))
                .is_err());
        }
        assert_eq!(calls.get(), 4);
        // Nor is a text longer than PARSED_TEXT.
        let long = format!("SELECT {}1", "1 + ".repeat(PARSED_TEXT / 4));
        for _ in 0..2 {
            parsed.get_or_parse(&long, |s| parse(&calls, s)).unwrap();
        }
        assert_eq!(calls.get(), 6);
    }
}
