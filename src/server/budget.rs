//! The memory a server may hold, whatever the SQL: its `memory_limit` plus
//! [`SLACK`].
//!
//! DataFusion's memory pool caps what operators reserve (sorts, joins, aggregates),
//! but a scalar function allocates its output without asking: `repeat(code, 1e8)`
//! over a column would take tens of gigabytes in one batch. The heap is counted by
//! the global allocator ([`crate::memory`]), so the check is against what the process
//! really holds, not an estimate of it:
//! - [`Budget::claim`] promises bytes before they are allocated: it refuses (53200,
//!   the query fails, the others go on) when the heap plus every outstanding promise
//!   plus the request would pass the ceiling (`memory_limit` + [`EXPRESSION_SLACK`]),
//!   or when one call alone would produce more than `memory_limit` / 8 (its output is
//!   often copied again downstream, by an aggregate or into the rows sent).
//! - The functions whose output can be much larger than their input ([`EXPANDING`]:
//!   `repeat`, `lpad`, `rpad`, `array_repeat`, `range`, `generate_series`, `replace`,
//!   `concat`, …) are wrapped ([`Budgeted`]): each call works out from its arguments
//!   how large its output can be, and claims that first.
//! - The memory pool refuses a reservation when the heap is at the ceiling
//!   ([`BoundedPool`]), whoever filled it.
//!
//! [`SLACK`] is what the process may hold beyond `memory_limit`: [`EXPRESSION_SLACK`]
//! of heap (batches in flight between operators, which no pool reserves) and the rest
//! for the program itself, its thread stacks and the allocator's free lists.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::compute::{cast, kernels::length::length};
use datafusion::arrow::datatypes::{DataType, Int64Type, IntervalMonthDayNanoType, TimeUnit};
use datafusion::common::{DataFusionError, Result, ScalarValue};
use datafusion::config::ConfigOptions;
use datafusion::execution::memory_pool::{MemoryLimit, MemoryPool, MemoryReservation};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
};
use datafusion::prelude::SessionContext;

/// What the process may hold beyond `memory_limit`, all told (documented in the README).
pub const SLACK: usize = 512 << 20;

/// Heap beyond `memory_limit` that expressions may take together.
pub const EXPRESSION_SLACK: usize = 192 << 20;

/// The server's heap ceiling and the bytes promised to calls under way.
#[derive(Debug)]
pub struct Budget {
    memory_limit: usize,
    ceiling: usize,
    /// The most one call may claim: its output is usually copied again downstream
    /// (an aggregate's state, the rows sent), where no claim covers it.
    per_call: usize,
    promised: AtomicUsize,
}

impl Budget {
    pub fn new(memory_limit: usize) -> Arc<Self> {
        Arc::new(Budget {
            memory_limit,
            ceiling: memory_limit.saturating_add(EXPRESSION_SLACK),
            per_call: (memory_limit / 8).max(16 << 20),
            promised: AtomicUsize::new(0),
        })
    }

    /// Promises `bytes` to the caller until the claim is dropped, or refuses.
    pub fn claim(self: &Arc<Self>, bytes: usize, what: &str) -> Result<Claim> {
        if bytes > self.per_call {
            return Err(DataFusionError::ResourcesExhausted(format!(
                "{what} would produce {} for one batch of rows, and one call may produce at \
                 most {} (memory_limit / 8)",
                mib(bytes),
                mib(self.per_call)
            )));
        }
        self.claim_total(bytes, what)
    }

    /// Like [`Budget::claim`], against the ceiling only.
    fn claim_total(self: &Arc<Self>, bytes: usize, what: &str) -> Result<Claim> {
        let mut promised = self.promised.load(Ordering::Acquire);
        loop {
            let heap = crate::memory::allocated();
            let wanted = heap.saturating_add(promised).saturating_add(bytes);
            if wanted > self.ceiling {
                return Err(self.refusal(bytes, what));
            }
            match self.promised.compare_exchange_weak(
                promised,
                promised + bytes,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    return Ok(Claim {
                        budget: Arc::clone(self),
                        bytes,
                    })
                }
                Err(now) => promised = now,
            }
        }
    }

    /// Whether `additional` more bytes of heap would pass the ceiling now.
    fn exceeded_by(&self, additional: usize) -> bool {
        crate::memory::allocated()
            .saturating_add(self.promised.load(Ordering::Acquire))
            .saturating_add(additional)
            > self.ceiling
    }

    fn refusal(&self, bytes: usize, what: &str) -> DataFusionError {
        DataFusionError::ResourcesExhausted(format!(
            "{what} would need {} more, and the server holds {} of its memory_limit of {}",
            mib(bytes),
            mib(crate::memory::allocated()),
            mib(self.memory_limit)
        ))
    }
}

