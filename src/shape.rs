//! The shape of a statement: parsed SQL made shallow enough for everything after
//! the parser, on every surface (CLI, HTTP, PostgreSQL protocol).
//!
//! The SQL parser bounds nesting by parentheses and sub-queries, but it builds a
//! chain of left-associative operators (`a OR b OR …`, `1 + 1 + …`, `x::int::text…`,
//! `SELECT … UNION SELECT …`) in a loop, as a tree as deep as the chain is long.
//! Cloning, printing, planning, optimising and dropping such a tree recurse once per
//! link, so a long enough chain overflows any thread's stack and aborts the process.
//! Before anything else touches a statement, [`shape`] therefore:
//! - rewrites long `OR` chains: `x = 1 OR x = 2 OR …` becomes `x IN (1, 2, …)` (what BI
//!   tools mean by their long filter lists), and whatever cannot be merged is
//!   regrouped into a balanced tree, as long `AND` chains are; both operators are
//!   associative and commutative in SQL's three-valued logic, so the answer is the same;
//! - regroups a long chain of one union (`SELECT … UNION ALL SELECT … UNION ALL …`,
//!   or all `UNION DISTINCT`) into a balanced tree, operands in order: such a union is
//!   associative, and the optimizer flattens a chain of n unions in n² steps;
//! - refuses any other chain longer than [`MAX_CHAIN`] links, naming it
//!   ([`TooComplex`], SQLSTATE 54001 as PostgreSQL's "statement too complex");
//! - folds unquoted table-function names to lower case, as PostgreSQL resolves every
//!   unquoted name (DataFusion looks table functions up as written).
//!
//! Chains are taken apart and measured in loops, never by recursion, and a rewritten
//! tree is log₂ of the chain deep. Two things bound what the parser itself builds:
//! the tokens are scanned first ([`scan`]), so a chain longer than [`MAX_CHAIN`] or an
//! `AND` / `OR` list longer than [`MAX_TERMS`] is refused before any tree exists; and
//! long statements are parsed on a thread of their own with a large stack, which is
//! returned when the thread ends (a parse that fails drops its tree recursively).

use std::collections::HashMap;
use std::fmt;
use std::ops::ControlFlow;

use datafusion::error::DataFusionError;
use datafusion::sql::parser::{DFParser, Statement as DFStatement};
use datafusion::sql::sqlparser::ast::{
    BinaryOperator, Expr, FunctionArg, FunctionArgExpr, ObjectName, ObjectNamePart, Query, SetExpr,
    SetOperator, SetQuantifier, Statement, TableFactor, UnaryOperator, Value, Values, VisitorMut,
};
use datafusion::sql::sqlparser::dialect::Dialect;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};

/// The longest chain of operators, casts or set operations kpidb plans (other than
/// `AND` / `OR`, which may be any length).
pub const MAX_CHAIN: usize = 4096;

/// The most `AND` / `OR` terms at one level of one statement.
pub const MAX_TERMS: usize = 1_000_000;

/// Statements shorter than this are parsed on the caller's thread: they cannot hold
/// a chain deep enough to matter.
const SHORT_SQL: usize = 8 << 10;

/// The stack of the thread that parses a long statement (address space; only the
/// pages a parse touches are ever backed by memory, and only while it runs).
const PARSE_STACK: usize = 1 << 30;

/// `AND` / `OR` chains at least this long are regrouped (shorter ones are left as written).
const LONG_CHAIN: usize = 64;

/// A statement with a chain too long to plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TooComplex {
    pub what: String,
    pub links: usize,
    pub limit: usize,
}

impl fmt::Display for TooComplex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "statement too complex: a chain of {} {} where kpidb plans at most {}; \
             split it, or use an IN list for a long list of values",
            self.links, self.what, self.limit
        )
    }
}

impl std::error::Error for TooComplex {}

impl From<TooComplex> for DataFusionError {
    fn from(e: TooComplex) -> Self {
        DataFusionError::External(Box::new(e))
    }
}

