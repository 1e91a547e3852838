//! Decimal products without overflow checks where the types rule overflow out.
//!
//! Arrow multiplies `Decimal128` values with a checked multiplication per row, which
//! is most of a filtered pass over the scores (`WHERE score * 10 < max_score * 6`):
//! checked 128-bit multiplication does not vectorise. But a `Decimal128(p1, s1)` times
//! a `Decimal128(p2, s2)` is typed `Decimal128(p1 + p2 + 1, s1 + s2)`, and when
//! `p1 + p2 ≤ 37` every product of valid values is below 10^37, far from the i128
//! limit: the check can never fire. [`ExactDecimalProducts`] swaps such products in
//! filters and projections for [`DecimalProduct`], which multiplies without the check
//! and gives the same values, type and nulls. Everything else about the expression
//! (its display, bounds, statistics) is the original's.
//!
//! A comparison of two such decimals, each side a value of at most 18 digits times a
//! constant whose product still fits in 64 bits (`score * 10 < max_score * 6`, or a
//! cast that only widens), becomes a [`DecimalComparison`]: each row's two products
//! made and compared in 64-bit registers, with no 128-bit product arrays in between.

use std::fmt;
use std::hash::Hash;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, PrimitiveArray};
use datafusion::arrow::buffer::{BooleanBuffer, Buffer, NullBuffer};
use datafusion::arrow::compute::kernels::numeric::mul;
use datafusion::arrow::datatypes::{DataType, Decimal128Type, FieldRef, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode};
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::interval_arithmetic::Interval;
use datafusion::logical_expr::sort_properties::ExprProperties;
use datafusion::logical_expr::{ColumnarValue, Operator};
use datafusion::physical_expr::expressions::{BinaryExpr, CastExpr, Literal};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr_common::datum::apply;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::filter::{FilterExec, FilterExecBuilder};
use datafusion::physical_plan::projection::{ProjectionExec, ProjectionExpr};
use datafusion::physical_plan::ExecutionPlan;

/// Highest `p1 + p2` whose products cannot overflow an i128: |x·y| < 10^(p1 + p2).
const MAX_DIGITS: u8 = 37;

/// The physical rule: decimal products in `FilterExec` predicates and
/// `ProjectionExec` expressions become [`DecimalProduct`]s where the operands'
/// precisions rule out overflow, and comparisons of them [`DecimalComparison`]s
/// where they fit in 64 bits.
#[derive(Debug, Default)]
pub struct ExactDecimalProducts;

impl PhysicalOptimizerRule for ExactDecimalProducts {
    fn name(&self) -> &str {
        "ExactDecimalProducts"
    }

    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            if let Some(filter) = node.downcast_ref::<FilterExec>() {
                let predicate = unchecked(filter.predicate(), &filter.input().schema())?;
                if !predicate.transformed {
                    return Ok(Transformed::no(node));
                }
                let filter = FilterExecBuilder::from(filter)
                    .with_predicate(predicate.data)
                    .build()?;
                return Ok(Transformed::yes(Arc::new(filter)));
            }
            if let Some(projection) = node.downcast_ref::<ProjectionExec>() {
                let schema = projection.input().schema();
                let mut changed = false;
                let mut exprs = Vec::with_capacity(projection.expr().len());
                for e in projection.expr() {
                    let expr = unchecked(&e.expr, &schema)?;
                    changed |= expr.transformed;
                    exprs.push(ProjectionExpr {
                        expr: expr.data,
                        alias: e.alias.clone(),
                    });
                }
                if !changed {
                    return Ok(Transformed::no(node));
                }
                let projection = ProjectionExec::try_new_with_schema_metadata(
                    exprs,
                    Arc::clone(projection.input()),
                    &projection.schema(),
                )?;
                return Ok(Transformed::yes(Arc::new(projection)));
            }
            Ok(Transformed::no(node))
        })
        .data()
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// `expr` with every decimal product that cannot overflow made a [`DecimalProduct`].
fn unchecked(
    expr: &Arc<dyn PhysicalExpr>,
    schema: &Schema,
) -> Result<Transformed<Arc<dyn PhysicalExpr>>> {
    Arc::clone(expr).transform_up(|e| {
        let Some(binary) = e.downcast_ref::<BinaryExpr>() else {
            return Ok(Transformed::no(e));
        };
        if is_comparison(binary.op()) {
            return Ok(if DecimalComparison::applies(binary, schema)? {
                Transformed::yes(Arc::new(DecimalComparison {
                    inner: Arc::new(binary.clone()),
                }))
            } else {
                Transformed::no(e)
            });
        }
        if *binary.op() != Operator::Multiply {
            return Ok(Transformed::no(e));
        }
        let types = (
            binary.left().data_type(schema)?,
            binary.right().data_type(schema)?,
            e.data_type(schema)?,
        );
        match types {
            (
                DataType::Decimal128(p1, _),
                DataType::Decimal128(p2, _),
                DataType::Decimal128(p, s),
            ) if p1 + p2 <= MAX_DIGITS && p > p1 + p2 => {
                Ok(Transformed::yes(Arc::new(DecimalProduct {
                    inner: Arc::new(binary.clone()),
                    precision: p,
                    scale: s,
                    operands: (p1, p2),
                })))
            }
            _ => Ok(Transformed::no(e)),
        }
    })
}