fn mib(bytes: usize) -> String {
    if bytes >= 10 << 30 {
        format!("{} GiB", bytes >> 30)
    } else {
        format!("{} MiB", bytes.div_ceil(1 << 20))
    }
}

/// Bytes promised to one call; returned when dropped.
#[derive(Debug)]
pub struct Claim {
    budget: Arc<Budget>,
    bytes: usize,
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.budget.promised.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

/// Bytes of heap planning takes per byte of SQL, for long statements: measured on
/// 100,000-term `OR` and `AND` lists (about 270 bytes per byte), with a margin.
pub const PLANNING_PER_SQL_BYTE: usize = 320;

/// Statements shorter than this plan in a few megabytes and claim nothing.
const LONG_SQL: usize = 64 << 10;

/// Claims the heap planning `sql` will take, when it is long: so that long lists are
/// answered while the server can afford them and refused (53200) when it cannot.
pub fn claim_planning(budget: &Arc<Budget>, sql: &str) -> Result<Option<Claim>> {
    if sql.len() < LONG_SQL {
        return Ok(None);
    }
    let bytes = sql.len().saturating_mul(PLANNING_PER_SQL_BYTE);
    let claim = budget.claim_total(bytes, "planning this long statement")?;
    Ok(Some(claim))
}

/// The memory pool, refusing reservations once the heap is at the ceiling.
#[derive(Debug)]
pub struct BoundedPool {
    inner: Arc<dyn MemoryPool>,
    budget: Arc<Budget>,
}

impl BoundedPool {
    pub fn new(inner: Arc<dyn MemoryPool>, budget: Arc<Budget>) -> Self {
        BoundedPool { inner, budget }
    }
}

impl fmt::Display for BoundedPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BoundedPool({})", self.inner)
    }
}

impl MemoryPool for BoundedPool {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn register(&self, consumer: &datafusion::execution::memory_pool::MemoryConsumer) {
        self.inner.register(consumer)
    }

    fn unregister(&self, consumer: &datafusion::execution::memory_pool::MemoryConsumer) {
        self.inner.unregister(consumer)
    }

    fn grow(&self, reservation: &MemoryReservation, additional: usize) {
        self.inner.grow(reservation, additional)
    }

    fn shrink(&self, reservation: &MemoryReservation, shrink: usize) {
        self.inner.shrink(reservation, shrink)
    }

    fn try_grow(&self, reservation: &MemoryReservation, additional: usize) -> Result<()> {
        if self.budget.exceeded_by(additional) {
            return Err(self
                .budget
                .refusal(additional, reservation.consumer().name()));
        }
        self.inner.try_grow(reservation, additional)
    }

    fn reserved(&self) -> usize {
        self.inner.reserved()
    }

    fn memory_limit(&self) -> MemoryLimit {
        self.inner.memory_limit()
    }
}

/// How many bytes a call's output can take at most, from its arguments.
type Estimate = fn(&[ColumnarValue], usize) -> Result<usize>;

/// The functions whose output can be much larger than their input, with the bound
/// on their output.
pub const EXPANDING: &[(&str, Estimate)] = &[
    ("repeat", repeat),
    ("lpad", pad),
    ("rpad", pad),
    ("array_repeat", array_repeat),
    ("range", series),
    ("generate_series", series),
    ("replace", replace),
    ("regexp_replace", regexp_replace),
    ("translate", quadruple),
    ("overlay", sum_of_inputs),
    ("concat", sum_of_inputs),
    ("concat_ws", concat_ws),
    ("encode", double),
    ("string_to_array", split),
    ("array_resize", array_resize),
    ("array_concat", sum_of_inputs),
    ("array_append", sum_of_inputs),
    ("array_prepend", sum_of_inputs),
    ("make_array", sum_of_inputs),
    ("array_fill", array_fill),
];

/// Wraps every function of [`EXPANDING`] registered in `ctx` in [`Budgeted`].
pub fn install(ctx: &SessionContext, budget: &Arc<Budget>) {
    for (name, estimate) in EXPANDING {
        let Some(udf) = ctx.state().scalar_functions().get(*name).cloned() else {
            continue;
        };
        ctx.register_udf(ScalarUDF::new_from_impl(Budgeted {
            inner: (*udf).clone(),
            estimate: *estimate,
            budget: Arc::clone(budget),
        }));
    }
}