/// Parses `sql` into statements with DataFusion's parser and shapes each one.
pub fn parse(
    sql: &str,
    dialect: &(dyn Dialect + Sync),
) -> Result<Vec<DFStatement>, DataFusionError> {
    scan(sql, dialect)?;
    on_parse_stack(sql, || {
        let statements = DFParser::parse_sql_with_dialect(sql, dialect)?;
        let mut shaped = Vec::with_capacity(statements.len());
        for mut statement in statements {
            shape_df(&mut statement)?;
            shaped.push(statement);
        }
        Ok(shaped)
    })
}

/// What [`rewrite`] made of a statement.
#[derive(Debug, PartialEq, Eq)]
pub enum Rewrite {
    /// Shaping changed nothing: use the text as it is.
    Unchanged,
    /// The shaped statements, printed.
    Shaped(String),
    /// The dialect's parser does not accept it; the front end's parser reports why.
    Unparsed,
}

/// For a front end that parses SQL itself (datafusion-postgres): the shaped text of
/// `sql`'s statements when shaping changed them.
pub fn rewrite(sql: &str, dialect: &(dyn Dialect + Sync)) -> Result<Rewrite, TooComplex> {
    scan(sql, dialect)?;
    on_parse_stack(sql, || {
        let Ok(mut statements) = Parser::parse_sql(dialect, sql) else {
            return Ok(Rewrite::Unparsed);
        };
        let mut rewritten = false;
        for statement in &mut statements {
            rewritten |= shape(statement)?;
        }
        if !rewritten {
            return Ok(Rewrite::Unchanged);
        }
        Ok(Rewrite::Shaped(
            statements
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .join(";\n"),
        ))
    })
}

fn on_parse_stack<T: Send>(sql: &str, parse: impl Fn() -> T + Sync) -> T {
    if sql.len() < SHORT_SQL {
        return parse();
    }
    std::thread::scope(|scope| {
        match std::thread::Builder::new()
            .name("kpidb-parse".into())
            .stack_size(PARSE_STACK)
            .spawn_scoped(scope, &parse)
        {
            Ok(thread) => thread
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            // No thread to be had: parse here (the scan has bounded the depth).
            Err(_) => parse(),
        }
    })
}

/// Refuses, from the tokens alone, a statement whose trees the parser would build
/// too deep: a run of more than [`MAX_CHAIN`] operators (or set operations) with
/// nothing between them that starts a new expression, or more than [`MAX_TERMS`]
/// `AND` / `OR` at one level of parentheses. A statement that does not tokenize is
/// left to the parser to report.
pub fn scan(sql: &str, dialect: &dyn Dialect) -> Result<(), TooComplex> {
    let Ok(tokens) = Tokenizer::new(dialect, sql).tokenize() else {
        return Ok(());
    };
    #[derive(Default)]
    struct Level {
        run: usize,
        sets: usize,
        terms: usize,
    }
    let mut levels = vec![Level::default()];
    for token in &tokens {
        let level = levels.last_mut().expect("a level");
        match token {
            Token::LParen => levels.push(Level::default()),
            Token::RParen => {
                if levels.len() > 1 {
                    levels.pop();
                }
            }
            Token::Whitespace(_) | Token::Number(..) | Token::SingleQuotedString(_) => {}
            Token::Comma | Token::SemiColon => level.run = 0,
            Token::Word(word) => match word.keyword {
                Keyword::AND | Keyword::OR => {
                    level.run = 0;
                    level.terms += 1;
                    if level.terms > MAX_TERMS {
                        return Err(TooComplex {
                            what: format!("`{}` terms", word.value.to_uppercase()),
                            links: level.terms,
                            limit: MAX_TERMS,
                        });
                    }
                }
                Keyword::UNION | Keyword::EXCEPT | Keyword::INTERSECT | Keyword::MINUS => {
                    level.run = 0;
                    level.sets += 1;
                    if level.sets > MAX_CHAIN {
                        return Err(TooComplex {
                            what: "set operations (UNION …)".into(),
                            links: level.sets,
                            limit: MAX_CHAIN,
                        });
                    }
                }
                Keyword::IS
                | Keyword::LIKE
                | Keyword::ILIKE
                | Keyword::BETWEEN
                | Keyword::IN
                | Keyword::COLLATE
                | Keyword::AT
                | Keyword::SIMILAR
                | Keyword::REGEXP
                | Keyword::RLIKE => level.run = bump(level.run, token)?,
                Keyword::SELECT
                | Keyword::FROM
                | Keyword::WHERE
                | Keyword::GROUP
                | Keyword::HAVING
                | Keyword::ORDER
                | Keyword::BY
                | Keyword::LIMIT
                | Keyword::WHEN
                | Keyword::THEN
                | Keyword::ELSE
                | Keyword::END
                | Keyword::ON
                | Keyword::AS
                | Keyword::JOIN => level.run = 0,
                _ => {}
            },
            _ => level.run = bump(level.run, token)?,
        }
    }
    Ok(())
}