/// Highest number of decimal digits whose products fit in an i64 (< 9.2·10^18).
const I64_DIGITS: u8 = 18;

/// `values` (of `digits` digits at most) times the scalar `v`, unchecked: the product
/// cannot overflow (see [`MAX_DIGITS`]); in 64 bits where `v`'s own digits allow.
fn times(
    values: &PrimitiveArray<Decimal128Type>,
    digits: u8,
    v: i128,
) -> PrimitiveArray<Decimal128Type> {
    let limit = 10_u128.pow(u32::from(I64_DIGITS.saturating_sub(digits)));
    if digits <= I64_DIGITS && v.unsigned_abs() < limit {
        let v = v as i64;
        values.unary(|x: i128| (x as i64).wrapping_mul(v) as i128)
    } else {
        values.unary(|x: i128| x.wrapping_mul(v))
    }
}

/// `left * right` of two `Decimal128`s whose product cannot overflow, multiplied
/// without a per-row check; `inner` is the product as DataFusion planned it.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct DecimalProduct {
    inner: Arc<BinaryExpr>,
    precision: u8,
    scale: i8,
    /// The operands' precisions.
    operands: (u8, u8),
}

impl fmt::Display for DecimalProduct {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

impl PhysicalExpr for DecimalProduct {
    fn data_type(&self, _input_schema: &Schema) -> Result<DataType> {
        Ok(DataType::Decimal128(self.precision, self.scale))
    }

    fn nullable(&self, input_schema: &Schema) -> Result<bool> {
        self.inner.nullable(input_schema)
    }

    fn return_field(&self, input_schema: &Schema) -> Result<FieldRef> {
        self.inner.return_field(input_schema)
    }

    fn evaluate(&self, batch: &RecordBatch) -> Result<ColumnarValue> {
        let left = self.inner.left().evaluate(batch)?;
        let right = self.inner.right().evaluate(batch)?;
        let (p1, p2) = self.operands;
        let product: PrimitiveArray<Decimal128Type> = match (&left, &right) {
            (ColumnarValue::Array(l), ColumnarValue::Array(r)) => {
                let (l, r) = (
                    l.as_primitive::<Decimal128Type>(),
                    r.as_primitive::<Decimal128Type>(),
                );
                if p1 + p2 <= I64_DIGITS {
                    // Operands and product all fit in 64 bits: one machine multiply.
                    datafusion::arrow::compute::binary(l, r, |x: i128, y: i128| {
                        (x as i64).wrapping_mul(y as i64) as i128
                    })?
                } else {
                    datafusion::arrow::compute::binary(l, r, i128::wrapping_mul)?
                }
            }
            (
                ColumnarValue::Array(a),
                ColumnarValue::Scalar(ScalarValue::Decimal128(Some(v), ..)),
            ) => times(a.as_primitive::<Decimal128Type>(), p1, *v),
            (
                ColumnarValue::Scalar(ScalarValue::Decimal128(Some(v), ..)),
                ColumnarValue::Array(a),
            ) => times(a.as_primitive::<Decimal128Type>(), p2, *v),
            // Two scalars, or a null one: once per batch, the checked way.
            _ => return apply(&left, &right, mul),
        };
        let product = product.with_precision_and_scale(self.precision, self.scale)?;
        debug_assert_eq!(product.len(), batch.num_rows());
        Ok(ColumnarValue::Array(Arc::new(product)))
    }