/// A function that claims its output's memory from the [`Budget`] before it runs.
pub struct Budgeted {
    inner: ScalarUDF,
    estimate: Estimate,
    budget: Arc<Budget>,
}

impl fmt::Debug for Budgeted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Budgeted({})", self.inner.name())
    }
}

impl PartialEq for Budgeted {
    fn eq(&self, other: &Self) -> bool {
        self.inner == other.inner && Arc::ptr_eq(&self.budget, &other.budget)
    }
}

impl Eq for Budgeted {}

impl Hash for Budgeted {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.inner.hash(state)
    }
}

impl ScalarUDFImpl for Budgeted {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }

    fn schema_name(&self, args: &[datafusion::prelude::Expr]) -> Result<String> {
        self.inner.inner().schema_name(args)
    }

    fn signature(&self) -> &Signature {
        self.inner.signature()
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.inner.inner().return_type(arg_types)
    }

    fn return_field_from_args(
        &self,
        args: datafusion::logical_expr::ReturnFieldArgs,
    ) -> Result<datafusion::arrow::datatypes::FieldRef> {
        self.inner.return_field_from_args(args)
    }

    fn with_updated_config(&self, config: &ConfigOptions) -> Option<ScalarUDF> {
        let inner = self.inner.inner().with_updated_config(config)?;
        Some(ScalarUDF::new_from_impl(Budgeted {
            inner,
            estimate: self.estimate,
            budget: Arc::clone(&self.budget),
        }))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let bytes = (self.estimate)(&args.args, args.number_rows)?;
        let _claim = self.budget.claim(bytes, self.inner.name())?;
        self.inner.invoke_with_args(args)
    }

    fn simplify(
        &self,
        args: Vec<datafusion::prelude::Expr>,
        info: &datafusion::logical_expr::simplify::SimplifyContext,
    ) -> Result<datafusion::logical_expr::simplify::ExprSimplifyResult> {
        self.inner.simplify(args, info)
    }

    fn short_circuits(&self) -> bool {
        self.inner.short_circuits()
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        self.inner.coerce_types(arg_types)
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.inner.documentation()
    }
}

/// Per row, the values of an integer argument (NULL as 0).
fn counts(arg: &ColumnarValue, rows: usize) -> Result<Vec<i64>> {
    Ok(match arg {
        ColumnarValue::Scalar(value) => {
            let n = match value.cast_to(&DataType::Int64)? {
                ScalarValue::Int64(Some(n)) => n,
                _ => 0,
            };
            vec![n; rows]
        }
        ColumnarValue::Array(array) => {
            let ints = cast(array, &DataType::Int64)?;
            let ints = ints.as_primitive::<Int64Type>();
            (0..ints.len())
                .map(|i| if ints.is_null(i) { 0 } else { ints.value(i) })
                .collect()
        }
    })
}

/// Per row, the byte length of a string argument (its text form for other types).
fn lengths(arg: &ColumnarValue, rows: usize) -> Result<Vec<usize>> {
    Ok(match arg {
        ColumnarValue::Scalar(value) => {
            let n = if value.is_null() {
                0
            } else {
                value.to_string().len()
            };
            vec![n; rows]
        }
        ColumnarValue::Array(array) => {
            let text = match array.data_type() {
                DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => array.clone(),
                DataType::Binary | DataType::LargeBinary | DataType::BinaryView => array.clone(),
                _ => cast(array, &DataType::Utf8)?,
            };
            let text = match text.data_type() {
                DataType::Utf8View => cast(&text, &DataType::Utf8)?,
                DataType::BinaryView => cast(&text, &DataType::Binary)?,
                _ => text,
            };
            let lens = cast(&length(&text)?, &DataType::Int64)?;
            let lens = lens.as_primitive::<Int64Type>();
            (0..lens.len())
                .map(|i| {
                    if lens.is_null(i) {
                        0
                    } else {
                        lens.value(i).max(0) as usize
                    }
                })
                .collect()
        }
    })
}

/// Bytes of an argument across the batch (a scalar counts once per row).
fn bytes(arg: &ColumnarValue, rows: usize) -> usize {
    match arg {
        ColumnarValue::Scalar(value) => value.size().saturating_mul(rows),
        ColumnarValue::Array(array) => array.get_array_memory_size(),
    }
}

fn times(a: usize, n: i64) -> usize {
    a.saturating_mul(n.max(0) as usize)
}

fn repeat(args: &[ColumnarValue], rows: usize) -> Result<usize> {
    let (Some(text), Some(n)) = (args.first(), args.get(1)) else {
        return Ok(0);
    };
    let lens = lengths(text, rows)?;
    let ns = counts(n, rows)?;
    Ok(lens
        .iter()
        .zip(&ns)
        .fold(0usize, |sum, (&l, &n)| sum.saturating_add(times(l, n))))
}