fn bump(run: usize, token: &Token) -> Result<usize, TooComplex> {
    let run = run + 1;
    if run > MAX_CHAIN {
        return Err(TooComplex {
            what: format!("operators (`{token}` …)"),
            links: run,
            limit: MAX_CHAIN,
        });
    }
    Ok(run)
}

/// A table-function call in a FROM clause (`dept_ranking(2023)`): its name as written
/// and its argument expressions (named arguments too).
pub fn table_function_call(factor: &TableFactor) -> Option<(&ObjectName, Vec<&Expr>)> {
    let (name, args) = match factor {
        TableFactor::Table {
            name,
            args: Some(args),
            ..
        } => (name, &args.args),
        TableFactor::Function { name, args, .. } => (name, args),
        _ => return None,
    };
    let exprs = args
        .iter()
        .filter_map(|arg| match arg {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(e))
            | FunctionArg::Named {
                arg: FunctionArgExpr::Expr(e),
                ..
            } => Some(e),
            _ => None,
        })
        .collect();
    Some((name, exprs))
}

fn shape_df(statement: &mut DFStatement) -> Result<bool, TooComplex> {
    match statement {
        DFStatement::Statement(inner) => shape(inner),
        DFStatement::Explain(explain) => shape_df(&mut explain.statement),
        // CREATE EXTERNAL TABLE and COPY are refused later; their parts are short.
        _ => Ok(false),
    }
}

/// Makes `statement` shallow (see the module docs). Returns whether it was rewritten.
/// A chain too long to keep is taken apart (so that dropping the statement does not
/// recurse over it) and reported.
pub fn shape(statement: &mut Statement) -> Result<bool, TooComplex> {
    let mut shaper = Shaper {
        rewritten: false,
        refused: None,
    };
    let _ = crate::walk::visit_mut(statement, &mut shaper);
    match shaper.refused {
        Some(e) => Err(e),
        None => Ok(shaper.rewritten),
    }
}

struct Shaper {
    rewritten: bool,
    refused: Option<TooComplex>,
}

impl Shaper {
    fn refuse(&mut self, e: TooComplex) {
        self.refused.get_or_insert(e);
    }
}

impl VisitorMut for Shaper {
    type Break = ();