    fn children(&self) -> Vec<&Arc<dyn PhysicalExpr>> {
        self.inner.children()
    }

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn PhysicalExpr>>,
    ) -> Result<Arc<dyn PhysicalExpr>> {
        let right = children.pop();
        let left = children.pop();
        let (Some(left), Some(right), true) = (left, right, children.is_empty()) else {
            return datafusion::common::internal_err!("a decimal product has two children");
        };
        Ok(Arc::new(DecimalProduct {
            inner: Arc::new(BinaryExpr::new(left, Operator::Multiply, right)),
            precision: self.precision,
            scale: self.scale,
            operands: self.operands,
        }))
    }

    fn evaluate_bounds(&self, children: &[&Interval]) -> Result<Interval> {
        self.inner.evaluate_bounds(children)
    }

    fn propagate_constraints(
        &self,
        interval: &Interval,
        children: &[&Interval],
    ) -> Result<Option<Vec<Interval>>> {
        self.inner.propagate_constraints(interval, children)
    }

    fn get_properties(&self, children: &[ExprProperties]) -> Result<ExprProperties> {
        self.inner.get_properties(children)
    }

    fn fmt_sql(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt_sql(f)
    }
}

fn is_comparison(op: &Operator) -> bool {
    matches!(
        op,
        Operator::Eq
            | Operator::NotEq
            | Operator::Lt
            | Operator::LtEq
            | Operator::Gt
            | Operator::GtEq
    )
}

/// `expr` as an operand times a constant factor, where its value (as stored, scale
/// included) is the operand's times the factor and fits in 64 bits: a product by a
/// literal, a cast that only widens a decimal, or a decimal of at most 18 digits.
fn scaled(
    expr: &Arc<dyn PhysicalExpr>,
    schema: &Schema,
) -> Result<Option<(Arc<dyn PhysicalExpr>, i64)>> {
    let found = operand(expr, schema)?;
    let Some((operand, factor)) = found else {
        return Ok(None);
    };
    if operand.is::<Literal>() {
        // A constant's own value is checked when it is read.
        return Ok(i64::try_from(factor).ok().map(|f| (operand, f)));
    }
    let DataType::Decimal128(digits, _) = operand.data_type(schema)? else {
        return Ok(None);
    };
    let limit = 10_i128.pow(u32::from(I64_DIGITS.saturating_sub(digits)));
    Ok((digits <= I64_DIGITS && factor.abs() < limit).then_some((operand, factor as i64)))
}

/// The operand and factor of [`scaled`], before its 64-bit check.
fn operand(
    expr: &Arc<dyn PhysicalExpr>,
    schema: &Schema,
) -> Result<Option<(Arc<dyn PhysicalExpr>, i128)>> {
    if let Some(product) = expr.downcast_ref::<DecimalProduct>() {
        let constant = |e: &Arc<dyn PhysicalExpr>| match e.downcast_ref::<Literal>()?.value() {
            ScalarValue::Decimal128(Some(v), ..) => Some(*v),
            _ => None,
        };
        let (left, right) = (product.inner.left(), product.inner.right());
        let (other, v) = match (constant(left), constant(right)) {
            (None, Some(v)) => (left, v),
            (Some(v), None) => (right, v),
            _ => return Ok(None),
        };
        return Ok(operand(other, schema)?.and_then(|(e, f)| Some((e, f.checked_mul(v)?))));
    }
    if let Some(cast) = expr.downcast_ref::<CastExpr>() {
        if let (DataType::Decimal128(p, s), DataType::Decimal128(to_p, to_s)) =
            (cast.expr().data_type(schema)?, cast.cast_type())
        {
            let widens =
                *to_s >= s && i16::from(*to_p) - i16::from(*to_s) >= i16::from(p) - i16::from(s);
            if widens {
                let shift = 10_i128.checked_pow(u32::from((*to_s - s) as u8));
                return Ok(operand(cast.expr(), schema)?
                    .and_then(|(e, f)| Some((e, f.checked_mul(shift?)?))));
            }
        }
    }
    Ok(match expr.data_type(schema)? {
        DataType::Decimal128(..) => Some((Arc::clone(expr), 1)),
        _ => None,
    })
}