fn pad(args: &[ColumnarValue], rows: usize) -> Result<usize> {
    let Some(n) = args.get(1) else {
        return Ok(0);
    };
    // The length is in characters, of up to 4 bytes each.
    Ok(counts(n, rows)?
        .iter()
        .fold(0usize, |sum, &n| sum.saturating_add(times(4, n))))
}

fn array_repeat(args: &[ColumnarValue], rows: usize) -> Result<usize> {
    let (Some(element), Some(n)) = (args.first(), args.get(1)) else {
        return Ok(0);
    };
    let each = bytes(element, rows) / rows.max(1) + 8;
    Ok(counts(n, rows)?
        .iter()
        .fold(0usize, |sum, &n| sum.saturating_add(times(each, n))))
}

fn array_fill(args: &[ColumnarValue], rows: usize) -> Result<usize> {
    // array_fill(value, [n, …]): the dimensions are an array; bound by its product.
    let Some(ColumnarValue::Scalar(ScalarValue::List(dims))) = args.get(1) else {
        return Ok(0);
    };
    let values = dims.values();
    let n = counts(&ColumnarValue::Array(values.clone()), values.len())?
        .iter()
        .fold(1i64, |p, &d| p.saturating_mul(d.max(0)));
    Ok(times(16, n).saturating_mul(rows))
}

fn array_resize(args: &[ColumnarValue], rows: usize) -> Result<usize> {
    let Some(n) = args.get(1) else {
        return Ok(0);
    };
    let each = args
        .get(2)
        .map_or(16, |v| bytes(v, rows) / rows.max(1) + 16);
    Ok(counts(n, rows)?
        .iter()
        .fold(0usize, |sum, &n| sum.saturating_add(times(each, n))))
}

/// `range` / `generate_series` as functions: the elements between start and stop.
fn series(args: &[ColumnarValue], rows: usize) -> Result<usize> {
    let (start, stop, step) = match args {
        [stop] => (None, stop, None),
        [start, stop] => (Some(start), stop, None),
        [start, stop, step, ..] => (Some(start), stop, Some(step)),
        [] => return Ok(0),
    };
    let temporal = matches!(
        stop.data_type(),
        DataType::Date32 | DataType::Date64 | DataType::Timestamp(..)
    );
    let point = |v: Option<&ColumnarValue>| -> Result<Vec<i64>> {
        match v {
            None => Ok(vec![0; rows]),
            Some(v) if temporal => counts(
                &v.cast_to(&DataType::Timestamp(TimeUnit::Nanosecond, None), None)?,
                rows,
            ),
            Some(v) => counts(v, rows),
        }
    };
    let starts = point(start)?;
    let stops = point(Some(stop))?;
    let steps: Vec<i64> = match step {
        None if temporal => vec![86_400_000_000_000; rows],
        None => vec![1; rows],
        Some(step) if temporal => interval_nanos(step, rows)?,
        Some(step) => counts(step, rows)?,
    };
    let mut elements = 0usize;
    for ((start, stop), step) in starts.iter().zip(&stops).zip(&steps) {
        let span = (*stop as i128 - *start as i128).unsigned_abs();
        let step = (*step as i128).unsigned_abs().max(1);
        let n = (span / step).saturating_add(1).min(usize::MAX as u128) as usize;
        elements = elements.saturating_add(n);
    }
    Ok(elements.saturating_mul(8))
}

/// The shortest a month-day-nano interval can be, in nanoseconds (a month as 28 days).
fn interval_nanos(step: &ColumnarValue, rows: usize) -> Result<Vec<i64>> {
    const DAY: i64 = 86_400_000_000_000;
    let array = step
        .cast_to(
            &DataType::Interval(datafusion::arrow::datatypes::IntervalUnit::MonthDayNano),
            None,
        )?
        .into_array(rows)?;
    let intervals = array.as_primitive::<IntervalMonthDayNanoType>();
    Ok((0..intervals.len())
        .map(|i| {
            if intervals.is_null(i) {
                return DAY;
            }
            let v = intervals.value(i);
            (v.months as i64)
                .saturating_mul(28 * DAY)
                .saturating_add((v.days as i64).saturating_mul(DAY))
                .saturating_add(v.nanoseconds)
                .unsigned_abs()
                .min(i64::MAX as u64) as i64
        })
        .collect())
}