    // Table functions are looked up by name as written; PostgreSQL folds an unquoted
    // name to lower case, as it (and DataFusion) does for tables and scalar
    // functions, so `FROM DEPT_RANKING(2023)` (Superset upper-cases) finds it.
    fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
        let name = match factor {
            TableFactor::Table {
                name,
                args: Some(_),
                ..
            }
            | TableFactor::Function { name, .. } => name,
            _ => return ControlFlow::Continue(()),
        };
        for part in &mut name.0 {
            if let ObjectNamePart::Identifier(ident) = part {
                if ident.quote_style.is_none() && ident.value.chars().any(char::is_uppercase) {
                    ident.value = ident.value.to_lowercase();
                    self.rewritten = true;
                }
            }
        }
        ControlFlow::Continue(())
    }

    // Pre-order: a chain is rewritten at its top, before the visitor descends into it.
    fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        if let Expr::BinaryOp {
            op: op @ (BinaryOperator::Or | BinaryOperator::And),
            ..
        } = expr
        {
            let op = op.clone();
            if spine_length(expr, &op) >= LONG_CHAIN {
                let operands = flatten(expr, &op);
                let operands = if op == BinaryOperator::Or {
                    merge_equalities(operands)
                } else {
                    operands
                };
                *expr = balanced(operands, &op);
                self.rewritten = true;
            }
            return ControlFlow::Continue(());
        }
        let links = count_links(expr);
        if links > MAX_CHAIN {
            self.refuse(TooComplex {
                what: describe(expr),
                links,
                limit: MAX_CHAIN,
            });
            dismantle(std::mem::replace(expr, null()));
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        let mut links = 0;
        let mut body = query.body.as_ref();
        while let SetExpr::SetOperation { left, .. } = body {
            links += 1;
            body = left.as_ref();
        }
        if (LONG_CHAIN..=MAX_CHAIN).contains(&links) {
            if let Some(quantifier) = one_union(&query.body) {
                let operands = take_apart(std::mem::replace(query.body.as_mut(), no_rows()));
                *query.body = balanced_union(operands, quantifier);
                self.rewritten = true;
            }
        }
        if links > MAX_CHAIN {
            self.refuse(TooComplex {
                what: "set operations (UNION …)".into(),
                links,
                limit: MAX_CHAIN,
            });
            let mut pending = vec![std::mem::replace(query.body.as_mut(), no_rows())];
            while let Some(node) = pending.pop() {
                if let SetExpr::SetOperation { left, right, .. } = node {
                    pending.push(*left);
                    pending.push(*right);
                }
            }
        }
        ControlFlow::Continue(())
    }
}

/// An empty `VALUES`, what a query body is replaced by while it is taken apart.
fn no_rows() -> SetExpr {
    SetExpr::Values(Values {
        explicit_row: false,
        value_keyword: false,
        rows: vec![],
    })
}

/// The quantifier of a chain `a UNION ALL b UNION ALL …` (or `UNION` / `UNION
/// DISTINCT`) whose every link is the same union, so the chain can be regrouped: such
/// a union is associative. `None` for a chain mixing operators or quantifiers, or
/// unions by name.
fn one_union(body: &SetExpr) -> Option<SetQuantifier> {
    let SetExpr::SetOperation {
        op: SetOperator::Union,
        set_quantifier:
            quantifier @ (SetQuantifier::All | SetQuantifier::Distinct | SetQuantifier::None),
        ..
    } = body
    else {
        return None;
    };
    let mut body = body;
    while let SetExpr::SetOperation {
        op,
        set_quantifier,
        left,
        ..
    } = body
    {
        if *op != SetOperator::Union || set_quantifier != quantifier {
            return None;
        }
        body = left.as_ref();
    }
    Some(*quantifier)
}

/// The operands of a left-leaning chain of set operations, left to right, taken apart
/// in a loop.
fn take_apart(mut body: SetExpr) -> Vec<SetExpr> {
    let mut rights = Vec::new();
    while let SetExpr::SetOperation { left, right, .. } = body {
        rights.push(*right);
        body = *left;
    }
    rights.push(body);
    rights.reverse();
    rights
}

/// `operands` joined by one union in a tree log of their number deep, left to right:
/// the optimizer flattens nested unions bottom-up, which along a chain of n links is
/// n² work (minutes for a few thousand `SELECT … UNION ALL` lines).
fn balanced_union(operands: Vec<SetExpr>, quantifier: SetQuantifier) -> SetExpr {
    regroup(
        operands,
        &|left, right| SetExpr::SetOperation {
            left: Box::new(left),
            op: SetOperator::Union,
            set_quantifier: quantifier,
            right: Box::new(right),
        },
        &|group| group,
        no_rows,
    )
}

/// Drops `expr` without recursing along its chains.
fn dismantle(expr: Expr) {
    let mut pending = vec![expr];
    while let Some(mut node) = pending.pop() {
        if let Expr::BinaryOp { right, .. } = &mut node {
            pending.push(std::mem::replace(right.as_mut(), null()));
        }
        if let Some(next) = chained_mut(&mut node) {
            pending.push(std::mem::replace(next, null()));
        }
    }
}