/// A comparison of two decimals of one type, each an operand times a constant that
/// fits in 64 bits (`score * 10 < max_score * 6`): compared row by row in 64 bits,
/// without the 128-bit products or a second pass to compare them. `inner` is the
/// comparison as planned (its children the products), whose answer this is.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct DecimalComparison {
    inner: Arc<BinaryExpr>,
}

impl DecimalComparison {
    fn applies(binary: &BinaryExpr, schema: &Schema) -> Result<bool> {
        let (left, right) = (
            binary.left().data_type(schema)?,
            binary.right().data_type(schema)?,
        );
        Ok(matches!(left, DataType::Decimal128(..))
            && left == right
            && scaled(binary.left(), schema)?.is_some()
            && scaled(binary.right(), schema)?.is_some())
    }

    /// Each side's operand values times its factor, compared with `op`, or `None`
    /// where a side is not an array or a known constant.
    fn compare(
        &self,
        batch: &RecordBatch,
        (left, lf): (Arc<dyn PhysicalExpr>, i64),
        (right, rf): (Arc<dyn PhysicalExpr>, i64),
    ) -> Result<Option<BooleanArray>> {
        let side = |e: &Arc<dyn PhysicalExpr>, f: i64| -> Result<Option<Side>> {
            Ok(match e.evaluate(batch)? {
                ColumnarValue::Array(a) => Some(Side::Values(a, f)),
                ColumnarValue::Scalar(ScalarValue::Decimal128(Some(v), ..)) => v
                    .checked_mul(i128::from(f))
                    .and_then(|v| i64::try_from(v).ok())
                    .map(Side::Constant),
                ColumnarValue::Scalar(_) => None,
            })
        };
        let (Some(l), Some(r)) = (side(&left, lf)?, side(&right, rf)?) else {
            return Ok(None);
        };
        let op = *self.inner.op();
        Ok(Some(match (&l, &r) {
            (Side::Values(a, fa), Side::Values(b, fb)) => {
                let (a, b) = (
                    a.as_primitive::<Decimal128Type>(),
                    b.as_primitive::<Decimal128Type>(),
                );
                BooleanArray::new(
                    by_op(op, a.values(), *fa, Other::Values(b.values(), *fb)),
                    NullBuffer::union(a.nulls(), b.nulls()),
                )
            }
            (Side::Values(a, fa), Side::Constant(c)) => {
                let a = a.as_primitive::<Decimal128Type>();
                BooleanArray::new(
                    by_op(op, a.values(), *fa, Other::Constant(*c)),
                    a.nulls().cloned(),
                )
            }
            // `c op b` is `b op' c`, op' the comparison mirrored.
            (Side::Constant(c), Side::Values(b, fb)) => {
                let b = b.as_primitive::<Decimal128Type>();
                BooleanArray::new(
                    by_op(
                        op.swap().unwrap_or(op),
                        b.values(),
                        *fb,
                        Other::Constant(*c),
                    ),
                    b.nulls().cloned(),
                )
            }
            (Side::Constant(_), Side::Constant(_)) => return Ok(None),
        }))
    }
}

/// One side of a [`DecimalComparison`] for a batch.
enum Side {
    Values(ArrayRef, i64),
    Constant(i64),
}

/// What the values of a [`DecimalComparison`]'s left side are compared with.
#[derive(Clone, Copy)]
enum Other<'a> {
    Values(&'a [i128], i64),
    Constant(i64),
}

/// `left[i] · factor op other` for every row.
fn by_op(op: Operator, left: &[i128], factor: i64, other: Other<'_>) -> BooleanBuffer {
    match op {
        Operator::Eq => bits(left, factor, other, |x, y| x == y),
        Operator::NotEq => bits(left, factor, other, |x, y| x != y),
        Operator::Lt => bits(left, factor, other, |x, y| x < y),
        Operator::LtEq => bits(left, factor, other, |x, y| x <= y),
        Operator::Gt => bits(left, factor, other, |x, y| x > y),
        _ => bits(left, factor, other, |x, y| x >= y),
    }
}