fn replace(args: &[ColumnarValue], rows: usize) -> Result<usize> {
    let (Some(text), Some(from), Some(to)) = (args.first(), args.get(1), args.get(2)) else {
        return Ok(0);
    };
    let (text, from, to) = (
        lengths(text, rows)?,
        lengths(from, rows)?,
        lengths(to, rows)?,
    );
    let mut sum = 0usize;
    for i in 0..text.len().min(from.len()).min(to.len()) {
        // Every occurrence replaced; an empty pattern matches between every byte.
        let occurrences = text[i] / from[i].max(1) + 1;
        sum = sum.saturating_add(text[i].saturating_add(occurrences.saturating_mul(to[i])));
    }
    Ok(sum)
}

fn regexp_replace(args: &[ColumnarValue], rows: usize) -> Result<usize> {
    let (Some(text), Some(replacement)) = (args.first(), args.get(2)) else {
        return Ok(0);
    };
    let (text, replacement) = (lengths(text, rows)?, lengths(replacement, rows)?);
    // At most one match per position, each replaced by the replacement, whose group
    // references are at most the text again.
    Ok(text.iter().zip(&replacement).fold(0usize, |sum, (&t, &r)| {
        sum.saturating_add((t + 1).saturating_mul(r + 1).saturating_add(t))
    }))
}

fn quadruple(args: &[ColumnarValue], rows: usize) -> Result<usize> {
    Ok(args.first().map_or(0, |a| bytes(a, rows)).saturating_mul(4))
}

fn double(args: &[ColumnarValue], rows: usize) -> Result<usize> {
    Ok(args.first().map_or(0, |a| bytes(a, rows)).saturating_mul(2))
}

fn split(args: &[ColumnarValue], rows: usize) -> Result<usize> {
    // Each byte may become an element of its own: its bytes, an offset and validity.
    Ok(args
        .first()
        .map_or(0, |a| bytes(a, rows))
        .saturating_mul(16)
        .saturating_add(rows * 16))
}

fn sum_of_inputs(args: &[ColumnarValue], rows: usize) -> Result<usize> {
    Ok(args
        .iter()
        .fold(0usize, |sum, a| sum.saturating_add(bytes(a, rows))))
}

fn concat_ws(args: &[ColumnarValue], rows: usize) -> Result<usize> {
    let Some((separator, rest)) = args.split_first() else {
        return Ok(0);
    };
    let separators = bytes(separator, rows).saturating_mul(rest.len());
    Ok(sum_of_inputs(rest, rows)?.saturating_add(separators))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claim_past_the_ceiling_is_refused_and_claims_are_returned() {
        let full = Arc::new(Budget {
            memory_limit: 0,
            ceiling: 0,
            per_call: usize::MAX,
            promised: AtomicUsize::new(0),
        });
        let err = full.claim(1, "repeat").unwrap_err().to_string();
        assert!(err.contains("repeat would need"), "{err}");
        let budget = Budget::new(1 << 40);
        let err = budget.claim(1 << 40, "lpad").unwrap_err().to_string();
        assert!(
            err.contains("one call may produce at most 128 GiB"),
            "{err}"
        );
        let small = budget.claim(1 << 10, "lpad").unwrap();
        assert_eq!(budget.promised.load(Ordering::Acquire), 1 << 10);
        drop(small);
        assert_eq!(budget.promised.load(Ordering::Acquire), 0);
    }

    #[test]
    fn expanding_functions_bound_their_output_from_their_arguments() {
        let codes: datafusion::arrow::array::ArrayRef =
            Arc::new(datafusion::arrow::array::StringArray::from(vec![
                Some("ab"),
                None,
                Some("abcd"),
            ]));
        let text = ColumnarValue::Array(codes);
        let n = ColumnarValue::Scalar(ScalarValue::Int64(Some(1000)));
        assert_eq!(repeat(&[text.clone(), n.clone()], 3).unwrap(), 6000);
        let negative = ColumnarValue::Scalar(ScalarValue::Int64(Some(-5)));
        assert_eq!(repeat(&[text.clone(), negative], 3).unwrap(), 0);
        assert_eq!(pad(&[text.clone(), n], 3).unwrap(), 12_000);
        let series_args = [
            ColumnarValue::Scalar(ScalarValue::Int64(Some(1))),
            ColumnarValue::Scalar(ScalarValue::Int64(Some(1_000_000_000))),
        ];
        assert_eq!(series(&series_args, 1).unwrap(), 8_000_000_000);
        let huge = [ColumnarValue::Scalar(ScalarValue::Int64(Some(i64::MAX)))];
        assert!(series(&huge, 1).unwrap() > 1 << 60);
    }
}