/// The child that continues a left-leaning chain from `$expr` (a `&Expr` or a
/// `&mut Expr`), as a `Box`: the parser builds these in a loop, so they are the only
/// unbounded depth in a statement.
macro_rules! chain_child {
    ($expr:expr) => {
        match $expr {
            Expr::BinaryOp { left, .. }
            | Expr::AnyOp { left, .. }
            | Expr::AllOp { left, .. }
            | Expr::IsDistinctFrom(left, _)
            | Expr::IsNotDistinctFrom(left, _) => Some(left),
            Expr::IsNull(e)
            | Expr::IsNotNull(e)
            | Expr::IsTrue(e)
            | Expr::IsNotTrue(e)
            | Expr::IsFalse(e)
            | Expr::IsNotFalse(e)
            | Expr::IsUnknown(e)
            | Expr::IsNotUnknown(e)
            | Expr::Nested(e)
            | Expr::Cast { expr: e, .. }
            | Expr::Collate { expr: e, .. }
            | Expr::InList { expr: e, .. }
            | Expr::InSubquery { expr: e, .. }
            | Expr::Between { expr: e, .. }
            | Expr::Like { expr: e, .. }
            | Expr::ILike { expr: e, .. }
            | Expr::SimilarTo { expr: e, .. }
            | Expr::RLike { expr: e, .. } => Some(e),
            Expr::AtTimeZone { timestamp, .. } => Some(timestamp),
            Expr::CompoundFieldAccess { root, .. } => Some(root),
            _ => None,
        }
    };
}

fn chained(expr: &Expr) -> Option<&Expr> {
    chain_child!(expr).map(|child| &**child)
}

/// [`chained`], to take the chain apart.
fn chained_mut(expr: &mut Expr) -> Option<&mut Expr> {
    chain_child!(expr).map(|child| &mut **child)
}

fn count_links(expr: &Expr) -> usize {
    let mut links = 0;
    let mut node = expr;
    while let Some(next) = chained(node) {
        links += 1;
        node = next;
    }
    links
}

fn describe(expr: &Expr) -> String {
    match expr {
        Expr::BinaryOp { op, .. } => format!("operators (`{op}` …)"),
        Expr::Cast { .. } => "casts".into(),
        Expr::Nested(_) => "parentheses".into(),
        _ => "operators".into(),
    }
}

/// How many operands a chain of `op` has along its left side.
fn spine_length(expr: &Expr, op: &BinaryOperator) -> usize {
    let mut operands = 1;
    let mut node = expr;
    while let Expr::BinaryOp { left, op: o, .. } = node {
        if o != op {
            break;
        }
        operands += 1;
        node = left;
    }
    operands
}

/// Takes the chain of `op` at `expr` apart, in a loop, into its operands in order.
/// Each node is emptied before it is dropped, so nothing recurses over the chain.
fn flatten(expr: &mut Expr, op: &BinaryOperator) -> Vec<Expr> {
    let mut operands = Vec::new();
    let mut pending = vec![std::mem::replace(expr, null())];
    while let Some(node) = pending.pop() {
        match node {
            Expr::BinaryOp { left, op: o, right } if &o == op => {
                pending.push(*right);
                pending.push(*left);
            }
            other => operands.push(other),
        }
    }
    operands
}

fn null() -> Expr {
    Expr::value(Value::Null)
}

/// The widest group [`balanced`] joins as one chain.
const GROUP: usize = 32;

/// `operands` joined by `op` as a shallow tree: chains of at most [`GROUP`]
/// operands, each group in parentheses, so that the tree stays shallow when printed
/// and parsed again (the printer adds no parentheses of its own), and a million
/// operands nest four deep.
fn balanced(operands: Vec<Expr>, op: &BinaryOperator) -> Expr {
    regroup(
        operands,
        &|left, right| Expr::BinaryOp {
            left: Box::new(left),
            op: op.clone(),
            right: Box::new(right),
        },
        &|group| Expr::Nested(Box::new(group)),
        null,
    )
}