/// The answers of `test` packed 64 to a word, each word from slices walked together:
/// a loop that is tight at any optimisation level (kpidb's release build optimises it
/// for size, Cargo.toml), with no adapters to inline and no bounds to check.
#[inline(always)]
fn bits(
    left: &[i128],
    factor: i64,
    other: Other<'_>,
    test: impl Fn(i64, i64) -> bool,
) -> BooleanBuffer {
    let value = |x: &i128| (*x as i64).wrapping_mul(factor);
    let mut words = Vec::with_capacity(left.len().div_ceil(64));
    match other {
        Other::Values(right, rf) => {
            debug_assert_eq!(left.len(), right.len());
            for (l, r) in left.chunks(64).zip(right.chunks(64)) {
                let mut word = 0_u64;
                for (bit, (x, y)) in l.iter().zip(r).enumerate() {
                    word |= u64::from(test(value(x), (*y as i64).wrapping_mul(rf))) << bit;
                }
                words.push(word);
            }
        }
        Other::Constant(c) => {
            for l in left.chunks(64) {
                let mut word = 0_u64;
                for (bit, x) in l.iter().enumerate() {
                    word |= u64::from(test(value(x), c)) << bit;
                }
                words.push(word);
            }
        }
    }
    BooleanBuffer::new(Buffer::from_vec(words), 0, left.len())
}

impl fmt::Display for DecimalComparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

impl PhysicalExpr for DecimalComparison {
    fn data_type(&self, input_schema: &Schema) -> Result<DataType> {
        self.inner.data_type(input_schema)
    }

    fn nullable(&self, input_schema: &Schema) -> Result<bool> {
        self.inner.nullable(input_schema)
    }

    fn return_field(&self, input_schema: &Schema) -> Result<FieldRef> {
        self.inner.return_field(input_schema)
    }

    fn evaluate(&self, batch: &RecordBatch) -> Result<ColumnarValue> {
        let schema = batch.schema();
        let sides = (
            scaled(self.inner.left(), &schema)?,
            scaled(self.inner.right(), &schema)?,
        );
        if let (Some(left), Some(right)) = sides {
            if let Some(answer) = self.compare(batch, left, right)? {
                return Ok(ColumnarValue::Array(Arc::new(answer)));
            }
        }
        self.inner.evaluate(batch)
    }