/// `operands` joined left to right by `join` in a tree log of their number deep: runs
/// of at most [`GROUP`] joined in a row, each run `nest`ed as one operand of the next
/// level up.
fn regroup<T>(
    mut operands: Vec<T>,
    join: &impl Fn(T, T) -> T,
    nest: &impl Fn(T) -> T,
    empty: fn() -> T,
) -> T {
    if operands.len() > GROUP {
        let size = operands.len().div_ceil(GROUP).max(GROUP);
        let mut groups = Vec::new();
        while !operands.is_empty() {
            let rest = operands.split_off(operands.len().min(size));
            let group = std::mem::replace(&mut operands, rest);
            groups.push(nest(regroup(group, join, nest, empty)));
        }
        operands = groups;
    }
    let mut operands = operands.into_iter();
    let first = operands.next().unwrap_or_else(empty);
    operands.fold(first, join)
}

/// The kind of literal, so that only values of one kind share an IN list (an IN list
/// coerces all its values to one type; separate comparisons coerce one by one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Number,
    Text,
}

fn literal(expr: &Expr) -> Option<Kind> {
    match expr {
        Expr::Value(v) => match &v.value {
            Value::Number(..) => Some(Kind::Number),
            Value::SingleQuotedString(_) => Some(Kind::Text),
            _ => None,
        },
        Expr::UnaryOp {
            op: UnaryOperator::Minus | UnaryOperator::Plus,
            expr,
        } => match literal(expr) {
            Some(Kind::Number) => Some(Kind::Number),
            _ => None,
        },
        _ => None,
    }
}

fn is_column(expr: &Expr) -> bool {
    matches!(expr, Expr::Identifier(_) | Expr::CompoundIdentifier(_))
}

/// One operand of an `OR` chain.
enum Disjunct {
    /// `col = v` (either way round) or `col IN (v, …)`: the column and its values.
    Equality(Expr, Kind, Vec<Expr>),
    Other(Expr),
}

fn equality(expr: Expr) -> Disjunct {
    match expr {
        Expr::BinaryOp {
            left,
            op: BinaryOperator::Eq,
            right,
        } => {
            if is_column(&left) {
                if let Some(kind) = literal(&right) {
                    return Disjunct::Equality(*left, kind, vec![*right]);
                }
            }
            if is_column(&right) {
                if let Some(kind) = literal(&left) {
                    return Disjunct::Equality(*right, kind, vec![*left]);
                }
            }
            Disjunct::Other(Expr::BinaryOp {
                left,
                op: BinaryOperator::Eq,
                right,
            })
        }
        Expr::InList {
            expr,
            list,
            negated: false,
        } if is_column(&expr) && !list.is_empty() => {
            let kind = literal(&list[0]);
            match kind {
                Some(kind) if list.iter().all(|v| literal(v) == Some(kind)) => {
                    Disjunct::Equality(*expr, kind, list)
                }
                _ => Disjunct::Other(Expr::InList {
                    expr,
                    list,
                    negated: false,
                }),
            }
        }
        other => Disjunct::Other(other),
    }
}

/// Merges the disjuncts that compare one column with literals of one kind into
/// one `IN` list each; the others are kept, in order.
fn merge_equalities(operands: Vec<Expr>) -> Vec<Expr> {
    let mut groups: Vec<(Expr, Vec<Expr>)> = Vec::new();
    let mut index: HashMap<(String, Kind), usize> = HashMap::new();
    let mut others = Vec::new();
    for operand in operands {
        match equality(operand) {
            Disjunct::Equality(column, kind, values) => {
                let key = (column.to_string(), kind);
                match index.get(&key) {
                    Some(&i) => groups[i].1.extend(values),
                    None => {
                        index.insert(key, groups.len());
                        groups.push((column, values));
                    }
                }
            }
            Disjunct::Other(other) => others.push(other),
        }
    }
    let mut merged: Vec<Expr> = groups
        .into_iter()
        .map(|(column, list)| Expr::InList {
            expr: Box::new(column),
            list,
            negated: false,
        })
        .collect();
    merged.extend(others);
    merged
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::sqlparser::dialect::{GenericDialect, PostgreSqlDialect};
    use datafusion::sql::sqlparser::parser::Parser;

    fn shaped(sql: &str) -> Result<String, TooComplex> {
        let mut statement = Parser::parse_sql(&PostgreSqlDialect {}, sql)
            .unwrap()
            .remove(0);
        shape(&mut statement)?;
        Ok(statement.to_string())
    }

    #[test]
    fn unquoted_table_function_names_fold_to_lower_case() {
        let text = shaped(
            "SELECT COUNT(*) FROM DEPT_RANKING(2023) r JOIN Dept_Trend(2019, 2023) t USING (dept_code)",
        )
        .unwrap();
        assert!(
            text.starts_with("SELECT COUNT(*) FROM dept_ranking(2023)")
                && text.contains("JOIN dept_trend(2019, 2023)"),
            "{text}"
        );
        // Quoted names and tables keep their case (PostgreSQL folds tables itself).
        let sql = "SELECT * FROM \"DEPT_RANKING\"(2023) JOIN DEPT_SCORES USING(dept_code)";
        assert_eq!(shaped(sql).unwrap(), sql);
    }

    #[test]
    fn short_chains_are_left_as_written() {
        let sql = "SELECT a FROM t WHERE a = 1 OR a = 2 OR b > 3";
        assert_eq!(shaped(sql).unwrap(), sql);
    }

    #[test]
    fn a_long_or_list_becomes_in_lists_and_the_rest_stays() {
        let mut terms: Vec<String> = (0..100).map(|i| format!("score = {i}")).collect();
        terms.push("d.code = 'A'".into());
        terms.push("'B' = d.code".into());
        terms.push("score = -5".into());
        terms.push("score > 99".into());
        let sql = format!("SELECT 1 FROM t WHERE {}", terms.join(" OR "));
        let text = shaped(&sql).unwrap();
        assert!(text.contains("score IN (0, 1, 2"), "{text}");
        assert!(text.contains("99, -5)"), "{text}");
        assert!(text.contains("d.code IN ('A', 'B')"), "{text}");
        assert!(text.contains("score > 99"), "{text}");
        assert!(!text.contains("score = "), "{text}");
    }

    #[test]
    fn a_hundred_thousand_terms_are_taken_apart_without_recursion() {
        let terms: Vec<String> = (0..100_000).map(|i| format!("score = {i}")).collect();
        let sql = format!("SELECT 1 FROM t WHERE {}", terms.join(" OR "));
        // The parse runs on this test's thread; shaping must not overflow it either.
        let text = shaped(&sql).unwrap();
        assert!(
            text.starts_with("SELECT 1 FROM t WHERE score IN (0, 1"),
            "{}",
            &text[..60]
        );
    }

    /// The depth of the set operations along the deepest path of `body`.
    fn union_depth(body: &SetExpr) -> usize {
        match body {
            SetExpr::SetOperation { left, right, .. } => {
                1 + union_depth(left).max(union_depth(right))
            }
            _ => 0,
        }
    }

    fn body(sql: &str) -> Box<SetExpr> {
        let mut statement = Parser::parse_sql(&PostgreSqlDialect {}, sql)
            .unwrap()
            .remove(0);
        shape(&mut statement).unwrap();
        match statement {
            Statement::Query(query) => query.body,
            other => panic!("{other}"),
        }
    }

    #[test]
    fn a_long_union_chain_is_balanced_in_order() {
        let selects: Vec<String> = (0..3_000).map(|i| format!("SELECT {i}")).collect();
        for union in [" UNION ALL ", " UNION ", " UNION DISTINCT "] {
            let shaped = body(&selects.join(union));
            assert!(
                union_depth(&shaped) <= 3 * GROUP,
                "{union}: {}",
                union_depth(&shaped)
            );
            // The same operands in the same order, joined by the same union.
            let text = shaped.to_string();
            assert_eq!(text, selects.join(union), "{union}");
        }
        // Short chains, and chains mixing operators or quantifiers, stay as written.
        let short = selects[..10].join(" UNION ALL ");
        assert_eq!(union_depth(&body(&short)), 9);
        let mut mixed = selects[..100].join(" UNION ALL ");
        mixed.push_str(" UNION SELECT 1");
        assert_eq!(union_depth(&body(&mixed)), 100);
        let except = selects[..100].join(" EXCEPT ");
        assert_eq!(union_depth(&body(&except)), 99);
    }

    #[test]
    fn long_and_chains_are_balanced() {
        let terms: Vec<String> = (0..64).map(|i| format!("c{i} > 0")).collect();
        let sql = format!("SELECT 1 FROM t WHERE {}", terms.join(" AND "));
        let mut statement = Parser::parse_sql(&GenericDialect {}, &sql)
            .unwrap()
            .remove(0);
        assert!(shape(&mut statement).unwrap());
        let Statement::Query(query) = &statement else {
            panic!("a query")
        };
        let SetExpr::Select(select) = query.body.as_ref() else {
            panic!("a select")
        };
        let selection = select.selection.as_ref().unwrap();
        assert!(spine_length(selection, &BinaryOperator::And) <= GROUP);
        assert_eq!(
            selection.to_string().matches(" AND ").count(),
            63,
            "every condition kept"
        );
        // Printed and parsed again, the chain stays shallow.
        let many: Vec<String> = (0..100_000).map(|i| format!("c{i} > 0")).collect();
        let sql = format!("SELECT 1 FROM t WHERE {}", many.join(" AND "));
        let Rewrite::Shaped(text) = rewrite(&sql, &GenericDialect {}).unwrap() else {
            panic!("a long AND chain is regrouped")
        };
        let mut again = Parser::parse_sql(&GenericDialect {}, &text).unwrap();
        assert!(!shape(&mut again[0]).unwrap(), "already shallow");
        assert_eq!(text.matches(" AND ").count(), 99_999);
    }

    #[test]
    fn other_long_chains_are_refused_by_name() {
        let sql = format!("SELECT {}", vec!["1"; MAX_CHAIN + 2].join(" + "));
        let err = shaped(&sql).unwrap_err();
        assert_eq!(err.links, MAX_CHAIN + 1);
        assert!(err.to_string().contains("`+`"), "{err}");
        let ok = format!("SELECT {}", vec!["1"; 100].join(" + "));
        assert!(shaped(&ok).is_ok());
        let casts = format!("SELECT 1{}", "::int".repeat(MAX_CHAIN + 1));
        assert!(shaped(&casts).unwrap_err().to_string().contains("casts"));
    }

    #[test]
    fn the_tokens_alone_refuse_what_the_parser_would_build_too_deep() {
        let dialect = PostgreSqlDialect {};
        let sum = format!("SELECT {}", vec!["1"; MAX_CHAIN + 2].join(" + "));
        let err = scan(&sum, &dialect).unwrap_err();
        assert!(err.to_string().contains("`+`"), "{err}");
        // Lists, calls and long OR filters are not chains of operators.
        let list = format!(
            "SELECT x IN ({}), f({}) FROM t WHERE {}",
            (0..10_000)
                .map(|i| format!("-{i}"))
                .collect::<Vec<_>>()
                .join(", "),
            vec!["a + 1"; 5_000].join(", "),
            (0..10_000)
                .map(|i| format!("(s = {i} + 1)"))
                .collect::<Vec<_>>()
                .join(" OR ")
        );
        scan(&list, &dialect).unwrap();
        let Rewrite::Shaped(rewritten) = rewrite(&list, &dialect).unwrap() else {
            panic!("the long OR filter is regrouped")
        };
        assert!(
            rewritten.contains(" OR "),
            "not equalities with a literal: kept"
        );
        let unions = vec!["SELECT 1"; MAX_CHAIN + 2].join(" UNION ALL ");
        assert!(scan(&unions, &dialect)
            .unwrap_err()
            .to_string()
            .contains("UNION"));
    }

    #[test]
    fn long_set_operation_chains_are_refused() {
        let sql = vec!["SELECT 1"; MAX_CHAIN + 2].join(" UNION ALL ");
        let err = shaped(&sql).unwrap_err();
        assert!(err.to_string().contains("UNION"), "{err}");
        let ok = vec!["SELECT 1"; 50].join(" UNION ALL ");
        assert!(shaped(&ok).is_ok());
    }
}