    fn children(&self) -> Vec<&Arc<dyn PhysicalExpr>> {
        self.inner.children()
    }

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn PhysicalExpr>>,
    ) -> Result<Arc<dyn PhysicalExpr>> {
        let right = children.pop();
        let left = children.pop();
        let (Some(left), Some(right), true) = (left, right, children.is_empty()) else {
            return datafusion::common::internal_err!("a comparison has two children");
        };
        Ok(Arc::new(DecimalComparison {
            inner: Arc::new(BinaryExpr::new(left, *self.inner.op(), right)),
        }))
    }

    fn evaluate_bounds(&self, children: &[&Interval]) -> Result<Interval> {
        self.inner.evaluate_bounds(children)
    }

    fn propagate_constraints(
        &self,
        interval: &Interval,
        children: &[&Interval],
    ) -> Result<Option<Vec<Interval>>> {
        self.inner.propagate_constraints(interval, children)
    }

    fn get_properties(&self, children: &[ExprProperties]) -> Result<ExprProperties> {
        self.inner.get_properties(children)
    }

    fn fmt_sql(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt_sql(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use datafusion::arrow::array::{Array, Decimal128Array};
    use datafusion::arrow::datatypes::Field;
    use datafusion::arrow::util::pretty::pretty_format_batches;
    use datafusion::datasource::MemTable;
    use datafusion::execution::SessionStateBuilder;
    use datafusion::prelude::{SessionConfig, SessionContext};

    /// Scores as the warehouse types them, with the extremes of their precision, a
    /// known value (1234.56), negatives and nulls, over several batches.
    fn scores() -> (Arc<Schema>, Vec<RecordBatch>) {
        let schema = Arc::new(Schema::new(vec![
            Field::new("score", DataType::Decimal128(7, 2), true),
            Field::new("max_score", DataType::Decimal128(7, 2), true),
            Field::new("amount", DataType::Decimal128(18, 2), true),
        ]));
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let batches = (0..4)
            .map(|_| {
                let column = |limit: i128, next: &mut dyn FnMut() -> u64| {
                    let values: Vec<Option<i128>> = (0..1000)
                        .map(|i| match (i, next() % 10) {
                            (0, _) => Some(limit - 1),
                            (1, _) => Some(-(limit - 1)),
                            // A known value inside the range, for ties with constants.
                            (4, _) => Some(123_456),
                            (2, _) | (_, 0) => None,
                            _ => Some((next() as i128) % limit),
                        })
                        .collect();
                    values
                };
                let score = column(10_i128.pow(7), &mut next);
                let mut max_score = column(10_i128.pow(7), &mut next);
                // Ties, for comparisons: every fifth row has full marks.
                for i in (3..max_score.len()).step_by(5) {
                    max_score[i] = score[i];
                }
                let amount = column(10_i128.pow(18), &mut next);
                let array = |values: Vec<Option<i128>>, p: u8| {
                    Arc::new(
                        Decimal128Array::from(values)
                            .with_precision_and_scale(p, 2)
                            .unwrap(),
                    ) as Arc<dyn Array>
                };
                RecordBatch::try_new(
                    Arc::clone(&schema),
                    vec![array(score, 7), array(max_score, 7), array(amount, 18)],
                )
                .unwrap()
            })
            .collect();
        (schema, batches)
    }

    fn session(exact: bool) -> SessionContext {
        let mut builder = SessionStateBuilder::new()
            .with_config(SessionConfig::new().with_target_partitions(2))
            .with_default_features();
        if exact {
            builder = builder.with_physical_optimizer_rule(Arc::new(ExactDecimalProducts));
        }
        let ctx = SessionContext::new_with_state(builder.build());
        let (schema, batches) = scores();
        let table = MemTable::try_new(schema, vec![batches]).unwrap();
        ctx.register_table("s", Arc::new(table)).unwrap();
        ctx
    }

    async fn answer(ctx: &SessionContext, sql: &str) -> String {
        let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        let schema = batches[0].schema();
        let types: Vec<String> = schema
            .fields()
            .iter()
            .map(|f| f.data_type().to_string())
            .collect();
        format!(
            "{}\n{}",
            types.join(", "),
            pretty_format_batches(&batches).unwrap()
        )
    }

    /// How many expressions of type `E` the physical plan of `sql` has.
    async fn planned<E: PhysicalExpr>(ctx: &SessionContext, sql: &str) -> usize {
        let plan = ctx
            .sql(sql)
            .await
            .unwrap()
            .create_physical_plan()
            .await
            .unwrap();
        let mut found = 0;
        plan.apply(|node| {
            node.apply_expressions(&mut |e| {
                e.apply(|e| {
                    if e.is::<E>() {
                        found += 1;
                    }
                    Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
                })
            })
        })
        .unwrap();
        found
    }

    #[tokio::test]
    async fn products_equal_the_checked_ones_in_filters_and_projections() {
        let exact = session(true);
        let checked = session(false);
        for (sql, products) in [
            (
                "SELECT count(*), sum(score) FROM s WHERE score * 10 < max_score * 6",
                2,
            ),
            (
                "SELECT score * max_score AS p FROM s ORDER BY p NULLS FIRST",
                1,
            ),
            (
                "SELECT 3 * score AS p, score * -2 AS q FROM s ORDER BY p, q",
                2,
            ),
            ("SELECT score * amount AS p FROM s ORDER BY p", 1),
            ("SELECT score * max_score * score AS p FROM s ORDER BY p", 2),
            (
                "SELECT count(*) FROM s WHERE score * max_score > amount OR score IS NULL",
                1,
            ),
            ("SELECT amount * amount AS p FROM s ORDER BY p", 1),
            // At the edge of 64 bits and past it, on either side.
            (
                "SELECT score * 99999999999 AS p, 100000000000 * score AS q FROM s ORDER BY p, q",
                2,
            ),
            (
                "SELECT amount * CAST(3 AS DECIMAL(2, 0)) AS p, \
                        CAST(-7 AS DECIMAL(3, 0)) * amount AS q FROM s ORDER BY p, q",
                2,
            ),
            (
                "SELECT CAST(score AS DECIMAL(11, 2)) * CAST(max_score AS DECIMAL(7, 2)) AS p, \
                        CAST(score AS DECIMAL(12, 2)) * max_score AS q FROM s ORDER BY p, q",
                2,
            ),
            // Too wide to be sure: left to the checked product.
            (
                "SELECT CAST(score AS DECIMAL(31, 2)) * max_score AS p FROM s ORDER BY p",
                0,
            ),
        ] {
            assert_eq!(
                answer(&exact, sql).await,
                answer(&checked, sql).await,
                "{sql}"
            );
            assert_eq!(
                planned::<DecimalProduct>(&exact, sql).await,
                products,
                "{sql}"
            );
            assert_eq!(planned::<DecimalProduct>(&checked, sql).await, 0, "{sql}");
        }
    }

    /// DataFusion puts a literal on the right of a comparison before kpidb's rule
    /// sees it, so SQL does not reach a constant on the left; the expression answers
    /// it all the same, each operator mirrored, ties included.
    #[test]
    fn a_constant_on_the_left_is_compared_as_planned() {
        use datafusion::physical_expr::expressions::{col, lit};
        let (schema, batches) = scores();
        let constant = lit(ScalarValue::Decimal128(Some(123_456), 7, 2));
        for op in [
            Operator::Eq,
            Operator::NotEq,
            Operator::Lt,
            Operator::LtEq,
            Operator::Gt,
            Operator::GtEq,
        ] {
            let inner = Arc::new(BinaryExpr::new(
                Arc::clone(&constant),
                op,
                col("score", &schema).unwrap(),
            ));
            assert!(DecimalComparison::applies(&inner, &schema).unwrap());
            let fused = DecimalComparison {
                inner: Arc::clone(&inner),
            };
            for batch in &batches {
                let expected = inner.evaluate(batch).unwrap().into_array(1000).unwrap();
                let answer = fused.evaluate(batch).unwrap().into_array(1000).unwrap();
                assert_eq!(answer.as_boolean(), expected.as_boolean(), "{op}");
                let ties = (0..1000).filter(|&i| {
                    batch.column(0).as_primitive::<Decimal128Type>().value(i) == 123_456
                });
                assert!(ties.count() >= 1, "{op}: the known value is there");
            }
        }
    }

    #[tokio::test]
    async fn comparisons_in_64_bits_equal_the_planned_ones() {
        let exact = session(true);
        let checked = session(false);
        for (sql, fused) in [
            (
                "SELECT count(*) FROM s WHERE score * 10 < max_score * 6",
                Some(1),
            ),
            (
                "SELECT count(*) FROM s WHERE score * 3 >= max_score * -2",
                Some(1),
            ),
            ("SELECT count(*) FROM s WHERE score = max_score", Some(1)),
            ("SELECT count(*) FROM s WHERE max_score <> score", Some(1)),
            ("SELECT count(*) FROM s WHERE score > 12.5", Some(1)),
            ("SELECT count(*) FROM s WHERE 7 * score <= 12.5", Some(1)),
            // A constant on the left, every operator, with ties: each batch's first
            // score is 99999.99, four times which is the constant. (The constant's
            // precision differs from the product's, so DataFusion's comparison answers.)
            (
                "SELECT score, 399999.96 < score * 4 AS lt, 399999.96 <= score * 4 AS le, \
                        399999.96 > score * 4 AS gt, 399999.96 >= score * 4 AS ge, \
                        399999.96 = score * 4 AS eq, 399999.96 <> score * 4 AS ne \
                 FROM s ORDER BY score DESC NULLS LAST LIMIT 8",
                None,
            ),
            ("SELECT count(*) FROM s WHERE 12.5 >= score * 3", Some(1)),
            // A widening cast is a factor too; 0.6 is a float, compared as one.
            (
                "SELECT count(*) FROM s WHERE score < max_score * CAST(0.6 AS DECIMAL(2, 1))",
                Some(1),
            ),
            (
                "SELECT count(*) FROM s WHERE score < max_score * 0.6",
                Some(0),
            ),
            // At the edge of 64 bits, and past it.
            (
                "SELECT count(*) FROM s WHERE score * 99999999999 > max_score",
                Some(1),
            ),
            (
                "SELECT count(*) FROM s WHERE score * 100000000000 > max_score",
                Some(0),
            ),
            (
                "SELECT count(*) FROM s WHERE amount > max_score * 100",
                Some(0),
            ),
            ("SELECT count(*) FROM s WHERE amount * 2 > 1", Some(0)),
            // Equal sides, where every operator's answer on ties shows.
            (
                "SELECT score, max_score, score * 2 < max_score * 2 AS lt, \
                        score * 3 <= max_score * 3 AS le, score * 4 > max_score * 4 AS gt, \
                        score * 5 >= max_score * 5 AS ge, score * 7 = max_score * 7 AS eq, \
                        score * 8 <> max_score * 8 AS ne \
                 FROM s ORDER BY score, max_score",
                Some(6),
            ),
            // Nulls, in a projection where they show.
            (
                "SELECT score * 10 < max_score * 6 AS low, score >= 1 AS one FROM s \
                 ORDER BY score, max_score, low, one",
                Some(2),
            ),
            (
                "SELECT count(*) FROM s WHERE score * 2 <= CAST(NULL AS DECIMAL(7, 2))",
                None,
            ),
        ] {
            assert_eq!(
                answer(&exact, sql).await,
                answer(&checked, sql).await,
                "{sql}"
            );
            if let Some(fused) = fused {
                assert_eq!(
                    planned::<DecimalComparison>(&exact, sql).await,
                    fused,
                    "{sql}"
                );
            }
            assert_eq!(
                planned::<DecimalComparison>(&checked, sql).await,
                0,
                "{sql}"
            );
        }
    }

    #[test]
    fn a_null_or_scalar_operand_is_multiplied_the_checked_way() {
        use datafusion::physical_expr::expressions::{col, lit};
        let (schema, batches) = scores();
        let score = col("score", &schema).unwrap();
        for (other, nulls) in [
            (lit(ScalarValue::Decimal128(None, 7, 2)), 1000),
            (lit(ScalarValue::Decimal128(Some(250), 7, 2)), 0),
        ] {
            let planned: Arc<dyn PhysicalExpr> = Arc::new(BinaryExpr::new(
                Arc::clone(&score),
                Operator::Multiply,
                other,
            ));
            let exact = unchecked(&planned, &schema).unwrap();
            assert!(exact.transformed);
            assert!(exact.data.is::<DecimalProduct>());
            let want = planned
                .evaluate(&batches[0])
                .unwrap()
                .into_array(1000)
                .unwrap();
            let got = exact
                .data
                .evaluate(&batches[0])
                .unwrap()
                .into_array(1000)
                .unwrap();
            assert_eq!(got.data_type(), &DataType::Decimal128(15, 4));
            assert_eq!(got.as_ref(), want.as_ref());
            assert!(got.null_count() >= nulls);
        }
        let two = lit(ScalarValue::Decimal128(Some(2), 7, 0));
        let scalars: Arc<dyn PhysicalExpr> =
            Arc::new(BinaryExpr::new(Arc::clone(&two), Operator::Multiply, two));
        let exact = unchecked(&scalars, &schema).unwrap().data;
        let got = exact.evaluate(&batches[0]).unwrap();
        assert!(
            matches!(
                got,
                ColumnarValue::Scalar(ScalarValue::Decimal128(Some(4), 15, 0))
            ),
            "{got:?}"
        );
    }

    #[tokio::test]
    async fn an_overflowing_product_still_fails_as_before() {
        let sql = "SELECT amount * amount * amount * amount AS p FROM s";
        for ctx in [session(true), session(false)] {
            let err = ctx.sql(sql).await.unwrap().collect().await.unwrap_err();
            assert!(err.to_string().contains("Overflow"), "{err}");
        }
    }
}
